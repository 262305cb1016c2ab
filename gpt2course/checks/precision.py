"""Checks for notebook 10's ``autocast_dtype``: which arithmetic a device trains in.

They run on a CPU-only grading machine with torch.cuda standing for a machine with GPUs of chosen
compute capabilities (protocol.run_autocast): the capability argument, when given, must decide
(the stand-in GPUs say the opposite); without it the learner must ask the GPU it is given (every
stand-in GPU has another capability class, and each records what it was asked), and
``torch.cuda.is_bf16_supported`` says True, as it does on a T4, so trusting it shows. Mistakes
named: is_bf16_supported() instead of the capability; major > 8 (sm80 is an A100); "major.minor"
compared as text (10.0 < 8.0); float32 instead of None off CUDA; a string device not accepted;
the capability argument ignored; the current GPU asked instead of the one given.
"""

from __future__ import annotations

import numpy as np

from .core import Call, Case, CheckFailed, register
from .protocol import AUTOCAST, shown_plain

BF16, F16 = "torch.bfloat16", "torch.float16"
BELOW = [(3, 7), (5, 2), (6, 0), (6, 1), (7, 0), (7, 2), (7, 5)]          # K80 ... T4
FROM_8 = [(8, 0), (8, 6), (8, 7), (8, 9), (9, 0), (10, 0), (10, 3), (12, 0), (12, 1)]  # A100 ... B200


def _want(capability) -> str:
    return BF16 if tuple(capability) >= (8, 0) else F16


def _other(capability) -> tuple:
    """A capability of the other class (what a stand-in GPU says when the argument should win)."""
    return (7, 5) if tuple(capability) >= (8, 0) else (9, 0)


def _shown(device) -> str:
    return f'torch.device("{device[1]}")' if device[0] == "device" else f'"{device[1]}"'


def _index(device) -> int:
    text = device[1]
    return int(text.split(":")[1]) if ":" in text else 0


AUTOCAST_ERRORS = {
    "AttributeError": "the device may be a string such as \"cuda:0\" or a torch.device: make it a "
                      "torch.device first (torch.device(device) accepts both), then read its .type",
    "RuntimeError": "did it reach the real GPU? The grading machine has none: ask "
                    "torch.cuda.get_device_capability(device) through torch.cuda (the checks stand "
                    "a GPU in for it) and create no tensors on the device",
    "AssertionError": "did it ask about a GPU that is not there (the device's index is "
                      "torch.device(device).index; None means the current GPU), or reach the real "
                      "CUDA driver? Ask torch.cuda.get_device_capability(device) through torch.cuda",
    "ValueError": "torch.cuda.get_device_capability only knows CUDA devices: return None for other "
                  "devices before asking it anything",
    "TypeError": "capability is a (major, minor) tuple: compare it with a tuple, capability >= (8, 0), "
                 "or its major number, capability[0] >= 8",
}


def _autocast_call(device, capability, gpus):
    return Call((list(device), None if capability is None else tuple(capability),
                 [list(g) for g in gpus]), kind=AUTOCAST)


