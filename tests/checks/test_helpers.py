"""One mistake, one message: an exercise whose reference answer calls another exercise of the
same notebook names it as a helper (``register(..., helpers=...)``), and when its check fails in
a notebook while the learner's helper fails its own check, the message says to fix the helper
first. The grader needs no such data: each exercise is graded with the reference helpers
(tests/grader/test_isolation.py, tests/grader/test_catalogue_notebooks.py)."""

from __future__ import annotations

import ast

import nbformat
import pytest

from catalogue import reference_answer
from conftest import SOLUTIONS
from gpt2course.checks import REGISTRY, CheckFailed, check
from grader.notebook import grade_id, is_answer_cell


def _exercises_by_notebook() -> dict[str, list[str]]:
    return {path.name: [grade_id(c) for c in nbformat.read(path, as_version=4).cells if is_answer_cell(c)]
            for path in sorted(SOLUTIONS.glob("[0-9][0-9]_*.ipynb"))}


def _called(source: str) -> set[str]:
    return {n.id for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


@pytest.mark.parametrize("notebook", sorted(_exercises_by_notebook()))
def test_helpers_are_the_exercises_the_reference_calls(notebook):
    exercises = _exercises_by_notebook()[notebook]
    for name in exercises:
        calls = _called(reference_answer(name))
        expected = tuple(e for e in exercises if e != name and e in calls)
        assert REGISTRY[name].helpers == expected, (name, REGISTRY[name].helpers, expected)


def _namespace_with(helper_source: str, exercise_source: str) -> dict:
    import math

    import torch
    from torch import nn
    from torch.nn import functional as F

    from gpt2course import reference
    namespace = {n: getattr(reference, n) for n in reference.__all__}
    namespace.update({"torch": torch, "nn": nn, "F": F, "math": math, "__name__": "__main__"})
    exec(compile(helper_source, "<helper cell>", "exec"), namespace)
    exec(compile(exercise_source, "<exercise cell>", "exec"), namespace)
    return namespace


@pytest.mark.parametrize("exercise, helper, wrong", [
    ("CausalSelfAttention", "split_heads", "def split_heads(x, n_head):\n    B, T, C = x.shape\n"
                                           "    return x.view(B, n_head, T, C // n_head)\n"),
    ("MLP", "gelu", "import torch\ndef gelu(x):\n    return torch.relu(x)\n"),
    ("encode", "merge", "def merge(ids, pair, new_id):\n    out, i = [], 0\n    while i < len(ids):\n"
                        "        if tuple(ids[i:i + 2]) == tuple(pair):\n            out.append(new_id + 1)\n"
                        "            i += 2\n        else:\n            out.append(ids[i])\n            i += 1\n"
                        "    return out\n"),
])
def test_a_failing_helper_is_named_first(exercise, helper, wrong, monkeypatch):
    import sys
    import types
    namespace = _namespace_with(wrong, reference_answer(exercise))
    # A class defined in a notebook lives in __main__: look it up there, as IPython does.
    main = types.ModuleType("__main__")
    main.__dict__.update(namespace)
    monkeypatch.setitem(sys.modules, "__main__", main)
    with pytest.raises(CheckFailed) as failure:
        check(exercise, main.__dict__[exercise], quiet=True)
    assert str(failure.value).startswith(f"your {helper} fails its own test, and {exercise} calls it: fix "
                                         f"{helper} first"), str(failure.value)
    # With the helper right, the same exercise passes: the hint is about the helper only.
    namespace = _namespace_with("", reference_answer(exercise))
    check(exercise, namespace[exercise], quiet=True)


def test_a_failure_shows_the_learners_line_and_no_course_frames():
    namespace = _namespace_with("", "import torch\ndef softmax(x, dim=-1):\n"
                                    "    return x.exp() / x.exp().sum(dim, keepdims=True).item()\n")
    with pytest.raises(CheckFailed) as failure:
        check("softmax", namespace["softmax"], quiet=True)
    shown = "".join(failure.value._render_traceback_())
    assert "<exercise cell>" in shown and "in softmax" in shown, shown
    assert "gpt2course" not in shown.replace("CheckFailed", ""), shown
    assert shown.rstrip().endswith(str(failure.value).rstrip())
    assert shown.count(str(failure.value).splitlines()[0]) == 1, shown
