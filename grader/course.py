"""The instructor's class workflow on real nbgrader: init, collect, autograde, feedback, export.

    python -m grader course init COURSE [--students students.csv] [--db URL] [--late-penalty RULE]
    python -m grader course collect COURSE ASSIGNMENT DOWNLOADS[.zip] [--timestamps CSV] [--due TIME]
    python -m grader course autograde COURSE ASSIGNMENT [--jobs N | --scheduler ADDRESS | --cluster local:N]
                                      [--student ID ... | --all]
    python -m grader course feedback COURSE ASSIGNMENT [--student ID]
    python -m grader course export COURSE grades.csv [--format nbgrader|canvas|moodle]

One nbgrader assignment per notebook (``00_welcome``, ``01_tokens_and_data``, ...). Autograding
grades every submission with grader.check (sandboxed, in parallel, seeds derived from a course
secret and the student id so reruns agree), stages a repaired copy of each submission (the
released notebook with the student's answers put in, whatever the student did to its
structure), and runs ``nbgrader autograde`` on the staged copies with ``ApplyVerdicts`` in place
of Execute, so nbgrader's gradebook, feedback and export work unchanged. ``submitted/`` is never
modified by grading (collect writes it: grader.collect; the roster: grader.roster). A review report per batch lists scores and flags. Written answers and tasks (cells
graded by hand) are carried into the staged copy for formgrader; a rerun grades only new or
changed submissions and keeps what an instructor graded by hand (see grader.regrade). With
``--scheduler`` or ``--cluster`` the grading runs on a Dask cluster's workers and everything else
here, on this machine (grader.cluster).
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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat

from . import check, regrade
from . import collect as collect_uploads
from . import roster as class_roster
from .notebook import UngradableNotebook, grade_id, is_answer_cell, is_written_answer, max_points, read_notebook
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
# Stock `nbgrader autograde` and formgrader's Autograde button stop here before changing anything;
# `python -m grader course autograde` grades (sandboxed) and then runs nbgrader autograde itself.
c.Autograde.exporter_class = "grader.nbgrader_ext.CoursePipelineOnly"
"""

STUDENT_ID = collect_uploads.STUDENT_ID   # the default --pattern (course.STUDENT_ID stays importable)


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


def _settings(root: Path, **given) -> dict:
    """The course's init settings (.grader/settings.json), updated with those ``given`` (not None):
    a re-run of init keeps the database, course id and late penalty it was first given."""
    path = _state(root) / "settings.json"
    settings = {"db_url": None, "course_id": "gpt2course", "late_penalty": "none", "versions": {}}
    if path.is_file():
        settings |= json.loads(path.read_text())
    elif (root / "nbgrader_config.py").is_file():   # a course made before settings.json existed
        import ast
        text = (root / "nbgrader_config.py").read_text()
        for key in ("db_url", "course_id"):
            found = re.search(rf"^c\.CourseDirectory\.{key} = (.+)$", text, re.M)
            if found:
                settings[key] = ast.literal_eval(found.group(1))
        if settings["db_url"] == f"sqlite:///{root}/gradebook.db":
            settings["db_url"] = None   # the default, which follows the folder
    settings |= {k: v for k, v in given.items() if v is not None}
    path.write_text(json.dumps(settings, indent=1))
    return settings


def _has_submissions(root: Path, assignment: str) -> bool:
    if any(p.is_dir() for p in (root / "submitted").glob(f"*/{assignment}")):
        return True
    from nbgrader.api import MissingEntry
    with class_roster.gradebook(root) as gb:
        try:
            return gb.find_assignment(assignment).num_submissions > 0
        except MissingEntry:
            return False


def _release_plan(root: Path, solutions: list[Path], versions: dict[str, str]):
    """(to generate, refusals): each solution notebook goes to source/<name>/<name>.ipynb, <name>
    being its stem or the new version it was released as. A source that changed is rewritten
    unless its assignment has submissions (nbgrader cannot change the cells of such an
    assignment, and its grades would no longer match): that is refused."""
    generate, refused = [], []
    for nb in solutions:
        name = versions.get(nb.stem, nb.stem)
        dest = root / "source" / name / f"{name}.ipynb"
        released = (root / "release" / name / f"{name}.ipynb").is_file()
        if dest.is_file() and dest.read_bytes() == nb.read_bytes():
            if not released:
                generate.append(name)
            continue
        if dest.is_file() and _has_submissions(root, name):
            refused.append(
                f"{nb} differs from {dest}, and {name} has submissions: it was not changed. To release "
                f"the new notebook as a new assignment, run `python -m grader course init {root} "
                f"--new-version {nb.stem}={name}_v2` (students submit it as {name}_v2; {name} keeps its "
                f"submissions and grades), or restore {nb.name}.")
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(nb, dest)
        generate.append(name)
    return generate, refused


