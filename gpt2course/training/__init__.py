"""Training runs outside the notebooks: ``python -m gpt2course train`` and notebook 10's tools.

- ``run``: the run itself (settle the settings and folder, train, evaluate, stop on Ctrl-C).
- ``step``: one optimizer step (micro-batches under autocast, loss scaling, clipping).
- ``presets``: ``TrainConfig``, the ``cpu`` / ``t4`` / ``a100`` presets and their checks.
- ``checkpoints``: a run's checkpoint file, saved atomically and read back for exact resume.
- ``devices``: torchrun's processes, the device, the autocast dtype.
- ``loss_log``: the run's ``log.csv``.
- ``fused``: ``fuse(model)``, PyTorch's fused kernels in place of the hand-written ones.
- ``mfu``: FLOPs per token, GPUs' peak FLOP/s, model FLOPs utilisation.
- ``speed_ladder``: tokens/s with each optimisation switched on in turn (notebook 10).

May import ``gpt2course.reference``, ``data`` (with ``datafiles``), ``tokenizer``, ``weights``
and ``env``; never ``widgets``, ``checks`` or ``cli`` (tests/test_package_layout.py checks it).
Nothing is imported here: import the module you need.
"""
