"""Notebook 10's exercises (``autocast_dtype``, ``save_checkpoint``, ``load_checkpoint``,
``previous_token_scores``, ``induction_scores``): learner mistakes and valid alternatives.

Each source is a complete answer cell. ``tests/checks/test_catalogue_checks.py`` runs it in a namespace
that already holds ``torch``, ``nn``, ``F``, ``math`` and the finished pieces of
``gpt2course.reference`` other than the exercise itself; the checkpoint cells import ``json``,
``os`` and safetensors themselves (the notebook's setup cell imports them too). Mistakes of a line
or two are edits of the exercise's reference answer (``variant``; ``_save`` and ``_load`` for the
checkpoint cells).

How the checks see these answers: ``autocast_dtype`` runs on a CPU with torch.cuda standing for
GPUs of chosen compute capabilities (the capability argument, when given, must win over what the
stand-in GPUs say; without it the GPU at the device's index must be asked; is_bf16_supported says
True everywhere, as on a T4). ``save_checkpoint``'s file is read back with safetensors and compared
bit for bit with the model, AdamW and GradScaler state it was given (tied and untied heads), and a
run resumed from it must take the same next step. ``load_checkpoint`` gets files in the course's
format (the tied head stored under either name or both) and must restore everything in place,
return the step, and refuse a file that lacks a tensor.
"""

from catalogue import tidy as _tidy, variant

NOTEBOOK = "10_full_training_run.ipynb"

# Pieces of the reference answers, as written there, that several variants edit.
_ASK = "    if capability is None:\n        capability = torch.cuda.get_device_capability(device)\n"
_MAKEDIRS = "    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)\n"
_DEDUP = """\
        # A tied weight (GPT's lm_head is the token embedding) is stored once: safetensors
        # refuses to store one tensor under two names.
        if value.data_ptr() in stored:
            continue
        stored.add(value.data_ptr())
"""
_SAVE_OPTIMIZER = """\
    for index, state in optimizer.state_dict()["state"].items():
        for key, value in state.items():
            tensors[f"optimizer.{index}.{key}"] = torch.as_tensor(value).detach().cpu().contiguous()
"""
_OPTIMIZER_LOOP = ('    for index, state in optimizer.state_dict()["state"].items():\n'
                   "        for key, value in state.items():")
_LOAD_MODEL = """\
    current = model.state_dict()
    loaded = {current[name].data_ptr() for name in model_state if name in current}
    missing, unexpected = model.load_state_dict(model_state, strict=False)
    untied = [name for name in missing if current[name].data_ptr() not in loaded]
    if unexpected or untied:  # only a tied weight may be missing: it was loaded under its other name
        raise KeyError(f"the checkpoint does not fit the model: missing {untied}, unexpected {unexpected}")
"""
_LOAD_OPTIMIZER = """\
    state = optimizer.state_dict()
    state["state"] = optimizer_state
    optimizer.load_state_dict(state)
"""


def _save(*edits: tuple[str, str]) -> str:
    """The reference save_checkpoint as a self-contained cell, then ``edits`` (as ``variant``).

    The reference leans on the notebook's imports (``json``, ``save_file``, pathlib's ``Path``);
    here they are imported by the cell, and the folder is made with ``os.makedirs`` (an answer
    cell that imports pathlib is flagged by the static review)."""
    return "import json\nimport os\n\nfrom safetensors.torch import save_file\n\n" + variant(
        "save_checkpoint", ("    Path(path).parent.mkdir(parents=True, exist_ok=True)\n", _MAKEDIRS), *edits)


def _load(*edits: tuple[str, str]) -> str:
    """The reference load_checkpoint with its imports (``json``, ``safe_open``), then ``edits``."""
    return "import json\n\nfrom safetensors import safe_open\n\n" + variant("load_checkpoint", *edits)


