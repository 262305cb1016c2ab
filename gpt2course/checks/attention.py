"""Checks for notebook 03's ``causal_mask(T)`` and ``attention(q, k, v, mask=None)``."""

from __future__ import annotations

import math

import numpy as np

from .core import Case, CheckFailed, close, register, to_numpy
from .layers import ATOL, RTOL, explain, tensor


# ---- causal_mask ---------------------------------------------------------------------------

def _mask_case(T: int) -> Case:
    def verify(output):
        import torch
        if not isinstance(output, torch.Tensor):
            raise CheckFailed(f"should return a torch.Tensor, got {type(output).__name__}")
        if tuple(output.shape) != (T, T):
            raise CheckFailed(f"the mask has shape {tuple(output.shape)}, expected (T, T) = {(T, T)}")
        if output.dtype != torch.bool:
            raise CheckFailed(f"the mask has dtype {output.dtype}; return a bool tensor (True = may "
                              "attend), e.g. build it with dtype=torch.bool or compare with <=")
        got = to_numpy(output)
        lower = np.tril(np.ones((T, T), dtype=bool))
        if np.array_equal(got, lower):
            return
        if np.array_equal(got, lower.T):
            raise CheckFailed("row i should allow columns j <= i (the past); yours allows j >= i, "
                              "so every position sees the future. Use torch.tril, not torch.triu.")
        if np.array_equal(got, ~lower):
            raise CheckFailed("True and False are swapped: True means 'may attend' (j <= i).")
        if np.array_equal(got, np.tril(lower, -1)):
            raise CheckFailed("every position must be allowed to attend to itself: the diagonal "
                              "should be True (torch.tril keeps it; diagonal=-1 drops it).")
        raise CheckFailed(f"entry [i, j] should be True exactly when j <= i; first wrong entry at "
                          f"{tuple(int(n) for n in np.argwhere(got != lower)[0])}")
    return Case(label=f"T={T}", args=(T,), verify=verify)


@register("causal_mask", "shape, dtype bool, lower triangle with the diagonal")
def causal_mask_cases(rng: np.random.Generator, hidden: bool):
    sizes = [1, 2, 5, 8] if not hidden else [3, 7, 16, int(rng.integers(9, 40))]
    return [_mask_case(T) for T in sizes]


# ---- attention -----------------------------------------------------------------------------

def _softmax(x, axis=-1):
    with np.errstate(invalid="ignore"):
        shifted = x - np.max(x, axis=axis, keepdims=True)
        e = np.exp(shifted)
        return e / e.sum(axis=axis, keepdims=True)


def _attend(q, k, v, mask, *, scale=None, softmax_axis=-1, mode="fill"):
    """NumPy float64 attention with knobs for the usual mistakes; returns (out, weights)."""
    d = q.shape[-1]
    scores = q @ np.swapaxes(k, -1, -2) / (math.sqrt(d) if scale is None else scale)
    if mask is not None and mode == "fill":
        scores = np.where(mask, scores, -np.inf)
    elif mask is not None and mode == "inverted":
        scores = np.where(mask, -np.inf, scores)
    weights = _softmax(scores, softmax_axis)
    if mask is not None and mode == "after":
        weights = weights * mask
    if mask is not None and mode == "after_renorm":
        weights = weights * mask
        weights = weights / weights.sum(axis=-1, keepdims=True)
    return weights @ v, weights


