"""Grading a class on a Dask cluster (grader/cluster.py): the same review and grades as the local
path, on `--cluster local:2` and on a scheduler whose worker is killed mid-batch."""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import zipfile

import nbformat
import pytest

from catalogue import nb00_welcome as cat00
from conftest import NOTEBOOKS, REPO, SOLUTIONS, answer_cells, few_solutions, filled_notebook

SOLVED = answer_cells(nbformat.read(SOLUTIONS / "00_welcome.ipynb", as_version=4))["softmax"]
ONE_D_BROKEN = SOLVED.replace('"""Softmax', '"""1-D inputs returned as they are.\n    Softmax', 1).replace(
    "    ### BEGIN SOLUTION\n", "    ### BEGIN SOLUTION\n    if x.dim() == 1:\n        return x\n", 1)


def _class_of_twenty() -> dict[str, tuple[object, float | None]]:
    """student -> (how their 00_welcome submission is made, the score it earns; None: nothing
    handed in)."""
    roster = {"solution": ({}, 2.0), "renamed": ("renamed", 2.0), "colab": ("colab", 2.0),
              "partial": ({"softmax": ONE_D_BROKEN}, 1.0), "zipped": ("zipped", 1.0)}
    for i, name in enumerate(["logsumexp", "torch_softmax", "functional_softmax", "movedim_last_axis"]):
        roster[f"valid{i}"] = ({"softmax": cat00.VALID["softmax"][name]}, 2.0)
    for i, name in enumerate(["dim0_hardcoded", "global_max", "inplace_subtract_max"]):
        roster[f"wrong{i}"] = ({"softmax": cat00.WRONG["softmax"][name]}, 0.0)
    roster |= {"corrupt": ("corrupt", 0.0), "empty": ("empty", 0.0), "untouched": ("untouched", 0.0),
               "nonotebook": ("no_notebook", 0.0), "syntax": ({"softmax": "def softmax(x, dim=-1)\n"}, 0.0)}
    roster |= {f"missing{i}": (None, None) for i in range(3)}
    assert len(roster) == 20
    return roster


def _write(student: str, how, downloads) -> None:
    name = downloads / f"{student}_00_welcome.ipynb"
    if isinstance(how, dict):
        filled_notebook("00_welcome.ipynb", how, name)
    elif how == "renamed":
        filled_notebook("00_welcome.ipynb", {}, downloads / f"{student}_Copy of 00_welcome (1).ipynb")
    elif how == "colab":   # a Colab re-save: every cell's metadata gone (repaired, not flagged)
        nb = nbformat.read(filled_notebook("00_welcome.ipynb", {}, name), as_version=4)
        for cell in nb.cells:
            cell.metadata = {}
        nbformat.write(nb, name)
    elif how == "zipped":
        inner = filled_notebook("00_welcome.ipynb", {"softmax": ONE_D_BROKEN}, downloads.parent / "zip" / "00_welcome.ipynb")
        with zipfile.ZipFile(downloads / f"{student}_upload.zip", "w") as archive:
            archive.write(inner, "work/00_welcome.ipynb")
    elif how == "corrupt":
        name.write_text('{"cells": [')
    elif how == "empty":
        name.write_text("")
    elif how == "untouched":
        name.write_bytes((NOTEBOOKS / "00_welcome.ipynb").read_bytes())
    elif how == "no_notebook":
        with zipfile.ZipFile(downloads / f"{student}_upload.zip", "w") as archive:
            archive.writestr("readme.txt", "forgot the notebook")
    elif how is not None:
        raise ValueError(how)


def _grader(*args, check=True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "grader", *map(str, args)], capture_output=True, text=True,
                          cwd=REPO, timeout=1200)
    assert not check or proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def _review(course) -> tuple[list[list[str]], list[str]]:
    """The review CSV's rows without the worker column, and that column."""
    rows = list(csv.reader(open(course / "reports" / "00_welcome-review.csv")))
    at = rows[0].index("worker")
    return [r[:at] + r[at + 1:] for r in rows], [r[at] for r in rows[1:]]


def _export(course, dest) -> list[dict]:
    _grader("course", "export", course, dest)
    return list(csv.DictReader(open(dest)))


def _verdicts(course) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in (course / ".grader" / "verdicts" / "00_welcome").glob("*.json")}


def _pid(worker: str) -> int:
    return int(re.search(r"\(pid (\d+)\)$", worker).group(1))


@pytest.fixture(scope="module")
def graded_class(tmp_path_factory):
    """A class of 20 (17 uploads, 3 students with nothing) graded by the local path: the course
    folder, its review rows (without the worker column) and its export."""
    pytest.importorskip("distributed")
    tmp = tmp_path_factory.mktemp("cluster")
    roster = _class_of_twenty()
    students = tmp / "students.csv"
    students.write_text("id\n" + "".join(f"{s}\n" for s in sorted(roster)))
    course = tmp / "course"
    _grader("course", "init", course, "--students", students, "--solutions", few_solutions(tmp / "solutions", "00_welcome"))
    downloads = tmp / "downloads"
    downloads.mkdir()
    for student, (how, _) in roster.items():
        _write(student, how, downloads)
    _grader("course", "collect", course, "00_welcome", downloads)
    _grader("course", "autograde", course, "00_welcome", "--jobs", "2", "--timeout", "20")
    review, workers = _review(course)
    export = _export(course, tmp / "local.csv")
    # The local path grades as the class was built to earn, and names its host and process.
    scores = {r["student_id"]: float(r["score"]) for r in export if r["assignment"] == "00_welcome"}
    assert scores == {s: score or 0.0 for s, (_, score) in roster.items()}
    assert all(bool(worker) != row[0].startswith("missing") for row, worker in zip(review[1:], workers))
    return {"course": course, "review": review, "export": export, "verdicts": _verdicts(course), "tmp": tmp}


@pytest.mark.slow  # a class of 20 graded twice (make test-all, CI)
def test_a_local_cluster_grades_as_the_local_path(graded_class):
    course = graded_class["course"]
    out = _grader("course", "autograde", course, "00_welcome", "--cluster", "local:2", "--all", "--timeout", "20").stdout
    review, workers = _review(course)
    assert review == graded_class["review"]
    assert _export(course, graded_class["tmp"] / "cluster.csv") == graded_class["export"]
    assert _verdicts(course) == graded_class["verdicts"]
    graded = [w for w in workers if w]
    assert len(graded) == 17 and all(w.startswith("dask worker ") for w in graded), workers
    assert len({_pid(w) for w in graded}) == 2, workers   # both workers took part
    assert len(re.findall(r"^\[\d+/17\] ", out, re.M)) == 17


