"""Stock nbgrader on a course folder: `nbgrader autograde` (CLI) and formgrader's Autograde button
(NbGraderAPI.autograde, in the server's process) stop before changing anything and name the
course's command, while `python -m grader course autograde` still records its grades through
nbgrader. Also: the feedback of an unreadable upload says why, and the review CSV tells repaired
submissions (benign) from flagged ones."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from conftest import NOTEBOOKS, REPO, SOLUTIONS, few_solutions, filled_notebook
from grader import check, course as workflow
from grader.nbgrader_ext import NO_VERDICT, ApplyVerdicts
from grader.notebook import grade_id, is_test_cell

COMMAND = "python -m grader course autograde"


def _course(*args):
    proc = subprocess.run([sys.executable, "-m", "grader", "course", *map(str, args)],
                          capture_output=True, text=True, cwd=REPO, timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc.stdout


def _colab_resave(dest: Path) -> None:
    filled_notebook("00_welcome.ipynb", {}, dest)
    nb = nbformat.read(dest, as_version=4)
    for cell in nb.cells:
        cell.metadata = {}
    nb.metadata = {"colab": {"provenance": []}}
    nbformat.write(nb, dest)


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """A course graded by the course's own pipeline: a solution, a Colab re-save, a corrupt
    upload and an empty file."""
    tmp = tmp_path_factory.mktemp("stock")
    root = tmp / "course"
    roster = tmp / "students.csv"
    roster.write_text("id,first_name,last_name,email\n" + "".join(
        f"{s},{s.title()},Student,{s}@example.invalid\n" for s in ("ann", "colab", "corrupt", "empty")))
    _course("init", root, "--students", roster, "--solutions", few_solutions(tmp / "solutions", "00_welcome"))
    downloads = tmp / "downloads"
    downloads.mkdir()
    filled_notebook("00_welcome.ipynb", {}, downloads / "ann_00_welcome.ipynb")
    _colab_resave(downloads / "colab_00_welcome.ipynb")
    (downloads / "corrupt_00_welcome.ipynb").write_text('{"cells": [')
    (downloads / "empty_00_welcome.ipynb").write_text("")
    _course("collect", root, "00_welcome", downloads)
    _course("autograde", root, "00_welcome", "--jobs", "2", "--timeout", "10")
    return root


def _snapshot(root: Path) -> dict:
    """Every file nbgrader's autograde could change or remove (the gradebook included)."""
    files = {}
    for folder in ("autograded", "submitted", "feedback", ".grader"):
        for path in (root / folder).rglob("*"):
            if path.is_file():
                files[path.relative_to(root)] = (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns)
    files["gradebook.db"] = hashlib.sha256((root / "gradebook.db").read_bytes()).hexdigest()
    return files


@pytest.mark.slow  # a graded course (CI); the fast tier keeps the unit tests below
def test_course_pipeline_records_grades_through_nbgrader(graded):
    scores = {}
    for student in ("ann", "colab", "corrupt", "empty"):
        nb = nbformat.read(graded / "autograded" / student / "00_welcome" / "00_welcome.ipynb", as_version=4)
        tests = [c for c in nb.cells if is_test_cell(c)]
        assert tests and all(len(c.outputs) == 1 for c in tests), student
        scores[student] = sum(c.outputs[0].get("output_type") == "stream" for c in tests)
    assert scores == {"ann": 2, "colab": 2, "corrupt": 0, "empty": 0}
    from nbgrader.api import Gradebook
    with Gradebook(f"sqlite:///{graded / 'gradebook.db'}", "gpt2course") as gradebook:
        recorded = {s: gradebook.find_submission("00_welcome", s).score for s in scores}
    assert recorded == {"ann": 2.0, "colab": 2.0, "corrupt": 0.0, "empty": 0.0}


