"""Where the repository's notebooks live."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# An installed package carries a copy of solutions/ (setup.py copies it at build time), so that
# `python -m grader check` works outside a checkout; a checkout reads solutions/ itself.
PACKAGED_SOLUTIONS = Path(__file__).resolve().parent / "_solutions"
SOLUTIONS = PACKAGED_SOLUTIONS if PACKAGED_SOLUTIONS.is_dir() else REPO / "solutions"
NOTEBOOKS = REPO / "notebooks"


def solution_notebooks(folder: Path = SOLUTIONS) -> list[Path]:
    """The course's source notebooks (``NN_name.ipynb``) in ``folder``, in course order."""
    return sorted(folder.glob("[0-9][0-9]_*.ipynb"))
