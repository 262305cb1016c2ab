"""Grade one learner notebook against its source in solutions/ (``python -m grader check``).

1. The notebook to run is built from the source: its setup and demo cells, and the learner's
   answer cells put in by grade_id (or, where metadata was lost, by the name the cell defines).
   Test cells never run in the learner's process.
2. Each test cell's ``check(...)`` calls become a ``Plan``: the cases' inputs, made from seeds
   mixed with a secret salt, written as plain data.
3. The notebook and a harness cell run in a sandbox (see grader.sandbox) where the checks and
   the reference code of the exercises being graded are replaced by stubs. The harness calls
   the learner's functions on the inputs and writes their outputs as plain data.
4. This process decodes the outputs, verifies them with the checks' oracles and awards points.
   What grader.flags finds in answer cells marks the submission for review; it changes no points.
"""

from __future__ import annotations

import copy
import json
import os
import secrets
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell

from . import expectations, flags, plans, sandbox
from .notebook import (UngradableNotebook, find_source, grade_id, is_answer_cell, is_test_cell,
                       points, read_notebook)
from .paths import REPO

DEFAULT_CELL_TIMEOUT = 60           # seconds per notebook cell
CALL_TIMEOUT = 30                   # seconds per call of a learner's function by the harness
MAX_RESULT_BYTES = 64 * 2**20       # larger results from the sandbox are refused
MAX_NOTEBOOK_SECONDS = 600          # wall-clock limit for one run of a notebook, whatever its cells do
MAX_SUBMISSION_SECONDS = 900        # wall-clock limit for one submission, all its runs together
MIN_RUN_SECONDS = 20                # a run is not started with less time than this left


@dataclass
class CellResult:
    grade_id: str
    score: float
    max_score: float
    passed: bool
    message: str


@dataclass
class Grade:
    notebook: str
    score: float
    max_score: float
    cells: list[CellResult] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    # The learner's answer cells as graded, by grade_id (not part of the JSON report).
    answers: dict[str, str] = field(default_factory=dict, repr=False)

    def to_json(self) -> dict:
        report = asdict(self)
        del report["answers"]
        return report


@dataclass
class Answers:
    """The learner's answer cells by grade_id, and what the review flagged in them."""
    sources: dict[str, str]
    flagged: dict[str, list[str]]
    notes: list[str]


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
    flagged = {gid: r for gid, src in found.items() if (r := flags.review(src))}
    return Answers(found, flagged, notes)


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


def build_run(source, answers: Answers):
    """The source's code cells with the learner's answers in; test cells left out."""
    nb = copy.deepcopy(source)
    cells = []
    for cell in nb.cells:
        if cell.cell_type != "code" or is_test_cell(cell):
            continue
        gid = grade_id(cell) if is_answer_cell(cell) else None
        if gid is not None:
            cell["source"] = answers.sources.get(gid, "raise NotImplementedError()")
        cell["metadata"] = {}
        cell["outputs"], cell["execution_count"] = [], None
        cells.append(cell)
    nb.cells = cells
    return nb


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
REPORT_PATH = "/dev/fd/99"   # the runner's report stream (see run_notebook.py)
MAX_ATTEMPTS = 3             # runs of one notebook when cells end the process


def _read_stream(out: bytes | None) -> tuple[dict, int | None, dict | None]:
    """(harness records by id, last code cell started, the final "done" object) of a report."""
    records, started, done = {}, None, None
    for line in (out or b"").decode("utf-8", "replace").splitlines():
        try:
            obj = json.loads(line)
        except (ValueError, RecursionError):
            continue
        if not isinstance(obj, dict):
            continue
        if isinstance(obj.get("id"), str):
            records.setdefault(obj["id"], obj)
        elif isinstance(obj.get("cell"), int) and not isinstance(obj.get("cell"), bool):
            started = obj["cell"]
        elif obj.get("done") is True:
            done = obj
    return records, started, done


