"""Looking inside a trained GPT: its attention weights, repeated random sequences, the shipped model.

Notebooks 07 and 10 use these to find a model's previous-token and induction heads:

- ``attention_weights(model, idx)``: every head's attention weights on ``idx``, shape
  (B, n_layer, n_head, T, T), from any course GPT (the reference, a learner's, a fused one: it
  recomputes softmax(q k^T / sqrt(head size)) under the causal mask from what enters each block's
  ``attn``, so it needs only ``attn.c_attn`` and the config's ``n_head``);
- ``repeated_random_tokens(pool, period, batch, generator)``: sequences of ``period`` random tokens
  followed by the same tokens again (shape (batch, 2 * period));
- ``per_position_loss(model, idx)``: the cross-entropy at every position, averaged over the batch;
- ``load_trained_model()``: the small GPT shipped in ``data/trained/`` (trained with the course's
  own ``python -m gpt2course train``; data/trained/README.md has the command and the run), and
  ``text_token_pool(vocab_size)``: the distinct tokens of Tiny Shakespeare in that model's (or
  GPT-2's) tokenisation, to draw the random tokens from.

The scores themselves (``previous_token_scores``, ``induction_scores``) are notebook 10's
exercises: ``gpt2course.reference`` has the finished ones.
"""

from __future__ import annotations

import json
import math

import torch
import torch.nn.functional as F

from .datafiles import verified_path

TRAINED_MODEL = "trained/shakespeare_bytes_2x128.safetensors"


