"""How fast a class is graded (``python -m grader bench``, ``make bench``).

A class of generated submissions (``make_class``: notebooks 03 and 07 by default, solved, wrong
and mixed answers taken from solutions/ and the catalogue of tests/catalogue/, the same files
every run) is graded four times in this one process, side by side: before (a sandbox per
submission, ``grader.check.grade`` on a thread pool, as ``course autograde`` did) and after
(warm workers, ``grader.worker.Pool``), each with 1 job and with ``jobs`` jobs. It prints a table
of seconds per notebook amortised over the class (start-up included), checks that the four runs
gave the same verdicts, and appends the table with the machine and its load to
bench/RESULTS.md (``results=None``: prints only). ``quick``: two submissions of notebook 03, for
tests of this code path (its times mean nothing).
"""

from __future__ import annotations

import datetime
import importlib
import json
import os
import platform
import random
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import nbformat

from . import sandbox
from .check import grade
from .notebook import grade_id, is_answer_cell
from .paths import NOTEBOOKS, REPO, SOLUTIONS

NOTEBOOKS_BENCHED = ("03_attention", "07_gpt2_model")
RESULTS = REPO / "bench" / "RESULTS.md"
GOAL_SECONDS = 1.0     # per notebook, amortised, with the jobs
GOAL_SPEEDUP = 1.7     # 2 jobs over 1


def _cpu() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


@dataclass
class Submission:
    path: Path
    notebook: str
    profile: str
    salt: str


def _catalogue(notebook: str) -> tuple[dict, dict]:
    """(WRONG, VALID) of tests/catalogue/nbNN_name.py, or empty where the tests are not here."""
    tests = str(REPO / "tests")
    if tests not in sys.path:
        sys.path.append(tests)
    try:
        module = importlib.import_module(f"catalogue.nb{notebook}")
    except Exception:  # noqa: BLE001 - an installed course has no tests/: solved and stub answers only
        return {}, {}
    return getattr(module, "WRONG", {}), getattr(module, "VALID", {})


