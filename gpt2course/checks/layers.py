"""What the checks of module and tensor exercises share: module runs, oracles, comparisons.

A module exercise is checked by building the learner's class, loading parameter values by
GPT-2's names, running forward (and backward), and comparing with an *oracle*: the same
computation written independently with PyTorch's own functions in float64 (``F.linear``,
``F.layer_norm``, ``F.gelu``, ``F.scaled_dot_product_attention``), differentiated by autograd.
When the output is wrong, ``explain`` tries the oracles of known mistakes and names the one that
matches, in the learner's terms.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from .core import Case, CheckFailed, close, to_numpy, worst_difference
from .protocol import MODULE, ON_META, weighted_sum

# float32 rounding in these small computations stays below ~1e-6 relative; known mistakes are
# off by more than 1e-3 relative (the smallest: exact-erf GELU inside an MLP, ~2e-4 of the
# largest output, which the MLP check's inputs make visible).
RTOL, ATOL = 1e-4, 1e-5


def tensor(rng: np.random.Generator, *shape, scale: float = 1.0, shift: float = 0.0):
    """A float32 tensor of standard-normal values from the check's generator."""
    import torch
    return torch.tensor(rng.normal(size=shape) * scale + shift, dtype=torch.float32)


def ids(rng: np.random.Generator, high: int, *shape):
    import torch
    return torch.tensor(rng.integers(0, high, size=shape), dtype=torch.long)


def edge_ids(rng: np.random.Generator, high: int, *shape):
    """Random ids like ``ids``, with the edge values planted so that no case depends on luck to
    hold them: the first id is 0 and the last is ``high - 1`` (a loss that ignores id 0, or an
    embedding one row short, always shows)."""
    out = ids(rng, high, *shape)
    flat = out.view(-1)
    flat[0] = 0
    if flat.numel() > 1:
        flat[-1] = high - 1
    return out


def module_case(label: str, init_args: tuple, state: dict | None, inputs: list, verify,
                *, init_kwargs: dict | None = None, grad_seed: int | None = None,
                init_seed: int = 0, errors: dict | None = None, expect: dict | None = None,
                config: dict | None = None, optional: dict | None = None) -> Case:
    """A case that builds the learner's module with ``init_args``, loads ``state`` (None keeps
    the module's own initial values; then ``expect``, {name: shape}, is checked before forward)
    and calls it on each of ``inputs`` (a list of argument tuples). ``verify`` receives
    protocol.run_module's report. With ``config`` ({name: value}) the module is built as
    ``cls(GPTConfig(**config), *init_args)``. ``optional`` ({name: value}): keyword arguments
    passed only where the constructor names them (protocol.run_module)."""
    runs = [(list(args), {}) for args in inputs]
    expect = None if expect is None else {n: list(shape) for n, shape in expect.items()}
    return Case(label=label, args=(list(init_args), dict(init_kwargs or {}), state, runs,
                                   grad_seed, init_seed, expect, config, optional),
                kind=MODULE, verify=verify, errors=errors or {})


def meta_case(label: str, init_args: tuple, inputs: list, out_shapes: list[tuple], *,
              init_kwargs: dict | None = None, config: dict | None = None,
              errors: dict | None = None) -> Case:
    """A case that builds the learner's module, moves it to the meta device and runs it on each
    of ``inputs`` (argument tuples) moved there too (protocol.run_on_meta): every output must
    come out on that device, with the shapes ``out_shapes`` (one tuple per output tensor, for
    each input alike), and no torch call inside forward may mix it with a CPU tensor: the check
    that tensors made inside forward follow the input's device, on a machine without a GPU."""
    runs = [(list(args), {}) for args in inputs]

    def verify(report):
        for outputs in report:
            got = [(o["device"], tuple(o["shape"])) for o in outputs]
            if [g[1] for g in got] != [tuple(s) for s in out_shapes]:
                raise CheckFailed(f"on another device its outputs have shapes {[g[1] for g in got]}, "
                                  f"expected {[tuple(s) for s in out_shapes]}")
            if any(device != "meta" for device, _ in got):
                raise CheckFailed("with the model and its input on another device, the output came back "
                                  f"on {sorted({d for d, _ in got if d != 'meta'})}: make every tensor "
                                  "inside forward on the input's device (device=x.device)")

    return Case(label=label, args=(list(init_args), dict(init_kwargs or {}), runs, config),
                kind=ON_META, verify=verify, errors=errors or {})


def construction_case(label: str, init_args: tuple, parameters: dict, x, out_shape: tuple,
                      *, errors: dict | None = None) -> Case:
    """A case for the module as the learner builds it (no state loaded): exactly ``parameters``
    ({name: shape}, checked before forward) and an output of ``out_shape`` for input ``x``."""
    def verify(report):
        expect_parameters(report, parameters)
        require_output(report["outputs"][0], out_shape)
    return module_case(label, init_args, None, [(x,)], verify, errors=errors, expect=parameters)


