"""Notebook 02: token and learned positional embeddings."""

import torch
from torch import nn


# ---- generated from solutions/02_embeddings.ipynb by `python -m grader build` ----
# cells: Embeddings
# Edit those answer cells in the notebook, not the code below.


class Embeddings(nn.Module):
    """Token embedding plus learned position embedding, as in GPT-2 (``wte`` and ``wpe``)."""

    def __init__(self, vocab_size: int, block_size: int, n_embd: int):
        super().__init__()
        ### BEGIN SOLUTION
        self.wte = nn.Embedding(vocab_size, n_embd)   # one row per token id
        self.wpe = nn.Embedding(block_size, n_embd)   # one row per position 0 .. block_size - 1
        ### END SOLUTION

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """(B, T) token ids -> (B, T, n_embd) vectors."""
        ### BEGIN SOLUTION
        T = idx.size(1)
        if T > self.wpe.num_embeddings:
            raise ValueError(f"sequence of {T} tokens is longer than block_size "
                             f"{self.wpe.num_embeddings}")
        positions = torch.arange(T, device=idx.device)  # (T,)
        return self.wte(idx) + self.wpe(positions)      # (B, T, C) + (T, C) broadcasts over B
        ### END SOLUTION
