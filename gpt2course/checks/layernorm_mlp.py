"""Checks for notebook 05's ``LayerNorm``, ``gelu`` and ``MLP``."""

from __future__ import annotations

import math

import numpy as np

from .core import Case, CheckFailed, register, to_numpy
from .core import worst_difference
from .layers import (construction_case, eval_dropout_case, expect_grads, explain, expect_parameters, matches, module_case,
                     oracle_case, oracle_run, require_output, tensor)

# ---- LayerNorm -------------------------------------------------------------------------------

# E[x^2] - E[x]^2 loses ~1e-4 relative to float32 cancellation on these inputs; every real mistake
# (eps placement, variance, default eps, axes) is off by 1e-2 or more.
LN_RTOL, LN_ATOL = 1e-3, 1e-4


def _ln_numpy(x, w, b, eps, *, ddof=0, eps_outside=False, axis=-1):
    mean = x.mean(axis=axis, keepdims=True)
    var = x.var(axis=axis, keepdims=True, ddof=ddof)
    denom = np.sqrt(var) + eps if eps_outside else np.sqrt(var + eps)
    return (x - mean) / denom * w + b


def _ln_mistakes(x, w, b, eps):
    n = x.shape[-1]
    mean, var = x.mean(axis=-1, keepdims=True), x.var(axis=-1, keepdims=True)
    return [
        ("is eps inside the square root? Divide by sqrt(var + eps), not sqrt(var) + eps.",
         lambda: _ln_numpy(x, w, b, eps, eps_outside=True)),
        (f"use the population variance (divide by n = {n}, torch's var(..., unbiased=False) or "
         "correction=0), as GPT-2 does; torch.var divides by n - 1 by default.",
         lambda: _ln_numpy(x, w, b, eps, ddof=1)),
        ("torch.var_mean returns (var, mean), in that order: var, mean = torch.var_mean(...) "
         "(the mean was used as the variance and the variance as the mean).",
         lambda: (x - var) / np.sqrt(mean + eps) * w + b),
        ("normalise over the last dimension only (each vector on its own), not over the whole "
         "tensor.", lambda: ((x - x.mean()) / np.sqrt(x.var() + eps)) * w + b),
        *[(f"normalise over the last dimension (dim=-1: each vector on its own), not over dimension "
           f"{axis}.", (lambda axis=axis: _ln_numpy(x, w, b, eps, axis=axis)))
          for axis in range(x.ndim - 1)],
        ("the mean is not subtracted (this is RMSNorm): LayerNorm centres each vector first, "
         "(x - mean) / sqrt(var + eps).",
         lambda: x / np.sqrt((x * x).mean(axis=-1, keepdims=True) + eps) * w + b),
        ("weight should multiply and bias should be added after normalising: (x - mean) / "
         "sqrt(var + eps) * weight + bias.", lambda: _ln_numpy(x, 1.0, 0.0, eps) * b + w),
        ("weight and bias are missing from the result (multiply by self.weight, add self.bias).",
         lambda: _ln_numpy(x, 1.0, 0.0, eps)),
        ("divide by the standard deviation sqrt(var + eps), not by the variance.",
         lambda: (x - mean) / (var + eps) * w + b),
        ("eps is missing (or 0): use the eps argument, default 1e-5 (GPT-2's).",
         lambda: _ln_numpy(x, w, b, 0.0)),
        *[(f"eps should be the given value ({eps:g}; 1e-5 by default, GPT-2's), not {other:g}.",
           (lambda other=other: _ln_numpy(x, w, b, other)))
          for other in (1e-12, 1e-8, 1e-6, 1e-5, 1e-3) if other != eps],
        (f"two things: use the population variance (divide by n = {n}; torch.std and torch.var "
         "divide by n - 1 by default), and put eps inside the square root, sqrt(var + eps).",
         lambda: _ln_numpy(x, w, b, eps, ddof=1, eps_outside=True)),
    ]


LN_NAN = (" It contains NaN where the expected values are finite: the square root of a negative "
          "number? What goes under the root is the variance plus eps, which is never negative.")

LN_ERRORS = {"RuntimeError": "shapes that do not broadcast: did you take the mean or the variance "
                             "without keepdim=True? x.mean(dim=-1, keepdim=True) keeps a size-1 last "
                             "dimension that lines up with x."}


