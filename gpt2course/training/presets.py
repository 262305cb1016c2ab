"""Training presets: every setting of a ``python -m gpt2course train`` run, in one place.

``PRESETS["cpu"]`` is the run notebook 08 makes on two CPU cores (about 5 minutes): a 4-layer,
128-wide GPT-2 with GPT-2's whole vocabulary, trained 200 steps on Tiny Shakespeare, with the
same seed, initial weights and batches (one generator seeded with ``seed`` for the training
batches, one seeded with ``seed + 1`` for the validation batches). Keep the notebook's run and
this preset equal (or have the notebook read it from here), so "this is ``--preset cpu``" stays
true when they are tuned.

The GPU presets are sized for Tiny Shakespeare's 301,966 training tokens: big enough to learn
more than the CPU model, small enough (and run short enough, with dropout) not to just memorise
the text. Their speeds and final losses have NOT been measured yet; they are first guesses.

Every field can be changed on the command line (``--max-steps``, ``--lr``, ``--n-layer``, ...);
``check_config`` refuses settings that contradict each other, naming the flags.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

GPT2_VOCAB_SIZE = 50257


class RunError(Exception):
    """A run that cannot start as asked (bad settings, files in the way): one line for the user."""


@dataclass(frozen=True)
class TrainConfig:
    """One training run's settings (model shape, optimisation, evaluation, checkpoints)."""

    # The model (GPTConfig's fields). A vocab_size below GPT-2's 50,257 reads the text byte by
    # byte (GPT-2's 256 single-byte tokens, so it must be at least 256). vocab_multiple pads the
    # vocabulary up to a multiple of it (faster matrix products on GPUs; the extra rows are never
    # a target and are never sampled).
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    block_size: int = 128
    vocab_size: int = GPT2_VOCAB_SIZE
    vocab_multiple: int = 1
    dropout: float = 0.0
    # Optimisation: batch_size sequences per optimiser step in all (the global batch), split
    # over processes and into micro-batches of micro_batch_size (0: batch_size / processes).
    batch_size: int = 16
    micro_batch_size: int = 0
    max_steps: int = 200
    warmup_steps: int = 20
    max_lr: float = 1e-3
    min_lr: float = 1e-4
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0  # 0: no clipping
    # Evaluation (mean loss on eval_iters batches of batch_size validation sequences, the same
    # batches every time) and checkpoints.
    eval_interval: int = 25
    eval_iters: int = 4
    checkpoint_interval: int = 50
    # Arithmetic: "auto" is bfloat16 autocast on GPUs with compute capability 8.0 or more,
    # float16 autocast with loss scaling on older GPUs, float32 elsewhere.
    dtype: str = "auto"
    compile: bool = False
    seed: int = 0
    # The text to train on: a UTF-8 file, split 90/10 into training and validation text by
    # characters ("": Tiny Shakespeare, shipped in data/).
    data: str = ""


# Fields that fix the shapes of the model's tensors: a checkpoint only resumes with the same.
MODEL_FIELDS = ("n_layer", "n_head", "n_embd", "block_size", "vocab_size", "vocab_multiple")
DTYPES = ("auto", "float32", "bfloat16", "float16")

