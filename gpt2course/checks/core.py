"""The machinery every exercise check shares.

A check is written once, as data: ``cases(rng, hidden)`` builds a list of ``Case`` objects, each
holding the inputs (made from the check's own seeded generator, never the global RNG) and a
``verify`` function that compares the learner's output with an independent oracle and raises
``CheckFailed`` with a message in the learner's terms. ``run_check`` calls the learner's code on
every case; the same cases can be fed to learner code running in another process, with only
plain data crossing back, and verified by trusted code.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any, Callable

import numpy as np


class CheckFailed(AssertionError):
    """The learner's code gave a wrong answer; the message says what is probably wrong."""


@dataclasses.dataclass
class Case:
    label: str                                # what this case exercises, shown on failure
    args: tuple = ()
    kwargs: dict = dataclasses.field(default_factory=dict)
    verify: Callable[[Any], None] = lambda output: None
    # How to call the learner's object; the default is fn(*args, **kwargs).
    call: Callable[[Callable, "Case"], Any] | None = None

    def run(self, fn: Callable) -> Any:
        if self.call is not None:
            return self.call(fn, self)
        return fn(*self.args, **self.kwargs)


@dataclasses.dataclass
class CheckSpec:
    name: str
    cases: Callable[[np.random.Generator, bool], list[Case]]
    what: str  # a short description shown when everything passes


REGISTRY: dict[str, CheckSpec] = {}


def register(name: str, what: str):
    def wrap(cases):
        REGISTRY[name] = CheckSpec(name=name, cases=cases, what=what)
        return cases
    return wrap


def build_cases(name: str, *, seed: int = 0, hidden: bool = False) -> list[Case]:
    """The cases of exercise ``name`` for a seed; hidden cases use other shapes and values."""
    spec = REGISTRY[name]
    rng = np.random.default_rng([seed, 1 if hidden else 0, _stable_hash(name)])
    return spec.cases(rng, hidden)


def _stable_hash(text: str) -> int:
    return sum((i + 1) * ord(c) for i, c in enumerate(text)) % (2**31)


def _snapshot(value):
    try:
        import torch
        if isinstance(value, torch.Tensor):
            return value.detach().clone()
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    return copy.deepcopy(value)


def _same(a, b) -> bool:
    import torch
    if isinstance(a, torch.Tensor):
        return (isinstance(b, torch.Tensor) and a.shape == b.shape
                and bool(np.array_equal(to_numpy(a), to_numpy(b), equal_nan=True)))
    return a == b


def run_case(fn: Callable, case: Case, name: str) -> None:
    before = [_snapshot(a) for a in case.args]
    try:
        output = case.run(fn)
    except NotImplementedError:
        raise CheckFailed(
            f"{name} is not implemented yet: replace `raise NotImplementedError()` in its cell "
            "with your code, run that cell, then run this one again.") from None
    for i, (old, new) in enumerate(zip(before, case.args)):
        if not _same(old, new):
            raise CheckFailed(
                f"{name} changed its input (argument {i + 1}) in place [{case.label}]. Build a "
                "new result instead of modifying the argument (avoid in-place operations such "
                "as `x -= ...`, `x.sub_(...)` or `ids.append(...)` on the input).")
    try:
        case.verify(output)
    except CheckFailed as failure:
        raise CheckFailed(f"{name} [{case.label}]: {failure}") from None


def run_check(name: str, fn: Callable, *, seed: int = 0, hidden: bool = False,
              quiet: bool = False) -> int:
    """Run every case of exercise ``name`` on ``fn``; raise CheckFailed on the first failure.

    Returns the number of cases that passed.
    """
    if name not in REGISTRY:
        raise KeyError(f"no checks for {name!r}; known: {', '.join(sorted(REGISTRY))}")
    if not callable(fn):
        raise CheckFailed(f"{name} should be a function (or class), got {type(fn).__name__}. "
                          "Did you run the cell that defines it?")
    cases = build_cases(name, seed=seed, hidden=hidden)
    for case in cases:
        run_case(fn, case, name)
    if not quiet:
        print(f"\u2714 {name}: all {len(cases)} {'hidden ' if hidden else ''}checks passed "
              f"({REGISTRY[name].what})")
    return len(cases)


# ---- helpers the checks use to compare -----------------------------------------------------

def to_numpy(value) -> np.ndarray:
    """A float64/int64 NumPy copy of a tensor-like learner output."""
    import torch
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        if value.dtype == torch.bfloat16:
            value = value.float()
        return np.array(value.numpy(), copy=True)
    return np.asarray(value)


def require_tensor(output, shape: tuple, *, what: str = "the output") -> np.ndarray:
    import torch
    if not isinstance(output, torch.Tensor):
        raise CheckFailed(f"{what} should be a torch.Tensor, got {type(output).__name__}")
    if tuple(output.shape) != tuple(shape):
        raise CheckFailed(f"{what} has shape {tuple(output.shape)}, expected {tuple(shape)}")
    return to_numpy(output)


def close(actual: np.ndarray, expected: np.ndarray, *, rtol: float, atol: float) -> bool:
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    if actual.shape != expected.shape:
        return False
    return bool(np.all(np.isclose(actual, expected, rtol=rtol, atol=atol, equal_nan=False)
                       | (np.isinf(expected) & (actual == expected))))


def worst_difference(actual, expected) -> str:
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    diff = np.abs(actual - expected)
    diff = np.where(np.isnan(diff), np.inf, diff)
    index = np.unravel_index(int(np.argmax(diff)), diff.shape) if diff.ndim else ()
    return (f"largest difference {float(diff[index]):.3g} at index {tuple(int(i) for i in index)} "
            f"(got {float(actual[index]):.6g}, expected {float(expected[index]):.6g})")
