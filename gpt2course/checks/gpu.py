"""Checks for notebook 10: ``autocast_dtype``, ``save_checkpoint`` and ``load_checkpoint``.

``autocast_dtype`` runs on a CPU-only grading machine with torch.cuda standing for a machine
with GPUs of chosen compute capabilities (protocol.run_autocast): the capability argument, when
given, must decide (the stand-in GPUs say the opposite); without it the learner must ask the GPU
it is given (every stand-in GPU has another capability class), and ``torch.cuda.is_bf16_supported``
says True, as it does on a T4, so trusting it shows.

The checkpoint functions are graded each against a trusted counterpart, on a GPT the checks build
(protocol.checkpoint_model) with an AdamW built as notebook 08's configure_optimizer builds it,
holding parameter values and an AdamW state chosen here, so that what a file should contain is
known exactly. ``save_checkpoint``'s file comes back as bytes and is read here with safetensors
(no pickle): every tensor and the metadata must be the state's bit for bit, and a run resumed from
it with a trusted loader must take the same next step as the run that never stopped.
``load_checkpoint`` reads files written here in the course's format (the tied head stored once
under either name, or twice), and must leave the same parameter objects holding the file's
values, the tied head tied, AdamW's state and the GradScaler's restored (the next step is compared
with an oracle's), return the step, and refuse a file that lacks one of the model's tensors.

The file format (the exercise text states it): one safetensors file; each tensor of
model.state_dict() as ``model.<name>`` (a tied weight once under either name, or both names as
copies); each tensor of optimizer.state_dict()["state"][i] as ``optimizer.<i>.<key>``; metadata
``step`` = str(int(step)) and ``scaler`` = json.dumps(scaler.state_dict()) ("{}" or absent without
a scaler).
"""

from __future__ import annotations

import json
import re

import numpy as np

from .core import Call, Case, CheckFailed, expected_error, register, to_numpy, worst_difference
from .gpt import config, random_state
from .layers import ids, matches, tensor
from .protocol import (AUTOCAST, LOAD_CHECKPOINT, MAX_CHECKPOINT_BYTES, RAISES, SAVE_CHECKPOINT,
                       checkpoint_model, checkpoint_optimizer, checkpoint_step, set_optimizer_state)

# ---- autocast_dtype ---------------------------------------------------------------------------

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


def _got(value) -> str:
    if value is None or isinstance(value, str):
        return str(value)
    if isinstance(value, list) and value[:1] == ["not plain"]:
        return f"a {value[1]} ({value[2]})"
    return repr(value)


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
                raise CheckFailed(f"{call} returned {_got(value)}: it should return a torch.dtype "
                                  "(torch.bfloat16 or torch.float16) or None")
            if want is None:
                if value == "torch.float32":
                    raise CheckFailed(f"{call} returned torch.float32; off CUDA it should return None, "
                                      "which the training loop reads as 'no autocast' (it trains in "
                                      "float32 anyway)")
                raise CheckFailed(f"{call} returned {value}, but {device[1]} is not a CUDA GPU: return "
                                  "None for every device whose torch.device(device).type is not "
                                  "'cuda' (decide by the device given, not by "
                                  "torch.cuda.is_available())")
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


@register("autocast_dtype", "bfloat16 from compute capability 8.0, float16 below, None off CUDA; "
                            "the capability argument, or the GPU asked about the device given")
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

    def shown(caps):
        return ", ".join(f"{a}.{b}" for a, b in caps)
    return [
        _autocast_case(f"capability given, below 8.0 ({shown(below)}): float16",
                       [given[i] for i in order if tuple(given[i][1]) < (8, 0)]),
        _autocast_case(f"capability given, 8.0 or more ({shown(above)}): bfloat16",
                       [given[i] for i in order if tuple(given[i][1]) >= (8, 0)]),
        _autocast_case(f"no capability: ask the GPU given ({', '.join(_shown(d) for d, _ in asks)}; "
                       "is_bf16_supported says True everywhere)", [(d, None, g) for d, g in asks]),
        _autocast_case(f"{', '.join(_shown(d) for d in off)}: None (float32, no autocast)",
                       [(d, None, [(9, 0)] * 4) for d in off] + [(off[0], (9, 0), [(9, 0)] * 4)]),
    ]


