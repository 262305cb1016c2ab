"""The course on JupyterHub's nbgrader exchange: init --exchange releases every assignment there;
students fetch and submit with nbgrader's own commands (each in a home folder of its own, as on a
hub); `course collect` takes the submissions with their real timestamps; autograde and feedback
work as with LMS files, and each student fetches their own feedback."""

from __future__ import annotations

import pytest

import csv
import os
import stat
import subprocess
import sys
from datetime import datetime

from conftest import REPO, few_solutions, filled_notebook

from test_class_workflow import ONE_D_BROKEN


def _run(*args):
    proc = subprocess.run([sys.executable, "-m", "grader", "course", *map(str, args)],
                          capture_output=True, text=True, cwd=REPO, timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc.stdout


def _student(home, student, exchange, *args):
    """nbgrader as a student: their own home (cache) and working folder, no course config."""
    env = dict(os.environ, HOME=str(home), JUPYTER_CONFIG_DIR=str(home / ".jupyter"),
               JUPYTER_DATA_DIR=str(home / ".local" / "share" / "jupyter"),
               PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    proc = subprocess.run([sys.executable, "-m", "nbgrader", *args, "--course=gpt2course",
                           f"--student={student}", f"--Exchange.root={exchange}"],
                          capture_output=True, text=True, cwd=home, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


@pytest.mark.slow  # CI (make test-all) runs it; make test stays a few minutes
def test_a_class_through_the_exchange(tmp_path):
    course, exchange = tmp_path / "course", tmp_path / "exchange"
    _run("init", course, "--exchange", exchange,
         "--solutions", few_solutions(tmp_path / "solutions", "00_welcome", "01_tokens_and_data"))
    assert f"c.Exchange.root = {str(exchange.resolve())!r}" in (course / "nbgrader_config.py").read_text()
    assert stat.S_IMODE(exchange.stat().st_mode) == 0o777          # every student writes there
    _run("init", course, "--solutions", tmp_path / "solutions")                                             # a re-run keeps the exchange
    assert f"c.Exchange.root = {str(exchange.resolve())!r}" in (course / "nbgrader_config.py").read_text()
    outbound = exchange / "gpt2course" / "outbound"
    assert (outbound / "00_welcome" / "00_welcome.ipynb").is_file()
    assert (outbound / "01_tokens_and_data" / "01_tokens_and_data.ipynb").is_file()

    answers = {"ann": {}, "ben": {"softmax": ONE_D_BROKEN}}
    for student, answer in answers.items():
        home = tmp_path / "home" / student
        home.mkdir(parents=True)
        _student(home, student, exchange, "fetch_assignment", "00_welcome")
        fetched = home / "00_welcome" / "00_welcome.ipynb"
        assert fetched.is_file()
        filled_notebook("00_welcome.ipynb", answer, fetched)
        _student(home, student, exchange, "submit", "00_welcome")

    _run("collect", course, "00_welcome")        # no downloads folder: the exchange
    stamps = {}
    for student in answers:
        submitted = course / "submitted" / student / "00_welcome"
        assert (submitted / "00_welcome.ipynb").is_file()
        # The time the student submitted (nbgrader's own timestamp.txt), not the collection's.
        inbound = list((exchange / "gpt2course" / "inbound").glob(f"{student}+00_welcome+*"))
        assert len(inbound) == 1
        stamps[student] = (submitted / "timestamp.txt").read_text().strip()
        assert stamps[student] == (inbound[0] / "timestamp.txt").read_text().strip()

    _run("autograde", course, "00_welcome", "--jobs", "2", "--timeout", "10")
    _run("export", course, tmp_path / "grades.csv")
    rows = {r["student_id"]: r for r in csv.DictReader(open(tmp_path / "grades.csv"))
            if r["assignment"] == "00_welcome"}
    assert {s: float(r["score"]) for s, r in rows.items()} == {"ann": 2.0, "ben": 1.0}
    for student, row in rows.items():     # the gradebook holds the submission time too
        recorded = datetime.fromisoformat(row["timestamp"])
        assert recorded.replace(tzinfo=None) == datetime.fromisoformat(
            stamps[student].rsplit(" ", 1)[0]).replace(tzinfo=None), (row["timestamp"], stamps[student])

    _run("feedback", course, "00_welcome")
    assert len(list((exchange / "gpt2course" / "feedback").glob("*.html"))) == 2
    for student in answers:
        home = tmp_path / "home" / student
        _student(home, student, exchange, "fetch_feedback", "00_welcome")
        fetched = list((home / "00_welcome" / "feedback").rglob("00_welcome.html"))
        assert len(fetched) == 1, fetched
        ours = course / "feedback" / student / "00_welcome" / "00_welcome.html"
        assert fetched[0].read_bytes() == ours.read_bytes()
        assert (course / "feedback_archives" / "00_welcome" / f"{student}.zip").is_file()
