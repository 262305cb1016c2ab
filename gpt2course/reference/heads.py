"""Notebook 10: scoring attention heads on a repeated random sequence.

``previous_token_scores(weights)`` and ``induction_scores(weights, period)`` turn attention
weights of shape (n_layer, n_head, T, T) into one score per (layer, head): the mean weight on the
previous position, and the mean weight on the token after the previous occurrence of the current
token (queries of the repeated part only). Notebook 07 uses them on a trained model
(``gpt2course.heads`` reads its weights); notebook 10 has the learner write them. (The grader's
checks of them: gpt2course/checks/heads.py.)
"""

import torch


# ---- generated from solutions/10_full_training_run.ipynb by `python -m grader build` ----
# cells: previous_token_scores, induction_scores
# Edit those answer cells in the notebook, not the code below.


def previous_token_scores(weights: torch.Tensor) -> torch.Tensor:
    """(n_layer, n_head, T, T) attention weights -> (n_layer, n_head): each head's mean weight
    on the previous position, weights[l, h, i, i - 1], over the queries i = 1 .. T-1."""
    ### BEGIN SOLUTION
    return torch.diagonal(weights, offset=-1, dim1=-2, dim2=-1).mean(dim=-1)
    ### END SOLUTION


def induction_scores(weights: torch.Tensor, period: int) -> torch.Tensor:
    """(n_layer, n_head, T, T) attention weights on a sequence that repeats with period
    ``period`` -> (n_layer, n_head): each head's mean weight on key i - period + 1 (the token
    after the previous occurrence of token i) over the queries of the repeated part,
    i = period .. T-1."""
    ### BEGIN SOLUTION
    diagonal = torch.diagonal(weights, offset=-(period - 1), dim1=-2, dim2=-1)  # queries period-1 .. T-1
    return diagonal[..., 1:].mean(dim=-1)
    ### END SOLUTION
