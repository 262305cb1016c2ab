"""The warm grading worker (grader/worker.py, run_notebook.py's warm mode).

It must give the verdicts grader.check.grade gives (the same JSON, submission by submission),
let nothing of one submission reach the next one it grades (the state of the Python process,
torch's defaults and functions, files in /tmp, processes left running), and keep the attack
and fault corpora's guarantees. The bench's code path runs on two submissions (no timing).
"""

from __future__ import annotations

import contextlib
import json

import nbformat
import pytest

from attacks.corpus import ATTACKS, FAULTS
from conftest import SOLUTIONS, answer_cells, apply_edit, filled_notebook
from grader import bench, sandbox
from grader.check import grade
from grader.paths import solution_notebooks
from grader.worker import Worker

pytestmark = pytest.mark.skipif(not sandbox.warm_capable(),
                                reason="the warm worker needs bubblewrap run by root (it grades as grade() elsewhere)")


def _same(path, worker, **options):
    cold = grade(path, **options).to_json()
    warm = worker.check(path, **options).to_json()
    assert json.dumps(warm, sort_keys=True) == json.dumps(cold, sort_keys=True), path.name
    return warm


def test_warm_verdicts_are_grade_verdicts(tmp_path):
    """Solved, wrong and mixed submissions of notebook 03 (the catalogue's answers), graded by
    grade() and by one warm worker in turn: the same JSON, and no fallback to a cold sandbox."""
    submissions = bench.make_class(tmp_path, size=3, notebooks=("03_attention",))
    with Worker() as worker:
        scores = [_same(s.path, worker, salt=s.salt)["score"] for s in submissions]
        assert worker.fallbacks == 0
    assert scores[0] == 4.0 and scores[1] < 4.0, scores


@pytest.mark.slow
def test_warm_verdicts_are_grade_verdicts_for_a_class_and_every_solution(tmp_path):
    submissions = bench.make_class(tmp_path, size=12)
    with Worker(max_warm=len(solution_notebooks())) as worker:
        for s in submissions:
            _same(s.path, worker, salt=s.salt)
        for path in solution_notebooks():
            verdict = _same(path, worker, salt="every solution")
            assert verdict["score"] == verdict["max_score"], path.name
        assert worker.fallbacks == 0


# Run first in a causal_mask cell of notebook 03: every way this process could change what the
# next submission's processes start from.
POLLUTE = '''\
import os, sys, time, types, torch
sys.modules["polluted"] = types.ModuleType("polluted")
torch.set_default_dtype(torch.float64)
torch.tril = lambda *a, **k: torch.zeros(1)
open("/tmp/polluted.txt", "w").write("x")
open("polluted.py", "w").write("X = 1\\n")
import gpt2course  # the course's package copy, bound read-only under the worker's /tmp
try:
    open(os.path.join(os.path.dirname(gpt2course.__file__), "polluted_course.py"), "w").write("X = 1\\n")
except OSError:
    pass
if os.fork() == 0:
    os.setsid()
    time.sleep(1)
    open("/tmp/late.txt", "w").write("x")
    os._exit(0)
'''
# ... and the first lines of the next submission's causal_mask cell: what it finds of that ...
DETECT = '''\
import os, sys, torch
import gpt2course.training.mfu  # imported by nothing before: found in the package copy under /tmp
_found = [what for what, there in [
    ("a module in sys.modules", "polluted" in sys.modules),
    ("the default dtype", torch.get_default_dtype() != torch.float32),
    ("a patched torch.tril", type(torch.tril).__name__ != "builtin_function_or_method"),
    ("a file in /tmp", os.path.exists("/tmp/polluted.txt") or os.path.exists("/tmp/late.txt")),
    ("a module in the working folder", os.path.exists("polluted.py")),
    ("a module in the course's package", os.path.exists(os.path.join(os.path.dirname(gpt2course.__file__),
                                                                     "polluted_course.py"))),
] if there]
'''
# ... and after the solution: the function fails, naming what was found, where any of it is left.
REPORT = '''
_solution = causal_mask


def causal_mask(T):
    if _found:
        raise RuntimeError("left by another submission: " + ", ".join(_found))
    return _solution(T)
'''


