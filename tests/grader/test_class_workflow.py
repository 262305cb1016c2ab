"""A class of 30 through the documented workflow: init, collect (LMS files and zips), autograde,
feedback, export. The exported CSV must equal the grades the roster was built to earn."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import zipfile

import nbformat
import pytest

from attacks.corpus import ATTACKS, FAULTS
from catalogue import nb00_welcome as cat00, nb01_tokens_and_data as cat01
from conftest import NOTEBOOKS, REPO, SOLUTIONS, answer_cells, apply_edit, few_solutions, filled_notebook

SOLVED00 = answer_cells(nbformat.read(SOLUTIONS / "00_welcome.ipynb", as_version=4))["softmax"]
ONE_D_BROKEN = SOLVED00.replace('"""Softmax', '"""1-D inputs returned as they are.\n    Softmax', 1).replace(
    "    ### BEGIN SOLUTION\n", "    ### BEGIN SOLUTION\n    if x.dim() == 1:\n        return x\n", 1)


def _roster():
    """student -> (how their 00_welcome submission is made, expected score out of 2)."""
    roster = {}
    for i, (name, src) in enumerate(list(cat00.VALID["softmax"].items())[:3]):
        roster[f"valid{i}"] = ({"softmax": src}, 2.0)
    roster["solution"] = ({}, 2.0)
    roster["colab_resave"] = ("strip_metadata", 2.0)
    roster["renamed"] = ("rename", 2.0)
    roster["partial0"] = ({"softmax": ONE_D_BROKEN}, 1.0)
    roster["partial1"] = ("zip_partial", 1.0)
    for i, name in enumerate(["dim0_hardcoded", "global_max", "inplace_subtract_max"]):
        roster[f"wrong{i}"] = ({"softmax": cat00.WRONG["softmax"][name]}, 0.0)
    for name in ["patch_allclose", "import_reference", "input_transformer", "rebind_check",
                 "lying_tensor_subclass", "skip_execution_tags", "os_exit", "set_custom_exc"]:
        roster[f"attack_{name}"] = (name, 0.0)
    roster["attack_write_gradebook"] = ({"softmax": "import sqlite3\nsqlite3.connect('gradebook.db')"
                                                    ".execute('update grade set auto_score = 99')\n"
                                                    + SOLVED00}, 0.0)
    # Files the grader's own parser cannot read: each its own 0, the batch goes on.
    for name in ["attribute_chain_100000_deep", "unary_chain_100000_deep", "lone_surrogate"]:
        roster[f"hostile_{name}"] = (name, 0.0)
    roster["hostile_scratch_cell"] = ("scratch_cell", 0.0)
    roster["corrupt"] = ("corrupt", 0.0)
    roster["empty_file"] = ("empty", 0.0)
    roster["syntax_error"] = ({"softmax": "def softmax(x, dim=-1)\n    return x"}, 0.0)
    roster["infinite_loop"] = ({"softmax": "while True:\n    pass\n" + SOLVED00}, 0.0)
    roster["untouched"] = ("untouched", 0.0)
    roster["no_notebook"] = ("no_notebook", 0.0)
    assert len(roster) == 30
    # LMS file names are "<student>_<anything>": student ids have no underscore.
    return {student.replace("_", "-"): entry for student, entry in roster.items()}


def _write_submission(student, how, downloads, tmp_path):
    name = f"{student}_00_welcome.ipynb"
    if isinstance(how, dict):
        filled_notebook("00_welcome.ipynb", how, downloads / name)
    elif how in ATTACKS or how in FAULTS:
        entry = ATTACKS.get(how) or FAULTS[how]
        path = filled_notebook("00_welcome.ipynb", entry["answers"], downloads / name)
        apply_edit(path, entry.get("edit"))
    elif how == "scratch_cell":
        path = filled_notebook("00_welcome.ipynb", {"softmax": cat00.WRONG["softmax"]["global_max"]},
                               downloads / name)
        apply_edit(path, "scratch_cell:x = " + "-" * 100_000 + "1")
    elif how == "strip_metadata":
        path = filled_notebook("00_welcome.ipynb", {}, downloads / name)
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            cell.metadata = {}
        nb.metadata = {"colab": {"provenance": []}}
        nbformat.write(nb, path)
    elif how == "rename":
        filled_notebook("00_welcome.ipynb", {}, downloads / f"{student}_Copy of 00_welcome (1).ipynb")
    elif how == "zip_partial":
        inner = filled_notebook("00_welcome.ipynb", {"softmax": ONE_D_BROKEN}, tmp_path / "zip" / "00_welcome.ipynb")
        with zipfile.ZipFile(downloads / f"{student}_submission.zip", "w") as archive:
            archive.write(inner, "submission/00_welcome.ipynb")
    elif how == "corrupt":
        (downloads / name).write_text('{"cells": [')
    elif how == "empty":
        (downloads / name).write_text("")
    elif how == "untouched":
        (downloads / name).write_bytes((NOTEBOOKS / "00_welcome.ipynb").read_bytes())
    elif how == "no_notebook":
        with zipfile.ZipFile(downloads / f"{student}_empty.zip", "w") as archive:
            archive.writestr("readme.txt", "forgot the notebook")
    else:
        raise ValueError(how)


def _run(*args):
    proc = subprocess.run([sys.executable, "-m", "grader", "course", *map(str, args)],
                          capture_output=True, text=True, cwd=REPO, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc.stdout


@pytest.mark.slow  # CI (make test-all) runs it; make test stays a few minutes
def test_class_of_thirty(tmp_path):
    course = tmp_path / "course"
    roster = _roster()
    students = tmp_path / "students.csv"
    students.write_text("id,first_name,last_name,email\n" + "".join(
        f"{s},{s.title()},Student,{s}@example.invalid\n" for s in sorted(roster)))
    _run("init", course, "--students", students)

    downloads = tmp_path / "downloads00"
    downloads.mkdir()
    for student, (how, _) in roster.items():
        _write_submission(student, how, downloads, tmp_path)
    _run("collect", course, "00_welcome", downloads)

    # A few also hand in notebook 01: solved, one wrong exercise, untouched.
    downloads01 = tmp_path / "downloads01"
    expected01 = {"valid0": 12.0, "solution": 12.0, "partial0": 10.0, "untouched": 0.0}
    filled_notebook("01_tokens_and_data.ipynb", {}, downloads01 / "valid0_01_tokens_and_data.ipynb")
    filled_notebook("01_tokens_and_data.ipynb", {"get_batch": cat01.VALID["get_batch"]["stack_of_slices"]},
                    downloads01 / "solution_01_tokens_and_data.ipynb")
    filled_notebook("01_tokens_and_data.ipynb", {"get_batch": cat01.WRONG["get_batch"]["y_equals_x"]},
                    downloads01 / "partial0_01_tokens_and_data.ipynb")
    (downloads01 / "untouched_01_tokens_and_data.ipynb").write_bytes(
        (NOTEBOOKS / "01_tokens_and_data.ipynb").read_bytes())
    _run("collect", course, "01_tokens_and_data", downloads01)
    submitted_before = {p: p.read_bytes() for p in (course / "submitted").rglob("*") if p.is_file()}

    _run("autograde", course, "00_welcome", "--jobs", "2", "--timeout", "10")
    _run("autograde", course, "01_tokens_and_data", "--jobs", "2", "--timeout", "10")
    _run("feedback", course, "00_welcome")
    _run("export", course, tmp_path / "grades.csv")

    rows = list(csv.DictReader(open(tmp_path / "grades.csv")))
    got = {(r["assignment"], r["student_id"]): float(r["score"]) for r in rows
           if r["assignment"] in ("00_welcome", "01_tokens_and_data")}
    # Assignments nobody handed in are exported too, at 0.
    assert {float(r["score"]) for r in rows if (r["assignment"], r["student_id"]) not in got} <= {0.0}
    expected = {("00_welcome", s): score for s, (_, score) in roster.items()}
    expected |= {("01_tokens_and_data", s): expected01.get(s, 0.0) for s in roster}
    assert got == expected, {k: (got.get(k), v) for k, v in expected.items() if got.get(k) != v}
    assert {r["max_score"] for r in rows if r["assignment"] == "00_welcome"} == {"2.0"}

    # The review flags every attack and every broken submission, and no honest one.
    review = {r["student_id"]: r for r in csv.DictReader(open(course / "reports" / "00_welcome-review.csv"))}
    for student in roster:
        if student.startswith(("attack-", "corrupt", "empty-file", "infinite-loop", "no-notebook",
                               "hostile-attribute", "hostile-unary")):
            assert review[student]["flagged"] == "yes", (student, review[student])
        if student.startswith(("valid", "solution", "partial", "wrong")):
            assert review[student]["flagged"] == "no", (student, review[student])
    # A Colab re-save is repaired (benign), not flagged.
    colab = review["colab-resave"]
    assert (colab["flagged"], colab["repaired"]) == ("no", "yes") and "no nbgrader metadata" in colab["repairs"], colab

    # Feedback shows messages, never hidden tests or grader internals.
    for html in (course / "feedback").rglob("*.html"):
        text = html.read_text()
        for secret in ("BEGIN HIDDEN", "hidden=True", ".grader", "site-packages", "run_notebook"):
            assert secret not in text, (html, secret)
    assert "not implemented yet" in (course / "feedback" / "untouched" / "00_welcome" / "00_welcome.html").read_text()
    # An unreadable upload's feedback says what was wrong with the file.
    assert "corrupt JSON" in (course / "feedback" / "corrupt" / "00_welcome" / "00_welcome.html").read_text()

    # Nothing the students handed in was changed; every test cell has a verdict.
    assert submitted_before == {p: p.read_bytes() for p in (course / "submitted").rglob("*") if p.is_file()}
    for path in (course / "autograded").rglob("*.ipynb"):
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.metadata.get("nbgrader", {}).get("grade"):
                assert len(cell.outputs) == 1, path


@pytest.mark.slow  # CI (make test-all) runs it; make test stays a few minutes
def test_parallel_and_sequential_autograde_agree(tmp_path):
    """Also: the gradebook can live elsewhere (another database URL, as for a large class)."""
    course = tmp_path / "course"
    database = tmp_path / "db" / "class.db"
    database.parent.mkdir()
    students = tmp_path / "students.csv"
    students.write_text("id\nann\nben\ncas\n")
    _run("init", course, "--db", f"sqlite:///{database}", "--students", students,
         "--solutions", few_solutions(tmp_path / "solutions", "00_welcome"))
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    filled_notebook("00_welcome.ipynb", {}, downloads / "ann_00_welcome.ipynb")
    filled_notebook("00_welcome.ipynb", {"softmax": ONE_D_BROKEN}, downloads / "ben_00_welcome.ipynb")
    filled_notebook("00_welcome.ipynb", {"softmax": cat00.WRONG["softmax"]["global_max"]},
                    downloads / "cas_00_welcome.ipynb")
    _run("collect", course, "00_welcome", downloads)
    verdicts = {}
    for jobs in ("1", "2"):
        _run("autograde", course, "00_welcome", "--jobs", jobs, "--all")
        verdicts[jobs] = {p.name: json.loads(p.read_text())
                          for p in (course / ".grader" / "verdicts" / "00_welcome").glob("*.json")}
    assert verdicts["1"] == verdicts["2"] and len(verdicts["1"]) == 3
    assert database.is_file() and not (course / "gradebook.db").exists()
    _run("export", course, tmp_path / "grades.csv")
    scores = {r["student_id"]: float(r["score"]) for r in csv.DictReader(open(tmp_path / "grades.csv"))
              if r["assignment"] == "00_welcome"}
    assert scores == {"ann": 2.0, "ben": 1.0, "cas": 0.0}


def test_collect_patterns_and_unsafe_archives(tmp_path):
    import re

    from grader import course as workflow
    from grader.roster import Student

    downloads = tmp_path / "downloads"
    downloads.mkdir()
    (downloads / "ann-homework.ipynb").write_text("{}")
    (downloads / "carl-homework.ipynb").write_text("{}")   # not on the roster: reported, not collected
    with zipfile.ZipFile(downloads / "bob-upload.zip", "w") as archive:
        archive.writestr("../../escape.ipynb", "{}")
        archive.writestr("/abs.ipynb", "{}")
        archive.writestr("work/00_welcome.ipynb", "{}")
    (downloads / "no student id.txt").write_text("")
    summary = workflow.collect(tmp_path / "course", "00_welcome", downloads, roster=[Student("ann"), Student("bob")],
                               pattern=re.compile(r"^(?P<student>[a-z]+)-"))
    assert summary.collected == ["ann", "bob"] and summary.unknown == ["carl-homework.ipynb"]
    submitted = tmp_path / "course" / "submitted"
    assert sorted(p.name for p in submitted.iterdir()) == ["ann", "bob"]
    assert (submitted / "ann" / "00_welcome" / "homework.ipynb").is_file()
    assert sorted(p.name for p in (submitted / "bob" / "00_welcome").iterdir()) == ["00_welcome.ipynb", "timestamp.txt"]
    assert not list(tmp_path.rglob("escape.ipynb")) and not list(tmp_path.rglob("abs.ipynb"))


def test_a_submission_that_breaks_the_grader_is_its_own_zero(tmp_path, monkeypatch):
    """Whatever fails while one submission is graded (here: the grader itself, made to raise for
    one student) becomes that student's 0 with the reason; the others are graded and recorded."""
    from grader import course as workflow

    course = tmp_path / "course"
    students = tmp_path / "students.csv"
    students.write_text("id\nann\nbob\n")
    _run("init", course, "--students", students, "--solutions", few_solutions(tmp_path / "solutions", "00_welcome"))
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    for student in ("ann", "bob"):
        filled_notebook("00_welcome.ipynb", {}, downloads / f"{student}_00_welcome.ipynb")
    _run("collect", course, "00_welcome", downloads)
    real = workflow._grade_student

    def breaks_for_bob(root, assignment, student, timeout, worker=None):
        if student == "bob":
            raise OSError("disk on fire")
        return real(root, assignment, student, timeout, worker)

    monkeypatch.setattr(workflow, "_grade_student", breaks_for_bob)
    results = {r["student"]: r for r in workflow.autograde(course, "00_welcome", jobs=2)}
    assert results["ann"]["score"] == 2.0
    assert results["bob"]["score"] == 0.0 and "disk on fire" in results["bob"]["errors"][0]
    review = {r["student_id"]: r for r in csv.DictReader(open(course / "reports" / "00_welcome-review.csv"))}
    assert review["bob"]["flagged"] == "yes" and "disk on fire" in review["bob"]["reasons"]
    _run("export", course, tmp_path / "grades.csv")
    scores = {r["student_id"]: float(r["score"]) for r in csv.DictReader(open(tmp_path / "grades.csv"))
              if r["assignment"] == "00_welcome"}
    assert scores == {"ann": 2.0, "bob": 0.0}
