"""Collect an LMS download into nbgrader's submitted/<student>/<assignment>/, matched to the roster.

What a download may hold (a folder, or the bulk-download zip itself):

* Canvas: ``<lastfirst>_<user id>_<submission id>_<file>`` and ``<lastfirst>_LATE_<user id>_...``
  (the user id is the roster's ``lms_user_id``; the name is tried when the id is unknown);
* Moodle: ``<Full Name>_<participant id>_assignsubmission_file_<file>``, as files or one folder
  per participant (participant id = ``lms_user_id``, else the full name);
* ``<student>_<anything>.ipynb`` / ``.zip`` and ``<student>/`` folders, where ``<student>`` is a
  roster id, email or LMS user id (or what ``pattern``'s group ``student`` finds).

A name that matches no roster student is reported and skipped: students are added by
``course init --students`` only. Of several uploads of one student, the latest counts; the
others are kept under ``submitted/<student>/<assignment>/older/`` and not graded. The submission
time is, in this order: the ``timestamps`` CSV (the LMS's record), the zip entry time (for zips,
and for everything inside a bulk-download zip), the file's modification time.
"""

from __future__ import annotations

import csv
import re
import sys
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from .roster import Roster, Student

MAX_UNZIPPED = 200 * 2**20   # per archive: larger (or zip bombs) are refused
STUDENT_ID = re.compile(r"^(?P<student>[^_ /\\]+)[_ ]")
CANVAS = re.compile(r"^(?P<name>.+?)(?P<late>_(?i:late))?_(?P<uid>\d+)_(?P<sub>\d+)_(?P<rest>.+)$")
MOODLE = re.compile(r"^(?P<name>.+?)_(?P<uid>\d+)_assignsubmission_[a-z]+_?(?P<rest>.*)$")
RESUBMITTED = re.compile(r"-(\d+)(?: \(\d+\))?\.[A-Za-z]+$")   # an LMS's "name-1.ipynb"
STAMP_FORMAT = "%Y-%m-%d %H:%M:%S.%f UTC"                      # what nbgrader writes and reads


@dataclass
class Upload:
    """One upload of one student, as found in the download."""
    label: str
    student: Student
    files: dict[str, bytes]
    time: datetime
    time_source: str
    late_marker: bool = False
    order: int = 0


@dataclass
class Summary:
    assignment: str
    collected: list[str] = field(default_factory=list)   # a new or newer submission to grade
    unchanged: list[str] = field(default_factory=list)   # the same files as already collected
    older: list[str] = field(default_factory=list)       # "student: upload" kept, not graded
    unknown: list[str] = field(default_factory=list)     # names that match no roster student
    missing: list[str] = field(default_factory=list)     # roster students with nothing submitted
    warnings: list[str] = field(default_factory=list)


def parse_time(text: str) -> datetime:
    """An ISO 8601 time (or nbgrader's timestamp.txt form) as UTC; without a zone it is UTC."""
    text = text.strip()
    if text.endswith(" UTC"):
        text = text[:-4]
    value = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def read_timestamps(path: Path, roster: Roster) -> dict[str, datetime]:
    """student id -> submission time, from a CSV with columns ``student`` (id, email or LMS user
    id) and ``timestamp`` (ISO 8601). Of several rows for one student, the latest."""
    times: dict[str, datetime] = {}
    with open(path, newline="", encoding="utf-8-sig") as f:
        for line, row in enumerate(csv.DictReader(f), start=2):
            key, stamp = (row.get("student") or "").strip(), (row.get("timestamp") or "").strip()
            student = roster.find(key)
            if student is None:
                raise SystemExit(f"{path}, line {line}: {key!r} is no student of the roster")
            try:
                when = parse_time(stamp)
            except ValueError:
                raise SystemExit(f"{path}, line {line}: {stamp!r} is not an ISO 8601 time") from None
            times[student.id] = max(when, times.get(student.id, when))
    return times


def _identify(name: str, roster: Roster, pattern: re.Pattern, folder: bool):
    """(student, the file's own name, Canvas LATE marker) for an LMS file or folder name."""
    for lms in (CANVAS, MOODLE):
        m = lms.match(name)
        if m:
            student = roster.find(m["uid"]) or roster.find_name(m["name"])
            if student:
                return student, m["rest"], bool(m.groupdict().get("late"))
    m = pattern.match(name)
    if m and roster.find(m["student"]):
        return roster.find(m["student"]), name[m.end():], False
    if folder and roster.find(name):
        return roster.find(name), "", False
    return None


