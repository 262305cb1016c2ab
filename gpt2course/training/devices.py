"""Where a training run computes: torchrun's processes, the device, the autocast dtype."""

from __future__ import annotations

import os
from dataclasses import dataclass

from .presets import DTYPES, RunError


@dataclass(frozen=True)
class Processes:
    """Where this process stands among the processes torchrun started (1 of 1 without it)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    distributed: bool = False

    @property
    def main(self) -> bool:
        return self.rank == 0


def processes_from_env(environ=os.environ) -> Processes:
    """torchrun's RANK, WORLD_SIZE and LOCAL_RANK; one process when WORLD_SIZE is not set."""
    if "WORLD_SIZE" not in environ:
        return Processes()
    try:
        world_size = int(environ["WORLD_SIZE"])
        rank = int(environ.get("RANK", "0"))
        local_rank = int(environ.get("LOCAL_RANK", str(rank)))
    except ValueError:
        raise RunError("WORLD_SIZE, RANK and LOCAL_RANK must be whole numbers (as torchrun sets them)") from None
    if not 0 <= rank < world_size:
        raise RunError(f"RANK={rank} is not below WORLD_SIZE={world_size}")
    return Processes(rank, world_size, local_rank, distributed=True)


def pick_device(requested: str | None, procs: Processes):
    """The torch.device to train on: ``requested`` ("cpu", "cuda", "mps"; None or "auto": the
    best available); under torchrun with CUDA, GPU number LOCAL_RANK."""
    import torch

    from ..env import default_device

    name = default_device() if requested in (None, "auto") else requested
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise RunError(f"--device: unknown device {name!r} (use auto, cpu, cuda or mps)") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise RunError(f"--device {name}: no CUDA GPU is available here (use cpu)")
        if procs.distributed:
            if device.index is not None:
                raise RunError("--device: under torchrun, give 'cuda' without a number: process "
                               "LOCAL_RANK uses GPU LOCAL_RANK")
            if procs.local_rank >= torch.cuda.device_count():
                raise RunError(f"LOCAL_RANK={procs.local_rank} but there are only "
                               f"{torch.cuda.device_count()} GPUs: start fewer processes per node")
            device = torch.device("cuda", procs.local_rank)
        elif device.index is not None and device.index >= torch.cuda.device_count():
            raise RunError(f"--device {name}: there are only {torch.cuda.device_count()} CUDA devices")
    elif device.type == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise RunError(f"--device {name}: MPS (Apple silicon GPU) is not available here (use cpu)")
        if procs.distributed:
            raise RunError("torchrun with --device mps is not supported: use cpu (gloo) or cuda (NCCL)")
    elif device.type != "cpu":
        raise RunError(f"--device {name}: use auto, cpu, cuda or mps")
    return device


def autocast_dtype(device, requested: str = "auto"):
    """The dtype of autocast for ``device``: "auto" is bfloat16 on GPUs of compute capability
    8.0 or more (A100, L4, H100), float16 on older GPUs (T4, V100), float32 (no autocast)
    elsewhere. float16 trains with a loss scaler (torch.amp.GradScaler)."""
    import torch

    if requested not in DTYPES:
        raise RunError(f"--dtype must be one of {', '.join(DTYPES)}, got {requested!r}")
    cuda = device.type == "cuda"
    capability = torch.cuda.get_device_capability(device) if cuda else None
    if requested == "auto":  # notebook 10's rule (reference.precision.autocast_dtype); None: float32
        from ..reference.precision import autocast_dtype as auto_dtype
        return auto_dtype(device, capability) or torch.float32
    if requested == "float16" and device.type == "mps":
        raise RunError("--dtype float16 (with loss scaling) is not supported on mps here; use float32 or bfloat16")
    if requested == "bfloat16" and cuda and capability < (8, 0):
        raise RunError(f"--dtype bfloat16: this GPU (compute capability {capability[0]}.{capability[1]}) "
                       "has no bfloat16 arithmetic; use float16")
    return getattr(torch, requested)


def all_reduce_sum(tensor, procs: Processes):
    """``tensor`` summed over all processes, in place (itself with one process)."""
    if procs.distributed:
        import torch.distributed as dist
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor
