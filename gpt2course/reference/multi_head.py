"""Notebook 04: multi-head causal self-attention."""

import torch
from torch import nn

from .attention import attention, causal_mask


# ---- generated from solutions/04_multi_head_attention.ipynb by `python -m grader build` ----
# cells: split_heads, merge_heads, CausalSelfAttention
# Edit those answer cells in the notebook, not the code below.


def split_heads(x: torch.Tensor, n_head: int) -> torch.Tensor:
    """(B, T, C) -> (B, n_head, T, C // n_head): each head gets its own slice of the channels."""
    ### BEGIN SOLUTION
    B, T, C = x.shape
    return x.view(B, T, n_head, C // n_head).transpose(1, 2)
    ### END SOLUTION


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(B, n_head, T, head_size) -> (B, T, n_head * head_size): the inverse of split_heads."""
    ### BEGIN SOLUTION
    B, n_head, T, head_size = x.shape
    return x.transpose(1, 2).reshape(B, T, n_head * head_size)
    ### END SOLUTION


class CausalSelfAttention(nn.Module):
    """GPT-2's attention: one fused projection to q, k, v, ``n_head`` causal heads, an output
    projection (``c_attn`` and ``c_proj``, named as in GPT-2's weights)."""

    def __init__(self, n_embd: int, n_head: int, dropout: float = 0.0):
        super().__init__()
        ### BEGIN SOLUTION
        if n_embd % n_head != 0:
            raise ValueError(f"n_embd ({n_embd}) must be divisible by n_head ({n_head})")
        self.n_head = n_head
        self.c_attn = nn.Linear(n_embd, 3 * n_embd)  # q, k and v in one matrix multiply
        self.c_proj = nn.Linear(n_embd, n_embd)
        self.attn_dropout = nn.Dropout(dropout)   # on the attention weights
        self.resid_dropout = nn.Dropout(dropout)  # on the output, before the residual stream
        ### END SOLUTION

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, n_embd) -> (B, T, n_embd); position t sees positions 0..t only."""
        ### BEGIN SOLUTION
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=-1)
        q, k, v = (split_heads(t, self.n_head) for t in (q, k, v))  # (B, nh, T, hs) each
        _, att = attention(q, k, v, causal_mask(T).to(x.device))  # weights (B, nh, T, T)
        y = self.attn_dropout(att) @ v  # in eval mode nn.Dropout passes att through
        return self.resid_dropout(self.c_proj(merge_heads(y)))
        ### END SOLUTION
