"""Notebook 06's exercise, the pre-LN ``Block(n_embd, n_head)``: learner mistakes and valid
alternatives.

Each source is a complete answer cell. ``tests/test_catalogue_checks.py`` runs it in a namespace
that already holds ``torch``, ``nn``, ``F``, ``math`` and the finished ``LayerNorm``,
``CausalSelfAttention`` and ``MLP`` (as the notebook does), so a cell may use them without
defining them.

The check loads GPT-2's parameter names (``ln_1.weight``, ``attn.c_attn.weight``,
``mlp.c_fc.weight``, ...), so the sub-modules' attribute names are part of the answer.
"""

from catalogue import tidy as _tidy

NOTEBOOK = "06_residual_block.ipynb"

WRONG = {
    "Block": {
        # Post-LN, as in the original Transformer: normalise after adding the residual.
        "post_ln": """
            from torch import nn

            class Block(nn.Module):
                def __init__(self, n_embd, n_head):
                    super().__init__()
                    self.ln_1 = LayerNorm(n_embd)
                    self.attn = CausalSelfAttention(n_embd, n_head)
                    self.ln_2 = LayerNorm(n_embd)
                    self.mlp = MLP(n_embd)

                def forward(self, x):
                    x = self.ln_1(x + self.attn(x))
                    x = self.ln_2(x + self.mlp(x))
                    return x
            """,
        # No residual connections: the sub-layers are simply chained.
        "no_residuals": """
            from torch import nn

            class Block(nn.Module):
                def __init__(self, n_embd, n_head):
                    super().__init__()
                    self.ln_1 = LayerNorm(n_embd)
                    self.attn = CausalSelfAttention(n_embd, n_head)
                    self.ln_2 = LayerNorm(n_embd)
                    self.mlp = MLP(n_embd)

                def forward(self, x):
                    x = self.attn(self.ln_1(x))
                    x = self.mlp(self.ln_2(x))
                    return x
            """,
        # The MLP's output replaces the stream instead of being added to it.
        "missing_mlp_residual": """
            from torch import nn

            class Block(nn.Module):
                def __init__(self, n_embd, n_head):
                    super().__init__()
                    self.ln_1 = LayerNorm(n_embd)
                    self.attn = CausalSelfAttention(n_embd, n_head)
                    self.ln_2 = LayerNorm(n_embd)
                    self.mlp = MLP(n_embd)

                def forward(self, x):
                    x = x + self.attn(self.ln_1(x))
                    x = self.mlp(self.ln_2(x))
                    return x
            """,
        # The attention's output replaces the stream instead of being added to it.
        "missing_attn_residual": """
            from torch import nn

            class Block(nn.Module):
                def __init__(self, n_embd, n_head):
                    super().__init__()
                    self.ln_1 = LayerNorm(n_embd)
                    self.attn = CausalSelfAttention(n_embd, n_head)
                    self.ln_2 = LayerNorm(n_embd)
                    self.mlp = MLP(n_embd)

                def forward(self, x):
                    x = self.attn(self.ln_1(x))
                    x = x + self.mlp(self.ln_2(x))
                    return x
            """,
        # x = ln_1(x) first: the residual stream carries the normalised x, not x.
        "residual_of_normalised": """
            from torch import nn

            class Block(nn.Module):
                def __init__(self, n_embd, n_head):
                    super().__init__()
                    self.ln_1 = LayerNorm(n_embd)
                    self.attn = CausalSelfAttention(n_embd, n_head)
                    self.ln_2 = LayerNorm(n_embd)
                    self.mlp = MLP(n_embd)

                def forward(self, x):
                    x = self.ln_1(x)
                    x = x + self.attn(x)
                    x = self.ln_2(x)
                    x = x + self.mlp(x)
                    return x
            """,
        # Both LayerNorms defined, but ln_1 used before the MLP too (a copy-paste slip).
        "ln_1_used_twice": """
            from torch import nn

            class Block(nn.Module):
                def __init__(self, n_embd, n_head):
                    super().__init__()
                    self.ln_1 = LayerNorm(n_embd)
                    self.attn = CausalSelfAttention(n_embd, n_head)
                    self.ln_2 = LayerNorm(n_embd)
                    self.mlp = MLP(n_embd)

                def forward(self, x):
                    x = x + self.attn(self.ln_1(x))
                    x = x + self.mlp(self.ln_1(x))
                    return x
            """,
        # One LayerNorm module shared by both sub-layers: GPT-2 has ln_1 and ln_2, each with its
        # own weight and bias.
        "single_shared_layernorm": """
            from torch import nn

            class Block(nn.Module):
                def __init__(self, n_embd, n_head):
                    super().__init__()
                    self.ln = LayerNorm(n_embd)
                    self.attn = CausalSelfAttention(n_embd, n_head)
                    self.mlp = MLP(n_embd)

                def forward(self, x):
                    x = x + self.attn(self.ln(x))
                    x = x + self.mlp(self.ln(x))
                    return x
            """,
        # The MLP before the attention.
        "mlp_before_attention": """
            from torch import nn

            class Block(nn.Module):
                def __init__(self, n_embd, n_head):
                    super().__init__()
                    self.ln_1 = LayerNorm(n_embd)
                    self.attn = CausalSelfAttention(n_embd, n_head)
                    self.ln_2 = LayerNorm(n_embd)
                    self.mlp = MLP(n_embd)

                def forward(self, x):
                    x = x + self.mlp(self.ln_2(x))
                    x = x + self.attn(self.ln_1(x))
                    return x
            """,
        # GPT-J's parallel block: both sub-layers read the same input.
        "parallel_attn_mlp": """
            from torch import nn

            class Block(nn.Module):
                def __init__(self, n_embd, n_head):
                    super().__init__()
                    self.ln_1 = LayerNorm(n_embd)
                    self.attn = CausalSelfAttention(n_embd, n_head)
                    self.ln_2 = LayerNorm(n_embd)
                    self.mlp = MLP(n_embd)

                def forward(self, x):
                    return x + self.attn(self.ln_1(x)) + self.mlp(self.ln_2(x))
            """,
        # Separate names, and the MLP normalises the block's input x instead of the new stream h.
        "mlp_reads_block_input": """
            from torch import nn

            class Block(nn.Module):
                def __init__(self, n_embd, n_head):
                    super().__init__()
                    self.ln_1 = LayerNorm(n_embd)
                    self.attn = CausalSelfAttention(n_embd, n_head)
                    self.ln_2 = LayerNorm(n_embd)
                    self.mlp = MLP(n_embd)

                def forward(self, x):
                    h = x + self.attn(self.ln_1(x))
                    out = h + self.mlp(self.ln_2(x))
                    return out
            """,
        # Separate names, and the second residual adds to x instead of h: the attention's
        # contribution is dropped from the stream.
        "second_residual_from_input": """
            from torch import nn

            class Block(nn.Module):
                def __init__(self, n_embd, n_head):
                    super().__init__()
                    self.ln_1 = LayerNorm(n_embd)
                    self.attn = CausalSelfAttention(n_embd, n_head)
                    self.ln_2 = LayerNorm(n_embd)
                    self.mlp = MLP(n_embd)

                def forward(self, x):
                    h = x + self.attn(self.ln_1(x))
                    out = x + self.mlp(self.ln_2(h))
                    return out
            """,
        # The LayerNorms are created but never called.
        "layernorms_unused": """
            from torch import nn

            class Block(nn.Module):
                def __init__(self, n_embd, n_head):
                    super().__init__()
                    self.ln_1 = LayerNorm(n_embd)
                    self.attn = CausalSelfAttention(n_embd, n_head)
                    self.ln_2 = LayerNorm(n_embd)
                    self.mlp = MLP(n_embd)

                def forward(self, x):
                    x = x + self.attn(x)
                    x = x + self.mlp(x)
                    return x
            """,
        # ln_2 forgotten: the MLP reads the un-normalised stream.
        "ln_2_unused": """
            from torch import nn

            class Block(nn.Module):
                def __init__(self, n_embd, n_head):
                    super().__init__()
                    self.ln_1 = LayerNorm(n_embd)
                    self.attn = CausalSelfAttention(n_embd, n_head)
                    self.ln_2 = LayerNorm(n_embd)
                    self.mlp = MLP(n_embd)

                def forward(self, x):
                    x = x + self.attn(self.ln_1(x))
                    x = x + self.mlp(x)
                    return x
            """,
        # Normalises each sub-layer's output instead of its input.
        "normalises_sublayer_output": """
            from torch import nn

            class Block(nn.Module):
                def __init__(self, n_embd, n_head):
                    super().__init__()
                    self.ln_1 = LayerNorm(n_embd)
                    self.attn = CausalSelfAttention(n_embd, n_head)
                    self.ln_2 = LayerNorm(n_embd)
                    self.mlp = MLP(n_embd)

                def forward(self, x):
                    x = x + self.ln_1(self.attn(x))
                    x = x + self.ln_2(self.mlp(x))
                    return x
            """,
        # A final LayerNorm inside the block (GPT-2's ln_f belongs after the last block).
        "extra_final_layernorm": """
            from torch import nn

            class Block(nn.Module):
                def __init__(self, n_embd, n_head):
                    super().__init__()
                    self.ln_1 = LayerNorm(n_embd)
                    self.attn = CausalSelfAttention(n_embd, n_head)
                    self.ln_2 = LayerNorm(n_embd)
                    self.mlp = MLP(n_embd)
                    self.ln_f = LayerNorm(n_embd)

                def forward(self, x):
                    x = x + self.attn(self.ln_1(x))
                    x = x + self.mlp(self.ln_2(x))
                    return self.ln_f(x)
            """,
        # Right values, but `x +=` adds into the caller's tensor.
        "inplace_residual": """
            from torch import nn

            class Block(nn.Module):
                def __init__(self, n_embd, n_head):
                    super().__init__()
                    self.ln_1 = LayerNorm(n_embd)
                    self.attn = CausalSelfAttention(n_embd, n_head)
                    self.ln_2 = LayerNorm(n_embd)
                    self.mlp = MLP(n_embd)

                def forward(self, x):
                    x += self.attn(self.ln_1(x))
                    x += self.mlp(self.ln_2(x))
                    return x
            """,
        # A clone first, then `+=`: the caller's tensor is safe, but ln_1 saved the clone for
        # its backward pass and the in-place add overwrites it (autograd raises on backward).
        "clone_then_inplace_add": """
            from torch import nn

            class Block(nn.Module):
                def __init__(self, n_embd, n_head):
                    super().__init__()
                    self.ln_1 = LayerNorm(n_embd)
                    self.attn = CausalSelfAttention(n_embd, n_head)
                    self.ln_2 = LayerNorm(n_embd)
                    self.mlp = MLP(n_embd)

                def forward(self, x):
                    x = x.clone()
                    x += self.attn(self.ln_1(x))
                    x += self.mlp(self.ln_2(x))
                    return x
            """,
        # The attention's output detached: right values, but no gradient reaches attn.
        "attn_output_detached": """
            from torch import nn

            class Block(nn.Module):
                def __init__(self, n_embd, n_head):
                    super().__init__()
                    self.ln_1 = LayerNorm(n_embd)
                    self.attn = CausalSelfAttention(n_embd, n_head)
                    self.ln_2 = LayerNorm(n_embd)
                    self.mlp = MLP(n_embd)

                def forward(self, x):
                    x = x + self.attn(self.ln_1(x)).detach()
                    x = x + self.mlp(self.ln_2(x))
                    return x
            """,
        # forward under torch.no_grad(): right values, nothing can be trained.
        "forward_under_no_grad": """
            import torch
            from torch import nn

            class Block(nn.Module):
                def __init__(self, n_embd, n_head):
                    super().__init__()
                    self.ln_1 = LayerNorm(n_embd)
                    self.attn = CausalSelfAttention(n_embd, n_head)
                    self.ln_2 = LayerNorm(n_embd)
                    self.mlp = MLP(n_embd)

                def forward(self, x):
                    with torch.no_grad():
                        x = x + self.attn(self.ln_1(x))
                        x = x + self.mlp(self.ln_2(x))
                    return x
            """,
        # GPT-2 small's 12 heads hard-coded instead of n_head.
        "hardcoded_n_head": """
            from torch import nn

            class Block(nn.Module):
                def __init__(self, n_embd, n_head):
                    super().__init__()
                    self.ln_1 = LayerNorm(n_embd)
                    self.attn = CausalSelfAttention(n_embd, 12)
                    self.ln_2 = LayerNorm(n_embd)
                    self.mlp = MLP(n_embd)

                def forward(self, x):
                    x = x + self.attn(self.ln_1(x))
                    x = x + self.mlp(self.ln_2(x))
                    return x
            """,
        # CausalSelfAttention's arguments swapped.
        "attention_arguments_swapped": """
            from torch import nn

            class Block(nn.Module):
                def __init__(self, n_embd, n_head):
                    super().__init__()
                    self.ln_1 = LayerNorm(n_embd)
                    self.attn = CausalSelfAttention(n_head, n_embd)
                    self.ln_2 = LayerNorm(n_embd)
                    self.mlp = MLP(n_embd)

                def forward(self, x):
                    x = x + self.attn(self.ln_1(x))
                    x = x + self.mlp(self.ln_2(x))
                    return x
            """,
        # PyTorch-tutorial names (norm1, self_attn, norm2, ffn): GPT-2's weights cannot load.
        "tutorial_names": """
            from torch import nn

            class Block(nn.Module):
                def __init__(self, n_embd, n_head):
                    super().__init__()
                    self.norm1 = LayerNorm(n_embd)
                    self.self_attn = CausalSelfAttention(n_embd, n_head)
                    self.norm2 = LayerNorm(n_embd)
                    self.ffn = MLP(n_embd)

                def forward(self, x):
                    x = x + self.self_attn(self.norm1(x))
                    x = x + self.ffn(self.norm2(x))
                    return x
            """,
        # nn.MultiheadAttention instead of the course's CausalSelfAttention: other parameter
        # names (in_proj_weight, out_proj) and, without a mask, no causality.
        "nn_multihead_attention": """
            from torch import nn

            class Block(nn.Module):
                def __init__(self, n_embd, n_head):
                    super().__init__()
                    self.ln_1 = nn.LayerNorm(n_embd)
                    self.attn = nn.MultiheadAttention(n_embd, n_head, batch_first=True)
                    self.ln_2 = nn.LayerNorm(n_embd)
                    self.mlp = MLP(n_embd)

                def forward(self, x):
                    h = self.ln_1(x)
                    x = x + self.attn(h, h, h, need_weights=False)[0]
                    x = x + self.mlp(self.ln_2(x))
                    return x
            """,
        # nn.LayerNorm with eps=1e-6 (ViT's) instead of GPT-2's 1e-5: invisible on inputs of
        # variance ~2, caught by the nearly constant inputs.
        "layernorm_eps_1e-6": """
            from torch import nn

            class Block(nn.Module):
                def __init__(self, n_embd, n_head):
                    super().__init__()
                    self.ln_1 = nn.LayerNorm(n_embd, eps=1e-6)
                    self.attn = CausalSelfAttention(n_embd, n_head)
                    self.ln_2 = nn.LayerNorm(n_embd, eps=1e-6)
                    self.mlp = MLP(n_embd)

                def forward(self, x):
                    x = x + self.attn(self.ln_1(x))
                    x = x + self.mlp(self.ln_2(x))
                    return x
            """,
    },
}

