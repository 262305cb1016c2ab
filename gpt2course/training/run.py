"""``python -m gpt2course train``: train the course's GPT-2 on Tiny Shakespeare (or any text).

The pieces are the course's own (``gpt2course.reference``): ``GPT``, ``get_batch``,
``configure_optimizer``, ``get_lr``, the loss and gradient clipping of ``train_step``, the
evaluation of ``estimate_loss``; around them this module adds what a long run needs: presets
(``presets``), mixed precision and data parallelism under ``torchrun`` (``devices``), gradient
accumulation (one optimizer step is ``step.TrainStep``), checkpoints and exact resume
(``checkpoints``), a loss log (``loss_log``) and a clean stop on Ctrl-C; the modules named are
``gpt2course.training``'s.

Batches. Each step draws its global batch of ``batch_size`` windows with ``get_batch`` from one
generator seeded with the run's seed (as notebook 08 does): every process draws the same batch,
process r of W takes rows r*B/W .. (r+1)*B/W - 1 and splits them into micro-batches whose
gradients accumulate. So one process with accumulation and several processes see the same
windows, and their gradients agree up to the order of float additions. The generator's state
is saved in each checkpoint, so a resumed run draws what the uninterrupted run drew; dropout
masks come from a seed made of (seed, step, rank).
"""

from __future__ import annotations

import math
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from .checkpoints import CHECKPOINT_NAME, read_checkpoint, read_config, save_checkpoint
from .devices import Processes, all_reduce_sum, autocast_dtype, pick_device, processes_from_env
from .loss_log import LOG_NAME, append_log, read_log, start_log
from .presets import (GPT2_VOCAB_SIZE, MODEL_FIELDS, PRESETS, RunError, TrainConfig, check_config, flag,
                      gpt_config, micro_batch_size, replace)
from .step import TrainStep

__all__ = ["RunPlan", "plan_run", "train", "TrainResult", "Interrupted", "RunError", "evaluate",
           "load_tokens", "text_to_ids", "my_micro_batches", "StopRequest", "read_log", "LOG_NAME"]

PROG = "python -m gpt2course train"
_MASK64 = (1 << 64) - 1


class Interrupted(Exception):
    """Ctrl-C (or SIGTERM) stopped the run after a step; the message says what was saved."""


# --------------------------------------------------------------------------------------------
# Settings and files


@dataclass
class RunPlan:
    """What ``train`` will do: the settings, the folder, and whether it resumes."""

    config: TrainConfig
    preset: str
    out: Path
    resume: bool = False
    overwrite: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def checkpoint(self) -> Path:
        return self.out / CHECKPOINT_NAME

    @property
    def log(self) -> Path:
        return self.out / LOG_NAME