# ---- checkpoints: the state a file should hold ------------------------------------------------

def _layout(cfg, tied, settings):
    """(state_dict names, parameter names in the optimizer's index order) of checkpoint_model."""
    model = checkpoint_model(cfg, tied)
    optimizer = checkpoint_optimizer(model, settings)
    names = {id(p): n for n, p in model.named_parameters()}
    order = [names[id(p)] for group in optimizer.param_groups for p in group["params"]]
    return list(model.state_dict()), order


def _run_state(rng, cfg, tied, settings, adam_steps):
    """Parameter values ({name: tensor}, each parameter once) and an AdamW state ({index: {step,
    exp_avg, exp_avg_sq}}) of a run ``adam_steps`` steps in."""
    import torch
    state = random_state(rng, cfg, scale=0.3)
    if not tied:
        state["lm_head.weight"] = tensor(rng, cfg["vocab_size"], cfg["n_embd"], scale=0.3)
    _, order = _layout(cfg, tied, settings)
    opt = {}
    for i, name in enumerate(order):
        shape = tuple(state[name].shape)
        opt[i] = {"step": torch.tensor(float(adam_steps)),
                  "exp_avg": tensor(rng, *shape, scale=0.01),
                  "exp_avg_sq": torch.tensor(rng.normal(size=shape) ** 2 * 1e-4 + 1e-8, dtype=torch.float32)}
    return state, opt


def _scaler_state(rng):
    interval = int(rng.integers(50, 2000))
    # (never GradScaler's default scale, 2 ** 16, so that a scaler left as it was shows)
    return {"scale": float(2.0 ** int(rng.integers(6, 16))), "growth_factor": 2.0, "backoff_factor": 0.5,
            "growth_interval": interval, "_growth_tracker": int(rng.integers(1, interval))}


def _settings(hidden):
    return ({"lr": 1e-2, "betas": (0.9, 0.95), "weight_decay": 0.1} if not hidden else
            {"lr": 2e-2, "betas": (0.8, 0.99), "weight_decay": 0.05})


def _batch(rng, cfg):
    B, T = 2, cfg["block_size"]
    return (ids(rng, cfg["vocab_size"], B, T), ids(rng, cfg["vocab_size"], B, T))


def _model_value(state, name):
    return state["transformer.wte.weight"] if name == "lm_head.weight" and name not in state else state[name]


def _oracle(cfg, tied, settings, state, opt_state, batch):
    """The run that never stopped: one more step from ``state`` and ``opt_state``.
    Returns (loss, model state_dict, optimizer state)."""
    model = checkpoint_model(cfg, tied, state)
    optimizer = checkpoint_optimizer(model, settings)
    set_optimizer_state(optimizer, opt_state)
    loss = checkpoint_step(model, optimizer, *batch)
    return loss, model.state_dict(), optimizer.state_dict()["state"]


def _bitwise(a, b) -> bool:
    import torch
    return (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.dtype == b.dtype
            and a.shape == b.shape and bool(torch.equal(a, b)))


def _entry(mapping, key) -> dict:
    """``mapping[key]`` when both are dicts, else {} (odd learner state reads as missing)."""
    value = mapping.get(key) if isinstance(mapping, dict) else None
    return value if isinstance(value, dict) else {}


def _same_step(value, want) -> bool:
    import torch
    if not isinstance(value, torch.Tensor) or value.numel() != 1 or value.is_complex():
        return False
    return float(value.reshape(())) == float(want)


# ---- save_checkpoint ------------------------------------------------------------------------

