"""One optimizer step with gradient accumulation, mixed precision and clipping.

``python -m gpt2course train`` (``run``) and the speed ladder both train with it; notebook 10
writes the same sequence out in its own loop, for learners to read. A ``TrainStep`` is made
once per run and called once per step with that step's micro-batches:

1. the gradients are zeroed with ``set_to_none=True`` (a parameter that gets no gradient in
   this step keeps None, and AdamW leaves it alone);
2. each micro-batch (x, y) goes forward under autocast of ``dtype`` (none for float32); its
   loss, divided by the number of micro-batches and scaled by the GradScaler (float16 only),
   goes backward, so the gradients add up to those of the mean loss over the whole batch.
   When ``forward`` has ``no_sync`` (DistributedDataParallel), every backward but the last
   runs inside it: the processes all-reduce the gradients once, after the last one;
3. with ``grad_clip > 0`` the gradients are unscaled and their total norm clipped to it;
4. the optimizer steps through the scaler (which skips the step when float16 gradients
   overflowed, and lowers its scale), and the scaler updates.

The step's loss and gradient norm come back as tensors on the device rather than floats:
reading a float waits for the GPU, and the speed ladder times steps back to back.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass


@dataclass(frozen=True)
class StepResult:
    """``loss``: the mean loss over the step's micro-batches (float64, 0-dim, detached, on the
    model's device); ``grad_norm``: the total gradient norm before clipping, or None when the
    step does not clip."""

    loss: object
    grad_norm: object = None


class TrainStep:
    """``step(micro_batches)`` does one optimizer step of ``optimizer`` on ``model`` (see the
    module's docstring) and returns a ``StepResult``.

    ``model`` is the module whose parameters are clipped and whose device the batches are moved
    to; ``forward`` (default ``model``) is what computes ``(logits, loss) = forward(x, y)``: the
    same model compiled, or wrapped in DistributedDataParallel. ``dtype`` is the autocast dtype:
    None or torch.float32 for none, torch.bfloat16, or torch.float16 (with a GradScaler,
    ``self.scaler``, whose state a checkpoint keeps).
    """

    def __init__(self, model, optimizer, *, dtype=None, grad_clip: float = 0.0, forward=None):
        import torch

        self.model = model
        self.optimizer = optimizer
        self.forward = model if forward is None else forward
        self.grad_clip = grad_clip
        self.device = next(model.parameters()).device
        self.dtype = None if dtype in (None, torch.float32) else dtype
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.dtype == torch.float16)

    def autocast(self):
        """The autocast context of this step's dtype (a no-op one for float32); evaluation uses
        it too, so that it computes as training does."""
        import torch

        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def __call__(self, micro_batches) -> StepResult:
        import torch

        micro_batches = list(micro_batches)
        if not micro_batches:
            raise ValueError("a training step needs at least one micro-batch")
        n = len(micro_batches)
        no_sync = getattr(self.forward, "no_sync", None)
        self.optimizer.zero_grad(set_to_none=True)
        total = None
        for i, (x, y) in enumerate(micro_batches):
            last = i == n - 1
            with no_sync() if no_sync is not None and not last else contextlib.nullcontext():
                with self.autocast():
                    _, loss = self.forward(x.to(self.device), y.to(self.device))
                self.scaler.scale(loss / n if n > 1 else loss).backward()
            detached = loss.detach().double()
            total = detached if total is None else total + detached
        grad_norm = None
        if self.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return StepResult(loss=total / n if n > 1 else total, grad_norm=grad_norm)