def plan_run(preset: str | None = None, overrides: dict | None = None, out: str | Path | None = None,
             resume: bool = False, overwrite: bool = False, world_size: int = 1) -> RunPlan:
    """Settle a run's settings and folder, refusing what cannot work. ``overrides`` holds the
    TrainConfig fields given on the command line (None: not given).

    A new run takes ``preset`` ("cpu" when None) and the overrides; its folder (default
    ``runs/<preset>``) must not hold a run already unless ``overwrite``. A resumed run takes the
    settings stored in the folder's checkpoint and the overrides, which must not change the
    model's shape; every other change is listed in ``notes``."""
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    if resume and overwrite:
        raise RunError("--resume continues the run in --out, --overwrite deletes it: give one of them")
    if preset is not None and preset not in PRESETS:
        raise RunError(f"--preset {preset}: unknown (choose from {', '.join(PRESETS)})")
    if "data" in overrides:
        if not Path(overrides["data"]).is_file():
            raise RunError(f"--data {overrides['data']}: no such file")
        overrides["data"] = str(Path(overrides["data"]).resolve())
    folder = Path(out) if out is not None else Path("runs") / (preset or "cpu")
    if folder.exists() and not folder.is_dir():
        raise RunError(f"--out {folder}: not a folder")
    checkpoint, log = folder / CHECKPOINT_NAME, folder / LOG_NAME
    notes = []
    if resume:
        if not checkpoint.is_file():
            if log.is_file():
                raise RunError(f"--resume: the run in {folder} stopped before its first checkpoint (there is a "
                               f"{log.name} but no {CHECKPOINT_NAME}): start it again with --overwrite")
            raise RunError(f"--resume: there is no checkpoint to resume in {folder} (no {CHECKPOINT_NAME}); "
                           "leave out --resume to start a new run")
        saved, saved_preset, step = read_config(checkpoint)
        if preset is not None and saved_preset and preset != saved_preset:
            raise RunError(f"--resume: the run in {folder} was started with --preset {saved_preset}, "
                           f"not {preset}: leave out --preset to continue it")
        config = replace(saved, **overrides)
        changed = [n for n in MODEL_FIELDS if getattr(config, n) != getattr(saved, n)]
        if changed:
            was = ", ".join(f"{n}={getattr(saved, n)}" for n in changed)
            now = ", ".join(f"{flag(n)} {getattr(config, n)}" for n in changed)
            raise RunError(f"--resume: the checkpoint in {folder} is a model with {was}; {now} would be a "
                           "different model. Resume without changing the model's shape, or start a new "
                           "run in another --out folder")
        for name, value in overrides.items():
            if value != getattr(saved, name):
                notes.append(f"note: resuming with {flag(name)} {value} (the run had {getattr(saved, name)})")
        name = saved_preset or preset or "cpu"
    else:
        found = [p.name for p in (checkpoint, log) if p.exists()]
        if found and not overwrite:
            raise RunError(f"{folder} already holds a training run ({', '.join(found)}): add --resume to "
                           "continue it, or --overwrite to start again from scratch (or choose another --out)")
        name = preset or "cpu"
        config = replace(PRESETS[name], **overrides)
    check_config(config, world_size)
    return RunPlan(config=config, preset=name, out=folder, resume=resume, overwrite=overwrite, notes=notes)


# --------------------------------------------------------------------------------------------
# Data and batches


def text_to_ids(text: str, vocab_size: int):
    """``text`` as GPT-2 token ids: its BPE tokens when the vocabulary is GPT-2's (or larger),
    else byte by byte (GPT-2's single-byte tokens, ids below 256), as ``generate`` reads a prompt."""
    import torch

    from ..tokenizer import gpt2_encoding

    enc = gpt2_encoding()
    if vocab_size >= GPT2_VOCAB_SIZE:
        return torch.tensor(enc.encode_ordinary(text), dtype=torch.long)
    table = torch.tensor([enc.encode_single_token(bytes([b])) for b in range(256)], dtype=torch.long)
    data = text.encode("utf-8")
    if not data:
        return torch.zeros(0, dtype=torch.long)
    return table[torch.frombuffer(bytearray(data), dtype=torch.uint8).long()]


def load_tokens(config: TrainConfig):
    """(train, val) token ids of the run's text: 90% / 10% by characters."""
    from ..data import load_shakespeare, shakespeare_tokens, split_text

    if not config.data and config.vocab_size >= GPT2_VOCAB_SIZE:
        return shakespeare_tokens()
    if config.data:
        try:
            text = Path(config.data).read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise RunError(f"--data {config.data}: not UTF-8 text") from None
    else:
        text = load_shakespeare()
    train_text, val_text = split_text(text)
    return text_to_ids(train_text, config.vocab_size), text_to_ids(val_text, config.vocab_size)


def derive_seed(*values: int) -> int:
    """A seed for torch.Generator mixed from integers (splitmix64 steps), so that seeds of
    neighbouring steps are unrelated."""
    h = 0x9E3779B97F4A7C15
    for v in values:
        h = ((h ^ (v & _MASK64)) * 0xBF58476D1CE4E5B9) & _MASK64
        h ^= h >> 31
        h = (h * 0x94D049BB133111EB) & _MASK64
        h ^= h >> 29
    return h & ((1 << 63) - 1)


def my_micro_batches(data, config: TrainConfig, generator, procs: Processes):
    """The global batch drawn with ``get_batch`` and ``generator``; this process's rows of it,
    as a list of (x, y) micro-batches."""
    from ..reference.batches import get_batch

    x, y = get_batch(data, config.block_size, config.batch_size, generator=generator)
    per_process = config.batch_size // procs.world_size
    first = procs.rank * per_process
    x, y = x[first:first + per_process], y[first:first + per_process]
    micro = micro_batch_size(config, procs.world_size)
    return list(zip(x.split(micro), y.split(micro)))