def _ln_oracle(eps, detach=()):
    """F.layer_norm's computation; with ``detach`` ("mean", "var"), those statistics are
    constants for autograd (the gradient a learner gets computing them under no_grad)."""
    def run(p, x):
        import torch
        import torch.nn.functional as F
        if not detach:
            return F.layer_norm(x, (x.shape[-1],), p["weight"], p["bias"], eps)
        mean = x.mean(dim=-1, keepdim=True)
        var = x.var(dim=-1, keepdim=True, unbiased=False)
        mean = mean.detach() if "mean" in detach else mean
        var = var.detach() if "var" in detach else var
        return (x - mean) / torch.sqrt(var + eps) * p["weight"] + p["bias"]
    return run


def _ln_parameters_case(label, n) -> Case:
    """LayerNorm(n) as the learner builds it: its parameters, before anything runs."""
    def verify(report):
        if not report["parameters"]:
            raise CheckFailed("it has no parameters at all: weight and bias must be "
                              "nn.Parameter(torch.ones(n_embd)) and nn.Parameter(torch.zeros(n_embd)) "
                              "(a plain tensor attribute is not loaded, saved or trained).")
        shapes = {name: tuple(shape) for name, shape in report["parameters"].items()}
        if set(shapes) == {"weight", "bias"} and shapes != {"weight": (n,), "bias": (n,)}:
            raise CheckFailed(f"weight and bias should have shape (n_embd,) = ({n},), one value per "
                              f"channel; they have shapes {shapes['weight']} and {shapes['bias']}: "
                              "make them from n_embd, torch.ones(n_embd) and torch.zeros(n_embd).")
        expect_parameters(report, {"weight": (n,), "bias": (n,)})
    return module_case(label, (n,), None, [], verify, errors=LN_ERRORS)


def _ln_case(rng, label, shape, *, eps=None, scale=1.0, shift=0.0, grad_seed=None, loaded=True):
    import torch

    n = shape[-1]
    x = tensor(rng, *shape, scale=scale, shift=shift)
    init_kwargs = {} if eps is None else {"eps": eps}
    true_eps = 1e-5 if eps is None else eps
    if loaded:
        state = {"weight": tensor(rng, n, scale=0.5, shift=1.0), "bias": tensor(rng, n, scale=0.5)}
    else:  # the module's own initial values must be weight = 1, bias = 0
        state = {"weight": torch.ones(n), "bias": torch.zeros(n)}
    expected, grads = oracle_run(_ln_oracle(true_eps), state, [(x,)], grad_seed)
    wn, bn = state["weight"].double().numpy(), state["bias"].double().numpy()
    mistakes = _ln_mistakes(x.double().numpy(), wn, bn, true_eps)

    def compare(report):
        got = require_output(report["outputs"][0], tuple(shape))
        explain(got, expected[0], mistakes, rtol=LN_RTOL, atol=LN_ATOL, nan_hint=LN_NAN)

    if not loaded:
        def verify(report):
            expect_parameters(report, {"weight": (n,), "bias": (n,)})
            initial = report.get("initial") or {}
            w0, b0 = (to_numpy(initial[k]) if k in initial else None for k in ("weight", "bias"))
            if w0 is None or not np.array_equal(w0, np.ones(n)) or not np.array_equal(b0, np.zeros(n)):
                raise CheckFailed("weight should start as ones and bias as zeros (so a new "
                                  "LayerNorm only normalises): torch.ones(n_embd), torch.zeros(n_embd).")
            compare(report)
        return module_case(label, (n,), None, [(x,)], verify, init_kwargs=init_kwargs,
                           expect={"weight": (n,), "bias": (n,)}, errors=LN_ERRORS)

    def verify(report):
        expect_parameters(report, {"weight": (n,), "bias": (n,)})
        compare(report)
        if grads:
            if not report.get("grads"):
                raise CheckFailed("no gradients were reported")
            try:
                expect_grads(report["grads"][0], grads[0], ["the input"])
            except CheckFailed as failure:
                got = report["grads"][0]["inputs"][0]
                if "with respect to the input" in str(failure) and got is not None:
                    for detach in (("mean", "var"), ("mean",), ("var",)):
                        alt = oracle_run(_ln_oracle(true_eps, detach), state, [(x,)], grad_seed)[1][0][0][0]
                        if matches(to_numpy(got), alt, rtol=1e-3, atol=1e-4):
                            raise CheckFailed(
                                f"the output is right, but the gradient with respect to the input treats "
                                f"{' and '.join(detach)} as constants: compute the statistics from x with "
                                "autograd on (no torch.no_grad(), .detach(), .data or .item() around "
                                "them); their gradient is part of LayerNorm's.") from None
                raise
    return module_case(label, (n,), state, [(x,)], verify, init_kwargs=init_kwargs, grad_seed=grad_seed,
                       errors=LN_ERRORS)