PRESETS: dict[str, TrainConfig] = {
    # Notebook 08's run, on 2 CPU cores: ~5 minutes.
    "cpu": TrainConfig(),
    # A Colab T4 (16 GB, float16): 6 layers x 384 (about 30M parameters, 19M of them the token
    # embedding), context 256, 32 x 256 tokens a step, 300 steps: about 8 passes over the
    # training tokens, with dropout, so the model learns the text's style rather than the
    # text itself. Final validation loss 4.86-4.88 over 3 seeds with a T4's arithmetic (float16 +
    # GradScaler, emulated on an H200; bench/RESULTS.md); speed and memory on a T4 not measured.
    "t4": TrainConfig(n_layer=6, n_head=6, n_embd=384, block_size=256, vocab_multiple=64, dropout=0.2,
                      batch_size=32, micro_batch_size=16, max_steps=300, warmup_steps=30,
                      max_lr=1e-3, min_lr=1e-4, eval_interval=25, eval_iters=20, checkpoint_interval=50),
    # An A100-class GPU (40 GB or more, bfloat16): 8 layers x 512 (about 51M parameters, 26M
    # of them the token embedding), context 512, 32 x 512 tokens a step, 500 steps: about 27
    # passes, with dropout 0.2. On an H200 (bfloat16, compiled, notebook 10): 880,000 tokens/s,
    # final validation loss 4.74-4.78 over 3 seeds (150 steps ended at 5.22-5.24; 600 steps
    # start to overfit); not yet measured on an A100.
    "a100": TrainConfig(n_layer=8, n_head=8, n_embd=512, block_size=512, vocab_multiple=64, dropout=0.2,
                        batch_size=32, micro_batch_size=32, max_steps=500, warmup_steps=50,
                        max_lr=6e-4, min_lr=6e-5, eval_interval=25, eval_iters=20, checkpoint_interval=100),
}


def padded_vocab_size(config: TrainConfig) -> int:
    """The vocabulary rounded up to a multiple of ``vocab_multiple`` (the model's embedding rows)."""
    m = config.vocab_multiple
    return -(-config.vocab_size // m) * m


def gpt_config(config: TrainConfig):
    """The model's ``GPTConfig`` (with the padded vocabulary)."""
    from ..reference.config import GPTConfig

    return GPTConfig(vocab_size=padded_vocab_size(config), block_size=config.block_size,
                     n_layer=config.n_layer, n_head=config.n_head, n_embd=config.n_embd,
                     dropout=config.dropout)


def replace(config: TrainConfig, **changes) -> TrainConfig:
    """``config`` with some fields changed (None values are ignored)."""
    return dataclasses.replace(config, **{k: v for k, v in changes.items() if v is not None})


def field_names() -> list[str]:
    return [f.name for f in dataclasses.fields(TrainConfig)]


# --------------------------------------------------------------------------------------------
# Checks


def flag(name: str) -> str:
    """The command-line flag of TrainConfig field ``name``."""
    return {"max_lr": "--lr", "data": "--data"}.get(name, "--" + name.replace("_", "-"))


def check_config(config: TrainConfig, world_size: int = 1) -> None:
    """Raise RunError naming the flags when settings contradict each other."""
    if config.n_embd % config.n_head:
        raise RunError(f"--n-embd {config.n_embd} is not a multiple of --n-head {config.n_head}")
    if config.vocab_size < 256:
        raise RunError(f"--vocab-size {config.vocab_size}: the text needs at least GPT-2's 256 byte "
                       "tokens (a smaller vocabulary than 50257 reads the text byte by byte)")
    if config.min_lr > config.max_lr:
        raise RunError(f"--min-lr {config.min_lr:g} is above the peak learning rate --lr {config.max_lr:g}")
    if config.warmup_steps > config.max_steps:
        raise RunError(f"--warmup-steps {config.warmup_steps} is more than --max-steps {config.max_steps}")
    if config.dtype not in DTYPES:
        raise RunError(f"--dtype must be one of {', '.join(DTYPES)}, got {config.dtype!r}")
    procs = f" x {world_size} processes" if world_size > 1 else ""
    if config.micro_batch_size:
        if config.batch_size % (config.micro_batch_size * world_size):
            raise RunError(f"--batch-size {config.batch_size} is not a multiple of --micro-batch-size "
                           f"{config.micro_batch_size}{procs}: the global batch is micro-batch x "
                           "accumulation steps x processes")
    elif config.batch_size % world_size:
        raise RunError(f"--batch-size {config.batch_size} cannot be split evenly over {world_size} processes")
    for name in ("dropout", "beta1", "beta2"):
        if not 0 <= getattr(config, name) < 1:
            raise RunError(f"{flag(name)} must be at least 0 and below 1, got {getattr(config, name):g}")
    if config.data and not Path(config.data).is_file():
        raise RunError(f"--data {config.data}: no such file")


def micro_batch_size(config: TrainConfig, world_size: int) -> int:
    return config.micro_batch_size or config.batch_size // world_size