def read_safetensors(data) -> tuple[dict, dict]:
    """(tensors, metadata) of a safetensors file's bytes, read by safetensors itself (no pickle).
    CheckFailed, saying what the file is instead, when it is not one."""
    from safetensors.torch import load
    if len(data) > MAX_CHECKPOINT_BYTES:
        raise CheckFailed(f"the file is larger than {MAX_CHECKPOINT_BYTES // 2**20} MB for a model of a "
                          "few thousand parameters: store each tensor once")
    if data[:4] == b"PK\x03\x04" or data[:1] == b"\x80":
        raise CheckFailed("the file is a pickle, what torch.save writes (loading a pickle can run any "
                          "code, which is why the course uses safetensors): write it with "
                          "safetensors.torch.save_file(tensors, path, metadata=...)")
    if not data:
        raise CheckFailed("the file at path is empty")
    try:
        n = int.from_bytes(data[:8], "little")
        header = json.loads(data[8:8 + n].decode("utf-8"))
        metadata = header.get("__metadata__") or {}
        tensors = load(bytes(data))
    except Exception as exc:  # noqa: BLE001 - whatever it is, it is not safetensors
        raise CheckFailed(f"safetensors cannot read the file ({type(exc).__name__}: {str(exc)[:120]}): "
                          "write it with safetensors.torch.save_file(tensors, path, metadata=...)") from None
    if not isinstance(metadata, dict):
        raise CheckFailed("the file's metadata could not be read")
    return tensors, {str(k): v for k, v in metadata.items()}


def _check_unchanged(report, names, state, opt_state, scaler_state):
    after = report.get("after")
    if not isinstance(after, dict):
        raise CheckFailed("its result could not be read")
    for name in names:
        if not _bitwise(_entry(after, "model").get(name), _model_value(state, name)):
            raise CheckFailed(f"save_checkpoint changed the model's {name}: saving should only read the "
                              "model (build new tensors with .detach().cpu(), never modify the parameters)")
    for i, entry in opt_state.items():
        for key, want in entry.items():
            got = _entry(_entry(after, "optimizer"), i).get(key)
            if not (_bitwise(got, want) or (key == "step" and _same_step(got, want))):
                raise CheckFailed(f"save_checkpoint changed the optimizer's state ({key} of parameter {i}): "
                                  "saving should only read it")
    if scaler_state is not None and after.get("scaler") != scaler_state:
        raise CheckFailed("save_checkpoint changed the GradScaler's state: saving should only read it")


def _check_model_tensors(tensors, names, state, tied):
    import torch
    model = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    if not model:
        shown = ", ".join(sorted(tensors)[:4]) or "none"
        raise CheckFailed("the file holds no model tensors: store each tensor of model.state_dict() under "
                          f"\"model.\" + its name, e.g. model.transformer.wte.weight (keys found: {shown})")
    unknown = [n for n in model if n not in names]
    if unknown:
        raise CheckFailed(f"model.{unknown[0]} is not a name in model.state_dict() (e.g. {names[0]}): "
                          "store each tensor as \"model.\" + its state_dict name")
    missing = [n for n in names if n not in model]
    if tied:
        pair = ["transformer.wte.weight", "lm_head.weight"]
        if any(p in model for p in pair):
            missing = [n for n in missing if n not in pair]
    if missing:
        if missing == ["lm_head.weight"]:
            raise CheckFailed("this model's lm_head.weight is a tensor of its own (the head is not tied "
                              "to the embedding here), and the file lacks it: skip a name only when its "
                              "tensor was already stored (the same value.data_ptr()), never by name")
        raise CheckFailed(f"the file has no model.{missing[0]}" +
                          (f" (nor {len(missing) - 1} other tensors)" if len(missing) > 1 else "") +
                          ": store every tensor of model.state_dict()")
    for name, value in model.items():
        want = _model_value(state, name)
        if value.dtype in (torch.float16, torch.bfloat16):
            raise CheckFailed(f"model.{name} is stored as {value.dtype}: store the tensors as they are "
                              "(float32); rounded values would not resume the same run")
        if value.dtype != want.dtype or tuple(value.shape) != tuple(want.shape):
            raise CheckFailed(f"model.{name} is a {value.dtype} tensor of shape {tuple(value.shape)}; the "
                              f"parameter is {want.dtype} {tuple(want.shape)}")
        if not torch.equal(value, want):
            raise CheckFailed(f"model.{name} does not hold the parameter's values at the time of saving "
                              f"({worst_difference(to_numpy(value), to_numpy(want))})")


