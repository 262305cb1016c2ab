"""Grade one learner notebook against its source in solutions/ (``python -m grader check``).

1. The run is built from the source (``build_steps``): its setup and demo cells, and for each
   exercise the learner's answer cell, found by grade_id (or, where metadata was lost, by the
   name the cell defines). Test cells never run in the learner's process.
2. Each test cell's ``check(...)`` calls become a ``Plan``: the cases' inputs, made from seeds
   mixed with a secret salt, written as plain data.
3. In a sandbox (see grader.sandbox), where the checks and the reference code of the exercises
   being graded are replaced by stubs, run_notebook.py runs the trusted cells; each exercise's
   answer cell runs in a process forked from it, followed by a harness that calls the learner's
   function on that exercise's inputs and writes the outputs as plain data. The runner then
   runs the source's own answer in that cell's place, so later cells and exercises build on
   code that works.
4. This process keeps, from each exercise's process, only the records of that exercise's calls,
   verifies them with the checks' oracles and awards points. What grader.flags finds in answer
   cells marks the submission for review; it changes no points.

A class is graded by grader.worker instead: the same steps, harness and verdicts, with step 3 run
in a sandbox kept warm between submissions (``grade(..., executor=...)``).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from gpt2course.checks import protocol
from gpt2course.datafiles import PACKAGED as PACKAGED_DATA, data_dir

from . import expectations, flags, plans, sandbox
from .notebook import (UngradableNotebook, find_source, grade_id, is_answer_cell, is_manual_cell,
                       is_test_cell, is_written_answer, points, read_notebook)
from .paths import REPO

DEFAULT_CELL_TIMEOUT = 60           # seconds per notebook cell
CALL_TIMEOUT = 30                   # seconds per call of a learner's function by the harness
MAX_RESULT_BYTES = 64 * 2**20       # what one exercise's process may write; more earns it nothing
MAX_ANSWER_LINE = 2**20             # the runner's own answers are short JSON lines
MAX_NOTEBOOK_SECONDS = 600          # wall-clock limit for one run of a notebook, whatever its cells do
MAX_SUBMISSION_SECONDS = 900        # wall-clock limit for one submission, all its runs together
MIN_RUN_SECONDS = 20                # a run is not started with less time than this left
# The grading inputs' salt when none is given: one file, one grade, every time. A class is graded
# with salts from its course secret (grader/course.py), which learners never see.
DEFAULT_SALT = "grader check"
# Calls of these kinds build torch optimizers, whose first construction imports torch._dynamo
# (about 1 s): the runner imports it once, before it forks the exercises' processes.
BUILDS_OPTIMIZERS = {protocol.OPTIMIZER, protocol.TRAIN, protocol.SAVE_CHECKPOINT, protocol.LOAD_CHECKPOINT}


@dataclass
class CellResult:
    """One graded cell's verdict. A cell graded by hand (a written answer or a task: ``manual``)
    has no verdict here: its ``score`` and ``passed`` are None and an instructor decides."""
    grade_id: str
    score: float | None
    max_score: float
    passed: bool | None
    message: str
    manual: bool = False


@dataclass
class Grade:
    notebook: str
    score: float
    max_score: float
    cells: list[CellResult] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    # The learner's answer cells as graded and written answers, by grade_id (not part of the
    # JSON report).
    answers: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def manual_points(self) -> float:
        """The part of ``max_score`` that an instructor grades by hand."""
        return float(sum(c.max_score for c in self.cells if c.manual))

    def to_json(self) -> dict:
        """The report: test cells as {grade_id, score, max_score, passed, message}; cells graded by
        hand add ``"manual": true`` (their score and passed null)."""
        report = asdict(self)
        del report["answers"]
        for cell in report["cells"]:
            if not cell["manual"]:
                del cell["manual"]
        return report


@dataclass
class Answers:
    """The learner's answer cells by grade_id, and what the review flagged in them."""
    sources: dict[str, str]
    flagged: dict[str, list[str]]
    notes: list[str]
    # Written answers (graded by hand, never run) by grade_id.
    written: dict[str, str] = field(default_factory=dict)