_LN_VALUES = ["a new LayerNorm(6) on (4, 6)", "(2, 3, 8) with loaded weight and bias",
              "a new LayerNorm(9) on (2, 5, 9)", "(3, 7, 10), loaded"]


@register("LayerNorm", "against F.layer_norm: initial values, eps, population variance, gradients", rules={
    "parameters": ["a new LayerNorm(6): parameters", "a new LayerNorm(9): parameters"],
    "initial values": ["a new LayerNorm(6) on (4, 6)", "a new LayerNorm(9) on (2, 5, 9)"],
    "each vector on its own": [*_LN_VALUES, "n_embd=3, T=1"],
    "population variance": ["a new LayerNorm(6) on (4, 6)", "n_embd=4 (population or sample variance?)",
                            "n_embd=3, T=1"],
    "eps inside the root": ["eps=0.5 with a small spread (is eps inside the square root?)",
                            "eps=1.0, small spread"],
    "eps value": ["eps=0.5 with a small spread (is eps inside the square root?)",
                  "nearly constant vectors: the default eps=1e-5 matters", "eps=1.0, small spread",
                  "nearly constant vectors, default eps"],
    "scale and shift": ["(2, 3, 8) with loaded weight and bias", "(3, 7, 10), loaded"],
    "input unchanged": ["a new LayerNorm(6) on (4, 6)", "(2, 3, 8) with loaded weight and bias"],
    "gradients": ["gradients", "eps=1e-3, gradients"],
})
def layernorm_cases(rng: np.random.Generator, hidden: bool):
    seed = int(rng.integers(0, 2**31))
    if not hidden:
        return [
            _ln_parameters_case("a new LayerNorm(6): parameters", 6),
            _ln_case(rng, "a new LayerNorm(6) on (4, 6)", (4, 6), loaded=False, scale=2.0, shift=1.0),
            _ln_case(rng, "(2, 3, 8) with loaded weight and bias", (2, 3, 8), scale=3.0, shift=-2.0),
            _ln_case(rng, "eps=0.5 with a small spread (is eps inside the square root?)", (3, 5),
                     eps=0.5, scale=0.4, shift=2.0),
            _ln_case(rng, "n_embd=4 (population or sample variance?)", (2, 4), scale=1.5),
            _ln_case(rng, "nearly constant vectors: the default eps=1e-5 matters", (2, 2, 6),
                     scale=1e-3, shift=0.05),
            _ln_case(rng, "gradients", (2, 3, 7), grad_seed=seed, scale=2.0),
        ]
    return [
        _ln_parameters_case("a new LayerNorm(9): parameters", 9),
        _ln_case(rng, "a new LayerNorm(9) on (2, 5, 9)", (2, 5, 9), loaded=False, scale=4.0),
        _ln_case(rng, "(3, 7, 10), loaded", (3, 7, 10), scale=0.5, shift=3.0),
        _ln_case(rng, "eps=1.0, small spread", (2, 3, 6), eps=1.0, scale=0.6),
        _ln_case(rng, "n_embd=3, T=1", (1, 1, 3), scale=2.0),
        _ln_case(rng, "nearly constant vectors, default eps", (3, 8), scale=2e-3, shift=-0.02),
        _ln_case(rng, "eps=1e-3, gradients", (2, 2, 5), eps=1e-3, grad_seed=seed + 1, scale=0.3),
    ]


# ---- gelu ------------------------------------------------------------------------------------

def gelu_tanh(x):
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


