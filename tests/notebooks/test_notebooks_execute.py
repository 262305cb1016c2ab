"""Every solution notebook runs top to bottom, headless, in fast mode, without an error."""

from __future__ import annotations


import nbformat

from conftest import SOLUTIONS, Client


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
