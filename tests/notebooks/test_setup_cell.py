"""The notebooks' setup cell (grader/setup_cell.py), run as Colab runs it.

Colab's branch of the cell runs in IPython with a stand-in ``google.colab`` module, in a Python
that cannot import the course (no site-packages .pth files, so not this checkout's editable
install), against a local git repository standing in for the public one: git's
``url.<base>.insteadOf`` (in a config of the test's own, through GIT_CONFIG_GLOBAL) sends
``https://github.com/...`` to a folder of bare repositories. Nothing touches the network or
``/content``: the cell clones into ``$GPT2COURSE_CLONE_DIR``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import nbformat
import pytest

from conftest import REPO

from grader import links, setup_cell
from grader.paths import NOTEBOOKS, SOLUTIONS, solution_notebooks

FORK = ("someone-else", "their-course", "fall-term")   # a fork, on a branch that is not its default

# Runs in the child: make sure the course is not importable, pretend to be Colab, run the cell.
DRIVER = r"""
import importlib.util, json, sys, types
assert importlib.util.find_spec("gpt2course") is None, "the course is importable before the cell ran"
sys.modules["google"] = types.ModuleType("google")
sys.modules["google.colab"] = types.ModuleType("google.colab")
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
result = shell.run_cell(open(sys.argv[1]).read())
report = {"ok": result.success, "error": type(result.error_in_exec).__name__ if result.error_in_exec else None}
if result.success:
    import gpt2course
    from gpt2course.tokenizer import gpt2_encoding
    report.update(file=gpt2course.__file__, tokens=gpt2_encoding().encode("Hello world"))