def oracle_run(fn: Callable, state: dict, inputs: list[tuple], grad_seed: int | None):
    """Run the float64 oracle ``fn(params, *args)`` on each input: (outputs, grads) as NumPy,
    where grads[i] = (input grads, {name: param grad}) with the same output weighting as
    protocol.run_module."""
    import torch

    outputs, grads = [], []
    for args in inputs:
        params = {n: v.detach().double().requires_grad_(grad_seed is not None) for n, v in state.items()}
        args = [a.detach().double().requires_grad_(grad_seed is not None)
                if isinstance(a, torch.Tensor) and a.is_floating_point() else a for a in args]
        out = fn(params, *args)
        outputs.append(out.detach().numpy())
        if grad_seed is not None:
            weighted_sum(out, grad_seed).backward()
            grads.append(([a.grad.numpy() if isinstance(a, torch.Tensor) and a.grad is not None else None
                           for a in args],
                          {n: p.grad.numpy() for n, p in params.items()}))
    return outputs, grads


def expect_parameters(report: dict, expected: dict[str, tuple]) -> None:
    got = {n: tuple(s) for n, s in report["parameters"].items()}
    expected = {n: tuple(s) for n, s in expected.items()}
    if got == expected:
        return
    missing = [n for n in expected if n not in got]
    extra = [n for n in got if n not in expected]
    if missing or extra:
        parts = ([f"missing {', '.join(missing)}"] if missing else []) + \
                ([f"unexpected {', '.join(extra)}"] if extra else [])
        raise CheckFailed(f"its parameters should be exactly {', '.join(expected)} (GPT-2's names); "
                          + "; ".join(parts))
    wrong = [n for n in expected if got[n] != expected[n]]
    swapped = any(len(got[n]) == 2 and got[n] == expected[n][::-1] for n in wrong)
    raise CheckFailed("parameter shapes differ: " + "; ".join(f"{n} is {got[n]}, expected {expected[n]}" for n in wrong)
                      + (" (nn.Linear(in, out).weight has shape (out, in))" if swapped else ""))


def require_output(output, shape: tuple, what: str = "the output") -> np.ndarray:
    import torch
    if not isinstance(output, torch.Tensor):
        raise CheckFailed(f"{what} should be a torch.Tensor, got {type(output).__name__}")
    if tuple(output.shape) != tuple(shape):
        raise CheckFailed(f"{what} has shape {tuple(output.shape)}, expected {tuple(shape)}")
    if output.dtype != torch.float32:
        raise CheckFailed(f"{what} has dtype {output.dtype}; for float32 inputs and parameters "
                          "it should stay float32")
    return to_numpy(output)


def _scale(expected: np.ndarray) -> float:
    finite = np.abs(expected[np.isfinite(expected)])
    return max(1.0, float(finite.max())) if finite.size else 1.0