def collect_answers(source, learner) -> Answers:
    """Match the learner's cells to the source's answer cells.

    By nbgrader grade_id first; a cell whose metadata was stripped or renamed (Colab re-save,
    pasted into a new notebook) is matched by the function or class it defines.
    """
    wanted = [grade_id(c) for c in source.cells if is_answer_cell(c)]
    found: dict[str, str] = {}
    for cell in learner.cells:
        gid = grade_id(cell)
        if cell.get("cell_type") == "code" and gid in wanted and gid not in found:
            found[gid] = cell.get("source", "")
    notes = []
    for cell in learner.cells:
        if cell.get("cell_type") != "code" or grade_id(cell) in found:
            continue
        for name in flags.defined_names(cell.get("source", "")):
            if name in wanted and name not in found and grade_id(cell) not in wanted:
                found[name] = cell.get("source", "")
                notes.append(f"answer cell {name!r} matched by the name it defines (its metadata was missing)")
    for gid in wanted:
        if gid not in found:
            notes.append(f"answer cell {gid!r} not found in the submission")
    flagged = {}
    for gid, src in found.items():
        reasons = flags.review(src)
        others = sorted(flags.bound_names(src) & set(wanted) - {gid})
        if others:
            reasons.append(f"defines {', '.join(others)} too, another exercise's name (each exercise is "
                           "graded on its own answer cell alone)")
        if reasons:
            flagged[gid] = reasons
    written, written_notes = written_answers(source, learner)
    return Answers(found, flagged, notes + written_notes, written)


def written_answers(source, learner) -> tuple[dict[str, str], list[str]]:
    """The learner's written answers (cells graded by hand) by grade_id, and notes.

    By grade_id first; where the metadata was stripped, the cell right after the source cell
    that precedes the answer (the question, found by its text), when it has the answer's type.
    """
    wanted = {grade_id(c): i for i, c in enumerate(source.cells) if is_written_answer(c) and grade_id(c)}
    found: dict[str, str] = {}
    for cell in learner.cells:
        gid = grade_id(cell)
        if gid in wanted and gid not in found and is_written_answer(cell):
            found[gid] = cell.get("source", "")
    notes = []
    texts = [str(c.get("source", "")).strip() for c in learner.cells]
    known = {str(c.get("source", "")).strip() for c in source.cells}
    for gid, i in wanted.items():
        if gid in found or i == 0:
            continue
        question = str(source.cells[i - 1].get("source", "")).strip()
        at = texts.index(question) + 1 if question and question in texts else None
        if at is not None and at < len(learner.cells):
            cell = learner.cells[at]
            if (cell.get("cell_type") == source.cells[i].get("cell_type") and grade_id(cell) not in wanted
                    and texts[at] not in known - {str(source.cells[i].get("source", "")).strip()}):
                found[gid] = cell.get("source", "")
                notes.append(f"written answer {gid!r} matched by its position after the question "
                             "(its metadata was missing)")
                continue
        notes.append(f"written answer {gid!r} not found in the submission")
    return found, notes


def public_source(text: str) -> str:
    """A test cell's text as nbgrader releases it: hidden-test regions removed, markers included
    (the same result as nbgrader's ClearHiddenTests, which tests/grader/test_build.py checks)."""
    kept, hiding = [], False
    for line in text.splitlines(keepends=True):
        if "### BEGIN HIDDEN TESTS" in line:
            hiding = True
        elif "### END HIDDEN TESTS" in line:
            hiding = False
        elif not hiding:
            kept.append(line)
    return "".join(kept)


def structure_notes(source, learner) -> list[str]:
    """What the learner changed in the notebook's structure (all of it is undone by grading)."""
    released = {}  # grade_id -> the texts a test cell may have (as released, or the source's)
    for cell in source.cells:
        if is_test_cell(cell):
            released[grade_id(cell)] = {public_source(cell.source).strip(), cell.source.strip()}
    if not any(grade_id(c) for c in learner.cells):
        return ["structure: the notebook has no nbgrader metadata (re-saved or pasted by another "
                "tool?); answers were matched by the names they define"]
    notes = []
    learner_tests = {}
    for cell in learner.cells:
        learner_tests.setdefault(grade_id(cell), cell)
    for gid, texts in released.items():
        cell = learner_tests.get(gid)
        if cell is None:
            notes.append(f"structure: test cell {gid} was deleted or lost its metadata (the original ran)")
        elif cell.get("source", "").strip() not in texts:
            notes.append(f"structure: test cell {gid} was edited (the original ran)")
    source_tags = {t for c in source.cells for t in c.get("metadata", {}).get("tags", [])}
    added = sorted({str(t) for c in learner.cells for t in (c.get("metadata", {}).get("tags") or [])
                    if isinstance(t, str)} - source_tags)
    if added:
        notes.append(f"structure: cell tags added and ignored: {', '.join(added)[:200]}")
    return notes


