"""Checks for notebook 03's ``causal_mask(T)`` and ``attention(q, k, v, mask=None)``."""

from __future__ import annotations

import math

import numpy as np

from .core import Case, CheckFailed, register, to_numpy, worst_difference
from .layers import ATOL, RTOL, matches, tensor
from .protocol import GRAD, weighted_sum


# ---- causal_mask ---------------------------------------------------------------------------

def _mask_case(label: str, T: int) -> Case:
    def verify(output):
        import torch
        if not isinstance(output, torch.Tensor):
            raise CheckFailed(f"should return a torch.Tensor, got {type(output).__name__}")
        if tuple(output.shape) != (T, T):
            raise CheckFailed(f"the mask has shape {tuple(output.shape)}, expected (T, T) = {(T, T)}")
        lower = np.tril(np.ones((T, T), dtype=bool))
        if output.dtype != torch.bool:
            got = to_numpy(output).astype(np.float64) if output.is_floating_point() else None
            if got is not None and (got[lower] == 0).all() and np.isin(got[~lower], [0.0, -np.inf]).all():
                raise CheckFailed("this is the additive form of the mask (0 where attending is allowed, -inf "
                                  "where it is not); return the bool mask itself, True = may attend "
                                  "(attention turns it into -inf)")
            raise CheckFailed(f"the mask has dtype {output.dtype}; return a bool tensor (True = may "
                              "attend), e.g. build it with dtype=torch.bool or compare with <=")
        got = to_numpy(output)
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
        if got.all():
            raise CheckFailed("every entry is True, so every position sees the future: keep only the "
                              "lower triangle, j <= i (torch.tril).")
        if np.array_equal(got, np.tril(np.ones((T, T), dtype=bool), 1)):
            raise CheckFailed("the entries just above the diagonal are True too, so each position sees "
                              "the next one (torch.tril with diagonal=1?): keep j <= i, the default "
                              "diagonal=0.")
        if np.array_equal(got, np.eye(T, dtype=bool)):
            raise CheckFailed("only the diagonal is True: position i may also attend to every earlier "
                              "position j < i (the lower triangle, torch.tril).")
        raise CheckFailed(f"entry [i, j] should be True exactly when j <= i; first wrong entry at "
                          f"{tuple(int(n) for n in np.argwhere(got != lower)[0])}")
    return Case(label=label, args=(T,), verify=verify)


_MASK_LABELS = ["T=1", "T=5", "T=2", "T=8", "T=3", "T=7", "T=16", "a random T from 9 to 39"]


@register("causal_mask", "shape, dtype bool, lower triangle with the diagonal", rules={
    "shape (T, T)": _MASK_LABELS,
    "bool": _MASK_LABELS,
    "past and itself": _MASK_LABELS,
})
def causal_mask_cases(rng: np.random.Generator, hidden: bool):
    if not hidden:  # T=5 before T=2: a mistake that T=2 cannot tell from another shows first
        return [_mask_case(f"T={T}", T) for T in (1, 5, 2, 8)]
    return [_mask_case(f"T={T}", T) for T in (3, 7, 16)] + [
        _mask_case("a random T from 9 to 39", int(rng.integers(9, 40)))]


# ---- attention -----------------------------------------------------------------------------

def _softmax(x, axis=-1):
    with np.errstate(invalid="ignore"):
        shifted = x - np.max(x, axis=axis, keepdims=True)
        e = np.exp(shifted)
        return e / e.sum(axis=axis, keepdims=True)