def _zip_notebooks(archive: zipfile.ZipFile) -> tuple[dict[str, bytes], datetime | None]:
    files, latest, total = {}, None, 0
    for info in archive.infolist():
        name = info.filename.replace("\\", "/")
        if info.is_dir() or not name.endswith(".ipynb") or "__MACOSX" in name:
            continue
        if name.startswith("/") or ".." in name.split("/"):
            continue
        total += info.file_size
        if total > MAX_UNZIPPED:
            raise ValueError("archive too large when unpacked")
        files[Path(name).name] = archive.read(info)
        when = datetime(*info.date_time, tzinfo=timezone.utc)
        latest = max(latest or when, when)
    return files, latest


def _mtime(path: Path) -> datetime:
    return datetime.fromtimestamp(path.stat().st_mtime, timezone.utc)


def _unpack_bulk(archive_path: Path, into: Path) -> dict[Path, datetime]:
    """Unpack a bulk-download zip (notebooks, zips, folders) safely; returns each file's entry time."""
    times, total = {}, 0
    with zipfile.ZipFile(archive_path) as archive:
        for info in archive.infolist():
            name = info.filename.replace("\\", "/")
            parts = [p for p in name.split("/") if p]
            if (info.is_dir() or not parts or name.startswith("/") or ".." in parts or "__MACOSX" in parts
                    or not name.endswith((".ipynb", ".zip"))):
                continue
            total += info.file_size
            if total > MAX_UNZIPPED:
                raise ValueError("archive too large when unpacked")
            dest = into.joinpath(*parts)
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(archive.read(info))
            times[dest] = datetime(*info.date_time, tzinfo=timezone.utc)
    return times


def find_uploads(downloads: Path, roster: Roster, pattern: re.Pattern = STUDENT_ID,
                 entry_times: dict[Path, datetime] | None = None, depth: int = 0):
    """(uploads, unknown names, problems) of a download folder. A folder that names no student
    is looked into (a download unpacked into a folder of its own)."""
    uploads, unknown, problems = [], [], []
    entry_times = entry_times or {}
    for entry in sorted(Path(downloads).iterdir()):
        if entry.name.startswith(".") or entry.name == "__MACOSX" or entry.is_symlink():
            continue
        found = _identify(entry.name, roster, pattern, folder=entry.is_dir())
        if entry.is_dir():
            if found is None:
                if depth < 2:
                    more = find_uploads(entry, roster, pattern, entry_times, depth + 1)
                    uploads += more[0]
                    unknown += more[1]
                    problems += more[2]
                else:
                    unknown.append(entry.name)
                continue
            paths = [p for p in sorted(entry.rglob("*.ipynb")) if p.is_file() and not p.is_symlink()]
            files = {p.name: p.read_bytes() for p in paths}
            times = [entry_times.get(p) or _mtime(p) for p in paths]
            source = "zip entry" if any(p in entry_times for p in paths) else "file time"
            when = max(times) if times else entry_times.get(entry) or _mtime(entry)
        elif entry.suffix in (".ipynb", ".zip"):
            if found is None:
                unknown.append(entry.name)
                continue
            if entry.suffix == ".zip":
                try:
                    with zipfile.ZipFile(entry) as archive:
                        files, when = _zip_notebooks(archive)
                except (zipfile.BadZipFile, ValueError, OSError) as exc:
                    problems.append(f"skipped {entry.name}: {exc}")
                    continue
                source = "zip entry" if when else "file time"
                when = when or _mtime(entry)
            else:
                files = {found[1] or entry.name: entry.read_bytes()}
                in_zip = entry in entry_times
                when, source = (entry_times[entry], "zip entry") if in_zip else (_mtime(entry), "file time")
        else:
            continue
        student, rest, late = found
        order = RESUBMITTED.search(rest or entry.name)
        uploads.append(Upload(entry.name, student, files, when, source, late, int(order[1]) if order else 0))
    return uploads, unknown, problems


def _current(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file() and p.name != "timestamp.txt"} \
        if folder.is_dir() else {}


def _read_stamp(folder: Path) -> datetime | None:
    try:
        return parse_time((folder / "timestamp.txt").read_text())
    except (OSError, ValueError):
        return None


def _write(folder: Path, files: dict[str, bytes], when: datetime) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / Path(name).name).write_bytes(data)
    (folder / "timestamp.txt").write_text(when.astimezone(timezone.utc).strftime(STAMP_FORMAT))


def _keep_older(dest: Path, files: dict[str, bytes], when: datetime) -> None:
    base = dest / "older" / when.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    target, n = base, 1
    while target.exists():
        n += 1
        target = base.with_name(f"{base.name}-{n}")
    _write(target, files, when)


