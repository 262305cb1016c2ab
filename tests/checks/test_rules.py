"""Every rule an exercise's text states is tested.

Each exercise's text in solutions/ (and so in the learner's notebook) lists its rules under a line
``**What the tests check**``, one bullet each, ``- **rule name**: what it asks``. The checks keep,
beside the cases, which cases test each rule (``register(..., rules={name: [case labels]})``),
and the catalogue tags each wrong answer with the rule it breaks (``EXPECT`` in
tests/catalogue/). This file holds the three together:

- every exercise states at least one rule, and the rules it states are exactly the ones its
  checks list;
- every rule names at least one case, and every case it names exists (visible or hidden, under
  any seed);
- every rule is broken by at least one wrong answer in the catalogue (which must lose points:
  tests/checks/test_catalogue_checks.py).
"""

from __future__ import annotations

import re

import nbformat
import pytest

from conftest import SOLUTIONS
from gpt2course.checks import REGISTRY, build_cases
from grader.notebook import grade_id, is_answer_cell

from test_catalogue_checks import MODULES

HEADER = "**What the tests check**"
BULLET = re.compile(r"^- \*\*(?P<name>[^*]+)\*\*: (?P<text>\S.*)$")


def parse_rules(markdown: str) -> dict[str, str] | None:
    """{rule name: text} of the list under HEADER, or None when the text has no such list."""
    lines = markdown.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == HEADER)
    except StopIteration:
        return None
    rules: dict[str, str] = {}
    name = None
    for line in lines[start + 1:]:
        match = BULLET.match(line)
        if match:
            name = match["name"].strip()
            assert name not in rules, f"the rule {name!r} is listed twice"
            rules[name] = match["text"].strip()
        elif name is not None and line.startswith("  ") and line.strip():
            rules[name] += " " + line.strip()
        elif name is None and not line.strip():
            continue  # blank lines between the header and the first bullet
        else:
            break
    return rules


def _exercise_texts() -> list[tuple[str, str, str]]:
    """(notebook, exercise, the markdown between the previous code cell and its answer cell)."""
    found = []
    for path in sorted(SOLUTIONS.glob("[0-9][0-9]_*.ipynb")):
        cells = nbformat.read(path, as_version=4).cells
        for i, cell in enumerate(cells):
            if not is_answer_cell(cell):
                continue
            text = []
            for before in reversed(cells[:i]):
                if before.cell_type != "markdown":
                    break
                text.insert(0, before.source)
            found.append((path.name, grade_id(cell), "\n\n".join(text)))
    return found


EXERCISES = _exercise_texts()


def _labels(name: str) -> set[str]:
    return {case.label for seed in (0, 12345) for hidden in (False, True)
            for case in build_cases(name, seed=seed, hidden=hidden)}


@pytest.mark.parametrize("notebook, exercise, text", EXERCISES, ids=[e for _, e, _ in EXERCISES])
def test_the_text_states_the_rules_the_checks_test(notebook, exercise, text):
    stated = parse_rules(text)
    assert stated, (f"{notebook}: the text above {exercise}'s answer cell has no rule list: a line "
                    f"{HEADER!r}, then one bullet per rule, '- **rule name**: what it asks'")
    listed = REGISTRY[exercise].rules
    assert set(stated) == set(listed), (f"{exercise}: the text states {sorted(stated)}, the checks list "
                                        f"{sorted(listed)}")
    labels = _labels(exercise)
    for rule, cases in listed.items():
        assert cases, f"{exercise}: the rule {rule!r} has no case"
        missing = [label for label in cases if label not in labels]
        assert not missing, f"{exercise}: the rule {rule!r} names cases that do not exist: {missing}"


@pytest.mark.parametrize("exercise", sorted(REGISTRY))
def test_every_rule_is_broken_by_a_wrong_answer_in_the_catalogue(exercise):
    broken = {rule for module in MODULES.values()
              for entry in getattr(module, "EXPECT", {}).get(exercise, {}).values() for rule in [entry[0]]}
    unbroken = sorted(set(REGISTRY[exercise].rules) - broken)
    assert not unbroken, f"{exercise}: no wrong answer in the catalogue breaks the rules {unbroken}"


def test_the_rule_list_parser():
    text = ("Some text.\n\n**What the tests check**\n\n- **shape**: returns `(B, T)`,\n"
            "  for any T.\n- **no change**: leaves `x` as it was.\n\nAfter the list.\n- not a rule\n")
    assert parse_rules(text) == {"shape": "returns `(B, T)`, for any T.", "no change": "leaves `x` as it was."}
    assert parse_rules("no list here") is None
