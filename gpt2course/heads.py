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

- ``doubled_text(text, fraction, min_chars, seed)``: the text the shipped model was trained on,
  Tiny Shakespeare with some passages written twice in a row (data/trained/README.md says why).

The scores themselves (``previous_token_scores``, ``induction_scores``) are notebook 10's
exercises: ``gpt2course.reference`` has the finished ones.

- ``head_summary(model)``: its strongest previous-token and induction heads and the loss on each
  copy, measured as the notebooks and data/trained/README.md measure them.

Command line (``python -m gpt2course.heads --help``): ``doubled-text OUT`` writes that training
text; ``watch RUN OUT.csv`` measures a run's heads at each checkpoint while it trains; ``export
RUN OUT`` writes a training run's model for shipping.
"""

from __future__ import annotations

import json
import math

import torch
import torch.nn.functional as F

from .datafiles import verified_path

TRAINED_MODEL = "trained/shakespeare_doubled_2x128.safetensors"
TRAINED_MODEL_HEADS = "trained/shakespeare_doubled_2x128.heads.csv"   # its heads while it trained


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


def head_summary(model, period: int = 50, batch: int = 8, seed: int = 0) -> dict:
    """How a trained model's heads do on ``batch`` repeated random sequences of Tiny Shakespeare's
    tokens (``period`` random tokens, then the same again; seeded), as notebooks 07 and 10 and
    data/trained/README.md measure it: the strongest previous-token and induction heads
    (``previous`` and ``induction``: (layer, head, score)), the scores of a head that spreads its
    attention evenly (``even_previous``, ``even_induction``), and the mean loss on the first and
    the second copy (``loss_first``: positions 1 .. period - 1; ``loss_second``: period .. T - 1).
    A model whose context is shorter than ``2 * period`` gets ``period = block_size // 2``."""
    from .reference import induction_scores, previous_token_scores

    period = min(period, model.config.block_size // 2)
    pool = text_token_pool(model.config.vocab_size)
    idx = repeated_random_tokens(pool, period, batch, torch.Generator().manual_seed(seed))
    mean = attention_weights(model, idx).mean(dim=0)
    T = 2 * period
    even = torch.ones(T, T).tril()
    even = (even / even.sum(dim=-1, keepdim=True)).expand(1, 1, T, T)
    loss = per_position_loss(model, idx)
    out = {"even_previous": previous_token_scores(even).item(),
           "even_induction": induction_scores(even, period).item(),
           "loss_first": loss[: period - 1].mean().item(), "loss_second": loss[period:].mean().item()}
    for kind, scores in (("previous", previous_token_scores(mean)), ("induction", induction_scores(mean, period))):
        layer, head = divmod(int(scores.argmax()), scores.shape[1])
        out[kind] = (layer, head, scores[layer, head].item())
    return out


def watch_run(run: str, out: str, poll_seconds: float = 15.0) -> None:
    """While ``python -m gpt2course train --out RUN`` trains, append a row to the CSV file ``out``
    for each new checkpoint it writes: the step and ``head_summary`` of the model then (the run's
    --checkpoint-interval sets how often). Returns once the checkpoint of the run's last step is
    measured."""
    import csv
    import os
    import time
    from pathlib import Path

    from .training.checkpoints import checkpoint_file, load_model, read_config

    if not Path(out).exists():
        with open(out, "w", newline="") as f:
            csv.writer(f).writerow(["step", "previous_layer", "previous_head", "previous_score", "induction_layer",
                                    "induction_head", "induction_score", "loss_first", "loss_second"])
    seen = None
    while True:
        try:
            stamp = os.stat(checkpoint_file(run)).st_mtime_ns
        except OSError:   # no checkpoint yet
            time.sleep(poll_seconds)
            continue
        if stamp != seen:
            try:
                config, _, step = read_config(run)
                model, _ = load_model(run)
            except Exception:  # noqa: BLE001 - caught while it was being written: read it again
                time.sleep(1)
                continue
            seen = stamp
            m = head_summary(model)
            with open(out, "a", newline="") as f:
                csv.writer(f).writerow([step, *m["previous"][:2], f"{m['previous'][2]:.4f}",
                                        *m["induction"][:2], f"{m['induction'][2]:.4f}",
                                        f"{m['loss_first']:.4f}", f"{m['loss_second']:.4f}"])
            if step >= config.max_steps:
                return
        time.sleep(poll_seconds)


def doubled_text(text: str, fraction: float = 0.5, min_chars: int = 60, seed: int = 0) -> str:
    """``text`` cut at line ends into passages of at least ``min_chars`` characters (whole lines),
    each followed by a copy of itself with probability ``fraction`` (``random.Random(seed)``, one
    draw per passage; a shorter rest at the end is written once): the same text with passages
    written twice in a row, so that copying from the context lowers the loss."""
    import random

    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be between 0 and 1, got {fraction}")
    rng = random.Random(seed)
    out, passage, size = [], [], 0
    for line in text.splitlines(keepends=True):
        passage.append(line)
        size += len(line)
        if size >= min_chars:
            block = "".join(passage)
            out.append(block + block if rng.random() < fraction else block)
            passage, size = [], 0
    out.append("".join(passage))
    return "".join(out)


def load_trained_model(path=None):
    """The small GPT shipped in ``data/trained/`` (checked by SHA-256), in eval mode, on the CPU,
    and the run's record (a dict: the command, the config, steps, final losses; from the file's
    metadata)."""
    from safetensors import safe_open

    from .reference import GPT, GPTConfig

    path = verified_path(TRAINED_MODEL) if path is None else path
    with safe_open(str(path), framework="pt") as f:
        metadata = dict(f.metadata() or {})
        state = {key: f.get_tensor(key).float() for key in f.keys()}
    state["lm_head.weight"] = state["transformer.wte.weight"]   # the file stores the tied matrix once
    model = GPT(GPTConfig(**json.loads(metadata["gpt_config"])))
    model.load_state_dict(state, strict=True)
    model.eval()
    record = {key: json.loads(value) if key in ("gpt_config", "train_config") else value
              for key, value in metadata.items()}
    return model, record


def _without_folders(train_config: str) -> str:
    """The run's settings with its --data file named by its file name only (the folder it was
    in on the training machine is no one else's business; the recorded command says where)."""
    config = json.loads(train_config)
    if config.get("data"):
        from pathlib import Path
        config["data"] = Path(config["data"]).name
    return json.dumps(config)


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
        "train_config": _without_folders(source["train_config"]),
        "steps": source["step"],
        "final_val_loss": f"{float(vals[-1]['val_loss']):.4f}",
        "final_train_loss": f"{float(trains[-1]['train_loss']):.4f}",
        "wall_time_s": f"{float(rows[-1]['elapsed_s']):.0f}",
    }
    save_file(tensors, out, metadata=metadata)
    return metadata