@pytest.mark.slow  # a graded course (CI); the fast tier keeps the unit tests below
def test_stock_autograde_cli_stops_before_changing_anything(graded):
    before = _snapshot(graded)
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    for extra in (["--force"], [], ["--force", "--student=ann"],
                  # the course's staged copies, without the course's own call around them
                  ["--force", f"--CourseDirectory.submitted_directory={graded / '.grader' / 'staged'}"]):
        proc = subprocess.run([sys.executable, "-m", "nbgrader", "autograde", "00_welcome", *extra],
                              cwd=graded, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 1, (extra, proc.stderr[-3000:])
        assert f"{COMMAND} {graded} 00_welcome" in proc.stderr and "nothing was changed" in proc.stderr, extra
        assert "Removing" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr[-3000:]
        assert _snapshot(graded) == before, extra
    # The course's own runner, pointed at submitted/ instead of the staged copies, stops too.
    proc = subprocess.run([sys.executable, "-m", "grader.run_nbgrader", "autograde", "00_welcome", "--force"],
                          cwd=graded, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and "nothing was changed" in proc.stderr, proc.stderr[-3000:]
    assert _snapshot(graded) == before


@pytest.mark.slow  # a graded course (CI); the fast tier keeps the unit tests below
def test_formgrader_autograde_button_stops_before_changing_anything(graded, monkeypatch):
    from nbgrader.apps.api import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config.loader import PyFileConfigLoader

    monkeypatch.chdir(graded)  # where a Jupyter server of the course would run
    config = PyFileConfigLoader("nbgrader_config.py", path=str(graded)).load_config()
    api = NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)
    before = _snapshot(graded)
    for student in ("ann", "corrupt"):
        result = api.autograde("00_welcome", student)
        assert result["success"] is False, result
        assert f"{COMMAND} {graded} 00_welcome" in result["log"] and "nothing was changed" in result["log"]
        assert _snapshot(graded) == before, student


def _test_cell_messages(root: Path, student: str) -> list[str]:
    nb = nbformat.read(root / "autograded" / student / "00_welcome" / "00_welcome.ipynb", as_version=4)
    return [c.outputs[0]["evalue"] for c in nb.cells if is_test_cell(c)]


@pytest.mark.slow  # a graded course (CI); the fast tier keeps the unit tests below
def test_unreadable_upload_feedback_says_why(graded):
    expected = {"corrupt": "not a notebook (corrupt JSON: Expecting value at line 1, column 12)",
                "empty": "not a notebook (corrupt JSON: Expecting value at line 1, column 1)"}
    for student, why in expected.items():
        messages = _test_cell_messages(graded, student)
        assert len(messages) == 2 and all(why in m and m.startswith("not graded: ") for m in messages), messages
        # the instructor's folders stay out of the learner's feedback
        assert not any(str(graded) in m or "submitted" in m for m in messages), messages


def _apply(tmp_path: Path, verdict: dict | None) -> list[str]:
    folder = tmp_path / "verdicts" / "00_welcome"
    folder.mkdir(parents=True, exist_ok=True)
    if verdict is not None:
        (folder / "ann.json").write_text(json.dumps(verdict))
    nb = nbformat.read(NOTEBOOKS / "00_welcome.ipynb", as_version=4)
    nb, _ = ApplyVerdicts(verdict_dir=str(tmp_path / "verdicts")).preprocess(
        nb, {"nbgrader": {"assignment": "00_welcome", "student": "ann"}})
    return [c.outputs[0].get("evalue", c.outputs[0].get("text")) for c in nb.cells if is_test_cell(c)]


def test_apply_verdicts_messages(tmp_path):
    bad = {"cells": [], "errors": [f"ungradable: {tmp_path / 'in' / 'work.ipynb'}: not a notebook (no list of cells)"]}
    assert _apply(tmp_path, bad) == ["not graded: work.ipynb: not a notebook (no list of cells)"] * 2
    nothing = {"cells": [], "errors": ["ungradable: no notebook was submitted"]}
    assert _apply(tmp_path / "nothing", nothing) == ["not graded: no notebook was submitted"] * 2
    assert _apply(tmp_path / "missing", None) == [NO_VERDICT] * 2
    cells = [{"grade_id": grade_id(c), "passed": True} for c in nbformat.read(
        SOLUTIONS / "00_welcome.ipynb", as_version=4).cells if is_test_cell(c)]
    assert _apply(tmp_path / "good", {"cells": cells, "errors": []}) == ["\u2714 passed\n"] * 2


def test_review_tells_repaired_from_flagged(tmp_path):
    source = nbformat.read(SOLUTIONS / "00_welcome.ipynb", as_version=4)
    learner = nbformat.read(filled_notebook("00_welcome.ipynb", {}, tmp_path / "a.ipynb"), as_version=4)
    for cell in learner.cells:
        cell.metadata = {}
    colab = check.collect_answers(source, learner).notes + check.structure_notes(source, learner)
    tagged = nbformat.read(NOTEBOOKS / "00_welcome.ipynb", as_version=4)
    tests = [c for c in tagged.cells if is_test_cell(c)]
    tests[0].metadata["tags"] = ["skip-execution"]
    tests[1].source += "\nprint('debugging')"
    tampered = check.structure_notes(source, tagged)
    deleted = nbformat.read(NOTEBOOKS / "00_welcome.ipynb", as_version=4)
    first_test = next(c for c in deleted.cells if is_test_cell(c))
    deleted.cells = [c for c in deleted.cells if c is not first_test]
    results = [
        {"student": "colab", "score": 2.0, "max_score": 2.0, "errors": colab},
        {"student": "deleted", "score": 2.0, "max_score": 2.0, "errors": check.structure_notes(source, deleted)},
        {"student": "tampered", "score": 0.0, "max_score": 2.0, "errors": tampered},
        {"student": "flagged", "score": 2.0, "max_score": 2.0,
         "errors": ["flagged softmax: imports the course package (for review; the points stand as graded)"]},
        {"student": "crashed", "score": 0.0, "max_score": 2.0, "errors": [
            "softmax: its answer cell or a call of it ended the notebook process (os._exit, a crash, out of "
            "memory); the calls it had not answered earn nothing"]},
        {"student": "slow", "score": 0.0, "max_score": 2.0,
         "errors": ["softmax: its answer cell ran longer than the cell time limit and was interrupted"]},
        {"student": "unanswered", "score": 0.0, "max_score": 2.0,
         "errors": ["answer cell 'softmax' not found in the submission"]},
        {"student": "clean", "score": 2.0, "max_score": 2.0, "errors": []},
    ]
    assert colab and tampered and len(results[1]["errors"]) == 1
    out = workflow.write_review(tmp_path, "00_welcome", results)
    rows = {r["student_id"]: r for r in csv.DictReader(open(out))}
    got = {s: (r["flagged"], r["repaired"]) for s, r in rows.items()}
    assert got == {"colab": ("no", "yes"), "deleted": ("no", "yes"), "tampered": ("yes", "no"),
                   "flagged": ("yes", "no"), "crashed": ("yes", "no"), "slow": ("yes", "no"),
                   "unanswered": ("no", "no"), "clean": ("no", "no")}
    assert "no nbgrader metadata" in rows["colab"]["repairs"] and not rows["colab"]["reasons"]
    assert "skip-execution" in rows["tampered"]["reasons"] and "was edited" in rows["tampered"]["reasons"]
    assert "not found" in rows["unanswered"]["reasons"]


@pytest.mark.slow  # a graded course (CI); the fast tier keeps the unit tests below
def test_review_of_the_graded_course(graded):
    rows = {r["student_id"]: r for r in csv.DictReader(open(graded / "reports" / "00_welcome-review.csv"))}
    assert (rows["ann"]["flagged"], rows["ann"]["repaired"]) == ("no", "no")
    assert (rows["colab"]["flagged"], rows["colab"]["repaired"]) == ("no", "yes"), rows["colab"]
    for student in ("corrupt", "empty"):
        assert rows[student]["flagged"] == "yes" and "ungradable" in rows[student]["reasons"], rows[student]