def _attend(q, k, v, mask, *, scale=None, softmax_axis=-1, mode="fill", multiply=False,
            softmax=True, dtype=np.float64):
    """NumPy attention with knobs for the usual mistakes; returns (out, weights). ``mode`` says
    what the mask does: "fill" (-inf where False: right), "inverted", "zero" (0 where False),
    "added" (the bool mask added as 1 / 0), "after" (weights times the mask) and "after_renorm"
    (then rows renormalised; in float32 that underflows as the learner's would)."""
    q, k, v = (np.asarray(t, dtype=dtype) for t in (q, k, v))
    d = q.shape[-1]
    scale = math.sqrt(d) if scale is None else scale
    with np.errstate(all="ignore"):
        scores = q @ np.swapaxes(k, -1, -2)
        scores = scores * dtype(scale) if multiply else scores / dtype(scale)
        if mask is not None and mode == "fill":
            scores = np.where(mask, scores, -np.inf)
        elif mask is not None and mode == "inverted":
            scores = np.where(mask, -np.inf, scores)
        elif mask is not None and mode == "zero":
            scores = np.where(mask, scores, 0.0)
        elif mask is not None and mode == "added":
            scores = scores + mask
        weights = _softmax(scores, softmax_axis) if softmax else scores
        if mask is not None and mode in ("after", "after_renorm"):
            weights = weights * mask
        if mask is not None and mode == "after_renorm":
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
                         "(T, T) mask over batch and heads. If it is about a dimension: q, k and v may "
                         "have any number of leading dimensions, even none, so transpose the last two "
                         "(k.transpose(-2, -1)), not dims 1 and 2, and use @ (torch.bmm takes 3-D "
                         "tensors only).",
           "RuntimeError": "if it is about a tensor's truth value: write `if mask is not None:`, not "
                           "`if mask:`. If it is about sizes: q, k and v may have leading dimensions "
                           "(batch, heads), so transpose the last two of k (k.transpose(-2, -1)), not k.T, "
                           "which reverses them all; torch.bmm takes 3-D tensors only."}


def _scale_used(w, raw, allowed, rtol):
    """The c for which ``w`` is the masked softmax of ``raw / c`` (None if there is none): the
    slope of log w against the raw scores q @ kᵀ, row by row."""
    with np.errstate(all="ignore"):
        lw = np.log(w)
        ok = allowed & np.isfinite(lw) & np.isfinite(raw)
        n = ok.sum(axis=-1, keepdims=True)
        x = np.where(ok, raw, 0.0)
        y = np.where(ok, lw, 0.0)
        x = np.where(ok, x - x.sum(axis=-1, keepdims=True) / np.maximum(n, 1), 0.0)
        y = np.where(ok, y - y.sum(axis=-1, keepdims=True) / np.maximum(n, 1), 0.0)
        slope = float((x * y).sum() / (x * x).sum())
        if not np.isfinite(slope) or slope <= 0:
            return None
        candidate = _softmax(np.where(allowed, raw * slope, -np.inf))
    return 1.0 / slope if matches(w, candidate, rtol=rtol, atol=ATOL, nan_equal=True) else None