def main(argv=None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m gpt2course.heads",
        description="Make the small trained model shipped in data/trained/ (its README.md has the "
                    "commands): 'doubled-text' writes the text it was trained on, 'watch' measures "
                    "its heads while it trains, 'export' writes a training run's model for shipping.")
    sub = parser.add_subparsers(dest="action", required=True)
    doubled = sub.add_parser(
        "doubled-text", help="write Tiny Shakespeare with some passages written twice in a row",
        description="Write Tiny Shakespeare (or --text) cut at line ends into passages of at least "
                    "--min-chars characters, each followed by a copy of itself with probability "
                    "--fraction (seeded), as UTF-8: a training text (python -m gpt2course train "
                    "--data OUT) in which copying from the context pays.")
    doubled.add_argument("out", help="the text file to write")
    doubled.add_argument("--text", help="the text to start from (default: Tiny Shakespeare)")
    doubled.add_argument("--fraction", type=float, default=0.5, help="share of passages doubled (default 0.5)")
    doubled.add_argument("--min-chars", type=int, default=60, help="shortest passage, in characters (default 60)")
    doubled.add_argument("--seed", type=int, default=0, help="seed of the draws (default 0)")
    watch = sub.add_parser(
        "watch", help="measure a training run's heads at each checkpoint while it trains",
        description="While 'python -m gpt2course train --out RUN' trains, append to OUT (CSV) a row "
                    "per new checkpoint: the step, the strongest previous-token and induction heads "
                    "(layer, head, score) and the mean loss on each copy of 8 repeated random "
                    "sequences (period 50, seed 0), as notebooks 07 and 10 measure them. Stops after "
                    "the run's last step.")
    watch.add_argument("run", help="the run folder")
    watch.add_argument("out", help="the CSV file to append to")
    watch.add_argument("--poll", type=float, default=15.0, help="seconds between looks (default 15)")
    export = sub.add_parser(
        "export", help="write a training run's model for shipping",
        description="Export the model of a training run (python -m gpt2course train) for shipping: "
                    "its weights (float16 by default) without the optimiser state, the run's "
                    "record as metadata.")
    export.add_argument("run", help="the run folder (or its checkpoint.safetensors)")
    export.add_argument("out", help="the .safetensors file to write")
    export.add_argument("--command", required=True, help="the command that trained it (recorded)")
    export.add_argument("--hardware", required=True, help="where it ran (recorded)")
    export.add_argument("--dtype", default="float16", choices=("float16", "bfloat16", "float32"),
                        help="the stored weights' dtype (default float16)")
    args = parser.parse_args(argv)
    try:
        return _run(args)
    except (OSError, ValueError, KeyError) as exc:   # a missing file, a bad value: one line, status 2
        parser.exit(2, f"python -m gpt2course.heads {args.action}: {exc}\n")


def _run(args) -> int:
    from pathlib import Path

    if args.action == "doubled-text":
        import hashlib

        from .data import load_shakespeare
        source = load_shakespeare() if args.text is None else Path(args.text).read_text(encoding="utf-8")
        text = doubled_text(source, args.fraction, args.min_chars, args.seed)
        Path(args.out).write_text(text, encoding="utf-8")
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        print(f"{args.out}: {len(text):,} characters ({len(source):,} before), sha256 {digest}")
        return 0
    if args.action == "watch":
        watch_run(args.run, args.out, args.poll)
        return 0
    for key, value in export_trained_model(args.run, args.out, args.command, args.hardware,
                                           args.dtype).items():
        print(f"{key}: {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
