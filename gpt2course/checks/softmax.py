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
                raise CheckFailed(
                    "the output has inf or NaN: exp overflows float32 above about 88 and "
                    "underflows to 0 below about -103. Subtract the maximum along `dim` (one per "
                    "row, with keepdim=True), not the maximum of the whole tensor.")
            if np.isneginf(x_np).any():
                raise CheckFailed(
                    "the output has NaN where the input has -inf (masked positions should get "
                    "probability exactly 0): avoid arithmetic such as 0 * (-inf) or -inf - (-inf).")
            raise CheckFailed("the output contains inf or NaN")
        for other in range(x_np.ndim):
            if other % x_np.ndim != dim % x_np.ndim and close(
                    got, softmax_oracle(x_np, other), rtol=RTOL, atol=ATOL):
                raise CheckFailed(
                    f"you normalised over dimension {other}, but softmax was asked for "
                    f"dim={dim}{'' if call_dim_given else ' (the default, -1)'}. Use the `dim` "
                    "argument in your max and sum.")
        sums = got.sum(axis=dim)
        if not np.allclose(sums, 1.0, atol=1e-4):
            raise CheckFailed(
                f"values along dim={dim} should sum to 1 (got sums like {float(sums.flat[0]):.4g}): "
                "did you divide by the sum over the same dimension, with keepdim=True?")
        if (got < 0).any():
            raise CheckFailed("softmax outputs must be non-negative")
        raise CheckFailed("the output is not the softmax of the input: " + worst_difference(got, expected))
    return verify


def _case(label, x_np, dim=None):
    import torch

    x = torch.tensor(x_np, dtype=torch.float32)
    x_np = x.numpy().astype(np.float64)  # the exact float32 values the learner sees
    kwargs = {} if dim is None else {"dim": dim}
    return Case(label=label, args=(x,), kwargs=kwargs,
                verify=_verify(x_np, -1 if dim is None else dim, dim is not None))


def _masked(rng, n):
    x = rng.normal(size=(n, n))
    x[np.triu_indices(n, k=1)] = -np.inf
    return x


@register("softmax", "values, large inputs, -inf entries, every dim")
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
