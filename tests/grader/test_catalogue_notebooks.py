"""The catalogue of wrong implementations, graded through the real pipeline.

Round k puts the k-th wrong entry of every exercise into one notebook (other answers solved)
and grades it with the grader (`grader.check.grade`, what `python -m grader check` runs):
every exercise given a wrong entry must lose points. Valid variants, all at once, must keep
full marks. Helper rounds put wrong entries only in the exercises other exercises call: those
lose points, nothing else does (one mistake, one loss).

All of it is in the slow tier (`make test-all`, which CI runs): every entry also goes through
the checks in process (tests/checks/test_catalogue_checks.py) and the trusted path under two
salts (tests/checks/test_catalogue_remote.py) in `make test`, where the sandboxed pipeline is
covered by one grading per notebook (tests/grader/test_grader_cli.py grades every solution) and
by the attack and fault corpora (tests/grader/test_attacks.py).
"""

from __future__ import annotations

import importlib

import pytest

from conftest import exercise_scores, filled_notebook, grade_in_process

pytestmark = pytest.mark.slow

MODULES = ["nb00_welcome", "nb01_tokens_and_data", "nb02_embeddings", "nb03_attention",
           "nb04_multi_head_attention", "nb05_layernorm_and_mlp", "nb06_residual_block",
           "nb07_gpt2_model", "nb08_training", "nb09_generation", "nb10_full_training_run"]


def _catalogue(module_name):
    return importlib.import_module(f"catalogue.{module_name}")


def _rounds(module_name):
    wrong = _catalogue(module_name).WRONG
    depth = max(len(entries) for entries in wrong.values())
    for k in range(depth):
        yield k, {ex: list(entries.items())[k] for ex, entries in wrong.items() if k < len(entries)}


ROUNDS = [pytest.param(m, k, id=f"{m}-round{k}") for m in MODULES for k, _ in _rounds(m)]


def _lost(scores, exercise):
    cells = [v for gid, v in scores.items()
             if gid == f"test_{exercise}" or gid.startswith(f"test_{exercise}_hidden")]
    assert cells, f"no test cells for {exercise}"
    return sum(s for s, _ in cells) < sum(m for _, m in cells)


@pytest.mark.parametrize("module_name, k", ROUNDS)
def test_wrong_implementations_lose_points(module_name, k, tmp_path):
    entries = dict(_rounds(module_name))[k]
    catalogue = _catalogue(module_name)
    answers = {ex: src for ex, (_, src) in entries.items()}
    path = filled_notebook(catalogue.NOTEBOOK, answers, tmp_path / catalogue.NOTEBOOK)
    scores = exercise_scores(grade_in_process(path))
    kept = [f"{ex}/{name}" for ex, (name, _) in entries.items() if not _lost(scores, ex)]
    assert not kept, f"wrong implementations kept full marks: {kept}"


def _helper_rounds(module_name):
    """Round k: the k-th wrong entry of every exercise of the notebook that another one calls."""
    from gpt2course.checks import REGISTRY
    wrong = _catalogue(module_name).WRONG
    helpers = sorted({h for ex in wrong for h in REGISTRY[ex].helpers})
    depth = max((len(wrong[h]) for h in helpers), default=0)
    for k in range(depth):
        yield k, {h: list(wrong[h].items())[k] for h in helpers if k < len(wrong[h])}


HELPER_ROUNDS = [pytest.param(m, k, id=f"{m}-helpers-round{k}") for m in MODULES for k, _ in _helper_rounds(m)]


@pytest.mark.parametrize("module_name, k", HELPER_ROUNDS)
def test_a_helpers_mistake_costs_only_its_own_cells(module_name, k, tmp_path):
    """One mistake, one loss: wrong answers in the exercises other exercises call (split_heads,
    merge, gelu, sample_next_token, ...), every other answer right. The helpers lose points;
    the exercises that call them keep every point (they are graded with the reference helpers)."""
    entries = dict(_helper_rounds(module_name))[k]
    catalogue = _catalogue(module_name)
    answers = {ex: src for ex, (_, src) in entries.items()}
    path = filled_notebook(catalogue.NOTEBOOK, answers, tmp_path / catalogue.NOTEBOOK)
    scores = exercise_scores(grade_in_process(path))
    kept = [f"{ex}/{name}" for ex, (name, _) in entries.items() if not _lost(scores, ex)]
    assert not kept, f"wrong implementations kept full marks: {kept}"
    others = {gid: v for gid, v in scores.items()
              if not any(gid == f"test_{ex}" or gid.startswith(f"test_{ex}_hidden") for ex in entries)}
    lost = {gid: v for gid, v in others.items() if v[0] < v[1]}
    assert not lost, f"{sorted(entries)} wrong ({[n for n, _ in entries.values()]}) cost other cells points: {lost}"


@pytest.mark.parametrize("module_name", MODULES)
def test_valid_variants_keep_full_marks(module_name, tmp_path):
    """The last valid variant of every exercise, all at once, through the sandboxed grader.
    (Every valid variant goes through the trusted path in tests/checks/test_catalogue_remote.py.)"""
    catalogue = _catalogue(module_name)
    answers = {ex: list(entries.values())[-1] for ex, entries in catalogue.VALID.items()}
    path = filled_notebook(catalogue.NOTEBOOK, answers, tmp_path / catalogue.NOTEBOOK)
    result = grade_in_process(path)
    assert result["score"] == result["max_score"], [c for c in result["cells"] if not c["passed"]]
    assert result["errors"] == []