def evaluate(model, data, config: TrainConfig, procs: Processes, device, autocast) -> float:
    """Mean loss on ``eval_iters`` batches of ``batch_size`` windows of ``data``, in eval mode,
    without gradients (reference.estimate_loss, with the rows shared out among processes). The
    batches come from a generator seeded with seed + 1 (as in notebook 08): the same batches at
    every evaluation, so the curve compares like with like."""
    import torch

    generator = torch.Generator().manual_seed(config.seed + 1)
    was_training = model.training
    model.eval()
    total = torch.zeros((), dtype=torch.float64, device=device)
    with torch.no_grad():
        for _ in range(config.eval_iters):
            for x, y in my_micro_batches(data, config, generator, procs):
                with autocast():
                    _, loss = model(x.to(device), y.to(device))
                total += loss.double() * len(x)
    model.train(was_training)
    return all_reduce_sum(total, procs).item() / (config.eval_iters * config.batch_size)


# --------------------------------------------------------------------------------------------
# Stopping cleanly


class StopRequest:
    """Ctrl-C or SIGTERM asks the run to stop after the current step (and save a checkpoint);
    a second Ctrl-C stops at once, unless ``force_on_repeat`` is False (under torchrun, whose
    agent passes the terminal's Ctrl-C on to its workers a second time). Only installed in the
    main thread."""

    def __init__(self, say, force_on_repeat: bool = True):
        self.requested = False
        self._say = say
        self._force = force_on_repeat
        self._previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested:
            if self._force and signum == signal.SIGINT:
                raise KeyboardInterrupt
            return
        self.requested = True
        again = " (Ctrl-C again to stop at once, losing what the last checkpoint does not hold)"
        self._say("stopping after this step and saving a checkpoint" + (again if self._force else ""))

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        return False


# --------------------------------------------------------------------------------------------
# Training


@dataclass
class TrainResult:
    step: int
    val_loss: float | None
    checkpoint: Path
    log: Path
    elapsed_s: float
    main: bool  # this process is the one that reports (rank 0)


def train(plan: RunPlan, device: str | None = None, progress: bool = True, out=None) -> TrainResult:
    """Run ``plan`` (see ``plan_run``) to ``max_steps`` and return the outcome. Progress lines go
    to ``out`` (default stdout), the progress bar to stderr; under torchrun only rank 0 writes.
    Raises ``Interrupted`` after saving a checkpoint when Ctrl-C or SIGTERM stops it."""
    from tqdm.auto import tqdm

    out = out or sys.stdout
    config = plan.config
    procs = processes_from_env()
    check_config(config, procs.world_size)
    dev = pick_device(device, procs)
    dtype = autocast_dtype(dev, config.dtype)
    checkpoint = read_checkpoint(plan.checkpoint) if plan.resume else None
    train_ids, val_ids = load_tokens(config)
    for part, ids in (("training", train_ids), ("validation", val_ids)):
        if len(ids) <= config.block_size:
            raise RunError(f"the {part} text is {len(ids)} tokens, too short for --block-size {config.block_size}")

    def say(message: str) -> None:
        if procs.main:
            tqdm.write(message, file=out)

    if procs.distributed:
        import torch
        import torch.distributed as dist
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    try:
        if procs.distributed:
            dist.barrier()  # every process has checked the folder before rank 0 writes to it
        return _train(plan, procs, dev, dtype, checkpoint, train_ids, val_ids, say, progress)
    finally:
        if procs.distributed:
            dist.destroy_process_group()


@dataclass
class _Session:
    """What a run holds while it trains: ``raw`` (the model that is saved and clipped),
    ``model`` (the same, compiled when asked: evaluation runs it), the optimizer, the ``step``
    (``training.step.TrainStep``, with the loss scaler), the batch generator, and where the run
    stands (``start``: the step it began this session at; seconds and tokens so far)."""

    raw: object
    model: object
    optimizer: object
    step: TrainStep
    batches: object
    start: int = 0
    elapsed: float = 0.0
    tokens: int = 0


