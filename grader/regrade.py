"""What a regrade of a class keeps (used by grader.course.autograde).

- A fingerprint per submission, in ``.grader/verdicts/<assignment>/<student>.fingerprint`` next
  to its verdict: a hash of the submitted files (notebook and timestamp) and of the course's
  source notebook. A submission whose fingerprint is unchanged was graded already.
- The grades an instructor gave by hand (formgrader or nbgrader's Gradebook API): manual
  scores, extra credit, manual comments. ``nbgrader autograde --force`` keeps those rows but sets
  ``needs_manual_grade`` again on every cell with a manual score; ``restore_overrides`` puts back
  whatever the run changed, and the "graded" state of submissions that did not change.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from .roster import gradebook

Overrides = dict[tuple[str, str, str, str], dict]  # (kind, student, notebook, cell) -> values


def fingerprint(root: Path, assignment: str, student: str) -> str:
    """A hash of what ``student`` handed in for ``assignment`` and of the source it is graded on."""
    digest = hashlib.sha256()
    folder = root / "submitted" / student / assignment
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(f"{path.relative_to(folder).as_posix()}\0{path.stat().st_size}\0".encode())
        digest.update(path.read_bytes())
    source = root / "source" / assignment / f"{assignment}.ipynb"
    digest.update(b"source\0" + (source.read_bytes() if source.is_file() else b""))
    return digest.hexdigest()


def _fingerprint_file(verdicts: Path, student: str) -> Path:
    return verdicts / f"{student}.fingerprint"


def stored_fingerprint(verdicts: Path, student: str) -> str | None:
    try:
        return _fingerprint_file(verdicts, student).read_text().strip()
    except OSError:
        return None


def store_fingerprint(verdicts: Path, student: str, value: str) -> None:
    verdicts.mkdir(parents=True, exist_ok=True)
    _fingerprint_file(verdicts, student).write_text(value + "\n")


def _submissions(gb, assignment: str, students: list[str]):
    from nbgrader.api import MissingEntry

    for student in students:
        try:
            submission = gb.find_submission(assignment, student)
        except MissingEntry:
            continue
        for notebook in submission.notebooks:
            yield student, notebook


def overrides(root: Path, assignment: str, students: list[str]) -> dict[str, list[str]]:
    """For the review: per student, the cells an instructor scored by hand or gave extra credit
    ("cell: 1.5 by hand", "cell: +0.5 extra")."""
    found: dict[str, list[str]] = {}
    with gradebook(root) as gb:
        for student, notebook in _submissions(gb, assignment, students):
            for grade in notebook.grades:
                if grade.manual_score is not None:
                    found.setdefault(student, []).append(f"{grade.name}: {grade.manual_score:g} by hand")
                if grade.extra_credit:
                    found.setdefault(student, []).append(f"{grade.name}: +{grade.extra_credit:g} extra")
    return found


def save_overrides(root: Path, assignment: str, students: list[str]) -> Overrides:
    """What an instructor set by hand on these students' submissions of ``assignment``."""
    saved: Overrides = {}
    with gradebook(root) as gb:
        for student, notebook in _submissions(gb, assignment, students):
            for grade in notebook.grades:
                saved["grade", student, notebook.name, grade.name] = {
                    "manual_score": grade.manual_score, "extra_credit": grade.extra_credit,
                    "needs_manual_grade": grade.needs_manual_grade, "auto_score": grade.auto_score}
            for comment in notebook.comments:
                saved["comment", student, notebook.name, comment.name] = {"manual_comment": comment.manual_comment}
    return saved


def restore_overrides(root: Path, assignment: str, saved: Overrides, unchanged: set[str]) -> None:
    """Put back the values of ``saved`` that a run of nbgrader changed: manual scores, extra
    credit and comments always; for the students in ``unchanged`` (the same submission graded
    again) also "graded" (``needs_manual_grade`` False) on the cells an instructor had graded,
    where the automatic score came out the same."""
    from nbgrader.api import MissingEntry

    with gradebook(root) as gb:
        for (kind, student, notebook, cell), values in saved.items():
            try:
                if kind == "grade":
                    row = gb.find_grade(cell, notebook, assignment, student)
                else:
                    row = gb.find_comment(cell, notebook, assignment, student)
            except MissingEntry:  # the cell left the source since
                continue
            for name, value in values.items():
                if name == "auto_score":
                    continue
                if name == "needs_manual_grade":
                    if (student in unchanged and value is False and values["manual_score"] is not None
                            and row.auto_score == values["auto_score"]):
                        row.needs_manual_grade = False
                elif value is not None and getattr(row, name) != value:
                    setattr(row, name, value)
        gb.db.commit()
