"""Where the repository's notebooks live."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SOLUTIONS = REPO / "solutions"
NOTEBOOKS = REPO / "notebooks"


def solution_notebooks(folder: Path = SOLUTIONS) -> list[Path]:
    """The course's source notebooks (``NN_name.ipynb``) in ``folder``, in course order."""
    return sorted(folder.glob("[0-9][0-9]_*.ipynb"))
