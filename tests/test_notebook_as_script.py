"""bench/notebook_as_script.py, the runner of notebook 10's GPU measurements (machines without
Jupyter): cells share one namespace, figures are saved, check cells can be left out, a failing
cell stops the run with status 1, and --before / --then run around the notebook."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parents[1]
RUNNER = ROOT / "bench" / "notebook_as_script.py"


def run(tmp_path, cells, *flags):
    nb = new_notebook(cells=[new_markdown_cell("# title"), *[new_code_cell(c) for c in cells]])
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, str(RUNNER), str(path), "--out", str(out), *flags],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    return proc, out


def test_cells_share_a_namespace_and_figures_are_saved(tmp_path):
    cells = ["x = 41",
             "import matplotlib.pyplot as plt\nfig, ax = plt.subplots()\nax.plot([1, 2], [x, x + 1])",
             "from IPython.display import Markdown, display\ndisplay(Markdown(f'| answer | {x + 1} |'))",
             "%matplotlib inline\nprint('after a magic', x)"]
    proc, out = run(tmp_path, cells)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "| answer | 42 |" in proc.stdout and "after a magic 41" in proc.stdout
    figures = sorted(out.glob("figure_*.png"))
    assert len(figures) == 1 and figures[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_failing_cell_stops_the_run(tmp_path):
    proc, _ = run(tmp_path, ["print('one')", "raise ValueError('boom')", "print('never')"])
    assert proc.returncode == 1
    assert "boom" in proc.stdout + proc.stderr and "FAILED" in proc.stdout and "never" not in proc.stdout


def test_skip_checks_before_and_then(tmp_path):
    (tmp_path / "first.py").write_text("seed = 7\n")
    (tmp_path / "more.py").write_text("print('then sees', y)\n")
    cells = ["y = seed * 2", "check('softmax', None)"]
    proc, _ = run(tmp_path, cells, "--skip-checks", "--before", "first.py", "--then", "more.py")
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "skipped (a check)" in proc.stdout and "then sees 14" in proc.stdout


def test_skip_and_until(tmp_path):
    cells = ["a = 1", "slow_ladder = 1 / 0", "def train_run():\n    return a + 1", "print('after until')"]
    proc, _ = run(tmp_path, cells, "--skip", "slow_ladder", "--until", "def train_run(")
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "skipped (--skip)" in proc.stdout and "after until" not in proc.stdout
    proc, _ = run(tmp_path, cells, "--until", "no such text")
    assert proc.returncode == 2 and "no code cell contains" in proc.stderr
