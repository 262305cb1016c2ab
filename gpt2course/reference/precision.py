"""Notebook 10: which arithmetic a device trains in.

``autocast_dtype(device)`` chooses: bfloat16 autocast on GPUs of compute capability 8.0 or more
(A100, L4, H100), float16 autocast (with a loss scaler) on older ones (T4, V100), and None,
meaning plain float32 without autocast, on CPUs and Apple's MPS.
``gpt2course.training.devices.autocast_dtype`` calls it for its "auto" choice, so the rule lives
in one place. (The grader's checks of it: gpt2course/checks/precision.py.)
"""

import torch


# ---- generated from solutions/10_full_training_run.ipynb by `python -m grader build` ----
# cells: autocast_dtype
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