def _gelu_mistakes(x):
    from math import erf
    return [
        ("this is the exact (erf) GELU; GPT-2 uses the tanh approximation "
         "0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x**3))).",
         lambda: 0.5 * x * (1.0 + np.vectorize(erf)(x / math.sqrt(2.0)))),
        ("this is the sigmoid approximation x * sigmoid(1.702 x); GPT-2 uses the tanh form.",
         lambda: x / (1.0 + np.exp(-1.702 * x))),
        ("this is ReLU; GELU is smooth: 0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x**3))).",
         lambda: np.maximum(x, 0.0)),
        ("the factor 0.5 is missing.", lambda: 2 * gelu_tanh(x)),
        ("inside tanh it is sqrt(2 / pi) * (x + 0.044715 * x**3): check the constant and the cube.",
         lambda: 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**2)))),
        ("the factor is sqrt(2 / pi), not sqrt(2 * pi).",
         lambda: 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 * math.pi) * (x + 0.044715 * x**3)))),
        ("the factor is the square root of 2 / pi, not 2 / pi itself.",
         lambda: 0.5 * x * (1.0 + np.tanh(2.0 / math.pi * (x + 0.044715 * x**3)))),
        ("0.5 * (1 + tanh(z)) equals sigmoid(2 * z): the factor 2 inside the sigmoid is missing.",
         lambda: x / (1.0 + np.exp(-math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))),
        ("a bracket closes too early: this is 0.5 * x + tanh(...), but the whole (1 + tanh(...)) "
         "multiplies 0.5 * x: 0.5 * x * (1 + tanh(...)).",
         lambda: 0.5 * x + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3))),
    ]


GELU_RTOL, GELU_ATOL = 3e-6, 1e-6  # float32 forms of the formula stay within ~7e-7 absolute

GELU_NAN = (" It has NaN where the expected values are finite: for large x, an exp written out by "
            "hand overflows float32 (above about 88) to inf, and inf / inf is NaN. torch.tanh (or "
            "torch.sigmoid) stays finite.")

_ELEMENTWISE = ("gelu should work elementwise on a tensor of any shape: use torch functions on the "
                "whole tensor (torch.tanh, x ** 3), not Python's math functions or a loop over its "
                "elements.")
GELU_ERRORS = {"TypeError": _ELEMENTWISE, "ValueError": _ELEMENTWISE}


def _gelu_constants(got, x):
    """A message naming a wrong constant when ``got`` is 0.5 x (1 + tanh(a (x + b x^3))) for
    other a or b than GPT-2's (fitted where tanh can be inverted); else None."""
    with np.errstate(all="ignore"):
        keep = (np.abs(x) > 0.2) & (np.abs(x) < 3.0)
        r = 2.0 * got[keep] / x[keep] - 1.0
        xs = x[keep][np.abs(r) < 0.99]  # where float32 rounding leaves tanh invertible
        r = r[np.abs(r) < 0.99]
        if xs.size < 8:
            return None
        z = np.arctanh(r)
        basis = np.stack([xs, xs**3], axis=1)
        (a, ab), *_ = np.linalg.lstsq(basis, z, rcond=None)
        if not np.all(np.abs(basis @ [a, ab] - z) < 1e-3 + 1e-3 * np.abs(z)):
            return None  # not of that form at all
    b = ab / a if a else float("nan")
    want_a, want_b = math.sqrt(2.0 / math.pi), 0.044715
    if abs(a - want_a) > 1e-3 * want_a:
        return (f"the factor in front of (x + 0.044715 * x**3) looks like {a:.5g}; it should be "
                f"sqrt(2 / pi) = {want_a:.5g}: check that constant.")
    if abs(b - want_b) > 1e-3 * want_b:
        return (f"the constant of the cube looks like {b:.5g}; it should be 0.044715: "
                "(x + 0.044715 * x**3).")
    return None


def _gelu_case(label, x) -> Case:
    import torch.nn.functional as F

    xn = x.double().numpy()
    expected = F.gelu(x.double(), approximate="tanh").numpy()

    def verify(output):
        got = require_output(output, tuple(x.shape))
        try:
            explain(got, expected, _gelu_mistakes(xn), rtol=GELU_RTOL, atol=GELU_ATOL, scaled=False,
                    nan_hint=GELU_NAN)
        except CheckFailed as failure:
            if "differs from the expected" not in str(failure):
                raise
            if matches(got, expected, rtol=1e-3, atol=1e-5):
                raise CheckFailed(
                    "the output is close but not within float32 rounding of GPT-2's GELU "
                    f"({worst_difference(got, expected)}): use the constants exactly as written, "
                    "math.sqrt(2 / math.pi) and 0.044715, not rounded ones.") from None
            wrong_constant = _gelu_constants(got, xn)
            if wrong_constant:
                raise CheckFailed(f"the output is wrong ({worst_difference(got, expected)}): "
                                  f"{wrong_constant}") from None
            raise
    return Case(label=label, args=(x,), verify=verify, errors=GELU_ERRORS)


