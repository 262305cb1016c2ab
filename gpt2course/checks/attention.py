"""Checks for notebook 03's ``causal_mask(T)`` and ``attention(q, k, v, mask=None)``."""

from __future__ import annotations

import math

import numpy as np

from .core import Case, CheckFailed, register, to_numpy, worst_difference
from .layers import explain, matches, tensor
from .protocol import GRAD, weighted_sum


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
        if np.array_equal(got, np.tril(lower, -1)):
            raise CheckFailed("every position must be allowed to attend to itself: the diagonal "
                              "should be True (torch.tril keeps it; diagonal=-1 drops it).")
        if np.array_equal(got, ~lower):
            raise CheckFailed("True and False are swapped: True means 'may attend' (j <= i).")
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


def _attend(q, k, v, mask, *, scale=None, softmax_axis=-1, mode="fill", multiply=False):
    """NumPy float64 attention with knobs for the usual mistakes; returns (out, weights)."""
    d = q.shape[-1]
    scale = math.sqrt(d) if scale is None else scale
    scores = q @ np.swapaxes(k, -1, -2)
    scores = scores * scale if multiply else scores / scale
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


def _oracle_grads(q, k, v, mask, grad_seed):
    """Gradients of (out * g0).sum() + (weights * g1).sum() by autograd on float64 attention."""
    import torch

    q, k, v = (t.detach().double().requires_grad_(True) for t in (q, k, v))
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    out = weights @ v
    (weighted_sum(out, grad_seed, 0) + weighted_sum(weights, grad_seed, 1)).backward()
    return [t.grad.numpy() for t in (q, k, v)]


_NAN = (" It contains NaN: a row whose scores are all -inf, or 0 * (-inf) (a mask multiplied by "
        "-inf), gives NaN; use masked_fill or torch.where.")

_ERRORS = {"IndexError": "if it is about the mask: boolean indexing needs the mask in the scores' "
                         "full shape, while scores.masked_fill(~mask, float('-inf')) broadcasts a "
                         "(T, T) mask over batch and heads. If it is about a dimension: batched "
                         "inputs have more than 2 dimensions, so transpose the last two "
                         "(k.transpose(-2, -1)), not k.T or dims 0 and 1."}


def _attention_case(label, q, k, v, mask, *, grad_seed=None) -> Case:
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
    expected_grads = None if grad_seed is None else _oracle_grads(q, k, v, mask, grad_seed)

    def mistakes(which):
        pick = 0 if which == "out" else 1
        options = [
            (f"the scores should be divided by sqrt(d) = sqrt(q.size(-1)) = {math.sqrt(d):.3g}; "
             "yours are not scaled.", lambda: _attend(qn, kn, vn, maskn, scale=1.0)[pick]),
            (f"divide the scores by sqrt(d) = {math.sqrt(d):.3g}, not by d = {d}.",
             lambda: _attend(qn, kn, vn, maskn, scale=float(d))[pick]),
            (f"divide the scores by sqrt(d) = {math.sqrt(d):.3g}; yours are multiplied by it.",
             lambda: _attend(qn, kn, vn, maskn, multiply=True)[pick]),
            ("scale by the square root of the head size q.size(-1), not of the sequence length.",
             lambda: _attend(qn, kn, vn, maskn, scale=math.sqrt(S))[pick]),
            ("scale by the square root of q's and k's size d = q.size(-1), not of v's size.",
             lambda: _attend(qn, kn, vn, maskn, scale=math.sqrt(dv))[pick]),
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
                ("the mask was applied after the softmax and the rows renormalised: when a hidden "
                 "key outscores the visible ones, their weights underflow to 0 / 0. Mask the "
                 "scores (with -inf) before the softmax.",
                 lambda: _attend(qn, kn, vn, maskn, mode="after_renorm")[pick]),
            ]
        elif T == S:
            options.append(("mask=None means no masking: only apply a mask when one is given.",
                            lambda: _attend(qn, kn, vn, np.tril(np.ones((T, S), dtype=bool)))[pick]))
        return options

    def verify(report):
        output = report["outputs"] if grad_seed is not None else report
        if not (isinstance(output, tuple) and len(output) == 2):
            raise CheckFailed("should return a tuple (out, weights)")
        out, weights = output
        if not isinstance(weights, torch.Tensor) or not isinstance(out, torch.Tensor):
            raise CheckFailed("out and weights should both be tensors")
        if tuple(weights.shape) == (*batch, T, dv) and tuple(out.shape) == (*batch, T, S) and S != dv:
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
        if not matches(w, expected_w):
            explain(w, expected_w, mistakes("weights"), "weights", nan_hint=_NAN)  # a known mistake?
        sums = w.sum(axis=-1)
        if np.isfinite(sums).all() and not np.allclose(sums, 1.0, atol=1e-4):
            raise CheckFailed("weights is wrong: each row should sum to 1 (softmax over the last "
                              "dimension, over the keys)")
        explain(w, expected_w, [], "weights", nan_hint=_NAN)
        explain(to_numpy(out), expected_out, mistakes("out"), "out", nan_hint=_NAN)
        if grad_seed is not None:
            for name, got, exp in zip("qkv", report["grads"], expected_grads):
                if got is None:
                    raise CheckFailed(f"no gradient flows back to {name}: is it detached, or used "
                                      "under torch.no_grad()?")
                if not matches(to_numpy(got), exp, rtol=1e-3, atol=1e-4):
                    raise CheckFailed(
                        f"the values are right but the gradient with respect to {name} is wrong "
                        f"({worst_difference(to_numpy(got), exp)}): is part of the computation "
                        "detached (.detach(), .data, torch.no_grad())?")

    if grad_seed is not None:
        return Case(label=label, args=([q, k, v], {"mask": mask}, grad_seed), kind=GRAD,
                    verify=verify, errors=dict(_ERRORS))
    return Case(label=label, args=(q, k, v), kwargs={"mask": mask}, verify=verify, errors=dict(_ERRORS))