WRONG = {
    "autocast_dtype": {
        # PyTorch's own question: but is_bf16_supported() says True on a T4 (7.5), which only
        # emulates bfloat16, and it ignores the capability argument.
        "is_bf16_supported": variant("autocast_dtype", (_ASK, ""), (
            "    # Not torch.cuda.is_bf16_supported(): a T4 (7.5) says True but only emulates bfloat16.\n"
            "    return torch.bfloat16 if tuple(capability) >= (8, 0) else torch.float16",
            "    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16")),
        # The argument is used, but a real GPU is asked with is_bf16_supported().
        "is_bf16_supported_without_capability": """
            def autocast_dtype(device, capability=None):
                device = torch.device(device)
                if device.type != "cuda":
                    return None
                if capability is not None:
                    return torch.bfloat16 if capability >= (8, 0) else torch.float16
                return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
            """,
        # major > 8: an A100 (8.0), an A10 (8.6) and an L4 (8.9) get float16.
        "major_greater_than_8": variant("autocast_dtype",
                                        ("tuple(capability) >= (8, 0)", "capability[0] > 8")),
        # float32 on the CPU: the training loop reads None as "no autocast".
        "float32_on_cpu": variant("autocast_dtype",
                                  ("return None  # CPU and MPS: plain float32", "return torch.float32")),
        # device.type on a string: "cuda:0" has no .type.
        "string_device_rejected": variant("autocast_dtype", ("    device = torch.device(device)\n", "")),
        # The whole string compared: "cuda:0" and torch.device("cuda") are not "cuda".
        "compares_the_whole_string": variant("autocast_dtype", ("    device = torch.device(device)\n", ""),
                                             ('if device.type != "cuda":', 'if device != "cuda":')),
        # The capability argument ignored: the GPU is always asked.
        "ignores_capability_argument": variant("autocast_dtype",
            ("    if capability is None:\n        capability =",
             "    capability =")),
        # The current GPU asked, not the one given ("cuda:1").
        "asks_the_current_gpu": variant("autocast_dtype",
                                        ("get_device_capability(device)", "get_device_capability()")),
        # Decided by whether a GPU exists, not by the device given: "cpu" on a GPU machine.
        "decides_by_is_available": variant("autocast_dtype",
            ('    device = torch.device(device)\n    if device.type != "cuda":',
             "    if not torch.cuda.is_available():")),
        # "major.minor" compared as text: "10.0" < "8.0", so a B200 gets float16.
        "compares_as_text": variant("autocast_dtype", ("tuple(capability) >= (8, 0)",
                                                       'f"{capability[0]}.{capability[1]}" >= "8.0"')),
        # A name instead of the dtype.
        "returns_a_string": variant("autocast_dtype",
            ("torch.bfloat16 if tuple(capability) >= (8, 0) else torch.float16",
             '"bfloat16" if tuple(capability) >= (8, 0) else "float16"')),
        # Only the CPU is special: Apple's MPS is treated as a CUDA GPU.
        "mps_as_gpu": variant("autocast_dtype", ('if device.type != "cuda":', 'if device.type == "cpu":')),
        # CPU autocast knows bfloat16: but the course trains in plain float32 off CUDA.
        "bfloat16_on_cpu": variant("autocast_dtype", ("return None  # CPU and MPS: plain float32",
                                                      'return torch.bfloat16 if device.type == "cpu" else None')),
        # The (major, minor) pair compared with a number.
        "compares_tuple_with_int": variant("autocast_dtype", ("tuple(capability) >= (8, 0)", "capability >= 8")),
    },
    "save_checkpoint": {
        # torch.save: a pickle, which can run code when loaded (and the static review flags it).
        "torch_save": """
            def save_checkpoint(path, model, optimizer, step, scaler=None):
                torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step,
                            "scaler": scaler.state_dict() if scaler is not None else None}, path)
            """,
        # The model only: a resumed AdamW starts from zero moments.
        "no_optimizer_state": _save((_SAVE_OPTIMIZER, "")),
        # The step forgotten in the metadata.
        "no_step": _save(('"step": str(int(step)),\n                ', "")),
        # The number of the next step stored instead of the step given.
        "step_plus_one": _save(("str(int(step))", "str(int(step) + 1)")),
        # The GradScaler left out.
        "scaler_ignored": _save(("json.dumps(scaler.state_dict() if scaler is not None else {})", '"{}"')),
        # The scaler as Python's repr of a dict (single quotes): not JSON.
        "scaler_as_repr": _save(("json.dumps(scaler.state_dict()", "str(scaler.state_dict()")),
        # state_dict() straight in: the tied lm_head.weight and wte share memory, which
        # safetensors refuses.
        "tied_weight_twice": _save((_DEDUP, "")),
        # Repeats skipped by id(): state_dict() detaches each entry into a new tensor object.
        "dedup_by_id": _save(("if value.data_ptr() in stored", "if id(value) in stored"),
                             ("stored.add(value.data_ptr())", "stored.add(id(value))")),
        # lm_head.weight skipped by name: an untied head is lost.
        "skips_lm_head_by_name": _save(
            (_DEDUP, '        if name == "lm_head.weight":\n            continue\n')),
        # Half precision "to save space": the resumed run does not continue exactly.
        "half_precision": _save(('tensors["model." + name] = value.detach().cpu().contiguous()',
                                 'tensors["model." + name] = value.detach().cpu().half().contiguous()')),
        # The optimizer's state numbered by model.parameters(): configure_optimizer's groups put
        # the 2-D parameters first, so the indices differ from optimizer.state_dict()'s.
        "optimizer_numbered_by_model_parameters": _save((_OPTIMIZER_LOOP, (
            "    for index, p in enumerate(model.parameters()):\n"
            "        for key, value in optimizer.state[p].items():"))),
        # The optimizer's state keyed by parameter names instead of optimizer.<i>.<key>.
        "optimizer_keyed_by_name": _save((_OPTIMIZER_LOOP, (
            "    for index, p in model.named_parameters():\n"
            "        for key, value in optimizer.state[p].items():"))),
        # 0-d tensors skipped: AdamW's per-parameter step count is lost.
        "drops_adam_step": _save(("        for key, value in state.items():\n", (
            "        for key, value in state.items():\n"
            "            if torch.as_tensor(value).dim() == 0:\n"
            "                continue\n"))),
        # The folder of path not created: a run's first checkpoint goes into a new folder.
        "no_folder_created": _save((_MAKEDIRS, "")),
        # The step as a tensor: the format keeps it in the metadata.
        "step_as_tensor": _save(('    metadata = {"step": str(int(step)),',
                                 '    tensors["step"] = torch.tensor(int(step))\n    metadata = {')),
        # The model itself turned to float16 "to halve the file": training goes on in float16.
        "model_to_half_in_place": _save(("    tensors, stored = {}, set()\n",
                                         "    model.half()  # half the size\n    tensors, stored = {}, set()\n")),
        # The step as a number in the metadata, which holds strings only.
        "step_as_int_in_metadata": _save(("str(int(step))", "int(step)")),
    },
    "load_checkpoint": {
        # strict loading: the tied weight is stored once, so lm_head.weight is "missing".
        "strict_load": _load((_LOAD_MODEL, "    model.load_state_dict(model_state)\n")),
        # strict=False and nothing checked: a file that lacks a tensor loads silently.
        "missing_tensors_ignored": _load(
            (_LOAD_MODEL, "    model.load_state_dict(model_state, strict=False)\n")),
        # assign=True: new Parameter objects, which the optimizer does not know.
        "assign_true": _load(
            (_LOAD_MODEL, "    model.load_state_dict(model_state, strict=False, assign=True)\n")),
        # The parameters replaced by hand with new nn.Parameters.
        "new_parameters": _load((_LOAD_MODEL, """\
    params = dict(model.named_parameters())
    for name, value in model_state.items():
        module_name, _, attr = name.rpartition(".")
        module = model.get_submodule(module_name)
        module._parameters[attr] = nn.Parameter(value.clone())
    if "lm_head.weight" not in model_state:
        model.lm_head.weight = model.transformer.wte.weight
""")),
        # The optimizer's state left as it is: AdamW restarts from zero moments.
        "optimizer_state_ignored": _load((_LOAD_OPTIMIZER, "")),
        # A fresh optimizer made inside: the caller's keeps no state.
        "new_optimizer_inside": _load((_LOAD_OPTIMIZER, (
            "    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)\n" + _LOAD_OPTIMIZER))),
        # The state given to model.parameters() in order: configure_optimizer's groups put the
        # 2-D parameters first, so index i is not the i-th parameter of the model.
        "optimizer_by_model_parameter_order": _load((_LOAD_OPTIMIZER, """\
    params = list(model.parameters())
    for index, entry in optimizer_state.items():
        optimizer.state[params[index]] = {k: v.clone() for k, v in entry.items()}
""")),
        # The GradScaler not restored.
        "scaler_ignored": _load(
            ('    scaler_state = json.loads(metadata.get("scaler", "{}"))\n'
             "    if scaler is not None and scaler_state:\n        scaler.load_state_dict(scaler_state)\n",
             "")),
        # The scaler restored without asking whether there is one.
        "scaler_none_not_handled": _load(("if scaler is not None and scaler_state:", "if scaler_state:")),
        # Returns nothing: the loop starts counting from 0 again.
        "returns_nothing": _load(('    return int(metadata["step"])', "    return None")),
        # Returns the metadata's string.
        "returns_string": _load(('int(metadata["step"])', 'metadata["step"]')),
        # Returns AdamW's step count, not the run's step.
        "returns_adam_step": _load(('int(metadata["step"])', 'int(optimizer_state[0]["step"])')),
        # p.copy_ outside torch.no_grad(): autograd refuses in-place changes of a leaf parameter.
        "copy_without_no_grad": _load((_LOAD_MODEL, """\
    params = dict(model.named_parameters())
    for name, value in model_state.items():
        if name in params:
            params[name].copy_(value)
""")),
        # The optimizer's indices left as the strings of the file's keys.
        "optimizer_keys_as_strings": _load(("optimizer_state.setdefault(int(index), {})",
                                            "optimizer_state.setdefault(index, {})")),
        # The state alone given to optimizer.load_state_dict: it needs the param_groups too.
        "optimizer_without_param_groups": _load(
            (_LOAD_OPTIMIZER, '    optimizer.load_state_dict({"state": optimizer_state})\n')),
        # Every parameter read under its named_parameters() name: a tied weight stored as
        # model.lm_head.weight is not found.
        "reads_named_parameters_only": _load((_LOAD_MODEL, """\
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(model_state[name])
""")),
        # The step as a float.
        "returns_float_step": _load(('int(metadata["step"])', 'float(metadata["step"])')),
        # Reads each state_dict name from the file: a tied weight stored once is not there.
        "reads_every_state_dict_name": _load((_LOAD_MODEL, """\
    with torch.no_grad():
        for name, p in model.state_dict(keep_vars=True).items():
            p.copy_(tensors["model." + name])
""")),
    },
}

