"""Notebook 01: random training batches from a long 1-D tensor of token ids."""

import torch


# ---- generated from solutions/01_tokens_and_data.ipynb by `python -m grader build` ----
# cells: get_batch
# Edit those answer cells in the notebook, not the code below.


def get_batch(data: torch.Tensor, block_size: int, batch_size: int,
              generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch_size`` random windows of ``block_size`` tokens (x) and the same windows shifted
    one token to the right (y, the next-token targets); both (batch_size, block_size).

    Every window start from 0 to ``len(data) - block_size - 1`` is possible; random numbers
    come from ``generator`` when one is given.
    """
    ### BEGIN SOLUTION
    starts = torch.randint(len(data) - block_size, (batch_size,), generator=generator)
    offsets = torch.arange(block_size)
    x = data[starts[:, None] + offsets]          # (batch_size, block_size)
    y = data[starts[:, None] + offsets + 1]
    return x, y
    ### END SOLUTION
