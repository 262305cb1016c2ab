"""What the benchmarks share: a description of the machine and the RESULTS.md log."""

from __future__ import annotations

import datetime
import os
import platform
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def hardware() -> str:
    """CPU model, cores and threads, the GPU if any, and torch's version, in one line."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (f"{cpu}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads, {gpu}, "
            f"torch {torch.__version__}")


def record(title: str, table: str, note: str = "") -> None:
    """Print ``table`` and append it to RESULTS.md under a dated heading with the hardware."""
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    text = f"\n## {title} ({stamp})\n\n{hardware()}\n\n{table}\n" + (f"\n{note}\n" if note else "")
    print(text)
    if not RESULTS.exists():
        RESULTS.write_text("# Benchmark results\n\nAppended by the scripts in bench/; newest last. "
                           "Ratios are measured side by side in one process.\n")
    with RESULTS.open("a") as f:
        f.write(text)