# For each wrong answer: the rule of the exercise's text it breaks, and a fragment the failure
# message must hold (the mistake named in the learner's terms; None: a general message will do).
EXPECT = {
    "autocast_dtype": {
        "is_bf16_supported": ("float16 below 8.0", "not torch.cuda.is_bf16_supported()"),
        "is_bf16_supported_without_capability": ("ask the GPU given",
                                                 "do not trust torch.cuda.is_bf16_supported()"),
        "major_greater_than_8": ("bfloat16 from 8.0", "not major > 8"),
        "float32_on_cpu": ("None off CUDA", "off CUDA it should return None"),
        "string_device_rejected": ("any device spelling", "make it a torch.device first"),
        "compares_the_whole_string": ("any device spelling", "\"cuda:0\" is a CUDA device too"),
        "ignores_capability_argument": ("the capability argument decides", "the capability argument was ignored"),
        "asks_the_current_gpu": ("ask the GPU given", "pass the device on"),
        "decides_by_is_available": ("None off CUDA", "return None for other devices"),
        "compares_as_text": ("bfloat16 from 8.0", "not as text"),
        "returns_a_string": ("float16 below 8.0", "it should return a torch.dtype"),
        "mps_as_gpu": ("None off CUDA", "return None for other devices"),
        "bfloat16_on_cpu": ("None off CUDA", "is not a CUDA GPU: return None"),
        "compares_tuple_with_int": ("bfloat16 from 8.0", "compare it with a tuple"),
    },
    "save_checkpoint": {
        "torch_save": ("a safetensors file at path", "the file is a pickle"),
        "no_optimizer_state": ("the optimizer's state", "the optimizer's state is not in the file"),
        "no_step": ("step and scaler", "the step is not stored"),
        "step_plus_one": ("step and scaler", "store the step it is given"),
        "scaler_ignored": ("step and scaler", "the GradScaler's state is not stored"),
        "scaler_as_repr": ("step and scaler", "which is not JSON"),
        "tied_weight_twice": ("every model tensor", "if it says tensors share memory"),
        "dedup_by_id": ("every model tensor", "compare value.data_ptr()"),
        "skips_lm_head_by_name": ("every model tensor", "never by name"),
        "half_precision": ("every model tensor", "is stored as torch.float16"),
        "optimizer_numbered_by_model_parameters": ("the optimizer's state",
                                                   "i is the integer key of optimizer.state_dict()['state']"),
        "optimizer_keyed_by_name": ("the optimizer's state", "is not of the form optimizer.<i>.<key>"),
        "drops_adam_step": ("the optimizer's state", "the file has no optimizer.<i>.step"),
        "no_folder_created": ("the folder is made", "create the folder of path first"),
        "step_as_tensor": ("step and scaler", "the step is stored as a tensor"),
        "model_to_half_in_place": ("saving only reads", "save_checkpoint changed the model's"),
        "step_as_int_in_metadata": ("step and scaler", "metadata is a dict of strings"),
    },
    "load_checkpoint": {
        "strict_load": ("a tied weight under either name", "a tied weight is stored once"),
        "missing_tensors_ignored": ("a file that does not fit is refused",
                                    "yet load_checkpoint returned normally"),
        "assign_true": ("in place", "the model's parameters were replaced by new tensors"),
        "new_parameters": ("in place", "the model's parameters were replaced by new tensors"),
        "optimizer_state_ignored": ("the optimizer's state", "the optimizer's state was not loaded"),
        "new_optimizer_inside": ("the optimizer's state", "the optimizer's state was not loaded"),
        "optimizer_by_model_parameter_order": ("the optimizer's state",
                                               "the integer key i of optimizer.state_dict()['state']"),
        "scaler_ignored": ("the scaler", "scaler.load_state_dict(json.loads(metadata['scaler']))"),
        "scaler_none_not_handled": ("the scaler", "restore its state only if scaler is not None"),
        "returns_nothing": ("the step returned", "it returned None"),
        "returns_string": ("the step returned", "return the step as an int"),
        "returns_adam_step": ("the step returned", "not AdamW's own step count"),
        "reads_every_state_dict_name": ("a tied weight under either name",
                                        "may store a tied weight under either name"),
        "copy_without_no_grad": ("in place", "copy into the parameters under torch.no_grad()"),
        "optimizer_keys_as_strings": ("the optimizer's state", "turn the i of optimizer.<i>.<key> into an int"),
        "optimizer_without_param_groups": ("the optimizer's state",
                                           "wants the whole dict optimizer.state_dict() gives"),
        "reads_named_parameters_only": ("a tied weight under either name",
                                        "may store a tied weight under either name"),
        "returns_float_step": ("the step returned", "return the step as an int"),
    },
}

