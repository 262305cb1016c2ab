"""Attention heads built by hand for the attention explorer of notebook 04: four heads with one
clear job each (``HEAD_JOBS``), without training (a demo, not an exercise)."""

from __future__ import annotations

HEAD_JOBS = ("same token", "previous token", "first token", "uniform")


def hand_made_heads(ids: list[int], *, head_size: int = 16, sharp: float = 12.0, seed: int = 0):
    """Weights for a 4-head ``CausalSelfAttention(n_embd=4 * head_size, n_head=4)`` whose heads
    do the jobs in ``HEAD_JOBS``, and an input ``x`` (1, T, n_embd) for the token ids ``ids``.

    ``x[t]`` is a token code (first half of the channels: one random unit vector per token id)
    next to a position code (second half: orthonormal, so a linear map can shift it one step).
    Returns ``(x, state)`` where ``state`` holds ``c_attn.weight``, ``c_attn.bias``,
    ``c_proj.weight`` and ``c_proj.bias`` in nn.Linear layout.
    """
    import torch

    n_head, C = len(HEAD_JOBS), len(HEAD_JOBS) * head_size
    half, T = C // 2, len(ids)
    if T > half:
        raise ValueError(f"at most {half} tokens for head_size={head_size}")
    g = torch.Generator().manual_seed(seed)
    codes = {i: torch.nn.functional.normalize(torch.randn(half, generator=g), dim=0) for i in sorted(set(ids))}
    tok = torch.stack([codes[i] for i in ids])                      # (T, half)
    basis, _ = torch.linalg.qr(torch.randn(half, half, generator=g))  # orthonormal columns
    pos = basis[:, :T].T                                            # (T, half): pos[t] = code of t
    x = torch.cat([tok, pos], dim=-1)[None]                         # (1, T, C)

    proj = torch.linalg.qr(torch.randn(half, half, generator=g))[0][:head_size]  # (hs, half)
    shift = basis[:, [max(t - 1, 0) for t in range(half)]] @ basis.T  # maps pos[t] to pos[t-1]
    Wq, Wk = torch.zeros(C, C), torch.zeros(C, C)
    bq = torch.zeros(C)
    rows = [slice(h * head_size, (h + 1) * head_size) for h in range(n_head)]
    Wq[rows[0], :half] = sharp * proj                  # same token: q = k = token code
    Wk[rows[0], :half] = sharp * proj
    Wq[rows[1], half:] = sharp * proj @ shift          # previous token: q = code of t - 1
    Wk[rows[1], half:] = sharp * proj
    bq[rows[2]] = sharp * proj @ pos[0]                # first token: one fixed query
    Wk[rows[2], half:] = sharp * proj
    # head 3: zero queries, so every allowed key scores the same (an average)
    Wv = torch.eye(C)
    state = {"c_attn.weight": torch.cat([Wq, Wk, Wv]), "c_attn.bias": torch.cat([bq, torch.zeros(2 * C)]),
             "c_proj.weight": torch.eye(C), "c_proj.bias": torch.zeros(C)}
    return x, state
