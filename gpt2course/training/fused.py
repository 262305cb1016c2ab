"""PyTorch's fused kernels in place of the course's hand-written pieces, for training runs.

The notebooks build attention, LayerNorm and GELU from scratch; that code is clear but runs as
many small operations. ``fuse(model)`` switches a model's modules, in place, to versions that
compute the same function with one fused call each:

- ``CausalSelfAttention`` -> ``F.scaled_dot_product_attention(..., is_causal=True)`` (no T x T
  weights kept; flash / memory-efficient kernels where available),
- ``LayerNorm`` -> ``F.layer_norm``,
- ``MLP``'s GELU -> ``F.gelu(approximate="tanh")``,
- ``GPT`` -> ``FusedGPT`` (unless ``fuse(model, head=False)``): with targets, the LM head and the
  cross-entropy are one autograd node (``_HeadLoss``) that keeps one (N, V) buffer instead of
  the four that ``F.linear`` + ``F.cross_entropy`` leave to autograd, and the tied token
  embedding adds its gradient into the head's instead of building a (V, C) one of its own. At
  the course's CPU sizes the vocabulary head is most of a training step, so this is where the
  time goes (bench/train_speed.py). Without targets, under autocast or torch.compile, in
  bfloat16/float16, or with ignored (-100) targets it computes exactly what GPT computes.

Parameters, their names and the state dict stay exactly as they are (the modules' classes change,
nothing else), so checkpoints and ``load_hf_weights`` work either way; logits, loss and gradients
agree to float32 rounding (tests/training/test_fused.py). One thing the fused head does not do: a second
backward through the same graph (``retain_graph=True``) raises, as its buffer is used up by the
first. ``unfuse(model)`` switches back. The command line and the GPU notebook train fused models;
the benchmarks report both. ``fused_adamw(optimizer)`` does the same for the optimiser step.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

from ..reference.gpt import GPT
from ..reference.layernorm_mlp import MLP, LayerNorm
from ..reference.multi_head import CausalSelfAttention, merge_heads, split_heads


class FusedCausalSelfAttention(CausalSelfAttention):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.c_attn(x).split(x.size(-1), dim=-1)
        q, k, v = (split_heads(t, self.n_head) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.c_proj(merge_heads(y))


class FusedLayerNorm(LayerNorm):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, self.weight.shape, self.weight, self.bias, self.eps)


class FusedMLP(MLP):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_proj(F.gelu(self.c_fc(x), approximate="tanh"))


# --- the LM head and the loss in one autograd node ------------------------------------------

_ROWS_ELEMENTS = 1 << 22  # log-softmax over this many logits at a time (16 MB in float32: in L3).
# Smaller blocks stay in L2 and were ~2% faster on one thread, but each block is a few parallel
# regions, and with two threads on a busy machine many small regions cost far more (measured).
_spare: dict = {}         # one CPU probability buffer kept for the next step (see _HeadLoss)


def _take_buffer(shape: tuple, like: torch.Tensor) -> torch.Tensor:
    if like.device.type == "cpu":
        buf = _spare.pop((shape, like.dtype), None)
        if buf is not None:
            return buf
    return like.new_empty(shape)


def _return_buffer(buf: torch.Tensor) -> None:
    if buf.device.type == "cpu":  # GPUs have a caching allocator already
        _spare.clear()
        _spare[(tuple(buf.shape), buf.dtype)] = buf


def _log_softmax_rows(logits: torch.Tensor, targets: torch.Tensor, probs: torch.Tensor | None = None,
                      copy_from: torch.Tensor | None = None) -> torch.Tensor:
    """-log softmax(logits)[i, targets[i]] for every row i, a cache-sized block of rows at a time.
    With ``probs`` (N, V), the softmax probabilities are left in it; with ``copy_from``, each
    block of ``logits`` is first copied from there (the block is then in cache for the rest)."""
    N, V = logits.shape
    rows = max(1, _ROWS_ELEMENTS // V)
    scratch = probs if probs is not None else logits.new_empty((min(rows, N), V))
    picked = logits.new_empty((N, 1))
    for s in range(0, N, rows):
        e = min(s + rows, N)
        if copy_from is not None:
            logits[s:e].copy_(copy_from[s:e])
        logp = scratch[s:e] if probs is not None else scratch[: e - s]
        torch.log_softmax(logits[s:e], 1, out=logp)
        torch.gather(logp, 1, targets[s:e, None], out=picked[s:e])
        if probs is not None:
            logp.exp_()  # log-probabilities -> probabilities, in place, while in cache
    return picked.view(N).neg_()


class _HeadLoss(torch.autograd.Function):
    """logits = h @ W^T and their mean cross-entropy against targets, in one autograd node.

    F.linear + F.cross_entropy under autograd allocate four (N, V) tensors per step (logits,
    their log-softmax, the one-hot-shaped gradient of the mean, the log-softmax's gradient),
    each written and read again. Here the forward writes the logits and, a cache-sized block of
    rows at a time, the softmax probabilities into one buffer; the backward turns the buffer into
    d loss / d logits = (softmax - one_hot) / N in place (N writes: the 1/N is applied to the
    two small results) and does the two matrix products from it. The same FLOPs, one (N, V)
    buffer besides the logits. On the CPU, two more things pay: the buffer is kept from step to
    step (a fresh 200 MB tensor costs page faults every time) and its rows are padded to a
    multiple of 64 floats, so that the big logits product writes aligned rows; the returned
    logits are copied out of it block by block (contiguous, (..., V) as usual)."""

    @staticmethod
    def forward(ctx, h, weight, targets, slot):
        ctx.set_materialize_grads(False)
        ctx.slot = slot
        N, V = h.size(0), weight.size(0)
        padded = -(-V // 64) * 64 if h.device.type == "cpu" else V
        probs = _take_buffer((N, padded), h)[:, :V]
        if padded == V:
            logits = torch.mm(h, weight.t())
            loss = _log_softmax_rows(logits, targets, probs).mean()
        else:
            torch.mm(h, weight.t(), out=probs)
            logits = h.new_empty((N, V))
            loss = _log_softmax_rows(logits, targets, probs, copy_from=probs).mean()
        ctx.save_for_backward(h, weight, targets)
        ctx.probs = probs
        return logits, loss

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_logits, grad_loss):
        h, weight, targets = ctx.saved_tensors
        probs, ctx.probs = ctx.probs, None
        if probs is None:
            raise RuntimeError("backward through the fused LM head and loss ran a second time "
                               "(retain_graph): its buffer is used up by the first; build the "
                               "model with fuse(model, head=False) for that")
        N = h.size(0)
        scale = None
        if grad_loss is None:
            probs.zero_()
        else:
            probs[torch.arange(N, device=probs.device), targets] -= 1.0  # softmax - one_hot
            scale = grad_loss / N
        if grad_logits is not None:  # the caller's own use of the logits, if any
            if scale is not None:
                probs.mul_(scale)
            probs.add_(grad_logits)
            scale = None
        grad_h = grad_w = None
        if ctx.needs_input_grad[0]:
            grad_h = torch.mm(probs, weight)
            if scale is not None:
                grad_h.mul_(scale)
        if ctx.needs_input_grad[1]:
            grad_w = torch.mm(probs.t(), h)
            if scale is not None:
                grad_w.mul_(scale)
            if ctx.slot is not None:  # the tied token embedding adds its rows to it and hands it on
                ctx.slot.append(grad_w)
                grad_w = None
        _return_buffer(probs._base if probs._base is not None else probs)
        return grad_h, grad_w, None, None


class _TiedTokens(torch.autograd.Function):
    """The token embedding ``weight[idx]`` of a model whose LM head shares ``weight``. Its
    backward adds its rows into the head's weight gradient (left in ``slot`` by _HeadLoss, which
    always runs first) instead of building a zero (V, C) gradient of its own for autograd to add
    to the head's: one (V, C) tensor and one pass over it less per step."""

    @staticmethod
    def forward(ctx, idx, weight, slot):
        ctx.save_for_backward(idx)
        ctx.slot, ctx.shape = slot, weight.shape
        return F.embedding(idx, weight)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        (idx,) = ctx.saved_tensors
        grad_w = ctx.slot.pop() if ctx.slot else grad.new_zeros(ctx.shape)
        grad_w.index_add_(0, idx.reshape(-1), grad.reshape(-1, grad.size(-1)))
        return None, grad_w, None


