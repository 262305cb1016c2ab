"""The speed ladder: how much each optimisation of a training step buys on this device.

``speed_ladder(config, device)`` trains the same GPT (same initial weights, same batches) for a
few steps once per rung, each rung switching one more optimisation on (cumulatively), and
measures tokens per second by wall clock (``torch.cuda.synchronize`` around the timed steps on
a GPU):

1. ``fp32``: the course's GPT as the notebooks write it, float32, AdamW from
   ``configure_optimizer`` (PyTorch's default implementation), TF32 off.
2. ``TF32``: float32 matrix products on TF32 tensor cores (CUDA, compute capability 8.0+).
3. ``autocast``: bfloat16 or float16 autocast, as ``reference.autocast_dtype`` chooses (float16
   with a GradScaler); skipped where it says None (CPU, MPS: the course trains in float32).
4. ``fused``: ``gpt2course.training.fused.fuse``: SDPA attention (flash / memory-efficient kernels),
   ``F.layer_norm``, ``F.gelu``, and the LM head and loss in one autograd node.
5. ``torch.compile``: only with ``compile=True`` (compiling takes from half a minute to several
   minutes); a compile that fails is reported as skipped with its error, and the later rungs run
   without it. Training only: the course never compiles the generation path.
6. ``vocab padded to 64``: 50,257 -> 50,304 rows in the embedding and the head (rows added as
   zeros, never a target), so the head's matrix products get friendlier shapes.
7. ``fused AdamW``: ``torch.optim.AdamW(fused=True)``, one kernel for the whole update (CUDA; on
   the CPU too where this PyTorch has it).

Every step is a whole training step, the one ``python -m gpt2course train`` takes
(``training.step.TrainStep``): zero the gradients, forward with the loss, backward, clip the
gradient norm to 1, AdamW step, at a constant learning rate. Rungs that do not apply
to the device are kept, marked skipped with the reason. In float32 (CPU), rungs 1, 4 and 7
compute the same losses up to rounding (tests/training/test_speed_ladder.py checks it); padding
the vocabulary adds zero logits to the softmax, which changes the loss slightly.

The rows say tokens/s, the ratio to the first rung measured (normally ``fp32``) and, on GPUs
listed in ``gpt2course.training.mfu``, the MFU (model FLOPs of the unpadded model, LM head
included) against one peak for every rung: the GPU's dense peak in the dtype autocast would use
(bfloat16 or float16), so that the MFU column grows with tokens/s (a float32 rung measured
against the float32 peak would look efficient while being slow). ``plot_ladder`` draws them.
Measured numbers depend on the machine and its load: a shared CPU swings by tens of percent.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field

PAD_MULTIPLE = 64


@dataclass(frozen=True)
class Switches:
    """The optimisations a rung trains with."""

    tf32: bool = False
    autocast: object = None       # torch.bfloat16 / torch.float16, or None: float32
    fused: bool = False
    compile: bool = False
    vocab_multiple: int = 1
    fused_adamw: bool = False


@dataclass(frozen=True)
class Rung:
    name: str
    switch: str  # the Switches field this rung turns on


RUNGS = (
    Rung("fp32", ""),
    Rung("TF32", "tf32"),
    Rung("autocast", "autocast"),
    Rung("fused kernels (SDPA)", "fused"),
    Rung("torch.compile", "compile"),
    Rung("vocab padded to 64", "vocab_multiple"),
    Rung("fused AdamW", "fused_adamw"),
)


@dataclass
class LadderRow:
    """One rung's result: ``tokens_per_s`` and ``ratio`` (to the first rung) are None when the
    rung was skipped, and ``skipped`` then says why."""

    name: str
    tokens_per_s: float | None = None
    ratio: float | None = None
    skipped: str | None = None
    mfu: float | None = None
    losses: list = field(default_factory=list)  # every step's loss, warm-up steps first
    note: str = ""


def pad_vocab(model, multiple: int = PAD_MULTIPLE):
    """A copy of the course GPT ``model`` whose vocabulary is rounded up to a multiple of
    ``multiple``: the same weights, zero rows added to the (tied) token embedding / LM head."""
    import torch

    from ..reference.gpt import GPT

    config = model.config
    padded_vocab = -(-config.vocab_size // multiple) * multiple
    padded = GPT(dataclasses.replace(config, vocab_size=padded_vocab)).to(model.transformer.wte.weight.device)
    state = model.state_dict()
    wte = state["transformer.wte.weight"]
    with torch.no_grad():
        grown = torch.zeros(padded_vocab, wte.size(1), dtype=wte.dtype, device=wte.device)
        grown[: config.vocab_size] = wte
        state["transformer.wte.weight"] = state["lm_head.weight"] = grown
    padded.load_state_dict(state)
    from .fused import fuse, is_fused
    if is_fused(model):  # keep the same module classes
        fuse(padded, head=type(model) is not GPT)
    return padded


def _not_applicable(rung: Rung, device, capability, compile: bool) -> str | None:
    from ..reference.precision import autocast_dtype

    where = "a CPU" if device.type == "cpu" else device.type
    if rung.switch == "tf32":
        if device.type != "cuda":
            return f"no TF32 on {where}"
        if capability < (8, 0):
            return (f"compute capability {capability[0]}.{capability[1]}: no TF32 tensor cores "
                    "(they came with 8.0, the A100)")
    if rung.switch == "autocast" and autocast_dtype(device, capability) is None:
        return f"autocast_dtype gives None on {where}: the course trains in float32 there"
    if rung.switch == "compile" and not compile:
        return "not asked for (compile=True measures it; compiling takes a minute or more)"
    return None


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def _make_optimizer(model, switches: Switches, lr: float):
    from ..reference.training import configure_optimizer
    from .fused import fused_adamw

    optimizer = configure_optimizer(model, weight_decay=0.1, learning_rate=lr, betas=(0.9, 0.95))
    return fused_adamw(optimizer) if switches.fused_adamw else optimizer


def _train_rung(config, switches: Switches, device, batches, warmup: int, seed: int, lr: float):
    """Train a fresh model with ``switches`` on ``batches``; returns (timed seconds, losses)."""
    import torch

    from ..reference.gpt import GPT
    from .fused import fuse
    from .step import TrainStep

    torch.manual_seed(seed)
    model = GPT(config).to(device)
    if switches.vocab_multiple > 1:
        model = pad_vocab(model, switches.vocab_multiple)
    if switches.fused:
        fuse(model)
    model.train()
    optimizer = _make_optimizer(model, switches, lr)
    step = TrainStep(model, optimizer, dtype=switches.autocast, grad_clip=1.0,
                     forward=torch.compile(model) if switches.compile else model)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = switches.tf32
        torch.backends.cudnn.allow_tf32 = switches.tf32
    losses, start = [], None
    for i, (x, y) in enumerate(batches):
        if i == warmup:
            _sync(device)
            start = time.perf_counter()
        losses.append(step([(x, y)]).loss)  # a tensor: reading it now would wait for the GPU
    _sync(device)
    seconds = time.perf_counter() - start
    return seconds, [float(v) for v in losses]


def speed_ladder(config, device=None, batch_size: int = 8, steps: int = 5, warmup: int = 2,
                 compile: bool = False, rungs=RUNGS, seed: int = 0, lr: float = 1e-3,
                 progress: bool = True) -> list[LadderRow]:
    """Measure each rung of ``rungs`` (cumulative switches, see the module's docstring) on
    ``device`` (default: the best available) with a GPT of ``config`` (a GPTConfig), training on
    ``batch_size`` x ``config.block_size`` random tokens a step: ``warmup`` untimed steps (the
    compile happens there), then ``steps`` timed ones. Returns one LadderRow per rung, in order.
    """
    import torch
    from tqdm.auto import tqdm

    from ..env import default_device
    from ..reference.precision import autocast_dtype
    from .mfu import device_name, mfu

    if steps < 1 or warmup < 0:
        raise ValueError(f"steps must be at least 1 and warmup at least 0, got {steps} and {warmup}")
    device = torch.device(device or default_device())
    capability = torch.cuda.get_device_capability(device) if device.type == "cuda" else None
    name = device_name(device)
    reference_dtype = autocast_dtype(device, capability) or "float32"  # every rung's MFU is of this peak
    generator = torch.Generator().manual_seed(seed)
    data = torch.randint(config.vocab_size, (warmup + steps, batch_size, config.block_size + 1),
                         generator=generator)
    batches = [(d[:, :-1].to(device), d[:, 1:].to(device)) for d in data]
    tokens = steps * batch_size * config.block_size
    saved_tf32 = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) if device.type == "cuda" else None

    rows, switches, baseline = [], Switches(), None
    bar = tqdm(total=len(rungs), unit="rung", disable=not progress)
    try:
        for rung in rungs:
            bar.set_description(rung.name)
            row = LadderRow(rung.name)
            rows.append(row)
            reason = _not_applicable(rung, device, capability, compile)
            if reason is not None:
                row.skipped = reason
                bar.update(1)
                continue
            value = {"": None, "tf32": True, "autocast": autocast_dtype(device, capability), "fused": True,
                     "compile": True, "vocab_multiple": PAD_MULTIPLE, "fused_adamw": True}[rung.switch]
            trial = dataclasses.replace(switches, **{rung.switch: value}) if rung.switch else switches
            if rung.switch == "autocast":
                row.name = f"autocast {str(value).replace('torch.', '')}"
            if rung.switch == "vocab_multiple" and config.vocab_size % PAD_MULTIPLE == 0:
                row.skipped = f"the vocabulary ({config.vocab_size}) is a multiple of {PAD_MULTIPLE} already"
                bar.update(1)
                continue
            try:
                t0 = time.perf_counter()
                seconds, row.losses = _train_rung(config, trial, device, batches, warmup, seed, lr)
                total = time.perf_counter() - t0
            except Exception as exc:  # noqa: BLE001 - reported in the row: the ladder goes on
                first = (str(exc).strip().splitlines() or [""])[0][:200]
                row.skipped = f"failed: {type(exc).__name__}: {first}"
                if device.type == "cuda":
                    torch.cuda.empty_cache()
                bar.update(1)
                continue
            switches = trial
            row.tokens_per_s = tokens / seconds
            baseline = baseline or row.tokens_per_s
            row.ratio = row.tokens_per_s / baseline
            row.mfu = mfu(row.tokens_per_s, config, name, reference_dtype)
            if rung.switch == "compile":
                row.note = f"warm-up with compiling: {total - seconds:.0f} s"
            bar.set_postfix_str(f"{row.tokens_per_s:,.0f} tok/s", refresh=False)
            bar.update(1)
    finally:
        bar.close()
        if device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved_tf32
    return rows


def format_ladder(rows: list[LadderRow]) -> str:
    """The rows as a Markdown table (rung, tokens/s, x first rung, MFU, note or skipped reason)."""
    lines = ["| rung | tokens/s | x first | MFU (of the 16-bit peak) | note |", "| --- | ---: | ---: | ---: | --- |"]
    for row in rows:
        if row.tokens_per_s is None:
            lines.append(f"| {row.name} | - | - | - | skipped: {row.skipped} |")
            continue
        mfu = f"{row.mfu:.1%}" if row.mfu is not None else "-"
        lines.append(f"| {row.name} | {row.tokens_per_s:,.0f} | {row.ratio:.2f} | {mfu} | {row.note} |")
    return "\n".join(lines)


def plot_ladder(rows: list[LadderRow], title: str | None = None, ax=None):
    """A horizontal bar chart of tokens/s per rung, labelled with the ratio to the first rung;
    skipped rungs keep their place, with the reason instead of a bar. Returns the figure."""
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=(8, 0.5 * len(rows) + 1.2))
    else:
        fig = ax.figure
    names = [row.name for row in rows][::-1]
    values = [row.tokens_per_s or 0.0 for row in rows][::-1]
    colors = ["tab:blue" if row.tokens_per_s is not None else "lightgrey" for row in rows][::-1]
    bars = ax.barh(names, values, color=colors)
    top = max(values) if any(values) else 1.0
    for bar_, row in zip(bars, rows[::-1]):
        y = bar_.get_y() + bar_.get_height() / 2
        if row.tokens_per_s is None:
            reason = row.skipped if len(row.skipped) <= 70 else row.skipped[:67] + "..."
            ax.text(top * 0.01, y, f"skipped: {reason}", va="center", fontsize=8, color="dimgrey")
        else:
            mfu = f", MFU {row.mfu:.0%}" if row.mfu is not None else ""
            ax.text(row.tokens_per_s, y, f" {row.ratio:.2f}x{mfu}", va="center", fontsize=9)
    ax.set_xlim(0, top * 1.25)
    ax.set_xlabel("tokens per second (training)")
    ax.set_title(title or "Speed ladder: each rung adds one optimisation")
    fig.tight_layout()
    return fig
