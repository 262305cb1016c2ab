"""The instructor's class workflow on real nbgrader: init, collect, autograde, feedback, export.

    python -m grader course init COURSE [--students students.csv] [--db URL]
    python -m grader course collect COURSE ASSIGNMENT DOWNLOADS/
    python -m grader course autograde COURSE ASSIGNMENT [--jobs N]
    python -m grader course feedback COURSE ASSIGNMENT
    python -m grader course export COURSE grades.csv

One nbgrader assignment per notebook (``00_welcome``, ``01_tokens_and_data``, ...). Autograding
grades every submission with grader.check (sandboxed, in parallel, seeds derived from a course
secret and the student id so reruns agree), stages a repaired copy of each submission (the
released notebook with the student's answers put in, whatever the student did to its
structure), and runs ``nbgrader autograde`` on the staged copies with ``ApplyVerdicts`` in place
of Execute, so nbgrader's gradebook, feedback and export work unchanged. ``submitted/`` is never
modified. A review report per batch lists scores and flags.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat

from . import check
from .notebook import UngradableNotebook, grade_id, is_answer_cell, is_test_cell, points, read_notebook
from .paths import solution_notebooks

CONFIG = """\
# Written by `python -m grader course init`. nbgrader reads this file.
c = get_config()
c.CourseDirectory.root = {root!r}
c.CourseDirectory.course_id = {course_id!r}
c.CourseDirectory.db_url = {db_url!r}
c.ClearSolutions.code_stub = {{"python": "# YOUR CODE HERE\\nraise NotImplementedError()"}}
c.Autograde.create_student = True
# Points are decided by grader.check before nbgrader runs; nothing executes learner code here.
c.Autograde.autograde_preprocessors = [
    "grader.nbgrader_ext.ApplyVerdicts",
    "nbgrader.preprocessors.LimitOutput",
    "nbgrader.preprocessors.SaveAutoGrades",
    "nbgrader.preprocessors.AssignLatePenalties",
    "nbgrader.preprocessors.CheckCellMetadata",
]
c.ApplyVerdicts.verdict_dir = {verdicts!r}
"""

MAX_UNZIPPED = 200 * 2**20   # per archive: larger (or zip bombs) are refused
STUDENT_ID = re.compile(r"^(?P<student>[A-Za-z0-9][A-Za-z0-9.\-]*)[_ ]")


def _state(root: Path) -> Path:
    return root / ".grader"


def _nbgrader(root: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    proc = subprocess.run([sys.executable, "-m", "grader.run_nbgrader", *args], cwd=root, env=env,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"nbgrader {' '.join(args)} failed:\n{proc.stdout[-2000:]}{proc.stderr[-3000:]}")
    return proc


def assignments() -> list[str]:
    return [p.stem for p in solution_notebooks()]


def init(root: Path, *, db_url: str | None = None, course_id: str = "gpt2course",
         students: Path | None = None) -> None:
    """Create an nbgrader course folder with every notebook as an assignment, released."""
    root = root.resolve()
    state = _state(root)
    (state / "verdicts").mkdir(parents=True, exist_ok=True)
    os.chmod(state, 0o700)
    secret = state / "secret"
    if not secret.exists():
        secret.write_text(secrets.token_hex(32))
        os.chmod(secret, 0o600)
    (root / "nbgrader_config.py").write_text(CONFIG.format(
        root=str(root), course_id=course_id, db_url=db_url or f"sqlite:///{root}/gradebook.db",
        verdicts=str(state / "verdicts")))
    for nb in solution_notebooks():
        dest = root / "source" / nb.stem
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy(nb, dest / nb.name)
    if students:
        _nbgrader(root, "db", "student", "import", str(Path(students).resolve()))
    _nbgrader(root, "generate_assignment", *assignments(), "--force")
    print(f"course ready in {root}: assignments {', '.join(assignments())}; "
          f"release/ holds the learner notebooks")


def _safe_members(archive: zipfile.ZipFile):
    total = 0
    for info in archive.infolist():
        name = info.filename.replace("\\", "/")
        if info.is_dir() or not name.endswith(".ipynb") or "__MACOSX" in name:
            continue
        if name.startswith("/") or ".." in name.split("/"):
            continue
        total += info.file_size
        if total > MAX_UNZIPPED:
            raise ValueError("archive too large when unpacked")
        yield info, Path(name).name


def collect(root: Path, assignment: str, downloads: Path, *, pattern: re.Pattern = STUDENT_ID) -> list[str]:
    """Copy submissions into submitted/<student>/<assignment>/.

    ``downloads`` holds what an LMS gives: ``<student>_<anything>.ipynb`` files, zips named
    ``<student>_<anything>.zip`` holding notebooks, or one folder per student. Returns the
    student ids collected.
    """
    root = root.resolve()
    collected = []
    for entry in sorted(Path(downloads).iterdir()):
        if entry.is_dir():
            student, files = entry.name, [(p.name, p.read_bytes()) for p in entry.rglob("*.ipynb")]
        else:
            match = pattern.match(entry.name)
            if not match:
                print(f"skipped {entry.name}: no student id in its name", file=sys.stderr)
                continue
            student = match.group("student")
            if entry.suffix == ".zip":
                try:
                    with zipfile.ZipFile(entry) as archive:
                        files = [(name, archive.read(info)) for info, name in _safe_members(archive)]
                except (zipfile.BadZipFile, ValueError, OSError) as exc:
                    print(f"skipped {entry.name}: {exc}", file=sys.stderr)
                    continue
            elif entry.suffix == ".ipynb":
                files = [(entry.name[match.end():] or entry.name, entry.read_bytes())]
            else:
                continue
        dest = root / "submitted" / student / assignment
        dest.mkdir(parents=True, exist_ok=True)
        for name, data in files:
            (dest / name).write_bytes(data)
        stamp = dest / "timestamp.txt"
        if not stamp.exists():
            from datetime import datetime, timezone
            stamp.write_text(datetime.fromtimestamp(entry.stat().st_mtime, timezone.utc)
                             .strftime("%Y-%m-%d %H:%M:%S.%f %Z"))
        collected.append(student)
    print(f"collected {len(collected)} submissions of {assignment}")
    return collected


def _pick_notebook(folder: Path, assignment: str) -> Path | None:
    notebooks = sorted(folder.glob("*.ipynb"))
    exact = folder / f"{assignment}.ipynb"
    if exact in notebooks:
        return exact
    number = assignment[:2]
    matching = [p for p in notebooks if re.search(rf"(^|\D){number}_", p.name)]
    return (matching or notebooks or [None])[0]


def _salt(root: Path, student: str, assignment: str) -> str:
    key = (_state(root) / "secret").read_bytes()
    return hmac.new(key, f"{student}|{assignment}".encode(), hashlib.sha256).hexdigest()


def _grade_student(root: Path, assignment: str, student: str, timeout: int) -> dict:
    source = root / "source" / assignment / f"{assignment}.ipynb"
    folder = root / "submitted" / student / assignment
    path = _pick_notebook(folder, assignment)
    released = nbformat.read(root / "release" / assignment / f"{assignment}.ipynb", as_version=4)
    staged_dir = _state(root) / "staged" / student / assignment
    staged_dir.mkdir(parents=True, exist_ok=True)
    if (folder / "timestamp.txt").is_file():
        shutil.copy(folder / "timestamp.txt", staged_dir / "timestamp.txt")
    answers: dict[str, str] = {}
    source_nb = read_notebook(source)
    max_score = float(sum(points(c) for c in source_nb.cells if is_test_cell(c)))
    if path is None:
        result = {"notebook": f"{assignment}.ipynb", "score": 0.0, "max_score": max_score, "cells": [],
                  "errors": ["ungradable: no notebook was submitted"]}
    else:
        try:
            grade = check.grade(path, source=source, salt=_salt(root, student, assignment), hide=[root],
                                timeout=timeout)
            result, answers = grade.to_json(), grade.answers
        except UngradableNotebook as exc:
            result = {"notebook": path.name, "score": 0.0, "max_score": max_score, "cells": [],
                      "errors": [f"ungradable: {exc}"]}
    for cell in released.cells:
        if is_answer_cell(cell) and grade_id(cell) in answers:
            cell.source = answers[grade_id(cell)]
    nbformat.write(released, staged_dir / f"{assignment}.ipynb")
    result["student"] = student
    verdicts = _state(root) / "verdicts" / assignment
    verdicts.mkdir(parents=True, exist_ok=True)
    (verdicts / f"{student}.json").write_text(json.dumps(result))
    return result


def _grade_student_or_zero(root: Path, assignment: str, student: str, timeout: int) -> dict:
    """_grade_student, or 0 with the reason when anything about this submission fails: one
    student's files never stop the class's batch."""
    try:
        return _grade_student(root, assignment, student, timeout)
    except Exception as exc:  # noqa: BLE001 - recorded as this submission's verdict
        source = read_notebook(root / "source" / assignment / f"{assignment}.ipynb")
        reason = f"the grader could not grade this submission ({type(exc).__name__}: {str(exc)[:200]})"
        result = check.failed_grade(f"{assignment}.ipynb", source, reason).to_json()
        result["student"] = student
        verdicts = _state(root) / "verdicts" / assignment
        verdicts.mkdir(parents=True, exist_ok=True)
        (verdicts / f"{student}.json").write_text(json.dumps(result))
        staged = _state(root) / "staged" / student / assignment
        staged.mkdir(parents=True, exist_ok=True)
        shutil.copy(root / "release" / assignment / f"{assignment}.ipynb", staged / f"{assignment}.ipynb")
        return result


def autograde(root: Path, assignment: str, *, jobs: int | None = None,
              timeout: int = check.DEFAULT_CELL_TIMEOUT) -> list[dict]:
    """Grade every submission of ``assignment`` in parallel, then record it with nbgrader."""
    root = root.resolve()
    students = sorted(p.parent.name for p in (root / "submitted").glob(f"*/{assignment}") if p.is_dir())
    if not students:
        raise SystemExit(f"no submissions of {assignment} in {root / 'submitted'}")
    shutil.rmtree(_state(root) / "staged", ignore_errors=True)
    import torch  # noqa: F401 - imported once here: the grading threads must not race to import it
    jobs = jobs or os.cpu_count() or 1
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        results = list(pool.map(lambda s: _grade_student_or_zero(root, assignment, s, timeout), students))
    _nbgrader(root, "autograde", assignment, "--force",
              f"--CourseDirectory.submitted_directory={_state(root) / 'staged'}")
    write_review(root, assignment, results)
    return results


def write_review(root: Path, assignment: str, results: list[dict]) -> Path:
    """reports/<assignment>-review.csv: each submission's score and what needs a look."""
    out = root / "reports" / f"{assignment}-review.csv"
    out.parent.mkdir(exist_ok=True)
    flagged_count = 0
    with open(out, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["student_id", "score", "max_score", "flagged", "reasons"])
        for r in results:
            reasons = [e for e in r["errors"] if not e.startswith("answer cell") or "not found" in e]
            flagged = any(e.startswith(("flagged", "ungradable", "structure", "grading stopped",
                                        "the notebook ended")) or "timed out" in e or "ran longer" in e
                          for e in r["errors"])
            flagged_count += flagged
            writer.writerow([r["student"], r["score"], r["max_score"], "yes" if flagged else "no",
                             " | ".join(reasons)])
    print(f"graded {len(results)} submissions of {assignment}; {flagged_count} flagged; review: {out}")
    return out


def feedback(root: Path, assignment: str) -> None:
    _nbgrader(root.resolve(), "generate_feedback", assignment, "--force")
    print(f"feedback in {root / 'feedback'}")


def export(root: Path, dest: Path) -> None:
    _nbgrader(root.resolve(), "export", "--to", str(Path(dest).resolve()))
    print(f"grades written to {dest}")
