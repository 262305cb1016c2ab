"""What the grader knows each record from the sandbox must hold, before any check looks at it.

The learner's process writes the records, so the learner's code can shape them: drop the
outputs, report no gradients, return an empty list of inputs after the call. A check that loops
over what was reported would then compare nothing. The trusted side built every call itself
(``gpt2course.checks.core.Call``: its kind and its arguments), so it knows the shape of the
answer: how many outputs, which parameters must have gradients, how many inputs come back.
``validate`` checks a decoded record against that and raises ``CheckFailed`` for anything
missing, extra, of the wrong kind or of the wrong length; only then do the checks' own
``verify`` functions compare values. The values themselves (tensors, numbers) stay for those
functions to judge.
"""

from __future__ import annotations

import functools
import inspect

from gpt2course.checks import protocol
from gpt2course.checks.core import Call, CheckFailed


class Malformed(CheckFailed):
    """A record that does not have the shape its call gives it."""


def _fail(what: str):
    raise Malformed(f"its result is incomplete or malformed: {what} (the harness reports every "
                    "output, gradient and input; a result missing any of them earns nothing)")


def _dict(value, what: str, keys=None, *, optional=()) -> dict:
    if not isinstance(value, dict):
        _fail(f"{what} is a {type(value).__name__}, not a mapping")
    if keys is not None:
        missing = set(keys) - set(value)
        extra = set(value) - set(keys) - set(optional)
        if missing or extra:
            _fail(f"{what} has keys {sorted(map(str, value))}, expected {sorted(keys)}")
    return value


def _list(value, what: str, length: int | None = None) -> list:
    if not isinstance(value, list):
        _fail(f"{what} is a {type(value).__name__}, not a list")
    if length is not None and len(value) != length:
        _fail(f"{what} has {len(value)} items, expected {length}")
    return value


def _bool(value, what: str) -> None:
    if not isinstance(value, bool):
        _fail(f"{what} is not True or False")


def _tensor_or_none(value, what: str) -> None:
    import torch
    if value is not None and not isinstance(value, torch.Tensor):
        _fail(f"{what} is a {type(value).__name__}, not a tensor")


def _names(value, what: str, wanted: set[str] | None, *, exact: bool) -> dict:
    """A mapping of parameter names: every name in ``wanted`` present (and no other, if exact)."""
    mapping = _dict(value, what)
    if wanted is not None:
        missing = sorted(wanted - set(mapping))
        extra = sorted(set(mapping) - wanted) if exact else []
        if missing or extra:
            _fail(f"{what} lacks {missing}" + (f" and has {extra} besides" if extra else ""))
    return mapping


def _arguments(kind_function, args, kwargs) -> dict:
    bound = inspect.signature(kind_function).bind(None, *args, **kwargs)
    bound.apply_defaults()
    return bound.arguments


@functools.lru_cache(maxsize=64)
def _model_names(kind: str, key: str) -> frozenset:
    """Parameter (or state-dict) names of the models the protocol builds, for one config."""
    import json
    spec = json.loads(key)
    if kind == "skeleton":
        return frozenset(n for n, _ in protocol.gpt_skeleton(spec).named_parameters())
    if kind == "tiny":
        return frozenset(n for n, _ in protocol.tiny_lm(spec["vocab_size"], spec["n_embd"]).named_parameters())
    if kind == "checkpoint":
        return frozenset(protocol.checkpoint_model(spec["config"], spec["tied"]).state_dict())
    raise ValueError(kind)


def _key(value) -> str:
    import json
    return json.dumps(value, sort_keys=True, default=str)