def _sandbox_package(workdir: Path, exercises: list[str]) -> Path:
    """A copy of gpt2course for the sandbox, with the checks and graded references stubbed."""
    import gpt2course
    root = Path(gpt2course.__file__).resolve().parent
    pkg = workdir / "pkg"
    shutil.copytree(root, pkg / "gpt2course", ignore=shutil.ignore_patterns("__pycache__"))
    for rel, text in plans.package_overrides(exercises).items():
        target = pkg / "gpt2course" / rel
        if text is None:
            target.unlink(missing_ok=True)
        else:
            target.write_text(text)
    shutil.copy(Path(__file__).with_name("run_notebook.py"), pkg / "run_notebook.py")
    return pkg


CRASHED = ("the notebook process ended while this was being called (os._exit, a crash, or out of "
           "memory)")
RESULTS_PATH = "/dev/fd/98"  # where the harness writes, in an exercise's own process (run_notebook.py)
MAX_ATTEMPTS = 3             # runner processes for one notebook, beyond one per exercise whose process ended it


@dataclass
class Step:
    """One code cell of the graded run: a trusted cell, or an exercise (the learner's answer cell,
    graded in a process of its own, then the source's answer in its place for the cells after)."""
    source: str                  # the trusted cell, or the exercise's answer from solutions/
    name: str | None = None      # the exercise, for an answer cell
    learner: str | None = None   # the learner's answer cell
    imports: str = ""            # the import statements of the learner's answer cells before it


def build_steps(source_nb, answers: Answers) -> list[Step]:
    """The source's code cells in order, test cells left out, answer cells as exercises.

    An exercise's process starts from the trusted cells and the reference answers before it, so
    nothing another answer cell does reaches it; only the imports of the learner's earlier answer
    cells are run first (each on its own, its failure ignored), so that an answer using a module
    imported in an earlier cell works as it did in the learner's notebook."""
    steps, imports = [], []
    for cell in source_nb.cells:
        if cell.get("cell_type") != "code" or is_test_cell(cell) or is_manual_cell(cell):
            continue
        if is_answer_cell(cell):
            gid = grade_id(cell)
            learner = answers.sources.get(gid, "raise NotImplementedError()")
            steps.append(Step(cell.source, gid, learner, "".join(
                f"try:\n    {line}\nexcept Exception:\n    pass\n" for line in dict.fromkeys(imports))))
            imports += flags.import_lines(learner)
        else:
            steps.append(Step(cell.source))
    return steps


def _json_object(line: str | bytes) -> dict | None:
    """The JSON object on ``line``; None for anything else (text from the sandbox is data)."""
    try:
        obj = json.loads(line)
    except (ValueError, RecursionError):
        return None
    return obj if isinstance(obj, dict) else None