def init(root: Path, *, db_url: str | None = None, course_id: str | None = None,
         students: Path | None = None, exchange: Path | None = None, late_penalty: str | None = None,
         new_versions: dict[str, str] | None = None, solutions: Path | None = None) -> None:
    """Create or update an nbgrader course folder with every notebook as an assignment, released
    (and, with ``exchange``, released through nbgrader's exchange in that folder: grader/exchange.py).

    Re-running it is safe: ``students`` (a roster CSV, see grader/roster.py) adds and updates
    students, grades are kept, unchanged assignments are left alone, and an assignment with
    submissions is never rewritten; a changed source notebook for such an assignment is refused
    (SystemExit after everything else was done) unless ``new_versions`` maps its notebook
    (``00_welcome``) to a new assignment name (``00_welcome_v2``). ``late_penalty``: 'none',
    'zero' or a fraction of the score per day late (grader/late.py). ``solutions``: the folder of
    source notebooks (default: the course's solutions/).
    """
    from . import late

    root = root.resolve()
    state = _state(root)
    (state / "verdicts").mkdir(parents=True, exist_ok=True)
    os.chmod(state, 0o700)
    secret = state / "secret"
    if not secret.exists():
        secret.write_text(secrets.token_hex(32))
        os.chmod(secret, 0o600)
    roster = class_roster.read_csv(Path(students)) if students else None   # checked before any change
    penalty = late.config_lines(late_penalty) if late_penalty else None
    sources = solution_notebooks(Path(solutions)) if solutions else solution_notebooks()
    settings = _settings(root, db_url=db_url, course_id=course_id, late_penalty=late_penalty)
    versions = dict(settings["versions"])
    for old, new in (new_versions or {}).items():
        if old not in {nb.stem for nb in sources}:
            raise SystemExit(f"--new-version {old}={new}: there is no notebook {old} in the course")
        if not re.fullmatch(r"[0-9][0-9]_[A-Za-z0-9_]+", new) or (root / "source" / new).exists() and \
                _has_submissions(root, new):
            raise SystemExit(f"--new-version {old}={new}: {new} must be a new assignment name like "
                             f"{old}_v2 (NN_ and letters, digits, _) without submissions")
        versions[old] = new
    settings = _settings(root, versions=versions)
    config = CONFIG.format(root=str(root), course_id=settings["course_id"],
                           db_url=settings["db_url"] or f"sqlite:///{root}/gradebook.db",
                           verdicts=str(state / "verdicts"))
    (root / "nbgrader_config.py").write_text(config + (penalty or late.config_lines(settings["late_penalty"])))
    generate, refused = _release_plan(root, sources, versions)
    if generate:
        _nbgrader(root, "generate_assignment", *generate, "--force")
    names = [versions.get(nb.stem, nb.stem) for nb in sources]
    if roster is not None:
        added, updated = class_roster.sync(root, roster)
        print(f"roster: {len(added)} students added, {len(updated)} updated")
    from .exchange import setup
    setup(root, exchange, names)   # with no exchange given, keeps the one an earlier init was given
    print(f"course ready in {root}: assignments {', '.join(names)} ({len(generate)} released now, "
          f"{len(names) - len(generate) - len(refused)} unchanged); release/ holds the learner notebooks")
    if refused:
        raise SystemExit("\n".join(refused))


def collect(root: Path, assignment: str, downloads: Path, *, pattern: re.Pattern = STUDENT_ID,
            timestamps: Path | None = None, due: str | None = None,
            roster: list[class_roster.Student] | None = None) -> collect_uploads.Summary:
    """Copy the roster's submissions in ``downloads`` (an LMS download: a folder or its zip) into
    submitted/<student>/<assignment>/ with their submission time (grader/collect.py). Unknown
    names are reported, never added as students; ``timestamps``: a CSV of the LMS's submission
    times (student, timestamp); ``due``: an ISO 8601 due date recorded in the gradebook, which
    makes nbgrader's late penalty apply. ``roster``: the students (default: the gradebook's)."""
    root = root.resolve()
    if (root / "nbgrader_config.py").is_file() and not (root / "source" / assignment).is_dir():
        raise SystemExit(f"no assignment {assignment} in {root / 'source'}")
    students = class_roster.load(root) if roster is None else roster
    if not students:
        raise SystemExit(f"no students in {root}'s gradebook: add the roster first "
                         "(python -m grader course init COURSE --students students.csv)")
    index = class_roster.Roster(students)
    times = collect_uploads.read_timestamps(Path(timestamps), index) if timestamps else None
    due_time = record_due(root, assignment, due) if due else None
    return collect_uploads.collect(root, assignment, Path(downloads), roster=students, pattern=pattern,
                                   timestamps=times, due=due_time)


def record_due(root: Path, assignment: str, due: str):
    """Record ``due`` (ISO 8601; no zone: UTC) as the assignment's due date in the gradebook."""
    try:
        due_time = collect_uploads.parse_time(due)
    except ValueError:
        raise SystemExit(f"--due {due!r} is not an ISO 8601 time (e.g. 2026-10-01T23:59:00+02:00)") from None
    collect_uploads.set_due(root.resolve(), assignment, due_time)
    print(f"{assignment} is due {due_time:%Y-%m-%d %H:%M:%S} UTC")
    return due_time


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


def _grade_student(root: Path, assignment: str, student: str, timeout: int, worker=None) -> dict:
    """Grade one submission, write its verdict and staged copy (``worker``: a grader.worker.Worker
    to grade it in, warm; default: a sandbox of its own, grader.check.grade)."""
    source = root / "source" / assignment / f"{assignment}.ipynb"
    path = _pick_notebook(root / "submitted" / student / assignment, assignment)
    answers: dict[str, str] = {}
    max_score = max_points(read_notebook(source))
    if path is None:
        result = check.ungradable_verdict(f"{assignment}.ipynb", max_score, "no notebook was submitted")
    else:
        try:
            grade = (worker.check if worker is not None else check.grade)(
                path, source=source, salt=_salt(root, student, assignment), hide=[root], timeout=timeout)
            result, answers = grade.to_json(), grade.answers
        except UngradableNotebook as exc:
            result = check.ungradable_verdict(path.name, max_score, str(exc))
    return record_verdict(root, assignment, student, result, answers)


def record_verdict(root: Path, assignment: str, student: str, result: dict, answers: dict[str, str]) -> dict:
    """Write a graded submission's staged copy (the released notebook with the student's answers
    put in, and the submission's timestamp) and its verdict file; ``result`` gets the student's id.
    The local path (``_grade_student``) and a Dask cluster's coordinator (grader.cluster) both
    record through here."""
    released = nbformat.read(root / "release" / assignment / f"{assignment}.ipynb", as_version=4)
    staged_dir = _state(root) / "staged" / student / assignment
    staged_dir.mkdir(parents=True, exist_ok=True)
    stamp = root / "submitted" / student / assignment / "timestamp.txt"
    if stamp.is_file():
        shutil.copy(stamp, staged_dir / "timestamp.txt")
    for cell in released.cells:  # code answers, and written answers (nbgrader marks those for grading by hand)
        if (is_answer_cell(cell) or is_written_answer(cell)) and grade_id(cell) in answers:
            cell.source = answers[grade_id(cell)]
    nbformat.write(released, staged_dir / f"{assignment}.ipynb")
    result["student"] = student
    verdicts = _state(root) / "verdicts" / assignment
    verdicts.mkdir(parents=True, exist_ok=True)
    (verdicts / f"{student}.json").write_text(json.dumps(result))
    return result


def _grade_student_or_zero(root: Path, assignment: str, student: str, timeout: int, worker=None) -> dict:
    """_grade_student, or 0 with the reason when anything about this submission fails: one
    student's files never stop the class's batch."""
    try:
        return _grade_student(root, assignment, student, timeout, worker)
    except Exception as exc:  # noqa: BLE001 - recorded as this submission's verdict
        source = read_notebook(root / "source" / assignment / f"{assignment}.ipynb")
        result = check.failed_grade(f"{assignment}.ipynb", source, check.grader_failure(exc)).to_json()
        result["student"] = student
        verdicts = _state(root) / "verdicts" / assignment
        verdicts.mkdir(parents=True, exist_ok=True)
        (verdicts / f"{student}.json").write_text(json.dumps(result))
        staged = _state(root) / "staged" / student / assignment
        staged.mkdir(parents=True, exist_ok=True)
        shutil.copy(root / "release" / assignment / f"{assignment}.ipynb", staged / f"{assignment}.ipynb")
        return result


