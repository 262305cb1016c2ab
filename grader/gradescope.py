"""Grading on Gradescope: an autograder package for one notebook, and what it runs per submission.

``python -m grader gradescope NOTEBOOK OUT.zip`` (``build``) writes the zip that Gradescope's
"Autograder Specifications" ask for (its autograder documentation):

- ``setup.sh`` and ``run_autograder`` (grader/gradescope_scripts.py), at the zip's root;
- ``gradescope.json``: the assignment's name and a secret made at build time (the grading salt's
  key; keep the zip private, as you would the solutions);
- ``course/``: the course's source tree as the grader needs it: pyproject.toml, README.md, the
  gpt2course and grader packages, data/ and ``solutions/<assignment>.ipynb`` only.

``python -m grader.gradescope --root ROOT`` (``run``; run_autograder calls it, ROOT defaulting to
``$AUTOGRADER_ROOT`` or /autograder) grades the notebook in ROOT/submission with grader.check and
writes ROOT/results/results.json: one test per graded cell, hidden tests shown only once grades
are published. Whatever was submitted, it writes a results.json; a missing, unreadable or
corrupt notebook gets 0 and an output that says what was wrong.

The grading inputs' salt is an HMAC of the submitters' Gradescope user ids (from
ROOT/submission_metadata.json, Gradescope's "Submission Metadata" page: ``users[].id``) and the
assignment under the package's secret: a student cannot compute the hidden inputs, and a
submission regraded gets the same grade.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import io
import json
import os
import re
import secrets
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from .gradescope_scripts import RUN_AUTOGRADER, SETUP_SH
from .notebook import MAX_NOTEBOOK_BYTES, UngradableNotebook, grade_id, is_test_cell, read_notebook
from .paths import REPO, SOLUTIONS, solution_notebooks

CONFIG = "gradescope.json"
HIDDEN_MARKER = "### BEGIN HIDDEN TESTS"
# What the package carries of the course's tree, besides the assignment's source notebook.
COURSE_FILES = ("pyproject.toml", "README.md")
COURSE_DIRS = ("gpt2course", "grader", "data")
# A torch index URL is written into setup.sh inside double quotes: only these characters.
SAFE_URL = re.compile(r"^[A-Za-z0-9:/._~%+=?&@-]+$")
SKIPPED_PARTS = {"__MACOSX", ".ipynb_checkpoints"}


class BuildError(Exception):
    """The package cannot be built; the message says why in one line."""


# --- build -----------------------------------------------------------------------------------

def resolve_source(notebook: str) -> Path:
    """The source notebook for ``notebook``: a path to a solutions-style ``NN_name.ipynb``, or an
    assignment name of the course (``00_welcome``, ``00_welcome.ipynb`` or only ``00``)."""
    path = Path(notebook)
    if path.suffix == ".ipynb" and path.is_file():
        if not re.match(r"^\d\d_", path.name):
            raise BuildError(f"{notebook}: a source notebook is named NN_name.ipynb")
        return path
    name = path.name.removesuffix(".ipynb")
    known = solution_notebooks()
    matches = [p for p in known if p.stem == name]
    if not matches and re.fullmatch(r"\d\d", name):
        matches = [p for p in known if p.name.startswith(name + "_")]
    if len(matches) != 1:
        raise BuildError(f"{notebook}: unknown notebook (expected a path to a source notebook or one of: "
                         f"{', '.join(p.stem for p in known)})")
    return matches[0]


def _course_tree(source: Path) -> dict[str, bytes]:
    """Relative path inside the zip -> contents, for ``course/``."""
    files: dict[str, bytes] = {}
    for name in COURSE_FILES:
        files[f"course/{name}"] = (REPO / name).read_bytes()
    for folder in COURSE_DIRS:
        for path in sorted((REPO / folder).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and not path.name.endswith(".pyc"):
                files[f"course/{path.relative_to(REPO).as_posix()}"] = path.read_bytes()
    files[f"course/{SOLUTIONS.name}/{source.name}"] = source.read_bytes()
    return files


def build(notebook: str, out: str | Path, *, torch_index_url: str | None = None) -> Path:
    """Write the Gradescope autograder package for ``notebook`` to ``out``; return its path.

    ``torch_index_url``: a package index that setup.sh installs torch from (for example PyTorch's
    own index of CPU-only builds, much smaller than the default build); None: the default index.
    """
    source = resolve_source(notebook)
    try:
        source_nb = read_notebook(source)
    except UngradableNotebook as exc:
        raise BuildError(str(exc)) from None
    if not any(is_test_cell(c) for c in source_nb.cells):
        raise BuildError(f"{source.name}: no graded test cell (nothing for Gradescope to grade)")
    if torch_index_url and not SAFE_URL.match(torch_index_url):
        raise BuildError(f"--torch-index-url {torch_index_url!r}: not a plain URL")
    config = {"assignment": source.stem, "notebook": source.name, "secret": secrets.token_hex(32)}
    files = {
        "setup.sh": SETUP_SH.replace("{torch_index}", torch_index_url or "").encode(),
        "run_autograder": RUN_AUTOGRADER.encode(),
        CONFIG: (json.dumps(config, indent=2) + "\n").encode(),
        **_course_tree(source),
    }
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=time.localtime()[:6])
            executable = name in {"setup.sh", "run_autograder"}
            info.external_attr = (0o100755 if executable else 0o100644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    out.write_bytes(buffer.getvalue())
    return out


# --- run ---------------------------------------------------------------------------------------

def salt(secret: str, assignment: str, metadata: dict | None) -> str:
    """The grading salt: HMAC-SHA256 under ``secret`` of the submitters' user ids (sorted, so a
    group's order does not matter) and the assignment. No metadata: the ids part is empty."""
    users = (metadata or {}).get("users") if isinstance(metadata, dict) else None
    ids = sorted(str(u.get("id")) for u in users if isinstance(u, dict) and u.get("id") is not None) \
        if isinstance(users, list) else []
    return hmac.new(secret.encode(), f"{','.join(ids)}|{assignment}".encode(), hashlib.sha256).hexdigest()


