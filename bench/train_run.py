"""Training speed of ``python -m gpt2course train --preset cpu`` (notebook 08's run).

    python bench/train_run.py [--preset cpu] [--steps 20] [--warmup 3] [--no-record]

Runs the command line's own training loop (gpt2course.training.run, with its logging, on the preset's
model and batch) for warm-up + timed steps in a temporary folder, reads the per-step tokens/s
from its log.csv, and reports the median over the timed steps, with an estimate of the whole
preset run (its max_steps at that speed, evaluations not included). The machine's load average
is recorded with the result, since other work on the machine slows it down. Appends to
bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import record  # noqa: E402
from gpt2course.training import run  # noqa: E402
from gpt2course.training.presets import PRESETS  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=list(PRESETS), default="cpu")
    parser.add_argument("--steps", type=int, default=20, help="timed steps (default 20)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (default 3)")
    parser.add_argument("--device", default=None, help="default: the preset's (auto)")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args(argv)

    preset = PRESETS[args.preset]
    total = args.warmup + args.steps
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as folder:
        # The preset's model, batch and optimiser; only the run's length and its evaluations and
        # checkpoints (at the end only) change.
        plan = run.plan_run(preset=args.preset, out=Path(folder) / "run", overrides=dict(
            max_steps=total, warmup_steps=min(preset.warmup_steps, total), eval_interval=total,
            checkpoint_interval=total))
        start = time.perf_counter()
        with open(os.devnull, "w") as quiet:
            run.train(plan, device=args.device, progress=False, out=quiet)
        wall = time.perf_counter() - start
        rows = [r for r in run.read_log(plan.log) if r["step"] > args.warmup]
    load_after = os.getloadavg()
    rates = [r["tokens_per_s"] for r in rows]
    median = statistics.median(rates)
    tokens_per_step = preset.batch_size * preset.block_size
    full_minutes = preset.max_steps * tokens_per_step / median / 60
    c = preset
    table = "\n".join([
        "| preset | model | tokens/step | tokens/s (median) | min / max | ms/step | whole run (est.) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        f"| {args.preset} | {c.n_layer} layers x {c.n_embd}, {c.n_head} heads, context {c.block_size}, "
        f"vocab {c.vocab_size} | {c.batch_size} x {c.block_size} = {tokens_per_step:,} | {median:,.0f} | "
        f"{min(rates):,.0f} / {max(rates):,.0f} | {1000 * tokens_per_step / median:,.0f} | "
        f"{full_minutes:.1f} min for {c.max_steps} steps |",
    ])
    note = (f"`python -m gpt2course train --preset {args.preset}`'s loop (gpt2course.training.run: "
            f"fused model, AdamW, float32 on CPU), {args.steps} timed steps after {args.warmup} warm-up "
            f"steps, from its log.csv; the whole-run estimate leaves out the {c.max_steps // c.eval_interval + 1} "
            f"evaluations. Wall time of this benchmark {wall:.0f} s. Load average (1 min) before it "
            f"{load_before[0]:.2f}, after it {load_after[0]:.2f} ({os.cpu_count()} cores; the benchmark "
            "itself adds about its thread count)"
            + (": other work was running, so these tokens/s are lower than an idle machine's."
               if load_before[0] > 0.5 else "."))
    if args.no_record:
        print(table + "\n\n" + note)
    else:
        record(f"Training run: python -m gpt2course train --preset {args.preset}", table, note)
    return 0


if __name__ == "__main__":
    sys.exit(main())