def autograde(root: Path, assignment: str, *, jobs: int | None = None,
              timeout: int = check.DEFAULT_CELL_TIMEOUT, students: list[str] | None = None,
              regrade_all: bool = False, scheduler: str | None = None, cluster: int | None = None) -> list[dict]:
    """Grade the new and changed submissions of ``assignment`` in parallel (``students``: these,
    whether changed or not; ``regrade_all``: every one), record them with nbgrader, and write
    the review of every submission. Returns every submission's verdict. ``scheduler`` (a Dask
    scheduler's address) or ``cluster`` (a number of local Dask worker processes) grades on a
    Dask cluster instead of this process's threads (grader.cluster).

    Grades given by hand in the gradebook (manual scores, extra credit, comments) survive.
    """
    root = root.resolve()
    submitted = sorted(p.parent.name for p in (root / "submitted").glob(f"*/{assignment}") if p.is_dir())
    if not submitted:
        raise SystemExit(f"no submissions of {assignment} in {root / 'submitted'}")
    unknown = sorted(set(students or []) - set(submitted))
    if unknown:
        raise SystemExit(f"no submission of {assignment} from {', '.join(unknown)} in {root / 'submitted'}")
    verdicts = _state(root) / "verdicts" / assignment
    prints = {s: regrade.fingerprint(root, assignment, s) for s in submitted}
    unchanged = {s for s in submitted if prints[s] == regrade.stored_fingerprint(verdicts, s)
                 and (verdicts / f"{s}.json").is_file()}
    if students:
        todo = sorted(set(students))
    else:
        todo = submitted if regrade_all else [s for s in submitted if s not in unchanged]
    shutil.rmtree(_state(root) / "staged", ignore_errors=True)
    graded = {}
    if todo and (scheduler or cluster):
        from . import cluster as dask_cluster
        graded = dask_cluster.grade(root, assignment, todo, timeout=timeout, scheduler=scheduler, local=cluster)
    elif todo:
        import torch  # noqa: F401 - imported once here: the grading threads must not race to import it
        jobs = jobs or os.cpu_count() or 1
        from .worker import Pool   # warm workers, one per job, each on one thread (grader/worker.py)
        with Pool(jobs) as pool:
            graded = dict(zip(todo, pool.map(lambda w, s: _grade_student_or_zero(root, assignment, s, timeout, w),
                                             todo)))
    if todo:
        # nbgrader runs on the staged copies of this batch only; --force resets what an
        # instructor marked as graded, so the overrides are saved and put back around it.
        saved = regrade.save_overrides(root, assignment, todo)
        try:
            _nbgrader(root, "autograde", assignment, "--force",
                      f"--CourseDirectory.submitted_directory={_state(root) / 'staged'}")
        finally:
            regrade.restore_overrides(root, assignment, saved, unchanged)
        from .cluster import local_worker, store_worker
        for student in todo:
            regrade.store_fingerprint(verdicts, student, prints[student])
            store_worker(verdicts, student, graded[student].setdefault("worker", local_worker()))
    kept = [s for s in submitted if s not in graded]
    if kept:
        print(f"{len(kept)} submissions of {assignment} unchanged since they were graded: kept "
              "(--all or --student ID regrades them)")
    results = [graded[s] if s in graded else _stored_verdict(root, assignment, s) for s in submitted]
    from .cluster import stored_worker
    for result in results:
        result.setdefault("worker", stored_worker(verdicts, result["student"]))
    missing = sorted({s.id for s in class_roster.load(root)} - set(submitted))
    write_review(root, assignment, results, missing=missing,
                 overrides=regrade.overrides(root, assignment, submitted))
    return results


def _stored_verdict(root: Path, assignment: str, student: str) -> dict:
    path = _state(root) / "verdicts" / assignment / f"{student}.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {"student": student, "score": 0.0, "max_score": 0.0, "cells": [],
                "errors": [f"ungradable: its verdict {path.name} could not be read; regrade it with --student"]}