OPTIMIZER_KEY = re.compile(r"optimizer\.(\d+)\.([A-Za-z_]\w*)$")


def _check_optimizer_tensors(tensors, opt_state):
    import torch
    stored = {k: v for k, v in tensors.items() if k.startswith("optimizer.")}
    if not stored:
        raise CheckFailed("the optimizer's state is not in the file: without AdamW's exp_avg and "
                          "exp_avg_sq a resumed run takes different steps. Store each tensor of "
                          "optimizer.state_dict()['state'][i] as optimizer.<i>.<key> (optimizer.0.exp_avg, ...)")
    odd = [k for k in stored if not OPTIMIZER_KEY.match(k)]
    if odd:
        raise CheckFailed(f"{odd[0]} is not of the form optimizer.<i>.<key>, with i the integer key of "
                          "optimizer.state_dict()['state'] (0, 1, 2, ...) and key e.g. exp_avg")
    expected = {f"optimizer.{i}.{key}": (i, key, v) for i, entry in opt_state.items() for key, v in entry.items()}
    extra = [k for k in stored if k not in expected]
    if extra:
        raise CheckFailed(f"the file has {extra[0]}, but the optimizer has no such state: number the "
                          "parameters as optimizer.state_dict()['state'] does")
    missing = [k for k in expected if k not in stored]
    if missing:
        keys = {expected[k][1] for k in missing}
        if len(keys) == 1 and all(f"optimizer.{i}.{next(iter(keys))}" in missing for i in opt_state):
            key = next(iter(keys))
            why = (" (AdamW's step count per parameter sets its bias correction)" if key == "step" else "")
            raise CheckFailed(f"the file has no optimizer.<i>.{key} for any parameter{why}: store every "
                              "entry of optimizer.state_dict()['state'][i]")
        raise CheckFailed(f"the file has no {missing[0]}: store every entry of every parameter's state in "
                          "optimizer.state_dict()['state']")
    for name, (i, key, want) in expected.items():
        value = stored[name]
        if key == "step":
            if not _same_step(value, want):
                raise CheckFailed(f"{name} is {value.flatten()[:3].tolist()}, but the optimizer's step "
                                  f"count for parameter {i} is {float(want):g}")
            continue
        if value.dtype in (torch.float16, torch.bfloat16):
            raise CheckFailed(f"{name} is stored as {value.dtype}: store the state as it is (float32)")
        if not _bitwise(value, want):
            shapes = tuple(value.shape) != tuple(want.shape)
            raise CheckFailed(f"{name} does not hold the optimizer's {key} for parameter {i}" +
                              (f" (shape {tuple(value.shape)}, expected {tuple(want.shape)})" if shapes else
                               f" ({worst_difference(to_numpy(value.float()), to_numpy(want))})") +
                              ": i is the integer key of optimizer.state_dict()['state']")


