"""Training speed: the course's GPT against Hugging Face's GPT2LMHeadModel, same config.

    python bench/train_speed.py [--n-layer 4] [--n-embd 384] [--batch 4] [--block 256] [--steps 3]

Three models with the same weights train on the same random batches: the reference GPT as the
notebooks write it, the same model with gpt2course.fast.fuse (SDPA, F.layer_norm, F.gelu), and
transformers' GPT2LMHeadModel (its default attention). One training step = forward, loss,
backward, AdamW step. Steps alternate between the models in one process (so machine load hits
all alike); the median step time of each gives tokens/s, and the ratios to Hugging Face are
reported. Needs `transformers` (a test dependency). Appends to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402

from common import record  # noqa: E402
from gpt2course.fast import fuse  # noqa: E402
from gpt2course.reference import GPT, GPTConfig, load_hf_weights  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-layer", type=int, default=4)
    parser.add_argument("--n-embd", type=int, default=384)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--block", type=int, default=256)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per model (after one warm-up)")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args(argv)
    try:
        from transformers import GPT2Config, GPT2LMHeadModel
        from transformers.utils import logging as hf_logging
    except ImportError:
        print("bench/train_speed.py needs transformers (pip install transformers)", file=sys.stderr)
        return 2
    hf_logging.set_verbosity_error()

    n_head = max(1, args.n_embd // 64)
    config = GPTConfig(block_size=args.block, n_layer=args.n_layer, n_head=n_head, n_embd=args.n_embd)
    torch.manual_seed(0)
    hf = GPT2LMHeadModel(GPT2Config(vocab_size=config.vocab_size, n_positions=args.block,
                                    n_embd=args.n_embd, n_layer=args.n_layer, n_head=n_head,
                                    resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0))
    plain = load_hf_weights(GPT(config), hf.state_dict())
    fused = fuse(load_hf_weights(GPT(config), hf.state_dict()))
    models = {"reference GPT (as written in the notebooks)": plain,
              "reference GPT, fused (gpt2course.fast)": fused,
              "Hugging Face GPT2LMHeadModel": hf}
    optimizers = {k: torch.optim.AdamW(m.parameters(), lr=1e-4) for k, m in models.items()}
    gen = torch.Generator().manual_seed(0)
    batches = [torch.randint(0, config.vocab_size, (args.batch, args.block + 1), generator=gen)
               for _ in range(args.steps + 1)]

    def step(name, batch):
        model, opt = models[name], optimizers[name]
        x, y = batch[:, :-1], batch[:, 1:]
        opt.zero_grad(set_to_none=True)
        if name.startswith("Hugging"):  # the same loss as ours, on the logits
            logits = model(input_ids=x).logits
            loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten())
        else:
            _, loss = model(x, y)
        loss.backward()
        opt.step()
        return loss.item()

    times = {k: [] for k in models}
    losses = {k: [] for k in models}
    for i, batch in enumerate(batches):
        for name in models:
            start = time.perf_counter()
            losses[name].append(step(name, batch))
            if i > 0:
                times[name].append(time.perf_counter() - start)
    tokens = args.batch * args.block
    speed = {k: tokens / statistics.median(v) for k, v in times.items()}
    hf_speed = speed["Hugging Face GPT2LMHeadModel"]
    rows = [f"| {k} | {speed[k]:,.0f} | {speed[k] / hf_speed:.2f} | {losses[k][0]:.4f} |" for k in models]
    table = ("| model | tokens/s | ratio to HF | first loss |\n| --- | --- | --- | --- |\n" + "\n".join(rows))
    note = (f"{args.n_layer} layers, n_embd {args.n_embd}, {n_head} heads, vocab {config.vocab_size}, "
            f"batch {args.batch} x {args.block}; median of {args.steps} alternating steps after a warm-up; "
            "forward + backward + AdamW step; the same initial weights (equal first losses).")
    if args.no_record:
        print(table + "\n\n" + note)
    else:
        record("Training speed: reference GPT vs Hugging Face", table, note)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
