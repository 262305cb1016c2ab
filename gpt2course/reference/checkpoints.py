"""Notebook 10: checkpoints that resume the same run.

``save_checkpoint`` / ``load_checkpoint`` store a model, its AdamW state, the step and the loss
scaler in one safetensors file, so that a Colab session that dies can resume the same run.
``gpt2course.training.checkpoints`` is the full version for long runs (``python -m gpt2course
train``): the same ``model.<name>`` / ``optimizer.<i>.<key>`` tensor names, plus the batch
generator's state, the run's settings and an atomic write; its ``checkpoint_folder`` (given,
not an exercise) puts the file on Google Drive when it is mounted. (The grader's checks of these
two: gpt2course/checks/checkpoints.py.)
"""

import json
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file


# ---- generated from solutions/10_full_training_run.ipynb by `python -m grader build` ----
# cells: save_checkpoint, load_checkpoint
# Edit those answer cells in the notebook, not the code below.


def save_checkpoint(path, model, optimizer, step, scaler=None):
    """Write ``model``'s parameters, ``optimizer``'s state (AdamW: step, exp_avg, exp_avg_sq
    per parameter), the number of steps done and, if given, ``scaler``'s state (a
    torch.amp.GradScaler) to the safetensors file ``path``."""
    ### BEGIN SOLUTION
    tensors, stored = {}, set()
    for name, value in model.state_dict().items():
        # A tied weight (GPT's lm_head is the token embedding) is stored once: safetensors
        # refuses to store one tensor under two names.
        if value.data_ptr() in stored:
            continue
        stored.add(value.data_ptr())
        tensors["model." + name] = value.detach().cpu().contiguous()
    for index, state in optimizer.state_dict()["state"].items():
        for key, value in state.items():
            tensors[f"optimizer.{index}.{key}"] = torch.as_tensor(value).detach().cpu().contiguous()
    metadata = {"step": str(int(step)),
                "scaler": json.dumps(scaler.state_dict() if scaler is not None else {})}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata=metadata)
    ### END SOLUTION


def load_checkpoint(path, model, optimizer, scaler=None):
    """Load a file written by ``save_checkpoint`` into ``model`` and ``optimizer`` (and
    ``scaler`` if given), in place, and return the number of steps done."""
    ### BEGIN SOLUTION
    with safe_open(str(path), framework="pt") as f:
        metadata = f.metadata()
        tensors = {key: f.get_tensor(key) for key in f.keys()}
    model_state, optimizer_state = {}, {}
    for key, value in tensors.items():
        kind, _, rest = key.partition(".")
        if kind == "model":
            model_state[rest] = value
        elif kind == "optimizer":
            index, _, name = rest.partition(".")
            optimizer_state.setdefault(int(index), {})[name] = value
    current = model.state_dict()
    loaded = {current[name].data_ptr() for name in model_state if name in current}
    missing, unexpected = model.load_state_dict(model_state, strict=False)
    untied = [name for name in missing if current[name].data_ptr() not in loaded]
    if unexpected or untied:  # only a tied weight may be missing: it was loaded under its other name
        raise KeyError(f"the checkpoint does not fit the model: missing {untied}, unexpected {unexpected}")
    state = optimizer.state_dict()
    state["state"] = optimizer_state
    optimizer.load_state_dict(state)
    scaler_state = json.loads(metadata.get("scaler", "{}"))
    if scaler is not None and scaler_state:
        scaler.load_state_dict(scaler_state)
    return int(metadata["step"])
    ### END SOLUTION