VALID = {
    "autocast_dtype": {
        # The major number alone: bfloat16 from compute capability 8.
        "major_at_least_8": variant("autocast_dtype", ("tuple(capability) >= (8, 0)", "capability[0] >= 8")),
        # get_device_capability asked by index (None for "cuda": the current GPU).
        "asks_by_index": """
            def autocast_dtype(device, capability=None):
                device = torch.device(device)
                if device.type != "cuda":
                    return None
                major, minor = capability or torch.cuda.get_device_capability(device.index)
                return torch.bfloat16 if major * 10 + minor >= 80 else torch.float16
            """,
        # get_device_properties' major and minor.
        "device_properties": """
            def autocast_dtype(device, capability=None):
                if not str(device).startswith("cuda"):
                    return None
                if capability is None:
                    props = torch.cuda.get_device_properties(torch.device(device))
                    capability = (props.major, props.minor)
                major, minor = capability
                return torch.float16 if (major, minor) < (8, 0) else torch.bfloat16
            """,
        # Also asks whether CUDA is there, and compares major.minor as a number.
        "checks_is_available_too": """
            def autocast_dtype(device, capability=None):
                device = torch.device(device)
                if device.type != "cuda" or not torch.cuda.is_available():
                    return None
                major, minor = capability if capability is not None else torch.cuda.get_device_capability(device)
                return torch.bfloat16 if float(f"{major}.{minor}") >= 8.0 else torch.float16
            """,
        # The reference's code.
        "reference": variant("autocast_dtype"),
        # major.minor as one number.
        "major_minor_as_number": variant("autocast_dtype", ("tuple(capability) >= (8, 0)",
                                                            "capability[0] + capability[1] / 10 >= 8")),
    },
    "save_checkpoint": {
        "reference": _save(),
        # Every state_dict name as its own copy: the tied weight stored twice (the format allows it).
        "clones_every_name": """
            def save_checkpoint(path, model, optimizer, step, scaler=None):
                import json
                import os
                from safetensors.torch import save_file
                tensors = {"model." + k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
                for i, state in optimizer.state_dict()["state"].items():
                    tensors.update({f"optimizer.{i}.{k}": v.detach().cpu().clone() for k, v in state.items()})
                metadata = {"step": str(step)}
                if scaler is not None:
                    metadata["scaler"] = json.dumps(scaler.state_dict())
                os.makedirs(os.path.dirname(str(path)) or ".", exist_ok=True)
                save_file(tensors, str(path), metadata=metadata)
            """,
        # named_parameters() skips the tied repeat by itself (this GPT has no buffers).
        "named_parameters": """
            def save_checkpoint(path, model, optimizer, step, scaler=None):
                import json
                import os
                import safetensors.torch
                tensors = {f"model.{name}": p.detach().cpu() for name, p in model.named_parameters()}
                index = {id(p): i for i, p in enumerate(p for g in optimizer.param_groups for p in g["params"])}
                for p, state in optimizer.state.items():
                    for key, value in state.items():
                        tensors[f"optimizer.{index[id(p)]}.{key}"] = value.detach().cpu()
                scaler_json = "{}" if scaler is None else json.dumps(scaler.state_dict())
                path.parent.mkdir(parents=True, exist_ok=True) if hasattr(path, "parent") else \
                    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
                safetensors.torch.save_file(tensors, str(path), metadata={"step": f"{int(step)}", "scaler": scaler_json})
            """,
        # The folder made first, and the tied weight kept under its last name.
        "makes_the_folder_keeps_last_name": """
            def save_checkpoint(path, model, optimizer, step, scaler=None):
                import json
                import os
                from safetensors.torch import save_file
                by_storage = {}
                for name, value in model.state_dict().items():
                    by_storage[value.data_ptr()] = (name, value)
                tensors = {"model." + name: value.contiguous() for name, value in by_storage.values()}
                for i, state in optimizer.state_dict()["state"].items():
                    for key, value in state.items():
                        tensors[f"optimizer.{i}.{key}"] = value if torch.is_tensor(value) else torch.tensor(value)
                os.makedirs(os.path.dirname(os.path.abspath(str(path))), exist_ok=True)
                save_file(tensors, os.fspath(path),
                          metadata={"step": str(int(step)),
                                    "scaler": json.dumps({} if scaler is None else scaler.state_dict())})
            """,
    },
    "load_checkpoint": {
        "reference": _load(),
        # load_file, strict=False, and the missing names allowed only for a tied pair.
        "strict_false_tie_checked": """
            def load_checkpoint(path, model, optimizer, scaler=None):
                import json
                from safetensors import safe_open
                from safetensors.torch import load_file
                tensors = load_file(str(path))
                with safe_open(str(path), framework="pt") as f:
                    metadata = f.metadata()
                model_state = {k.removeprefix("model."): v for k, v in tensors.items() if k.startswith("model.")}
                missing, unexpected = model.load_state_dict(model_state, strict=False)
                pair = {"lm_head.weight", "transformer.wte.weight"}
                tied = model.lm_head.weight is model.transformer.wte.weight
                allowed = pair - set(model_state) if tied and pair & set(model_state) else set()
                if unexpected or set(missing) - allowed:
                    raise ValueError(f"the checkpoint does not fit: missing {missing}, unexpected {unexpected}")
                state = {}
                for key, value in tensors.items():
                    if key.startswith("optimizer."):
                        _, i, name = key.split(".")
                        state.setdefault(int(i), {})[name] = value
                full = optimizer.state_dict()
                full["state"] = state
                optimizer.load_state_dict(full)
                if scaler is not None and metadata.get("scaler") not in (None, "", "{}"):
                    scaler.load_state_dict(json.loads(metadata["scaler"]))
                return int(metadata["step"])
            """,
        # load_file for the tensors, safe_open only for the metadata; p.copy_ per parameter.
        "load_file_and_copy": """
            def load_checkpoint(path, model, optimizer, scaler=None):
                import json
                from safetensors import safe_open
                from safetensors.torch import load_file
                tensors = load_file(str(path))
                with safe_open(str(path), framework="pt") as f:
                    metadata = f.metadata()
                params = dict(model.named_parameters())
                tied = model.lm_head.weight is model.transformer.wte.weight
                with torch.no_grad():
                    for name, p in params.items():
                        key = "model." + name
                        if key not in tensors and tied and name == "transformer.wte.weight":
                            key = "model.lm_head.weight"
                        if key not in tensors:
                            raise KeyError(f"{key} is not in the checkpoint")
                        p.copy_(tensors[key])
                state = {}
                for key, value in tensors.items():
                    if key.startswith("optimizer."):
                        _, i, name = key.split(".", 2)
                        state.setdefault(int(i), {})[name] = value
                optimizer.load_state_dict({"state": state, "param_groups": optimizer.state_dict()["param_groups"]})
                if scaler is not None and metadata.get("scaler", "{}") != "{}":
                    scaler.load_state_dict(json.loads(metadata["scaler"]))
                return int(metadata["step"])
            """,
        # The optimizer's state set directly, by the optimizer's own parameter order; p.data = value.
        "state_set_directly": """
            def load_checkpoint(path, model, optimizer, scaler=None):
                import json
                from safetensors import safe_open
                with safe_open(str(path), framework="pt") as f:
                    meta = f.metadata()
                    keys = list(f.keys())
                    model_keys = {k[6:] for k in keys if k.startswith("model.")}
                    expected = set(dict(model.named_parameters()))
                    if "lm_head.weight" in model_keys:
                        model_keys.add("transformer.wte.weight")
                    if expected - model_keys:
                        raise ValueError(f"missing from the checkpoint: {sorted(expected - model_keys)}")
                    for name, p in model.named_parameters():
                        key = "model." + name
                        if key not in keys:
                            key = "model.lm_head.weight"
                        p.data = f.get_tensor(key)
                    ordered = [p for g in optimizer.param_groups for p in g["params"]]
                    for key in keys:
                        if key.startswith("optimizer."):
                            _, i, name = key.split(".", 2)
                            optimizer.state[ordered[int(i)]][name] = f.get_tensor(key)
                if scaler is not None:
                    saved = json.loads(meta.get("scaler") or "{}")
                    if saved:
                        scaler.load_state_dict(saved)
                return int(meta["step"])
            """,
    },
}