@pytest.mark.slow  # a class of 20 on a cluster whose worker is killed (make test-all, CI)
def test_a_worker_killed_mid_batch_loses_no_grade_and_writes_none_twice(graded_class):
    import psutil
    from distributed import Client, LocalCluster

    course = graded_class["course"]
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      memory_limit=0) as cluster, Client(cluster) as client:
        pids = client.run(os.getpid)   # worker address -> pid
        proc = subprocess.Popen([sys.executable, "-m", "grader", "course", "autograde", str(course), "00_welcome",
                                 "--scheduler", cluster.scheduler_address, "--all", "--timeout", "20"],
                                cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        lines, errors = [], []
        readers = [threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True),
                   threading.Thread(target=lambda: errors.extend(proc.stderr), daemon=True)]
        for reader in readers:
            reader.start()
        killed = None
        deadline = time.monotonic() + 900
        while killed is None and proc.poll() is None and time.monotonic() < deadline:
            done = sum(1 for line in list(lines) if re.match(r"\[\d+/17\] ", line))
            if done >= 3:
                # A worker that is grading now (its sandbox is running): SIGKILL it, mid-submission.
                for address, pid in pids.items():
                    if psutil.Process(pid).children():
                        running = list(client.processing(workers=[address]).get(address, []))
                        os.kill(pid, signal.SIGKILL)
                        killed = (pid, running)
                        break
            time.sleep(0.05)
        proc.wait(timeout=900)
        for reader in readers:
            reader.join(timeout=10)
    output = "".join(lines)
    assert proc.returncode == 0, output[-3000:] + "".join(errors)[-3000:]
    assert killed is not None, f"the batch ended before a worker could be killed:\n{output}"
    pid, running = killed
    interrupted = {re.match(r"grade-00_welcome-(.+)-[0-9a-f]{8}$", str(key)).group(1) for key in running}
    assert interrupted, running

    # Every student graded exactly once: one progress line, one review row, one verdict, one grade.
    progress = [re.match(r"\[(\d+)/17\] (\S+): ", line) for line in lines]
    graded = [m.group(2) for m in progress if m]
    assert sorted(graded) == sorted(s for s, (how, _) in _class_of_twenty().items() if how is not None)
    assert [int(m.group(1)) for m in progress if m] == list(range(1, 18))
    review, workers = _review(course)
    assert review == graded_class["review"]
    assert _export(course, graded_class["tmp"] / "killed.csv") == graded_class["export"]
    assert _verdicts(course) == graded_class["verdicts"]
    # What the killed worker was grading was graded again, by another worker process.
    by_student = {row[0]: worker for row, worker in zip(review[1:], workers)}
    for student in interrupted:
        assert _pid(by_student[student]) != pid, (student, by_student[student], pid)


def test_grade_submission_grades_bytes_without_the_course_folder(tmp_path, request):
    """The function a Dask task runs: bytes, salt and timeout in, the verdict out; it reads no
    course folder (the source notebook travels as bytes too), and messages name the file as the
    coordinator knows it."""
    from grader import cluster
    from grader.check import grade
    from grader.cluster import grade_submission

    # The warm worker this thread grades in is closed after the test (not held by the session).
    request.addfinalizer(lambda: getattr(cluster._LOCAL, "worker", None) and cluster._LOCAL.__dict__.pop("worker").close())
    source = (SOLUTIONS / "00_welcome.ipynb").read_bytes()
    wrong = filled_notebook("00_welcome.ipynb", {"softmax": cat00.WRONG["softmax"]["global_max"]}, tmp_path / "w.ipynb")
    out = grade_submission(wrong.read_bytes(), "salt-1", 20, source=source, assignment="00_welcome",
                           name="/course/submitted/ann/00_welcome/w.ipynb")
    assert out["verdict"] == grade(wrong, source=SOLUTIONS / "00_welcome.ipynb", salt="salt-1", timeout=20).to_json()
    assert out["verdict"]["score"] == 0.0 and out["answers"]["softmax"] == cat00.WRONG["softmax"]["global_max"]
    assert out["worker"] and out["code"]
    corrupt = grade_submission(b'{"cells": [', "salt-1", 20, source=source, assignment="00_welcome",
                               name="/course/submitted/bob/00_welcome/b.ipynb")["verdict"]
    assert corrupt["score"] == 0.0 and corrupt["max_score"] == 2.0
    assert corrupt["errors"][0].startswith("ungradable: /course/submitted/bob/00_welcome/b.ipynb: not a notebook")
    nothing = grade_submission(None, "salt-1", 20, source=source, assignment="00_welcome")["verdict"]
    assert nothing["errors"] == ["ungradable: no notebook was submitted"] and nothing["score"] == 0.0


