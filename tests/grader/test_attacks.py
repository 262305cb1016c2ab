"""The attack and fault corpora (tests/attacks/corpus.py) through grader.check.grade, as
`python -m grader check` runs it (in this process, to save a start-up per entry).

Attacks gain 0 points on what they target and are reported; faults get a clear verdict and the
grading completes. Each entry is graded in its own run with short time limits.

`make test` runs every entry through a warm grading worker (tests/grader/test_worker.py, the path
`course autograde` takes) and, here, the entries that reach for what only a sandbox per
submission has (its runner process, restarted when a learner's process ends it); the slow tier,
which CI runs, takes every entry here too. Where no warm worker can run (not root, or no
bubblewrap), `make test` takes every entry here.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import shutil
import tempfile
from pathlib import Path

import nbformat
import pytest

from attacks.corpus import ATTACKS, FAULTS
from conftest import REPO, SOLUTIONS, answer_cells, apply_edit, filled_notebook, grade_in_process


@contextlib.contextmanager
def _second_clone():
    """A copy of the course's reference code outside this checkout and outside /tmp (where
    another clone or download would be), readable by anyone."""
    folder = Path(tempfile.mkdtemp(dir="/var/tmp", prefix="gpt2course-second-clone-"))
    try:
        shutil.copytree(REPO / "gpt2course" / "reference", folder / "gpt2course" / "reference")
        os.chmod(folder, 0o755)
        yield folder
    finally:
        shutil.rmtree(folder)


def _expand(source: str, solved: dict[str, str]) -> str:
    """``@SOLUTION:name@`` in an entry's source: the solution's answer cell for ``name``;
    ``@WIRE@``: the source of the harness's encoder, as a string literal (it is public)."""
    from gpt2course.checks import protocol, wire
    source = source.replace("@WIRE@", repr(inspect.getsource(wire) + "\n\n" + inspect.getsource(protocol)))
    for name, answer in solved.items():
        source = source.replace(f"@SOLUTION:{name}@", answer)
    assert "@SOLUTION:" not in source, source
    return source


def _assert_kept(name, entry, result):
    for kept in entry.get("keeps", []):
        for cell in _target_cells(result, kept):
            assert cell["passed"], (name, kept, cell)


def _grade(entry, tmp_path):
    with contextlib.ExitStack() as stack:
        clone = stack.enter_context(_second_clone()) if entry.get("setup") == "second_clone" else None
        solved = answer_cells(nbformat.read(SOLUTIONS / entry["notebook"], as_version=4))
        answers = {k: _expand(v, solved).replace("@REPO@", str(REPO)).replace("@CLONE@", str(clone))
                   for k, v in entry["answers"].items()}
        path = filled_notebook(entry["notebook"], answers, tmp_path / entry["notebook"])
        apply_edit(path, entry.get("edit"))
        return grade_in_process(path, timeout=15, call_timeout=5)


def _target_cells(result, target):
    cells = [c for c in result["cells"]
             if c["grade_id"] == f"test_{target}" or c["grade_id"].startswith(f"test_{target}_hidden")]
    assert cells, target
    return cells


# The share of the corpora graded here in `make test` (see the module docstring).
FAST = {"os_exit", "delete_tests", "later_cell_writes_earlier_records", "answer_cell_kills_the_runner",
        "crash_at_top_level_spares_others", "process_left_behind_kills_the_runner_later"}


def _names(kind):
    # Where no warm worker can run (not root, no bubblewrap: test_worker.py skips), every entry
    # is graded here in `make test` too.
    from grader import sandbox
    every = not sandbox.warm_capable()
    return [pytest.param(name, marks=() if every or name in FAST else pytest.mark.slow) for name in sorted(kind)]


@pytest.mark.parametrize("name", _names(ATTACKS))
def test_attack_gains_nothing_and_is_reported(name, tmp_path):
    entry = ATTACKS[name]
    result = _grade(entry, tmp_path)
    for target in entry["targets"]:
        for cell in _target_cells(result, target):
            assert cell["score"] == 0, (name, cell)
    report = " | ".join(result["errors"])
    assert entry["report"] in report, f"{name}: {report!r}"
    _assert_kept(name, entry, result)


@pytest.mark.parametrize("name", _names(FAULTS))
def test_fault_gets_a_clear_verdict(name, tmp_path):
    entry = FAULTS[name]
    result = _grade(entry, tmp_path)
    json.dumps(result)
    for target in entry["targets"]:
        for cell in _target_cells(result, target):
            assert cell["score"] == 0 and cell["message"], (name, cell)
    text = " | ".join(result["errors"] + [c["message"] for t in entry["targets"] for c in _target_cells(result, t)])
    expected = entry.get("report") or entry.get("message")
    assert expected in text, f"{name}: {text!r}"
    _assert_kept(name, entry, result)
