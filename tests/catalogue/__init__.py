"""Catalogue of learner answers, as data: realistic mistakes (WRONG) and valid alternatives (VALID).

One module per notebook (``nbNN_<name>.py``), each defining ``NOTEBOOK``, ``WRONG`` and ``VALID``
(``{exercise: {entry: source}}``), and optionally ``UNCAUGHT`` (wrong answers the checks do not
catch yet) and ``VALID_FAILING`` (valid answers the checks reject). ``tests/test_catalogue_checks.py``
walks them against ``gpt2course.checks``.
"""

from textwrap import dedent


def tidy(catalogue: dict) -> dict:
    """Sources dedented and stripped, so entries can be written indented in the modules."""
    return {exercise: {name: dedent(source).strip() + "\n" for name, source in entries.items()}
            for exercise, entries in catalogue.items()}