def _nonfinite(w, scaled, allowed):
    """The message for inf or NaN in the weights that a softmax without its shift explains."""
    bad = ~np.isfinite(w)
    if not bad.any():
        return None
    rows = bad.any(axis=-1)
    if (scaled.max(axis=-1)[rows] > 88.8).all():  # exp of a score above ~88.7, hidden or not, is inf
        return ("the weights have inf or NaN in rows whose largest score is above 88: exp overflows "
                "float32 there (inf / inf). Subtract each row's maximum score before exp, or use "
                "torch.softmax (or your stable softmax from notebook 00).")
    row_max = np.where(allowed, scaled, -np.inf).max(axis=-1)
    if (row_max[rows] < row_max.max() - 88).all():
        return ("the weights have NaN in rows whose scores lie far below the largest score of the "
                "whole tensor: you subtracted a maximum taken over more than the row, so those rows "
                "underflow to 0 / 0. Subtract each row's own maximum (amax(dim=-1, keepdim=True)).")
    return None


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
    raw = qn @ np.swapaxes(kn, -1, -2)
    allowed = np.broadcast_to(True if maskn is None else maskn, raw.shape)
    # float32 rounding of a score is relative to the sum of its terms' sizes, and a weight's
    # relative error is the absolute error of the scores (in the hundreds in the large cases).
    # out = weights @ v then errs by up to that much of v's largest value, wherever out is near 0.
    bound = float((np.abs(qn) @ np.swapaxes(np.abs(kn), -1, -2)).max()) / math.sqrt(d)
    rtol = max(RTOL, 32 * 2.0**-24 * bound)
    out_atol = ATOL * max(1.0, float(np.abs(expected_out).max())) + 32 * 2.0**-24 * bound * float(np.abs(vn).max())

    def same(got, want, nan_equal=False, out=False):
        if out:
            return matches(got, want, rtol=rtol, atol=out_atol, nan_equal=nan_equal, scaled=False)
        return matches(got, want, rtol=rtol, atol=ATOL, nan_equal=nan_equal)

    def mistakes(which):
        pick = 0 if which == "out" else 1
        run = lambda **kw: _attend(qn, kn, vn, maskn, **kw)[pick]  # noqa: E731
        options = [
            (f"the scores should be divided by sqrt(d) = sqrt(q.size(-1)) = {math.sqrt(d):.3g}; "
             "yours are not scaled.", lambda: run(scale=1.0)),
            (f"the scores were divided by d = {d}; divide them by sqrt(d) = {math.sqrt(d):.3g}.",
             lambda: run(scale=float(d))),
            (f"divide the scores by sqrt(d) = {math.sqrt(d):.3g}; yours are multiplied by it.",
             lambda: run(multiply=True)),
            ("scale by the square root of the head size q.size(-1), not of the sequence length.",
             lambda: run(scale=math.sqrt(S))),
            ("scale by the square root of q's and k's size d = q.size(-1), not of v's size.",
             lambda: run(scale=math.sqrt(dv))),
            ("softmax should run over the last dimension (over the keys, so each query's weights "
             "sum to 1), not over the queries.", lambda: run(softmax_axis=-2)),
        ]
        options += [(f"softmax ran over dimension {axis}, not the last one (the keys), so each query's "
                     "weights do not sum to 1: pass dim=-1 (without dim=, F.softmax picks a dimension "
                     "for you).", lambda axis=axis: run(softmax_axis=axis)) for axis in range(raw.ndim - 2)]
        if maskn is not None:
            options += [
                ("the mask had no effect: set the scores where mask is False to -inf before the "
                 "softmax (masked_fill returns a new tensor: assign its result, scores = "
                 "scores.masked_fill(...)).", lambda: run(mode=None)),
                ("the mask works the wrong way round: True means 'may attend', so fill the scores "
                 "where the mask is False (masked_fill(~mask, float('-inf'))).", lambda: run(mode="inverted")),
                ("the mask was applied after the softmax, so the remaining weights no longer sum "
                 "to 1: mask the scores (with -inf) before the softmax.", lambda: run(mode="after")),
                ("the mask was applied after the softmax and the rows renormalised: when a hidden "
                 "key outscores the visible ones, their weights underflow to 0 / 0. Mask the "
                 "scores (with -inf) before the softmax.",
                 lambda: _attend(qn, kn, vn, maskn, mode="after_renorm", dtype=np.float32)[pick]),
                ("the hidden scores were set to 0 (filled with 0, or multiplied by the mask), and "
                 "exp(0) = 1 still gives them weight: they should be -inf.", lambda: run(mode="zero")),
                ("the bool mask was added to the scores (True counts as 1): that shifts the scores "
                 "instead of hiding keys. Fill the scores where the mask is False with -inf.",
                 lambda: run(mode="added")),
                ("the weights are the scores themselves: turn the (masked) scores into weights with a "
                 "softmax over the last dimension.", lambda: run(softmax=False, mode="zero")),
                ("the weights are the scores themselves: turn the (masked) scores into weights with a "
                 "softmax over the last dimension.", lambda: run(softmax=False)),
            ]
        else:
            options += [
                ("mask=None means no masking: only apply a mask when one is given.",
                 lambda: _attend(qn, kn, vn, np.tril(np.ones((T, S), dtype=bool)))[pick]),
                ("the weights are the scores themselves: turn the scores into weights with a softmax "
                 "over the last dimension.", lambda: run(softmax=False)),
            ]
        if which == "out":
            options += [
                ("out should be weights @ v; yours is weights @ k.",
                 lambda: expected_w @ kn if kn.shape[-1] == dv else None),
                (f"the scores, not out, should be divided by sqrt(d) = {math.sqrt(d):.3g}.",
                 lambda: expected_out / math.sqrt(d)),
            ]
        return options

    def known(got, which):
        for hint, alternative in mistakes(which):
            try:
                with np.errstate(all="ignore"):
                    alt = alternative()
                    if alt is None:
                        continue
                    alt = np.broadcast_to(np.asarray(alt, dtype=np.float64), got.shape)
            except Exception:  # noqa: BLE001 - a mistake that cannot even be computed here does not match
                continue
            if same(got, alt, nan_equal=True, out=which == "out"):
                raise CheckFailed(f"{which} is wrong: {hint}")

    def explain_weights(w, o):
        if maskn is not None and same(o, expected_out, out=True) and same(w, _attend(qn, kn, vn, None)[1]):
            raise CheckFailed("out is right, but the weights you return ignore the mask (computed before "
                              "masking?): return the masked weights that out was computed with.")
        known(w, "weights")
        scale = _scale_used(w, raw, allowed, rtol)
        if scale is not None and abs(scale / math.sqrt(d) - 1) > 1e-3:
            raise CheckFailed(f"weights is wrong: the scores were divided by {scale:.4g}, not by sqrt(d) = "
                              f"sqrt(q.size(-1)) = {math.sqrt(d):.4g} (d is the size of q's and k's vectors).")
        hint = _nonfinite(w, raw / math.sqrt(d), allowed)
        if hint:
            raise CheckFailed(f"weights is wrong: {hint}")
        if np.isnan(w).any():
            raise CheckFailed(f"weights differs from the expected values ({worst_difference(w, expected_w)})."
                              + _NAN)
        sums = w.sum(axis=-1)
        if np.isfinite(sums).all() and not np.allclose(sums, 1.0, atol=1e-4):
            raise CheckFailed("weights is wrong: each row should sum to 1 (softmax over the last "
                              "dimension, over the keys)")
        raise CheckFailed(f"weights differs from the expected values ({worst_difference(w, expected_w)}).")

    def verify(report):
        output = report["outputs"] if grad_seed is not None else report
        if not (isinstance(output, tuple) and len(output) == 2):
            raise CheckFailed("should return a tuple (out, weights)" + (
                ", not one tensor" if isinstance(output, torch.Tensor) else ""))
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
        w, o = to_numpy(weights), to_numpy(out)
        if not same(w, expected_w):
            if S == dv and same(w, expected_out, out=True) and same(o, expected_w):
                raise CheckFailed("return (out, weights) in that order")
            explain_weights(w, o)
        if not same(o, expected_out, out=True):
            known(o, "out")
            raise CheckFailed(f"out differs from the expected values ({worst_difference(o, expected_out)})."
                              + (_NAN if np.isnan(o).any() else ""))
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


