"""Checks for notebook 02's ``Embeddings(vocab_size, block_size, n_embd)``."""

from __future__ import annotations

import numpy as np

from .core import CheckFailed, register, to_numpy, worst_difference
from .layers import edge_ids, matches, meta_case, module_case, oracle_run, require_output, tensor


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


def _positions_used(got, state, idx):
    """What the output's position part (the output minus wte(idx)) is, when it is one vector per
    position t, the same in every sequence: the message for it, or None."""
    wte, wpe = state["wte.weight"].double().numpy(), state["wpe.weight"].double().numpy()
    part = got - wte[idx.numpy()]
    T = part.shape[1]
    if not matches(part, np.broadcast_to(part[:1], part.shape)):
        return None
    def rows_of(table):
        rows = [next((r for r in range(len(table)) if matches(part[0, t], table[r])), None) for t in range(T)]
        return None if None in rows else rows

    rows = rows_of(wpe)
    if rows is not None:
        return (f"the rows of wpe added at positions 0 .. {T - 1} are {rows}; they should be "
                f"{list(range(T))}: positions are 0, 1, ..., T - 1.")
    if rows_of(wte) is not None:
        return ("the vectors added for the positions are rows of wte, the token table: look the "
                "positions up in the position table, self.wpe(positions).")
    return ("the vectors added for the positions are the same in every sequence but are not rows of "
            "wpe: GPT-2 learns its positions, add self.wpe(positions) (no fixed sinusoidal or "
            "hand-made vectors).")


def _tables(vocab, block, n_embd):
    return {"wte.weight": (vocab, n_embd), "wpe.weight": (block, n_embd)}


def _expect_tables(report, vocab, block, n_embd):
    """The module's parameters are GPT-2's two tables, by name and shape, and neither starts with
    a row of zeros that nn.Embedding's padding_idx would keep from learning."""
    expected = _tables(vocab, block, n_embd)
    got = {n: tuple(s) for n, s in report["parameters"].items()}
    missing = [n for n in expected if n not in got]
    extra = [n for n in got if n not in expected]
    if missing or extra:
        bare = [n for n in missing if n.rsplit(".", 1)[0] in extra]
        if bare:
            name = bare[0].rsplit(".", 1)[0]
            raise CheckFailed(f"`{name}` is a bare nn.Parameter, so its name is `{name}`, not `{name}.weight`: "
                              f"make it an nn.Embedding (self.{name} = nn.Embedding(...)), whose table "
                              f"is `{name}.weight`, the name GPT-2's weights load by.")
        parts = ([f"it has no {', '.join(f'`{n}`' for n in missing)}"] if missing else []) + \
                ([f"it has {', '.join(f'`{n}`' for n in extra)} besides"] if extra else [])
        raise CheckFailed("its parameters should be exactly `wte.weight` and `wpe.weight`, GPT-2's names "
                          "(self.wte = nn.Embedding(vocab_size, n_embd), self.wpe = nn.Embedding(block_size, "
                          "n_embd)): " + "; ".join(parts) + ".")
    sizes = {vocab: "vocab_size", block: "block_size", n_embd: "n_embd"}
    for name, shape in expected.items():
        if got[name] == shape:
            continue
        want = "(vocab_size, n_embd)" if name == "wte.weight" else "(block_size, n_embd)"
        text = f"`{name}` is {got[name]}, expected {want} = {shape}"
        if got[name] == shape[::-1]:
            raise CheckFailed(f"{text}: rows and columns are swapped. nn.Embedding(num_embeddings, "
                              "embedding_dim) takes the number of rows first (an nn.Linear(vocab_size, "
                              "n_embd) would store its weight as (n_embd, vocab_size)).")
        if len(got[name]) == 2 and got[name][1] == n_embd and got[name][0] in sizes:
            rows = sizes[got[name][0]]
            whose = "token id (vocab_size)" if name == "wte.weight" else "position (block_size)"
            raise CheckFailed(f"{text}: it has {rows} rows; the table needs one row per {whose}.")
        raise CheckFailed(text + ".")
    for name in expected:
        initial = to_numpy(report["initial"][name])
        zero = ~initial.any(axis=1)
        if zero[0] and not zero.all():
            raise CheckFailed(f"row 0 of `{name}` starts as zeros: nn.Embedding(..., padding_idx=0) "
                              "does that, and also keeps that row from ever getting a gradient. GPT-2 "
                              "has no padding: token id 0 and position 0 are used like any other, so "
                              "leave padding_idx out.")


def _expect_grads(grads, expected):
    """The gradients of both tables against the oracle's; a row of zeros where the oracle has a
    gradient is named (padding_idx)."""
    for name, want in expected.items():
        got = grads["parameters"].get(name)
        if got is None:
            raise CheckFailed(f"no gradient reached `{name}`: is it used in forward without .data, "
                              ".detach() or torch.no_grad() on the way?")
        got = to_numpy(got)
        if matches(got, want, rtol=1e-3, atol=1e-4):
            continue
        dead = [r for r in range(len(want)) if want[r].any() and not got[r].any()]
        rest = [r for r in range(len(want)) if r not in dead]
        if dead and matches(got[rest], want[rest], rtol=1e-3, atol=1e-4):
            what = "token id" if name == "wte.weight" else "position"
            rows = f"row {dead[0]}" if len(dead) == 1 else f"rows {dead}"
            raise CheckFailed(f"{rows} of `{name}` got no gradient although {what} {dead[0]} is used: "
                              + ("nn.Embedding(..., padding_idx=0) keeps row 0 from learning; GPT-2 has no "
                                 "padding, so leave padding_idx out." if dead == [0] else
                                 "is part of the table cut off from autograd?"))
        raise CheckFailed(f"the gradient of `{name}` is wrong ({worst_difference(got, want)}): forward "
                          "computes the right values in a way autograd cannot follow (.data, .detach(), "
                          "or values copied out of the table?)")


