"""A training run's log: ``log.csv`` in the run folder, one row per step (and step 0).

Columns: step (optimiser steps done), train_loss (that step's batch, averaged over its
micro-batches and processes), val_loss (when measured), lr (the step's learning rate),
tokens_per_s (the step's), elapsed_s (wall-clock seconds since the run began, resumed sessions
added up). Losses are written with every digit (``repr``), so two runs compare exactly.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

LOG_NAME = "log.csv"
LOG_FIELDS = ("step", "train_loss", "val_loss", "lr", "tokens_per_s", "elapsed_s")


def _format(value) -> str:
    if value is None:
        return ""
    return repr(float(value)) if isinstance(value, float) else str(value)


def start_log(path: Path, resume_step: int | None) -> None:
    """A fresh log with its header; when resuming, the old log cut back to the rows up to the
    checkpoint's step (rows after it are trained again)."""
    rows = []
    if resume_step is not None and path.is_file():
        with path.open(newline="") as f:
            rows = [r for r in csv.DictReader(f) if r.get("step", "").isdigit() and int(r["step"]) <= resume_step]
    tmp = path.with_name(f".{path.name}.part")
    with tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, LOG_FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)


def append_log(path: Path, **row) -> None:
    with path.open("a", newline="") as f:
        csv.DictWriter(f, LOG_FIELDS).writerow({k: _format(row.get(k)) for k in LOG_FIELDS})


def read_log(path: str | Path) -> list[dict]:
    """The log's rows, numbers as floats (step as int, missing values as None)."""
    with Path(path).open(newline="") as f:
        return [{k: (int(v) if k == "step" else float(v)) if v != "" else None for k, v in r.items()}
                for r in csv.DictReader(f)]