def _autocast_case(label, runs):
    """``runs``: [(device, capability or None, gpus)]; the expected answer follows from them."""
    expected = []
    for device, capability, gpus in runs:
        if not device[1].startswith("cuda"):
            expected.append(None)
        else:
            expected.append(_want(capability if capability is not None else gpus[_index(device)]))

    def verify(outputs):
        got = []
        for out in outputs:
            if not isinstance(out, dict):
                raise CheckFailed("its result could not be read")
            got.append(out.get("returned"))
        for (device, capability, gpus), out, value, want in zip(runs, outputs, got, expected):
            if value == want:
                continue
            call = (f"autocast_dtype({_shown(device)}" +
                    (f", capability={tuple(capability)})" if capability is not None else ")"))
            if value not in (None, BF16, F16, "torch.float32"):
                raise CheckFailed(f"{call} returned {shown_plain(value)}: it should return a torch.dtype "
                                  "(torch.bfloat16 or torch.float16) or None")
            if want is None:
                if value == "torch.float32":
                    raise CheckFailed(f"{call} returned torch.float32; off CUDA it should return None, "
                                      "which the training loop reads as 'no autocast' (it trains in "
                                      "float32 anyway)")
                raise CheckFailed(f"{call} returned {value}, but {device[1]} is not a CUDA GPU: return "
                                  "None for every device whose torch.device(device).type is not "
                                  "'cuda' (the training loop reads None as plain float32), whatever GPUs "
                                  "the machine has")
            if value is None or value == "torch.float32":
                raise CheckFailed(f"{call} returned {value} for a CUDA GPU: on a GPU it should return "
                                  "torch.bfloat16 or torch.float16. Compare the device's type, "
                                  "torch.device(device).type == 'cuda' (\"cuda:0\" is a CUDA device too)")
            raise CheckFailed(f"{call} returned {value}, expected {want}: "
                              + _dtype_hint(runs, got, value, device, capability, gpus, out))
    return Case(label=label, calls=[_autocast_call(*run) for run in runs], verify=verify,
                errors=AUTOCAST_ERRORS)


def _dtype_hint(runs, got, value, device, capability, gpus, out) -> str:
    """Why the CUDA answer ``value`` is wrong, from the pattern of all the answers ``got`` and
    what was asked."""
    given = [(tuple(c), g) for (_, c, _), g in zip(runs, got) if c is not None]
    if given:
        at_8 = [c for c, g in given if c[0] == 8 and g == F16]
        if at_8 and all(g == (BF16 if c[0] > 8 else F16) for c, g in given):
            return ("compute capability 8.0 (an A100) and 8.x (A10, L4) already have bfloat16: compare "
                    "major >= 8 (or capability >= (8, 0)), not major > 8")
        if all(g == F16 for c, g in given if c[0] >= 10) and any(c[0] >= 10 for c, g in given) and \
                all(g == _want(c) for c, g in given if c[0] < 10):
            return ("compute capability 10.0 (B200) or 12.0 is newer than 8.0: compare (major, minor) "
                    "as numbers, capability >= (8, 0), not as text or as the float major.minor")
    if capability is not None:
        if out.get("asked") and _want(gpus[0]) == value:
            return ("the capability argument was ignored: when it is given, decide by it; ask "
                    "torch.cuda.get_device_capability(device) only when capability is None")
        if out.get("bf16_asked"):
            return ("decide by the capability, not torch.cuda.is_bf16_supported(): that says True on a "
                    "T4 (7.5), which only emulates bfloat16, slowly")
        return ("bfloat16 from compute capability 8.0 (A100, L4, H100, B200), float16 below (T4, V100): "
                "capability >= (8, 0)")
    index = _index(device)
    asked = out.get("asked") or []
    if not asked:
        if out.get("bf16_asked"):
            return ("do not trust torch.cuda.is_bf16_supported(): it says True on a T4 (compute "
                    "capability 7.5), which only emulates bfloat16; ask the GPU's compute capability, "
                    "torch.cuda.get_device_capability(device), and use bfloat16 from (8, 0)")
        return ("with capability=None, ask the GPU for it: torch.cuda.get_device_capability(device)")
    first = asked[0]
    pointed = 0 if first is None else first[1] if first[0] == "int" else (
        int(str(first[1]).split(":")[1]) if ":" in str(first[1]) else 0)
    if pointed != index:
        return (f"it asked about GPU {pointed} ({'no argument: the current GPU' if first is None else first[1]}), "
                f"but the device given is {device[1]}: pass the device on, "
                "torch.cuda.get_device_capability(device)")
    return ("bfloat16 from compute capability 8.0 (A100, L4, H100, B200), float16 below (T4, V100): "
            "compare the (major, minor) pair torch.cuda.get_device_capability(device) returns with (8, 0)")