def _errors(T, block):
    return {"IndexError": f"an index is out of range: the positions should run from 0 to T - 1 = {T - 1} "
                          "(T = idx.size(1); not from 1 to T, and not the token ids), and token ids run "
                          "from 0 to vocab_size - 1",
            "RuntimeError": "if it is about the indices' type: an embedding looks rows up by integer ids, "
                            "so make the positions integers (torch.arange(T) gives int64). If it is about "
                            "sizes: wte(idx) is (B, T, n_embd) and wpe(positions) should be (T, n_embd), for "
                            "positions 0 .. T - 1, where T = idx.size(1) is idx's second dimension (not its "
                            f"first, B) and may be less than block_size = {block}"}


def _parameters_case(label, vocab, block, n_embd):
    """The module as the learner builds it, before any forward: GPT-2's two tables."""
    return module_case(label, (vocab, block, n_embd), None, [],
                       lambda report: _expect_tables(report, vocab, block, n_embd))


def _case(rng, label, vocab, block, n_embd, batch, T, *, grad_seed=None):
    """The module loaded with random tables, on ids with 0 and vocab_size - 1 planted: its output
    (and with ``grad_seed`` its gradients) against the float64 oracle."""
    state = {"wte.weight": tensor(rng, vocab, n_embd), "wpe.weight": tensor(rng, block, n_embd)}
    idx = edge_ids(rng, vocab, batch, T)
    expected, grads = oracle_run(_oracle, state, [(idx,)], grad_seed)

    def verify(report):
        out = report["outputs"][0]
        shape = tuple(getattr(out, "shape", ()))
        if shape == (batch, T, 2 * n_embd):
            raise CheckFailed(f"the output has shape {shape}, twice n_embd wide: the token and position "
                              f"embeddings should be added, not concatenated, giving (B, T, n_embd) = "
                              f"{(batch, T, n_embd)}.")
        got = require_output(out, (batch, T, n_embd))
        if not matches(got, expected[0]):
            for hint, alternative in _mistakes(state, idx):
                with np.errstate(all="ignore"):
                    if matches(got, np.asarray(alternative(), dtype=np.float64)):
                        raise CheckFailed(f"the output is wrong: {hint}")
            hint = _positions_used(got, state, idx)
            if hint:
                raise CheckFailed(f"the output is wrong: {hint}")
            raise CheckFailed(f"the output differs from wte(idx) + wpe(positions) "
                              f"({worst_difference(got, expected[0])}).")
        if grad_seed is not None:
            if not report.get("grads"):
                raise CheckFailed("no gradients were reported")
            _expect_grads(report["grads"][0], grads[0][1])

    return module_case(label, (vocab, block, n_embd), state, [(idx,)], verify, grad_seed=grad_seed,
                       errors=_errors(T, block))


@register("Embeddings", "parameter names and shapes, token + position sums, short sequences, gradients", rules={
    "GPT-2's names": ["vocab_size=11, block_size=8, n_embd=6: parameters",
                      "vocab_size=50, block_size=9, n_embd=10: parameters"],
    "token plus position": ["3 tokens with block_size=8", "a batch of 2 full blocks of 8 tokens",
                            "a batch of 4, T=5 with block_size=9", "T = block_size = 16, odd n_embd=7"],
    "positions 0 .. T - 1": ["3 tokens with block_size=8", "a batch of 2 full blocks of 8 tokens", "one token",
                             "a batch of 4, T=5 with block_size=9", "T = block_size = 16, odd n_embd=7",
                             "one sequence of one token"],
    "positions on idx's device": ["the positions on the input's device", "the positions on the input's device, T = 1"],
    "every row learns": ["vocab_size=11, block_size=8, n_embd=6: parameters", "gradients reach wte and wpe",
                         "vocab_size=50, block_size=9, n_embd=10: parameters", "gradients, repeated tokens"],
})
def embeddings_cases(rng: np.random.Generator, hidden: bool):
    seed = int(rng.integers(0, 2**31))
    if not hidden:
        return [
            _parameters_case("vocab_size=11, block_size=8, n_embd=6: parameters", 11, 8, 6),
            # vocab_size < block_size: positions looked up by token id or starting at 1 give
            # values (named), not an IndexError.
            _case(rng, "3 tokens with block_size=8", 7, 8, 5, 2, 3),
            _case(rng, "a batch of 2 full blocks of 8 tokens", 11, 8, 6, 2, 8),
            _case(rng, "one token", 7, 4, 3, 3, 1),
            _case(rng, "gradients reach wte and wpe", 13, 6, 4, 2, 5, grad_seed=seed),
            meta_case("the positions on the input's device", (11, 8, 6), [(edge_ids(rng, 11, 2, 5),)], [(2, 5, 6)]),
        ]
    return [
        _parameters_case("vocab_size=50, block_size=9, n_embd=10: parameters", 50, 9, 10),
        _case(rng, "a batch of 4, T=5 with block_size=9", 50, 9, 10, 4, 5),
        _case(rng, "T = block_size = 16, odd n_embd=7", 33, 16, 7, 2, 16),
        _case(rng, "one sequence of one token", 5, 3, 8, 1, 1),
        _case(rng, "gradients, repeated tokens", 3, 12, 6, 3, 11, grad_seed=seed + 1),
        meta_case("the positions on the input's device, T = 1", (9, 4, 3), [(edge_ids(rng, 9, 3, 1),)], [(3, 1, 3)]),
    ]