def read_metadata(root: Path) -> dict | None:
    """ROOT/submission_metadata.json as a dict, or None when it is missing or unreadable."""
    try:
        data = json.loads((root / "submission_metadata.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def pick_submission(folder: Path, notebook: str) -> Path:
    """The submitted notebook: ``notebook`` by name, else the one .ipynb with its NN_ number,
    else the only .ipynb. Raises UngradableNotebook saying what was found instead."""
    found = sorted(p for p in folder.rglob("*.ipynb")
                   if p.is_file() and not SKIPPED_PARTS & set(p.relative_to(folder).parts))
    if not found:
        others = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
        what = f"found only: {', '.join(others[:10])}" if others else "the submission is empty"
        raise UngradableNotebook(f"no .ipynb notebook was submitted ({what}); submit {notebook}")
    exact = [p for p in found if p.name == notebook]
    numbered = [p for p in found if re.search(rf"(^|\D){notebook[:2]}_", p.name)]
    for matching in (exact, numbered, found):
        if len(matching) == 1:
            return matching[0]
    names = ", ".join(p.relative_to(folder).as_posix() for p in found[:10])
    raise UngradableNotebook(f"several notebooks were submitted ({names}): submit only {notebook}")


def is_hidden(cell) -> bool:
    """A test cell holding hidden tests (nbgrader removes them from the released notebook)."""
    return HIDDEN_MARKER in str(cell.get("source", ""))


def results_json(grade, source_nb) -> dict:
    """Gradescope's results.json for a grader.check Grade: one test per autograded cell (name,
    score, max_score, status, output, visibility) and the total. Cells graded by hand are left
    to Gradescope's own manual grading and named in the top-level output."""
    hidden = {grade_id(c) for c in source_nb.cells if is_test_cell(c) and is_hidden(c)}
    tests, by_hand = [], []
    for cell in grade.cells:
        if cell.manual:
            by_hand.append(f"{cell.grade_id} ({cell.max_score:g} points)")
            continue
        tests.append({"name": cell.grade_id,
                      "score": cell.score, "max_score": cell.max_score,
                      "status": "passed" if cell.passed else "failed",
                      "output": cell.message or ("passed" if cell.passed else "failed"),
                      "visibility": "after_published" if cell.grade_id in hidden else "visible"})
    auto_max = sum(t["max_score"] for t in tests)
    lines = [f"{grade.notebook}: {grade.score:g} / {auto_max:g} points from the autograder."]
    if by_hand:
        lines.append("Graded by hand, not here: " + ", ".join(by_hand) + ".")
    # Review flags and the sandbox's description are for the instructor (stdout), not the student.
    lines += [e for e in grade.errors if not e.startswith(("flagged ", "sandbox: "))]
    return {"score": grade.score, "output": "\n".join(lines), "stdout_visibility": "hidden", "tests": tests}


def run(root: Path) -> dict:
    """Grade ROOT/submission and write ROOT/results/results.json; return what was written."""
    from . import check, sandbox  # torch and the checks: imported only to grade
    results_dir = root / "results"
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / "results.json").unlink(missing_ok=True)
    config = json.loads((root / "source" / CONFIG).read_text(encoding="utf-8"))
    source = REPO / SOLUTIONS.name / config["notebook"]
    source_nb = read_notebook(source)
    try:
        try:
            path = pick_submission(root / "submission", config["notebook"])
            if path.stat().st_size > MAX_NOTEBOOK_BYTES:
                raise UngradableNotebook(f"{path.name}: {path.stat().st_size} bytes is too large for a notebook")
            grade = check.grade(path, source=source, hide=[root / "submission"],
                                salt=salt(config["secret"], config["assignment"], read_metadata(root)))
        except UngradableNotebook as exc:
            grade = check.failed_grade(config["notebook"], source_nb, _student_path(str(exc), root))
    except Exception as exc:  # noqa: BLE001 - a verdict of 0 with the reason, never a crash
        grade = check.failed_grade(config["notebook"], source_nb, f"the grader failed ({type(exc).__name__}: "
                                   f"{str(exc)[:200]}); please tell your instructor")
    results = results_json(grade, source_nb)
    _write(results_dir / "results.json", results)
    try:  # the log for the instructor; the verdict is written already
        print(check.render(grade))
        print(f"graded with the course in {REPO}; isolation: {sandbox.describe()}", flush=True)
    except OSError:
        pass
    return results


def _student_path(message: str, root: Path) -> str:
    """``message`` with the autograder's folders left out of the paths it names."""
    return message.replace(f"{(root / 'submission').resolve()}/", "").replace(f"{root / 'submission'}/", "")


def _write(path: Path, results: dict) -> None:
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, encoding="utf-8") as f:
        json.dump(results, f, indent=2, allow_nan=False)
    os.chmod(f.name, 0o644)
    os.replace(f.name, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grader.gradescope", description=(
        "Grade the submission of a Gradescope autograder run (run_autograder calls this): the "
        "notebook in ROOT/submission, graded with grader.check against the package's source "
        "notebook, the verdict written to ROOT/results/results.json in Gradescope's format. Always "
        "writes a results.json (0 points and the reason when the notebook cannot be graded)."))
    parser.add_argument("--root", default=os.environ.get("AUTOGRADER_ROOT", "/autograder"),
                        help="the autograder folder (default: $AUTOGRADER_ROOT, else /autograder)")
    args = parser.parse_args(argv)
    root = Path(args.root)
    if hasattr(sys.stdout, "reconfigure"):  # the grading log (render's marks) under any locale
        sys.stdout.reconfigure(errors="replace")
    try:
        run(root)
    except Exception as exc:  # noqa: BLE001 - the package itself is broken: say so in results.json
        (root / "results").mkdir(parents=True, exist_ok=True)
        if (root / "results" / "results.json").exists():  # graded: the failure came after the verdict
            print(f"grader.gradescope: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 1
        _write(root / "results" / "results.json", {
            "score": 0.0, "tests": [],
            "output": f"The autograder is misconfigured ({type(exc).__name__}: {str(exc)[:300]}), so "
                      "nothing was graded. This is not about your notebook: please tell your instructor."})
        print(f"grader.gradescope: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