def _attention_case(label, q, k, v, mask, *, errors=None) -> Case:
    import torch
    import torch.nn.functional as F

    qn, kn, vn = (t.double().numpy() for t in (q, k, v))
    maskn = None if mask is None else mask.numpy()
    # The oracle: PyTorch's fused attention in float64 (its bool mask means the same: True = attend).
    expected_out = F.scaled_dot_product_attention(q.double(), k.double(), v.double(),
                                                  attn_mask=None if mask is None else mask).numpy()
    _, expected_w = _attend(qn, kn, vn, maskn)
    T, S, dv = q.shape[-2], k.shape[-2], v.shape[-1]
    batch = tuple(np.broadcast_shapes(q.shape[:-2], k.shape[:-2]))
    d = q.shape[-1]

    def mistakes(which):
        pick = 0 if which == "out" else 1
        options = [
            (f"the scores should be divided by sqrt(d) = sqrt(q.size(-1)) = {math.sqrt(d):.3g}; "
             "yours are not scaled.", lambda: _attend(qn, kn, vn, maskn, scale=1.0)[pick]),
            (f"divide the scores by sqrt(d) = {math.sqrt(d):.3g}, not by d = {d}.",
             lambda: _attend(qn, kn, vn, maskn, scale=float(d))[pick]),
            ("scale by the square root of the head size q.size(-1), not of the sequence length.",
             lambda: _attend(qn, kn, vn, maskn, scale=math.sqrt(S))[pick]),
            ("softmax should run over the last dimension (over the keys, so each query's weights "
             "sum to 1), not over the queries.", lambda: _attend(qn, kn, vn, maskn, softmax_axis=-2)[pick]),
        ]
        if maskn is not None:
            options += [
                ("the mask was ignored: set the scores where mask is False to -inf before the softmax.",
                 lambda: _attend(qn, kn, vn, None)[pick]),
                ("the mask works the wrong way round: True means 'may attend', so fill the scores "
                 "where the mask is False (masked_fill(~mask, float('-inf'))).",
                 lambda: _attend(qn, kn, vn, maskn, mode="inverted")[pick]),
                ("the mask was applied after the softmax, so the remaining weights no longer sum "
                 "to 1: mask the scores (with -inf) before the softmax.",
                 lambda: _attend(qn, kn, vn, maskn, mode="after")[pick]),
            ]
        return options

    def verify(output):
        if not (isinstance(output, tuple) and len(output) == 2):
            raise CheckFailed("should return a tuple (out, weights)")
        out, weights = output
        if not isinstance(weights, torch.Tensor) or not isinstance(out, torch.Tensor):
            raise CheckFailed("out and weights should both be tensors")
        if tuple(weights.shape) == (*batch, T, dv) and tuple(out.shape) == (*batch, T, S) and (T, S) != (T, dv):
            raise CheckFailed("return (out, weights) in that order")
        if tuple(weights.shape) != (*batch, T, S):
            raise CheckFailed(f"weights have shape {tuple(weights.shape)}, expected (..., T, S) = "
                              f"{(*batch, T, S)}: one row per query, one column per key")
        if tuple(out.shape) != (*batch, T, dv):
            raise CheckFailed(f"out has shape {tuple(out.shape)}, expected (..., T, d_v) = {(*batch, T, dv)}")
        for name, t in (("out", out), ("weights", weights)):
            if t.dtype != torch.float32:
                raise CheckFailed(f"{name} has dtype {t.dtype}; keep float32")
        w = to_numpy(weights)
        if not close(w, expected_w, rtol=RTOL, atol=ATOL):
            sums = np.nansum(w, axis=-1)
            if maskn is not None and not close(w * ~np.broadcast_to(maskn, w.shape), 0 * w, rtol=0, atol=1e-12) \
                    and close(w, _attend(qn, kn, vn, maskn, mode="after_renorm")[1], rtol=RTOL, atol=ATOL):
                raise CheckFailed("weights is wrong: masked positions must get weight exactly 0")
            explain(w, expected_w, mistakes("weights"), "weights")
            if not np.allclose(sums, 1.0, atol=1e-4):
                raise CheckFailed("each row of weights should sum to 1 (softmax over the last dimension)")
        explain(to_numpy(out), expected_out, mistakes("out"), "out")
        if not close(to_numpy(out), to_numpy(weights).astype(np.float64) @ vn, rtol=RTOL, atol=ATOL):
            raise CheckFailed("out should be weights @ v")

    return Case(label=label, args=(q, k, v), kwargs={"mask": mask}, verify=verify,
                errors=errors or {"IndexError": "boolean indexing with a mask needs the mask in the "
                                  "scores' full shape; scores.masked_fill(~mask, float('-inf')) "
                                  "broadcasts a (T, T) mask over batch and heads."})


def _causal(T):
    import torch
    return torch.tril(torch.ones(T, T, dtype=torch.bool))


def _random_mask(rng, *shape):
    import torch
    m = rng.random(shape) < 0.5
    m[..., 0] = True  # every query may attend to at least one key
    m = np.take_along_axis(m, np.argsort(rng.random(shape), axis=-1), axis=-1)  # shuffle columns
    return torch.tensor(m)


@register("attention", "output and weights, scale, mask direction, batches of heads, T = 1")
def attention_cases(rng: np.random.Generator, hidden: bool):
    t = lambda *s, scale=1.0: tensor(rng, *s, scale=scale)  # noqa: E731
    if not hidden:
        return [
            _attention_case("one sequence, T=4, d=8, causal mask", t(4, 8), t(4, 8), t(4, 8), _causal(4)),
            _attention_case("batch 2 x 3 heads, T=5, d=4, a (T, T) causal mask",
                            t(2, 3, 5, 4), t(2, 3, 5, 4), t(2, 3, 5, 4), _causal(5)),
            _attention_case("no mask, d=16", t(2, 6, 16, scale=2.0), t(2, 6, 16, scale=2.0), t(2, 6, 16), None),
            _attention_case("T=1", t(3, 1, 5), t(3, 1, 5), t(3, 1, 5), _causal(1)),
            _attention_case("v narrower than q and k (d_v=3)", t(2, 5, 6), t(2, 5, 6), t(2, 5, 3), _causal(5)),
        ]
    return [
        _attention_case("a random (not causal) mask", t(2, 6, 5), t(2, 6, 5), t(2, 6, 5), _random_mask(rng, 6, 6)),
        _attention_case("3 queries, 7 keys, no mask", t(2, 3, 8), t(2, 7, 8), t(2, 7, 4), None),
        _attention_case("batch 2 x 2 heads, T=9, d=64, causal", t(2, 2, 9, 64), t(2, 2, 9, 64), t(2, 2, 9, 64), _causal(9)),
        _attention_case("large scores, causal", t(1, 7, 6, scale=6.0), t(1, 7, 6, scale=6.0), t(1, 7, 6), _causal(7)),
        _attention_case("a per-batch mask (2, 1, 4, 4)", t(2, 3, 4, 5), t(2, 3, 4, 5), t(2, 3, 4, 5),
                        _random_mask(rng, 2, 1, 4, 4)),
        _attention_case("T=1, batch of heads", t(2, 4, 1, 8), t(2, 4, 1, 8), t(2, 4, 1, 8), _causal(1)),
    ]
