"""Grades and feedback out to an LMS: `course export --format canvas|moodle` and the feedback
archives of `course feedback`. A class of three (one without a submission), graded for real,
with a late penalty and a manual grade put into nbgrader's gradebook the way nbgrader stores them."""

from __future__ import annotations

import csv
import subprocess
import sys
import zipfile

import pytest

from conftest import REPO, few_solutions, filled_notebook

from test_class_workflow import ONE_D_BROKEN

STUDENTS = {  # id: (first, last, email, lms_user_id)
    "ann": ("Ann", "Lee", "Ann.Lee@example.invalid", "101"),
    "ben": ("Ben", "Okafor", "ben@example.invalid", "102"),
    "cas": ("Cas", "Moreau", "cas@example.invalid", ""),
}


def _run(*args):
    proc = subprocess.run([sys.executable, "-m", "grader", "course", *map(str, args)],
                          capture_output=True, text=True, cwd=REPO, timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc.stdout


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """ann: solved, handed in late (penalty 0.5 -> 1.5); ben: one case wrong (1 point), then a
    manual grade of 0.25 on his visible test (-> 0.25 + hidden); cas: nothing handed in."""
    tmp = tmp_path_factory.mktemp("lms")
    course = tmp / "course"
    roster = tmp / "students.csv"
    roster.write_text("id,first_name,last_name,email,lms_user_id\n" + "".join(
        f"{s},{f},{l},{e},{lms}\n" for s, (f, l, e, lms) in STUDENTS.items()))
    _run("init", course, "--students", roster, "--solutions", few_solutions(tmp / "solutions", "00_welcome", "01_tokens_and_data"))
    downloads = tmp / "downloads"
    filled_notebook("00_welcome.ipynb", {}, downloads / "ann_00_welcome.ipynb")
    filled_notebook("00_welcome.ipynb", {"softmax": ONE_D_BROKEN}, downloads / "ben_00_welcome.ipynb")
    _run("collect", course, "00_welcome", downloads)
    _run("autograde", course, "00_welcome", "--jobs", "2", "--timeout", "10")

    import grader  # noqa: F401
    from nbgrader.api import Gradebook
    with Gradebook(f"sqlite:///{course}/gradebook.db", "gpt2course") as gb:
        ann = gb.find_submission_notebook("00_welcome", "00_welcome", "ann")
        ann.late_submission_penalty = 0.5
        ben = gb.find_submission_notebook("00_welcome", "00_welcome", "ben")
        graded = [g for g in ben.grades if g.max_score]
        assert sorted(g.score for g in graded) == [0.0, 1.0]
        wrong = next(g for g in graded if g.score == 0.0)
        wrong.manual_score = 0.25      # formgrader's override of an autograded cell
        gb.db.commit()
    return course


EXPECTED = {("ann", "00_welcome"): 1.5, ("ben", "00_welcome"): 1.25}


def _assignment_columns(header):
    return [h for h in header if h[:2].isdigit() and h[2] == "_"]


def test_canvas_csv(course, tmp_path):
    out = tmp_path / "canvas.csv"
    _run("export", course, out, "--format", "canvas")
    rows = list(csv.reader(open(out, newline="", encoding="utf-8")))
    header, points, students = rows[0], rows[1], rows[2:]
    # Canvas's gradebook columns, in its order, then one column per assignment.
    assert header[:5] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
    assignments = _assignment_columns(header)
    assert header[5:] == assignments and "00_welcome" in assignments and "01_tokens_and_data" in assignments
    assert points[0].strip() == "Points Possible" and points[header.index("00_welcome")] == "2"
    assert all(float(p) > 0 for p in points[5:])
    by_id = {r[header.index("SIS Login ID")]: dict(zip(header, r)) for r in students}
    assert set(by_id) == set(STUDENTS)
    for sid, (first, last, _, lms) in STUDENTS.items():
        row = by_id[sid]
        assert row["Student"] == f"{last}, {first}" and row["ID"] == lms
        for a in assignments:
            want = EXPECTED.get((sid, a))
            assert (row[a] == "") if want is None else (float(row[a]) == want), (sid, a, row[a])


def test_moodle_csv(course, tmp_path):
    out = tmp_path / "moodle.csv"
    _run("export", course, out, "--format", "moodle")
    reader = csv.DictReader(open(out, newline="", encoding="utf-8"))
    header = reader.fieldnames
    assert "Email address" in header[:4]
    assignments = _assignment_columns(header)
    assert header[4:] == assignments and len(assignments) >= 2
    rows = {r["Email address"]: r for r in reader}
    # Moodle compares e-mail addresses case-sensitively: written as the roster has them.
    assert set(rows) == {e for _, _, e, _ in STUDENTS.values()}
    for sid, (first, last, email, _) in STUDENTS.items():
        row = rows[email]
        assert (row["First name"], row["Last name"]) == (first, last)
        for a in assignments:
            want = EXPECTED.get((sid, a))
            assert (row[a] == "") if want is None else (float(row[a]) == want), (sid, a, row[a])


def test_nbgrader_format_is_still_the_default(course, tmp_path):
    out = tmp_path / "grades.csv"
    _run("export", course, out)
    rows = {(r["student_id"], r["assignment"]): r for r in csv.DictReader(open(out))}
    assert float(rows[("ann", "00_welcome")]["score"]) == 1.5
    assert float(rows[("ann", "00_welcome")]["late_submission_penalty"]) == 0.5
    assert float(rows[("ben", "00_welcome")]["score"]) == 1.25
    assert float(rows[("cas", "00_welcome")]["score"]) == 0.0   # nbgrader's own format: 0


def test_feedback_archives(course):
    _run("feedback", course, "00_welcome")
    folder = course / "feedback_archives" / "00_welcome"
    assert sorted(p.name for p in folder.iterdir()) == ["00_welcome-feedback.zip", "ann.zip", "ben.zip"]
    for student in ("ann", "ben"):
        html = (course / "feedback" / student / "00_welcome" / "00_welcome.html").read_bytes()
        with zipfile.ZipFile(folder / f"{student}.zip") as own:
            assert own.namelist() == ["00_welcome/00_welcome.html"]
            assert own.read("00_welcome/00_welcome.html") == html
    with zipfile.ZipFile(folder / "00_welcome-feedback.zip") as combined:
        names = sorted(combined.namelist())
        # Moodle's bulk feedback upload: <full name>_<participant id>_<plugin type>_<plugin>_/<file>,
        # split on "_" into five parts, the second numeric.
        assert names == ["Ann Lee_101_assignsubmission_file_/00_welcome.html",
                         "Ben Okafor_102_assignsubmission_file_/00_welcome.html"]
        for name in names:
            folder_name = name.split("/")[0]
            parts = folder_name.split("_", 4)
            assert len(parts) == 5 and parts[1].isdigit() and parts[2:4] == ["assignsubmission", "file"]
        assert combined.read(names[0]) == (course / "feedback/ann/00_welcome/00_welcome.html").read_bytes()
        assert combined.read(names[1]) == (course / "feedback/ben/00_welcome/00_welcome.html").read_bytes()


def test_feedback_for_one_student(course):
    import shutil
    # No feedback yet, whether or not test_feedback_archives ran first in this process (xdist)
    shutil.rmtree(course / "feedback", ignore_errors=True)
    shutil.rmtree(course / "feedback_archives", ignore_errors=True)
    _run("feedback", course, "00_welcome", "--student", "ben")
    assert sorted(p.name for p in (course / "feedback").iterdir()) == ["ben"]
    folder = course / "feedback_archives" / "00_welcome"
    assert sorted(p.name for p in folder.iterdir()) == ["00_welcome-feedback.zip", "ben.zip"]
    with zipfile.ZipFile(folder / "00_welcome-feedback.zip") as combined:
        assert combined.namelist() == ["Ben Okafor_102_assignsubmission_file_/00_welcome.html"]