class _Runner:
    """The sandboxed run_notebook.py, spoken to one command at a time."""

    def __init__(self, argv, env, cwd, preexec_fn, deadline: float):
        import queue
        import subprocess
        import threading
        self.deadline = deadline
        self.proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, preexec_fn=preexec_fn)
        self.answers: queue.Queue = queue.Queue()
        threading.Thread(target=self._read_answers, daemon=True).start()
        threading.Thread(target=self._drain, args=(self.proc.stderr,), daemon=True).start()

    def _read_answers(self) -> None:
        """Each answer is a JSON line, an exercise's followed by the ``size`` bytes its process
        wrote. Anything else (a line too long, a size over the limit, a short read) ends the
        conversation: the runner is in the sandbox, so its stream is data, not instructions."""
        out = self.proc.stdout
        while True:
            line = out.readline(MAX_ANSWER_LINE)
            if not line.endswith(b"\n"):
                break
            answer = _json_object(line)
            if answer is None:
                continue
            if "size" in answer:
                size = answer["size"]
                if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= MAX_RESULT_BYTES:
                    break
                answer["data"] = out.read(size)
                if len(answer["data"]) != size:
                    break
            self.answers.put(answer)
        self.answers.put(None)
        self._drain(out)

    @staticmethod
    def _drain(stream) -> None:
        for _ in iter(lambda: stream.read(1 << 16), b""):
            pass

    def ask(self, command: dict | None, seconds: float) -> dict | None:
        """Send ``command`` (None: only wait) and return the next answer; None when the runner
        ended, stopped answering within ``seconds`` or ran out of the run's time."""
        import queue
        if command is not None:
            try:
                self.proc.stdin.write((json.dumps(command) + "\n").encode())
                self.proc.stdin.flush()
            except OSError:
                return None
        try:
            return self.answers.get(timeout=max(0.0, min(seconds, self.deadline - time.monotonic())))
        except queue.Empty:
            return None

    def close(self) -> None:
        try:
            os.killpg(self.proc.pid, 9)
        except OSError:
            self.proc.kill()
        self.proc.wait()


def execute(steps: list[Step], plan: plans.Plan, exercises: list[str], *, timeout: int, call_timeout: int,
            limits: sandbox.Limits, hide: list[Path],
            total_seconds: int = MAX_SUBMISSION_SECONDS) -> tuple[dict, list[str]]:
    """Run ``steps`` in the sandbox: (harness records by job id, problems). All runner processes
    together take at most ``total_seconds`` of wall-clock time.

    Each exercise runs in a process of its own (see run_notebook.py), so a crash or a hang costs
    only that exercise. When the runner itself ends (a learner's process killed it), a new one
    replays the trusted cells and goes on after that exercise.
    """
    records: dict[str, dict] = {}
    problems: list[str] = []
    skipped: set[int] = set()
    start = 0
    deadline = time.monotonic() + total_seconds
    for _attempt in range(MAX_ATTEMPTS + len(exercises)):
        left = int(deadline - time.monotonic())
        if left < MIN_RUN_SECONDS:
            problems.append(f"grading stopped: this submission used its {total_seconds} s (all runs "
                            "of the notebook together); what had not run earns nothing")
            break
        stopped, wall = _run_once(steps, start, skipped, plan, exercises, records, problems, timeout=timeout,
                                  call_timeout=call_timeout, limits=limits, hide=hide, max_wall=left)
        if stopped is None:
            break
        if stopped == "start":
            problems.append("the notebook could not be started for grading")
            break
        if stopped == "time":
            problems.append(f"grading stopped after {wall} s (the notebook ran too long)")
            break
        step = steps[stopped]
        if step.name is None:  # a trusted cell ended the runner: go on without it
            skipped.add(stopped)
            problems.append(f"code cell {stopped + 1} ended the notebook process (out of memory, "
                            "a crash); it was skipped and the notebook run again")
        start = stopped + 1
    else:
        problems.append("grading stopped: the notebook process was ended too many times; what had not "
                        "run earns nothing")
    return records, problems


def _exercise_jobs(plan: plans.Plan, steps: list[Step]) -> dict[int, list[dict]]:
    """Step index -> the jobs its exercise answers (jobs of no exercise go with the last step)."""
    index = {s.name: i for i, s in enumerate(steps) if s.name is not None}
    out: dict[int, list[dict]] = {}
    for job in plan.jobs:
        out.setdefault(index.get(job["name"], len(steps)), []).append(job)
    return out