def _fusable(weight: torch.Tensor, targets: torch.Tensor | None) -> bool:
    return (targets is not None and weight.dtype in (torch.float32, torch.float64)
            and not torch.is_autocast_enabled(weight.device.type)
            and not torch.compiler.is_compiling() and targets.dtype == torch.long
            and targets.numel() > 0 and not bool((targets < 0).any()))


def head_and_loss(x: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor | None, *,
                  _slot: list | None = None):
    """(x @ weight^T, mean cross-entropy against ``targets`` or None) for x (..., C), weight
    (V, C), targets (...): what ``lm_head(x)`` and ``F.cross_entropy`` give, fused where that
    is safe (float32/float64, no autocast, not being compiled, no negative (ignored) targets)."""
    if targets is None:
        return F.linear(x, weight), None
    if not (x.dtype == weight.dtype and _fusable(weight, targets)):
        logits = F.linear(x, weight)
        return logits, F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1))
    h = x.reshape(-1, x.size(-1))
    t = targets.reshape(-1)
    if not (torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad)):
        logits = torch.mm(h, weight.t())
        loss = _log_softmax_rows(logits, t).mean()
    else:
        logits, loss = _HeadLoss.apply(h, weight, t, _slot)
    return logits.view(*x.shape[:-1], weight.size(0)), loss


