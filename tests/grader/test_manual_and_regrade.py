"""Cells graded by hand (written answers, tasks) and regrades of a class.

A written answer is nbgrader's "manually graded answer" (``solution`` and ``grade``): the
learner's text must reach the graded copy untouched, count in max_score, be marked for grading
by hand in the gradebook, and never be run by grader.check. A regrade grades only new or changed
submissions (or those asked for) and keeps what an instructor graded by hand.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import nbformat
import pytest

from conftest import REPO, SOLUTIONS, answer_cells, grade_json
from grader import course as workflow
from grader.notebook import grade_id, is_answer_cell
from grader.regrade import gradebook

QUESTION = "### Written question\n\nWhy does subtracting the maximum keep softmax stable?"
ANSWER = "The largest exponent becomes exp(0) = 1, so nothing overflows.\n\n*My own words.*"


def _meta(gid: str, **flags) -> dict:
    meta = {"grade": False, "grade_id": gid, "locked": False, "schema_version": 3, "solution": False,
            "task": False}
    return {"nbgrader": meta | flags}


def with_manual_cells(nb, *, code_answer: bool = False):
    """``nb`` (00_welcome) with a question, its written answer (2 points) and a task (1 point)
    after the softmax tests; ``code_answer`` adds a code cell graded by hand (1 point) that
    fails if it is ever run."""
    cells = [
        nbformat.v4.new_markdown_cell(QUESTION, metadata=_meta("md_why", locked=True)),
        nbformat.v4.new_markdown_cell("Model answer: exp never sees a positive number.",
                                      metadata=_meta("why_stable", grade=True, solution=True, points=2)),
        nbformat.v4.new_markdown_cell("### Task\n\nPlot softmax at three temperatures.",
                                      metadata=_meta("task_plot", task=True, points=1, locked=True)),
    ]
    if code_answer:
        cells.append(nbformat.v4.new_code_cell("raise SystemExit('a cell graded by hand was run')",
                                               metadata=_meta("code_by_hand", grade=True, solution=True, points=1)))
    at = next(i for i, c in enumerate(nb.cells) if grade_id(c) == "test_softmax_hidden") + 1
    nb.cells[at:at] = cells
    return nb


def _run(*args) -> str:
    proc = subprocess.run([sys.executable, "-m", "grader", "course", *map(str, args)],
                          capture_output=True, text=True, cwd=REPO, timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc.stdout


def _submission(course, written: str | None, dest, *, strip_metadata: bool = False):
    """The released notebook, softmax solved, the written answer filled in (None: untouched)."""
    nb = nbformat.read(course / "release" / "00_welcome" / "00_welcome.ipynb", as_version=4)
    solved = answer_cells(nbformat.read(SOLUTIONS / "00_welcome.ipynb", as_version=4))
    for cell in nb.cells:
        if is_answer_cell(cell):
            cell.source = solved[grade_id(cell)]
        if grade_id(cell) == "why_stable" and written is not None:
            cell.source = written
    if strip_metadata:  # a Colab re-save
        for cell in nb.cells:
            cell.metadata = {}
    dest.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, dest)


def _graded_text(course, student: str) -> str:
    nb = nbformat.read(course / "autograded" / student / "00_welcome" / "00_welcome.ipynb", as_version=4)
    return next(c.source for c in nb.cells if grade_id(c) == "why_stable")


def _grades(course, student: str) -> dict:
    with gradebook(course) as gb:
        submission = gb.find_submission("00_welcome", student)
        cells = {g.name: g.to_dict() for nb in submission.notebooks for g in nb.grades}
        cells["total"] = {"score": submission.score, "max_score": submission.max_score}
        cells["comment"] = gb.find_comment("why_stable", "00_welcome", "00_welcome", student).manual_comment
        return cells


def _mtimes(course) -> dict:
    verdicts = course / ".grader" / "verdicts" / "00_welcome"
    return {p.stem: p.stat().st_mtime_ns for p in verdicts.glob("*.json")}


@pytest.mark.slow  # CI (make test-all) runs it; make test stays a few minutes
def test_written_answers_are_graded_by_hand_and_survive_regrades(tmp_path):
    course = tmp_path / "course"
    roster = tmp_path / "students.csv"
    roster.write_text("id,first_name,last_name,email\n" + "".join(
        f"{s},{s.title()},Student,{s}@example.invalid\n" for s in ("ann", "bob", "cas")))
    solutions = tmp_path / "solutions"   # the course's 00_welcome with a written answer and a task
    solutions.mkdir()
    nbformat.write(with_manual_cells(nbformat.read(SOLUTIONS / "00_welcome.ipynb", as_version=4)),
                   solutions / "00_welcome.ipynb")
    _run("init", course, "--students", roster, "--solutions", solutions)

    downloads = tmp_path / "downloads"
    _submission(course, ANSWER, downloads / "ann_00_welcome.ipynb")
    _submission(course, None, downloads / "bob_00_welcome.ipynb")
    _submission(course, "Colab answer: the max is subtracted.", downloads / "cas_00_welcome.ipynb",
                strip_metadata=True)
    _run("collect", course, "00_welcome", downloads)
    _run("autograde", course, "00_welcome", "--jobs", "2", "--timeout", "20")

    # The written answers reach the graded copies untouched (cas's by position: no metadata).
    assert _graded_text(course, "ann") == ANSWER
    assert _graded_text(course, "cas") == "Colab answer: the max is subtracted."
    assert _graded_text(course, "bob") == "YOUR ANSWER HERE"
    ann = _grades(course, "ann")
    assert ann["why_stable"]["needs_manual_grade"] and ann["why_stable"]["auto_score"] is None
    assert ann["task_plot"]["needs_manual_grade"]
    assert ann["total"] == {"score": 2.0, "max_score": 5.0}
    assert _grades(course, "cas")["why_stable"]["needs_manual_grade"]
    bob = _grades(course, "bob")["why_stable"]  # left as released: nbgrader's "no response", 0
    assert bob["auto_score"] == 0.0 and not bob["needs_manual_grade"]
    review = {r["student_id"]: r for r in csv.DictReader(open(course / "reports" / "00_welcome-review.csv"))}
    assert {r["max_score"] for r in review.values()} == {"5.0"}
    verdict = json.loads((course / ".grader" / "verdicts" / "00_welcome" / "ann.json").read_text())
    by_hand = {c["grade_id"]: c for c in verdict["cells"] if c.get("manual")}
    assert set(by_hand) == {"why_stable", "task_plot"}
    assert all(c["score"] is None and c["passed"] is None for c in by_hand.values())
    assert verdict["score"] == 2.0 and verdict["max_score"] == 5.0

    # The instructor grades by hand (as formgrader does) and overrides a test cell.
    with gradebook(course) as gb:
        for cell, score in (("why_stable", 1.5), ("task_plot", 1.0)):
            grade = gb.find_grade(cell, "00_welcome", "00_welcome", "ann")
            grade.manual_score, grade.needs_manual_grade = score, False
        gb.find_grade("test_softmax", "00_welcome", "00_welcome", "ann").extra_credit = 0.5
        gb.find_comment("why_stable", "00_welcome", "00_welcome", "ann").manual_comment = "Well put."
        gb.db.commit()
    graded_by_hand = _grades(course, "ann")
    assert graded_by_hand["total"] == {"score": 5.0, "max_score": 5.0}

    # Nothing changed: nothing is graded again, nbgrader does not run.
    before, autograded = _mtimes(course), (course / "autograded" / "bob" / "00_welcome" / "00_welcome.ipynb")
    stamp = autograded.stat().st_mtime_ns
    assert "3 submissions of 00_welcome unchanged" in _run("autograde", course, "00_welcome")
    assert _mtimes(course) == before and autograded.stat().st_mtime_ns == stamp

    # --student regrades that one; nbgrader's --force would mark the graded answer as needing
    # a grade again: the grades given by hand, and their "graded" state, are kept.
    _run("autograde", course, "00_welcome", "--student", "ann", "--timeout", "20")
    after = _mtimes(course)
    assert after["ann"] != before["ann"] and after["bob"] == before["bob"] and after["cas"] == before["cas"]
    assert autograded.stat().st_mtime_ns == stamp
    assert _grades(course, "ann") == graded_by_hand

    _run("autograde", course, "00_welcome", "--all", "--jobs", "2", "--timeout", "20")
    assert all(_mtimes(course)[s] != after[s] for s in ("ann", "bob", "cas"))
    assert _grades(course, "ann") == graded_by_hand

    # A changed submission is graded again by default, alone; its new answer needs a new look,
    # and the grades given by hand stay until the instructor changes them.
    before = _mtimes(course)
    _submission(course, ANSWER + "\n\nEdited after the deadline.", downloads / "ann_00_welcome.ipynb")
    _run("collect", course, "00_welcome", downloads)
    out = _run("autograde", course, "00_welcome", "--timeout", "20")
    assert "2 submissions of 00_welcome unchanged" in out
    after = _mtimes(course)
    assert after["ann"] != before["ann"] and after["bob"] == before["bob"]
    assert _graded_text(course, "ann").endswith("Edited after the deadline.")
    regraded = _grades(course, "ann")
    assert regraded["why_stable"]["manual_score"] == 1.5 and regraded["why_stable"]["needs_manual_grade"]
    assert regraded["test_softmax"]["extra_credit"] == 0.5 and regraded["comment"] == "Well put."
    assert regraded["total"] == {"score": 5.0, "max_score": 5.0}


def test_check_lists_cells_graded_by_hand_and_never_runs_them(tmp_path):
    source = tmp_path / "source" / "00_welcome.ipynb"
    source.parent.mkdir()
    nbformat.write(with_manual_cells(nbformat.read(SOLUTIONS / "00_welcome.ipynb", as_version=4),
                                     code_answer=True), source)
    learner = tmp_path / "00_welcome.ipynb"
    nb = nbformat.read(source, as_version=4)
    for cell in nb.cells:
        if grade_id(cell) == "why_stable":
            cell.source = ANSWER
    nbformat.write(nb, learner)

    report = grade_json(learner, "--source", str(source))
    assert report["score"] == 2.0 and report["max_score"] == 6.0, report
    manual = {c["grade_id"]: c for c in report["cells"] if c.get("manual")}
    assert set(manual) == {"why_stable", "task_plot", "code_by_hand"}
    assert all(c["score"] is None and c["passed"] is None for c in manual.values())
    assert not any("graded by hand was run" in e for e in report["errors"]), report["errors"]

    text = subprocess.run([sys.executable, "-m", "grader", "check", str(learner), "--source", str(source)],
                          capture_output=True, text=True, cwd=REPO, timeout=600).stdout
    assert "2 / 6 (4 of them to be graded by hand)" in text
    assert "why_stable" in text and "written answer: to be graded by hand" in text


def test_written_answer_found_by_grade_id_or_position():
    from grader.check import collect_answers

    source = with_manual_cells(nbformat.read(SOLUTIONS / "00_welcome.ipynb", as_version=4))
    learner = nbformat.reads(nbformat.writes(source), as_version=4)
    for cell in learner.cells:
        if grade_id(cell) == "why_stable":
            cell.source = ANSWER
    assert collect_answers(source, learner).written == {"why_stable": ANSWER}
    for cell in learner.cells:
        cell.metadata = {}
    found = collect_answers(source, learner)
    assert found.written == {"why_stable": ANSWER}
    assert any("matched by its position" in note for note in found.notes)
    # The answer cell deleted: the cell after the question is the task, not an answer.
    learner.cells = [c for c in learner.cells if c.source != ANSWER]
    found = collect_answers(source, learner)
    assert found.written == {} and any("'why_stable' not found" in note for note in found.notes)


def test_fingerprint_follows_the_submission_its_timestamp_and_the_source(tmp_path):
    import pytest

    from grader import regrade

    folder = tmp_path / "submitted" / "ann" / "00_welcome"
    folder.mkdir(parents=True)
    (folder / "00_welcome.ipynb").write_text("{}")
    (folder / "timestamp.txt").write_text("2026-10-01 10:00:00.000000 UTC")
    source = tmp_path / "source" / "00_welcome" / "00_welcome.ipynb"
    source.parent.mkdir(parents=True)
    source.write_text("{}")
    seen = {regrade.fingerprint(tmp_path, "00_welcome", "ann")}
    assert seen == {regrade.fingerprint(tmp_path, "00_welcome", "ann")}  # the same files, the same print
    for path, text in ((folder / "00_welcome.ipynb", '{"cells": []}'),
                       (folder / "timestamp.txt", "2026-10-02 10:00:00.000000 UTC"), (source, '{"x": 1}')):
        path.write_text(text)
        seen.add(regrade.fingerprint(tmp_path, "00_welcome", "ann"))
    assert len(seen) == 4
    with pytest.raises(SystemExit, match="no submission of 00_welcome from zed"):
        workflow.autograde(tmp_path, "00_welcome", students=["zed"])