def _dev(text, as_device=False):
    return ["device" if as_device else "str", text]


_BELOW = ["capability given, below 8.0 (7.5, 7.0): float16", "capability given, below 8.0: float16"]
_FROM_8 = ["capability given, 8.0 or more (8.0, 8.6, 8.9, 9.0, 10.0): bfloat16",
           "capability given, 8.0 or more: bfloat16"]
_ASK = ['no capability: ask the GPU given ("cuda:1", torch.device("cuda"), torch.device("cuda:1"); '
        'is_bf16_supported says True everywhere)',
        'no capability: ask the GPU given ("cuda:2", torch.device("cuda:3"), "cuda", torch.device("cuda:0"); '
        'is_bf16_supported says True everywhere)']
_OFF = ['"cpu", torch.device("cpu"), "mps": None (float32, no autocast)',
        'torch.device("mps"), "cpu", "mps": None (float32, no autocast)']
AUTOCAST_RULES = {
    "bfloat16 from 8.0": _FROM_8,
    "float16 below 8.0": _BELOW,
    "None off CUDA": _OFF,
    "any device spelling": _BELOW + _FROM_8 + _ASK + _OFF,
    "ask the GPU given": _ASK,
    "the capability argument decides": _BELOW + _FROM_8,
}


@register("autocast_dtype", "bfloat16 from compute capability 8.0, float16 below, None off CUDA; "
                            "the capability argument, or the GPU asked about the device given",
          rules=AUTOCAST_RULES)
def autocast_cases(rng: np.random.Generator, hidden: bool):
    if not hidden:
        below, above = [(7, 5), (7, 0)], [(8, 0), (8, 6), (8, 9), (9, 0), (10, 0)]
        devices = [_dev("cuda", True), _dev("cuda:0")]
        asks = [(_dev("cuda:1"), [(9, 0), (7, 5)]), (_dev("cuda", True), [(8, 6), (7, 0)]),
                (_dev("cuda:1", True), [(7, 0), (8, 0)])]
        off = [_dev("cpu"), _dev("cpu", True), _dev("mps")]
    else:
        below = [BELOW[i] for i in sorted(rng.choice(len(BELOW), 3, replace=False))]
        above = [(8, 0), FROM_8[int(rng.integers(1, 4))], (9, 0), FROM_8[int(rng.integers(5, len(FROM_8)))]]
        devices = [_dev("cuda:2"), _dev("cuda:3", True)]
        low, high = BELOW[int(rng.integers(len(BELOW)))], FROM_8[int(rng.integers(len(FROM_8)))]
        asks = [(_dev("cuda:2"), [high, high, low, high]), (_dev("cuda:3", True), [low, low, low, high]),
                (_dev("cuda"), [low, high, high, high]), (_dev("cuda:0", True), [high, low, low, low])]
        off = [_dev("mps", True), _dev("cpu"), _dev("mps")]
    given = [(devices[i % len(devices)], c, [_other(c)] * 4) for i, c in enumerate(below + above)]
    order = rng.permutation(len(given))

    # (labels do not depend on the seed: the hidden capabilities are drawn, and the messages show them)
    return [
        _autocast_case(_BELOW[hidden], [given[i] for i in order if tuple(given[i][1]) < (8, 0)]),
        _autocast_case(_FROM_8[hidden], [given[i] for i in order if tuple(given[i][1]) >= (8, 0)]),
        _autocast_case(f"no capability: ask the GPU given ({', '.join(_shown(d) for d, _ in asks)}; "
                       "is_bf16_supported says True everywhere)", [(d, None, g) for d, g in asks]),
        _autocast_case(f"{', '.join(_shown(d) for d in off)}: None (float32, no autocast)",
                       [(d, None, [(9, 0)] * 4) for d in off] + [(off[0], (9, 0), [(9, 0)] * 4)]),
    ]
