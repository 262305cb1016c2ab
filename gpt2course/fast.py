"""PyTorch's fused kernels in place of the course's hand-written pieces, for training runs.

The notebooks build attention, LayerNorm and GELU from scratch; that code is clear but runs as
many small operations. ``fuse(model)`` switches a model's modules, in place, to versions that
compute the same function with one fused call each:

- ``CausalSelfAttention`` -> ``F.scaled_dot_product_attention(..., is_causal=True)`` (no T x T
  weights kept; flash / memory-efficient kernels where available),
- ``LayerNorm`` -> ``F.layer_norm``,
- ``MLP``'s GELU -> ``F.gelu(approximate="tanh")``.

Parameters, their names and the state dict stay exactly as they are (the modules' classes change,
nothing else), so checkpoints and ``load_hf_weights`` work either way; outputs agree to float32
rounding (tests/test_fast.py). ``unfuse(model)`` switches back. The command line and the GPU
notebook train fused models; the benchmarks report both.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .reference.layernorm_mlp import MLP, LayerNorm
from .reference.multi_head import CausalSelfAttention, merge_heads, split_heads


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


_FUSED = {CausalSelfAttention: FusedCausalSelfAttention, LayerNorm: FusedLayerNorm, MLP: FusedMLP}
_PLAIN = {fused: plain for plain, fused in _FUSED.items()}


def fuse(model: nn.Module) -> nn.Module:
    """Switch every course attention, LayerNorm and MLP inside ``model`` to its fused version
    (in place); returns ``model``. Modules of other classes (a learner's own) are left alone."""
    for module in model.modules():
        fused = _FUSED.get(type(module))
        if fused is not None:
            module.__class__ = fused
    return model


def unfuse(model: nn.Module) -> nn.Module:
    """Undo ``fuse``: back to the course's own code."""
    for module in model.modules():
        plain = _PLAIN.get(type(module))
        if plain is not None:
            module.__class__ = plain
    return model


def is_fused(model: nn.Module) -> bool:
    return any(type(m) in _PLAIN for m in model.modules())
