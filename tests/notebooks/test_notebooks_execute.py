"""Every solution notebook runs top to bottom, headless, in fast mode, without an error.

`make test` runs here the notebooks that build no widget; the ones that do (the token explorer,
the attention explorers, the sampling widget) it runs under Colab's ipywidgets 7.7.1 in
tests/notebooks/test_colab_widgets7.py, which checks what this test checks and more, and
tests/notebooks/test_browser_lab.py drives ipywidgets 8 in JupyterLab. The slow tier runs every
notebook here too, with this environment's ipywidgets 8.
"""

from __future__ import annotations

import nbformat
import pytest

from conftest import NOTEBOOK_NAMES, SOLUTIONS, WIDGET_NOTEBOOKS, Client


@pytest.mark.parametrize("notebook_name", [
    pytest.param(name, marks=pytest.mark.slow if name in WIDGET_NOTEBOOKS else []) for name in NOTEBOOK_NAMES])
def test_solution_notebook_runs_in_fast_mode(notebook_name, tmp_path, monkeypatch):
    monkeypatch.setenv("GPT2COURSE_FAST", "1")
    nb = nbformat.read(SOLUTIONS / notebook_name, as_version=4)
    Client(nb, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    images = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if "image/png" in o.get("data", {})]
    assert images, f"{notebook_name} should draw at least one plot"
