"""Where the notebooks run: fast mode and device choice."""

from __future__ import annotations

import os

FAST_ENV = "GPT2COURSE_FAST"


def fast_mode() -> bool:
    """True when ``GPT2COURSE_FAST`` is set to a true value ("1", "true", "yes").

    Fast mode shrinks demo runs (training steps, sample lengths, plot sweeps) so that a
    notebook executes headless on two CPU cores in seconds. Exercises and their checks are
    the same in both modes.
    """
    return os.environ.get(FAST_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def pick(full, fast):
    """Return ``fast`` in fast mode and ``full`` otherwise (for demo sizes)."""
    return fast if fast_mode() else full


def default_device() -> str:
    """"cuda" when a GPU is usable, "mps" on Apple silicon, otherwise "cpu"."""
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def describe_device() -> str:
    """One line describing the device the course will use, for the welcome notebook."""
    import torch

    device = default_device()
    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        return (f"cuda: {props.name}, {props.total_memory / 2**30:.0f} GiB, "
                f"compute capability {props.major}.{props.minor}")
    if device == "mps":
        return "mps: Apple silicon GPU"
    return f"cpu: {torch.get_num_threads()} threads (no GPU found; everything still works, only slower)"