# What grader.check reports, sorted for the review: a repair is benign (the grader undid it and
# graded as if it had not happened: a Colab re-save, a deleted test cell, an answer cell found
# by the name it defines, a written answer by its place); a flag wants a look (the static review's tampering signals, edited or
# tagged test cells, crashes, timeouts, files that could not be graded).
_REPAIRS = ("structure: the notebook has no nbgrader metadata", "structure: test cell", "answer cell",
            "written answer")
_REPAIR_WORDS = ("no nbgrader metadata", "matched by", "deleted or lost its metadata", "restored")
_FLAGS = ("flagged", "ungradable", "structure", "grading stopped", "the notebook ended",
          "the notebook could not be started")
_FLAG_WORDS = ("timed out", "ran longer", "stopped after", "ended the notebook process", "could not grade")


def review_kind(error: str) -> str:
    """"repaired", "flagged" or "note" (neither: an answer cell not found, the sandbox in use)."""
    if error.startswith(_REPAIRS) and any(w in error for w in _REPAIR_WORDS):
        return "repaired"
    if error.startswith(_FLAGS) or any(w in error for w in _FLAG_WORDS):
        return "flagged"
    return "note"


def write_review(root: Path, assignment: str, results: list[dict], *, missing: list[str] = (),
                 overrides: dict[str, list[str]] | None = None) -> Path:
    """reports/<assignment>-review.csv: each submission's score and what needs a look.

    ``flagged`` (yes/no) with ``reasons`` (the flags, then notes such as an answer cell not
    found), and ``repaired`` (yes/no) with ``repairs`` (what grading undid: benign). See
    review_kind. ``manual``: what an instructor graded by hand in the gradebook (``overrides``);
    ``worker``: who graded it (a Dask worker, or this host and process: grader.cluster);
    students of the roster in ``missing`` get a row that says they submitted nothing.
    """
    out = root / "reports" / f"{assignment}-review.csv"
    out.parent.mkdir(exist_ok=True)
    flagged_count = repaired_count = 0
    with open(out, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["student_id", "score", "max_score", "flagged", "repaired", "reasons", "repairs",
                         "manual", "worker"])
        for r in results:
            kinds = {"flagged": [], "repaired": [], "note": []}
            for error in r["errors"]:
                kinds[review_kind(error)].append(error)
            flagged, repaired = bool(kinds["flagged"]), bool(kinds["repaired"])
            flagged_count += flagged
            repaired_count += repaired
            writer.writerow([r["student"], r["score"], r["max_score"], "yes" if flagged else "no",
                             "yes" if repaired else "no", " | ".join(kinds["flagged"] + kinds["note"]),
                             " | ".join(kinds["repaired"]), " | ".join((overrides or {}).get(r["student"], [])),
                             r.get("worker", "")])
        for student in missing:
            writer.writerow([student, "", "", "no", "no", "missing: nothing submitted", "", "", ""])
    print(f"graded {len(results)} submissions of {assignment}; {flagged_count} flagged, "
          f"{repaired_count} repaired" + (f"; nothing from {', '.join(missing)}" if missing else "")
          + f"; review: {out}")
    return out


def feedback(root: Path, assignment: str, *, student: str | None = None) -> list[Path]:
    """HTML feedback (nbgrader generate_feedback) in feedback/<student>/<assignment>/, one zip per
    student (and a combined one for an LMS's bulk upload) in feedback_archives/<assignment>/, and,
    when the course has an exchange, nbgrader release_feedback. ``student``: only that student.
    Returns the per-student archives."""
    from . import exchange, lms
    root = root.resolve()
    _nbgrader(root, "generate_feedback", assignment, "--force", *([f"--student={student}"] if student else []))
    archives = lms.feedback_archives(root, assignment, [student] if student else None)
    if exchange.configured(root) is not None:
        exchange.release_feedback(root, assignment, student)
    print(f"feedback in {root / 'feedback'}; {len(archives)} archives in "
          f"{root / 'feedback_archives' / assignment}")
    return archives


def export(root: Path, dest: Path, *, fmt: str = "nbgrader") -> None:
    """Every student x assignment to ``dest``: nbgrader's own CSV (``fmt="nbgrader"``) or the
    grade import CSV of Canvas or Moodle (see grader/lms.py)."""
    if fmt == "nbgrader":
        _nbgrader(root.resolve(), "export", "--to", str(Path(dest).resolve()))
    else:
        from . import lms
        lms.export(root, Path(dest), fmt)
    print(f"grades written to {dest} ({fmt} format)")
