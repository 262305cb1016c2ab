"""A warm grading worker: a class's submissions graded without a Python, a torch import or the
notebook's trusted cells per submission.

``grader.check.grade`` starts a sandbox per notebook: bubblewrap, a Python, IPython and torch
imported, the source notebook's setup and demo cells run, and only then the learner's answer
cells, each in a process forked from that state. A ``Worker`` does that work once per source
notebook and keeps it:

- one sandbox per source notebook (``run_notebook.py`` in warm mode, as root inside bubblewrap),
  which runs the trusted cells once and, at each exercise, forks a *stage* that keeps the state
  before that exercise (torch, the course, the reference answers to the exercises before it);
- per submission and exercise, a child forked from that exercise's stage, which, before any of
  the learner's code runs, enters a mount and IPC namespace of its own with the submission's own
  folder as /tmp, takes the resource limits, drops every capability and becomes a user id that
  only this submission has; the harness and the verdicts are grade()'s (same records, same
  oracles, same messages);
- after the submission, every process of that user id is killed and its folder removed. The
  stages are root processes it cannot signal, trace or limit, so nothing it does (a patched
  torch, a changed default dtype, a module in sys.modules, a file in /tmp, a process left
  running) reaches the next submission; a crash or a hang costs only the exercise it happened
  in, as with grade(). Anything unexpected of the sandbox itself (a stage gone, a child that
  could not enter the submission) closes it, and that submission is graded again by
  ``grader.check.execute``, a sandbox of its own.

Every torch of the sandbox runs on one thread (OMP_NUM_THREADS=1), so N workers on N cores do
not fight over them. Where the warm sandbox cannot run (no bubblewrap, not root:
``sandbox.warm_capable()``), a Worker grades each submission exactly as ``grade()`` does.

API (one Worker per thread or process; it is not thread-safe):

    with Worker() as worker:
        verdict = worker.grade(notebook_bytes, salt, timeout)   # -> dict, `grader check --json`'s
        grade = worker.check(path, salt=..., source=..., hide=[...])   # -> grader.check.Grade

``grade(notebook, salt=None, timeout=60, *, name="submission.ipynb", source=None,
call_timeout=30, limits=None, hide=())``: ``notebook`` is the file's bytes, ``name`` its file
name (the source notebook is found by its NN_ number unless ``source`` names it); raises
UngradableNotebook where ``grader check`` exits with status 2. ``check(path, **options)`` takes
``grader.check.grade``'s keywords. ``Pool(jobs)`` holds ``jobs`` workers for a batch:
``pool.map(fn, items)`` calls ``fn(worker, item)`` on ``jobs`` threads.
"""

from __future__ import annotations

import json
import os
import queue
import secrets
import sys
import tempfile
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from . import check, plans, sandbox
from .check import CALL_TIMEOUT, DEFAULT_CELL_TIMEOUT, MAX_NOTEBOOK_SECONDS, MAX_RESULT_BYTES, MAX_SUBMISSION_SECONDS

JOBS_PATH = "/dev/fd/97"   # run_notebook.JOBS_FD: each exercise's jobs, a memory file in its process
MAX_WARM = 2               # source notebooks a worker keeps warm at once

_used_uids: set[int] = set()
_uid_lock = threading.Lock()


def _fresh_uid() -> int:
    """A user id no submission of this process had yet (once all of sandbox.pick_uid's range was
    used, any: every process of a submission's id was killed when it ended)."""
    with _uid_lock:
        for _ in range(1000):
            uid = sandbox.pick_uid()
            if uid is None:
                raise _Broken("no user id to give (not root)")
            if uid not in _used_uids:
                _used_uids.add(uid)
                return uid
        _used_uids.clear()
        return sandbox.pick_uid()


class _Broken(Exception):
    """The warm sandbox failed (never the submission): grade it in a sandbox of its own."""