def sandbox_env(pkg: Path, scratch: str) -> dict[str, str]:
    """The environment of the sandboxed runner (``pkg``: the sandbox's copy of the course)."""
    data = data_dir()
    if data == PACKAGED_DATA:  # an installed course: the sandbox hides site-packages/gpt2course,
        data = pkg / "gpt2course" / "_data"  # so its data is read from the sandbox package's copy
    return {
        "PATH": os.path.dirname(sys.executable) + os.pathsep + "/usr/local/bin:/usr/bin:/bin",
        "HOME": scratch,
        "PYTHONPATH": str(pkg),
        "GPT2COURSE_DATA": str(data),
        "IPYTHONDIR": os.path.join(scratch, ".ipython"),
        "MPLCONFIGDIR": os.path.join(scratch, ".mpl"),
        "MPLBACKEND": "Agg",
        "GPT2COURSE_FAST": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "LANG": "C.UTF-8",
    }


def _run_once(steps, start: int, skipped: set[int], plan, exercises, records: dict, problems: list, *,
              timeout: int, call_timeout: int, limits: sandbox.Limits, hide: list[Path],
              max_wall: int = MAX_NOTEBOOK_SECONDS):
    """One runner process: trusted cells (and the answers of exercises before ``start``) replayed,
    exercises from ``start`` on graded. Returns (None when it finished, else "start", "time" or
    the index of the step it stopped at; the wall-clock limit it had)."""
    jobs_by_step = _exercise_jobs(plan, steps)
    with tempfile.TemporaryDirectory(prefix="grader-") as tmp:
        workdir = Path(tmp)
        pkg = _sandbox_package(workdir, exercises)
        scratch = sandbox.scratch_dir(str(workdir))
        harness = {}
        for i, jobs in jobs_by_step.items():
            path = workdir / f"jobs-{i}.json"
            path.write_text(json.dumps(jobs, allow_nan=False))
            harness[i] = plans.harness_source(str(path), RESULTS_PATH, call_timeout)
        uid = sandbox.pick_uid()
        sandbox.prepare(str(workdir), uid)
        env = sandbox_env(pkg, scratch)
        if os.environ.get("OMP_NUM_THREADS"):  # the caller's thread budget (make test: 1 per worker)
            env["OMP_NUM_THREADS"] = os.environ["OMP_NUM_THREADS"]
        extra = ["own-pid-namespace"] if sandbox.available() == "bwrap" else []
        argv = sandbox.wrap([sys.executable, str(pkg / "run_notebook.py"), scratch, str(timeout), *extra],
                            str(workdir), hide=hide, limits=limits, uid=uid)
        wall = min(MAX_NOTEBOOK_SECONDS, max_wall)
        runner = _Runner(argv, env, str(workdir), sandbox.set_limits(limits, uid), time.monotonic() + wall)
        try:
            if runner.ask(None, 120) is None:
                return "start", wall
            if any(job["kind"] in BUILDS_OPTIMIZERS for job in plan.jobs):
                runner.ask({"run": -1, "source": "import torch._dynamo"}, timeout + 30)
            for i, step in enumerate(steps):
                if i in skipped:
                    continue
                if step.name is not None and i >= start:
                    jobs = jobs_by_step.get(i, [])
                    seconds = timeout + call_timeout * len(jobs) + 10
                    answer = runner.ask({"exercise": step.name, "imports": step.imports, "source": step.learner,
                                         "harness": harness.get(i, "pass"),
                                         "deadline": seconds, "max_bytes": MAX_RESULT_BYTES}, seconds + 30)
                    if answer is None:
                        _crashed(step.name, jobs, records, problems)
                        return ("time" if time.monotonic() >= runner.deadline else i), wall
                    _take(step.name, jobs, answer, records, problems, seconds)
                answer = runner.ask({"run": i, "source": step.source}, timeout + 30)
                if answer is None:
                    return ("time" if time.monotonic() >= runner.deadline else i), wall
            last = jobs_by_step.get(len(steps))
            if last:  # checks of names no answer cell defines: called where the notebook ends
                seconds = call_timeout * len(last) + 10
                answer = runner.ask({"exercise": "the notebook", "source": "pass", "harness": harness[len(steps)],
                                     "deadline": seconds, "max_bytes": MAX_RESULT_BYTES}, seconds + 30)
                if answer is not None:
                    _take("the notebook", last, answer, records, problems, seconds)
            done = runner.ask({"done": True}, 30)
            if done is not None:
                problems += [str(p)[:300] for p in done.get("problems", []) if isinstance(p, str)][:20]
            return None, wall
        finally:
            runner.close()