_GELU_VISIBLE = ["1201 values from -6 to 6", "a (2, 3, 4) tensor", "large values", "one value"]
_GELU_HIDDEN = ["x from -5 to 5, (10, 100)", "a (3, 1, 7) tensor", "values up to +-50", "tiny values"]


@register("gelu", "against F.gelu(approximate='tanh') from -50 to 50, any shape", rules={
    "tanh form": _GELU_VISIBLE + _GELU_HIDDEN,
    "the formula's constants": ["1201 values from -6 to 6", "x from -5 to 5, (10, 100)"],
    "large values": ["large values", "values up to +-50"],
    "any shape": ["a (2, 3, 4) tensor", "one value", "x from -5 to 5, (10, 100)", "a (3, 1, 7) tensor"],
    "input unchanged": _GELU_VISIBLE + _GELU_HIDDEN,
})
def gelu_cases(rng: np.random.Generator, hidden: bool):
    import torch

    if not hidden:
        return [
            _gelu_case("1201 values from -6 to 6", torch.linspace(-6, 6, 1201)),
            _gelu_case("a (2, 3, 4) tensor", tensor(rng, 2, 3, 4, scale=2.0)),
            _gelu_case("large values", torch.cat([torch.tensor([-50.0, -20.0, 20.0, 50.0]),
                                                  tensor(rng, 6, scale=30.0)])),
            _gelu_case("one value", tensor(rng, 1, scale=2.5)),
        ]
    return [
        _gelu_case("x from -5 to 5, (10, 100)", torch.linspace(-5, 5, 1000).reshape(10, 100)),
        _gelu_case("a (3, 1, 7) tensor", tensor(rng, 3, 1, 7, scale=3.0)),
        _gelu_case("values up to +-50", torch.cat([torch.tensor([-45.0, 45.0]), tensor(rng, 22, scale=25.0)]).reshape(4, 6)),
        _gelu_case("tiny values", tensor(rng, 8, scale=1e-3)),
    ]


# ---- MLP -------------------------------------------------------------------------------------

def _mlp_oracle(p, x):
    import torch.nn.functional as F
    h = F.gelu(F.linear(x, p["c_fc.weight"], p["c_fc.bias"]), approximate="tanh")
    return F.linear(h, p["c_proj.weight"], p["c_proj.bias"])


def _mlp_mistakes(state, x):
    from math import erf
    p = {n: v.double().numpy() for n, v in state.items()}
    xn = x.double().numpy()
    pre = xn @ p["c_fc.weight"].T + p["c_fc.bias"]
    out = lambda h: h @ p["c_proj.weight"].T + p["c_proj.bias"]  # noqa: E731
    return [
        ("the activation is the exact (erf) GELU; GPT-2 uses the tanh approximation "
         "(F.gelu(x, approximate='tanh'), or your gelu).",
         lambda: out(0.5 * pre * (1.0 + np.vectorize(erf)(pre / math.sqrt(2.0))))),
        ("the activation is ReLU; GPT-2's MLP uses GELU (tanh form).", lambda: out(np.maximum(pre, 0))),
        ("there is no activation between c_fc and c_proj: apply GELU (tanh form) to c_fc's output.",
         lambda: out(pre)),
        ("apply GELU between the layers, not after c_proj.",
         lambda: gelu_tanh(pre @ p["c_proj.weight"].T + p["c_proj.bias"])),
        ("the activation is tanh; GPT-2's MLP uses GELU (tanh form).", lambda: out(np.tanh(pre))),
        ("return the MLP's output only: the residual connection (x + ...) belongs to the block "
         "(notebook 06), not to the MLP.", lambda: xn + out(gelu_tanh(pre))),
        ("apply GELU between the layers, to c_fc's output, not to the input before c_fc.",
         lambda: out(gelu_tanh(xn) @ p["c_fc.weight"].T + p["c_fc.bias"])),
        ("apply GELU once, between the layers: here it is after c_proj too.",
         lambda: gelu_tanh(out(gelu_tanh(pre)))),
        ("the activation is the sigmoid approximation x * sigmoid(1.702 x); GPT-2's MLP uses the "
         "tanh form of GELU.", lambda: out(pre / (1.0 + np.exp(-1.702 * pre)))),
    ]


