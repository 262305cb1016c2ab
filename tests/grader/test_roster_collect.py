"""The roster and collect on real nbgrader: init re-run over a term, LMS bulk downloads (Canvas,
Moodle, zips, folders), unknown and missing students, resubmissions, submission times, due dates
and the late penalty nbgrader applies."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from datetime import datetime, timezone

import nbformat
import pytest

from conftest import REPO, SOLUTIONS, filled_notebook
from grader import course as workflow
from grader.collect import parse_time
from grader.roster import Student, load

ROSTER = "id,first_name,last_name,email,lms_user_id\n" \
         "alice,Alice,Smith,alice@uni.example,101\n" \
         "bob,Bob,Jones,bob@uni.example,202\n"
CLASS = [Student("alice", "Alice", "Smith", "alice@uni.example", "101"),
         Student("bob", "Bob", "Jones", "bob@uni.example", "202"),
         Student("carol", "Carol", "White", "carol@uni.example", "303"),
         Student("dave", "Dave", "Brown", "dave@uni.example", "404"),
         Student("erin", "Erin", "Green", "erin@uni.example", "505"),
         Student("frank", "Frank", "Black", "frank@uni.example", "606")]


def _solutions(tmp_path):
    """A course of one notebook (00_welcome), so init takes seconds."""
    folder = tmp_path / "solutions"
    folder.mkdir()
    shutil.copy(SOLUTIONS / "00_welcome.ipynb", folder)
    return folder


def _at(path, when: str):
    stamp = parse_time(when).timestamp()
    os.utime(path, (stamp, stamp))
    return path


def _stamp(course, student):
    return parse_time((course / "submitted" / student / "00_welcome" / "timestamp.txt").read_text())


def _graded_files(course, student):
    folder = course / "submitted" / student / "00_welcome"
    return sorted(p.name for p in folder.iterdir() if p.is_file())


def test_init_reruns_add_students_and_refuse_a_changed_notebook_with_submissions(tmp_path):
    solutions, course = _solutions(tmp_path), tmp_path / "course"
    roster = tmp_path / "students.csv"
    roster.write_text(ROSTER)
    workflow.init(course, students=roster, solutions=solutions)
    assert {s.id for s in load(course)} == {"alice", "bob"}
    downloads = tmp_path / "downloads"
    filled_notebook("00_welcome.ipynb", {}, downloads / "alice_00_welcome.ipynb")
    workflow.collect(course, "00_welcome", downloads)
    release = course / "release" / "00_welcome" / "00_welcome.ipynb"
    released = (release.read_bytes(), release.stat().st_mtime_ns)

    # A later roster: a new student, a changed email; the unchanged assignment is left alone.
    roster.write_text(ROSTER.replace("bob@uni.example", "bob.jones@uni.example") + "carol,Carol,White,,303\n")
    workflow.init(course, students=roster, solutions=solutions)
    students = {s.id: s for s in load(course)}
    assert set(students) == {"alice", "bob", "carol"}
    assert students["bob"].email == "bob.jones@uni.example" and students["carol"].lms_user_id == "303"
    assert (release.read_bytes(), release.stat().st_mtime_ns) == released

    # The notebook changed after alice submitted: refused, every time, and nothing rewritten.
    nb = nbformat.read(solutions / "00_welcome.ipynb", as_version=4)
    nb.cells.append(nbformat.v4.new_markdown_cell("A new closing note."))
    nbformat.write(nb, solutions / "00_welcome.ipynb")
    source = (course / "source" / "00_welcome" / "00_welcome.ipynb").read_bytes()
    for _ in range(2):
        with pytest.raises(SystemExit) as refused:
            workflow.init(course, students=roster, solutions=solutions)
        assert "00_welcome has submissions" in str(refused.value)
        assert "--new-version 00_welcome=00_welcome_v2" in str(refused.value)
    assert (course / "source" / "00_welcome" / "00_welcome.ipynb").read_bytes() == source
    assert (release.read_bytes(), release.stat().st_mtime_ns) == released

    # Released as a new assignment: the old one keeps its submissions, later runs are clean.
    workflow.init(course, solutions=solutions, new_versions={"00_welcome": "00_welcome_v2"})
    v2 = course / "source" / "00_welcome_v2" / "00_welcome_v2.ipynb"
    assert v2.read_bytes() == (solutions / "00_welcome.ipynb").read_bytes()
    assert (course / "release" / "00_welcome_v2" / "00_welcome_v2.ipynb").is_file()
    assert (course / "source" / "00_welcome" / "00_welcome.ipynb").read_bytes() == source
    workflow.init(course, solutions=solutions)
    assert (course / "submitted" / "alice" / "00_welcome").is_dir()


def test_collect_canvas_and_moodle_downloads(tmp_path, capsys):
    course, downloads = tmp_path / "course", tmp_path / "downloads"
    filled_notebook("00_welcome.ipynb", {}, downloads / "smithalice_101_9001_00_welcome.ipynb")
    # Canvas's LATE marker, an id the roster lacks: found by the name (no time is made up from it).
    filled_notebook("00_welcome.ipynb", {}, downloads / "jonesbob_LATE_999_9002_00_welcome-1.ipynb")
    # Moodle: one folder per participant, and a renamed file.
    moodle_folder = downloads / "Carol White_303_assignsubmission_file_"
    filled_notebook("00_welcome.ipynb", {}, moodle_folder / "00_welcome.ipynb")
    filled_notebook("00_welcome.ipynb", {}, downloads / "Dave Brown_404_assignsubmission_file_00_welcome.ipynb")
    # A student's own zip: its entry time is the submission time.
    inner = filled_notebook("00_welcome.ipynb", {}, tmp_path / "zip" / "00_welcome.ipynb")
    with zipfile.ZipFile(downloads / "frank@uni.example_work.zip", "w") as archive:
        archive.writestr(zipfile.ZipInfo("work/00_welcome.ipynb", (2026, 10, 1, 9, 30, 0)), inner.read_bytes())
    # Names of nobody on the roster.
    filled_notebook("00_welcome.ipynb", {}, downloads / "Copy of 00_welcome.ipynb")
    filled_notebook("00_welcome.ipynb", {}, downloads / "Peggy Olson_777_assignsubmission_file_00_welcome.ipynb")
    _at(downloads / "smithalice_101_9001_00_welcome.ipynb", "2026-10-01T08:00:00Z")
    _at(moodle_folder / "00_welcome.ipynb", "2026-10-01T08:00:00Z")

    summary = workflow.collect(course, "00_welcome", downloads, roster=CLASS)
    assert summary.collected == ["alice", "bob", "carol", "dave", "frank"]
    assert sorted(summary.unknown) == ["Copy of 00_welcome.ipynb",
                                       "Peggy Olson_777_assignsubmission_file_00_welcome.ipynb"]
    assert summary.missing == ["erin"]
    assert sorted(p.name for p in (course / "submitted").iterdir()) == ["alice", "bob", "carol", "dave", "frank"]
    assert _graded_files(course, "alice") == ["00_welcome.ipynb", "timestamp.txt"]
    assert _graded_files(course, "bob") == ["00_welcome-1.ipynb", "timestamp.txt"]
    assert _stamp(course, "alice") == parse_time("2026-10-01T08:00:00Z")
    assert _stamp(course, "frank") == parse_time("2026-10-01T09:30:00Z")
    err = capsys.readouterr().err
    assert "Copy of 00_welcome.ipynb matches no student" in err and "Peggy Olson" in err and "erin" in err

    # The bulk-download zip itself: every upload's time is its zip entry's (carol's is newer).
    bulk = tmp_path / "submissions.zip"
    with zipfile.ZipFile(bulk, "w") as archive:
        archive.writestr(zipfile.ZipInfo("whiteCarol_303_9100_00_welcome.ipynb", (2026, 10, 3, 12, 0, 0)),
                         inner.read_bytes().replace(b"softmax", b"softmax ", 1))
        archive.writestr(zipfile.ZipInfo("Erin Green_505_assignsubmission_file_/nb/00_welcome.ipynb",
                                         (2026, 10, 2, 7, 0, 0)), inner.read_bytes())
        archive.writestr("../escape.ipynb", "{}")
    summary = workflow.collect(course, "00_welcome", bulk, roster=CLASS)
    assert summary.collected == ["carol", "erin"] and summary.missing == [] and summary.unknown == []
    assert _stamp(course, "carol") == parse_time("2026-10-03T12:00:00Z")
    assert _stamp(course, "erin") == parse_time("2026-10-02T07:00:00Z")
    assert not list(tmp_path.rglob("escape.ipynb"))


def test_resubmissions_latest_graded_older_kept(tmp_path):
    course = tmp_path / "course"
    first, second = tmp_path / "first", tmp_path / "second"
    wrong = {"softmax": "def softmax(x, dim=-1):\n    return x"}
    _at(filled_notebook("00_welcome.ipynb", wrong, first / "alice_00_welcome.ipynb"), "2026-10-01T10:00:00Z")
    workflow.collect(course, "00_welcome", first, roster=CLASS)
    assert _stamp(course, "alice") == parse_time("2026-10-01T10:00:00Z")

    # An LMS's second upload, downloaded later: it is graded, the first is kept in older/.
    _at(filled_notebook("00_welcome.ipynb", {}, second / "alice_00_welcome-1.ipynb"), "2026-10-02T10:00:00Z")
    summary = workflow.collect(course, "00_welcome", second, roster=CLASS)
    assert summary.collected == ["alice"]
    assert _graded_files(course, "alice") == ["00_welcome-1.ipynb", "timestamp.txt"]
    assert _stamp(course, "alice") == parse_time("2026-10-02T10:00:00Z")
    older = list((course / "submitted" / "alice" / "00_welcome" / "older").rglob("*.ipynb"))
    assert [p.read_bytes() for p in older] == [(first / "alice_00_welcome.ipynb").read_bytes()]

    # Collecting the first download again changes nothing (no newer time from a re-download).
    _at(first / "alice_00_welcome.ipynb", "2026-10-05T10:00:00Z")
    summary = workflow.collect(course, "00_welcome", first, roster=CLASS)
    assert summary.collected == [] and summary.unchanged == ["alice"]
    assert _graded_files(course, "alice") == ["00_welcome-1.ipynb", "timestamp.txt"]

    # Both uploads in one download: the latest counts, the other is kept and reported.
    both = tmp_path / "both"
    _at(filled_notebook("00_welcome.ipynb", wrong, both / "bob_00_welcome.ipynb"), "2026-10-01T10:00:00Z")
    _at(filled_notebook("00_welcome.ipynb", {}, both / "bob_00_welcome-1.ipynb"), "2026-10-01T10:00:00Z")
    summary = workflow.collect(course, "00_welcome", both, roster=CLASS)
    assert _graded_files(course, "bob") == ["00_welcome-1.ipynb", "timestamp.txt"]
    assert summary.older == ["bob: bob_00_welcome.ipynb"]

    # --timestamps: the LMS's record wins over file times (student by email or LMS user id).
    third = tmp_path / "third"
    filled_notebook("00_welcome.ipynb", {"softmax": wrong["softmax"] + "\n"}, third / "alice_00_welcome.ipynb")
    shutil.copy(both / "bob_00_welcome-1.ipynb", third / "Jones Bob_202_assignsubmission_file_00_welcome-1.ipynb")
    times = tmp_path / "times.csv"
    times.write_text("student,timestamp\nalice@uni.example,2026-10-03T10:00:00+02:00\n202,2026-10-01T09:00:00Z\n")
    workflow.collect(course, "00_welcome", third, timestamps=times, roster=CLASS)
    assert _graded_files(course, "alice") == ["00_welcome.ipynb", "timestamp.txt"]
    assert _stamp(course, "alice") == datetime(2026, 10, 3, 8, 0, tzinfo=timezone.utc)
    assert _stamp(course, "bob") == parse_time("2026-10-01T09:00:00Z")   # same files, the LMS's time
    assert len(list((course / "submitted" / "alice" / "00_welcome" / "older").iterdir())) == 2


def _course(*args):
    proc = subprocess.run([sys.executable, "-m", "grader", "course", *map(str, args)], capture_output=True,
                          text=True, cwd=REPO, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc


@pytest.mark.slow  # CI; tests/grader/test_term.py also applies a late penalty
def test_due_date_makes_the_late_penalty_apply_and_grades_survive_init(tmp_path):
    solutions, course = _solutions(tmp_path), tmp_path / "course"
    roster = tmp_path / "students.csv"
    roster.write_text(ROSTER)
    workflow.init(course, students=roster, solutions=solutions, late_penalty="0.5")
    downloads = tmp_path / "downloads"
    filled_notebook("00_welcome.ipynb", {}, downloads / "smithalice_101_1_00_welcome.ipynb")
    filled_notebook("00_welcome.ipynb", {}, downloads / "jonesbob_LATE_202_2_00_welcome.ipynb")
    times = tmp_path / "times.csv"
    times.write_text("student,timestamp\nalice,2026-10-01T11:00:00Z\nbob,2026-10-01T13:00:00Z\n")
    _course("collect", course, "00_welcome", downloads, "--timestamps", times, "--due", "2026-10-01T12:00:00Z")
    _course("autograde", course, "00_welcome", "--jobs", "1", "--timeout", "10")

    def scores():
        from grader.roster import gradebook
        with gradebook(course) as gb:
            assert gb.find_assignment("00_welcome").duedate == datetime(2026, 10, 1, 12, 0)
            return {s: (gb.find_submission("00_welcome", s).score,
                        gb.find_submission("00_welcome", s).late_submission_penalty) for s in ("alice", "bob")}

    # bob: an hour late, one started day: half of his score taken off.
    assert scores() == {"alice": (2.0, 0.0), "bob": (2.0, 1.0)}
    # Re-running init with a longer roster keeps every grade and the penalty rule.
    roster.write_text(ROSTER + "carol,Carol,White,,303\n")
    workflow.init(course, students=roster, solutions=solutions)
    assert scores() == {"alice": (2.0, 0.0), "bob": (2.0, 1.0)}
    assert "c.LatePenalty.per_day = 0.5" in (course / "nbgrader_config.py").read_text()
