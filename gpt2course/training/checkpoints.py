"""Training checkpoints as one safetensors file: the model, AdamW's state and the run's settings.

``checkpoint.safetensors`` (in a run's folder) holds

- ``model.<name>``: the course GPT's state dict (its own ``nn.Linear`` layout, not Hugging
  Face's Conv1D; ``lm_head.weight`` is left out because it is ``transformer.wte.weight``),
- ``optimizer.<i>.<key>``: AdamW's per-parameter state (``step``, ``exp_avg``,
  ``exp_avg_sq``) for the optimiser's i-th parameter,
- ``rng.batches``: the state of the generator that draws the training batches (uint8),
- metadata (strings): ``format``, ``step`` (optimiser steps done), ``train_config`` and
  ``gpt_config`` (JSON), ``preset``, ``scaler`` (the float16 loss scaler's state, JSON) and
  ``progress`` (JSON: seconds and tokens so far).

With the batch generator's state, a resumed run draws the batches the uninterrupted run would
have drawn (dropout masks need no state: they are seeded with (seed, step, rank)).
The file is written to a temporary name and renamed, so a crash never leaves half a checkpoint.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..weights import WeightsFileError, finish_atomic_write, read_metadata

CHECKPOINT_NAME = "checkpoint.safetensors"
DRIVE = Path("/content/drive/MyDrive")  # where Colab mounts Google Drive
FORMAT = "gpt2course-checkpoint-1"
TIED = "lm_head.weight"  # the same tensor as transformer.wte.weight


class CheckpointError(WeightsFileError):
    """A checkpoint that is missing, unreadable, or not one of the course's training checkpoints."""


@dataclass
class Checkpoint:
    step: int
    config: object            # presets.TrainConfig
    preset: str
    model_state: dict
    optimizer_state: dict     # {param index: {"step": ..., "exp_avg": ..., "exp_avg_sq": ...}}
    batch_generator_state: object = None  # torch.Generator.get_state() of the batch sampler
    scaler_state: dict = field(default_factory=dict)
    progress: dict = field(default_factory=dict)


def checkpoint_file(path: str | Path) -> Path:
    """``path`` itself when it is a file, ``path/checkpoint.safetensors`` when it is a folder."""
    path = Path(path)
    return path / CHECKPOINT_NAME if path.is_dir() else path


def is_checkpoint(path: str | Path) -> bool:
    """True when ``path`` (a file or a run folder) is one of the course's training checkpoints."""
    try:
        return read_metadata(checkpoint_file(path)).get("format") == FORMAT
    except WeightsFileError:
        return False