# ---- previous_token_scores and induction_scores -------------------------------------------
# The checks feed random causal attention (softmax of random scores under the causal mask), some
# with a planted previous-token or induction head, T = 2 .. 12, sequences repeated once, twice or
# cut short, period 1 .. 6, one input stored transposed (a non-contiguous view).

_PREV = "torch.diagonal(weights, offset=-1, dim1=-2, dim2=-1).mean(dim=-1)"
_IND_DIAG = "torch.diagonal(weights, offset=-(period - 1), dim1=-2, dim2=-1)"

WRONG.update({
    "previous_token_scores": {
        # The main diagonal: each position's weight on itself.
        "main_diagonal": variant("previous_token_scores", ("offset=-1", "offset=0")),
        # Two back instead of one.
        "two_back": variant("previous_token_scores", ("offset=-1", "offset=-2")),
        # Above the diagonal: query i - 1 looking at key i (the transposed reading), all zeros.
        "wrong_axis": variant("previous_token_scores", ("offset=-1", "offset=1")),
        # Counts position 0, which has no previous position: sum / T.
        "includes_position_0": variant("previous_token_scores",
                                       (".mean(dim=-1)", ".sum(dim=-1) / weights.shape[-1]")),
        # The sum over positions, not the mean.
        "sum_not_mean": variant("previous_token_scores", (".mean(dim=-1)", ".sum(dim=-1)")),
        # Averages over the heads too (one number per layer, broadcast back).
        "averaged_over_heads": variant("previous_token_scores", (
            ".mean(dim=-1)", ".mean(dim=-1).mean(dim=1, keepdim=True).expand(weights.shape[:2])")),
        # Averages over the layers as well as the positions: one score per head.
        "averaged_over_layers": variant("previous_token_scores", (".mean(dim=-1)", ".mean(dim=(0, -1))")),
        # Goes through NumPy and forgets to come back.
        "returns_numpy": """
            import numpy as np

            def previous_token_scores(weights):
                w = weights.numpy()
                return np.diagonal(w, offset=-1, axis1=-2, axis2=-1).mean(axis=-1)
            """,
        # Zeroes row 0 of the caller's tensor "to leave it out", in place, then divides by T - 1.
        "modifies_weights": """
            def previous_token_scores(weights):
                weights[..., 0, :] = 0
                T = weights.shape[-1]
                return torch.diagonal(weights, offset=-1, dim1=-2, dim2=-1).sum(dim=-1) / (T - 1)
            """,
        # Loops over a fixed 12 x 12 (GPT-2 small's shape).
        "hard_coded_shape": """
            def previous_token_scores(weights):
                scores = torch.zeros(12, 12)
                T = weights.shape[-1]
                for layer in range(weights.shape[0]):
                    for head in range(weights.shape[1]):
                        scores[layer, head] = sum(weights[layer, head, i, i - 1] for i in range(1, T)) / (T - 1)
                return scores
            """,
        # Transposes "to get the keys first", then takes the diagonal below: that is the weight
        # of query i - 1 on the later key i, 0 under the causal mask.
        "keys_as_rows": """
            def previous_token_scores(weights):
                keys_first = weights.transpose(-2, -1)
                return torch.diagonal(keys_first, offset=-1, dim1=-2, dim2=-1).mean(dim=-1)
            """,
    },
    "induction_scores": {
        # The previous occurrence itself (i - period), not the token after it.
        "previous_occurrence": variant("induction_scores", ("offset=-(period - 1)", "offset=-period"),
                                       ("diagonal[..., 1:]", "diagonal")),
        # Keeps query period - 1 (key 0), still in the first copy.
        "includes_first_copy_query": variant("induction_scores", ("diagonal[..., 1:]", "diagonal")),
        # Takes T // 2 for the period: right only when the sequence is exactly two copies.
        "half_of_T": variant("induction_scores", ("    diagonal = ", "    period = weights.shape[-1] // 2\n    diagonal = ")),
        # Divides by T, as if every query had a previous occurrence.
        "divides_by_T": variant("induction_scores", ("diagonal[..., 1:].mean(dim=-1)",
                                                     "diagonal[..., 1:].sum(dim=-1) / weights.shape[-1]")),
        # The sum, not the mean.
        "sum_not_mean": variant("induction_scores", ("diagonal[..., 1:].mean(dim=-1)", "diagonal[..., 1:].sum(dim=-1)")),
        # i - period + 2: one too far.
        "one_too_far": """
            def induction_scores(weights, period):
                T = weights.shape[-1]
                queries = torch.arange(period, T)
                return weights[..., queries, queries - period + 2].mean(dim=-1)
            """,
        # The previous-token score under the other name.
        "previous_token_instead": """
            def induction_scores(weights, period):
                return torch.diagonal(weights, offset=-1, dim1=-2, dim2=-1).mean(dim=-1)
            """,
        # Repeated part counted from T // 2 (right only for exactly two copies).
        "starts_at_half": """
            def induction_scores(weights, period):
                T = weights.shape[-1]
                rows = torch.arange(T // 2, T)
                return weights[..., rows, rows - period + 1].mean(dim=-1)
            """,
        # NumPy result.
        "returns_numpy": """
            import numpy as np

            def induction_scores(weights, period):
                w = weights.numpy()
                d = np.diagonal(w, offset=-(period - 1), axis1=-2, axis2=-1)
                return d[..., 1:].mean(axis=-1)
            """,
        # Zeroes the first copy's rows of the caller's tensor in place, then sums and divides.
        "modifies_weights": """
            def induction_scores(weights, period):
                weights[..., :period, :] = 0
                T = weights.shape[-1]
                diagonal = torch.diagonal(weights, offset=-(period - 1), dim1=-2, dim2=-1)
                return diagonal.sum(dim=-1) / (T - period)
            """,
        # Averages over layers and heads as well: a single number.
        "averaged_over_everything": variant("induction_scores", ("diagonal[..., 1:].mean(dim=-1)",
                                                                 "diagonal[..., 1:].mean()")),
    },
})

