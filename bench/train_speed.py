"""Training speed: the course's GPT against Hugging Face's GPT2LMHeadModel, same config.

    python bench/train_speed.py [--n-layer 4] [--n-embd 384] [--batch 4] [--block 256] [--steps 5]
                                [--threads N] [--clock wall|cpu] [--optimizer default|foreach|fused]

Four models with the same weights train on the same random batches: the reference GPT as the
notebooks write it; the same model with gpt2course.training.fused.fuse(head=False) (SDPA,
F.layer_norm, F.gelu in the blocks); with gpt2course.training.fused.fuse (also the LM head and the
loss in one autograd node: the course's fast training path); and transformers' GPT2LMHeadModel (its default
attention, the loss as F.cross_entropy on its logits). One training step = forward, loss,
backward, AdamW step (the same optimizer settings for all four). Steps alternate between the
models in one process, in a rotating order (so machine load hits all alike); the median step time
of each gives tokens/s, and the ratios to Hugging Face are reported, with the range of the
per-round ratios (each round's steps are side by side in time). ``--clock cpu`` times the
process's CPU time instead of wall time: on a machine shared with other jobs it is the steadier
measure (use it with --threads 1; with more threads it counts their spin-waiting too). The load
average is recorded with the results. Needs `transformers` (a test dependency). Appends to
bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402

from common import record  # noqa: E402
from gpt2course.training.fused import fuse  # noqa: E402
from gpt2course.reference import GPT, GPTConfig, load_hf_weights  # noqa: E402

HF = "Hugging Face GPT2LMHeadModel"


def load() -> str:
    try:
        return "load average {:.2f}, {:.2f}, {:.2f}".format(*os.getloadavg())
    except OSError:
        return "load average unknown"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-layer", type=int, default=4)
    parser.add_argument("--n-embd", type=int, default=384)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--block", type=int, default=256)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per model (after one warm-up)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: torch's own choice)")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="time steps by wall clock (default) or by the process's CPU time")
    parser.add_argument("--optimizer", choices=("default", "foreach", "fused"), default="default",
                        help="AdamW's implementation, the same for all models (default: torch's default, "
                             "a loop over the parameters on the CPU, as the course's configure_optimizer)")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args(argv)
    try:
        from transformers import GPT2Config, GPT2LMHeadModel
        from transformers.utils import logging as hf_logging
    except ImportError:
        print("bench/train_speed.py needs transformers (pip install transformers)", file=sys.stderr)
        return 2
    hf_logging.set_verbosity_error()
    if args.threads:
        torch.set_num_threads(args.threads)
    clock = time.process_time if args.clock == "cpu" else time.perf_counter

    n_head = max(1, args.n_embd // 64)
    config = GPTConfig(block_size=args.block, n_layer=args.n_layer, n_head=n_head, n_embd=args.n_embd)
    torch.manual_seed(0)
    hf = GPT2LMHeadModel(GPT2Config(vocab_size=config.vocab_size, n_positions=args.block,
                                    n_embd=args.n_embd, n_layer=args.n_layer, n_head=n_head,
                                    resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0))

    def ours():
        return load_hf_weights(GPT(config), hf.state_dict())

    models = {"reference GPT (as written in the notebooks)": ours(),
              "reference GPT, fused blocks (fuse(model, head=False))": fuse(ours(), head=False),
              "reference GPT, fused (gpt2course.training.fused.fuse: blocks, LM head + loss)": fuse(ours()),
              HF: hf}
    flags = {"default": {}, "foreach": {"foreach": True}, "fused": {"fused": True}}[args.optimizer]
    optimizers = {k: torch.optim.AdamW(m.parameters(), lr=1e-4, **flags) for k, m in models.items()}
    gen = torch.Generator().manual_seed(0)
    batches = [torch.randint(0, config.vocab_size, (args.batch, args.block + 1), generator=gen)
               for _ in range(args.steps + 1)]

    def step(name, batch):
        model, opt = models[name], optimizers[name]
        x, y = batch[:, :-1], batch[:, 1:]
        opt.zero_grad(set_to_none=True)
        if name == HF:  # the same loss as ours, on the logits
            logits = model(input_ids=x).logits
            loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten())
        else:
            _, loss = model(x, y)
        loss.backward()
        opt.step()
        return loss.item()

    names = list(models)
    times = {k: [] for k in names}
    losses = {k: [] for k in names}
    load_before = load()
    for i, batch in enumerate(batches):
        for name in names[i % len(names):] + names[:i % len(names)]:  # a rotating order
            start = clock()
            losses[name].append(step(name, batch))
            if i > 0:
                times[name].append(clock() - start)
    load_after = load()
    tokens = args.batch * args.block
    speed = {k: tokens / statistics.median(v) for k, v in times.items()}
    rounds = {k: [h / t for h, t in zip(times[HF], times[k])] for k in names}
    unit = "tokens/s" if args.clock == "wall" else "tokens per CPU-second"
    rows = [f"| {k} | {speed[k]:,.0f} | {speed[k] / speed[HF]:.2f} | "
            f"{min(rounds[k]):.2f}-{max(rounds[k]):.2f} | {losses[k][0]:.4f} |" for k in names]
    table = (f"| model | {unit} | ratio to HF | per-round ratios | first loss |\n"
             "| --- | --- | --- | --- | --- |\n" + "\n".join(rows))
    note = (f"{args.n_layer} layers, n_embd {args.n_embd}, {n_head} heads, vocab {config.vocab_size}, "
            f"batch {args.batch} x {args.block}; median of {args.steps} alternating steps after a warm-up, "
            f"{'wall-clock' if args.clock == 'wall' else 'CPU'} time, {torch.get_num_threads()} torch "
            f"thread{'s' if torch.get_num_threads() > 1 else ''}; forward + backward + AdamW step "
            f"({args.optimizer} implementation, the same for all); the same initial weights (equal first "
            f"losses). Machine {load_before} before, {load_after} after.")
    if args.no_record:
        print(table + "\n\n" + note)
    else:
        record("Training speed: reference GPT vs Hugging Face", table, note)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
