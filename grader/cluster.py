"""Grading a class on a Dask cluster (``course autograde --scheduler ADDRESS | --cluster local:N``).

The coordinator (the machine with the course folder) reads each submission and sends its bytes,
its grading salt (an HMAC of the course secret, which never leaves the coordinator) and the
assignment's source notebook to the cluster as one task of ``grade_submission``. A worker, a
``dask worker`` process on a machine where the course is installed, grades the bytes with
grader.check in its own sandbox (grader/sandbox.py; warm, grader/worker.py, where that can run)
and a temporary folder of its own: it needs nothing of the coordinator's file system. The verdict and the learner's answer cells come back;
the coordinator alone writes them (the staged copy and the verdict of each student, then
nbgrader, the fingerprints and the review, exactly as a local run: grader/course.py autograde).

Dask's scheduler does the placing and the recovery: a worker that dies while it grades has its
task run again on another worker (up to the scheduler's ``distributed.scheduler.allowed-failures``
deaths, default 3; past that the submission gets a 0 with the reason). Each task's result is
taken once, keyed by student, so no grade is lost or written twice. The review CSV's ``worker``
column names the worker that graded each submission.

dask.distributed is an optional dependency (the dev extras): it is imported only here, inside
the functions that need it, so ``python -m grader check`` and a local autograde work without it.
"""

from __future__ import annotations

import atexit
import functools
import hashlib
import os
import secrets
import socket
import tempfile
import threading
from pathlib import Path

NEEDS_DASK = ("--scheduler and --cluster need dask.distributed, which is not installed here: "
              "pip install distributed (it is in the course's dev extras)")
_TORCH = threading.Lock()
_LOCAL = threading.local()   # each thread's warm grading worker (grader.worker.Worker)


def parse_local(spec: str) -> int:
    """The N of ``--cluster local:N`` (ValueError for anything else)."""
    kind, _, count = spec.partition(":")
    if kind != "local" or not count.isdigit() or int(count) < 1:
        raise ValueError(f"--cluster {spec!r}: expected local:N with N at least 1 (e.g. local:4)")
    return int(count)


def require_dask() -> None:
    """SystemExit with one line when dask.distributed cannot be imported."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise SystemExit(NEEDS_DASK) from None


def local_worker() -> str:
    """The ``worker`` of a submission graded without a cluster: this host and process."""
    return f"{socket.gethostname()} (pid {os.getpid()})"


def _this_worker() -> str:
    try:
        from distributed import get_worker
        worker = get_worker()
    except (ImportError, ValueError):
        return local_worker()
    return f"dask worker {worker.name} on {local_worker()}"


@functools.lru_cache(maxsize=None)
def code_version() -> str:
    """A hash of the grading code (the Python files of gpt2course and grader): a coordinator and
    its workers must grade with the same code, or a class would get two different graders."""
    import gpt2course

    digest = hashlib.sha256()
    for package in (Path(gpt2course.__file__).parent, Path(__file__).parent):
        for path in sorted(package.rglob("*.py")):
            digest.update(f"{package.name}/{path.relative_to(package).as_posix()}\0".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def worker_info() -> dict:
    """What a worker reports before a run: its code version, sandbox and host."""
    from . import sandbox
    return {"code": code_version(), "sandbox": sandbox.available(), "describe": sandbox.describe(),
            "host": socket.gethostname()}


def _grader():
    """This thread's grader.worker.Worker (kept between tasks: its warm sandboxes are what makes
    a worker process fast), or grader.check's own ``grade`` where grader.worker is not there."""
    worker = getattr(_LOCAL, "worker", None)
    if worker is None:
        try:
            from .worker import Worker
        except ImportError:
            from . import check
            return check.grade
        worker = _LOCAL.worker = Worker()
        atexit.register(worker.close)
    return worker.check


def grade_submission(data: bytes | None, salt: str, timeout: int, *, source: bytes, assignment: str,
                     name: str | None = None, hide: list[str] = ()) -> dict:
    """Grade one submission, given as its bytes (None: nothing was submitted), on this machine.

    This is the function a Dask task runs on a worker. ``salt`` seeds the hidden inputs,
    ``timeout`` is the seconds per cell, ``source`` the bytes of the assignment's source notebook,
    ``name`` the submission's path on the coordinator (messages name it, as a local run does),
    ``hide`` more folders the learner's code must not see. Returns {"verdict": the grade's JSON
    (as ``grader check --json`` prints it), "answers": the answer cells and written answers as
    graded, by grade_id, "worker": who graded it, "code": code_version()}. Whatever happens to
    the file, the verdict is a grade (0 with the reason when it could not be graded).
    """
    from .notebook import UngradableNotebook, max_points, read_notebook

    with _TORCH:  # grader.check's modules import torch: threads of one worker must not race to
        import torch  # noqa: F401
    from . import check
    out = {"answers": {}, "worker": _this_worker(), "code": code_version()}
    with tempfile.TemporaryDirectory(prefix="grade-") as tmp:
        source_path = Path(tmp) / "source" / f"{assignment}.ipynb"
        source_path.parent.mkdir()
        source_path.write_bytes(source)
        source_nb = read_notebook(source_path)
        if data is None:
            out["verdict"] = check.ungradable_verdict(f"{assignment}.ipynb", max_points(source_nb),
                                                      "no notebook was submitted")
            return out
        shown = name or f"{assignment}.ipynb"
        path = Path(tmp) / "submission" / Path(shown).name
        path.parent.mkdir()
        path.write_bytes(data)
        try:
            grade = _grader()(path, source=source_path, salt=salt, timeout=timeout,
                              hide=[source_path.parent, *map(Path, hide)])
            out["verdict"], out["answers"] = grade.to_json(), grade.answers
        except UngradableNotebook as exc:
            out["verdict"] = check.ungradable_verdict(path.name, max_points(source_nb), str(exc))
        except Exception as exc:  # noqa: BLE001 - recorded as this submission's verdict
            out["verdict"] = _failed(assignment, source_nb, exc)
        # Messages that name the file name it as the coordinator knows it.
        errors = out["verdict"]["errors"]
        for written in (str(path.resolve()), str(path)):  # resolved first: it may hold the other
            errors = [e.replace(written, shown) for e in errors]
        out["verdict"]["errors"] = errors
    return out


