"""Notebook 06: the pre-LN transformer block."""

import torch
from torch import nn

from .layernorm_mlp import MLP, LayerNorm
from .multi_head import CausalSelfAttention


# ---- generated from solutions/06_residual_block.ipynb by `python -m grader build` ----
# cells: Block
# Edit those answer cells in the notebook, not the code below.


class Block(nn.Module):
    """GPT-2's block: x + attn(ln_1(x)), then + mlp(ln_2(x)) (layer norm before each part)."""

    def __init__(self, n_embd: int, n_head: int, dropout: float = 0.0):
        super().__init__()
        ### BEGIN SOLUTION
        self.ln_1 = LayerNorm(n_embd)
        self.attn = CausalSelfAttention(n_embd, n_head, dropout)
        self.ln_2 = LayerNorm(n_embd)
        self.mlp = MLP(n_embd, dropout)
        ### END SOLUTION

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ### BEGIN SOLUTION
        x = x + self.attn(self.ln_1(x))  # the residual stream carries x through unchanged
        x = x + self.mlp(self.ln_2(x))
        return x
        ### END SOLUTION
