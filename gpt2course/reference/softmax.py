"""Notebook 00: a numerically stable softmax."""

import torch


# ---- generated from solutions/00_welcome.ipynb by `python -m grader build` ----
# cells: softmax
# Edit those answer cells in the notebook, not the code below.


def softmax(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Softmax of ``x`` along ``dim``; safe for large inputs and for -inf entries."""
    ### BEGIN SOLUTION
    # exp(x - m) / sum(exp(x - m)) equals exp(x) / sum(exp(x)) for any m; with m = max the
    # largest exponent is 0, so nothing overflows.
    shifted = x - x.amax(dim=dim, keepdim=True)
    exps = shifted.exp()
    return exps / exps.sum(dim=dim, keepdim=True)
    ### END SOLUTION