print("REPORT " + json.dumps(report))
"""


def _git(*args, cwd=None, env=None):
    subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True)


@pytest.fixture(scope="module")
def colab(tmp_path_factory):
    """A bare repository of the course (the checkout's gpt2course/ and data/) at the place the
    rewritten URL of ``FORK`` leads to: its default branch ``main``, and ``fall-term`` one commit
    ahead with a marker file. Returns a function running a setup cell Colab-style."""
    tmp = tmp_path_factory.mktemp("colab")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "PYTHON"))}
    env.update(GIT_CONFIG_GLOBAL=str(tmp / "gitconfig"), GIT_CONFIG_NOSYSTEM="1", HOME=str(tmp),
               GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.org",
               GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.org", GIT_TERMINAL_PROMPT="0",
               IPYTHONDIR=str(tmp / "ipython"), MPLBACKEND="Agg", GPT2COURSE_FAST="1")
    remotes = tmp / "remotes"
    (tmp / "gitconfig").write_text(
        f'[url "{remotes.as_uri()}/"]\n\tinsteadOf = https://github.com/\n[init]\n\tdefaultBranch = main\n')
    work = tmp / "work"
    work.mkdir()
    for folder in ("gpt2course", "data"):
        shutil.copytree(REPO / folder, work / folder, ignore=shutil.ignore_patterns("__pycache__", "_data"))
    _git("init", "--quiet", cwd=work, env=env)
    _git("add", ".", cwd=work, env=env)
    _git("commit", "--quiet", "-m", "course", cwd=work, env=env)
    _git("checkout", "--quiet", "-b", FORK[2], cwd=work, env=env)
    (work / "FALL_TERM").write_text("the fork's branch\n")
    _git("add", "FALL_TERM", cwd=work, env=env)
    _git("commit", "--quiet", "-m", "fall term", cwd=work, env=env)
    _git("checkout", "--quiet", "main", cwd=work, env=env)
    (remotes / FORK[0]).mkdir(parents=True)
    _git("clone", "--quiet", "--bare", str(work), str(remotes / FORK[0] / FORK[1]), env=env)
    here = tmp / "notebook"   # the notebook's folder: no course folder in it or above it
    here.mkdir()
    # This environment's packages, without its .pth files (the editable install of the course).
    python = [sys.executable, "-S", "-c",
              f"import sys; sys.path.append({sysconfig.get_paths()['purelib']!r}); exec(sys.argv.pop(1))"]

    def run(cell: str, clone_dir: Path) -> tuple[dict, list[str]]:
        path = tmp / "cell.py"
        path.write_text(cell)
        proc = subprocess.run([*python, DRIVER, str(path)], cwd=here, capture_output=True, text=True,
                              timeout=300, env={**env, setup_cell.CLONE_DIR_ENV: str(clone_dir)})
        lines = proc.stdout.splitlines()
        reports = [line for line in lines if line.startswith("REPORT ")]
        assert proc.returncode == 0 and reports, proc.stdout[-2000:] + proc.stderr[-2000:]
        return json.loads(reports[-1][len("REPORT "):]), [line for line in lines if not line.startswith("REPORT ")]

    return run


def _setup_cell(notebook: Path, repo: tuple[str, str, str]) -> str:
    """The setup cell of ``notebook`` as `make notebooks` writes it for ``repo``."""
    nb = nbformat.read(notebook, as_version=4)
    cell, = [c for c in nb.cells if c.cell_type == "code" and setup_cell.is_setup_cell(c.source)]
    return links.notebook_text(cell.source, notebook.stem, "code", repo)


def test_colab_clones_the_forks_branch(colab, tmp_path):
    clone = tmp_path / "content" / FORK[1]
    report, out = colab(_setup_cell(SOLUTIONS / "00_welcome.ipynb", FORK), clone)
    assert report["ok"], out
    assert Path(report["file"]).resolve() == (clone / "gpt2course" / "__init__.py").resolve()
    assert (clone / "FALL_TERM").is_file(), "cloned the default branch, not REPO_BRANCH"
    assert report["tokens"] == [15496, 995]   # the clone's data/ is there and verified
    assert any(line.startswith("torch ") for line in out), out


@pytest.mark.parametrize("repo, said", [
    (("someone-else", "no-such-course", "main"), "no-such-course"),
    (("someone-else", "their-course", "no-such-branch"), "no-such-branch"),
])
def test_a_failed_clone_stops_with_one_line(colab, tmp_path, repo, said):
    clone = tmp_path / "content" / repo[1]
    report, out = colab(_setup_cell(SOLUTIONS / "03_attention.ipynb", repo), clone)
    assert not report["ok"] and report["error"] == "SetupError"
    url = links.repo_url(repo[0], repo[1])
    assert len(out) == 1, "\n".join(out)
    line, = out
    assert line.startswith("SetupError: could not clone") and url in line and said in line, line
    for hint in ("network", "public", "REPO_URL / REPO_BRANCH", "make notebooks"):
        assert hint in line, line
    assert not clone.exists()


def test_every_notebook_has_the_one_setup_cell():
    """solutions/ and the generated notebooks/ carry the template, filled from the setting."""
    import gpt2course

    expected = setup_cell.source(links.repo_url(gpt2course.REPO_OWNER, gpt2course.REPO_NAME),
                                 gpt2course.REPO_BRANCH)
    for folder in (SOLUTIONS, NOTEBOOKS):
        for path in solution_notebooks(folder):
            nb = nbformat.read(path, as_version=4)
            cells = [c.source for c in nb.cells if c.cell_type == "code" and setup_cell.is_setup_cell(c.source)]
            assert len(cells) == 1 and cells[0].startswith(expected), f"{path.name}: run `make notebooks`"


def test_the_rewrite_undoes_a_hand_edit():
    """`make notebooks` gives a hand-edited setup cell back the template and keeps the
    notebook's own imports after it (so `build --check` sees the edit)."""
    path = SOLUTIONS / "05_layernorm_and_mlp.ipynb"
    nb = nbformat.read(path, as_version=4)
    cell = next(c for c in nb.cells if c.cell_type == "code" and setup_cell.is_setup_cell(c.source))
    edited = cell.source.replace('"--depth", "1", "--branch", REPO_BRANCH,', '"--depth", "1",')
    assert edited != cell.source
    repo = links.settings()
    assert links.notebook_text(edited, path.stem, "code", repo) == cell.source
    assert cell.source.endswith("import matplotlib.pyplot as plt")


def test_readme_clone_command_follows_the_setting():
    """The Quick start's clone command is rewritten with the badges (`make notebooks`)."""
    import gpt2course

    readme = links.README.read_text(encoding="utf-8")
    here = links.clone_command(gpt2course.REPO_OWNER, gpt2course.REPO_NAME, gpt2course.REPO_BRANCH)
    assert readme.count(here) == 1
    moved = links.readme_text(readme, FORK)
    assert links.clone_command(*FORK) in moved and here not in moved
    assert "git clone --branch fall-term https://github.com/someone-else/their-course\ncd their-course" in moved