EXPECT.update({
    "previous_token_scores": {
        "main_diagonal": ("the previous position", "main diagonal"),
        "two_back": ("the previous position", "two positions back"),
        "wrong_axis": ("the previous position", "rows are queries"),
        "includes_position_0": ("queries 1 .. T-1", "position 0 has no previous position"),
        "sum_not_mean": ("a mean", "the score is the mean"),
        "averaged_over_heads": ("one score per head", "mean over the heads"),
        "averaged_over_layers": ("one score per head", "one score per (layer, head)"),
        "returns_numpy": ("a tensor, weights unchanged", "NumPy array"),
        "modifies_weights": ("a tensor, weights unchanged", "in place"),
        "hard_coded_shape": ("one score per head", "expected (2, 3)"),
        "keys_as_rows": ("the previous position", "rows are queries"),
    },
    "induction_scores": {
        "previous_occurrence": ("the token after the previous occurrence", "i - period + 1"),
        "includes_first_copy_query": ("the repeated part only", "still in the first copy"),
        "half_of_T": ("the period given", "not T // 2"),
        "divides_by_T": ("a mean", "divided by T"),
        "sum_not_mean": ("a mean", "the score is the mean"),
        "one_too_far": ("the token after the previous occurrence", "i - period + 2"),
        "previous_token_instead": ("the token after the previous occurrence", "previous-token score"),
        "starts_at_half": ("the period given", "not at T // 2"),
        "returns_numpy": ("a tensor, weights unchanged", "NumPy array"),
        "modifies_weights": ("a tensor, weights unchanged", "in place"),
        "averaged_over_everything": ("one score per head", "one score per (layer, head)"),
    },
})