def _module(a, out):
    state, inputs, grad_seed, config = a["state"], a["inputs"], a["grad_seed"], a["config"]
    keys = {"parameters", "initial", "outputs", "grads"} | ({"config"} if config is not None else set())
    _dict(out, "the module report", keys)
    wanted = set(state) if state is not None else (set(a["expect"]) if a["expect"] is not None else None)
    names = set(_names(out["parameters"], "its parameters", wanted, exact=False))
    if state is None:
        _tensor_values(_names(out["initial"], "its initial values", names, exact=True), "an initial value")
    elif out["initial"] is not None:
        _fail("initial values were reported for a module whose values were loaded")
    _list(out["outputs"], "its outputs", len(inputs))
    if grad_seed is None:
        if out["grads"] is not None:
            _fail("gradients were reported where none were asked for")
        return
    grads = _list(out["grads"], "its gradients", len(inputs))
    for i, (g, (run_args, _)) in enumerate(zip(grads, inputs)):
        _dict(g, f"the gradients of run {i + 1}", {"inputs", "parameters"})
        for grad in _list(g["inputs"], f"the input gradients of run {i + 1}", len(run_args)):
            _tensor_or_none(grad, "an input gradient")
        _tensor_values(_names(g["parameters"], f"the parameter gradients of run {i + 1}", names, exact=True),
                       "a parameter gradient")
    if config is not None:
        _dict(out["config"], "the config it kept")


def _tensor_values(mapping: dict, what: str) -> None:
    for value in mapping.values():
        _tensor_or_none(value, what)


def _grad(a, out):
    _dict(out, "the report", {"outputs", "grads"})
    for grad in _list(out["grads"], "its gradients", len(a["args"])):
        _tensor_or_none(grad, "a gradient")


def _load(a, out):
    _dict(out, "the report", {"parameters", "tied", "returned_model"})
    _tensor_values(_names(out["parameters"], "the model's parameters",
                          set(_model_names("skeleton", _key(a["config"]))), exact=False), "a parameter")
    _bool(out["tied"], "tied")
    _bool(out["returned_model"], "returned_model")


def _raises(a, out):
    _dict(out, "the report", {"raised"})
    raised = out["raised"]
    if raised is not None and not (isinstance(raised, list) and len(raised) == 2
                                   and all(isinstance(x, str) for x in raised)):
        _fail("what was raised is not [type name, message]")


def _optimizer(a, out):
    _dict(out, "the report", {"type", "adamw", "groups"})
    _bool(out["adamw"], "adamw")
    for g in _list(out["groups"], "the parameter groups"):
        _dict(g, "a parameter group", {"names", "weight_decay", "lr", "betas"})
        if not all(isinstance(n, str) for n in _list(g["names"], "a group's names")):
            _fail("a group's names are not strings")
        _list(g["betas"], "a group's betas")


def _train(a, out):
    _dict(out, "the report", {"returned", "calls", "modes", "parameters"})
    _list(out["returned"], "what each call returned", len(a["batches"]))
    if not isinstance(out["calls"], int) or isinstance(out["calls"], bool):
        _fail("the number of forward calls is not a number")
    for mode in _list(out["modes"], "the forward calls' modes", out["calls"]):
        _bool(mode, "a forward call's mode")
    _tensor_values(_names(out["parameters"], "the model's parameters",
                          set(_model_names("tiny", _key(a["spec"]))), exact=False), "a parameter")


def _evaluate(a, out):
    _dict(out, "the report", {"returned", "seen", "training_after", "grads", "generator_used"})
    for seen in _list(out["seen"], "the forward calls"):
        _dict(seen, "a forward call", {"idx", "training", "grad_enabled"})
        _tensor_or_none(seen["idx"], "a forward call's input")
        _bool(seen["training"], "a forward call's mode")
        _bool(seen["grad_enabled"], "a forward call's gradient mode")
    for key in ("training_after", "grads", "generator_used"):
        _bool(out[key], key)


def _cache(a, out):
    _dict(out, "the report", {"outputs", "cache"})
    _list(out["outputs"], "the outputs of the chunks", len(a["chunks"]))
    if out["cache"] is not None:
        _list(out["cache"], "the cache")


def _generate(a, out):
    _dict(out, "the report", {"returned", "calls", "training_after"})
    for call in _list(out["calls"], "the model's calls"):
        _list(call, "a module call", 4)
    _bool(out["training_after"], "training_after")


def _sample(a, out):
    _dict(out, "the report", {"returned", "changed"})
    _bool(out["changed"], "changed")