def _build(config: TrainConfig, procs: Processes, dev, dtype, checkpoint) -> _Session:
    """A fresh model, optimizer and batch generator from the run's seed; resumed from
    ``checkpoint`` when there is one; compiled and wrapped in DDP as the run asks."""
    import torch

    from ..reference.gpt import GPT
    from ..reference.training import configure_optimizer
    from .fused import fuse, fused_adamw

    if dev.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    torch.manual_seed(config.seed)
    raw = fuse(GPT(gpt_config(config))).to(dev)
    raw.train()
    optimizer = configure_optimizer(raw, config.weight_decay, config.max_lr, (config.beta1, config.beta2))
    if dev.type == "cuda":  # the same groups, one fused kernel per step
        optimizer = fused_adamw(optimizer)
    batches = torch.Generator().manual_seed(config.seed)
    if checkpoint is not None:
        batches.set_state(checkpoint.batch_generator_state)
        raw.load_state_dict(checkpoint.model_state)
        state = optimizer.state_dict()
        state["state"] = checkpoint.optimizer_state
        optimizer.load_state_dict(state)
    model = torch.compile(raw) if config.compile else raw
    forward = model
    if procs.distributed:  # after loading: DDP starts by sending rank 0's weights to every process
        from torch.nn.parallel import DistributedDataParallel
        forward = DistributedDataParallel(model, device_ids=[dev.index] if dev.type == "cuda" else None)
    step = TrainStep(raw, optimizer, dtype=dtype, grad_clip=config.grad_clip, forward=forward)
    session = _Session(raw=raw, model=model, optimizer=optimizer, step=step, batches=batches)
    if checkpoint is not None:
        if checkpoint.scaler_state and step.scaler.is_enabled():
            step.scaler.load_state_dict(checkpoint.scaler_state)
        session.start = checkpoint.step
        session.elapsed = float(checkpoint.progress.get("elapsed_s", 0.0))
        session.tokens = int(checkpoint.progress.get("tokens", 0))
    return session


def _save(plan: RunPlan, session: _Session, procs: Processes, step: int) -> None:
    """Rank 0 writes the checkpoint of the run after ``step`` steps."""
    if procs.main:
        scaler = session.step.scaler
        save_checkpoint(plan.checkpoint, session.raw, session.optimizer, plan.config, step, preset=plan.preset,
                        batch_generator_state=session.batches.get_state(),
                        scaler_state=scaler.state_dict() if scaler.is_enabled() else {},
                        progress={"elapsed_s": session.elapsed, "tokens": session.tokens})


def _open_folder(plan: RunPlan, session: _Session, procs: Processes, dev, dtype, n_train_tokens: int,
                 say) -> None:
    """Rank 0 makes the run folder, starts (or trims, on resume) the log and says what it trains."""
    if not procs.main:
        return
    config = plan.config
    plan.out.mkdir(parents=True, exist_ok=True)
    if plan.overwrite and plan.checkpoint.exists():
        plan.checkpoint.unlink()
    start_log(plan.log, session.start if plan.resume else None)
    n_params = sum(p.numel() for p in session.raw.parameters())
    accumulation = config.batch_size // (micro_batch_size(config, procs.world_size) * procs.world_size)
    processes = f"{procs.world_size} process{'es' if procs.world_size > 1 else ''}"
    micro = f"{accumulation} micro-batch{'es' if accumulation > 1 else ''}"
    say(f"{'resuming at step ' + str(session.start) if plan.resume else 'training'}: {n_params:,} parameters, "
        f"{config.n_layer} layers x {config.n_embd}, context {config.block_size}; {config.batch_size} x "
        f"{config.block_size} tokens a step ({processes} x {micro}); {dev}, "
        f"{str(dtype).replace('torch.', '')}; {n_train_tokens:,} training tokens; writing to {plan.out}")


