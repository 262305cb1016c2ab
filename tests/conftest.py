"""Shared helpers of the test suite."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import urllib.request
from queue import Empty
from pathlib import Path
from urllib.parse import urlparse

import grader  # noqa: F401 - first: it keeps a slow optional import of nbformat's out (grader/__init__.py)
import nbformat
import pytest
from nbclient import NotebookClient

from grader.notebook import grade_id, is_answer_cell, is_test_cell, nbgrader_meta as nbgrader
from grader.paths import NOTEBOOKS, REPO, SOLUTIONS, solution_notebooks

NOTEBOOK_NAMES = [p.name for p in solution_notebooks()]
# The solution notebooks that build an ipywidget (the token explorer, the attention explorers, the
# sampling widget): `make test` runs these under Colab's ipywidgets 7.7.1
# (tests/notebooks/test_colab_widgets7.py) and the others with this environment's ipywidgets 8
# (tests/notebooks/test_notebooks_execute.py); the slow tier runs every notebook both ways.
WIDGET_NOTEBOOKS = [name for name in NOTEBOOK_NAMES if any(
    builder in (SOLUTIONS / name).read_text() for builder in ("token_explorer", "attention_explorer", "sampling_widget"))]
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


class Client(NotebookClient):
    """nbclient's NotebookClient, waiting for each reply in short polls.

    nbclient plays the front end of Output widgets by sending their state to the kernel on the
    shell socket while it waits on that socket for the cell's reply. ZeroMQ signals a socket's
    readiness edge-triggered, so under load that send can swallow the wake-up for the reply: the
    cell then "takes" the whole timeout and succeeds (seen here: 180 s instead of 1 s for
    notebook 03's attention explorer under Colab's ipywidgets 7, whenever both cores were busy).
    Polling in short steps looks at the socket again and finds the reply at once.
    """

    async def async_start_new_kernel_client(self):
        kc = await super().async_start_new_kernel_client()
        shell = kc.shell_channel
        get = shell.get_msg

        async def get_msg(timeout=None):
            deadline = None if timeout is None else time.monotonic() + timeout
            while True:
                step = 0.5 if deadline is None else max(0.0, min(0.5, deadline - time.monotonic()))
                try:
                    return await get(timeout=step)
                except Empty:
                    if deadline is not None and time.monotonic() >= deadline:
                        raise

        shell.get_msg = get_msg
        return kc


def answer_cells(nb) -> dict[str, str]:
    """grade_id -> source of every answer cell."""
    return {grade_id(c): c.source for c in nb.cells if is_answer_cell(c)}


def graded_cells(nb) -> dict[str, float]:
    """grade_id -> points of every test cell (as written in the metadata)."""
    return {grade_id(c): nbgrader(c).get("points", 0) for c in nb.cells if is_test_cell(c)}


def few_solutions(folder: Path, *names: str) -> Path:
    """A copy of the named notebooks of solutions/ in ``folder``: `course init --solutions` with
    it releases only those, in seconds rather than the whole course's minute."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copy(SOLUTIONS / f"{name}.ipynb", folder)
    return folder


def filled_notebook(name: str, answers: dict[str, str], dest: Path) -> Path:
    """The learner notebook ``name`` with the given answer cells filled in, the others solved.

    Answer cells not named in ``answers`` get the solution's code, so a test changes one
    exercise at a time.
    """
    learner = nbformat.read(NOTEBOOKS / name, as_version=4)
    solved = answer_cells(nbformat.read(SOLUTIONS / name, as_version=4))
    for cell in learner.cells:
        if is_answer_cell(cell):
            cell.source = answers.get(grade_id(cell), solved[grade_id(cell)])
    dest.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(learner, dest)
    return dest


def apply_edit(path: Path, edit: str | None) -> None:
    """A structural edit a learner (or a tool) makes: "tag_tests:<tag>" tags every test cell,
    "delete_tests" deletes them and strips every cell's metadata, "scratch_cell:<code>" adds a
    code cell without metadata at the end, "surrogate:<grade_id>" puts a lone surrogate (valid
    in notebook JSON, not in UTF-8) in a string of that answer cell."""
    if edit and edit.startswith("surrogate:"):
        data = json.loads(path.read_text())
        for cell in data["cells"]:
            if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == edit.split(":", 1)[1]:
                source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
                cell["source"] = source + "\nNOTE = 'broken \ud800 text'\n"
        path.write_text(json.dumps(data))  # ensure_ascii: the surrogate is written as \\ud800
        return
    nb = nbformat.read(path, as_version=4)
    if edit and edit.startswith("scratch_cell:"):
        nb.cells.append(nbformat.v4.new_code_cell(edit.split(":", 1)[1]))
        nb.cells[-1].metadata = {}
    elif edit and edit.startswith("tag_tests:"):
        for cell in nb.cells:
            if is_test_cell(cell):
                cell.metadata["tags"] = [edit.split(":", 1)[1]]
    elif edit == "delete_tests":
        nb.cells = [c for c in nb.cells if not is_test_cell(c)]
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


def grade_in_process(path: Path, **options) -> dict:
    """What `python -m grader check PATH --json` prints, from grader.check.grade called in this
    process (the learner's code still runs in the sandbox; this saves a Python and torch
    start-up per notebook). The CLI itself is covered by tests/grader/test_grader_cli.py.
    ``options``: grade()'s keywords (timeout=, call_timeout=, ...)."""
    from grader.check import grade
    return grade(path, **options).to_json()


def exercise_scores(result: dict) -> dict[str, tuple[float, float]]:
    """grade_id of each test cell -> (score, max_score)."""
    return {c["grade_id"]: (c["score"], c["max_score"]) for c in result["cells"]}


@pytest.fixture(params=NOTEBOOK_NAMES)
def notebook_name(request):
    return request.param