def _planted(rng, scores, d):
    """float32 q (..., T, d) and k (..., S, d), S <= d, whose scores q @ kᵀ / sqrt(d) are
    ``scores`` (..., T, S): random keys, and queries solved for (q = sqrt(d) scores (k kᵀ)⁻¹ k)."""
    import torch
    k = rng.normal(size=scores.shape[:-2] + (scores.shape[-1], d))
    q = math.sqrt(d) * scores @ np.linalg.inv(k @ np.swapaxes(k, -1, -2)) @ k
    return torch.tensor(q, dtype=torch.float32), torch.tensor(k, dtype=torch.float32)


def _large(rng, *shape, d):
    """q, k whose scores are all around 150: exp of any of them overflows float32."""
    return _planted(rng, 150.0 + rng.normal(size=shape) * 2.0, d)


def _one_row_far_above(rng, *shape, d):
    """q, k whose first query's scores (in the first matrix of the batch) lie around 300 and all
    others around 0: a maximum over more than the row underflows the other rows to 0 / 0."""
    scores = rng.normal(size=shape) * 2.0
    scores[(0,) * (len(shape) - 2) + (0,)] += 300.0
    return _planted(rng, scores, d)


def _dominant_future(rng, T, d):
    """q, k where the first query scores the last (hidden) key 200 above its one visible key and
    every other score is small: masking after the softmax underflows the visible weight to 0
    (then 0 / 0) in that row, in no other."""
    scores = rng.normal(size=(T, T))
    scores[0, -1] = 200.0
    return _planted(rng, scores, d)


def _causal(T):
    import torch
    return torch.tril(torch.ones(T, T, dtype=torch.bool))


def _random_mask(rng, *shape):
    import torch
    m = rng.random(shape) < 0.5
    m[..., 0] = True  # every query may attend to at least one key
    m = np.take_along_axis(m, np.argsort(rng.random(shape), axis=-1), axis=-1)  # shuffle columns
    return torch.tensor(m)


_SHAPES = ["one sequence, T=4, d=6, causal mask", "batch 2 x 3 heads, T=5, d=4, a (T, T) causal mask",
           "no mask, d=16", "T=1", "v narrower than q and k (d_v=3)", "3 queries, 7 keys, no mask",
           "batch 2 x 2 heads, T=9, d=64, causal", "a per-batch mask (2, 1, 4, 4)", "T=1, batch of heads"]
_MASKED = ["one sequence, T=4, d=6, causal mask", "batch 2 x 3 heads, T=5, d=4, a (T, T) causal mask",
           "a hidden key that outscores the visible ones", "a random (not causal) mask",
           "a per-batch mask (2, 1, 4, 4)", "hidden keys far above the visible ones"]
