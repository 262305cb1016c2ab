"""Notebook 03: the causal mask and scaled dot-product attention."""

import math

import torch


# ---- generated from solutions/03_attention.ipynb by `python -m grader build` ----
# cells: causal_mask, attention
# Edit those answer cells in the notebook, not the code below.


def causal_mask(T: int) -> torch.Tensor:
    """(T, T) bool mask: entry [i, j] is True when position i may attend to position j (j <= i)."""
    ### BEGIN SOLUTION
    return torch.tril(torch.ones(T, T, dtype=torch.bool))
    ### END SOLUTION


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
              mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Scaled dot-product attention.

    q: (..., T, d), k: (..., S, d), v: (..., S, d_v); mask: bool, broadcastable to (..., T, S),
    True where a query may attend to a key. Returns (out, weights): out (..., T, d_v) and the
    attention weights (..., T, S), each row summing to 1.
    """
    ### BEGIN SOLUTION
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))   # (..., T, S)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))      # hidden keys get weight 0
    weights = torch.softmax(scores, dim=-1)
    return weights @ v, weights
    ### END SOLUTION