def _dominant_future(rng, T, d):
    """q, k, v where the first query scores the last (hidden) key about 200 above its one
    visible key: masking after the softmax underflows the visible weight to 0 (then 0 / 0)."""
    q, k = tensor(rng, T, d), tensor(rng, T, d)
    k[-1] = q[0] * (200.0 * math.sqrt(d) / float(q[0] @ q[0]))
    return q, k, tensor(rng, T, d)


def _causal(T):
    import torch
    return torch.tril(torch.ones(T, T, dtype=torch.bool))


def _random_mask(rng, *shape):
    import torch
    m = rng.random(shape) < 0.5
    m[..., 0] = True  # every query may attend to at least one key
    m = np.take_along_axis(m, np.argsort(rng.random(shape), axis=-1), axis=-1)  # shuffle columns
    return torch.tensor(m)


@register("attention", "output, weights and gradients; scale, mask direction, batches of heads, T = 1")
def attention_cases(rng: np.random.Generator, hidden: bool):
    t = lambda *s, scale=1.0: tensor(rng, *s, scale=scale)  # noqa: E731
    seed = int(rng.integers(0, 2**31))
    if not hidden:
        return [
            _attention_case("one sequence, T=4, d=8, causal mask", t(4, 8), t(4, 8), t(4, 8), _causal(4)),
            _attention_case("batch 2 x 3 heads, T=5, d=4, a (T, T) causal mask",
                            t(2, 3, 5, 4), t(2, 3, 5, 4), t(2, 3, 5, 4), _causal(5)),
            _attention_case("no mask, d=16", t(2, 6, 16, scale=2.0), t(2, 6, 16, scale=2.0), t(2, 6, 16), None),
            _attention_case("T=1", t(3, 1, 5), t(3, 1, 5), t(3, 1, 5), _causal(1)),
            _attention_case("v narrower than q and k (d_v=3)", t(2, 5, 6), t(2, 5, 6), t(2, 5, 3), _causal(5)),
            _attention_case("a hidden key that outscores the visible ones", *_dominant_future(rng, 5, 8), _causal(5)),
            _attention_case("gradients reach q, k and v", t(2, 5, 4), t(2, 5, 4), t(2, 5, 4), _causal(5),
                            grad_seed=seed),
        ]
    return [
        _attention_case("a random (not causal) mask", t(2, 6, 5), t(2, 6, 5), t(2, 6, 5), _random_mask(rng, 6, 6)),
        _attention_case("3 queries, 7 keys, no mask", t(2, 3, 8), t(2, 7, 8), t(2, 7, 4), None),
        _attention_case("batch 2 x 2 heads, T=9, d=64, causal", t(2, 2, 9, 64), t(2, 2, 9, 64), t(2, 2, 9, 64), _causal(9)),
        _attention_case("large scores, causal", t(1, 7, 6, scale=6.0), t(1, 7, 6, scale=6.0), t(1, 7, 6), _causal(7)),
        _attention_case("a per-batch mask (2, 1, 4, 4)", t(2, 3, 4, 5), t(2, 3, 4, 5), t(2, 3, 4, 5),
                        _random_mask(rng, 2, 1, 4, 4)),
        _attention_case("T=1, batch of heads", t(2, 4, 1, 8), t(2, 4, 1, 8), t(2, 4, 1, 8), _causal(1)),
        _attention_case("hidden keys far above the visible ones", *_dominant_future(rng, 7, 16), _causal(7)),
        _attention_case("gradients with a random mask", t(3, 6, 8), t(3, 6, 8), t(3, 6, 2),
                        _random_mask(rng, 6, 6), grad_seed=seed + 1),
    ]
