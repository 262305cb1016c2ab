"""How long grading takes: one learner's full series (every notebook's solution), sequentially and
with the notebooks graded in parallel, in one process. ``python -m grader bench``."""

from __future__ import annotations

import os
import platform
import time
from concurrent.futures import ThreadPoolExecutor

from . import sandbox
from .check import grade
from .paths import solution_notebooks


def _cpu() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def run(jobs: int = 2, repeat: int = 2) -> None:
    import torch  # noqa: F401 - loaded once, outside the timings, as a class run does

    notebooks = solution_notebooks()
    print(f"{len(notebooks)} notebooks; {os.cpu_count()} cores ({_cpu()}); sandbox: {sandbox.describe()}")
    for label, workers in (("sequential", 1), (f"{jobs} in parallel", jobs)):
        best = None
        for _ in range(repeat):
            start = time.perf_counter()
            with ThreadPoolExecutor(max_workers=workers) as pool:
                grades = list(pool.map(lambda nb: grade(nb, salt="bench"), notebooks))
            elapsed = time.perf_counter() - start
            assert all(g.score == g.max_score for g in grades), "a solution lost points"
            best = elapsed if best is None else min(best, elapsed)
        print(f"full series, {label}: {best:.1f} s (best of {repeat}); "
              f"{best / len(notebooks):.1f} s per notebook")
