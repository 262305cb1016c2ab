"""Demo experiments for notebook 06 (the residual block): why GPT-2 adds residual connections and
puts layer norm *before* each sub-layer.

Two experiments, each a function that returns plain numbers plus a function that plots them:

1. Gradient flow through a deep stack at initialisation (:func:`gradient_norms`,
   :func:`gradient_flow_demo`, :func:`plot_gradient_norms`). Each block has two sub-layers,
   attention and MLP, written either ``x = x + f(ln(x))`` (residual) or ``x = f(ln(x))`` (no
   residual), with or without the layer norms. Without residuals and without layer norm, the
   gradient reaching the bottom block is about 1e-14 times that at the top in a 12-block stack
   and 1e-29 in a 24-block one; with residuals the ratio stays between 0.6 and 2. (Layer norm
   alone, without residuals, also keeps the gradient's *size* at initialisation, ratio 0.1 to 5
   over seeds: it rescales every sub-layer's input, so each sub-layer passes on a gradient of
   about the size it receives.)
2. Pre-LN versus post-LN training of a small character-level language model on Tiny Shakespeare
   (:func:`train_curves`, :func:`compare_ln_placement`, :func:`plot_training_curves`). Both
   styles start from the same weights and see the same batches; only the place of the layer norm
   differs. At the defaults (8 blocks, AdamW at lr 1e-2, no warmup) the pre-LN model trains
   and the post-LN model stalls at the loss of predicting character frequencies alone. At
   lr 2e-3, or with 2 blocks, the two train alike: the difference grows with depth and
   learning rate (Xiong et al. 2020, "On Layer Normalization in the Transformer Architecture").

Everything is seeded without touching the caller's global random state: data comes from an
explicit ``torch.Generator`` and model initialisation runs inside ``torch.random.fork_rng``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from functools import lru_cache
from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.nn import functional as F

from ..data import shakespeare_chars
from ..env import pick
from ..reference import MLP, Block, CausalSelfAttention, Embeddings, LayerNorm, get_batch

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def _seeded_init(seed: int, build):
    """``build()`` with the global torch RNG seeded to ``seed``, then restored as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


# --------------------------------------------------------------------------------------------
# 1. Gradient flow through a deep stack
# --------------------------------------------------------------------------------------------

class StackBlock(nn.Module):
    """A transformer block whose residual connections and layer norms can be switched off.

    ``residual=True, layer_norm=True`` is GPT-2's pre-LN block (same parameter names as
    ``reference.Block``); ``residual=False`` computes ``x = f(ln(x))`` for each sub-layer and
    ``layer_norm=False`` drops the layer norms (``ln(x)`` becomes ``x``).
    """

    def __init__(self, n_embd: int, n_head: int, residual: bool = True, layer_norm: bool = True):
        super().__init__()
        self.residual = residual
        self.ln_1 = LayerNorm(n_embd) if layer_norm else nn.Identity()
        self.attn = CausalSelfAttention(n_embd, n_head)
        self.ln_2 = LayerNorm(n_embd) if layer_norm else nn.Identity()
        self.mlp = MLP(n_embd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.residual:
            x = x + self.attn(self.ln_1(x))
            x = x + self.mlp(self.ln_2(x))
        else:
            x = self.attn(self.ln_1(x))
            x = self.mlp(self.ln_2(x))
        return x


def gradient_norms(n_layer: int = 16, n_embd: int = 64, n_head: int = 4, residual: bool = True,
                   layer_norm: bool = True, seed: int = 0, batch_size: int = 4,
                   block_size: int = 16, dtype: torch.dtype = torch.float64) -> list[float]:
    """The gradient norm of each block's parameters in a freshly initialised stack of ``n_layer``
    blocks (index 0 = the block nearest the input), after one backward pass.

    The input is random, (batch_size, block_size, n_embd). The loss at the top is what a language
    model has: a final layer norm (no parameters), a random linear head with ``n_embd`` classes and
    cross-entropy against random targets. The final layer norm gives every stack, however large or
    small its output, a top gradient of similar size, so the curves of different settings are
    comparable; only how the gradient changes on the way down differs.

    Without residuals and without layer norm every sub-layer shrinks its input (PyTorch's
    default initialisation), and the gradient shrinks by a similar factor in each of the
    ``2 * n_layer`` sub-layers on the way down: to about 1e-19 of the top at 16 blocks and
    1e-29 at 24. That is why the computation runs in float64 by default: in float32 the bottom
    norms underflow to exactly 0 from about 20 blocks on.
    """
    def build():
        blocks = nn.Sequential(*(StackBlock(n_embd, n_head, residual, layer_norm)
                                 for _ in range(n_layer)))
        return blocks, nn.Linear(n_embd, n_embd)

    blocks, head = _seeded_init(seed, build)
    blocks.to(dtype)
    head.to(dtype)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch_size, block_size, n_embd, generator=gen, dtype=dtype)
    targets = torch.randint(n_embd, (batch_size, block_size), generator=gen)

    out = F.layer_norm(blocks(x), (n_embd,))
    loss = F.cross_entropy(head(out).view(-1, n_embd), targets.view(-1))
    loss.backward()
    return [math.sqrt(sum(float(p.grad.pow(2).sum()) for p in block.parameters()))
            for block in blocks]