class _Warm:
    """One source notebook's warm sandbox: trusted cells run once, a stage per exercise."""

    def __init__(self, steps: list[check.Step], exercises: list[str], jobs_at: set[int], optimizers: bool, *,
                 timeout: int, limits: sandbox.Limits, hide):
        self.broken = False
        self.timeout, self.limits = timeout, limits
        self.tmp = tempfile.TemporaryDirectory(prefix="grader-warm-")
        self.runner = None
        try:
            self._start(steps, exercises, jobs_at, optimizers, hide)
        except BaseException:
            self.close()
            raise

    def _ask(self, command, seconds: float) -> dict:
        answer = self.runner.ask(command, seconds)
        if answer is None:
            raise _Broken(f"no answer to {str(command)[:60]}")
        return answer

    def _start(self, steps, exercises, jobs_at, optimizers, hide) -> None:
        workdir = Path(self.tmp.name)
        pkg = check._sandbox_package(workdir, exercises)
        scratch = sandbox.scratch_dir(str(workdir))
        sandbox.prepare(str(workdir), None)
        env = check.sandbox_env(pkg, scratch)
        env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")  # one thread per job: N jobs, N cores
        argv = sandbox.wrap([sys.executable, str(pkg / "run_notebook.py"), scratch, str(self.timeout),
                             "own-pid-namespace", "warm"], str(workdir), hide=sorted(hide), limits=self.limits)
        self.runner = check._Runner(argv, env, str(workdir), sandbox.warm_limits(self.limits),
                                    time.monotonic() + MAX_NOTEBOOK_SECONDS)
        if not self._ask(None, 120).get("warm"):
            raise _Broken("the runner is not in warm mode")
        probe = {"uid": _fresh_uid(), "sub": "probe"}
        if not self._ask({"probe": probe, "limits": sandbox.submission_limits(self.limits)}, 60).get("probe"):
            raise _Broken("a child could not enter a submission")
        self._forget(probe)
        cell = self.timeout + 30
        if optimizers:
            self._ask({"run": -1, "source": "import torch._dynamo"}, cell)
        for i, step in enumerate(steps):
            if step.name is not None:
                self._ask({"stage": i}, 60)
            self._ask({"run": i, "source": step.source}, cell)
        if len(steps) in jobs_at:
            self._ask({"stage": len(steps)}, 60)
        self.problems = [str(p)[:300] for p in self._ask({"problems": True}, 30).get("problems", [])][:20]

    def _forget(self, submission: dict) -> None:
        if not self._ask({"forget": submission}, 60).get("clean"):
            raise _Broken("a submission's processes or files outlived it")

    def execute(self, steps, plan, *, timeout: int, call_timeout: int, total_seconds: int):
        """check.execute's result for one submission, from this sandbox's stages."""
        jobs_by_step = check._exercise_jobs(plan, steps)
        submission = {"uid": _fresh_uid(), "sub": secrets.token_hex(8)}
        limits = sandbox.submission_limits(self.limits)
        harness = plans.harness_source(JOBS_PATH, check.RESULTS_PATH, call_timeout)
        wall = min(MAX_NOTEBOOK_SECONDS, total_seconds)
        self.runner.deadline = time.monotonic() + wall
        records: dict[str, dict] = {}
        problems: list[str] = []
        graded = [(i, s.name, s.imports, s.learner) for i, s in enumerate(steps) if s.name is not None]
        if len(steps) in jobs_by_step:   # checks of names no answer cell defines: where the notebook ends
            graded.append((len(steps), "the notebook", "", "pass"))
        try:
            for i, name, imports, learner in graded:
                jobs = jobs_by_step.get(i, [])
                seconds = (timeout if i < len(steps) else 0) + call_timeout * len(jobs) + 10
                answer = self.runner.ask({
                    "grade": i, "exercise": name, "imports": imports, "source": learner,
                    "harness": harness if i in jobs_by_step else "pass",
                    "jobs": json.dumps(jobs, allow_nan=False), "deadline": seconds, "max_bytes": MAX_RESULT_BYTES,
                    "timeout": timeout, "limits": limits, **submission}, seconds + 30)
                if answer is None and time.monotonic() >= self.runner.deadline:
                    self.broken = True   # a command is still running in there
                    check._crashed(name, jobs, records, problems)
                    problems.append(f"grading stopped after {wall} s (the notebook ran too long)")
                    return records, problems
                if answer is None or answer.get("status") in ("lost", "not started"):
                    raise _Broken(f"{name}: {answer and answer.get('status')}")
                check._take(name, jobs, answer, records, problems, seconds)
        finally:
            if not self.broken:
                self.runner.deadline = time.monotonic() + 90
                try:
                    self._forget(submission)
                except _Broken:
                    self.broken = True
        if self.broken:
            raise _Broken("the submission could not be cleaned up")
        return records, problems + self.problems

    def close(self) -> None:
        if self.runner is not None:
            self.runner.close()
            self.runner = None
        self.tmp.cleanup()