def _check_metadata(tensors, metadata, step, scaler_state):
    if "step" not in metadata:
        if any(k == "step" or k.endswith(".step") and not k.startswith("optimizer.") for k in tensors):
            raise CheckFailed("the step is stored as a tensor; the format keeps it in the metadata: "
                              "save_file(tensors, path, metadata={'step': str(int(step)), ...})")
        raise CheckFailed("the step is not stored: save_file(tensors, path, metadata={'step': "
                          "str(int(step)), ...}); without it a resumed run starts its schedule again")
    try:
        stored = int(str(metadata["step"]).strip())
    except ValueError:
        raise CheckFailed(f"the metadata's step is {metadata['step']!r}: store str(int(step))") from None
    if stored != step:
        raise CheckFailed(f"the metadata's step is {stored}, but save_checkpoint was given step={step}: "
                          "store the step it is given, str(int(step))")
    raw = metadata.get("scaler")
    if scaler_state is None:
        return
    if raw is None or str(raw).strip() in ("", "{}", "null", "None"):
        raise CheckFailed("the GradScaler's state is not stored: with float16 training the scale it has "
                          "learned matters; store metadata 'scaler': json.dumps(scaler.state_dict())")
    try:
        stored = json.loads(raw)
    except ValueError:
        raise CheckFailed(f"the metadata's scaler is {str(raw)[:80]!r}, which is not JSON: store "
                          "json.dumps(scaler.state_dict())") from None
    if stored != scaler_state:
        raise CheckFailed(f"the metadata's scaler is {str(raw)[:160]}, but the scaler's state is "
                          f"{json.dumps(scaler_state)}: store json.dumps(scaler.state_dict())")


