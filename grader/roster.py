"""The class roster: a students CSV read into nbgrader's gradebook, and the look-ups collect needs.

The roster CSV has a header row; ``id`` is required, the other columns are optional::

    id,first_name,last_name,email,lms_user_id
    alice,Alice,Smith,alice@uni.example,1234

``id`` is the student's id in the course folder (``submitted/<id>/``, the gradebook, exports):
letters, digits and ``. _ @ + -``, starting with a letter or digit. ``lms_user_id`` is the
student's number in the LMS (Canvas's user id, Moodle's participant id), used to recognise
bulk-download file names. Re-importing adds new students and updates the others; a student
missing from a later file is kept, with their grades.
"""

from __future__ import annotations

import csv
import os
import re
import sys
import unicodedata
from dataclasses import dataclass
from pathlib import Path

FIELDS = ("id", "first_name", "last_name", "email", "lms_user_id")
VALID_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+\-]*$")


@dataclass(frozen=True)
class Student:
    id: str
    first_name: str = ""
    last_name: str = ""
    email: str = ""
    lms_user_id: str = ""


def read_csv(path: Path) -> list[Student]:
    """The students of a roster CSV, checked: a bad or repeated id stops with the line number."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        header = [h.strip() for h in reader.fieldnames or []]
        if "id" not in header:
            raise SystemExit(f"{path}: the roster needs a header row with an 'id' column "
                             f"(columns: {', '.join(FIELDS)})")
        students, seen = [], set()
        for line, row in enumerate(reader, start=2):
            row = {(k or "").strip(): (v or "").strip() for k, v in row.items()}
            if not any(row.values()):
                continue
            sid = row.get("id", "")
            if not VALID_ID.match(sid):
                raise SystemExit(f"{path}, line {line}: student id {sid!r} is not usable as a folder "
                                 "name (letters, digits and . _ @ + -)")
            if sid in seen:
                raise SystemExit(f"{path}, line {line}: student id {sid!r} appears twice")
            seen.add(sid)
            students.append(Student(**{k: row.get(k, "") for k in FIELDS}))
    return students


def gradebook(root: Path):
    """nbgrader's Gradebook of the course folder (its database URL and course id from
    nbgrader_config.py). Use it as a context manager."""
    import grader  # noqa: F401 - keeps a slow optional import out of nbgrader's
    from nbgrader.api import Gradebook
    from traitlets.config.loader import PyFileConfigLoader

    os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
    config = PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config()
    return Gradebook(config.CourseDirectory.db_url, course_id=config.CourseDirectory.course_id)


def sync(root: Path, students: list[Student]) -> tuple[list[str], list[str]]:
    """Add or update ``students`` in the gradebook; returns (added ids, updated ids).
    Empty CSV cells never erase what the gradebook already holds."""
    from nbgrader.api import MissingEntry

    added, updated = [], []
    with gradebook(root) as gb:
        for s in students:
            fields = {k: getattr(s, k) for k in FIELDS[1:] if getattr(s, k)}
            try:
                old = gb.find_student(s.id)
            except MissingEntry:
                gb.add_student(s.id, **fields)
                added.append(s.id)
                continue
            if any(getattr(old, k) != v for k, v in fields.items()):
                gb.update_or_create_student(s.id, **fields)
                updated.append(s.id)
    return added, updated


def load(root: Path) -> list[Student]:
    """The students in the course's gradebook (none when it does not exist yet)."""
    if not (root / "nbgrader_config.py").is_file():
        return []
    with gradebook(root) as gb:
        return [Student(s.id, s.first_name or "", s.last_name or "", s.email or "", s.lms_user_id or "")
                for s in gb.students]


def _fold(text: str) -> str:
    """Lower case, accents and everything but letters and digits removed: how names compare."""
    text = unicodedata.normalize("NFKD", text)
    return "".join(c for c in text.casefold() if c.isalnum())


class Roster:
    """Finds a roster student from what an LMS puts in a file name."""

    def __init__(self, students: list[Student]):
        self.students = list(students)
        self.by_key: dict[str, Student] = {}
        names: dict[str, list[Student]] = {}
        for s in self.students:
            for key in (s.id, s.email, s.lms_user_id):
                if key:
                    self.by_key.setdefault(key.casefold(), s)
            if s.first_name or s.last_name:
                for name in {_fold(s.first_name + s.last_name), _fold(s.last_name + s.first_name)}:
                    names.setdefault(name, []).append(s)
        # A name shared by two students identifies neither.
        self.by_name = {n: group[0] for n, group in names.items() if len(group) == 1}

    def __bool__(self) -> bool:
        return bool(self.students)

    def find(self, key: str) -> Student | None:
        """By student id, email or LMS user id (case-insensitive)."""
        return self.by_key.get(key.strip().casefold())

    def find_name(self, name: str) -> Student | None:
        """By full name, first-last or last-first, spaces, case and accents ignored."""
        return self.by_name.get(_fold(name)) if _fold(name) else None
