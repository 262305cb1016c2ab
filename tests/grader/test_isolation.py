"""Each exercise is graded on its own answer cell (grader/check.py, grader/run_notebook.py).

Every answer cell runs in a process forked from the runner, after the trusted cells and the
source's answers to the exercises before it; the runner never runs the learner's code. These
tests show what that buys a learner (one mistake costs once), what it keeps (imports from
earlier answer cells), and what it tells a learner whose answer leans on another cell.
The attacks on it are in tests/attacks/corpus.py.
"""

from __future__ import annotations

import nbformat

from conftest import SOLUTIONS, answer_cells, exercise_scores, filled_notebook, grade_in_process


def _solved(name: str) -> dict[str, str]:
    return answer_cells(nbformat.read(SOLUTIONS / name, as_version=4))


def _passed(scores: dict, exercise: str) -> bool:
    cells = [v for gid, v in scores.items() if gid == f"test_{exercise}" or gid.startswith(f"test_{exercise}_hidden")]
    assert cells, exercise
    return all(s == m for s, m in cells)


def test_a_mistake_costs_only_its_own_exercise(tmp_path):
    """A wrong merge (which train_bpe, encode and decode call) and a wrong split_heads (which
    CausalSelfAttention calls): the exercises built on them keep their points."""
    path = filled_notebook("01_tokens_and_data.ipynb",
                           {"merge": "def merge(ids, pair, new_id):\n    return list(ids)\n"},
                           tmp_path / "01" / "01_tokens_and_data.ipynb")
    scores = exercise_scores(grade_in_process(path))
    assert not _passed(scores, "merge")
    for kept in ("get_pair_counts", "train_bpe", "encode", "decode", "get_batch"):
        assert _passed(scores, kept), (kept, scores)

    path = filled_notebook("04_multi_head_attention.ipynb",
                           {"split_heads": "def split_heads(x, n_head):\n    B, T, C = x.shape\n"
                                           "    return x.reshape(B, n_head, T, C // n_head)\n"},
                           tmp_path / "04" / "04_multi_head_attention.ipynb")
    scores = exercise_scores(grade_in_process(path))
    assert not _passed(scores, "split_heads")
    assert _passed(scores, "merge_heads") and _passed(scores, "CausalSelfAttention"), scores


def test_imports_of_earlier_answer_cells_come_along(tmp_path):
    """merge uses a module imported (under another name) in the get_pair_counts cell, as it
    may in the learner's own kernel; one of those imports fails, which changes nothing."""
    solved = _solved("01_tokens_and_data.ipynb")
    answers = {
        "get_pair_counts": "import collections as _cl\ntry:\n    import no_such_module_here\nexcept ImportError:\n"
                           "    pass\nimport no_such_module_either\n" + solved["get_pair_counts"],
        "merge": solved["merge"].replace("    out = []", "    _cl.Counter()\n    out = []", 1),
    }
    assert answers["merge"] != solved["merge"]
    path = filled_notebook("01_tokens_and_data.ipynb", answers, tmp_path / "01_tokens_and_data.ipynb")
    scores = exercise_scores(grade_in_process(path))
    assert _passed(scores, "merge"), scores
    assert not _passed(scores, "get_pair_counts")  # its own cell stops at the missing module


def test_a_helper_from_another_answer_cell_is_named(tmp_path):
    solved = _solved("01_tokens_and_data.ipynb")
    answers = {
        "get_pair_counts": "def _pairs(ids):\n    return list(zip(ids, ids[1:]))\n\n" + solved["get_pair_counts"],
        "train_bpe": solved["train_bpe"].replace('    """', "    _pairs([])\n    \"\"\"", 1),
    }
    assert answers["train_bpe"] != solved["train_bpe"]
    path = filled_notebook("01_tokens_and_data.ipynb", answers, tmp_path / "01_tokens_and_data.ipynb")
    result = grade_in_process(path)
    cell = next(c for c in result["cells"] if c["grade_id"] == "test_train_bpe")
    assert not cell["passed"]
    assert "_pairs is defined in your get_pair_counts cell" in cell["message"], cell["message"]
    assert _passed(exercise_scores(result), "get_pair_counts")
