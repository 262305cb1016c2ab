"""Checks for notebook 10's ``save_checkpoint`` and ``load_checkpoint``: a run that resumes.

Each is graded against a trusted counterpart, on a GPT the checks build (protocol.checkpoint_model,
tied or untied head) with an AdamW built as notebook 08's configure_optimizer builds it, holding
parameter values, an AdamW state (step, exp_avg, exp_avg_sq) and a GradScaler state chosen here,
so that what a file should contain is known bit for bit.

- ``save_checkpoint``'s file comes back as bytes and is read here with safetensors (a pickle from
  torch.save is named as such): every tensor and the metadata must be the state's bit for bit,
  the folder of the path created, the model and optimizer unchanged, and a run resumed from it
  with a trusted loader must take the same next step (loss, parameters, AdamW state) as the run
  that never stopped.
- ``load_checkpoint`` reads files written here in the course's format (the tied head stored once
  under either name, or twice; AdamW's step count may differ from the run's step), and must
  return the run's step as an int, leave the same parameter objects holding the file's values, the
  tied head tied, AdamW's state and the GradScaler's restored (scaler=None with a scaler in the
  file must work too), step like the oracle next, and refuse a file that lacks one of the model's
  tensors.

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

from .core import Case, CheckFailed, expected_error, register, to_numpy, worst_difference
from .gpt import config, random_state
from .layers import ids, matches, tensor
from .protocol import (LOAD_CHECKPOINT, MAX_CHECKPOINT_BYTES, RAISES, SAVE_CHECKPOINT,
                       checkpoint_model, checkpoint_optimizer, checkpoint_step, set_optimizer_state,
                       shown_plain)

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


_SAVES = ["a tied GPT, AdamW 5 steps in, no scaler (path a str)",
          "an untied GPT (lm_head its own tensor), a float16 GradScaler (path a pathlib.Path in a folder not "
          "made yet)",
          "a tied GPT with a GradScaler (path a pathlib.Path, two folders deep, not made yet)",
          "an untied 3-layer GPT, no scaler (path a str)"]
SAVE_RULES = {
    "a safetensors file at path": _SAVES,
    "the folder is made": [_SAVES[1], _SAVES[2]],
    "every model tensor": _SAVES,
    "the optimizer's state": _SAVES,
    "step and scaler": _SAVES,
    "saving only reads": _SAVES,
}


@register("save_checkpoint", "one safetensors file: every model tensor (tied head once), AdamW's "
                             "state, the step and the GradScaler, bit for bit; a resumed run continues",
          rules=SAVE_RULES)
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
                    "strict=False) and check that only a tied name is missing; if it says 'a leaf Variable "
                    "that requires grad': copy into the parameters under torch.no_grad()",
    "AttributeError": "scaler is None when there is no loss scaling: restore its state only if scaler "
                      "is not None",
    "KeyError": "if it names a tensor of the model: the file may store a tied weight under either name "
                "(model.transformer.wte.weight or model.lm_head.weight); if it says 'param_groups': "
                "optimizer.load_state_dict wants the whole dict optimizer.state_dict() gives, with \"state\" "
                "filled in; the scaler state is \"{}\" when none was used",
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
            raise CheckFailed(f"it returned {shown_plain(value) if not isinstance(value, str) else repr(value)}: "
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
        if adam and all(isinstance(i, str) and i.isdigit() for i in adam):
            shown = ", ".join(repr(i) for i in list(adam)[:2])
            raise CheckFailed(f"the optimizer's state is keyed by the strings {shown}, ...: PyTorch numbers "
                              "the parameters with ints, so AdamW finds no state for any of them. Turn the i "
                              "of optimizer.<i>.<key> into an int, int(i)")
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


_LOADS = ["a tied GPT stored as model.transformer.wte.weight, step 8 (AdamW 7 steps in), a GradScaler",
          "an untied GPT, no scaler", "a tied GPT stored as model.lm_head.weight, a GradScaler",
          "a tied GPT stored under both names, scaler=None with a scaler in the file",
          "an untied 3-layer GPT with a GradScaler"]
LOAD_RULES = {
    "in place": _LOADS,
    "a tied weight under either name": [_LOADS[0], _LOADS[2], _LOADS[3]],
    "the optimizer's state": _LOADS,
    "the scaler": [_LOADS[0], _LOADS[2], _LOADS[3], _LOADS[4]],
    "the step returned": _LOADS,
    "a file that does not fit is refused": ["a file without model.transformer.h.0.mlp.c_fc.weight must not load",
                                            "an untied GPT's file without model.lm_head.weight must not load"],
}


@register("load_checkpoint", "in place (same parameter objects, the tied head tied), AdamW and "
                             "GradScaler restored, the step returned, the next step the same; "
                             "a file lacking a tensor refused", rules=LOAD_RULES)
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