def _mlp_case(rng, label, n_embd, B, T, *, grad_seed=None, loaded=True):
    x = tensor(rng, B, T, n_embd)
    parameters = {"c_fc.weight": (4 * n_embd, n_embd), "c_fc.bias": (4 * n_embd,),
                  "c_proj.weight": (n_embd, 4 * n_embd), "c_proj.bias": (n_embd,)}
    if not loaded:
        return construction_case(label, (n_embd,), parameters, x, (B, T, n_embd))
    # Pre-activations spread over about -3..3, where exact and tanh GELU differ most.
    state = {"c_fc.weight": tensor(rng, 4 * n_embd, n_embd, scale=1.6 / math.sqrt(n_embd)),
             "c_fc.bias": tensor(rng, 4 * n_embd, scale=0.5),
             "c_proj.weight": tensor(rng, n_embd, 4 * n_embd, scale=1.0),
             "c_proj.bias": tensor(rng, n_embd, scale=0.1)}
    return oracle_case(label, (n_embd,), state, x, _mlp_oracle, lambda: _mlp_mistakes(state, x),
                       (B, T, n_embd), grad_seed=grad_seed)


def _mlp_dropout_case(rng, label, n_embd, B, T) -> Case:
    """MLP(n_embd, dropout=0.5) (where it takes a dropout) in eval mode: twice the same output."""
    x = tensor(rng, B, T, n_embd)
    state = {"c_fc.weight": tensor(rng, 4 * n_embd, n_embd, scale=1.6 / math.sqrt(n_embd)),
             "c_fc.bias": tensor(rng, 4 * n_embd, scale=0.5),
             "c_proj.weight": tensor(rng, n_embd, 4 * n_embd, scale=1.0),
             "c_proj.bias": tensor(rng, n_embd, scale=0.1)}
    return eval_dropout_case(label, (n_embd,), state, x, _mlp_oracle, lambda: _mlp_mistakes(state, x),
                             (B, T, n_embd))


_MLP_VALUES = ["n_embd=8, batch 2, T=5", "T=1", "n_embd=12, batch 3, T=7", "n_embd=3, T=1"]


@register("MLP", "parameters c_fc (4x wider) and c_proj, GELU in tanh form, gradients, no dropout in eval mode", helpers=("gelu",),
          rules={
    "parameters": ["n_embd=8: parameters", "n_embd=5: parameters"],
    "gelu, tanh form": _MLP_VALUES,
    "c_fc, gelu, c_proj": _MLP_VALUES,
    "gradients": ["gradients", "n_embd=10, gradients"],
    "no dropout in eval mode": ["dropout 0.5, eval mode: two calls", "dropout 0.5, eval mode: two calls, n_embd=6"],
})
def mlp_cases(rng: np.random.Generator, hidden: bool):
    seed = int(rng.integers(0, 2**31))
    if not hidden:
        return [
            _mlp_case(rng, "n_embd=8: parameters", 8, 2, 3, loaded=False),
            _mlp_case(rng, "n_embd=8, batch 2, T=5", 8, 2, 5),
            _mlp_case(rng, "T=1", 6, 3, 1),
            _mlp_case(rng, "gradients", 8, 2, 3, grad_seed=seed),
            _mlp_dropout_case(rng, "dropout 0.5, eval mode: two calls", 8, 2, 5),
        ]
    return [
        _mlp_case(rng, "n_embd=5: parameters", 5, 1, 2, loaded=False),
        _mlp_case(rng, "n_embd=12, batch 3, T=7", 12, 3, 7),
        _mlp_case(rng, "n_embd=3, T=1", 3, 1, 1),
        _mlp_case(rng, "n_embd=10, gradients", 10, 2, 4, grad_seed=seed + 1),
        _mlp_dropout_case(rng, "dropout 0.5, eval mode: two calls, n_embd=6", 6, 3, 4),
    ]