def _train_step(session: _Session, config: TrainConfig, procs: Processes, dev, train_ids, step: int,
                stop: StopRequest) -> tuple[float, float, bool]:
    """Optimizer step number ``step`` (0-based): (its learning rate, its training loss averaged
    over every process, whether any process was asked to stop)."""
    import torch

    from ..reference.training import get_lr

    lr = get_lr(step, config.max_lr, config.min_lr, config.warmup_steps, config.max_steps)
    for group in session.optimizer.param_groups:
        group["lr"] = lr
    if config.dropout > 0:
        torch.manual_seed(derive_seed(config.seed, step, 1 + procs.rank))
    result = session.step(my_micro_batches(train_ids, config, session.batches, procs))
    # One collective for the step's loss and for "stop", so every process stops together.
    shared = torch.stack([result.loss, torch.tensor(float(stop.requested), dtype=torch.float64, device=dev)])
    train_loss, stopping = all_reduce_sum(shared, procs).tolist()
    train_loss /= procs.world_size
    if not math.isfinite(train_loss):
        raise RunError(f"the training loss became {train_loss} at step {step + 1}: lower --lr "
                       "(or use float32: --dtype float32)")
    return lr, train_loss, bool(stopping)


def _train(plan, procs, dev, dtype, checkpoint, train_ids, val_ids, say, progress):
    """``train``'s run once the processes are set up: build or resume, then step to the end,
    evaluating, logging and saving on the way."""
    from tqdm.auto import tqdm

    config = plan.config
    session = _build(config, procs, dev, dtype, checkpoint)
    del checkpoint
    _open_folder(plan, session, procs, dev, dtype, len(train_ids), say)

    def evaluate_now() -> float:
        return evaluate(session.model, val_ids, config, procs, dev, session.step.autocast)

    tokens_per_step = config.batch_size * config.block_size
    session_start = time.perf_counter()
    elapsed_before = session.elapsed
    val_loss = None
    if session.start == 0 or session.start >= config.max_steps:
        val_loss = evaluate_now()
        if procs.main and session.start == 0:
            append_log(plan.log, step=0, val_loss=val_loss,
                       elapsed_s=round(elapsed_before + time.perf_counter() - session_start, 3))
    if session.start >= config.max_steps:
        say(f"the run in {plan.out} has already done its {session.start} steps (--max-steps {config.max_steps}): "
            "give a larger --max-steps to train on")
        return TrainResult(session.start, val_loss, plan.checkpoint, plan.log, session.elapsed, procs.main)

    bar = tqdm(total=config.max_steps, initial=session.start, unit="step", dynamic_ncols=True,
               disable=not (progress and procs.main), file=sys.stderr)
    with StopRequest(say, force_on_repeat=not procs.distributed) as stop, bar:
        for step in range(session.start, config.max_steps):
            t0 = time.perf_counter()
            lr, train_loss, stopping = _train_step(session, config, procs, dev, train_ids, step, stop)
            done = step + 1
            tokens_per_s = tokens_per_step / (time.perf_counter() - t0)
            session.tokens += tokens_per_step
            val_loss = None
            if done % config.eval_interval == 0 or done == config.max_steps:
                val_loss = evaluate_now()
            session.elapsed = elapsed_before + time.perf_counter() - session_start
            if val_loss is not None:
                say(f"step {done}/{config.max_steps}: val loss {val_loss:.4f}, train loss {train_loss:.4f}, "
                    f"lr {lr:.2e}, {tokens_per_s:,.0f} tokens/s")
            if procs.main:
                append_log(plan.log, step=done, train_loss=train_loss, val_loss=val_loss, lr=lr,
                           tokens_per_s=round(tokens_per_s, 1), elapsed_s=round(session.elapsed, 3))
            bar.set_postfix_str(f"loss {train_loss:.4f}, {tokens_per_s:,.0f} tok/s", refresh=False)
            bar.update(1)
            if done % config.checkpoint_interval == 0 or done == config.max_steps or stopping:
                _save(plan, session, procs, done)
            if stopping and done < config.max_steps:
                bar.close()
                again = ("the same torchrun command with --resume" if procs.distributed
                         else f"{PROG} --out {plan.out} --resume")
                raise Interrupted(f"interrupted after step {done} of {config.max_steps}: checkpoint saved in "
                                  f"{plan.out}; continue with: {again}" if procs.main else "")
    return TrainResult(config.max_steps, val_loss, plan.checkpoint, plan.log, session.elapsed, procs.main)
