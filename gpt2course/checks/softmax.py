"""Checks for notebook 00's ``softmax(x, dim=-1)``."""

from __future__ import annotations

import numpy as np

from .core import Case, CheckFailed, close, register, require_tensor, worst_difference

# float32 rounding of exp/sum is ~1e-7 relative; a logsumexp formulation at inputs near 1000
# differs by ~1e-5 relative. 1e-3 leaves room for every stable formulation and none for a wrong one.
RTOL, ATOL = 1e-3, 1e-7


def softmax_oracle(x: np.ndarray, dim: int) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    shifted = x - np.max(x, axis=dim, keepdims=True)
    e = np.exp(shifted)
    return e / np.sum(e, axis=dim, keepdims=True)


def _verify(x_np: np.ndarray, dim: int, call_dim_given: bool):
    def verify(output):
        import torch

        got = require_tensor(output, x_np.shape, what="softmax's output")
        if output.dtype != torch.float32:
            raise CheckFailed(f"the output has dtype {output.dtype}; for a float32 input it "
                              "should stay float32")
        expected = softmax_oracle(x_np, dim)
        if close(got, expected, rtol=RTOL, atol=ATOL):
            return
        large = np.nanmax(np.abs(x_np[np.isfinite(x_np)])) > 80
        if not np.all(np.isfinite(got)):
            spread = np.ptp(np.max(np.where(np.isfinite(x_np), x_np, -np.inf), axis=dim))
            if large or spread > 80:
                finite = np.where(np.isfinite(x_np), x_np, -np.inf)
                with np.errstate(all="ignore"):  # in float32, as the learner's tensor underflows
                    whole = np.exp((x_np - np.max(finite)).astype(np.float32))
                    whole = whole / np.sum(whole, axis=dim, keepdims=True)
                if np.array_equal(np.isfinite(got), np.isfinite(whole)):
                    raise CheckFailed(
                        "the output has inf or NaN where rows lie far below the largest value: you "
                        "subtracted the maximum of the whole tensor, so those rows underflow to 0 / 0. "
                        "Subtract the maximum along `dim` (one per row, with keepdim=True).")
                raise CheckFailed(
                    "the output has inf or NaN: exp overflows float32 above about 88 and "
                    "underflows to 0 below about -103. Subtract the maximum along `dim` (one per "
                    "row, with keepdim=True) before exp.")
            if np.isneginf(x_np).any():
                raise CheckFailed(
                    "the output has NaN where the input has -inf (masked positions should get "
                    "probability exactly 0): avoid arithmetic such as 0 * (-inf) or -inf - (-inf).")
            raise CheckFailed("the output contains inf or NaN")
        masked = np.isneginf(x_np)
        if masked.any() and np.any(got[masked] != 0):
            raise CheckFailed(f"where the input is -inf the output should be exactly 0 (got values up to "
                              f"{float(np.max(got[masked])):.3g}): a masked position gets no probability; "
                              "leave -inf as it is, exp(-inf) is 0.")
        for other in range(x_np.ndim):
            if other % x_np.ndim != dim % x_np.ndim and close(
                    got, softmax_oracle(x_np, other), rtol=RTOL, atol=ATOL):
                raise CheckFailed(
                    f"you normalised over dimension {other}, but softmax was asked for "
                    f"dim={dim}{'' if call_dim_given else ' (the default, -1)'}. Use the `dim` "
                    "argument in your max and sum.")
        with np.errstate(all="ignore"):
            log_softmax = x_np - np.log(np.sum(np.exp(x_np - np.max(x_np, axis=dim, keepdims=True)),
                                               axis=dim, keepdims=True)) - np.max(x_np, axis=dim, keepdims=True)
            if close(got, log_softmax, rtol=RTOL, atol=1e-5):
                raise CheckFailed("this is log-softmax (x minus its logsumexp): softmax is its exponential, "
                                  "values in [0, 1] that sum to 1 along `dim`.")
            for other in range(x_np.ndim):
                if other % x_np.ndim == dim % x_np.ndim:
                    continue
                shifted = np.exp(x_np - np.max(x_np, axis=other, keepdims=True))
                if close(got, shifted / np.sum(shifted, axis=dim, keepdims=True), rtol=RTOL, atol=ATOL):
                    raise CheckFailed(
                        f"the maximum you subtract was taken over dimension {other}, not along dim={dim}: "
                        "a shift that changes along `dim` changes the result. Take the max with the "
                        "same `dim` (and keepdim=True) as the sum.")
        sums = got.sum(axis=dim)
        if not np.allclose(sums, 1.0, atol=1e-4):
            raise CheckFailed(
                f"values along dim={dim} should sum to 1 (got sums like {float(sums.flat[0]):.4g}): "
                "did you divide by the sum over the same dimension, with keepdim=True?")
        if (got < 0).any():
            raise CheckFailed("softmax outputs must be non-negative")
        raise CheckFailed("the output is not the softmax of the input: " + worst_difference(got, expected))
    return verify


