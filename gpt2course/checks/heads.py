"""Checks for notebook 10's ``previous_token_scores(weights)`` and ``induction_scores(weights, period)``.

Both read attention weights of shape (n_layer, n_head, T, T) (row i: how much query i attends to
each key j <= i; rows sum to 1) and return one score per (layer, head):

- previous-token score: the mean of ``weights[l, h, i, i - 1]`` over i = 1 .. T-1;
- induction score, for a sequence that repeats with period P (token i == token i - P): the mean of
  ``weights[l, h, i, i - P + 1]`` (the key right after the previous occurrence of token i) over
  the repeated part, i = P .. T-1.

The inputs are random causal attention patterns (a softmax of random scores under the causal
mask), some with planted heads (one that looks exactly one back, one that does induction), in
several shapes: T = 2, T an odd number, the sequence repeated once, twice, or cut short, P = 1.
A wrong answer is named when it matches a known mistake: the diagonal itself or two back, the
transposed matrix (keys as rows), position 0 counted, a sum instead of a mean, i - P instead of
i - P + 1, the first copy counted, T // 2 taken for the period, the two scores swapped.
"""

from __future__ import annotations

import numpy as np

from .core import Case, CheckFailed, close, register, to_numpy, worst_difference

RTOL, ATOL = 1e-4, 1e-6


# ---- oracles (float64, from the exact float32 values the learner sees) ----------------------

def diagonal_mean(w: np.ndarray, offset: int, first: int, count: int | None = None):
    """Mean over queries i = first .. T-1 of w[..., i, i - offset] (divided by ``count`` if given);
    None when there is no such query."""
    t = w.shape[-1]
    rows = np.arange(max(first, 0), t)
    if len(rows) == 0:
        return None
    cols = rows - offset
    ok = (cols >= 0) & (cols < t)
    values = w[..., rows[ok], cols[ok]]
    n = count if count is not None else len(rows)
    return values.sum(axis=-1) / n


def previous_token_oracle(w: np.ndarray) -> np.ndarray:
    return diagonal_mean(w, 1, 1)


def induction_oracle(w: np.ndarray, period: int) -> np.ndarray:
    return diagonal_mean(w, period - 1, period)


# ---- inputs ----------------------------------------------------------------------------------