def trusted_load(tensors, model, optimizer):
    """Notebook 10's loader, written again: the file's model.* tensors into ``model`` (in place;
    a tied weight may be stored under one name) and optimizer.<i>.<key> into ``optimizer``."""
    model.load_state_dict({k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")},
                          strict=False)
    state = {}
    for key, value in tensors.items():
        match = OPTIMIZER_KEY.match(key)
        if match:
            state.setdefault(int(match.group(1)), {})[match.group(2)] = value
    full = optimizer.state_dict()
    full["state"] = state
    optimizer.load_state_dict(full)


def _check_resume(tensors, cfg, tied, settings, state, opt_state, batch):
    """Resume from the file with the trusted loader: the next step must be the same as the run's
    that never stopped (same process, so bit for bit)."""
    import torch
    loss, params, adam = _oracle(cfg, tied, settings, state, opt_state, batch)
    model = checkpoint_model(cfg, tied, init_seed=12345)
    optimizer = checkpoint_optimizer(model, settings)
    try:
        trusted_load(tensors, model, optimizer)
        resumed = checkpoint_step(model, optimizer, *batch)
    except Exception as exc:  # noqa: BLE001 - a file that cannot resume a run fails
        raise CheckFailed(f"resuming a run from the file failed ({type(exc).__name__}: {str(exc)[:160]})") from None
    if resumed != loss:
        raise CheckFailed(f"a run resumed from the file has loss {resumed:.7g} at its next step, the run "
                          f"that never stopped {loss:.7g}")
    for name, value in model.state_dict().items():
        if not torch.equal(value, params[name]):
            raise CheckFailed(f"after one more step, a run resumed from the file has another {name} than "
                              "the run that never stopped")
    got = optimizer.state_dict()["state"]
    for i, entry in adam.items():
        for key, value in entry.items():
            other = got.get(i, {}).get(key)
            if not (_bitwise(other, value) or (key == "step" and _same_step(other, value))):
                raise CheckFailed(f"after one more step, a run resumed from the file has another AdamW "
                                  f"{key} for parameter {i} than the run that never stopped")


SAVE_ERRORS = {
    "RuntimeError": "if it says tensors share memory: GPT's lm_head.weight *is* the token embedding "
                    "(weight tying), and safetensors stores a tensor under one name only. Skip a tensor "
                    "already stored (compare value.data_ptr()) or store a .clone()",
    "AttributeError": "scaler is None when there is no loss scaling (bfloat16 or float32 training): "
                      "store json.dumps(scaler.state_dict()) only if scaler is not None, else \"{}\"",
    "TypeError": "safetensors' metadata is a dict of strings: {'step': str(int(step)), 'scaler': "
                 "json.dumps(...)}; the path may be a str or a pathlib.Path",
    "SafetensorError": "if it says 'No such file or directory': create the folder of path first, "
                       "Path(path).parent.mkdir(parents=True, exist_ok=True)",
    "FileNotFoundError": "create the folder of path first, Path(path).parent.mkdir(parents=True, "
                         "exist_ok=True)",
}


def _save_case(rng, label, cfg, tied, settings, step, *, scaler, as_path, subfolder=""):
    state, opt_state = _run_state(rng, cfg, tied, settings, step)
    scaler_state = _scaler_state(rng) if scaler else None
    batch = _batch(rng, cfg)
    names, _ = _layout(cfg, tied, settings)

    def verify(report):
        if not isinstance(report, dict):
            raise CheckFailed("its result could not be read")
        _check_unchanged(report, names, state, opt_state, scaler_state)
        data = report.get("file")
        if data is None:
            files = report.get("files") or []
            raise CheckFailed("nothing was written at the path it was given" + (
                f"; the folder holds {', '.join(map(str, files[:3]))}: write the file exactly at path "
                "(add no suffix)" if files else
                ": write the file with safetensors.torch.save_file(tensors, str(path), metadata=...)"))
        tensors, metadata = read_safetensors(data)
        _check_model_tensors(tensors, names, state, tied)
        _check_optimizer_tensors(tensors, opt_state)
        _check_metadata(tensors, metadata, step, scaler_state)
        _check_resume(tensors, cfg, tied, settings, state, opt_state, batch)

    return Case(label=label, args=(cfg, tied, settings, state, opt_state, step, scaler_state, as_path,
                                   subfolder), kind=SAVE_CHECKPOINT, verify=verify, errors=SAVE_ERRORS)


@register("save_checkpoint", "one safetensors file: every model tensor (tied head once), AdamW's "
                             "state, the step and the GradScaler, bit for bit; a resumed run continues")
def save_cases(rng: np.random.Generator, hidden: bool):
    settings = _settings(hidden)
    if not hidden:
        return [
            _save_case(rng, "a tied GPT, AdamW 5 steps in, no scaler (path a str)", config(53, 8, 2, 2, 16),
                       True, settings, 5, scaler=False, as_path=False),
            _save_case(rng, "an untied GPT (lm_head its own tensor), a float16 GradScaler (path a "
                            "pathlib.Path in a folder not made yet)", config(29, 6, 1, 2, 8), False,
                       settings, 120, scaler=True, as_path=True, subfolder="run"),
        ]
    return [
        _save_case(rng, "a tied GPT with a GradScaler (path a pathlib.Path, two folders deep, not made "
                        "yet)", config(41, 10, 2, 2, 12), True, settings, int(rng.integers(200, 5000)),
                   scaler=True, as_path=True, subfolder="drive/gpt2course"),
        _save_case(rng, "an untied 3-layer GPT, no scaler (path a str)", config(37, 7, 3, 1, 8), False,
                   settings, int(rng.integers(2, 100)), scaler=False, as_path=False),
    ]


# ---- load_checkpoint ------------------------------------------------------------------------

def _file(state, opt_state, names, tied, step, scaler_state, *, head="transformer.wte.weight", drop=None):
    """The tensors and metadata of a file in the course's format. For a tied model the shared
    weight is stored under ``head`` (or under both names, as copies, when head == "both")."""
    tensors = {}
    for name in names:
        if tied and name in ("transformer.wte.weight", "lm_head.weight") and head not in ("both", name):
            continue
        if name == drop:
            continue
        tensors["model." + name] = _model_value(state, name).clone()
    for i, entry in opt_state.items():
        for key, value in entry.items():
            tensors[f"optimizer.{i}.{key}"] = value.clone()
    metadata = {"step": str(step), "scaler": json.dumps(scaler_state if scaler_state is not None else {})}
    return tensors, metadata


LOAD_ERRORS = {
    "RuntimeError": "if it says keys are missing: a tied weight is stored once (GPT's lm_head.weight is "
                    "the token embedding), under either name. Load with model.load_state_dict(..., "
                    "strict=False) and check that only a tied name is missing",
    "AttributeError": "scaler is None when there is no loss scaling: restore its state only if scaler "
                      "is not None",
    "KeyError": "the file may store a tied weight under either name (model.transformer.wte.weight or "
                "model.lm_head.weight), and holds no scaler state when none was used (\"{}\")",
}


def _load_case(rng, label, cfg, tied, settings, step, *, scaler, with_scaler, head="transformer.wte.weight",
               adam_steps=None):
    """``step`` is the file's step; AdamW's own step count is ``adam_steps`` (default ``step``): a
    loop may well store the number of the next step to run."""
    adam_steps = step if adam_steps is None else adam_steps
    state, opt_state = _run_state(rng, cfg, tied, settings, adam_steps)
    scaler_state = _scaler_state(rng) if scaler else None
    names, _ = _layout(cfg, tied, settings)
    tensors, metadata = _file(state, opt_state, names, tied, step, scaler_state, head=head)
    batch = _batch(rng, cfg)
    init_seed = int(rng.integers(0, 2**31))

    def verify(report):
        import torch
        if not isinstance(report, dict):
            raise CheckFailed("its result could not be read")
        value = report.get("returned")
        if value is None:
            raise CheckFailed(f"it returned None: return the step the file holds (int(metadata['step']), "
                              f"{step} here), so that the training loop goes on from there")
        if isinstance(value, bool) or not isinstance(value, int):
            raise CheckFailed(f"it returned {_got(value) if not isinstance(value, str) else repr(value)}: "
                              "return the step as an int, int(metadata['step'])")
        if value != step:
            hint = (": return the run's step from the metadata, int(metadata['step']), not AdamW's own "
                    "step count" if value == adam_steps else "")
            raise CheckFailed(f"it returned {value}, but the file's step is {step}{hint}")
        if report.get("replaced"):
            raise CheckFailed(
                f"the model's parameters were replaced by new tensors ({', '.join(report['replaced'][:2])}"
                f"{', ...' if len(report['replaced']) > 2 else ''}): the optimizer still holds the old "
                "ones, so training would update tensors the model no longer uses. Copy the values into "
                "the parameters in place: model.load_state_dict(..., strict=False) without assign=True, "
                "or p.copy_(value) under torch.no_grad()")
        if tied and not report.get("tied"):
            raise CheckFailed("after loading, lm_head.weight is no longer transformer.wte.weight: keep the "
                              "tied weight one tensor (load values into it in place)")
        loaded = report.get("loaded") if isinstance(report.get("loaded"), dict) else {}
        for name in names:
            got = _entry(loaded, "model").get(name)
            if not _bitwise(got, _model_value(state, name)):
                hint = ""
                if tied and name in ("transformer.wte.weight", "lm_head.weight") and head == "lm_head.weight":
                    hint = (": this file stores the tied weight as model.lm_head.weight (the format allows "
                            "either name); load every model.<name> tensor the file has")
                raise CheckFailed(f"after loading, {name} does not hold the file's values{hint}")
        adam = _entry(loaded, "optimizer")
        if not adam:
            raise CheckFailed("the optimizer's state was not loaded (optimizer.state_dict()['state'] is "
                              "empty): gather optimizer.<i>.<key> into {i: {key: tensor}} and load it with "
                              "optimizer.load_state_dict(...), keeping its param_groups")
        for i, entry in opt_state.items():
            for key, want in entry.items():
                got = _entry(adam, i).get(key)
                if not (_bitwise(got, want) or (key == "step" and _same_step(got, want))):
                    raise CheckFailed(f"after loading, the optimizer's {key} for parameter {i} is not the "
                                      f"file's optimizer.{i}.{key}: the integer key i of "
                                      "optimizer.state_dict()['state'] numbers the parameters")
        if with_scaler and scaler_state is not None and loaded.get("scaler") != scaler_state:
            raise CheckFailed(f"the GradScaler's state is {loaded.get('scaler')}, but the file holds "
                              f"{metadata['scaler']}: scaler.load_state_dict(json.loads(metadata['scaler']))")
        if "step_error" in report:
            kind, message = report["step_error"][:2]
            raise CheckFailed(f"a training step after loading raised {kind} ({str(message)[:160]}): "
                              "is the optimizer's state what AdamW keeps (tensors step, exp_avg, exp_avg_sq)?")
        loss, params, _ = _oracle(cfg, tied, settings, state, opt_state, batch)
        got_loss = report.get("loss")
        if not isinstance(got_loss, float) or not np.isclose(got_loss, loss, rtol=1e-5, atol=1e-6):
            raise CheckFailed(f"the next step's loss is {got_loss}, the run that never stopped has {loss:.6g}")
        for name, want in params.items():
            got = _entry(report, "stepped").get(name)
            if not isinstance(got, torch.Tensor) or not matches(to_numpy(got), to_numpy(want), rtol=1e-5, atol=1e-6):
                raise CheckFailed(f"after loading, one more training step gives another {name} than the run "
                                  "that never stopped: the optimizer does not continue the run (are its "
                                  "state and its link to the parameters intact?)")

    return Case(label=label, args=(cfg, tied, settings, tensors, metadata, init_seed, with_scaler, batch),
                kind=LOAD_CHECKPOINT, verify=verify, errors=LOAD_ERRORS)


def _incomplete_case(rng, label, cfg, tied, settings, drop):
    state, opt_state = _run_state(rng, cfg, tied, settings, 3)
    names, _ = _layout(cfg, tied, settings)
    tensors, metadata = _file(state, opt_state, names, tied, 3, None, drop=drop)
    init_seed = int(rng.integers(0, 2**31))

    def verify(result):
        expected_error(
            "load_checkpoint", result,
            f"the file has no model.{drop}, yet load_checkpoint returned normally: the model would "
            "silently keep its initial values for it. Raise an error when the file lacks a tensor the "
            "model needs (model.load_state_dict(..., strict=False) returns the missing names; only a "
            "tied weight stored under its other name may be missing)")
    inner = [cfg, tied, settings, tensors, metadata, init_seed, False, None]
    return Case(label=label, args=(LOAD_CHECKPOINT, inner, {}), kind=RAISES, verify=verify)


@register("load_checkpoint", "in place (same parameter objects, the tied head tied), AdamW and "
                             "GradScaler restored, the step returned, the next step the same; "
                             "a file lacking a tensor refused")
def load_cases(rng: np.random.Generator, hidden: bool):
    settings = _settings(hidden)
    if not hidden:
        return [
            _load_case(rng, "a tied GPT stored as model.transformer.wte.weight, step 8 (AdamW 7 steps in), "
                            "a GradScaler", config(47, 8, 2, 2, 16), True, settings, 8, scaler=True,
                       with_scaler=True, adam_steps=7),
            _load_case(rng, "an untied GPT, no scaler", config(31, 6, 1, 2, 8), False, settings, 250,
                       scaler=False, with_scaler=False),
            _incomplete_case(rng, "a file without model.transformer.h.0.mlp.c_fc.weight must not load",
                             config(23, 6, 1, 1, 8), True, settings, "transformer.h.0.mlp.c_fc.weight"),
        ]
    step = int(rng.integers(100, 4000))
    return [
        _load_case(rng, "a tied GPT stored as model.lm_head.weight, a GradScaler", config(43, 9, 2, 2, 12),
                   True, settings, step, scaler=True, with_scaler=True, head="lm_head.weight",
                   adam_steps=step - int(rng.integers(1, 5))),
        _load_case(rng, "a tied GPT stored under both names, scaler=None with a scaler in the file",
                   config(19, 5, 1, 1, 8), True, settings, int(rng.integers(2, 60)), scaler=True,
                   with_scaler=False, head="both"),
        _load_case(rng, "an untied 3-layer GPT with a GradScaler", config(37, 7, 3, 1, 8), False, settings,
                   int(rng.integers(10, 900)), scaler=True, with_scaler=True),
        _incomplete_case(rng, "an untied GPT's file without model.lm_head.weight must not load",
                         config(29, 6, 1, 2, 8), False, settings, "lm_head.weight"),
    ]
