"""Checks for notebook 02's ``Embeddings(vocab_size, block_size, n_embd)``."""

from __future__ import annotations

import numpy as np

from .core import register
from .layers import construction_case, ids, meta_case, oracle_case, tensor


def _oracle(p, idx):
    import torch
    import torch.nn.functional as F
    positions = torch.arange(idx.shape[1])
    return F.embedding(idx, p["wte.weight"]) + F.embedding(positions, p["wpe.weight"])[None]


def _mistakes(state, idx):
    wte, wpe = state["wte.weight"].double().numpy(), state["wpe.weight"].double().numpy()
    idx = idx.numpy()
    T = idx.shape[1]
    return [
        ("it equals the token embeddings alone: add the position embeddings, "
         "self.wpe(torch.arange(T)), to them.", lambda: wte[idx]),
        ("the position table was indexed with the token ids; positions are 0, 1, ..., T - 1: "
         "self.wpe(torch.arange(T, device=idx.device)).", lambda: wte[idx] + wpe[np.minimum(idx, len(wpe) - 1)]),
        ("positions should start at 0, not 1.", lambda: wte[idx] + wpe[1:T + 1][None]),
        ("the token and position embeddings should be added, not multiplied.", lambda: wte[idx] * wpe[:T][None]),
        ("positions should count 0 .. T - 1 from the start of the sequence, not end at block_size.",
         lambda: wte[idx] + wpe[len(wpe) - T:][None]),
        ("nothing should scale the sum: GPT-2 adds wte(idx) and wpe(positions) as they are.",
         lambda: (wte[idx] + wpe[:T][None]) * np.sqrt(wte.shape[1])),
        ("nothing should scale the sum: GPT-2 adds wte(idx) and wpe(positions) as they are.",
         lambda: wte[idx] * np.sqrt(wte.shape[1]) + wpe[:T][None]),
    ]


def _case(rng, label, vocab, block, n_embd, batch, T, *, grad_seed=None, loaded=True):
    state = {"wte.weight": tensor(rng, vocab, n_embd), "wpe.weight": tensor(rng, block, n_embd)}
    idx = ids(rng, vocab, batch, T)
    if not loaded:  # the module's own initial values: parameter shapes and the output's shape
        parameters = {"wte.weight": (vocab, n_embd), "wpe.weight": (block, n_embd)}
        return construction_case(label, (vocab, block, n_embd), parameters, idx, (batch, T, n_embd),
                                 errors=_ERRORS)
    return oracle_case(label, (vocab, block, n_embd), state, idx, _oracle, lambda: _mistakes(state, idx),
                       (batch, T, n_embd), grad_seed=grad_seed, errors=_ERRORS)


_ERRORS = {"IndexError": "an index is out of range: positions run from 0 to T - 1 (T = "
                         "idx.size(1)) and token ids from 0 to vocab_size - 1",
           "RuntimeError": "shapes do not fit: the token embeddings are (B, T, n_embd) and the "
                           "position embeddings should be (T, n_embd), for positions 0 .. T - 1 "
                           "(T = idx.size(1), which may be less than block_size)"}


@register("Embeddings", "parameter names and shapes, token + position sums, short sequences, gradients")
def embeddings_cases(rng: np.random.Generator, hidden: bool):
    seed = int(rng.integers(0, 2**31))
    if not hidden:
        return [
            _case(rng, "vocab_size=11, block_size=8, n_embd=6: parameters", 11, 8, 6, 2, 8, loaded=False),
            _case(rng, "a batch of 2 full blocks of 8 tokens", 11, 8, 6, 2, 8),
            _case(rng, "3 tokens with block_size=8", 20, 8, 5, 2, 3),
            _case(rng, "one token", 7, 4, 3, 3, 1),
            _case(rng, "gradients reach wte and wpe", 13, 6, 4, 2, 5, grad_seed=seed),
            meta_case("the positions on the input's device", (11, 8, 6), [(ids(rng, 11, 2, 5),)], [(2, 5, 6)]),
        ]
    return [
        _case(rng, "vocab_size=50, block_size=9, n_embd=10: parameters", 50, 9, 10, 1, 4, loaded=False),
        _case(rng, "a batch of 4, T=5 with block_size=9", 50, 9, 10, 4, 5),
        _case(rng, "T = block_size = 16, odd n_embd=7", 33, 16, 7, 2, 16),
        _case(rng, "one sequence of one token", 5, 3, 8, 1, 1),
        _case(rng, "gradients, repeated tokens", 3, 12, 6, 3, 11, grad_seed=seed + 1),
        meta_case("the positions on the input's device, T = 1", (9, 4, 3), [(ids(rng, 9, 3, 1),)], [(3, 1, 3)]),
    ]