ERRORS = {"RuntimeError": "shapes that do not broadcast: a sum (or max) over `dim` without "
                          "keepdim=True drops that dimension, so it no longer lines up with x; keep it "
                          "(keepdim=True)."}


def _case(label, x_np, dim=None):
    import torch

    x = torch.tensor(x_np, dtype=torch.float32)
    x_np = x.numpy().astype(np.float64)  # the exact float32 values the learner sees
    kwargs = {} if dim is None else {"dim": dim}
    return Case(label=label, args=(x,), kwargs=kwargs,
                verify=_verify(x_np, -1 if dim is None else dim, dim is not None), errors=ERRORS)


def _masked(rng, n):
    x = rng.normal(size=(n, n))
    x[np.triu_indices(n, k=1)] = -np.inf
    return x


@register("softmax", "values, large inputs, -inf entries, every dim", rules={
    "sums to 1": ["a (2, 5) input, default dim", "a 1-D input", "a single element"],
    "along dim": ["a (3, 4, 6) input, dim=1", "dim=0", "a (5, 3, 2) input, dim=0", "dim=-2",
                  "slices far apart, dim=1", "a (1, 7, 1) input, dim=1"],
    "large inputs": ["large inputs near 1000", "rows on very different scales", "large negative inputs",
                     "a wide spread of values"],
    "masked entries": ["-inf entries (a causal mask)", "-inf entries, batched"],
    "float32 in, float32 out": ["a (2, 5) input, default dim"],
    "input unchanged": ["a (2, 5) input, default dim", "a (5, 3, 2) input, dim=0"],
})
def softmax_cases(rng: np.random.Generator, hidden: bool) -> list[Case]:
    if not hidden:
        return [
            _case("a (2, 5) input, default dim", rng.normal(size=(2, 5))),
            _case("a (3, 4, 6) input, dim=1", rng.normal(size=(3, 4, 6)), dim=1),
            _case("large inputs near 1000", rng.normal(size=(2, 7)) * 10 + 1000),
            _case("-inf entries (a causal mask)", _masked(rng, 4)),
            _case("rows on very different scales", rng.normal(size=(3, 5)) + np.array([[0.0], [150.0], [-150.0]])),
            _case("a single element", rng.normal(size=(1, 1))),
            _case("dim=0", rng.normal(size=(4, 3)) * 3, dim=0),
        ]
    return [
        _case("a (5, 3, 2) input, dim=0", rng.normal(size=(5, 3, 2)) * 2, dim=0),
        _case("a 1-D input", rng.normal(size=(9,)) * 4),
        _case("large negative inputs", rng.normal(size=(3, 6)) * 5 - 900),
        _case("a wide spread of values", rng.uniform(-400, 400, size=(2, 3, 8))),
        _case("slices far apart, dim=1", rng.normal(size=(4, 2, 3)) * 2
              + np.array([-200.0, 0.0, 200.0, 60.0])[:, None, None], dim=1),
        _case("-inf entries, batched", np.stack([_masked(rng, 5), _masked(rng, 5)]), dim=-1),
        _case("dim=-2", rng.normal(size=(2, 6, 3)), dim=-2),
        _case("a (1, 7, 1) input, dim=1", rng.normal(size=(1, 7, 1)) * 50 + 300, dim=1),
    ]