def make_class(folder: Path, size: int = 60, notebooks=NOTEBOOKS_BENCHED) -> list[Submission]:
    """``size`` learner notebooks in ``folder``, the notebooks taking turns; submission k is
    solved, wrong or mixed (k mod 3). Solved: each answer the solution's or a valid variant of the
    catalogue; wrong: a catalogue mistake in every exercise; mixed: each exercise solved, wrong or
    left as the released stub. Deterministic: the same files for the same arguments."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for k in range(size):
        notebook = notebooks[k % len(notebooks)]
        profile = ("solved", "wrong", "mixed")[(k // len(notebooks)) % 3]
        rng = random.Random(f"{notebook}:{k}")
        learner = nbformat.read(NOTEBOOKS / f"{notebook}.ipynb", as_version=4)
        solved = {grade_id(c): c.source for c in nbformat.read(SOLUTIONS / f"{notebook}.ipynb", as_version=4).cells
                  if is_answer_cell(c)}
        wrong, valid = _catalogue(notebook)
        for cell in learner.cells:
            if not is_answer_cell(cell):
                continue
            gid = grade_id(cell)
            good = [solved[gid], *sorted(valid.get(gid, {}).values())]
            bad = sorted(wrong.get(gid, {}).values()) or ["raise NotImplementedError()\n"]
            kind = profile if profile != "mixed" else rng.choice(["solved", "wrong", "stub"])
            if kind == "solved":
                cell.source = rng.choice(good)
            elif kind == "wrong":
                cell.source = rng.choice(bad)
            # "stub": the released cell as it is
        path = folder / f"student{k:03d}" / f"{notebook}.ipynb"
        path.parent.mkdir(exist_ok=True)
        nbformat.write(learner, path)
        out.append(Submission(path, notebook, profile, f"bench-{k}"))
    return out


def _grade_all(submissions: list[Submission], jobs: int, warm: bool) -> tuple[float, list[dict], list[float]]:
    """(seconds for the whole class, verdicts, seconds of each submission)."""
    times = [0.0] * len(submissions)

    def timed(index, fn):
        start = time.perf_counter()
        verdict = fn()
        times[index] = time.perf_counter() - start
        return verdict

    start = time.perf_counter()
    if warm:
        from .worker import Pool
        with Pool(jobs) as pool:
            verdicts = pool.map(lambda w, i: timed(i, lambda: w.check(submissions[i].path,
                                                                          salt=submissions[i].salt).to_json()),
                                range(len(submissions)))
    else:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            verdicts = list(pool.map(lambda i: timed(i, lambda: grade(submissions[i].path,
                                                                      salt=submissions[i].salt).to_json()),
                                     range(len(submissions))))
    return time.perf_counter() - start, verdicts, times


def run(jobs: int = 2, size: int = 60, notebooks=NOTEBOOKS_BENCHED, results: Path | None = RESULTS,
        quick: bool = False, folder: Path | None = None) -> dict:
    """Grade the class four ways (see the module's docstring); returns the figures."""
    import tempfile

    import torch
    if quick:
        size, notebooks = 2, ("03_attention",)
    with tempfile.TemporaryDirectory(prefix="grader-bench-") as tmp:
        submissions = make_class(Path(folder or tmp) / "class", size, notebooks)
        load_before = os.getloadavg()
        print(f"{len(submissions)} submissions ({', '.join(notebooks)}); {os.cpu_count()} cores ({_cpu()}); "
              f"torch {torch.__version__}; sandbox: {sandbox.describe()}; load {load_before[0]:.2f}", flush=True)
        runs = {}
        for label, warm in (("before", False), ("after", True)):
            for n in (1, jobs):
                seconds, verdicts, times = _grade_all(submissions, n, warm)
                runs[(label, n)] = (seconds, verdicts, times)
                print(f"{label}, {n} job{'s' if n > 1 else ''}: {seconds:.1f} s, "
                      f"{seconds / len(submissions):.2f} s per notebook", flush=True)
        load_after = os.getloadavg()
    reference = runs[("before", 1)][1]
    differ = sorted({f"{submissions[i].path.parent.name}/{submissions[i].path.name}" for key, (_, verdicts, _) in runs.items()
                     for i, v in enumerate(verdicts) if json.dumps(v, sort_keys=True) != json.dumps(reference[i], sort_keys=True)})
    figures = {
        "submissions": len(submissions), "notebooks": list(notebooks), "jobs": jobs,
        "seconds": {f"{label} {n}": runs[(label, n)][0] for label, n in runs},
        "per_notebook": {f"{label} {n}": runs[(label, n)][0] / len(submissions) for label, n in runs},
        "per_notebook_by_name": {f"{label} {n}": {nb: sum(t for s, t in zip(submissions, runs[(label, n)][2])
                                                          if s.notebook == nb)
                                                  / max(1, sum(s.notebook == nb for s in submissions))
                                                  for nb in notebooks}
                                 for label, n in runs},
        "differ": differ, "load": [load_before[0], load_after[0]], "cpu": _cpu(), "cores": os.cpu_count(),
        "torch": torch.__version__, "sandbox": sandbox.describe(),
    }
    text = table(figures)
    print(text)
    if results is not None:
        with open(results, "a") as f:
            f.write("\n" + text)
        print(f"appended to {results}")
    return figures


def table(f: dict) -> str:
    """The figures as the Markdown section that bench/RESULTS.md gets."""
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    jobs = f["jobs"]
    per = f["per_notebook"]
    counts = {nb: f["submissions"] // len(f["notebooks"]) + (i < f["submissions"] % len(f["notebooks"]))
              for i, nb in enumerate(f["notebooks"])}
    lines = [f"## Grading a class: a sandbox per submission vs warm workers ({now})", "",
             f"`python -m grader bench --jobs {jobs} --size {f['submissions']}`: {f['cores']} cores "
             f"({f['cpu']}), no GPU, torch {f['torch']}, {f['sandbox']}; load average "
             f"{f['load'][0]:.2f} at the start, {f['load'][1]:.2f} at the end. "
             f"{f['submissions']} generated submissions ("
             + ", ".join(f"{n} of {nb}" for nb, n in counts.items())
             + "; solved, wrong and mixed), each graded four times in one process; seconds per "
             "notebook amortised over the class, start-up and warm-up included.", "",
             f"| | 1 job | {jobs} jobs | {jobs} jobs vs 1 |", "| --- | ---: | ---: | ---: |"]
    for label, words in (("before", "before: a sandbox per submission"), ("after", "after: warm workers")):
        one, many = per[f"{label} 1"], per[f"{label} {jobs}"]
        lines.append(f"| {words} | {one:.2f} s | {many:.2f} s | {one / many:.2f}x |")
    for nb in f["notebooks"]:
        cells = " / ".join(f"{f['per_notebook_by_name'][f'{label} 1'][nb]:.2f}" for label in ("before", "after"))
        lines.append(f"| {nb}, 1 job, before / after (s per notebook) | {cells} | | |")
    lines.append("")
    after, speedup = per[f"after {jobs}"], per["after 1"] / per[f"after {jobs}"]
    lines.append(f"After vs before with {jobs} jobs: {per[f'before {jobs}'] / after:.1f}x faster. Goals: at most "
                 f"{GOAL_SECONDS:.1f} s per notebook ({after:.2f} s: {'met' if after <= GOAL_SECONDS else 'not met'}), "
                 f"{jobs} jobs at least {GOAL_SPEEDUP}x one ({speedup:.2f}x: "
                 f"{'met' if speedup >= GOAL_SPEEDUP else 'not met'}). Verdicts: "
                 + ("the same in all four runs." if not f["differ"] else
                    f"{len(f['differ'])} submissions differ between runs: {', '.join(f['differ'][:10])}."))
    return "\n".join(lines) + "\n"
