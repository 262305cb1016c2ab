"""Notebook 08: the loss, the optimiser, the learning-rate schedule and one training step."""

import math

import torch
import torch.nn.functional as F

from .batches import get_batch


# ---- generated from solutions/08_training.ipynb by `python -m grader build` ----
# cells: lm_loss, configure_optimizer, get_lr, train_step, estimate_loss
# Edit those answer cells in the notebook, not the code below.


def lm_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of next-token predictions: logits (B, T, V), targets (B, T) -> scalar."""
    ### BEGIN SOLUTION
    B, T, V = logits.shape
    return F.cross_entropy(logits.reshape(B * T, V), targets.reshape(B * T))
    ### END SOLUTION


def configure_optimizer(model: torch.nn.Module, weight_decay: float, learning_rate: float,
                        betas: tuple[float, float]) -> torch.optim.AdamW:
    """AdamW with two parameter groups: weight decay on every parameter with two or more
    dimensions (weight matrices, embeddings), none on biases and LayerNorm parameters."""
    ### BEGIN SOLUTION
    params = [p for p in model.parameters() if p.requires_grad]  # a tied weight is listed once
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=learning_rate, betas=betas)
    ### END SOLUTION


def get_lr(step: int, max_lr: float, min_lr: float, warmup_steps: int, max_steps: int) -> float:
    """The learning rate at ``step`` (counted from 0): a linear warm-up to ``max_lr`` over
    ``warmup_steps`` steps, then a cosine decay that reaches ``min_lr`` at ``max_steps`` and
    stays there."""
    ### BEGIN SOLUTION
    if step < warmup_steps:
        return max_lr * (step + 1) / warmup_steps   # step 0 already learns a little
    if step >= max_steps:
        return min_lr
    progress = (step - warmup_steps) / (max_steps - warmup_steps)  # 0 -> 1
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (max_lr - min_lr)
    ### END SOLUTION


def train_step(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
               optimizer: torch.optim.Optimizer, grad_clip: float | None) -> float:
    """One optimisation step on the batch (x, y); returns the loss before the step as a float.
    Gradients are clipped to a total norm of ``grad_clip`` (None: no clipping)."""
    ### BEGIN SOLUTION
    model.train()
    optimizer.zero_grad(set_to_none=True)
    _, loss = model(x, y)
    loss.backward()
    if grad_clip is not None:
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    return loss.item()
    ### END SOLUTION


@torch.no_grad()
def estimate_loss(model: torch.nn.Module, data: torch.Tensor, block_size: int, batch_size: int,
                  eval_iters: int, generator: torch.Generator | None = None) -> float:
    """The model's mean loss on ``eval_iters`` random batches of ``data`` (get_batch), in eval
    mode and without gradients; the model's train/eval mode is restored afterwards."""
    ### BEGIN SOLUTION
    was_training = model.training
    model.eval()
    losses = []
    for _ in range(eval_iters):
        x, y = get_batch(data, block_size, batch_size, generator=generator)
        _, loss = model(x, y)
        losses.append(loss.item())
    model.train(was_training)
    return sum(losses) / len(losses)
    ### END SOLUTION