def _autocast(a, out):
    _dict(out, "the report", {"returned", "asked", "bf16_asked"})
    _list(out["asked"], "what was asked")
    _bool(out["bf16_asked"], "bf16_asked")


def _checkpoint_state(value, what: str, a) -> None:
    _dict(value, what, {"model", "optimizer", "scaler"})
    names = set(_model_names("checkpoint", _key({"config": a["config"], "tied": bool(a["tied"])})))
    _tensor_values(_names(value["model"], f"{what}'s model", names, exact=False), "a model tensor")
    _dict(value["optimizer"], f"{what}'s optimizer")


def _save_checkpoint(a, out):
    _dict(out, "the report", {"file", "files", "after"})
    if out["file"] is not None and not isinstance(out["file"], bytes):
        _fail("the file's contents are not bytes")
    if not all(isinstance(f, str) for f in _list(out["files"], "the files")):
        _fail("the file names are not strings")
    _checkpoint_state(out["after"], "the state after saving", a)


def _load_checkpoint(a, out):
    stepped = {"loss", "stepped"} if a["batch"] is not None else set()
    _dict(out, "the report", {"returned", "replaced", "tied", "loaded"},
          optional=stepped | {"step_error"})
    if a["batch"] is not None and not (stepped <= set(out) or "step_error" in out):
        _fail("the training step after loading was not reported")
    _list(out["replaced"], "the replaced parameters")
    _bool(out["tied"], "tied")
    _checkpoint_state(out["loaded"], "the loaded state", a)


def _on_meta(a, out):
    runs = len(a["inputs"]) if "inputs" in a else len(a["chunks"]) if "chunks" in a else 1
    for run in _list(out, "the runs", runs):
        for tensor in _list(run, "a run's output tensors"):
            _dict(tensor, "an output tensor", {"device", "shape"})
            if not isinstance(tensor["device"], str):
                _fail("an output's device is not a name")
            if not all(isinstance(n, int) and not isinstance(n, bool) for n in _list(tensor["shape"], "a shape")):
                _fail("an output's shape is not a list of sizes")


_BY_KIND = {
    protocol.MODULE: (protocol.run_module, _module),
    protocol.GRAD: (protocol.run_with_grad, _grad),
    protocol.LOAD: (protocol.run_load, _load),
    protocol.RAISES: (protocol.run_expecting_error, _raises),
    protocol.OPTIMIZER: (protocol.run_optimizer, _optimizer),
    protocol.TRAIN: (protocol.run_train, _train),
    protocol.EVALUATE: (protocol.run_evaluate, _evaluate),
    protocol.CACHE: (protocol.run_cache, _cache),
    protocol.GENERATE: (protocol.run_generate, _generate),
    protocol.SAMPLE: (protocol.run_sample, _sample),
    protocol.AUTOCAST: (protocol.run_autocast, _autocast),
    protocol.SAVE_CHECKPOINT: (protocol.run_save_checkpoint, _save_checkpoint),
    protocol.LOAD_CHECKPOINT: (protocol.run_load_checkpoint, _load_checkpoint),
    protocol.ON_META: (protocol.run_on_meta, _on_meta),
    protocol.CACHE_ON_META: (protocol.run_cache_on_meta, _on_meta),
    protocol.SAMPLE_ON_META: (protocol.run_sample_on_meta, _on_meta),
}


def validate(call: Call, output, after) -> None:
    """Raise Malformed unless ``output`` and ``after`` (decoded from the sandbox's record of
    ``call``) have the shape ``call`` gives them."""
    _list(after, "the inputs after the call", len(call.args) + len(call.kwargs))
    if call.kind == protocol.CALL:
        return  # the function's own return value: the check's verify judges all of it
    if call.kind not in _BY_KIND:
        raise ValueError(f"no expectations for call kind {call.kind!r}")
    function, check = _BY_KIND[call.kind]
    try:
        arguments = _arguments(function, call.args, call.kwargs)
    except TypeError as exc:  # the grader's own cases: a bug here, not the learner's
        raise ValueError(f"a {call.kind} call with arguments its protocol does not take: {exc}") from None
    check(arguments, output)