def causal_weights(rng: np.random.Generator, n_layer: int, n_head: int, t: int,
                   sharpness: float = 2.0) -> np.ndarray:
    """Random causal attention: softmax of random scores, keys after the query at exactly 0."""
    scores = rng.normal(size=(n_layer, n_head, t, t)) * sharpness
    scores[..., np.triu_indices(t, k=1)[0], np.triu_indices(t, k=1)[1]] = -np.inf
    e = np.exp(scores - scores.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def plant(w: np.ndarray, layer: int, head: int, offset: int, first: int, strength: float) -> None:
    """Make head (layer, head) put ``strength`` on key i - offset for queries i >= first (the rest
    of each row keeps its pattern, scaled to 1 - strength)."""
    t = w.shape[-1]
    for i in range(first, t):
        j = i - offset
        row = w[layer, head, i] * (1 - strength)
        row[j] += strength
        w[layer, head, i] = row


# ---- verdicts --------------------------------------------------------------------------------

_SHAPE_HINT = ("one score per (layer, head): average over the query positions only, keeping the "
               "layer and head dimensions (a (n_layer, n_head) tensor for weights of shape "
               "(n_layer, n_head, T, T))")


def _result(output, shape, name):
    import torch
    if isinstance(output, np.ndarray):
        raise CheckFailed(f"{name} returned a NumPy array: return a torch.Tensor (stay in torch: "
                          "torch.diagonal, indexing and .mean all work on tensors)")
    if not isinstance(output, torch.Tensor):
        raise CheckFailed(f"{name} should return a torch.Tensor of shape {shape}, got "
                          f"{type(output).__name__}")
    if tuple(output.shape) != tuple(shape):
        if tuple(output.shape) == tuple(shape[::-1]) and shape[0] != shape[1]:
            raise CheckFailed(f"the result has shape {tuple(output.shape)}, expected {shape} "
                              "(n_layer, n_head): layers first, as in the weights")
        raise CheckFailed(f"the result has shape {tuple(output.shape)}, expected {shape}: {_SHAPE_HINT}")
    if not output.dtype.is_floating_point:
        raise CheckFailed(f"the result has dtype {output.dtype}: scores are means of weights, "
                          "floating-point numbers")
    return to_numpy(output)


def _matches(got, expected) -> bool:
    return close(got, expected, rtol=RTOL, atol=ATOL)


def _verify_previous(w: np.ndarray):
    t = w.shape[-1]
    shape = w.shape[:2]

    def verify(output):
        got = _result(output, shape, "previous_token_scores")
        expected = previous_token_oracle(w)
        if _matches(got, expected):
            return
        wrong = [
            (diagonal_mean(w, 0, 0), "these are the weights of each position on itself (the main "
             "diagonal): the previous position is one to the left, weights[..., i, i - 1], the "
             "diagonal at offset -1"),
            (diagonal_mean(w, 2, 2), "these are the weights two positions back (weights[..., i, i - 2]): "
             "the previous position is i - 1, the diagonal at offset -1"),
            (diagonal_mean(np.swapaxes(w, -1, -2), 1, 1), "you read weights[..., i - 1, i], the "
             "weight of query i - 1 on the later key i, which the causal mask makes 0: rows are "
             "queries, columns keys, so the previous position of query i is weights[..., i, i - 1] "
             "(the diagonal at offset -1, below the main one)"),
            (diagonal_mean(w, 1, 1, count=t), "position 0 has no previous position: average over the "
             "T - 1 queries 1 .. T-1, not over all T (a 0 counted for position 0 pulls every score down)"),
            (diagonal_mean(w, 1, 1, count=1), "this is the sum over positions: the score is the mean, "
             "divide by the number of positions that have a previous one (T - 1)"),
        ]
        for alternative, message in wrong:
            if alternative is not None and _matches(got, alternative):
                raise CheckFailed(message)
        for axis, label in ((0, "layers"), (1, "heads")):
            mean = np.broadcast_to(expected.mean(axis=axis, keepdims=True), expected.shape)
            if _matches(got, mean):
                raise CheckFailed(f"every score is the mean over the {label} as well: " + _SHAPE_HINT)
        raise CheckFailed("not the mean weight on the previous position: " + worst_difference(got, expected))
    return verify


def _verify_induction(w: np.ndarray, period: int):
    t = w.shape[-1]
    shape = w.shape[:2]

    def verify(output):
        got = _result(output, shape, "induction_scores")
        expected = induction_oracle(w, period)
        if _matches(got, expected):
            return
        n = t - period
        wrong = [
            (diagonal_mean(w, period, period), f"this is the weight on i - period, the previous "
             f"occurrence of the current token itself; an induction head looks at the token that "
             f"came right after it, i - period + 1 (here i - {period - 1})"),
            (diagonal_mean(w, period - 1, period - 1), f"query {period - 1} is still in the first "
             f"copy (its key 0 is no repetition of anything): average over the repeated part only, "
             f"queries period .. T-1 (here {period} .. {t - 1})"),
            (diagonal_mean(w, period - 1, period, count=t), f"right positions, but divided by T: the "
             f"score is the mean over the T - period = {n} queries of the repeated part"),
            (diagonal_mean(w, period - 1, period, count=1), f"this is the sum over the repeated part: "
             f"the score is the mean, divide by the number of its queries (T - period = {n})"),
            (diagonal_mean(w, period - 2, period), "this is the weight on i - period + 2: the token "
             "after the previous occurrence is at i - period + 1"),
            (previous_token_oracle(w), "this is the previous-token score; the induction score reads "
             "the key right after the previous occurrence of the current token, weights[..., i, "
             "i - period + 1]"),
        ]
        if t // 2 != period and t // 2 >= 1:
            half = t // 2
            wrong.append((diagonal_mean(w, half - 1, half),
                          f"the period is the argument period ({period}), not T // 2 ({half}): the "
                          f"sequence may repeat more than once or stop before its second copy ends"))
            wrong.append((diagonal_mean(w, period - 1, half),
                          f"the repeated part starts at query period ({period}), not at T // 2 "
                          f"({half}): the sequence may repeat more than once or stop early"))
        for alternative, message in wrong:
            if alternative is not None and _matches(got, alternative):
                raise CheckFailed(message)
        for axis, label in ((0, "layers"), (1, "heads")):
            mean = np.broadcast_to(expected.mean(axis=axis, keepdims=True), expected.shape)
            if _matches(got, mean):
                raise CheckFailed(f"every score is the mean over the {label} as well: " + _SHAPE_HINT)
        raise CheckFailed(f"not the mean weight on i - period + 1 over queries period .. T-1 "
                          f"(period {period}, T {t}): " + worst_difference(got, expected))
    return verify


ERRORS = {
    "IndexError": "an index outside the sequence: the previous position exists for queries 1 .. T-1 "
                  "only, and i - period + 1 for queries period .. T-1",
    "RuntimeError": "shapes that do not fit: the weights are (n_layer, n_head, T, T); take T from "
                    "weights.shape[-1] and keep the first two dimensions",
}


def _tensor(w: np.ndarray, transposed_storage: bool = False):
    import torch
    if transposed_storage:  # the same values, stored key-major (a non-contiguous view)
        return torch.tensor(np.swapaxes(w, -1, -2).copy(), dtype=torch.float32).transpose(-1, -2)
    return torch.tensor(w, dtype=torch.float32)


def _prev_case(label, w, transposed_storage=False):
    x = _tensor(w, transposed_storage)
    return Case(label=label, args=(x,), verify=_verify_previous(to_numpy(x).astype(np.float64)),
                errors=ERRORS)


def _ind_case(label, w, period):
    x = _tensor(w)
    return Case(label=label, args=(x, period), verify=_verify_induction(to_numpy(x).astype(np.float64), period),
                errors=ERRORS)


PREVIOUS_RULES = {
    "one score per head": ["2 layers x 3 heads, T = 7", "1 layer x 1 head, T = 5",
                           "3 layers x 4 heads, T = 9", "1 layer x 2 heads, T = 6 (stored transposed)"],
    "the previous position": ["a planted previous-token head (layer 1, head 2)",
                              "2 layers x 3 heads, T = 7", "3 layers x 4 heads, T = 9",
                              "a planted previous-token head (layer 0, head 3), T = 11"],
    "queries 1 .. T-1": ["T = 2: one query has a previous position", "1 layer x 1 head, T = 5",
                         "T = 3, 2 layers x 2 heads"],
    "a mean": ["2 layers x 3 heads, T = 7", "3 layers x 4 heads, T = 9"],
    "a tensor, weights unchanged": ["2 layers x 3 heads, T = 7", "3 layers x 4 heads, T = 9"],
}


@register("previous_token_scores", "the mean weight on position i - 1 over queries 1 .. T-1, per "
                                    "(layer, head)", rules=PREVIOUS_RULES)
def previous_token_cases(rng: np.random.Generator, hidden: bool) -> list[Case]:
    if not hidden:
        planted = causal_weights(rng, 2, 3, 8)
        plant(planted, 1, 2, 1, 1, 0.9)
        return [
            _prev_case("2 layers x 3 heads, T = 7", causal_weights(rng, 2, 3, 7)),
            _prev_case("a planted previous-token head (layer 1, head 2)", planted),
            _prev_case("T = 2: one query has a previous position", causal_weights(rng, 2, 2, 2)),
            _prev_case("1 layer x 1 head, T = 5", causal_weights(rng, 1, 1, 5, sharpness=3.0)),
        ]
    planted = causal_weights(rng, 2, 4, 11)
    plant(planted, 0, 3, 1, 1, 0.8)
    return [
        _prev_case("3 layers x 4 heads, T = 9", causal_weights(rng, 3, 4, 9)),
        _prev_case("a planted previous-token head (layer 0, head 3), T = 11", planted),
        _prev_case("T = 3, 2 layers x 2 heads", causal_weights(rng, 2, 2, 3, sharpness=4.0)),
        _prev_case("1 layer x 2 heads, T = 6 (stored transposed)", causal_weights(rng, 1, 2, 6),
                   transposed_storage=True),
    ]


INDUCTION_RULES = {
    "one score per head": ["period 4, T = 8, 2 layers x 3 heads", "period 5, T = 10, 3 layers x 2 heads"],
    "the token after the previous occurrence": [
        "a planted induction head (layer 1, head 0), period 4, T = 8",
        "period 4, T = 8, 2 layers x 3 heads", "period 5, T = 10, 3 layers x 2 heads",
        "a planted induction head (layer 2, head 1), period 6, T = 12"],
    "the repeated part only": ["period 4, T = 8, 2 layers x 3 heads", "period 5, T = 10, 3 layers x 2 heads",
                               "period 3, repeated three times (T = 9)",
                               "period 4, the second copy cut short (T = 7)"],
    "the period given": ["period 3, repeated three times (T = 9)", "period 4, the second copy cut short (T = 7)",
                         "period 2, repeated three times (T = 6)", "period 5, the second copy cut short (T = 8)",
                         "period 1 (every token repeats the one before), T = 5"],
    "a mean": ["period 4, T = 8, 2 layers x 3 heads", "period 5, T = 10, 3 layers x 2 heads"],
    "a tensor, weights unchanged": ["period 4, T = 8, 2 layers x 3 heads", "period 5, T = 10, 3 layers x 2 heads"],
}


@register("induction_scores", "the mean weight on key i - period + 1 over queries period .. T-1, "
                               "per (layer, head)", rules=INDUCTION_RULES)
def induction_cases(rng: np.random.Generator, hidden: bool) -> list[Case]:
    if not hidden:
        planted = causal_weights(rng, 2, 2, 8)
        plant(planted, 1, 0, 3, 4, 0.85)
        return [
            _ind_case("period 4, T = 8, 2 layers x 3 heads", causal_weights(rng, 2, 3, 8), 4),
            _ind_case("a planted induction head (layer 1, head 0), period 4, T = 8", planted, 4),
            _ind_case("period 3, repeated three times (T = 9)", causal_weights(rng, 1, 2, 9), 3),
            _ind_case("period 4, the second copy cut short (T = 7)", causal_weights(rng, 2, 2, 7), 4),
        ]
    planted = causal_weights(rng, 3, 2, 12)
    plant(planted, 2, 1, 5, 6, 0.7)
    return [
        _ind_case("period 5, T = 10, 3 layers x 2 heads", causal_weights(rng, 3, 2, 10), 5),
        _ind_case("a planted induction head (layer 2, head 1), period 6, T = 12", planted, 6),
        _ind_case("period 2, repeated three times (T = 6)", causal_weights(rng, 2, 3, 6), 2),
        _ind_case("period 5, the second copy cut short (T = 8)", causal_weights(rng, 1, 3, 8), 5),
        _ind_case("period 1 (every token repeats the one before), T = 5", causal_weights(rng, 2, 2, 5), 1),
    ]