def test_cluster_options_and_a_missing_dask(tmp_path):
    from grader.cluster import parse_local

    assert parse_local("local:3") == 3
    for bad in ("local:0", "local:", "local:x", "tcp://host:8786", "ssh:2"):
        with pytest.raises(ValueError):
            parse_local(bad)
    bad = _grader("course", "autograde", tmp_path, "00_welcome", "--cluster", "remote:2", check=False)
    assert bad.returncode == 2 and "expected local:N" in bad.stderr
    both = _grader("course", "autograde", tmp_path, "00_welcome", "--jobs", "2", "--cluster", "local:2", check=False)
    assert both.returncode == 2 and "not allowed with" in both.stderr
    # Without dask.distributed: one line and status 2 for the cluster options; `check` still works.
    corrupt = tmp_path / "00_welcome.ipynb"
    corrupt.write_text("{")
    for argv, status, says in ((["course", "autograde", str(tmp_path), "00_welcome", "--cluster", "local:2"], 2,
                                "need dask.distributed"),
                               (["course", "autograde", str(tmp_path), "00_welcome", "--scheduler", "tcp://h:8786"], 2,
                                "need dask.distributed"),
                               (["check", str(corrupt)], 2, "cannot grade")):
        proc = subprocess.run([sys.executable, "-c", "import sys; sys.modules['distributed'] = sys.modules['dask'] = None; "
                               "from grader.__main__ import main; sys.exit(main(sys.argv[1:]))", *argv],
                              capture_output=True, text=True, cwd=REPO, timeout=300)
        assert proc.returncode == status and says in proc.stderr, (argv, proc.stderr)
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_the_coordinator_records_each_result_once_and_a_failed_task_as_its_own_zero(tmp_path, monkeypatch):
    """grader.cluster.grade on an in-process Dask cluster, with the task function replaced: what
    comes back is staged and recorded on the coordinator (answers put into the released notebook,
    the timestamp kept, the verdict written by student); a task that fails on the cluster is that
    student's 0 with the reason; a worker with other grading code stops the run."""
    distributed = pytest.importorskip("distributed")
    from grader import cluster
    from grader.course import _salt

    root = tmp_path / "course"
    for folder, notebook in (("source", SOLUTIONS), ("release", NOTEBOOKS)):
        (root / folder / "00_welcome").mkdir(parents=True)
        (root / folder / "00_welcome" / "00_welcome.ipynb").write_bytes((notebook / "00_welcome.ipynb").read_bytes())
    (root / ".grader").mkdir()
    (root / ".grader" / "secret").write_text("not a secret")
    for student in ("ann", "bob"):
        folder = root / "submitted" / student / "00_welcome"
        folder.mkdir(parents=True)
        (folder / "mine.ipynb").write_text(student)
        (folder / "timestamp.txt").write_text("2026-10-01 12:00:00.000000 UTC")
    code = {"value": cluster.code_version()}

    def fake(data, salt, timeout, *, source, assignment, name=None, hide=()):
        if data == b"bob":
            raise RuntimeError("the node caught fire")
        assert salt == _salt(root, data.decode(), "00_welcome") and source.startswith(b"{")
        return {"verdict": {"notebook": "mine.ipynb", "score": 2.0, "max_score": 2.0, "cells": [], "errors": []},
                "answers": {"softmax": "def softmax(x, dim=-1):\n    return 'answer of ann'\n"},
                "worker": "a fake worker", "code": code["value"]}

    monkeypatch.setattr(cluster, "grade_submission", fake)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as local:
        graded = cluster.grade(root, "00_welcome", ["ann", "bob"], timeout=20, scheduler=local.scheduler_address)
        assert set(graded) == {"ann", "bob"}
        assert graded["ann"]["score"] == 2.0 and graded["ann"]["worker"] == "a fake worker"
        assert graded["bob"]["score"] == 0.0 and "could not grade" in graded["bob"]["errors"][0]
        assert "the node caught fire" in graded["bob"]["errors"][0] and graded["bob"]["worker"].startswith("none")
        verdicts = root / ".grader" / "verdicts" / "00_welcome"
        assert json.loads((verdicts / "ann.json").read_text())["student"] == "ann"
        assert json.loads((verdicts / "bob.json").read_text())["score"] == 0.0
        staged = root / ".grader" / "staged" / "ann" / "00_welcome"
        assert "answer of ann" in (staged / "00_welcome.ipynb").read_text()
        assert (staged / "timestamp.txt").read_text().startswith("2026-10-01")

        code["value"] = "other code"
        with pytest.raises(SystemExit, match="other grading code"):
            cluster.grade(root, "00_welcome", ["ann"], timeout=20, scheduler=local.scheduler_address)