class FusedGPT(GPT):
    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        if self.lm_head.bias is not None:
            return super().forward(idx, targets)
        B, T = idx.shape
        if T > self.config.block_size:
            raise ValueError(f"cannot read {T} tokens: block_size is {self.config.block_size}")
        wte, weight = self.transformer.wte, self.lm_head.weight
        slot = None
        if (weight is wte.weight and weight.requires_grad and torch.is_grad_enabled()
                and type(wte) is nn.Embedding and wte.padding_idx is None and wte.max_norm is None
                and not wte.scale_grad_by_freq and not wte.sparse and _fusable(weight, targets)):
            slot = []  # the head's weight gradient goes to the token embedding's backward
            tokens = _TiedTokens.apply(idx, weight, slot)
        else:
            tokens = wte(idx)
        x = tokens + self.transformer.wpe(torch.arange(T, device=idx.device))
        x = self.transformer.drop(x)
        for block in self.transformer.h:
            x = block(x)
        return head_and_loss(self.transformer.ln_f(x), weight, targets, _slot=slot)


_FUSED = {CausalSelfAttention: FusedCausalSelfAttention, LayerNorm: FusedLayerNorm, MLP: FusedMLP,
          GPT: FusedGPT}
_PLAIN = {fused: plain for plain, fused in _FUSED.items()}


def fuse(model: nn.Module, *, head: bool = True) -> nn.Module:
    """Switch every course attention, LayerNorm and MLP inside ``model`` to its fused version
    and, with ``head`` (the default), the course's GPT to FusedGPT (LM head and loss in one
    node), in place; returns ``model``. Modules of other classes (a learner's own) are left
    alone."""
    for module in model.modules():
        fused = _FUSED.get(type(module))
        if fused is FusedGPT and not head:
            continue
        if fused is not None:
            module.__class__ = fused
    return model


def fused_adamw(optimizer: torch.optim.AdamW) -> torch.optim.AdamW:
    """An AdamW with ``optimizer``'s parameter groups (each with its weight decay) and settings
    (lr, betas, eps) whose step is one fused kernel (``fused=True``; CUDA, and CPUs where this
    PyTorch has it). Made before the first step: the state is not copied."""
    groups = [{"params": g["params"], "weight_decay": g["weight_decay"]} for g in optimizer.param_groups]
    d = optimizer.defaults
    return torch.optim.AdamW(groups, lr=d["lr"], betas=d["betas"], eps=d["eps"], fused=True)


def unfuse(model: nn.Module) -> nn.Module:
    """Undo ``fuse``: back to the course's own code."""
    for module in model.modules():
        plain = _PLAIN.get(type(module))
        if plain is not None:
            module.__class__ = plain
    return model


def is_fused(model: nn.Module) -> bool:
    return any(type(m) in _PLAIN for m in model.modules())
