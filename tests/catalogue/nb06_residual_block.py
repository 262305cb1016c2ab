"""Notebook 06's exercise, the pre-LN ``Block(n_embd, n_head)``: learner mistakes and valid
alternatives.

Each source is a complete answer cell. ``tests/checks/test_catalogue_checks.py`` runs it in a namespace
that already holds ``torch``, ``nn``, ``F``, ``math`` and the finished ``LayerNorm``,
``CausalSelfAttention`` and ``MLP`` (as the notebook does), so a cell may use them without
defining them.

The check loads GPT-2's parameter names (``ln_1.weight``, ``attn.c_attn.weight``,
``mlp.c_fc.weight``, ...), so the sub-modules' attribute names are part of the answer.

Mistakes of a line or two are written as edits of the exercise's reference answer in solutions/
(``catalogue.variant``); answers built another way are written out whole.
"""

from catalogue import tidy as _tidy, variant

NOTEBOOK = "06_residual_block.ipynb"

# The two residual steps of the reference Block.forward, as written there.
_ATTN = "x = x + self.attn(self.ln_1(x))  # the residual stream carries x through unchanged"
_MLP = "x = x + self.mlp(self.ln_2(x))"

WRONG = {
    "Block": {
        # Post-LN, as in the original Transformer: normalise after adding the residual.
        "post_ln": variant("Block", (_ATTN, "x = self.ln_1(x + self.attn(x))"),
                           (_MLP, "x = self.ln_2(x + self.mlp(x))")),
        # No residual connections: the sub-layers are simply chained.
        "no_residuals": variant("Block", (_ATTN, "x = self.attn(self.ln_1(x))"),
                                (_MLP, "x = self.mlp(self.ln_2(x))")),
        # The MLP's output replaces the stream instead of being added to it.
        "missing_mlp_residual": variant("Block", (_MLP, "x = self.mlp(self.ln_2(x))")),
        # The attention's output replaces the stream instead of being added to it.
        "missing_attn_residual": variant("Block", (_ATTN, "x = self.attn(self.ln_1(x))")),
        # x = ln_1(x) first: the residual stream carries the normalised x, not x.
        "residual_of_normalised": variant("Block", (_ATTN, "x = self.ln_1(x)\n        x = x + self.attn(x)"),
                                          (_MLP, "x = self.ln_2(x)\n        x = x + self.mlp(x)")),
        # Both LayerNorms defined, but ln_1 used before the MLP too (a copy-paste slip).
        "ln_1_used_twice": variant("Block", ("self.mlp(self.ln_2(x))", "self.mlp(self.ln_1(x))")),
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
        "mlp_before_attention": variant("Block", (f"{_ATTN}\n        {_MLP}", f"{_MLP}\n        {_ATTN}")),
        # GPT-J's parallel block: both sub-layers read the same input.
        "parallel_attn_mlp": variant("Block",
            (f"{_ATTN}\n        {_MLP}\n        return x",
             "return x + self.attn(self.ln_1(x)) + self.mlp(self.ln_2(x))")),
        # Separate names, and the MLP normalises the block's input x instead of the new stream h.
        "mlp_reads_block_input": variant("Block",
            (_ATTN, "h = x + self.attn(self.ln_1(x))"),
            (f"{_MLP}\n        return x", "out = h + self.mlp(self.ln_2(x))\n        return out")),
        # Separate names, and the second residual adds to x instead of h: the attention's
        # contribution is dropped from the stream.
        "second_residual_from_input": variant("Block", (_ATTN, "h = x + self.attn(self.ln_1(x))"), (
            f"{_MLP}\n        return x", "out = x + self.mlp(self.ln_2(h))\n        return out")),
        # The LayerNorms are created but never called.
        "layernorms_unused": variant("Block", ("self.attn(self.ln_1(x))", "self.attn(x)"),
                                     ("self.mlp(self.ln_2(x))", "self.mlp(x)")),
        # ln_2 forgotten: the MLP reads the un-normalised stream.
        "ln_2_unused": variant("Block", ("self.mlp(self.ln_2(x))", "self.mlp(x)")),
        # Normalises each sub-layer's output instead of its input.
        "normalises_sublayer_output": variant("Block", ("self.attn(self.ln_1(x))", "self.ln_1(self.attn(x))"),
                                              ("self.mlp(self.ln_2(x))", "self.ln_2(self.mlp(x))")),
        # A final LayerNorm inside the block (GPT-2's ln_f belongs after the last block).
        "extra_final_layernorm": variant("Block",
            ("        self.mlp = MLP(n_embd, dropout)\n",
             "        self.mlp = MLP(n_embd, dropout)\n        self.ln_f = LayerNorm(n_embd)\n"),
            ("return x", "return self.ln_f(x)")),
        # Right values, but `x +=` adds into the caller's tensor.
        "inplace_residual": variant("Block", ("x = x + self.attn", "x += self.attn"),
                                    ("x = x + self.mlp", "x += self.mlp")),
        # A clone first, then `+=`: the caller's tensor is safe, but ln_1 saved the clone for
        # its backward pass and the in-place add overwrites it (autograd raises on backward).
        "clone_then_inplace_add": variant("Block",
                                          (_ATTN, "x = x.clone()\n        x += self.attn(self.ln_1(x))"),
                                          ("x = x + self.mlp", "x += self.mlp")),
        # The attention's output detached: right values, but no gradient reaches attn.
        "attn_output_detached": variant("Block",
                                        ("self.attn(self.ln_1(x))", "self.attn(self.ln_1(x)).detach()")),
        # forward under torch.no_grad(): right values, nothing can be trained.
        "forward_under_no_grad": variant("Block",
            (f"        {_ATTN}\n        {_MLP}\n",
             f"        with torch.no_grad():\n            {_ATTN}\n            {_MLP}\n")),
        # GPT-2 small's 12 heads hard-coded instead of n_head.
        "hardcoded_n_head": variant("Block",
            ("CausalSelfAttention(n_embd, n_head, dropout)", "CausalSelfAttention(n_embd, 12, dropout)")),
        # CausalSelfAttention's arguments swapped.
        "attention_arguments_swapped": variant("Block", ("CausalSelfAttention(n_embd, n_head, dropout)",
                                                         "CausalSelfAttention(n_head, n_embd, dropout)")),
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
        "layernorm_eps_1e-6": variant("Block",
            ("self.ln_1 = LayerNorm(n_embd)", "self.ln_1 = nn.LayerNorm(n_embd, eps=1e-6)"),
            ("self.ln_2 = LayerNorm(n_embd)", "self.ln_2 = nn.LayerNorm(n_embd, eps=1e-6)")),
        # ln_2 is the same module as ln_1: one LayerNorm under two names (its parameters are
        # listed once, as ln_1's).
        "ln_2_is_ln_1": variant("Block", ("self.ln_2 = LayerNorm(n_embd)", "self.ln_2 = self.ln_1")),
        # ln_1 forgotten: the attention reads the un-normalised stream.
        "ln_1_unused": variant("Block", ("self.attn(self.ln_1(x))", "self.attn(x)")),
        # The learner's own CausalSelfAttention pasted into the cell, its causal mask made on the
        # CPU: on a GPU the block fails.
        "attention_mask_on_cpu": """
            import math
            import torch
            from torch import nn

            class CausalSelfAttention(nn.Module):
                def __init__(self, n_embd, n_head):
                    super().__init__()
                    if n_embd % n_head:
                        raise ValueError("n_embd must be divisible by n_head")
                    self.n_head = n_head
                    self.c_attn = nn.Linear(n_embd, 3 * n_embd)
                    self.c_proj = nn.Linear(n_embd, n_embd)

                def forward(self, x):
                    B, T, C = x.shape
                    q, k, v = (t.view(B, T, self.n_head, -1).transpose(1, 2)
                               for t in self.c_attn(x).split(C, dim=-1))
                    att = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))
                    att = att.masked_fill(torch.tril(torch.ones(T, T)) == 0, float("-inf"))
                    y = (att.softmax(dim=-1) @ v).transpose(1, 2).reshape(B, T, C)
                    return self.c_proj(y)

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
    },
}

# For each wrong answer: the rule of the exercise's text it breaks, and a fragment the failure
# message must hold (the mistake named in the learner's terms; None: a general message will do).
EXPECT = {
    "Block": {
        "post_ln": ("pre-LN", "this is post-LN"),
        "no_residuals": ("residuals", "the residual connections are missing"),
        "missing_mlp_residual": ("residuals", "only the attention's residual is there"),
        "missing_attn_residual": ("residuals", "only the MLP's residual is there"),
        "residual_of_normalised": ("pre-LN", "the residual stream should carry x itself, not the normalised x"),
        "ln_1_used_twice": ("sub-modules", "two separate LayerNorms"),
        "single_shared_layernorm": ("sub-modules", "there is one LayerNorm (ln) for both sub-layers"),
        "mlp_before_attention": ("attention, then MLP", "attention comes first, then the MLP"),
        "parallel_attn_mlp": ("attention, then MLP", "sequential, not parallel"),
        "mlp_reads_block_input": ("attention, then MLP", "sequential, not parallel"),
        "second_residual_from_input": ("residuals", "not to the block's input"),
        "layernorms_unused": ("pre-LN", "the LayerNorms are not applied"),
        "ln_2_unused": ("pre-LN", "ln_2 is not applied"),
        "normalises_sublayer_output": ("pre-LN", "normalise the sub-layers' outputs"),
        "extra_final_layernorm": ("sub-modules", "unexpected ln_f.weight, ln_f.bias"),
        "inplace_residual": ("input unchanged", "changed its input in place"),
        "clone_then_inplace_add": ("gradients", "write x = x + ... instead"),
        "attn_output_detached": ("gradients", "no gradient reached ln_1.weight"),
        "forward_under_no_grad": ("gradients", "no gradient can flow through forward"),
        "hardcoded_n_head": ("sub-modules", "the attention has 12 heads; it should have n_head = 3"),
        "attention_arguments_swapped": ("sub-modules", "CausalSelfAttention(n_embd, n_head), with the block's own"),
        "tutorial_names": ("sub-modules", "missing ln_1.weight"),
        "nn_multihead_attention": ("sub-modules", "unexpected attn.in_proj_weight"),
        "layernorm_eps_1e-6": ("sub-modules", "the LayerNorms should use eps=1e-5"),
        "ln_2_is_ln_1": ("sub-modules", "is it the same module as ln_1"),
        "ln_1_unused": ("pre-LN", "ln_1 is not applied"),
        "attention_mask_on_cpu": ("on x's device", "masked_fill got a tensor on another device (where the inputs are) and one on the CPU"),
    },
}

VALID = {
    "Block": {
        # The reference, with the course's LayerNorm.
        "course_layernorm": variant("Block"),
        # nn.LayerNorm: the same parameter names (weight, bias) and default eps (1e-5).
        "nn_layernorm": variant("Block", ("self.ln_1 = LayerNorm", "self.ln_1 = nn.LayerNorm"),
                                ("self.ln_2 = LayerNorm", "self.ln_2 = nn.LayerNorm")),
        # The sub-layer's output first, then x: addition is commutative.
        "residual_added_on_the_left": variant("Block", (_ATTN, "x = self.attn(self.ln_1(x)) + x"),
                                              (_MLP, "x = self.mlp(self.ln_2(x)) + x")),
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