def _crashed(name: str, jobs: list[dict], records: dict, problems: list) -> None:
    missing = [job for job in jobs if job["id"] not in records]
    for job in missing:
        records[job["id"]] = {"id": job["id"], "raised": ["ProcessExit", CRASHED]}
    problems.append(f"{name}: its answer cell or a call of it ended the notebook process (os._exit, "
                    "a crash, out of memory); the calls it had not answered earn nothing")


def _take(name: str, jobs: list[dict], answer: dict, records: dict, problems: list, seconds: int) -> None:
    """The records an exercise's process wrote: only its own jobs' ids, the first of each."""
    wanted = {job["id"] for job in jobs}
    timed_out = False
    for line in answer.get("data", b"").decode("utf-8", "replace").splitlines():
        obj = _json_object(line)
        if obj is None:
            continue
        if isinstance(obj.get("id"), str) and obj["id"] in wanted:
            records.setdefault(obj["id"], obj)
        elif obj.get("problem") == "cell timeout" and not timed_out:
            timed_out = True
            problems.append(f"{name}: its answer cell ran longer than the cell time limit and was interrupted")
    missing = [job for job in jobs if job["id"] not in records]
    status = answer.get("status")
    if missing and status == "timeout":
        for job in missing:
            records[job["id"]] = {"id": job["id"], "raised": [
                "TimeoutError", f"{name}'s cell and calls ran longer than {seconds} s together"]}
        problems.append(f"{name}: stopped after {seconds} s (its cell and calls together)")
    elif missing:
        _crashed(name, jobs, records, problems)


def grade(path: str | Path, *, timeout: int = DEFAULT_CELL_TIMEOUT, call_timeout: int = CALL_TIMEOUT,
          limits: sandbox.Limits | None = None, source: str | Path | None = None,
          salt: str | None = None, hide: list[Path] = (), executor=None) -> Grade:
    """Grade the notebook at ``path``. Raises UngradableNotebook when it cannot be graded.

    ``salt`` mixes into the grading seeds (default: ``DEFAULT_SALT``, so a file always gets the
    same grade); ``hide`` lists more folders
    the learner's code must not see (a course folder with other students' work). Whatever the
    file holds, the result is a Grade or UngradableNotebook: a failure while reviewing, running
    or verifying it becomes a grade of 0 with the reason in ``errors``, so that one submission
    never stops a class's batch. ``executor``: what runs the notebook in the sandbox, with
    ``execute``'s signature (default ``execute``: a sandbox for this notebook alone;
    grader.worker.Worker passes its warm sandbox's).
    """
    path = Path(path).resolve()
    learner = read_notebook(path)
    source_path = Path(source) if source else find_source(path)
    source_nb = read_notebook(source_path)
    try:
        return _grade(path, learner, source_nb, timeout=timeout, call_timeout=call_timeout,
                      limits=limits, salt=salt, hide=hide, executor=executor or execute)
    except Exception as exc:  # noqa: BLE001 - one submission's failure is its own verdict
        return failed_grade(path.name, source_nb, f"the grader could not grade this notebook "
                            f"({type(exc).__name__}: {str(exc)[:200]}); it earns nothing until an "
                            "instructor looks at it")


def ungradable_verdict(name: str, max_score: float, reason: str) -> dict:
    """The verdict (``--json``'s object) of a submission that could not be read, or of none at
    all: 0, no cells, the reason."""
    return {"notebook": name, "score": 0.0, "max_score": max_score, "cells": [], "errors": [f"ungradable: {reason}"]}


def grader_failure(exc: BaseException) -> str:
    """Why a submission earned 0 when grading it raised ``exc`` (a class's batch goes on)."""
    return f"the grader could not grade this submission ({type(exc).__name__}: {str(exc)[:200]})"


def failed_grade(name: str, source_nb, reason: str) -> Grade:
    """0 points on every test cell of ``source_nb``, with ``reason`` (cells graded by hand listed)."""
    cells = [CellResult(grade_id=grade_id(c) or "?", score=0.0, max_score=points(c), passed=False,
                        message=f"not graded: {reason}") if is_test_cell(c) else _manual_result(c)
             for c in source_nb.cells if is_test_cell(c) or is_manual_cell(c)]
    return Grade(notebook=name, score=0.0, max_score=float(sum(c.max_score for c in cells)),
                 cells=cells, errors=[f"ungradable: {reason}"])


