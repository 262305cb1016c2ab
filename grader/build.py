"""Learner notebooks are generated, never edited: nbgrader's generate_assignment makes them.

The build copies solutions/ into a throw-away nbgrader course folder, runs
``nbgrader generate_assignment`` there (no gradebook), and takes the release: answer cells
stubbed, hidden tests removed, outputs cleared. nbgrader's output is deterministic, so
``--check`` is a byte comparison with notebooks/. Before it, the Colab badges and clone URLs in
solutions/ and the README's course map are rewritten from one setting (grader/links.py), and
gpt2course/reference/ is rewritten from the answer cells of solutions/ (grader/reference_code.py),
so each exercise's code is edited in one place, its answer cell.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from .paths import NOTEBOOKS, SOLUTIONS, solution_notebooks

ASSIGNMENT = "gpt2course"

NBGRADER_CONFIG = """\
c = get_config()
c.CourseDirectory.root = {root!r}
c.CourseDirectory.db_url = "sqlite:///{root}/gradebook.db"
c.ClearSolutions.code_stub = {{"python": "# YOUR CODE HERE\\nraise NotImplementedError()"}}
c.ClearOutput.enabled = True
"""


def release(dest: Path) -> list[Path]:
    """Generate the learner notebooks of every solutions/ notebook into ``dest``."""
    sources = solution_notebooks()
    if not sources:
        raise SystemExit(f"no notebooks in {SOLUTIONS}")
    with tempfile.TemporaryDirectory(prefix="nbgrader-build-") as root:
        course = Path(root)
        (course / "source" / ASSIGNMENT).mkdir(parents=True)
        for nb in sources:
            shutil.copy(nb, course / "source" / ASSIGNMENT / nb.name)
        (course / "nbgrader_config.py").write_text(NBGRADER_CONFIG.format(root=str(course)))
        env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
        proc = subprocess.run(
            [sys.executable, "-m", "grader.run_nbgrader", "generate_assignment", ASSIGNMENT, "--force", "--no-db"],
            cwd=course, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit("nbgrader generate_assignment failed:\n" + proc.stdout[-3000:] + proc.stderr[-3000:])
        dest.mkdir(parents=True, exist_ok=True)
        written = []
        for nb in sources:
            out = course / "release" / ASSIGNMENT / nb.name
            shutil.copy(out, dest / nb.name)
            written.append(dest / nb.name)
        return written


def stale_notebooks() -> list[str]:
    """Names of notebooks/ files that differ from a fresh build (or are missing or extra)."""
    with tempfile.TemporaryDirectory(prefix="nb-check-") as tmp:
        fresh = {p.name: p.read_bytes() for p in release(Path(tmp))}
    current = {p.name: p.read_bytes() for p in NOTEBOOKS.glob("*.ipynb")}
    return sorted(name for name in fresh.keys() | current.keys() if fresh.get(name) != current.get(name))


def build_notebooks(check: bool = False) -> int:
    """Bring the repository links (grader/links.py) and gpt2course/reference/ (grader/
    reference_code.py) up to date, then regenerate notebooks/; with ``check``, write nothing
    and return 1 when any of them is out of date."""
    from . import reference_code
    from .links import out_of_date

    if check:
        links = out_of_date(write=False)
        if links:
            print("links or setup cells disagree with gpt2course.REPO_OWNER / REPO_NAME / REPO_BRANCH "
                  "or grader/setup_cell.py (run `make notebooks`): " + ", ".join(links), file=sys.stderr)
        try:
            references = reference_code.stale()
        except reference_code.ReferenceError as exc:
            print(f"gpt2course/reference/: {exc}", file=sys.stderr)
            return 1
        if references:
            print("gpt2course/reference/ differs from the answer cells of solutions/ (edit the "
                  "answer cells, then run `make notebooks`): " + ", ".join(references), file=sys.stderr)
        stale = stale_notebooks()
        if stale:
            print("notebooks/ is stale (run `make notebooks`): " + ", ".join(stale), file=sys.stderr)
        if links or references or stale:
            return 1
        print("notebooks/, gpt2course/reference/ and the repository links are up to date")
        return 0
    for name in out_of_date(write=True):
        print(f"updated the repository links and the setup cell in {name}")
    try:
        for name in reference_code.write():
            print(f"wrote gpt2course/reference/{name} from its answer cells")
    except reference_code.ReferenceError as exc:
        raise SystemExit(f"gpt2course/reference/: {exc}") from None
    with tempfile.TemporaryDirectory(prefix="nb-build-") as tmp:
        fresh = release(Path(tmp))  # built aside first: notebooks/ is never half-written
        names = {p.name for p in fresh}
        for path in NOTEBOOKS.glob("*.ipynb"):
            if path.name not in names:
                path.unlink()
        NOTEBOOKS.mkdir(parents=True, exist_ok=True)
        for path in fresh:
            target = NOTEBOOKS / path.name
            shutil.copy(path, target.with_suffix(".ipynb.tmp"))
            os.replace(target.with_suffix(".ipynb.tmp"), target)
            print(f"wrote {target.relative_to(NOTEBOOKS.parent)}")
    return 0
