"""Grade one learner notebook against its source in solutions/ (``python -m grader check``).

The graded notebook is the source notebook with each answer cell replaced by the learner's cell
of the same grade_id: every other cell (explanations, demos, visible and hidden tests) comes from
the source, so edits to locked cells and deleted or re-tagged test cells change nothing. It runs
in a sandbox (see grader.sandbox); this process only reads the result and awards points.
"""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat

from . import sandbox
from .notebook import (UngradableNotebook, find_source, grade_id, is_answer_cell, is_test_cell,
                       points, read_notebook)
from .paths import REPO

DEFAULT_CELL_TIMEOUT = 60           # seconds per cell
MAX_RESULT_BYTES = 20 * 2**20       # the sandbox's result file is refused beyond this
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


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

    def to_json(self) -> dict:
        return asdict(self)


def assemble(source, learner) -> tuple[nbformat.NotebookNode, list[str]]:
    """The notebook to run: the source with the learner's answer cells put in.

    Returns it and a list of notes (answer cells that were missing and so left as stubs).
    """
    answers = {}
    for cell in learner.cells:
        gid = grade_id(cell)
        if gid and is_answer_cell(cell) and gid not in answers:
            answers[gid] = cell.get("source", "")
    graded = copy.deepcopy(source)
    notes = []
    for cell in graded.cells:
        cell["metadata"].pop("tags", None)
        if cell.cell_type == "code":
            cell["outputs"], cell["execution_count"] = [], None
        if is_answer_cell(cell):
            gid = grade_id(cell)
            if gid in answers:
                cell["source"] = answers[gid]
            else:
                cell["source"] = "raise NotImplementedError()  # answer cell missing from the submission"
                notes.append(f"answer cell {gid!r} not found in the submission")
    return graded, notes


def _message(result_cell: dict) -> str:
    for out in result_cell.get("outputs", []):
        if out.get("output_type") == "error":
            text = _ANSI.sub("", f"{out.get('ename', 'Error')}: {out.get('evalue', '')}").strip()
            return text[:1000]
    if result_cell.get("status") is None:
        return "did not run (an earlier cell stopped the notebook)"
    return f"the cell ended with status {result_cell.get('status')!r}"


def execute(nb, timeout: int, limits: sandbox.Limits) -> dict:
    """Run ``nb`` in the sandbox; return {"cells": [...], "problems": [...]}."""
    with tempfile.TemporaryDirectory(prefix="grader-") as workdir:
        src = os.path.join(workdir, "graded.ipynb")
        dst = os.path.join(workdir, "result.json")
        nbformat.write(nb, src)
        env = {
            "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": workdir,
            "PYTHONPATH": str(REPO),
            "JUPYTER_RUNTIME_DIR": os.path.join(workdir, "runtime"),
            "JUPYTER_DATA_DIR": os.path.join(workdir, "data"),
            "IPYTHONDIR": os.path.join(workdir, "ipython"),
            "MPLCONFIGDIR": os.path.join(workdir, "mpl"),
            "MPLBACKEND": "Agg",
            "GPT2COURSE_FAST": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            "LANG": "C.UTF-8",
        }
        argv = sandbox.wrap([sys.executable, "-m", "grader.run_notebook", src, dst, str(timeout)], workdir)
        n_cells = sum(1 for c in nb.cells if c.cell_type == "code")
        wall = 120 + timeout * n_cells
        try:
            proc = subprocess.run(argv, cwd=workdir, env=env, stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                  timeout=wall, preexec_fn=sandbox.set_limits(limits))
            stderr = proc.stderr[-2000:].decode("utf-8", "replace")
        except subprocess.TimeoutExpired:
            return {"cells": [], "problems": [f"grading stopped after {wall} s"]}
        if not os.path.isfile(dst) or os.path.getsize(dst) > MAX_RESULT_BYTES:
            last = stderr.strip().splitlines()[-1:] or ["no result"]
            return {"cells": [], "problems": [f"the notebook runner failed: {last[0][:300]}"]}
        with open(dst, encoding="utf-8") as f:
            return json.load(f)


def grade(path: str | Path, *, timeout: int = DEFAULT_CELL_TIMEOUT,
          limits: sandbox.Limits | None = None, source: str | Path | None = None) -> Grade:
    """Grade the notebook at ``path``. Raises UngradableNotebook when it cannot be graded."""
    path = Path(path)
    learner = read_notebook(path)
    source_path = Path(source) if source else find_source(path)
    source_nb = read_notebook(source_path)
    graded, notes = assemble(source_nb, learner)
    result = execute(graded, timeout, limits or sandbox.Limits())
    ran = result.get("cells", [])
    out = Grade(notebook=path.name, score=0.0, max_score=0.0, errors=list(notes) + list(result.get("problems", [])))
    for index, cell in enumerate(graded.cells):
        if not is_test_cell(cell):
            continue
        max_points = points(cell)
        cell_result = ran[index] if index < len(ran) else {"status": None, "outputs": []}
        passed = cell_result.get("status") == "ok" and not any(
            o.get("output_type") == "error" for o in cell_result.get("outputs", []))
        out.cells.append(CellResult(
            grade_id=grade_id(cell) or f"cell-{index + 1}", max_score=max_points,
            score=max_points if passed else 0.0, passed=passed,
            message="" if passed else _message(cell_result)))
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


__all__ = ["grade", "render", "Grade", "CellResult", "UngradableNotebook", "assemble"]