def attention_weights(model, idx: torch.Tensor) -> torch.Tensor:
    """The attention weights of every layer and head of ``model`` on ``idx`` (B, T):
    a float32 tensor (B, n_layer, n_head, T, T) on the CPU; row i is how much query i attends to
    each key (rows sum to 1, keys after i get 0). The model runs once, in eval mode, without
    gradients; its mode is restored afterwards."""
    blocks = list(model.transformer.h)
    n_head = model.config.n_head
    captured: list[torch.Tensor | None] = [None] * len(blocks)

    def hook_for(layer):
        def hook(module, args):
            x = args[0]
            B, T, C = x.shape
            q, k, _ = module.c_attn(x).float().split(C, dim=-1)
            q = q.view(B, T, n_head, C // n_head).transpose(1, 2)
            k = k.view(B, T, n_head, C // n_head).transpose(1, 2)
            scores = q @ k.transpose(-2, -1) / math.sqrt(C // n_head)
            mask = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
            captured[layer] = scores.masked_fill(~mask, float("-inf")).softmax(dim=-1).cpu()
        return hook

    handles = [block.attn.register_forward_pre_hook(hook_for(i)) for i, block in enumerate(blocks)]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(idx)
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return torch.stack(captured, dim=1)


def repeated_random_tokens(pool: torch.Tensor, period: int, batch: int = 1,
                           generator: torch.Generator | None = None) -> torch.Tensor:
    """(batch, 2 * period) token ids: ``period`` tokens drawn from ``pool`` (1-D, distinct ids)
    without replacement, then the same ``period`` tokens again, so that token i equals token
    i - period in the second half."""
    pool = torch.as_tensor(pool, dtype=torch.long).flatten()
    if not 1 <= period <= len(pool):
        raise ValueError(f"period must be between 1 and the pool's {len(pool)} tokens, got {period}")
    rows = [pool[torch.randperm(len(pool), generator=generator)[:period]] for _ in range(batch)]
    first = torch.stack(rows)
    return torch.cat([first, first], dim=1)


def per_position_loss(model, idx: torch.Tensor) -> torch.Tensor:
    """(T - 1,) float32: the cross-entropy of predicting idx[:, t + 1] from idx[:, :t + 1], for
    t = 0 .. T-2, averaged over the batch (eval mode, no gradients; the mode is restored)."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            logits, _ = model(idx)
    finally:
        model.train(was_training)
    logits = logits[:, :-1].float()
    losses = F.cross_entropy(logits.reshape(-1, logits.size(-1)), idx[:, 1:].reshape(-1), reduction="none")
    return losses.view(idx.size(0), -1).mean(dim=0).cpu()


def text_token_pool(vocab_size: int = 50257, text: str | None = None) -> torch.Tensor:
    """The distinct token ids of ``text`` (default: Tiny Shakespeare's training text), sorted,
    as read by a model of ``vocab_size``: GPT-2's BPE tokens for 50,257 or more, GPT-2's
    single-byte tokens below (as ``python -m gpt2course train --vocab-size`` reads it)."""
    from .training.run import text_to_ids

    if text is None:
        from .data import load_shakespeare, split_text
        text = split_text(load_shakespeare())[0]
    return torch.unique(text_to_ids(text, vocab_size))


def load_trained_model(path=None):
    """The small GPT shipped in ``data/trained/`` (checked by SHA-256), in eval mode, on the CPU,
    and the run's record (a dict: the command, the config, steps, final losses; from the file's
    metadata)."""
    from safetensors import safe_open

    from .reference import GPT, GPTConfig

    path = verified_path(TRAINED_MODEL) if path is None else path
    with safe_open(str(path), framework="pt") as f:
        metadata = dict(f.metadata() or {})
        state = {key: f.get_tensor(key) for key in f.keys()}
    config = GPTConfig(**json.loads(metadata["gpt_config"]))
    model = GPT(config)
    state = {key: value.float() for key, value in state.items()}
    state["lm_head.weight"] = state["transformer.wte.weight"]
    model.load_state_dict(state, strict=True)
    model.eval()
    record = {key: json.loads(value) if key in ("gpt_config", "train_config") else value
              for key, value in metadata.items()}
    return model, record


def export_trained_model(run: str, out: str, command: str, hardware: str, dtype: str = "float16") -> dict:
    """Write the model of training run ``run`` (a folder or checkpoint of ``python -m gpt2course
    train``) to ``out`` as a safetensors file of ``dtype`` weights (float16: half the size of
    float32; ``load_trained_model`` computes in float32) without the optimiser state, with the
    run's record as metadata (``command``, ``hardware``, its configs, steps, losses, wall time);
    returns that metadata."""
    import csv
    from pathlib import Path

    from safetensors import safe_open
    from safetensors.torch import save_file

    from .training.checkpoints import checkpoint_file

    path = checkpoint_file(run)
    with safe_open(str(path), framework="pt") as f:
        source = dict(f.metadata() or {})
        tensors = {key[len("model."):]: f.get_tensor(key).to(getattr(torch, dtype)).contiguous()
                   for key in f.keys() if key.startswith("model.")}
    with open(Path(path).parent / "log.csv") as log:   # the rows up to the checkpoint's step
        rows = [r for r in csv.DictReader(log) if int(r["step"]) <= int(source["step"])]
    vals = [r for r in rows if r["val_loss"]]
    trains = [r for r in rows if r["train_loss"]]
    metadata = {
        "format": "gpt2course-trained-model-1",
        "dtype": dtype,
        "command": command,
        "hardware": hardware,
        "gpt_config": source["gpt_config"],
        "train_config": source["train_config"],
        "steps": source["step"],
        "final_val_loss": f"{float(vals[-1]['val_loss']):.4f}",
        "final_train_loss": f"{float(trains[-1]['train_loss']):.4f}",
        "wall_time_s": f"{float(rows[-1]['elapsed_s']):.0f}",
    }
    save_file(tensors, out, metadata=metadata)
    return metadata


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m gpt2course.heads",
        description="Export the model of a training run (python -m gpt2course train) for shipping: "
                    "its weights (float16 by default) without the optimiser state, the run's "
                    "record as metadata.")
    parser.add_argument("run", help="the run folder (or its checkpoint.safetensors)")
    parser.add_argument("out", help="the .safetensors file to write")
    parser.add_argument("--command", required=True, help="the command that trained it (recorded)")
    parser.add_argument("--hardware", required=True, help="where it ran (recorded)")
    parser.add_argument("--dtype", default="float16", choices=("float16", "bfloat16", "float32"),
                        help="the stored weights' dtype (default float16)")
    args = parser.parse_args()
    for key, value in export_trained_model(args.run, args.out, args.command, args.hardware,
                                           args.dtype).items():
        print(f"{key}: {value}")