def test_nothing_of_a_submission_reaches_the_next(tmp_path):
    solved = answer_cells(nbformat.read(SOLUTIONS / "03_attention.ipynb", as_version=4))
    polluter = filled_notebook("03_attention.ipynb", {"causal_mask": POLLUTE + solved["causal_mask"]},
                               tmp_path / "a" / "03_attention.ipynb")
    detector = filled_notebook("03_attention.ipynb", {"causal_mask": DETECT + solved["causal_mask"] + REPORT},
                               tmp_path / "b" / "03_attention.ipynb")
    # The detector works: in the polluting process itself it finds all of it.
    control = filled_notebook("03_attention.ipynb", {"causal_mask": POLLUTE + "time.sleep(1.5)\n" + DETECT
                                                     + solved["causal_mask"] + REPORT}, tmp_path / "c" / "03_attention.ipynb")
    with Worker() as worker:
        alone = worker.check(detector, salt="b").to_json()
        found = worker.check(control, salt="c").to_json()
        worker.check(polluter, salt="a")
        after = worker.check(detector, salt="b").to_json()
        assert worker.fallbacks == 0
    assert alone["score"] == alone["max_score"], alone
    message = " ".join(c["message"] for c in found["cells"])
    for what in ("a module in sys.modules", "the default dtype", "a patched torch.tril", "a file in /tmp",
                 "a module in the working folder"):
        assert what in message, message
    assert after == alone


# Entries whose report names what they did to the runner: in a warm worker the runner is a root
# process that a submission cannot signal, so the attempt fails in the learner's own cell.
WARM_REPORT = {"answer_cell_kills_the_runner": "flagged merge"}
@pytest.fixture(scope="module")
def worker():
    with Worker(max_warm=4) as w:
        yield w


def _corpus(kind):
    """Every entry, in `make test` too: a warm worker grades the corpora in a fraction of a
    sandbox per submission's time (test_attacks.py runs them that way in the slow tier)."""
    return [pytest.param(name, entry) for name, entry in sorted(kind.items())]


def _graded(worker, entry, tmp_path):
    import test_attacks  # noqa: PLC0415 - the corpus's own helpers (tests/grader is on no path: load it)
    with contextlib.ExitStack() as stack:
        clone = stack.enter_context(test_attacks._second_clone()) if entry.get("setup") == "second_clone" else None
        solved = answer_cells(nbformat.read(SOLUTIONS / entry["notebook"], as_version=4))
        answers = {k: test_attacks._expand(v, solved).replace("@REPO@", str(test_attacks.REPO))
                   .replace("@CLONE@", str(clone)) for k, v in entry["answers"].items()}
        path = filled_notebook(entry["notebook"], answers, tmp_path / entry["notebook"])
        apply_edit(path, entry.get("edit"))
        # Notebook 00's cells are quick (its trusted cells import torch, once per warm sandbox):
        # 8 s per cell is plenty there and ends its endless loops and slow walks sooner.
        timeout = 8 if entry["notebook"] == "00_welcome.ipynb" else 15
        return worker.check(path, timeout=timeout, call_timeout=5).to_json()


@pytest.fixture(autouse=True)
def _tests_grader_on_path(monkeypatch):
    from pathlib import Path
    monkeypatch.syspath_prepend(str(Path(__file__).parent))


@pytest.mark.parametrize(("name", "entry"), _corpus(ATTACKS))
def test_warm_attack_gains_nothing(worker, name, entry, tmp_path):
    import test_attacks
    result = _graded(worker, entry, tmp_path)
    for target in entry["targets"]:
        for cell in test_attacks._target_cells(result, target):
            assert cell["score"] == 0, (name, cell)
    assert WARM_REPORT.get(name, entry["report"]) in " | ".join(result["errors"]), result["errors"]
    test_attacks._assert_kept(name, entry, result)


@pytest.mark.parametrize(("name", "entry"), _corpus(FAULTS))
def test_warm_fault_gets_a_clear_verdict(worker, name, entry, tmp_path):
    import test_attacks
    result = _graded(worker, entry, tmp_path)
    json.dumps(result)
    for target in entry["targets"]:
        for cell in test_attacks._target_cells(result, target):
            assert cell["score"] == 0 and cell["message"], (name, cell)
    text = " | ".join(result["errors"] + [c["message"] for t in entry["targets"]
                                          for c in test_attacks._target_cells(result, t)])
    expected = WARM_REPORT.get(name) or entry.get("report") or entry.get("message")
    assert expected in text, f"{name}: {text!r}"
    test_attacks._assert_kept(name, entry, result)


def test_a_worker_without_the_warm_sandbox_grades_as_grade(tmp_path):
    """Where the warm sandbox cannot run, a Worker is grade() (and grade(bytes) is check())."""
    submission = bench.make_class(tmp_path, size=1, notebooks=("00_welcome",))[0]
    with Worker(warm=False) as worker:
        verdict = worker.grade(submission.path.read_bytes(), submission.salt, name=submission.path.name)
    assert verdict == grade(submission.path, salt=submission.salt).to_json()


@pytest.mark.slow
def test_bench_code_path(tmp_path):
    """`grader bench --quick`: four runs of two submissions, the same verdicts, a table appended."""
    results = tmp_path / "RESULTS.md"
    figures = bench.run(quick=True, results=results)
    assert figures["differ"] == [] and figures["submissions"] == 2
    assert "| after: warm workers |" in results.read_text()
