"""The course on JupyterHub: assignments, submissions and feedback through nbgrader's exchange.

``course init --exchange DIR`` writes ``c.Exchange.root = DIR`` into the course's
nbgrader_config.py and releases every assignment there (``nbgrader release_assignment``);
students fetch and submit with nbgrader's own commands or the Jupyter extension. ``course
collect COURSE ASSIGNMENT`` without a downloads folder (or with ``--exchange``) runs ``nbgrader
collect``, so each submission keeps the time the student submitted it (nbgrader's
timestamp.txt, which the late penalty reads). ``course feedback`` then also runs ``nbgrader
release_feedback`` and students get it with ``nbgrader fetch_feedback``.

The exchange folder is shared by the instructor and every student: nbgrader needs it writable
by all (mode 0o777, as its documentation's /srv/nbgrader/exchange); it is created so.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

LINE = "c.Exchange.root = {root!r}\n"
PATTERN = re.compile(r"^c\.Exchange\.root\s*=\s*(?P<value>.+)$", re.M)


def _nbgrader(root: Path, *args: str):
    from .course import _nbgrader
    return _nbgrader(root, *args)


def configured(root: Path) -> Path | None:
    """The exchange folder named in the course's nbgrader_config.py, or None."""
    config = Path(root) / "nbgrader_config.py"
    if not config.is_file():
        return None
    match = PATTERN.search(config.read_text())
    if not match:
        return None
    import ast
    return Path(ast.literal_eval(match.group("value").strip()))


def configure(root: Path, exchange: Path) -> Path:
    """Point the course at ``exchange`` (created world-writable) in its nbgrader_config.py."""
    root, exchange = Path(root).resolve(), Path(exchange).resolve()
    exchange.mkdir(parents=True, exist_ok=True)
    if exchange.stat().st_mode & 0o777 != 0o777:
        try:
            os.chmod(exchange, 0o777)
        except PermissionError:
            raise SystemExit(f"the exchange {exchange} must be writable by everyone (chmod 777) and "
                             "cannot be changed by this user: ask its owner") from None
    config = root / "nbgrader_config.py"
    text = config.read_text()
    line = LINE.format(root=str(exchange))
    text = PATTERN.sub(line.rstrip("\n"), text) if PATTERN.search(text) else text + line
    config.write_text(text)
    return exchange


def release(root: Path, assignments: list[str]) -> None:
    """nbgrader release_assignment --force for each assignment (replacing an earlier release),
    all in one process (grader.run_nbgrader batches it)."""
    _nbgrader(Path(root).resolve(), "release_assignment", *assignments, "--force")


def setup(root: Path, exchange: Path | None, assignments: list[str]) -> None:
    """init's hook: configure the exchange and release every assignment through it. Without
    ``exchange``, the exchange an earlier init was given is kept (init rewrites the config file),
    and a course without one is left alone."""
    remembered = Path(root) / ".grader" / "exchange"
    if exchange is None:
        if not remembered.is_file():
            return
        exchange = Path(remembered.read_text())
    folder = configure(root, exchange)
    remembered.parent.mkdir(parents=True, exist_ok=True)
    remembered.write_text(str(folder))
    release(root, assignments)
    print(f"released {len(assignments)} assignments to the exchange in {folder}")


def collect(root: Path, assignment: str) -> list[str]:
    """nbgrader collect (newest submission of each student, with its timestamp.txt).
    Returns the student ids that have a submission of ``assignment`` in submitted/."""
    root = Path(root).resolve()
    if configured(root) is None:
        raise SystemExit(f"{root / 'nbgrader_config.py'} names no exchange: run "
                         "`course init COURSE --exchange DIR` first")
    _nbgrader(root, "collect", assignment, "--update")
    students = sorted(p.parent.name for p in (root / "submitted").glob(f"*/{assignment}") if p.is_dir())
    print(f"collected {len(students)} submissions of {assignment} from the exchange")
    return students


def release_feedback(root: Path, assignment: str, student: str | None = None) -> None:
    """nbgrader release_feedback. nbgrader names each released file by the submission's secret,
    which stays in submitted/ (grading reads a staged copy): it is put back beside the feedback
    first. Students whose submission came from LMS files (no secret) are left out: they get the
    feedback archives instead."""
    root = Path(root).resolve()
    missing = []
    for folder in sorted((root / "feedback").glob(f"{student or '*'}/{assignment}")):
        secret = root / "submitted" / folder.parent.name / assignment / "submission_secret.txt"
        if secret.is_file() and not (folder / secret.name).exists():
            shutil.copy(secret, folder / secret.name)
        if not (folder / secret.name).exists():
            missing.append(folder.parent.name)
    if student is not None and student in missing:
        return
    args = ["release_feedback", assignment] + ([f"--student={student}"] if student else [])
    if missing:
        args.append(f"--CourseDirectory.student_id_exclude={','.join(missing)}")
    _nbgrader(root, *args)