_LARGE = ["large scores (around 150)", "one query's scores 300 above the others'",
          "large scores in a batch of heads", "one sequence's scores far above the other's"]


@register("attention", "output, weights and gradients; scale, mask direction, batches of heads, T = 1, "
                      "large scores", rules={
    "returns (out, weights)": _SHAPES,
    "any leading dimensions": _SHAPES,
    "scaled by sqrt(d)": ["one sequence, T=4, d=6, causal mask", "no mask, d=16", "v narrower than q and k (d_v=3)",
                          "3 queries, 7 keys, no mask", "batch 2 x 2 heads, T=9, d=64, causal"],
    "mask before softmax": _MASKED,
    "no mask": ["no mask, d=16", "3 queries, 7 keys, no mask"],
    "softmax over the keys": ["one sequence, T=4, d=6, causal mask",
                              "batch 2 x 3 heads, T=5, d=4, a (T, T) causal mask",
                              "3 queries, 7 keys, no mask", "batch 2 x 2 heads, T=9, d=64, causal"],
    "large scores": _LARGE,
    "inputs unchanged": ["one sequence, T=4, d=6, causal mask", "a random (not causal) mask"],
    "gradients": ["gradients reach q, k and v", "gradients with a random mask"],
})
def attention_cases(rng: np.random.Generator, hidden: bool):
    t = lambda *s, scale=1.0: tensor(rng, *s, scale=scale)  # noqa: E731
    seed = int(rng.integers(0, 2**31))
    if not hidden:
        return [
            _attention_case("one sequence, T=4, d=6, causal mask", t(4, 6), t(4, 6), t(4, 6), _causal(4)),
            _attention_case("batch 2 x 3 heads, T=5, d=4, a (T, T) causal mask",
                            t(2, 3, 5, 4), t(2, 3, 5, 4), t(2, 3, 5, 4), _causal(5)),
            _attention_case("no mask, d=16", t(2, 6, 16, scale=2.0), t(2, 6, 16, scale=2.0), t(2, 6, 16), None),
            _attention_case("T=1", t(3, 1, 5), t(3, 1, 5), t(3, 1, 5), _causal(1)),
            _attention_case("v narrower than q and k (d_v=3)", t(2, 5, 6), t(2, 5, 6), t(2, 5, 3), _causal(5)),
            _attention_case("a hidden key that outscores the visible ones", *_dominant_future(rng, 5, 12),
                            t(5, 12), _causal(5)),
            _attention_case("large scores (around 150)", *_large(rng, 2, 6, 6, d=16), t(2, 6, 5), _causal(6)),
            _attention_case("one query's scores 300 above the others'", *_one_row_far_above(rng, 5, 5, d=12),
                            t(5, 4), _causal(5)),
            _attention_case("gradients reach q, k and v", t(2, 5, 4), t(2, 5, 4), t(2, 5, 4), _causal(5),
                            grad_seed=seed),
        ]
    return [
        _attention_case("a random (not causal) mask", t(2, 6, 5), t(2, 6, 5), t(2, 6, 5), _random_mask(rng, 6, 6)),
        _attention_case("3 queries, 7 keys, no mask", t(2, 3, 8), t(2, 7, 8), t(2, 7, 4), None),
        _attention_case("batch 2 x 2 heads, T=9, d=64, causal", t(2, 2, 9, 64), t(2, 2, 9, 64), t(2, 2, 9, 64), _causal(9)),
        _attention_case("large scores in a batch of heads", *_large(rng, 2, 2, 7, 7, d=16), t(2, 2, 7, 6), _causal(7)),
        _attention_case("a per-batch mask (2, 1, 4, 4)", t(2, 3, 4, 5), t(2, 3, 4, 5), t(2, 3, 4, 5),
                        _random_mask(rng, 2, 1, 4, 4)),
        _attention_case("T=1, batch of heads", t(2, 4, 1, 8), t(2, 4, 1, 8), t(2, 4, 1, 8), _causal(1)),
        _attention_case("hidden keys far above the visible ones", *_dominant_future(rng, 7, 16), t(7, 16), _causal(7)),
        _attention_case("one sequence's scores far above the other's", *_one_row_far_above(rng, 2, 6, 6, d=16),
                        t(2, 6, 3), None),
        _attention_case("gradients with a random mask", t(3, 6, 8), t(3, 6, 8), t(3, 6, 2),
                        _random_mask(rng, 6, 6), grad_seed=seed + 1),
    ]
