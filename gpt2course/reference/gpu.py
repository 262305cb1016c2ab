"""Notebook 10: the GPU run's helpers: which dtype to compute in, and checkpoints that resume.

``autocast_dtype(device)`` chooses the arithmetic: bfloat16 autocast on GPUs of compute
capability 8.0 or more (A100, L4, H100), float16 autocast (with a loss scaler) on older ones
(T4, V100), and None, meaning plain float32 without autocast, on CPUs and Apple's MPS.
``save_checkpoint`` / ``load_checkpoint`` store a model, its AdamW state, the step and the loss
scaler in one safetensors file, so that a Colab session that dies can resume the same run.
``gpt2course.checkpoint.checkpoint_folder`` (given, not an exercise) puts that file on Google
Drive when it is mounted.

The full version for long runs is ``gpt2course/checkpoint.py`` (used by ``python -m gpt2course
train``): the same ``model.<name>`` / ``optimizer.<i>.<key>`` tensor names, plus the batch
generator's state, the run's settings and an atomic write. ``gpt2course.devices.autocast_dtype``
calls ``autocast_dtype`` here for its "auto" choice, so the rule lives in one place.

Design note for the grader's checks (built in gpt2course/checks/gpu.py, call kinds in
gpt2course/checks/protocol.py):

- ``autocast_dtype``: must run on a CPU-only grading machine. Called with the ``capability``
  argument ((7, 5) and (7, 0) -> float16; (8, 0), (8, 6), (8, 9), (9, 0), (10, 0) -> bfloat16)
  while the stand-in GPUs say the opposite (so the argument must win), with "cpu",
  torch.device("cpu") and "mps" -> None, and with "cuda" / "cuda:1" / torch.device("cuda:1") and
  no capability while torch.cuda.get_device_capability and get_device_properties are replaced by
  stubs that answer per device index (each GPU of another class than its neighbours) and record
  what they were asked (the learner must query the GPU asked about), is_available says True and
  is_bf16_supported() says True everywhere (it does on a T4). Mistakes caught and named:
  is_bf16_supported() instead of the capability; major > 8 (sm80 is an A100); "major.minor"
  compared as text (10.0 < 8.0); float32 returned for the CPU instead of None; a string device
  not accepted; the capability argument ignored; the current GPU asked instead of the one given.
- Checkpoints: the checks build a tiny GPT (protocol.checkpoint_model, tied or untied head) and an
  AdamW as configure_optimizer does, and give them parameter values, an AdamW state (step,
  exp_avg, exp_avg_sq) and a GradScaler state chosen by the check, so a file's content is known
  bit for bit. ``save_checkpoint``'s file comes back as bytes and is read by safetensors in the
  grader (a pickle from torch.save is named as such): every model.<name> and optimizer.<i>.<key>
  tensor equal to the state (float32, the tied head once or twice, an untied head present), the
  step and the scaler's JSON in the metadata, the folder of path created, model and optimizer
  unchanged; then a run resumed from the file with a trusted loader must take the same next step
  (loss, parameters, AdamW state) as the run that never stopped. ``load_checkpoint`` reads files
  written in the format (tied head under either name or both; AdamW's step count may differ from
  the run's step) and must return the run's step as an int, keep the same parameter objects and
  the tie, hold the file's values and AdamW state, restore a given scaler, survive scaler=None
  with a scaler in the file, and then step like the oracle; a file lacking a model tensor must
  raise (the exercise text says so).
"""

import json
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file


# ---- generated from solutions/10_full_training_run.ipynb by `python -m grader build` ----
# cells: autocast_dtype, save_checkpoint, load_checkpoint
# Edit those answer cells in the notebook, not the code below.


def autocast_dtype(device, capability=None):
    """The dtype to autocast to when training on ``device`` (a torch.device or a string such as
    "cuda", "cuda:0", "cpu"): torch.bfloat16 on CUDA GPUs of compute capability 8.0 or more,
    torch.float16 on older CUDA GPUs (train with a GradScaler), None on every other device (no
    autocast: train in float32). ``capability`` (major, minor) is the GPU's compute capability;
    None asks the GPU (torch.cuda.get_device_capability)."""
    ### BEGIN SOLUTION
    device = torch.device(device)
    if device.type != "cuda":
        return None  # CPU and MPS: plain float32
    if capability is None:
        capability = torch.cuda.get_device_capability(device)
    # Not torch.cuda.is_bf16_supported(): a T4 (7.5) says True but only emulates bfloat16.
    return torch.bfloat16 if tuple(capability) >= (8, 0) else torch.float16
    ### END SOLUTION


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
