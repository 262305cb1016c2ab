"""Shared helpers of the test suite."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import nbformat
import pytest

REPO = Path(__file__).resolve().parent.parent
SOLUTIONS = REPO / "solutions"
NOTEBOOKS = REPO / "notebooks"
NOTEBOOK_NAMES = sorted(p.name for p in SOLUTIONS.glob("[0-9][0-9]_*.ipynb"))
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


@pytest.fixture
def no_network(monkeypatch):
    """Only addresses on this machine may be opened; anything else fails the test.
    Test modules that could reach the network use it for every test:
    ``pytestmark = pytest.mark.usefixtures("no_network")``."""
    real = urllib.request.urlopen

    def guarded(request, *args, **kwargs):
        url = request.full_url if isinstance(request, urllib.request.Request) else request
        if urlparse(url).hostname not in LOCAL_HOSTS:
            raise AssertionError(f"a test tried to open {url}")
        return real(request, *args, **kwargs)

    monkeypatch.setattr(urllib.request, "urlopen", guarded)


def nbgrader(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def answer_cells(nb) -> dict[str, str]:
    return {nbgrader(c)["grade_id"]: c.source for c in nb.cells if nbgrader(c).get("solution")}


def graded_cells(nb) -> dict[str, float]:
    return {nbgrader(c)["grade_id"]: nbgrader(c).get("points", 0) for c in nb.cells
            if nbgrader(c).get("grade") and not nbgrader(c).get("solution")}


def filled_notebook(name: str, answers: dict[str, str], dest: Path) -> Path:
    """The learner notebook ``name`` with the given answer cells filled in, the others solved.

    Answer cells not named in ``answers`` get the solution's code, so a test changes one
    exercise at a time.
    """
    learner = nbformat.read(NOTEBOOKS / name, as_version=4)
    solved = answer_cells(nbformat.read(SOLUTIONS / name, as_version=4))
    for cell in learner.cells:
        gid = nbgrader(cell).get("grade_id")
        if nbgrader(cell).get("solution"):
            cell.source = answers.get(gid, solved[gid])
    dest.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(learner, dest)
    return dest


def apply_edit(path: Path, edit: str | None) -> None:
    """A structural edit a learner (or a tool) makes: "tag_tests:<tag>" tags every test cell,
    "delete_tests" deletes them and strips every cell's metadata."""
    nb = nbformat.read(path, as_version=4)
    if edit and edit.startswith("tag_tests:"):
        for cell in nb.cells:
            if nbgrader(cell).get("grade"):
                cell.metadata["tags"] = [edit.split(":", 1)[1]]
    elif edit == "delete_tests":
        nb.cells = [c for c in nb.cells if not nbgrader(c).get("grade")]
        for cell in nb.cells:
            cell.metadata = {}
    elif edit:
        raise ValueError(edit)
    nbformat.write(nb, path)


def grade_json(path: Path, *extra: str) -> dict:
    proc = subprocess.run([sys.executable, "-m", "grader", "check", str(path), "--json", *extra],
                          capture_output=True, text=True, cwd=REPO, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def grade_in_process(path: Path) -> dict:
    """What `python -m grader check PATH --json` prints, from grader.check.grade called in this
    process (the learner's code still runs in the sandbox; this saves a Python and torch
    start-up per notebook). The CLI itself is covered by tests/test_grader_cli.py."""
    from grader.check import grade
    return grade(path).to_json()


def exercise_scores(result: dict) -> dict[str, tuple[float, float]]:
    """grade_id of each test cell -> (score, max_score)."""
    return {c["grade_id"]: (c["score"], c["max_score"]) for c in result["cells"]}


@pytest.fixture(params=NOTEBOOK_NAMES)
def notebook_name(request):
    return request.param