VALID.update({
    "previous_token_scores": {
        # Plain loops over layers, heads and positions.
        "loops": """
            def previous_token_scores(weights):
                L, H, T, _ = weights.shape
                scores = torch.zeros(L, H)
                for l in range(L):
                    for h in range(H):
                        scores[l, h] = sum(weights[l, h, i, i - 1] for i in range(1, T)) / (T - 1)
                return scores
            """,
        # Advanced indexing with two index vectors.
        "index_vectors": """
            def previous_token_scores(weights):
                T = weights.shape[-1]
                rows = torch.arange(1, T)
                return weights[..., rows, rows - 1].mean(dim=-1)
            """,
        # A mask of the diagonal just below the main one, summed and divided.
        "mask": """
            def previous_token_scores(weights):
                T = weights.shape[-1]
                below = torch.ones(T, T, dtype=weights.dtype).tril(-1).triu(-1)   # ones at (i, i - 1)
                return (weights * below).sum(dim=(-2, -1)) / (T - 1)
            """,
        # torch.diagonal with positional arguments, in float64, cast back.
        "float64_then_back": """
            def previous_token_scores(weights):
                d = weights.double().diagonal(-1, -2, -1)
                return d.mean(-1).to(weights.dtype)
            """,
    },
    "induction_scores": {
        # Loops.
        "loops": """
            def induction_scores(weights, period):
                L, H, T, _ = weights.shape
                scores = torch.zeros(L, H)
                for l in range(L):
                    for h in range(H):
                        scores[l, h] = sum(weights[l, h, i, i - period + 1] for i in range(period, T)) / (T - period)
                return scores
            """,
        # Index vectors over the repeated part.
        "index_vectors": """
            def induction_scores(weights, period):
                T = weights.shape[-1]
                queries = torch.arange(period, T)
                return weights[..., queries, queries - period + 1].mean(dim=-1)
            """,
        # Slices the repeated rows first, then takes their diagonal.
        "slice_then_diagonal": """
            def induction_scores(weights, period):
                repeated = weights[..., period:, 1:]   # queries period.., keys 1..: key i - period + 1
                return torch.diagonal(repeated, dim1=-2, dim2=-1).mean(dim=-1)
            """,
        # A mask on the shifted diagonal, summed and divided.
        "mask": """
            def induction_scores(weights, period):
                T = weights.shape[-1]
                mask = torch.zeros(T, T, dtype=weights.dtype)
                for i in range(period, T):
                    mask[i, i - period + 1] = 1
                return (weights * mask).sum(dim=(-2, -1)) / (T - period)
            """,
    },
})

WRONG, VALID = map(_tidy, (WRONG, VALID))
