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

from .protocol import CALL, GRAD, LOAD, MODULE, RAISES, invoke
from .wire import Seeded


class CheckFailed(AssertionError):
    """The learner's code gave a wrong answer; the message says what is probably wrong.

    In a notebook it shows as that message alone, after the frames of the learner's own code
    where the learner's code raised (``_render_traceback_``, which IPython uses in place of a
    traceback): no frames of the course's checks."""

    def _render_traceback_(self) -> list[str]:
        return [*learner_frames(self.__cause__), f"CheckFailed: {self}"]


def learner_frames(exc: BaseException | None) -> list[str]:
    """The frames of ``exc``'s traceback that are the learner's code (not the course's, not a
    library's), as the lines of a traceback (IPython joins them with newlines), innermost last."""
    import traceback
    if exc is None or exc.__traceback__ is None:
        return []
    package = __file__.rsplit("/", 2)[0] + "/"  # .../gpt2course/
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if not f.filename.startswith(package) and "-packages/" not in f.filename
              and "/lib/python3" not in f.filename]
    if not frames:
        return []
    return ["Traceback of your code (most recent call last):",
            *(line.rstrip("\n") for line in traceback.format_list(frames)), f"{type(exc).__name__}: {exc}", ""]


@dataclasses.dataclass
class Call:
    """One call of the learner's function. ``Seeded(n)`` values become fresh torch.Generators.
    ``kind`` is how to call it (see protocol.invoke): a plain call or a module run."""
    args: tuple = ()
    kwargs: dict = dataclasses.field(default_factory=dict)
    kind: str = CALL


@dataclasses.dataclass
class Case:
    label: str                                # what this case exercises, shown on failure
    args: tuple = ()
    kwargs: dict = dataclasses.field(default_factory=dict)
    # Compares the output with an oracle; raises CheckFailed. With ``calls``, it receives the
    # list of outputs, one per call.
    verify: Callable[[Any], None] = lambda output: None
    calls: list[Call] | None = None           # several calls instead of fn(*args, **kwargs)
    errors: dict[str, str] = dataclasses.field(default_factory=dict)  # exception name -> hint
    kind: str = CALL                          # how args/kwargs are used (protocol.invoke)

    def all_calls(self) -> list[Call]:
        return self.calls if self.calls is not None else [Call(self.args, self.kwargs, self.kind)]


@dataclasses.dataclass
class CheckSpec:
    name: str
    cases: Callable[[np.random.Generator, bool], list[Case]]
    what: str  # a short description shown when everything passes
    # Other exercises of the same notebook that the reference answer calls: when this check
    # fails in a notebook and one of them fails its own check, the message says to fix it first.
    helpers: tuple[str, ...] = ()
    # The rules the exercise's text states (rule name -> labels of the cases that test it,
    # visible or hidden); tests/checks/test_rules.py holds the notebooks to them.
    rules: dict[str, list[str]] = dataclasses.field(default_factory=dict)


REGISTRY: dict[str, CheckSpec] = {}


def register(name: str, what: str, *, helpers: tuple[str, ...] = (), rules: dict[str, list[str]] | None = None):
    def wrap(cases):
        REGISTRY[name] = CheckSpec(name=name, cases=cases, what=what, helpers=tuple(helpers),
                                   rules=dict(rules or {}))
        return cases
    return wrap


def build_cases(name: str, *, seed: int = 0, hidden: bool = False) -> list[Case]:
    """The cases of exercise ``name`` for a seed; hidden cases use other shapes and values."""
    spec = REGISTRY[name]
    rng = np.random.default_rng([seed, 1 if hidden else 0, _stable_hash(name)])
    return spec.cases(rng, hidden)


def _stable_hash(text: str) -> int:
    return sum((i + 1) * ord(c) for i, c in enumerate(text)) % (2**31)


def materialize(value):
    """``value`` with every Seeded marker replaced by a fresh, seeded torch.Generator."""
    if isinstance(value, Seeded):
        import torch
        return torch.Generator().manual_seed(value.seed)
    if isinstance(value, tuple):
        return tuple(materialize(v) for v in value)
    if isinstance(value, list):
        return [materialize(v) for v in value]
    if isinstance(value, dict):
        return {k: materialize(v) for k, v in value.items()}
    return value


def _snapshot(value):
    import torch
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, (list, dict, np.ndarray)):
        return copy.deepcopy(value)
    return value


def _same(a, b) -> bool:
    import torch
    if isinstance(a, torch.Tensor):
        return (isinstance(b, torch.Tensor) and a.shape == b.shape
                and bool(np.array_equal(to_numpy(a), to_numpy(b), equal_nan=True)))
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and np.array_equal(a, b)
    if isinstance(a, (list, tuple)):
        return (isinstance(b, (list, tuple)) and len(a) == len(b)
                and all(_same(x, y) for x, y in zip(a, b)))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a == b


def not_implemented(name: str) -> CheckFailed:
    return CheckFailed(
        f"{name} is not implemented yet: replace `raise NotImplementedError()` in its cell "
        "with your code, run that cell, then run this one again.")


# Exceptions whose message is itself the verdict (raised by the calling protocol, not by the learner).
MESSAGE_ERRORS = {"ModuleMismatch", "WireError", "MixedDevices"}


def raised(name: str, case: Case, type_name: str, message: str) -> CheckFailed:
    """The verdict for a call that raised ``type_name`` (used where the exception itself is gone)."""
    if type_name == "NotImplementedError":
        return not_implemented(name)
    if type_name in MESSAGE_ERRORS:
        return CheckFailed(f"{name} [{case.label}]: {message}")
    if type_name in case.errors:
        message = " ".join(message.split())  # one line: library messages often span several
        return CheckFailed(f"{name} [{case.label}] raised {type_name} ({message[:160]}): "
                           f"{case.errors[type_name]}")
    return CheckFailed(f"{name} [{case.label}] raised {type_name}: {message}")


def expected_error(name: str, result, missing: str) -> tuple[str, str]:
    """(type name, message) of what a RAISES call raised (see protocol.run_expecting_error).
    CheckFailed when it raised nothing (``missing`` says why it should have), is not implemented
    yet, or was refused by the calling protocol (the message is the verdict)."""
    what = result.get("raised") if isinstance(result, dict) else None
    if what is None:
        raise CheckFailed(missing)
    type_name, message = str(what[0]), str(what[1])
    if type_name == "NotImplementedError":
        raise not_implemented(name)
    if type_name in MESSAGE_ERRORS:
        raise CheckFailed(message)
    return type_name, message


def check_unchanged(name: str, case: Case, before: list, after: list) -> None:
    import torch
    if len(after) != len(before):
        raise CheckFailed(f"{name} [{case.label}]: the inputs after the call were not all reported")
    if case.kind == MODULE:
        inputs_before, inputs_after = before[3], after[3]
        if not _same(inputs_before, inputs_after):
            raise CheckFailed(
                f"{name} changed its input in place [{case.label}]. Build new tensors instead of "
                "modifying the argument (avoid in-place operations such as `x += ...` or "
                "`x.mul_(...)` on the input).")
        return
    if case.kind in (GRAD, RAISES):  # GRAD passes copies (see protocol); RAISES should raise
        return
    if case.kind == LOAD:  # (config, state_dict)
        if not _same(before[1], after[1]):
            raise CheckFailed(
                f"{name} changed the state dict it was given [{case.label}]. Leave the caller's "
                "tensors as they are: transpose into new tensors (w.t()) instead of assigning "
                "back into the dict or changing tensors in place.")
        return
    for i, (old, new) in enumerate(zip(before, after)):
        if isinstance(old, (torch.Tensor, list, dict, np.ndarray)) and not _same(old, new):
            raise CheckFailed(
                f"{name} changed its input (argument {i + 1}) in place [{case.label}]. Build a "
                "new result instead of modifying the argument (avoid in-place operations such "
                "as `x -= ...`, `x.sub_(...)` or `ids.append(...)` on the input).")


def finish(name: str, case: Case, outputs: list) -> None:
    """Verify the outputs of ``case``'s calls; raise CheckFailed naming the case."""
    try:
        case.verify(outputs if case.calls is not None else outputs[0])
    except CheckFailed as failure:
        raise CheckFailed(f"{name} [{case.label}]: {failure}") from None


def run_case(fn: Callable, case: Case, name: str) -> None:
    """Call ``fn`` in this process on every call of ``case`` and verify the outputs."""
    outputs = []
    for call in case.all_calls():
        args, kwargs = materialize(call.args), materialize(call.kwargs)
        before = [_snapshot(a) for a in args] + [_snapshot(v) for v in kwargs.values()]
        try:
            outputs.append(invoke(fn, call.kind, args, kwargs))
        except NotImplementedError:
            raise not_implemented(name) from None
        except Exception as exc:  # noqa: BLE001 - the learner's error is the verdict, with their frames
            raise raised(name, case, type(exc).__name__, str(exc)) from exc
        check_unchanged(name, case, before, list(args) + list(kwargs.values()))
    finish(name, case, outputs)


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
    try:
        for case in cases:
            run_case(fn, case, name)
    except CheckFailed as failure:
        hint = _helper_hint(name, fn)
        if hint:
            raise CheckFailed(f"{hint}\n{failure}") from failure.__cause__
        raise
    if not quiet:
        print(f"\u2714 {name}: all {len(cases)} {'hidden ' if hidden else ''}checks passed "
              f"({REGISTRY[name].what})")
    return len(cases)


def _helper_hint(name: str, fn) -> str:
    """"your split_heads fails its own test ..." when a helper ``name`` calls, as defined where
    ``fn`` was defined (the learner's notebook), fails its own visible check; else ""."""
    import sys
    if not REGISTRY[name].helpers:
        return ""
    namespace = getattr(fn, "__globals__", None)
    if namespace is None:  # a class: the module it was defined in (a notebook's is __main__)
        namespace = getattr(sys.modules.get(getattr(fn, "__module__", None) or ""), "__dict__", {})
    for helper in REGISTRY[name].helpers:
        obj = namespace.get(helper)
        if obj is None or not callable(obj):
            continue
        try:
            run_check(helper, obj, quiet=True)
        except Exception as exc:  # noqa: BLE001 - any failure of the helper is the likely cause
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            return (f"your {helper} fails its own test, and {name} calls it: fix {helper} first "
                    f"(its test says: {first[:300]})")
    return ""


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