def matches(got: np.ndarray, expected: np.ndarray, *, rtol: float = RTOL, atol: float = ATOL,
            nan_equal: bool = False, scaled: bool = True) -> bool:
    """``got`` equals ``expected`` up to float32 rounding. With ``scaled``, the absolute tolerance
    grows with the largest expected magnitude (rounding in a sum is relative to its largest
    terms); without, it stays absolute (elementwise functions)."""
    got = np.asarray(got, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    if got.shape != expected.shape:
        return False
    if nan_equal:
        both = np.isnan(got) & np.isnan(expected)
        if (np.isnan(got) != np.isnan(expected)).any():
            return False
        got, expected = np.where(both, 0.0, got), np.where(both, 0.0, expected)
    return close(got, expected, rtol=rtol, atol=atol * _scale(expected) if scaled else atol)


GENERIC_NAN = (" It contains NaN where the expected values are finite: inf / inf, inf - inf or "
               "0 * inf somewhere (an exp that overflows, or a mask multiplied by -inf?).")


def explain(got: np.ndarray, expected: np.ndarray, mistakes: list[tuple[str, Callable]],
            what: str = "the output", rtol: float = RTOL, atol: float = ATOL, *,
            scaled: bool = True, nan_hint: str = GENERIC_NAN) -> None:
    """Raise CheckFailed unless ``got`` is close to ``expected``, naming the known mistakes
    (hint, lazily computed oracle output) that ``got`` matches: every one of them, when several
    give the same output (the message never picks one of two causes it cannot tell apart).
    ``scaled=False`` keeps ``atol`` absolute (for elementwise functions, whose rounding does not
    grow with the largest value)."""
    def same(a, b, nan_equal=False):
        return matches(a, b, rtol=rtol, atol=atol, nan_equal=nan_equal, scaled=scaled)

    if same(got, expected):
        return
    found = []
    for hint, alternative in mistakes:
        try:
            with np.errstate(all="ignore"):
                alt = np.asarray(alternative(), dtype=np.float64)
        except Exception:  # noqa: BLE001 - a mistake that cannot even be computed here does not match
            continue
        if same(got, alt, nan_equal=True) and hint not in found:
            found.append(hint)
    last = what.split()[-1]
    verb = "are" if last.endswith("s") and not last.endswith("ss") else "is"  # the logits, the loss
    if len(found) == 1:
        raise CheckFailed(f"{what} {verb} wrong: {found[0]}")
    if found:
        raise CheckFailed(f"{what} {verb} wrong in a way that more than one mistake gives: "
                          + " Or: ".join(found))
    extra = nan_hint if np.isnan(got).any() and not np.isnan(expected).any() else ""
    raise CheckFailed(f"{what} differs from the expected values ({worst_difference(got, expected)})."
                      + extra)


def expect_grads(report_grads: dict, expected, input_names: list[str]) -> None:
    """Compare the learner's gradients (from protocol.run_module) with the oracle's."""
    expected_inputs, expected_params = expected
    dead = [n for n, g in report_grads["parameters"].items() if n in expected_params and g is None]
    if dead:
        raise CheckFailed(f"no gradient reached {', '.join(dead)}: is every parameter used in "
                          "forward, without .data, .detach() or torch.no_grad() on the way?")
    for name, grad in report_grads["parameters"].items():
        if name not in expected_params:
            continue
        if not matches(to_numpy(grad), expected_params[name], rtol=1e-3, atol=1e-4):
            raise CheckFailed(f"the gradient of {name} is wrong ({worst_difference(to_numpy(grad), expected_params[name])}): "
                              "forward computes the right values in a way autograd cannot follow "
                              "(in-place changes of tensors autograd needs, .data, or constants "
                              "made from the parameters?)")
    for label, grad, exp in zip(input_names, report_grads["inputs"], expected_inputs):
        if exp is None:
            continue
        if grad is None:
            raise CheckFailed(f"no gradient flows back to {label}: does forward detach it?")
        if not matches(to_numpy(grad), exp, rtol=1e-3, atol=1e-4):
            raise CheckFailed(f"the gradient with respect to {label} is wrong "
                              f"({worst_difference(to_numpy(grad), exp)})")


def oracle_case(label: str, init_args: tuple, state: dict, x, oracle: Callable, mistakes: Callable[[], list],
                out_shape: tuple, *, grad_seed: int | None = None, errors: dict | None = None) -> Case:
    """The common module case: the learner's module built with ``init_args`` and loaded with
    ``state`` is called on ``x``; its output (of ``out_shape``) and, with ``grad_seed``, its
    gradients are compared with the float64 ``oracle(params, x)``, and a mismatch is explained
    with ``mistakes()`` (a list of (description, wrong output))."""
    expected, grads = oracle_run(oracle, state, [(x,)], grad_seed)
    verify = module_verify(shape_of=lambda i: out_shape, expected=expected, grads=grads or None,
                           mistakes_of=lambda i: mistakes())
    return module_case(label, init_args, state, [(x,)], verify, grad_seed=grad_seed, errors=errors)


def module_verify(*, shape_of: Callable[[int], tuple], expected: list, grads: list | None,
                  mistakes_of: Callable[[int], list], parameters: dict | None = None,
                  what: str = "the output", input_names: tuple = ("the input",),
                  rtol: float = RTOL, atol: float = ATOL):
    """A verify for module_case: parameters (if given), each output against ``expected[i]``
    (explaining mismatches with ``mistakes_of(i)``), then gradients against ``grads[i]``."""
    def verify(report):
        if parameters is not None:
            expect_parameters(report, parameters)
        for i, output in enumerate(report["outputs"]):
            got = require_output(output, shape_of(i), what)
            explain(got, expected[i], mistakes_of(i), what, rtol=rtol, atol=atol)
        if grads is not None:
            if not report.get("grads"):
                raise CheckFailed("no gradients were reported")
            for i, g in enumerate(report["grads"]):
                expect_grads(g, grads[i], list(input_names))
    return verify


EVAL_RANDOM = ("in eval mode (model.eval()) two calls on the same input gave different outputs: dropout "
               "must be off in eval mode. nn.Dropout switches itself off there; F.dropout(x, p) drops "
               "in eval mode too, because its training argument defaults to True: pass "
               "training=self.training (never training=True).")


def same_twice(first: np.ndarray, second: np.ndarray) -> None:
    """CheckFailed (EVAL_RANDOM) unless two eval-mode outputs for one input are equal."""
    if first.shape != second.shape or not np.array_equal(first, second, equal_nan=True):
        raise CheckFailed(EVAL_RANDOM)


def eval_dropout_case(label: str, init_args: tuple, state: dict, x, oracle: Callable,
                      mistakes: Callable[[], list], out_shape: tuple, *, rate: float = 0.5) -> Case:
    """Dropout off in eval mode: the learner's module, built with ``dropout=rate`` where its
    constructor takes a ``dropout`` (an answer without dropout is built as usual) and loaded with
    ``state``, runs twice on ``x`` in eval mode. Both outputs must be equal, and equal to the
    float64 ``oracle(params, x)``, which has no dropout."""
    expected, _ = oracle_run(oracle, state, [(x,)], None)

    def verify(report):
        first, second = (require_output(o, out_shape) for o in report["outputs"])
        same_twice(first, second)
        explain(first, expected[0], mistakes())
    return module_case(label, init_args, state, [(x,), (x,)], verify, optional={"dropout": rate})
