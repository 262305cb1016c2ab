"""Notebook 07: the whole GPT-2 and loading Hugging Face's GPT-2 weights into it."""

import math

import torch
import torch.nn.functional as F
from torch import nn

from .block import Block
from .layernorm_mlp import LayerNorm


# ---- generated from solutions/07_gpt2_model.ipynb by `python -m grader build` ----
# cells: GPT, load_hf_weights
# Edit those answer cells in the notebook, not the code below.


class GPT(nn.Module):
    """GPT-2: token and position embeddings, ``n_layer`` pre-LN blocks, a final LayerNorm and an
    output layer that shares its weight with the token embedding. Parameter names are GPT-2's
    (``transformer.wte``, ``transformer.h.0.attn.c_attn``, ..., ``lm_head``)."""

    def __init__(self, config):
        super().__init__()
        ### BEGIN SOLUTION
        self.config = config
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(config.vocab_size, config.n_embd),
            wpe=nn.Embedding(config.block_size, config.n_embd),
            drop=nn.Dropout(config.dropout),
            h=nn.ModuleList([Block(config.n_embd, config.n_head, config.dropout)
                             for _ in range(config.n_layer)]),
            ln_f=LayerNorm(config.n_embd),
        ))
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.lm_head.weight = self.transformer.wte.weight  # tied: one matrix, two uses
        # GPT-2's initialisation: every weight matrix and embedding ~ normal(0, 0.02), the
        # projections that write into the residual stream scaled by 1/sqrt(2 * n_layer),
        # biases 0 (LayerNorms keep weight 1, bias 0).
        with torch.no_grad():
            for name, p in self.named_parameters():
                if p.dim() == 2:
                    residual = name.endswith("c_proj.weight")
                    p.normal_(0.0, 0.02 / math.sqrt(2 * config.n_layer) if residual else 0.02)
                elif ".ln_" not in name:
                    p.zero_()
        ### END SOLUTION

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        """idx (B, T) token ids -> (logits (B, T, vocab_size), loss or None).

        With ``targets`` (B, T), loss is the mean cross-entropy of predicting targets[b, t]
        from logits[b, t]."""
        ### BEGIN SOLUTION
        B, T = idx.shape
        if T > self.config.block_size:
            raise ValueError(f"cannot read {T} tokens: block_size is {self.config.block_size}")
        positions = torch.arange(T, device=idx.device)
        x = self.transformer.wte(idx) + self.transformer.wpe(positions)
        x = self.transformer.drop(x)
        for block in self.transformer.h:
            x = block(x)
        logits = self.lm_head(self.transformer.ln_f(x))
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.reshape(B * T, -1), targets.reshape(B * T))
        return logits, loss
        ### END SOLUTION


def load_hf_weights(model: nn.Module, state_dict: dict) -> nn.Module:
    """Copy a Hugging Face GPT2LMHeadModel state dict into ``model`` (a GPT) and return it.

    Hugging Face's GPT-2 stores its four projections as Conv1D, weight (in, out): those are
    transposed into nn.Linear's (out, in). Buffers in the state dict (``attn.bias``, the causal
    mask) and ``lm_head.weight`` (tied to ``wte``) are not needed. A missing tensor or a shape
    that does not fit raises an error naming the tensor."""
    ### BEGIN SOLUTION
    conv1d = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
    with torch.no_grad():
        for name, param in model.named_parameters():  # lm_head.weight is wte's: listed once
            if name not in state_dict:
                raise KeyError(f"the state dict has no {name}")
            value = state_dict[name]
            if name.endswith(conv1d):
                value = value.t()
            if value.shape != param.shape:
                raise ValueError(f"{name}: the state dict's tensor has shape {tuple(value.shape)}"
                                 f"{' (transposed)' if name.endswith(conv1d) else ''}, the model's "
                                 f"{tuple(param.shape)}: was the model built with the same config?")
            param.copy_(value)
    return model
    ### END SOLUTION