def place(dest: Path, upload: Upload) -> str:
    """Put one upload in ``dest`` (submitted/<student>/<assignment>/): 'new', 'newer' (the previous
    files moved to older/), 'older' (kept in older/, not graded) or 'unchanged'."""
    current, stamp = _current(dest), _read_stamp(dest)
    if not dest.is_dir():   # also an upload without a notebook: graded 0, "no notebook was submitted"
        _write(dest, upload.files, upload.time)
        return "new"
    if current == upload.files or any(_current(p) == upload.files for p in sorted((dest / "older").glob("*"))):
        if current == upload.files and upload.time_source == "--timestamps" and stamp != upload.time:
            _write(dest, {}, upload.time)
        return "unchanged"
    if stamp is None or upload.time >= stamp:
        _keep_older(dest, current, stamp or upload.time)
        for name in current:
            (dest / name).unlink()
        _write(dest, upload.files, upload.time)
        return "newer"
    _keep_older(dest, upload.files, upload.time)
    return "older"


def collect(root: Path, assignment: str, downloads: Path, *, roster: list[Student],
            pattern: re.Pattern = STUDENT_ID, timestamps: dict[str, datetime] | None = None,
            due: datetime | None = None) -> Summary:
    """Copy the uploads in ``downloads`` of the ``roster``'s students into
    ``root``/submitted/<student>/``assignment``/ with their timestamp.txt; see the module's text."""
    import tempfile

    summary, index = Summary(assignment), Roster(roster)
    with tempfile.TemporaryDirectory() as tmp:
        downloads, entry_times = Path(downloads), {}
        if downloads.is_file() and downloads.suffix == ".zip":
            try:
                entry_times = _unpack_bulk(downloads, Path(tmp))
            except (zipfile.BadZipFile, ValueError, OSError) as exc:
                raise SystemExit(f"cannot read {downloads}: {exc}") from None
            downloads = Path(tmp)
        uploads, summary.unknown, problems = find_uploads(downloads, index, pattern, entry_times)
    summary.warnings += problems
    by_student: dict[str, list[Upload]] = {}
    for upload in uploads:
        by_student.setdefault(upload.student.id, []).append(upload)
    for sid, group in sorted(by_student.items()):
        group.sort(key=lambda u: (u.time, u.order, u.label))
        if timestamps and sid in timestamps:   # the LMS's time of the latest upload; none before it is later
            for upload in group:
                upload.time = min(upload.time, timestamps[sid])
            group[-1].time, group[-1].time_source = timestamps[sid], "--timestamps"
        dest = root / "submitted" / sid / assignment
        outcomes, graded = set(), None
        for upload in group:
            outcome = place(dest, upload)
            outcomes.add(outcome)
            if outcome == "older":
                summary.older.append(f"{sid}: {upload.label}")
            elif outcome in ("new", "newer"):
                if graded:   # an upload of this download, replaced by a later one
                    summary.older.append(f"{sid}: {graded}")
                graded = upload.label
            if upload.late_marker and due and upload.time <= due:
                summary.warnings.append(f"{upload.label}: the LMS marked it LATE but its time "
                                        f"({upload.time:%Y-%m-%d %H:%M} UTC, {upload.time_source}) is not "
                                        "after the due date: pass the LMS's times with --timestamps")
        if outcomes & {"new", "newer"}:
            summary.collected.append(sid)
        elif outcomes == {"unchanged"}:
            summary.unchanged.append(sid)
    if any(group[-1].time_source == "file time" for group in by_student.values()):
        summary.warnings.append("some submission times are the files' modification times (a download "
                                "may have set them): pass the LMS's times with --timestamps")
    summary.missing = sorted(s.id for s in roster if not (root / "submitted" / s.id / assignment).is_dir())
    _report(summary)
    return summary


def _report(summary: Summary) -> None:
    for name in summary.unknown:
        print(f"unknown: {name} matches no student of the roster (not collected)", file=sys.stderr)
    for older in summary.older:
        print(f"kept, not graded (an earlier upload): {older}", file=sys.stderr)
    for warning in summary.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if summary.missing:
        print(f"nothing submitted by {len(summary.missing)}: {', '.join(summary.missing)}", file=sys.stderr)
    print(f"collected {len(summary.collected)} submissions of {summary.assignment} "
          f"({len(summary.unchanged)} unchanged, {len(summary.older)} earlier uploads kept, "
          f"{len(summary.unknown)} unknown, {len(summary.missing)} missing)")


def set_due(root: Path, assignment: str, due: datetime) -> None:
    """Record ``due`` as the assignment's due date in nbgrader's gradebook (nbgrader's
    autograde then marks later submissions late and applies the late penalty)."""
    from .roster import gradebook

    with gradebook(root) as gb:
        gb.update_or_create_assignment(assignment, duedate=due.astimezone(timezone.utc).replace(tzinfo=None))
