"""Catalogue of learner answers, as data: realistic mistakes (WRONG) and valid alternatives (VALID).

One module per notebook (``nbNN_<name>.py``), each defining ``NOTEBOOK``, ``WRONG`` and ``VALID``
(``{exercise: {entry: source}}``), and optionally ``UNCAUGHT`` (wrong answers the checks do not
catch yet) and ``VALID_FAILING`` (valid answers the checks reject). ``tests/checks/test_catalogue_checks.py``
walks them against ``gpt2course.checks``.

Every source is a complete answer cell. A mistake of a line or two is written as an edit of the
exercise's reference answer (``variant``); an answer whose structure differs is written out.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from textwrap import dedent

import nbformat

SOLUTIONS = Path(__file__).resolve().parents[2] / "solutions"
SOLUTION_MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION")


def tidy(catalogue: dict) -> dict:
    """Sources dedented and stripped, so entries can be written indented in the modules."""
    return {exercise: {name: dedent(source).strip() + "\n" for name, source in entries.items()}
            for exercise, entries in catalogue.items()}


@cache
def _reference_answers() -> dict[str, str]:
    """grade_id -> source of every answer cell of solutions/, nbgrader's marker lines removed."""
    answers = {}
    for path in sorted(SOLUTIONS.glob("[0-9][0-9]_*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            meta = cell.get("metadata", {}).get("nbgrader", {})
            if cell.cell_type == "code" and meta.get("solution") and meta.get("grade_id"):
                lines = [line for line in cell.source.splitlines()
                         if line.strip() not in SOLUTION_MARKERS]
                answers[meta["grade_id"]] = "\n".join(lines).strip() + "\n"
    return answers


def reference_answer(exercise: str) -> str:
    """The reference answer cell of ``exercise`` (as in solutions/, without the markers)."""
    try:
        return _reference_answers()[exercise]
    except KeyError:
        raise ValueError(f"no answer cell with grade_id {exercise!r} in {SOLUTIONS}") from None


def variant(exercise: str, *edits: tuple[str, str]) -> str:
    """The reference answer of ``exercise`` with exact text replacements ``(old, new)`` applied.

    Edits apply in order, each to the text the ones before it left. Every ``old`` must occur
    exactly once, otherwise ValueError names the exercise and the text: when the reference
    answer changes, an entry fails loudly instead of silently no longer being the mistake it
    describes.
    """
    source = reference_answer(exercise)
    for old, new in edits:
        count = source.count(old)
        if count != 1:
            found = "does not occur" if count == 0 else f"occurs {count} times"
            raise ValueError(f"catalogue variant of {exercise}: {old!r} {found} in the reference "
                             "answer (after the edits before it); it must occur exactly once")
        source = source.replace(old, new)
    return source
