"""gpt2course/reference/ is generated from the answer cells of solutions/ (grader/reference_code.py):
one copy of every exercise to edit, and a build that says when the other is stale."""

from __future__ import annotations

import inspect
import shutil
import subprocess
import sys

import nbformat
import pytest

from conftest import REPO, SOLUTIONS, answer_cells, is_answer_cell, grade_id
from gpt2course import reference
from grader import reference_code


def test_reference_modules_are_their_answer_cells():
    assert reference_code.stale() == [], "run `make notebooks`"


def test_every_exercise_is_importable_from_reference_as_its_answer_cell(notebook_name):
    nb = nbformat.read(SOLUTIONS / notebook_name, as_version=4)
    for gid, source in answer_cells(nb).items():
        assert gid in reference.__all__, f"gpt2course.reference does not export {gid}"
        assert inspect.getsource(getattr(reference, gid)).strip() == source.strip(), (
            f"gpt2course.reference.{gid} is not the answer cell {gid} of {notebook_name}")


@pytest.fixture
def copies(tmp_path):
    """Copies of solutions/ and gpt2course/reference/ to break."""
    solutions, ref = tmp_path / "solutions", tmp_path / "reference"
    shutil.copytree(SOLUTIONS, solutions)
    shutil.copytree(REPO / "gpt2course" / "reference", ref, ignore=shutil.ignore_patterns("__pycache__"))
    return solutions, ref


def _edit_answer(solutions, notebook, exercise, old, new):
    path = solutions / notebook
    nb = nbformat.read(path, as_version=4)
    cell = next(c for c in nb.cells if is_answer_cell(c) and grade_id(c) == exercise)
    assert old in cell.source
    cell.source = cell.source.replace(old, new)
    nbformat.write(nb, path)


def test_an_edited_answer_cell_makes_its_module_stale_and_the_build_rewrites_it(copies):
    solutions, ref = copies
    _edit_answer(solutions, "03_attention.ipynb", "attention", "weights = torch.softmax(scores, dim=-1)",
                 "weights = torch.softmax(scores, dim=-1)  # edited in the notebook")
    assert reference_code.stale(ref, solutions) == ["attention.py"]
    before = {p.name: p.read_text() for p in ref.glob("*.py")}
    assert reference_code.write(ref, solutions) == ["attention.py"]
    assert "# edited in the notebook" in (ref / "attention.py").read_text()
    assert reference_code.stale(ref, solutions) == []
    after = {p.name: p.read_text() for p in ref.glob("*.py")}
    assert {n for n in before if before[n] != after[n]} == {"attention.py"}
    # The module's head (docstring and imports) is kept as written.
    assert after["attention.py"].split("# ---- generated")[0] == before["attention.py"].split("# ---- generated")[0]


def test_an_edited_module_is_stale_and_the_build_puts_the_answer_cell_back(copies):
    solutions, ref = copies
    path = ref / "softmax.py"
    original = path.read_text()
    path.write_text(original.replace("### END SOLUTION", "    pass\n    ### END SOLUTION"))
    assert reference_code.stale(ref, solutions) == ["softmax.py"]
    reference_code.write(ref, solutions)
    assert path.read_text() == original


@pytest.mark.parametrize("breakage, message", [
    (("cells: softmax", "cells: softmax, soft_max"), "has no answer cell 'soft_max'"),
    (("cells: softmax", "cells: "), None),  # the marker no longer matches: softmax has no module
    (("solutions/00_welcome.ipynb", "solutions/00_welcom.ipynb"), "00_welcom.ipynb does not exist"),
])
def test_a_marker_that_names_what_is_not_there_is_an_error(copies, breakage, message):
    solutions, ref = copies
    path = ref / "softmax.py"
    path.write_text(path.read_text().replace(*breakage))
    with pytest.raises(reference_code.ReferenceError) as info:
        reference_code.stale(ref, solutions)
    assert (message or "00_welcome.ipynb: softmax") in str(info.value)


def test_an_answer_cell_generated_into_two_modules_is_an_error(copies):
    solutions, ref = copies
    path = ref / "batches.py"
    path.write_text(path.read_text().replace("cells: get_batch", "cells: get_batch, merge"))
    with pytest.raises(reference_code.ReferenceError, match="merge .* both batches.py and bpe.py"):
        reference_code.expected(ref, solutions)


def test_make_notebooks_updates_everything_that_shows_an_exercise(tmp_path):
    """The maintainer's path in a copy of the repository: edit the answer cell's docstring (which
    the learner's stub keeps), `build --check` fails naming the reference module and the learner
    notebook, `build` updates both, `build --check` passes."""
    repo = tmp_path / "repo"
    shutil.copytree(REPO, repo, ignore=shutil.ignore_patterns(
        ".venv", ".git", "__pycache__", "*.egg-info", ".pytest_cache", "build"))
    _edit_answer(repo / "solutions", "03_attention.ipynb", "causal_mask", "(T, T) bool mask:",
                 "(T, T) boolean mask:")

    def build(*args):
        return subprocess.run([sys.executable, "-m", "grader", "build", *args], cwd=repo,
                              capture_output=True, text=True, timeout=300)

    stale = build("--check")
    assert stale.returncode == 1
    assert "attention.py" in stale.stderr and "03_attention.ipynb" in stale.stderr
    assert build().returncode == 0
    assert "(T, T) boolean mask:" in (repo / "gpt2course" / "reference" / "attention.py").read_text()
    learner = nbformat.read(repo / "notebooks" / "03_attention.ipynb", as_version=4)
    assert "(T, T) boolean mask:" in answer_cells(learner)["causal_mask"]
    fresh = build("--check")
    assert fresh.returncode == 0, fresh.stderr
