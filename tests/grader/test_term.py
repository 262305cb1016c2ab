"""A whole term through the commands an instructor types: a roster of 12, three assignments
(one with a written question), Canvas and Moodle bulk downloads, a resubmission after the due
date, a written answer graded by hand through nbgrader's gradebook, a student added mid-term by
re-running init, a per-student regrade, stock `nbgrader autograde` refused, nbgrader's exchange
for one assignment, feedback archives, and the Canvas and Moodle exports parsed back: every
grade in them must be the one the term was built to earn."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
import zipfile
from datetime import datetime, timezone

import nbformat
import pytest

from conftest import REPO, SOLUTIONS, answer_cells
from grader.notebook import grade_id, is_answer_cell, is_written_answer

from test_class_workflow import ONE_D_BROKEN

pytestmark = pytest.mark.slow

ASSIGNMENTS = ("00_welcome", "02_embeddings", "05_layernorm_and_mlp")
FIRST = ["Ada", "Ben", "Chloé", "Dev", "Eun", "Farid", "Gina", "Hugo", "Ines", "Jon", "Kai", "Lena"]
LAST = ["Lovelace", "Okafor", "Durand", "Patel", "Kim", "Haddad", "Rossi", "Meyer", "Silva", "Berg", "Tanaka",
        "Novak"]
STUDENTS = [(f"s{i + 1:02d}", FIRST[i], LAST[i], f"{FIRST[i].lower()}.{LAST[i].lower()}@uni.example",
             str(7001 + i)) for i in range(12)]
WRITTEN = "written_attention_cost"   # the question added to 00_welcome (2 points, graded by hand)
DUE = "2026-10-05T23:59:00+00:00"


def _run(*args, ok=True, cwd=REPO, env=None):
    proc = subprocess.run([sys.executable, "-m", "grader", "course", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=1800)
    if ok:
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc


def _roster(path, students):
    path.write_text("id,first_name,last_name,email,lms_user_id\n"
                    + "".join(",".join(s) + "\n" for s in students))
    return path


def _solutions(tmp):
    """The three notebooks, 00_welcome with a written question added after its exercise."""
    folder = tmp / "solutions"
    folder.mkdir()
    for name in ASSIGNMENTS[1:]:
        shutil.copy(SOLUTIONS / f"{name}.ipynb", folder)
    nb = nbformat.read(SOLUTIONS / "00_welcome.ipynb", as_version=4)
    question = nbformat.v4.new_markdown_cell("**Written question.** Why does attention cost grow with the "
                                             "square of the sequence length?")
    answer = nbformat.v4.new_markdown_cell("Every token attends to every earlier token: T x T scores.")
    answer.metadata["nbgrader"] = {"grade": True, "solution": True, "locked": False, "points": 2,
                                   "grade_id": WRITTEN, "schema_version": 3}
    nb.cells += [question, answer]
    nbformat.write(nb, folder / "00_welcome.ipynb")
    return folder


def _submission(course, assignment, dest, *, answers=None, written=None, stub=False):
    """The released notebook filled in: every exercise solved unless ``answers`` says otherwise
    (``stub``: left as released), the written answer if given."""
    nb = nbformat.read(course / "release" / assignment / f"{assignment}.ipynb", as_version=4)
    solved = answer_cells(nbformat.read(SOLUTIONS / f"{assignment}.ipynb", as_version=4))
    for cell in nb.cells:
        if is_answer_cell(cell) and not stub:
            cell.source = (answers or {}).get(grade_id(cell), solved[grade_id(cell)])
        elif is_written_answer(cell) and written is not None:
            cell.source = written
    dest.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, dest)
    return dest


def _student(home, student, exchange, *args):
    env = dict(os.environ, HOME=str(home), JUPYTER_CONFIG_DIR=str(home / ".jupyter"),
               JUPYTER_DATA_DIR=str(home / ".local" / "share" / "jupyter"),
               PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    proc = subprocess.run([sys.executable, "-m", "nbgrader", *args, "--course=gpt2course", f"--student={student}",
                           f"--Exchange.root={exchange}"], capture_output=True, text=True, cwd=home, env=env,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]


def _gradebook(course):
    import grader  # noqa: F401 - before nbgrader
    from grader.roster import gradebook
    return gradebook(course)


def _canvas_name(student):
    return f"{student[2]}{student[1]}".lower().replace("é", "e")


def test_a_term(tmp_path):
    course, exchange = tmp_path / "course", tmp_path / "exchange"
    roster = _roster(tmp_path / "students.csv", STUDENTS[:11])
    solutions = _solutions(tmp_path)
    by_id = {s[0]: s for s in STUDENTS}
    _run("init", course, "--students", roster, "--solutions", solutions, "--late-penalty", "0.5",
         "--exchange", exchange)
    expected = {}   # (student, assignment) -> final score

    # ---- 00_welcome from Canvas: a written answer; s02 resubmits after the due date -------------
    canvas = tmp_path / "canvas00"
    times = [("student", "timestamp")]
    for i, student in enumerate(STUDENTS[:11]):
        sid, lms = student[0], student[4]
        if sid == "s11":
            continue                                   # hands nothing in
        how = {"s03": dict(answers={"softmax": ONE_D_BROKEN}), "s04": dict(stub=True)}.get(sid, {})
        written = "The scores form a T x T matrix." if sid in ("s01", "s02", "s05") else None
        name = f"{_canvas_name(student)}_{lms}_{900 + i}_00_welcome.ipynb"
        _submission(course, "00_welcome", canvas / name, written=written, **how)
        times.append((lms, "2026-10-04T12:00:00+00:00"))
    # s02: first upload on time with a broken softmax, the second a day late and right.
    # (Its times come from the files, as a Canvas download keeps them; the others' from the CSV.)
    s02 = by_id["s02"]
    first = _submission(course, "00_welcome", canvas / f"{_canvas_name(s02)}_{s02[4]}_901_00_welcome.ipynb",
                        answers={"softmax": ONE_D_BROKEN}, written="The scores form a T x T matrix.")
    second = _submission(course, "00_welcome", canvas / f"{_canvas_name(s02)}_LATE_{s02[4]}_951_00_welcome-1.ipynb",
                         written="The scores form a T x T matrix.")
    for path, when in ((first, datetime(2026, 10, 4, 10, 0)), (second, datetime(2026, 10, 6, 9, 0))):
        os.utime(path, (when.replace(tzinfo=timezone.utc).timestamp(),) * 2)
    times = [t for t in times if t[0] != s02[4]]
    stamps = tmp_path / "times00.csv"
    stamps.write_text("".join(",".join(t) + "\n" for t in times))
    # also a stray file nobody on the roster uploaded: reported, not made a student
    (canvas / "Copy of 00_welcome.ipynb").write_bytes(first.read_bytes())
    proc = _run("collect", course, "00_welcome", canvas, "--due", DUE, "--timestamps", stamps)
    assert "Copy of 00_welcome.ipynb" in proc.stderr and "s11" in proc.stdout + proc.stderr
    assert not (course / "submitted" / "Copy").exists()
    # the latest upload counts; the first is kept, not graded
    assert any((course / "submitted" / "s02" / "00_welcome" / "older").rglob("*.ipynb"))

    # Stock nbgrader autograde on the course folder stops before changing anything.
    stock = subprocess.run([sys.executable, "-m", "nbgrader", "autograde", "00_welcome", "--force"],
                           cwd=course, capture_output=True, text=True, timeout=600,
                           env=dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep
                                    + os.environ["PATH"]))
    assert stock.returncode != 0 and "python -m grader course autograde" in stock.stdout + stock.stderr
    assert not (course / "autograded").exists()

    _run("autograde", course, "00_welcome", "--jobs", "2", "--timeout", "20")
    # s03's softmax breaks on 1-D inputs: some of its 2 points, read from the gradebook
    with _gradebook(course) as gb:
        for sid in ("s01", "s05"):   # the written answers, graded by hand in the gradebook
            grade = gb.find_grade(WRITTEN, "00_welcome", "00_welcome", sid)
            assert grade.needs_manual_grade
            grade.manual_score = 2.0 if sid == "s01" else 1.5
            grade.needs_manual_grade = False
        gb.db.commit()
        s03 = gb.find_submission("00_welcome", "s03").code_score
        late = gb.find_submission("00_welcome", "s02")
        assert late.total_seconds_late > 0 and late.late_submission_penalty > 0
    assert 0 < s03 < 2
    for student in STUDENTS[:10]:
        expected[student[0], "00_welcome"] = 2.0
    expected["s01", "00_welcome"] = 4.0
    expected["s05", "00_welcome"] = 3.5
    expected["s03", "00_welcome"] = s03
    expected["s04", "00_welcome"] = 0.0
    expected["s02", "00_welcome"] = 2.0 * (1 - 0.5)   # one started day late: half the score off
    # (s02's written answer awaits grading: 0 for now.)

    # A per-student regrade keeps the hand grades.
    proc = _run("autograde", course, "00_welcome", "--student", "s01", "--jobs", "2", "--timeout", "20")
    assert "unchanged" in proc.stdout
    with _gradebook(course) as gb:
        assert gb.find_grade(WRITTEN, "00_welcome", "00_welcome", "s01").manual_score == 2.0

    # ---- mid-term: s12 joins; 02_embeddings from Moodle (files and folders) --------------------
    _roster(roster, STUDENTS)
    _run("init", course, "--students", roster, "--solutions", solutions)
    moodle = tmp_path / "moodle02"
    for i, (sid, first, last, email, lms) in enumerate(STUDENTS):
        if sid == "s07":
            continue                                   # hands nothing in
        full = f"{first} {last}"
        broken = {"s06": dict(stub=True)}.get(sid, {})
        if i % 2:
            dest = moodle / f"{full}_{lms}_assignsubmission_file_" / "02_embeddings.ipynb"
        else:
            dest = moodle / f"{full}_{lms}_assignsubmission_file_02_embeddings.ipynb"
        _submission(course, "02_embeddings", dest, **broken)
        os.utime(dest, (datetime(2026, 10, 20, 8, 0, tzinfo=timezone.utc).timestamp(),) * 2)
    bulk = tmp_path / "moodle02.zip"
    with zipfile.ZipFile(bulk, "w") as archive:
        for path in sorted(moodle.rglob("*.ipynb")):
            archive.write(path, path.relative_to(moodle))
    _run("collect", course, "02_embeddings", bulk, "--due", "2026-10-21T23:59:00+00:00")
    _run("autograde", course, "02_embeddings", "--jobs", "2", "--timeout", "20")
    review = {r["student_id"]: r for r in csv.DictReader(open(course / "reports" / "02_embeddings-review.csv"))}
    assert "missing" in review["s07"]["reasons"] and review["s12"]["score"] == "2.0"
    for sid, *_ in STUDENTS:
        if sid != "s07":
            expected[sid, "02_embeddings"] = 0.0 if sid == "s06" else 2.0

    # ---- 05_layernorm_and_mlp through nbgrader's exchange -------------------------------------
    for sid in ("s08", "s09"):
        home = tmp_path / "home" / sid
        home.mkdir(parents=True)
        _student(home, sid, exchange, "fetch_assignment", "05_layernorm_and_mlp")
        fetched = home / "05_layernorm_and_mlp" / "05_layernorm_and_mlp.ipynb"
        _submission(course, "05_layernorm_and_mlp", fetched)
        _student(home, sid, exchange, "submit", "05_layernorm_and_mlp")
        expected[sid, "05_layernorm_and_mlp"] = 6.0
    _run("collect", course, "05_layernorm_and_mlp", "--exchange")
    _run("autograde", course, "05_layernorm_and_mlp", "--jobs", "2", "--timeout", "20")

    # ---- feedback and grades out ---------------------------------------------------------------
    for assignment in ASSIGNMENTS:
        _run("feedback", course, assignment)
        graded = {sid for sid, a in expected if a == assignment}
        archives = course / "feedback_archives" / assignment
        assert {p.stem for p in archives.glob("s*.zip")} == graded
        with zipfile.ZipFile(archives / "s08.zip" if assignment != "00_welcome" else archives / "s01.zip") as z:
            assert any(n.endswith(f"{assignment}.html") for n in z.namelist())
    _run("export", course, tmp_path / "canvas.csv", "--format", "canvas")
    _run("export", course, tmp_path / "moodle.csv", "--format", "moodle")

    rows = list(csv.reader(open(tmp_path / "canvas.csv", newline="", encoding="utf-8")))
    header, points = rows[0], rows[1]
    assert header[:5] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
    assert header[5:] == list(ASSIGNMENTS) and points[0] == "Points Possible"
    assert [float(p) for p in points[5:]] == [4.0, 2.0, 6.0]
    got = {}
    for row in rows[2:]:
        sid = row[3]
        assert row[1] == by_id[sid][4] and row[0] == f"{by_id[sid][2]}, {by_id[sid][1]}"
        for assignment, cell in zip(ASSIGNMENTS, row[5:]):
            got[sid, assignment] = None if cell == "" else float(cell)
    _same(got, expected)

    moodle_rows = list(csv.DictReader(open(tmp_path / "moodle.csv", newline="", encoding="utf-8")))
    got = {}
    for row in moodle_rows:
        sid = next(s for s in STUDENTS if s[3] == row["Email address"])[0]
        for assignment in ASSIGNMENTS:
            got[sid, assignment] = None if row[assignment] == "" else float(row[assignment])
    _same(got, expected)


def _same(got, expected):
    every = {(sid, a) for sid, *_ in STUDENTS for a in ASSIGNMENTS}
    assert set(got) == every
    wrong = {k: (got[k], expected.get(k)) for k in every
             if (got[k] is None) != (expected.get(k) is None)
             or got[k] is not None and abs(got[k] - expected[k]) > 1e-9}
    assert not wrong, f"(student, assignment): (exported, expected): {wrong}"