def save_checkpoint(path: str | Path, model, optimizer, config, step: int, preset: str = "",
                    batch_generator_state=None, scaler_state: dict | None = None,
                    progress: dict | None = None) -> Path:
    """Write a checkpoint of ``model`` (the course GPT, not a DDP or compiled wrapper) and
    ``optimizer`` after ``step`` steps to ``path`` atomically; returns the path."""
    from safetensors.torch import save_file

    from .presets import gpt_config

    path = Path(path)
    tensors = {f"model.{k}": v.detach().cpu().contiguous()
               for k, v in model.state_dict().items() if k != TIED}
    state = optimizer.state_dict()["state"]
    for index, values in state.items():
        for key, value in values.items():
            if not hasattr(value, "detach"):
                raise TypeError(f"optimizer state {key!r} is not a tensor: cannot store it")
            tensors[f"optimizer.{index}.{key}"] = value.detach().cpu().contiguous()
    if batch_generator_state is not None:
        tensors["rng.batches"] = batch_generator_state.clone()
    metadata = {
        "format": FORMAT,
        "step": str(int(step)),
        "preset": preset,
        "train_config": json.dumps(asdict(config)),
        "gpt_config": json.dumps(asdict(gpt_config(config))),
        "scaler": json.dumps(scaler_state or {}),
        "progress": json.dumps(progress or {}),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        save_file(tensors, tmp_name, metadata=metadata)
        with open(tmp_name, "rb+") as f:
            os.fsync(f.fileno())
        finish_atomic_write(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _metadata(path: Path) -> dict:
    try:
        metadata = read_metadata(path)
    except WeightsFileError as exc:
        raise CheckpointError(str(exc)) from None
    if metadata.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a training checkpoint of this course (no "
                              f"format={FORMAT!r} in its metadata)")
    return metadata


def read_config(path: str | Path):
    """The ``(TrainConfig, preset name, step)`` stored in checkpoint ``path`` (file or folder),
    without reading its tensors."""
    from .presets import TrainConfig, field_names

    path = checkpoint_file(path)
    metadata = _metadata(path)
    try:
        stored = json.loads(metadata["train_config"])
        step = int(metadata["step"])
    except (KeyError, ValueError, TypeError) as exc:
        raise CheckpointError(f"{path}: damaged metadata ({exc!r})") from None
    known = set(field_names())
    unknown = set(stored) - known
    if unknown:
        raise CheckpointError(f"{path}: made by another version of the course (unknown settings "
                              f"{', '.join(sorted(unknown))})")
    return TrainConfig(**stored), metadata.get("preset", ""), step


def read_checkpoint(path: str | Path) -> Checkpoint:
    """Everything in checkpoint ``path`` (a file or a run folder), tensors on the CPU."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = checkpoint_file(path)
    config, preset, step = read_config(path)
    metadata = _metadata(path)
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{path}: not a readable safetensors file ({exc})") from None
    model_state, optimizer_state = {}, {}
    generator_state = tensors.get("rng.batches")
    for key, value in tensors.items():
        kind, _, rest = key.partition(".")
        if kind == "model":
            model_state[rest] = value
        elif kind == "optimizer":
            index, _, name = rest.partition(".")
            optimizer_state.setdefault(int(index), {})[name] = value
    if "transformer.wte.weight" in model_state:
        model_state[TIED] = model_state["transformer.wte.weight"]
    return Checkpoint(step=step, config=config, preset=preset, model_state=model_state,
                      optimizer_state=optimizer_state, batch_generator_state=generator_state,
                      scaler_state=json.loads(metadata.get("scaler", "{}")),
                      progress=json.loads(metadata.get("progress", "{}")))


def load_model(path: str | Path, device: str = "cpu"):
    """The trained model of checkpoint ``path`` (file or run folder), in eval mode on
    ``device``, and its ``GPTConfig``: ``(model, config)``.

    A vocabulary padded for speed is cut back to its real size, so the padding rows can never
    be sampled (their logits would be the only difference)."""
    from ..reference.config import GPTConfig
    from ..reference.gpt import GPT

    checkpoint = read_checkpoint(path)
    train = checkpoint.config
    config = GPTConfig(vocab_size=train.vocab_size, block_size=train.block_size, n_layer=train.n_layer,
                       n_head=train.n_head, n_embd=train.n_embd, dropout=0.0)
    state = dict(checkpoint.model_state)
    for key in ("transformer.wte.weight", TIED):
        if key in state:
            state[key] = state[key][:train.vocab_size]
    model = GPT(config)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise CheckpointError(f"{checkpoint_file(path)}: its tensors do not fit its own config "
                              f"({str(exc).splitlines()[0]})") from None
    return model.to(device).eval(), config


def checkpoint_folder(name: str = "gpt2course", drive: Path = DRIVE, local: Path = Path("runs")) -> Path:
    """Where notebook 10's run keeps its checkpoints: ``<Google Drive>/<name>`` when Colab's Drive is
    mounted (it outlives the Colab session), otherwise the local folder ``runs/<name>``. Given,
    not an exercise (it lives outside ``reference/checkpoints.py``, whose exercises are stubbed
    while a notebook is graded)."""
    folder = Path(drive) / name if Path(drive).is_dir() else Path(local) / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder
