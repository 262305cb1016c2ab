"""Grades and feedback out of the course's gradebook, in the files an LMS imports.

Grades (``course export --format``):

- ``canvas``: the Canvas gradebook import CSV. Canvas's Instructor Guide ("How do I import grades
  in the Gradebook?") and university guides built on it (e.g. Ohio State's "Import a CSV File
  into Carmen Grades") describe the columns of Canvas's own gradebook export, which the import
  reads back: ``Student`` ("Last, First"), ``ID`` (Canvas's user id), ``SIS User ID``,
  ``SIS Login ID``, ``Section``, then one column per assignment; a second row whose first cell
  is ``Points Possible`` gives each assignment's maximum. A blank cell changes nothing in Canvas.
- ``moodle``: the CSV that Moodle's grade import reads (MoodleDocs, "Grade import": a header
  row, one row per user, the user matched by a column the instructor maps, e.g. "Email
  address" to ``useremail``; e-mail addresses are compared case-sensitively, so they are
  written as the roster holds them), then one column per grade item.

A grade is nbgrader's final score: the submission's score (autograded and manual grades) minus
its late penalty, never below 0, as ``nbgrader export`` computes it. An assignment a student did
not hand in is left blank, never 0.

Feedback (``course feedback``): one zip per student, ``<student>.zip``, and a combined zip laid
out for Moodle's "Upload multiple feedback files in a zip": one folder per participant named as
in Moodle's bulk download, ``<Full name>_<participant id>_assignsubmission_file_/``. Moodle's
importer (mod/assign/feedback/file, ``is_valid_filename_for_import``) splits that name on ``_``
and matches the numeric second part with its participant id; the roster's ``lms_user_id`` is
used for it. Canvas's "Re-Upload Submissions" zip is not produced: Canvas matches each file by
the user id *and* the id of the submitted attachment from its own download
(``last_first_userid_attachmentid_name``), which the course does not have; the per-student zips
are attached to Canvas submission comments instead.
"""

from __future__ import annotations

import csv
import zipfile
from dataclasses import dataclass
from pathlib import Path

FORMATS = ("nbgrader", "canvas", "moodle")
MOODLE_FOLDER = "{name}_{participant}_assignsubmission_file_"
PRIVATE_FILES = {"submission_secret.txt"}   # nbgrader's per-submission secret stays out of archives


@dataclass
class Student:
    id: str
    first_name: str
    last_name: str
    email: str
    lms_user_id: str


@dataclass
class Grades:
    students: list[Student]
    assignments: list[tuple[str, float]]          # (name, max score), by name
    scores: dict[tuple[str, str], float]          # (student id, assignment) -> final score

    def cell(self, student: str, assignment: str) -> str:
        score = self.scores.get((student, assignment))
        return "" if score is None else number(score)


def number(value: float) -> str:
    """2.0 -> '2', 1.25 -> '1.25' (no float noise)."""
    return format(round(float(value), 6), "g")


def read_grades(root: Path) -> Grades:
    """Every student and assignment of the gradebook, with each final score nbgrader computes."""
    from nbgrader.api import MissingEntry

    from .roster import gradebook

    with gradebook(root.resolve()) as gb:
        students = [Student(s.id, s.first_name or "", s.last_name or "", s.email or "", s.lms_user_id or "")
                    for s in sorted(gb.students, key=lambda s: s.id)]
        assignments = [(a.name, float(a.max_score)) for a in sorted(gb.assignments, key=lambda a: a.name)]
        scores = {}
        for name, _ in assignments:
            for student in students:
                try:
                    sub = gb.find_submission(name, student.id)
                except MissingEntry:
                    continue
                scores[(student.id, name)] = max(0.0, float(sub.score) - float(sub.late_submission_penalty))
    return Grades(students, assignments, scores)


def write_canvas(grades: Grades, dest: Path) -> None:
    with open(dest, "w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
                     + [name for name, _ in grades.assignments])
        out.writerow(["Points Possible", "", "", "", ""] + [number(m) for _, m in grades.assignments])
        for s in grades.students:
            name = ", ".join(p for p in (s.last_name, s.first_name) if p) or s.id
            out.writerow([name, s.lms_user_id, "", s.id, ""]
                         + [grades.cell(s.id, a) for a, _ in grades.assignments])


def write_moodle(grades: Grades, dest: Path) -> None:
    with open(dest, "w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(["First name", "Last name", "ID number", "Email address"]
                     + [name for name, _ in grades.assignments])
        for s in grades.students:
            out.writerow([s.first_name, s.last_name, s.id, s.email]
                         + [grades.cell(s.id, a) for a, _ in grades.assignments])


def export(root: Path, dest: Path, fmt: str) -> None:
    """Write the Canvas or Moodle grade CSV of the course at ``root`` to ``dest``."""
    writers = {"canvas": write_canvas, "moodle": write_moodle}
    if fmt not in writers:
        raise ValueError(f"unknown format {fmt!r}: one of {', '.join(FORMATS)}")
    writers[fmt](read_grades(root), Path(dest))


def _feedback_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name not in PRIVATE_FILES
                  and p.name != "timestamp.txt")


def _moodle_name(student: Student) -> str:
    name = " ".join(p for p in (student.first_name, student.last_name) if p) or student.id
    return name.replace("_", " ").replace("/", " ")


def feedback_archives(root: Path, assignment: str, students: list[str] | None = None) -> list[Path]:
    """Zip the feedback of ``assignment`` (all students with feedback, or ``students``).

    Writes ``feedback_archives/<assignment>/<student>.zip`` (the student's feedback files under
    ``<assignment>/``) and ``feedback_archives/<assignment>/<assignment>-feedback.zip`` (the
    Moodle layout above). Returns the per-student archives."""
    root = root.resolve()
    base = root / "feedback"
    if students is None:
        students = sorted(p.parent.name for p in base.glob(f"*/{assignment}") if p.is_dir())
    roster = {s.id: s for s in read_grades(root).students}
    out = root / "feedback_archives" / assignment
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with zipfile.ZipFile(out / f"{assignment}-feedback.zip", "w", zipfile.ZIP_DEFLATED) as combined:
        for student in students:
            folder = base / student / assignment
            files = _feedback_files(folder) if folder.is_dir() else []
            if not files:
                continue
            info = roster.get(student) or Student(student, "", "", "", "")
            participant = info.lms_user_id if info.lms_user_id.isdigit() else student
            moodle = MOODLE_FOLDER.format(name=_moodle_name(info), participant=participant)
            path = out / f"{student}.zip"
            with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as own:
                for file in files:
                    rel = file.relative_to(folder).as_posix()
                    own.write(file, f"{assignment}/{rel}")
                    combined.write(file, f"{moodle}/{rel}")
            written.append(path)
    return written