def _failed(assignment: str, source_nb, exc: BaseException) -> dict:
    from . import check
    return check.failed_grade(f"{assignment}.ipynb", source_nb, check.grader_failure(exc)).to_json()


def store_worker(verdicts: Path, student: str, worker: str) -> None:
    """Keep who graded ``student``'s verdict (``<student>.worker`` beside it) for later reviews."""
    verdicts.mkdir(parents=True, exist_ok=True)
    (verdicts / f"{student}.worker").write_text(worker + "\n")


def stored_worker(verdicts: Path, student: str) -> str:
    try:
        return (verdicts / f"{student}.worker").read_text().strip()
    except OSError:
        return ""


def _connect(scheduler: str | None, local: int | None):
    """(client, cluster or None): a client of the scheduler at ``scheduler``, or of a new local
    cluster of ``local`` worker processes with one thread each."""
    import dask
    from distributed import Client, LocalCluster

    if local:
        cluster = LocalCluster(n_workers=local, threads_per_worker=1, processes=True,
                               dashboard_address=None, memory_limit=0)
        return Client(cluster), cluster
    try:
        return Client(scheduler, timeout=dask.config.get("distributed.comm.timeouts.connect", "30s")), None
    except OSError as exc:
        raise SystemExit(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None


def _check_workers(client, mine: str) -> None:
    """Wait for a first worker; stop when a worker runs other grading code; say how each isolates."""
    if not client.scheduler_info()["workers"]:
        print("waiting for a Dask worker to connect to the scheduler ...", flush=True)
        try:
            client.wait_for_workers(1, timeout=600)
        except TimeoutError:
            raise SystemExit("no Dask worker connected to the scheduler within 10 minutes") from None
    infos = client.run(worker_info)
    other = {address: info for address, info in infos.items() if info["code"] != mine}
    if other:
        raise SystemExit("these workers run other grading code than this machine (install the same "
                         f"version of the course there): {', '.join(sorted(other))}")
    for address, info in sorted(infos.items()):
        print(f"worker {address} on {info['host']}: {info['describe']}")


def grade(root: Path, assignment: str, students: list[str], *, timeout: int, scheduler: str | None = None,
          local: int | None = None) -> dict[str, dict]:
    """Grade ``students``' submissions of ``assignment`` on the cluster; returns student ->
    verdict (with its ``worker``), each written on this machine as it arrives."""
    require_dask()
    from distributed import as_completed

    from . import course
    from .course import record_verdict
    from .notebook import read_notebook

    source_path = root / "source" / assignment / f"{assignment}.ipynb"
    source = source_path.read_bytes()
    client, cluster = _connect(scheduler, local)
    graded: dict[str, dict] = {}
    try:
        mine = code_version()   # hashed when the workers hash theirs (a worker caches its own)
        _check_workers(client, mine)
        futures = {}
        run = secrets.token_hex(4)
        for student in students:
            path = course._pick_notebook(root / "submitted" / student / assignment, assignment)
            futures[client.submit(
                grade_submission, path.read_bytes() if path else None, course._salt(root, student, assignment),
                timeout, source=source, assignment=assignment, name=str(path) if path else None,
                hide=[str(root)], key=f"grade-{assignment}-{student}-{run}")] = student
        for future in as_completed(futures):
            student = futures[future]
            try:
                out = future.result()
            except Exception as exc:  # noqa: BLE001 - e.g. KilledWorker: the task killed its workers
                out = {"verdict": _failed(assignment, read_notebook(source_path), exc), "answers": {},
                       "worker": "none (the task failed on the cluster)", "code": mine}
            if out["code"] != mine:
                raise SystemExit(f"{out['worker']} graded {student} with other grading code than this "
                                 "machine's: install the same version of the course on every worker")
            if student in graded:  # as_completed yields each future once; never write a grade twice
                continue
            result = record_verdict(root, assignment, student, out["verdict"], out["answers"])
            result["worker"] = out["worker"]
            graded[student] = result
            print(f"[{len(graded)}/{len(students)}] {student}: {result['score']:g}/{result['max_score']:g} "
                  f"({out['worker']})", flush=True)
            future.release()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return graded