def _grade(path: Path, learner, source_nb, *, timeout, call_timeout, limits, salt, hide,
           executor=None) -> Grade:
    answers = collect_answers(source_nb, learner)
    tests = [(cell, plans.specs_in(cell.source)) for cell in source_nb.cells if is_test_cell(cell)]
    exercises = [grade_id(c) for c in source_nb.cells if is_answer_cell(c)]
    plan = plans.Plan([s for _, specs in tests for s in specs], DEFAULT_SALT if salt is None else salt)
    records, problems = (executor or execute)(build_steps(source_nb, answers), plan, exercises,
                                timeout=timeout, call_timeout=call_timeout,
                                limits=limits or sandbox.Limits(),
                                hide=[path.parent, *map(Path, hide)])
    notes = structure_notes(source_nb, learner)
    if sandbox.available() != "bwrap":  # the weaker guarantee, where the verdict is read
        notes.append(f"sandbox: {sandbox.describe()}")
    out = Grade(notebook=path.name, score=0.0, max_score=0.0, errors=answers.notes + notes + problems,
                answers={**answers.sources, **answers.written})
    # The static review is a signal for the instructor, not a defence: points come only from
    # the verdicts, and a flag marks the submission for a look without taking them away.
    for gid, reasons in answers.flagged.items():
        out.errors.append(f"flagged {gid}: {'; '.join(reasons)} (for review; the points stand as graded)")
    verdicts = {}
    for cell, specs in tests:
        passed, message = True, ""
        for spec in specs:
            passed, message = plan.verdict(spec, records, validate=expectations.validate)
            if not passed:
                message += _elsewhere_hint(spec.name, message, answers.sources)
                break
        max_points = points(cell)
        verdicts[id(cell)] = CellResult(grade_id=grade_id(cell) or "?", score=max_points if passed else 0.0,
                                        max_score=max_points, passed=passed, message=message[:1000])
    out.cells = [verdicts[id(c)] if is_test_cell(c) else _manual_result(c)
                 for c in source_nb.cells if is_test_cell(c) or is_manual_cell(c)]
    out.score = float(sum(c.score for c in out.cells if not c.manual))
    out.max_score = float(sum(c.max_score for c in out.cells))
    return out


def _manual_result(cell) -> CellResult:
    what = "written answer" if is_written_answer(cell) else "task"
    return CellResult(grade_id=grade_id(cell) or "?", score=None, max_score=points(cell), passed=None,
                      message=f"{what}: to be graded by hand", manual=True)


def _elsewhere_hint(name: str, message: str, sources: dict[str, str]) -> str:
    """For "name 'x' is not defined" where another of the learner's answer cells defines x: why
    (each exercise runs with its own answer cell only)."""
    import re
    missing = re.search(r"name '(\w+)' is not defined", message)
    if not missing:
        return ""
    where = [gid for gid, src in sources.items() if gid != name and missing[1] in flags.bound_names(src)]
    if not where:
        return ""
    return (f" ({missing[1]} is defined in your {where[0]} cell: each exercise is graded with its own answer "
            "cell and the course's answers to the exercises before it, so define it in this cell too)")


def render(g: Grade) -> str:
    by_hand = g.manual_points
    lines = [f"{g.notebook}: {g.score:g} / {g.max_score:g}"
             + (f" ({by_hand:g} of them to be graded by hand)" if by_hand else "")]
    for c in g.cells:
        if c.manual:
            lines.append(f"  ? {c.grade_id:<28} -/{c.max_score:g}  {c.message}")
            continue
        mark = "\u2714" if c.passed else "\u2718"
        lines.append(f"  {mark} {c.grade_id:<28} {c.score:g}/{c.max_score:g}"
                     + (f"  {c.message.splitlines()[0][:160]}" if c.message else ""))
    lines += [f"  ! {e}" for e in g.errors]
    return "\n".join(lines)


__all__ = ["grade", "render", "Grade", "CellResult", "UngradableNotebook", "collect_answers"]