# label -> (residual, layer_norm). The vanishing gradient shows without both; layer norm alone
# keeps the size of the gradient at initialisation (see the module docstring).
GRADIENT_SETTINGS: dict[str, tuple[bool, bool]] = {
    "residual + layer norm (GPT-2)": (True, True),
    "residual, no layer norm": (True, False),
    "no residual, layer norm": (False, True),
    "no residual, no layer norm": (False, False),
}


def gradient_flow_demo(n_layer: int = 16, seed: int = 0,
                       settings: dict[str, tuple[bool, bool]] | None = None,
                       **kwargs) -> dict[str, list[float]]:
    """:func:`gradient_norms` for each setting (default: :data:`GRADIENT_SETTINGS`), by label.

    Extra keyword arguments go to :func:`gradient_norms`. Takes well under a second on a CPU.
    """
    settings = GRADIENT_SETTINGS if settings is None else settings
    return {label: gradient_norms(n_layer=n_layer, residual=residual, layer_norm=layer_norm,
                                  seed=seed, **kwargs)
            for label, (residual, layer_norm) in settings.items()}


def bottom_top_ratio(norms: list[float]) -> float:
    """Gradient norm of the bottom block divided by that of the top block."""
    return norms[0] / norms[-1]


def plot_gradient_norms(results: dict[str, list[float]]) -> Figure:
    """One line per setting: gradient norm (log scale) against block index. Returns the Figure.

    Norms that underflowed to 0 (possible in very deep stacks without residuals) are left out,
    since a log axis cannot show them.
    """
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for label, norms in results.items():
        shown = [n if n > 0 else float("nan") for n in norms]
        ax.plot(range(len(norms)), shown, marker="o", markersize=3, label=label)
    ax.set_yscale("log")
    ax.set_xlabel("block (0 = nearest the input)")
    ax.set_ylabel("gradient norm of the block's parameters")
    ax.set_title("Gradient flow at initialisation")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------------
# 2. Pre-LN versus post-LN on a character-level language model
# --------------------------------------------------------------------------------------------