VALID = {
    "Block": {
        # The reference, with the course's LayerNorm.
        "course_layernorm": """
            from torch import nn

            class Block(nn.Module):
                def __init__(self, n_embd, n_head):
                    super().__init__()
                    self.ln_1 = LayerNorm(n_embd)
                    self.attn = CausalSelfAttention(n_embd, n_head)
                    self.ln_2 = LayerNorm(n_embd)
                    self.mlp = MLP(n_embd)

                def forward(self, x):
                    x = x + self.attn(self.ln_1(x))
                    x = x + self.mlp(self.ln_2(x))
                    return x
            """,
        # nn.LayerNorm: the same parameter names (weight, bias) and default eps (1e-5).
        "nn_layernorm": """
            from torch import nn

            class Block(nn.Module):
                def __init__(self, n_embd, n_head):
                    super().__init__()
                    self.ln_1 = nn.LayerNorm(n_embd)
                    self.attn = CausalSelfAttention(n_embd, n_head)
                    self.ln_2 = nn.LayerNorm(n_embd)
                    self.mlp = MLP(n_embd)

                def forward(self, x):
                    x = x + self.attn(self.ln_1(x))
                    x = x + self.mlp(self.ln_2(x))
                    return x
            """,
        # A new name for each step, out of place.
        "separate_names": """
            from torch import nn

            class Block(nn.Module):
                def __init__(self, n_embd, n_head):
                    super().__init__()
                    self.ln_1 = LayerNorm(n_embd)
                    self.attn = CausalSelfAttention(n_embd, n_head)
                    self.ln_2 = LayerNorm(n_embd)
                    self.mlp = MLP(n_embd)

                def forward(self, x):
                    attn_out = self.attn(self.ln_1(x))
                    h = x + attn_out
                    mlp_out = self.mlp(self.ln_2(h))
                    return h + mlp_out
            """,
        # torch.add, sub-modules declared in another order (only the names matter).
        "torch_add_other_order": """
            import torch
            from torch import nn

            class Block(nn.Module):
                def __init__(self, n_embd, n_head):
                    super().__init__()
                    self.ln_1 = LayerNorm(n_embd)
                    self.ln_2 = LayerNorm(n_embd)
                    self.mlp = MLP(n_embd)
                    self.attn = CausalSelfAttention(n_embd, n_head)

                def forward(self, x):
                    x = torch.add(x, self.attn(self.ln_1(x)))
                    return torch.add(x, self.mlp(self.ln_2(x)))
            """,
        # Residual dropout (inactive in eval mode, where the checks run) and stored sizes.
        "with_residual_dropout": """
            from torch import nn

            class Block(nn.Module):
                def __init__(self, n_embd, n_head, dropout=0.1):
                    super().__init__()
                    self.n_embd, self.n_head = n_embd, n_head
                    self.ln_1 = LayerNorm(n_embd)
                    self.attn = CausalSelfAttention(n_embd, n_head)
                    self.ln_2 = LayerNorm(n_embd)
                    self.mlp = MLP(n_embd)
                    self.drop = nn.Dropout(dropout)

                def forward(self, x):
                    x = x + self.drop(self.attn(self.ln_1(x)))
                    x = x + self.drop(self.mlp(self.ln_2(x)))
                    return x
            """,
    },
}

UNCAUGHT: dict = {}

VALID_FAILING: dict = {}


WRONG, VALID, UNCAUGHT, VALID_FAILING = map(_tidy, (WRONG, VALID, UNCAUGHT, VALID_FAILING))