def execute(nb, plan: plans.Plan, exercises: list[str], *, timeout: int, call_timeout: int,
            limits: sandbox.Limits, hide: list[Path],
            total_seconds: int = MAX_SUBMISSION_SECONDS) -> tuple[dict, list[str]]:
    """Run ``nb`` plus the harness in the sandbox: (harness records by job id, problems).
    All runs together take at most ``total_seconds`` of wall-clock time.

    When a cell ends the process (os._exit, a crash, memory), the notebook runs again without
    that cell; when a call of the learner's function does, that function's remaining calls are
    recorded as crashed and the harness goes on with the others.
    """
    records: dict[str, dict] = {}
    problems: list[str] = []
    skipped: set[int] = set()
    deadline = time.monotonic() + total_seconds
    for _attempt in range(MAX_ATTEMPTS):
        left = int(deadline - time.monotonic())
        if left < MIN_RUN_SECONDS:
            problems.append(f"grading stopped: this submission used its {total_seconds} s (all runs "
                            "of the notebook together); what had not run earns nothing")
            break
        pending = [job for job in plan.jobs if job["id"] not in records]
        new, started, done, timed_out, wall = _run_once(nb, pending, skipped, exercises, timeout=timeout,
                                                        call_timeout=call_timeout, limits=limits, hide=hide,
                                                        max_wall=left)
        records.update({k: v for k, v in new.items() if k not in records})
        if done is not None:
            problems += [str(p)[:300] for p in done.get("problems", []) if isinstance(p, str)][:20]
            break
        if timed_out:
            problems.append(f"grading stopped after {wall} s (the notebook ran too long)")
            break
        if started is None:
            problems.append("the notebook could not be started for grading")
            break
        if started == len(nb.cells):  # the harness: a call of the learner's code ended the process
            culprit = next((job for job in pending if job["id"] not in records), None)
            if culprit is None:
                break
            for job in pending:
                if job["name"] == culprit["name"] and job["id"] not in records:
                    records[job["id"]] = {"id": job["id"], "raised": ["ProcessExit", CRASHED]}
            problems.append(f"a call of {culprit['name']} ended the notebook process; its other "
                            "calls were skipped")
        else:
            skipped.add(started)
            problems.append(f"code cell {started + 1} ended the notebook process (out of memory, "
                            "os._exit, a crash); it was skipped and the notebook run again")
    return records, problems


def _run_once(nb, jobs_list: list[dict], skipped: set[int], exercises: list[str], *, timeout: int,
              call_timeout: int, limits: sandbox.Limits, hide: list[Path], max_wall: int = MAX_NOTEBOOK_SECONDS):
    with tempfile.TemporaryDirectory(prefix="grader-") as tmp:
        workdir = Path(tmp)
        pkg = _sandbox_package(workdir, exercises)
        scratch = sandbox.scratch_dir(str(workdir))
        jobs = workdir / "jobs.json"
        jobs.write_text(json.dumps(jobs_list, allow_nan=False))
        nb = copy.deepcopy(nb)
        for index in skipped:
            nb.cells[index].source = ("raise SystemError('this cell ended the notebook process "
                                      "while being graded, so it was skipped')")
        harness = new_code_cell(plans.harness_source(str(jobs), REPORT_PATH, call_timeout))
        harness.metadata["grader"] = {"harness": True}
        nb.cells.append(harness)
        nbformat.write(nb, workdir / "graded.ipynb")
        uid = sandbox.pick_uid()
        sandbox.prepare(str(workdir), uid)
        env = {
            "PATH": os.path.dirname(sys.executable) + os.pathsep + "/usr/local/bin:/usr/bin:/bin",
            "HOME": scratch,
            "PYTHONPATH": str(pkg),
            "GPT2COURSE_DATA": str(REPO / "data"),
            "IPYTHONDIR": os.path.join(scratch, ".ipython"),
            "MPLCONFIGDIR": os.path.join(scratch, ".mpl"),
            "MPLBACKEND": "Agg",
            "GPT2COURSE_FAST": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            "LANG": "C.UTF-8",
        }
        if os.environ.get("OMP_NUM_THREADS"):  # the caller's thread budget (make test: 1 per worker)
            env["OMP_NUM_THREADS"] = os.environ["OMP_NUM_THREADS"]
        argv = sandbox.wrap([sys.executable, str(pkg / "run_notebook.py"), str(workdir / "graded.ipynb"),
                             scratch, str(timeout)], str(workdir), hide=hide, limits=limits, uid=uid)
        wall = min(MAX_NOTEBOOK_SECONDS, max_wall, 30 + timeout * len(nb.cells) + call_timeout * len(jobs_list))
        out, _err, timed_out = sandbox.run_capped(argv, env=env, cwd=str(workdir), timeout=wall,
                                                  preexec_fn=sandbox.set_limits(limits, uid),
                                                  max_bytes=MAX_RESULT_BYTES)
        records, started, done = _read_stream(out)
        return records, started, done, timed_out, wall


