"""Notebook 05: layer normalisation, GELU (tanh form) and the MLP."""

import math

import torch
from torch import nn


# ---- generated from solutions/05_layernorm_and_mlp.ipynb by `python -m grader build` ----
# cells: LayerNorm, gelu, MLP
# Edit those answer cells in the notebook, not the code below.


class LayerNorm(nn.Module):
    """Normalise each vector over its last dimension, then scale and shift (``weight``, ``bias``)."""

    def __init__(self, n_embd: int, eps: float = 1e-5):
        super().__init__()
        ### BEGIN SOLUTION
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(n_embd))
        self.bias = nn.Parameter(torch.zeros(n_embd))
        ### END SOLUTION

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ### BEGIN SOLUTION
        mean = x.mean(dim=-1, keepdim=True)
        var = x.var(dim=-1, keepdim=True, unbiased=False)  # population variance, as GPT-2
        return (x - mean) / torch.sqrt(var + self.eps) * self.weight + self.bias
        ### END SOLUTION


def gelu(x: torch.Tensor) -> torch.Tensor:
    """GELU in the tanh approximation GPT-2 uses."""
    ### BEGIN SOLUTION
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))
    ### END SOLUTION


class MLP(nn.Module):
    """Expand to 4 * n_embd, GELU, project back (``c_fc`` and ``c_proj``, named as in GPT-2)."""

    def __init__(self, n_embd: int, dropout: float = 0.0):
        super().__init__()
        ### BEGIN SOLUTION
        self.c_fc = nn.Linear(n_embd, 4 * n_embd)
        self.c_proj = nn.Linear(4 * n_embd, n_embd)
        self.dropout = nn.Dropout(dropout)  # on the output, before the residual stream
        ### END SOLUTION

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ### BEGIN SOLUTION
        return self.dropout(self.c_proj(gelu(self.c_fc(x))))
        ### END SOLUTION
