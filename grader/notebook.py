"""Reading notebooks defensively and reading nbgrader's cell metadata."""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from .paths import SOLUTIONS, solution_notebooks

# Larger files are not notebooks a learner wrote: refuse before parsing.
MAX_NOTEBOOK_BYTES = 50 * 2**20


class UngradableNotebook(Exception):
    """The file cannot be graded; the message is one line saying why."""


def read_notebook(path: str | Path) -> NotebookNode:
    """Parse ``path`` as a notebook (any nbformat 4 minor version), or raise UngradableNotebook."""
    path = Path(path)
    if not path.is_file():
        raise UngradableNotebook(f"{path}: no such file")
    if path.stat().st_size > MAX_NOTEBOOK_BYTES:
        raise UngradableNotebook(f"{path}: {path.stat().st_size} bytes is too large for a notebook")
    raw = path.read_bytes()
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise UngradableNotebook(f"{path}: not a notebook (not UTF-8 text)") from None
    except json.JSONDecodeError as exc:
        raise UngradableNotebook(f"{path}: not a notebook (corrupt JSON: {exc.msg} at line "
                                 f"{exc.lineno}, column {exc.colno})") from None
    except RecursionError:
        raise UngradableNotebook(f"{path}: not a notebook (JSON nested too deeply)") from None
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        raise UngradableNotebook(f"{path}: not a notebook (no list of cells)")
    try:
        data = _without_surrogates(data)
    except RecursionError:
        raise UngradableNotebook(f"{path}: not a notebook (JSON nested too deeply)") from None
    if data.get("nbformat") != 4:
        raise UngradableNotebook(f"{path}: unsupported notebook format {data.get('nbformat')!r} "
                                 "(expected 4)")
    try:
        for cell in data["cells"]:
            if not isinstance(cell, dict):
                raise ValueError("a cell that is not an object")
            if not isinstance(cell.get("metadata"), dict):
                cell["metadata"] = {}
            if not isinstance(cell["metadata"].get("nbgrader", {}), dict):
                del cell["metadata"]["nbgrader"]
            tags = cell["metadata"].get("tags")
            if tags is not None and not (isinstance(tags, list) and all(isinstance(t, str) for t in tags)):
                del cell["metadata"]["tags"]
        nb = nbformat.from_dict(data)
        for cell in nb.cells:
            if isinstance(cell.get("source"), list):
                cell["source"] = "".join(cell["source"])
            if not isinstance(cell.get("source", ""), str) or "cell_type" not in cell:
                raise ValueError("a cell without text source or type")
    except Exception as exc:  # noqa: BLE001 - any malformation is the same verdict
        raise UngradableNotebook(f"{path}: not a notebook ({exc})") from None
    return nb


def _without_surrogates(value):
    """``value`` with every lone surrogate in its strings replaced by "?".

    JSON may spell them (``"\\ud800"``) and json.loads returns them, but no UTF-8 text can hold
    one: Python's parser, the notebook writer and the kernel would all fail on it later.
    """
    if isinstance(value, str):
        try:
            value.encode("utf-8")
            return value
        except UnicodeEncodeError:
            return value.encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, list):
        return [_without_surrogates(v) for v in value]
    if isinstance(value, dict):
        return {_without_surrogates(k): _without_surrogates(v) for k, v in value.items()}
    return value


def nbgrader_meta(cell) -> dict:
    meta = cell.get("metadata", {}).get("nbgrader")
    return meta if isinstance(meta, dict) else {}


def grade_id(cell) -> str | None:
    value = nbgrader_meta(cell).get("grade_id")
    return value if isinstance(value, str) else None


def is_answer_cell(cell) -> bool:
    """An autograded answer: a code cell with ``solution`` (and no ``grade``: those are graded by hand)."""
    meta = nbgrader_meta(cell)
    return cell.get("cell_type") == "code" and bool(meta.get("solution")) and not meta.get("grade")


def is_written_answer(cell) -> bool:
    """nbgrader's "manually graded answer": ``solution`` and ``grade``, markdown or code. The
    learner's text is carried into the graded copy; an instructor awards its points."""
    meta = nbgrader_meta(cell)
    return bool(meta.get("solution")) and bool(meta.get("grade"))


def is_task_cell(cell) -> bool:
    """nbgrader's "manually graded task": a locked instruction whose points an instructor awards."""
    return bool(nbgrader_meta(cell).get("task"))


def is_manual_cell(cell) -> bool:
    """A cell whose points are given by hand (a written answer or a task), never by grader.check."""
    return is_written_answer(cell) or is_task_cell(cell)


def is_test_cell(cell) -> bool:
    meta = nbgrader_meta(cell)
    return cell.get("cell_type") == "code" and bool(meta.get("grade")) and not meta.get("solution")


def points(cell) -> float:
    try:
        return float(nbgrader_meta(cell).get("points", 0) or 0)
    except (TypeError, ValueError):
        return 0.0


def max_points(nb) -> float:
    """The points of ``nb``: its test cells' and those given by hand (nbgrader's max_score)."""
    return float(sum(points(c) for c in nb.cells if is_test_cell(c) or is_manual_cell(c)))


_NUMBER = re.compile(r"(\d\d)_")


def find_source(path: str | Path) -> Path:
    """The solutions/ notebook that ``path`` is a copy of, by its "NN_" number.

    Learners' downloads get renamed ("Copy of 03_attention.ipynb", "03_attention (1).ipynb"),
    so the number decides, not the whole name.
    """
    name = Path(path).name
    exact = SOLUTIONS / name
    if exact.is_file():
        return exact
    match = _NUMBER.search(name)
    if match:
        candidates = [p for p in solution_notebooks() if p.name.startswith(match.group(1) + "_")]
        if len(candidates) == 1:
            return candidates[0]
    known = ", ".join(p.name for p in solution_notebooks())
    raise UngradableNotebook(f"{name}: unknown notebook (expected one of: {known})")