def grade(path: str | Path, *, timeout: int = DEFAULT_CELL_TIMEOUT, call_timeout: int = CALL_TIMEOUT,
          limits: sandbox.Limits | None = None, source: str | Path | None = None,
          salt: str | None = None, hide: list[Path] = ()) -> Grade:
    """Grade the notebook at ``path``. Raises UngradableNotebook when it cannot be graded.

    ``salt`` fixes the grading seeds (default: fresh random ones); ``hide`` lists more folders
    the learner's code must not see (a course folder with other students' work). Whatever the
    file holds, the result is a Grade or UngradableNotebook: a failure while reviewing, running
    or verifying it becomes a grade of 0 with the reason in ``errors``, so that one submission
    never stops a class's batch.
    """
    path = Path(path).resolve()
    learner = read_notebook(path)
    source_path = Path(source) if source else find_source(path)
    source_nb = read_notebook(source_path)
    try:
        return _grade(path, learner, source_nb, timeout=timeout, call_timeout=call_timeout,
                      limits=limits, salt=salt, hide=hide)
    except Exception as exc:  # noqa: BLE001 - one submission's failure is its own verdict
        return failed_grade(path.name, source_nb, f"the grader could not grade this notebook "
                            f"({type(exc).__name__}: {str(exc)[:200]}); it earns nothing until an "
                            "instructor looks at it")


def failed_grade(name: str, source_nb, reason: str) -> Grade:
    """0 points on every test cell of ``source_nb``, with ``reason``."""
    cells = [CellResult(grade_id=grade_id(c) or "?", score=0.0, max_score=points(c), passed=False,
                        message=f"not graded: {reason}") for c in source_nb.cells if is_test_cell(c)]
    return Grade(notebook=name, score=0.0, max_score=float(sum(c.max_score for c in cells)),
                 cells=cells, errors=[f"ungradable: {reason}"])


def _grade(path: Path, learner, source_nb, *, timeout, call_timeout, limits, salt, hide) -> Grade:
    answers = collect_answers(source_nb, learner)
    tests = [(cell, plans.specs_in(cell.source)) for cell in source_nb.cells if is_test_cell(cell)]
    exercises = [grade_id(c) for c in source_nb.cells if is_answer_cell(c)]
    plan = plans.Plan([s for _, specs in tests for s in specs], salt or secrets.token_hex(16))
    records, problems = execute(build_run(source_nb, answers), plan, exercises,
                                timeout=timeout, call_timeout=call_timeout,
                                limits=limits or sandbox.Limits(),
                                hide=[path.parent, *map(Path, hide)])
    notes = structure_notes(source_nb, learner)
    if sandbox.available() != "bwrap":  # the weaker guarantee, where the verdict is read
        notes.append(f"sandbox: {sandbox.describe()}")
    out = Grade(notebook=path.name, score=0.0, max_score=0.0, errors=answers.notes + notes + problems,
                answers=answers.sources)
    # The static review is a signal for the instructor, not a defence: points come only from
    # the verdicts, and a flag marks the submission for a look without taking them away.
    for gid, reasons in answers.flagged.items():
        out.errors.append(f"flagged {gid}: {'; '.join(reasons)} (for review; the points stand as graded)")
    for cell, specs in tests:
        passed, message = True, ""
        for spec in specs:
            passed, message = plan.verdict(spec, records, validate=expectations.validate)
            if not passed:
                break
        max_points = points(cell)
        out.cells.append(CellResult(grade_id=grade_id(cell) or "?", score=max_points if passed else 0.0,
                                    max_score=max_points, passed=passed, message=message[:1000]))
    out.score = float(sum(c.score for c in out.cells))
    out.max_score = float(sum(c.max_score for c in out.cells))
    return out


def render(g: Grade) -> str:
    lines = [f"{g.notebook}: {g.score:g} / {g.max_score:g}"]
    for c in g.cells:
        mark = "\u2714" if c.passed else "\u2718"
        lines.append(f"  {mark} {c.grade_id:<28} {c.score:g}/{c.max_score:g}"
                     + (f"  {c.message.splitlines()[0][:160]}" if c.message else ""))
    lines += [f"  ! {e}" for e in g.errors]
    return "\n".join(lines)


__all__ = ["grade", "render", "Grade", "CellResult", "UngradableNotebook", "collect_answers"]
