"""KV-cache speed-up: time per generated token with and without the cache.

    python bench/kv_cache.py [--new-tokens 256] [--prompt 16] [--repeats 3]

Both paths run the same model (random weights, GPT-2's vocabulary) on the same prompt, greedy,
alternately in one process; the best time of each is kept. The tokens are checked to be equal.
The table is printed and appended to bench/RESULTS.md with the hardware.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402

from common import record  # noqa: E402
from gpt2course.reference import GPT, GPTConfig, generate  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--new-tokens", type=int, default=256)
    parser.add_argument("--prompt", type=int, default=16, help="prompt length in tokens")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--n-layer", type=int, default=6)
    parser.add_argument("--n-embd", type=int, default=384)
    parser.add_argument("--no-record", action="store_true", help="print only, do not append to RESULTS.md")
    args = parser.parse_args(argv)

    config = GPTConfig(block_size=args.prompt + args.new_tokens, n_layer=args.n_layer,
                       n_head=args.n_embd // 64, n_embd=args.n_embd)
    torch.manual_seed(0)
    model = GPT(config).eval()
    idx = torch.randint(0, config.vocab_size, (1, args.prompt))
    best = {True: float("inf"), False: float("inf")}
    outputs = {}
    for _ in range(args.repeats):
        for use_cache in (True, False):
            start = time.perf_counter()
            outputs[use_cache] = generate(model, idx, args.new_tokens, temperature=0, use_cache=use_cache)
            best[use_cache] = min(best[use_cache], time.perf_counter() - start)
    same = torch.equal(outputs[True], outputs[False])
    per_token = {k: 1000 * v / args.new_tokens for k, v in best.items()}
    speedup = best[False] / best[True]
    table = ("| model | prompt | new tokens | without cache (ms/token) | with cache (ms/token) | speed-up | same tokens |\n"
             "| --- | --- | --- | --- | --- | --- | --- |\n"
             f"| {args.n_layer} layers, n_embd {args.n_embd}, vocab {config.vocab_size} | {args.prompt} | "
             f"{args.new_tokens} | {per_token[False]:.1f} | {per_token[True]:.1f} | {speedup:.1f}x | {same} |")
    if args.no_record:
        print(table)
    else:
        record("KV cache: generation with and without it", table,
               f"Best of {args.repeats} alternating runs, greedy, batch 1.")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