class Worker:
    """Grades submissions one at a time in warm sandboxes (see the module's docstring)."""

    def __init__(self, *, warm: bool | None = None, max_warm: int = MAX_WARM):
        self.warm = sandbox.warm_capable() if warm is None else warm
        self.max_warm = max_warm
        self._boxes: OrderedDict[tuple, _Warm] = OrderedDict()
        self.fallbacks = 0   # submissions graded in a sandbox of their own after a warm sandbox failed

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        while self._boxes:
            self._boxes.popitem()[1].close()

    def check(self, path: str | Path, **options) -> check.Grade:
        """``grader.check.grade(path, **options)``, run in this worker's warm sandbox."""
        return check.grade(path, executor=self._execute, **options)

    def grade(self, notebook: bytes, salt: str | None = None, timeout: int = DEFAULT_CELL_TIMEOUT, *,
              name: str = "submission.ipynb", source: str | Path | None = None,
              call_timeout: int = CALL_TIMEOUT, limits: sandbox.Limits | None = None, hide=()) -> dict:
        """The verdict (``grader check --json``'s object) of the notebook file ``notebook`` (bytes)."""
        with tempfile.TemporaryDirectory(prefix="grader-submission-") as folder:
            path = Path(folder) / (Path(name).name or "submission.ipynb")
            path.write_bytes(notebook)
            return self.check(path, salt=salt, timeout=timeout, source=source, call_timeout=call_timeout,
                              limits=limits, hide=hide).to_json()

    def _execute(self, steps, plan, exercises, *, timeout, call_timeout, limits, hide,
                 total_seconds: int = MAX_SUBMISSION_SECONDS):
        cold = dict(timeout=timeout, call_timeout=call_timeout, limits=limits, hide=hide, total_seconds=total_seconds)
        if not self.warm:
            return check.execute(steps, plan, exercises, **cold)
        jobs_at = set(check._exercise_jobs(plan, steps))
        optimizers = any(job["kind"] in check.BUILDS_OPTIMIZERS for job in plan.jobs)
        shown = sandbox.exposed(hide)
        key = (tuple((s.source, s.name) for s in steps), tuple(exercises), tuple(sorted(jobs_at)), optimizers,
               timeout, limits, shown)
        box = self._boxes.pop(key, None)
        try:
            if box is None:
                while len(self._boxes) >= self.max_warm:
                    self._boxes.popitem(last=False)[1].close()
                box = _Warm(steps, exercises, jobs_at, optimizers, timeout=timeout, limits=limits, hide=shown)
            result = box.execute(steps, plan, timeout=timeout, call_timeout=call_timeout, total_seconds=total_seconds)
        except _Broken:
            if box is not None:
                box.close()
            self.fallbacks += 1
            return check.execute(steps, plan, exercises, **cold)
        if box.broken:
            box.close()
        else:
            self._boxes[key] = box
        return result


class Pool:
    """``jobs`` Workers for a batch, with this process's torch on cores / jobs threads meanwhile
    (the verdicts' oracles run here). ``map(fn, items)``: ``fn(worker, item)`` for every item, on
    ``jobs`` threads, each call with a worker of its own; the results in the items' order."""

    def __init__(self, jobs: int, **options):
        self.workers = [Worker(**options) for _ in range(max(1, jobs))]
        self._threads = None

    def __enter__(self) -> Pool:
        import torch
        self._threads = torch.get_num_threads()
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // len(self.workers)))
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        for worker in self.workers:
            worker.close()
        if self._threads is not None:
            import torch
            torch.set_num_threads(self._threads)
            self._threads = None

    @property
    def fallbacks(self) -> int:
        return sum(w.fallbacks for w in self.workers)

    def map(self, fn, items) -> list:
        free: queue.Queue = queue.Queue()
        for worker in self.workers:
            free.put(worker)

        def run(item):
            worker = free.get()
            try:
                return fn(worker, item)
            finally:
                free.put(worker)

        with ThreadPoolExecutor(max_workers=len(self.workers)) as pool:
            return list(pool.map(run, items))


__all__ = ["Worker", "Pool"]