class PostLNBlock(nn.Module):
    """The original Transformer's block (Vaswani et al. 2017): ``x = ln_1(x + attn(x))``, then
    ``x = ln_2(x + mlp(x))``. The layer norm sits on the residual stream itself."""

    def __init__(self, n_embd: int, n_head: int):
        super().__init__()
        # Same sub-modules in the same order as reference.Block, so the same seed gives the
        # same initial weights in both styles.
        self.ln_1 = LayerNorm(n_embd)
        self.attn = CausalSelfAttention(n_embd, n_head)
        self.ln_2 = LayerNorm(n_embd)
        self.mlp = MLP(n_embd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.ln_1(x + self.attn(x))
        x = self.ln_2(x + self.mlp(x))
        return x


STYLES = ("pre", "post")


class CharLM(nn.Module):
    """A small GPT over characters: embeddings, ``n_layer`` blocks, a final layer norm (pre-LN
    only: in post-LN the last block already ends in one) and a linear head."""

    def __init__(self, vocab_size: int, block_size: int, n_embd: int, n_head: int, n_layer: int,
                 style: str = "pre"):
        super().__init__()
        if style not in STYLES:
            raise ValueError(f"style must be one of {STYLES}, got {style!r}")
        self.style = style
        block = Block if style == "pre" else PostLNBlock
        self.embed = Embeddings(vocab_size, block_size, n_embd)
        self.blocks = nn.Sequential(*(block(n_embd, n_head) for _ in range(n_layer)))
        self.ln_f = LayerNorm(n_embd) if style == "pre" else nn.Identity()
        self.head = nn.Linear(n_embd, vocab_size)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """(B, T) character ids -> (B, T, vocab_size) logits."""
        return self.head(self.ln_f(self.blocks(self.embed(idx))))


def batch_stream(data: torch.Tensor, block_size: int, batch_size: int,
                 seed: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Endless random (x, y) batches from ``data``; the sequence depends only on ``seed``."""
    gen = torch.Generator().manual_seed(seed)
    while True:
        yield get_batch(data, block_size, batch_size, generator=gen)


def make_char_lm(style: str, vocab_size: int, block_size: int, n_embd: int, n_head: int,
                 n_layer: int, seed: int) -> CharLM:
    """A :class:`CharLM` initialised from ``seed``. For the same seed the pre-LN and post-LN
    models have identical weights wherever they share a parameter (all but ``ln_f``)."""
    return _seeded_init(seed, lambda: CharLM(vocab_size, block_size, n_embd, n_head, n_layer,
                                             style))


@torch.no_grad()
def _eval_loss(model: nn.Module, data: torch.Tensor, block_size: int, batch_size: int,
               n_batches: int, seed: int) -> float:
    """Mean loss over ``n_batches`` fixed batches of ``data`` (the same ones at every call)."""
    model.eval()
    stream = batch_stream(data, block_size, batch_size, seed)
    losses = []
    for _ in range(n_batches):
        x, y = next(stream)
        logits = model(x)
        losses.append(float(F.cross_entropy(logits.view(-1, logits.size(-1)), y.view(-1))))
    model.train()
    return sum(losses) / len(losses)


def train_curves(style: str = "pre", steps: int = 400, lr: float = 1e-2, n_layer: int = 8,
                 n_embd: int = 64, n_head: int = 4, block_size: int = 32, batch_size: int = 32,
                 warmup_steps: int = 0, eval_every: int = 100, eval_batches: int = 4,
                 seed: int = 0, progress: bool = True) -> dict:
    """Train a :class:`CharLM` of block style ``style`` ("pre" or "post") with AdamW at a constant
    learning rate ``lr`` (after ``warmup_steps`` of linear warmup; none by default) and return
    its learning curves.

    The model's initial weights and the sequence of training batches depend only on ``seed``,
    so the two styles run with the same seed start from the same weights and see the same data.

    Returns a dict: ``style``, ``train_loss`` (one value per step), ``val_steps`` and ``val_loss``
    (every ``eval_every`` steps and after the last one, on ``eval_batches`` fixed validation
    batches; no evaluation when ``eval_every`` is 0), ``vocab_size``, ``seconds`` (wall time)
    and ``config`` (the arguments).
    """
    from tqdm.auto import tqdm

    config = dict(style=style, steps=steps, lr=lr, n_layer=n_layer, n_embd=n_embd, n_head=n_head,
                  block_size=block_size, batch_size=batch_size, warmup_steps=warmup_steps,
                  eval_every=eval_every, eval_batches=eval_batches, seed=seed)
    train, val, vocab = shakespeare_chars()
    model = make_char_lm(style, len(vocab), block_size, n_embd, n_head, n_layer, seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min(1.0, (step + 1) / warmup_steps) if warmup_steps else 1.0)
    batches = batch_stream(train, block_size, batch_size, seed)

    def evaluate() -> float:
        return _eval_loss(model, val, block_size, batch_size, eval_batches, seed + 1)

    start = time.perf_counter()
    train_loss: list[float] = []
    val_steps: list[int] = []
    val_loss: list[float] = []
    bar = tqdm(range(steps), desc=f"{style}-LN", disable=not progress)
    for step in bar:
        if eval_every and step % eval_every == 0:
            val_steps.append(step)
            val_loss.append(evaluate())
        x, y = next(batches)
        logits = model(x)
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), y.view(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        train_loss.append(loss.item())
        if step % 10 == 0:
            bar.set_postfix(loss=f"{train_loss[-1]:.3f}")
    if eval_every:
        val_steps.append(steps)
        val_loss.append(evaluate())
    bar.close()
    return dict(style=style, train_loss=train_loss, val_steps=val_steps, val_loss=val_loss,
                vocab_size=len(vocab), seconds=time.perf_counter() - start, config=config)


def compare_ln_placement(steps: int | None = None, progress: bool = True,
                         **kwargs) -> dict[str, dict]:
    """:func:`train_curves` for both styles with the same settings and seed:
    {"pre": result, "post": result}.

    ``steps`` defaults to 400 (30 in fast mode, where the model is also shrunk to 2 blocks of
    width 32 unless sizes are given); other keyword arguments go to :func:`train_curves`.
    At the defaults (8 blocks, width 64, AdamW at lr 1e-2, no warmup) the pre-LN model trains
    and the post-LN model gets stuck near :func:`unigram_loss`: it learns the character
    frequencies and nothing more. (Measured: seeds 0-2 all alike. With 2 or 4 blocks, or at
    lr 3e-3, post-LN trains too; a 100-step warmup to lr 1e-2 lets it learn, but less well
    than pre-LN.) About 10 seconds per 100 steps and style on two CPU cores.
    """
    if steps is None:
        steps = pick(400, 30)
    fast_sizes = pick({}, dict(n_layer=2, n_embd=32, batch_size=8, eval_every=10,
                               eval_batches=2))
    settings = {**fast_sizes, **kwargs}
    return {style: train_curves(style, steps=steps, progress=progress, **settings)
            for style in STYLES}


@lru_cache(maxsize=None)
def unigram_loss() -> float:
    """The loss (nats per character) of predicting each character from the training text's
    character frequencies alone, ignoring context: the entropy of those frequencies (3.31)."""
    train, _, vocab = shakespeare_chars()
    p = torch.bincount(train, minlength=len(vocab)).double() / len(train)
    p = p[p > 0]
    return float(-(p * p.log()).sum())


def smooth(values: list[float], window: int) -> list[float]:
    """Trailing moving average over up to ``window`` values (shorter at the start)."""
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


_STYLE_LABELS = {"pre": "pre-LN (GPT-2): x + f(ln(x))",
                 "post": "post-LN (original Transformer): ln(x + f(x))"}


def plot_training_curves(results: dict[str, dict], window: int | None = None,
                         show_unigram: bool = True) -> Figure:
    """Smoothed training loss against step for each style (moving average over ``window``
    steps; default 1/20 of the run), with dashed lines at ln(vocab_size), the loss of a uniform
    guess, and (``show_unigram``) at :func:`unigram_loss`. Returns the Figure."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for style, result in results.items():
        losses = result["train_loss"]
        w = window or max(1, len(losses) // 20)
        # train_loss[i] is the loss of the model after i updates, as val_loss at val_steps.
        ax.plot(range(len(losses)), smooth(losses, w),
                label=_STYLE_LABELS.get(style, style))
    vocab_size = next(iter(results.values()))["vocab_size"]
    ax.axhline(math.log(vocab_size), color="grey", linestyle="--",
               label=f"uniform guess: ln {vocab_size} = {math.log(vocab_size):.2f}")
    if show_unigram:
        ax.axhline(unigram_loss(), color="grey", linestyle=":",
                   label=f"character frequencies only: {unigram_loss():.2f}")
    warmup = {r["config"].get("warmup_steps", 0) for r in results.values()}
    lrs = {r["config"].get("lr") for r in results.values()}
    detail = (f"lr {lrs.pop():g}, " if len(lrs) == 1 else "") + \
        ("no warmup" if warmup == {0} else "with warmup")
    ax.set_xlabel("training step")
    ax.set_ylabel("training loss (smoothed)")
    ax.set_title(f"Layer norm placement: pre-LN vs post-LN ({detail})")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    return fig
