"""Every answer cell in solutions/ is the same code as its function in gpt2course.reference."""

from __future__ import annotations

import inspect

import nbformat

from conftest import SOLUTIONS, answer_cells
from gpt2course import reference


def test_answer_cells_are_the_reference_code(notebook_name):
    nb = nbformat.read(SOLUTIONS / notebook_name, as_version=4)
    for gid, source in answer_cells(nb).items():
        assert hasattr(reference, gid), f"gpt2course.reference has no {gid}"
        assert source.strip() == inspect.getsource(getattr(reference, gid)).strip(), (
            f"the answer cell {gid} in {notebook_name} differs from gpt2course.reference.{gid}")


def test_reference_exports_every_exercise():
    names = set()
    for path in SOLUTIONS.glob("*.ipynb"):
        names |= set(answer_cells(nbformat.read(path, as_version=4)))
    assert names <= set(reference.__all__)
