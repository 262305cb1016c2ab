"""Notebook 04's exercises, split_heads, merge_heads and CausalSelfAttention(n_embd, n_head):
learner mistakes and valid alternatives.

Each source is a complete answer cell. ``tests/checks/test_catalogue_checks.py`` runs it in a namespace
that already holds ``torch``, ``nn``, ``F`` (torch.nn.functional), ``math`` and the finished
pieces of the other exercises: ``causal_mask`` and ``attention`` from notebook 03, and
``split_heads`` / ``merge_heads`` for the CausalSelfAttention cell. The CausalSelfAttention check
builds the class, loads ``c_attn.*`` and ``c_proj.*`` by name, runs forward (the module in eval
mode) and backpropagates.

Mistakes of a line or two are written as edits of the exercise's reference answer in solutions/
(``catalogue.variant``); answers built another way are written out whole.
"""

from catalogue import tidy as _tidy, variant

NOTEBOOK = "04_multi_head_attention.ipynb"

# The attention step of the reference CausalSelfAttention.forward (with its attention dropout).
_ATTENTION = ("_, att = attention(q, k, v, causal_mask(T).to(x.device))  # weights (B, nh, T, T)\n"
              "        y = self.attn_dropout(att) @ v  # in eval mode nn.Dropout passes att through")
# The reference's dropout modules and its last line.
_DROPOUTS = ("        self.attn_dropout = nn.Dropout(dropout)   # on the attention weights\n"
             "        self.resid_dropout = nn.Dropout(dropout)  # on the output, before the residual stream\n")
_RETURN = "return self.resid_dropout(self.c_proj(merge_heads(y)))"

WRONG = {
    "split_heads": {
        # view straight to (B, n_head, T, head_size): time steps and channels mixed.
        "view_without_transpose": variant("split_heads", ("x.view(B, T, n_head, C // n_head).transpose(1, 2)",
                                                          "x.view(B, n_head, T, C // n_head)")),
        # (B, T, head_size, n_head): head h gets every n_head-th channel, not a contiguous slice.
        "interleaved_channels": variant("split_heads",
            ("x.view(B, T, n_head, C // n_head).transpose(1, 2)",
             "x.view(B, T, C // n_head, n_head).permute(0, 3, 1, 2)")),
        # Transposes first, then reshapes: (B, C, T) cut into (B, n_head, T, head_size).
        "transpose_then_reshape": variant("split_heads",
            ("x.view(B, T, n_head, C // n_head).transpose(1, 2)",
             "x.transpose(1, 2).reshape(B, n_head, T, C // n_head)")),
        # Swaps the wrong dimensions: (B, head_size, n_head, T).
        "transpose_1_3": variant("split_heads", ("transpose(1, 2)", "transpose(1, 3)")),
        # Forgets the transpose: (B, T, n_head, head_size).
        "forgets_transpose": variant("split_heads", (".transpose(1, 2)", "")),
        # split(n_head) cuts chunks of n_head channels (that is chunk's job), not n_head chunks.
        "split_by_n_head_not_head_size": """
            import torch

            def split_heads(x, n_head):
                return torch.stack(x.split(n_head, dim=-1), dim=1)
            """,
        # Folds the heads into the batch: (B * n_head, T, head_size).
        "heads_folded_into_batch": variant("split_heads",
            ("transpose(1, 2)",
             "transpose(1, 2).reshape(B * n_head, T, C // n_head)")),
        # permute with the head-size and time axes in the wrong order: (B, n_head, head_size, T).
        "permute_wrong_order": variant("split_heads", (".transpose(1, 2)", ".permute(0, 2, 3, 1)")),
        # chunk takes the number of pieces, not their size: chunk(C // n_head) makes head_size
        # pieces of n_head channels.
        "chunk_by_head_size": """
            import torch

            def split_heads(x, n_head):
                return torch.stack(x.chunk(x.size(-1) // n_head, dim=-1), dim=1)
            """,
    },
    "merge_heads": {
        # Reshapes (B, n_head, T, head_size) straight to (B, T, C): heads and time mixed.
        "reshape_without_transpose": variant("merge_heads", ("x.transpose(1, 2).reshape", "x.reshape")),
        # .view after .transpose: the tensor is not contiguous.
        "view_after_transpose": variant("merge_heads", (".reshape(", ".view(")),
        # Puts the head axis last before flattening: channels interleaved across heads.
        "heads_axis_last": variant("merge_heads", ("transpose(1, 2)", "permute(0, 2, 3, 1)")),
        # Swaps T and head_size instead of n_head and T.
        "transpose_2_3": variant("merge_heads", ("transpose(1, 2)", "transpose(2, 3)")),
        # Transposes but forgets to flatten: still 4-D.
        "forgets_reshape": variant("merge_heads", (".reshape(B, T, n_head * head_size)", "")),
        # Concatenates the heads along time instead of along the channels.
        "cat_heads_along_time": """
            import torch

            def merge_heads(x):
                return torch.cat(x.unbind(dim=1), dim=1)
            """,
        # Averages the heads: (B, T, head_size).
        "averages_heads": """
            def merge_heads(x):
                return x.mean(dim=1)
            """,
        # Sums the heads ("combine them"): (B, T, head_size).
        "sums_heads": """
            def merge_heads(x):
                return x.sum(dim=1)
            """,
    },
    "CausalSelfAttention": {
        # No causal mask: later positions leak into earlier ones.
        "no_mask": variant("CausalSelfAttention", ("attention(q, k, v, causal_mask(T).to(x.device))",
                                                   "attention(q, k, v)")),
        # F.scaled_dot_product_attention without is_causal=True.
        "sdpa_not_causal": variant("CausalSelfAttention",
                                   (_ATTENTION, "y = F.scaled_dot_product_attention(q, k, v)")),
        # The inverted mask ~causal_mask(T): each position sees only the future.
        "mask_inverted": variant("CausalSelfAttention", ("causal_mask(T)", "~causal_mask(T)")),
        # torch.triu instead of torch.tril: each position sees itself and the future.
        "triu_mask": variant("CausalSelfAttention", ("causal_mask(T).to(x.device)",
                                                     "torch.triu(torch.ones(T, T, dtype=torch.bool))")),
        # A float 1/0 triangle as attn_mask: SDPA adds a float mask to the scores (+1 where
        # allowed) instead of hiding the future.
        "sdpa_float_tril_mask": variant("CausalSelfAttention",
            (_ATTENTION,
             "y = F.scaled_dot_product_attention(q, k, v, attn_mask=torch.tril(torch.ones(T, T)))")),
        # Scales by sqrt(n_embd) instead of sqrt(head_size).
        "scale_by_sqrt_n_embd": variant("CausalSelfAttention", (_ATTENTION, (
            "att = q @ k.transpose(-2, -1) / math.sqrt(C)\n"
            '        att = att.masked_fill(~causal_mask(T), float("-inf"))\n'
            "        y = att.softmax(dim=-1) @ v"))),
        # No scale at all.
        "no_scale": variant("CausalSelfAttention", (_ATTENTION, (
            "att = q @ k.transpose(-2, -1)\n"
            '        att = att.masked_fill(~causal_mask(T), float("-inf"))\n'
            "        y = torch.softmax(att, dim=-1) @ v"))),
        # Softmax over the queries inside a hand-written attention.
        "softmax_over_queries": variant("CausalSelfAttention", (_ATTENTION, (
            "att = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))\n"
            '        att = att.masked_fill(~causal_mask(T), float("-inf"))\n'
            "        y = torch.softmax(att, dim=-2) @ v"))),
        # Heads made with a plain view (no transpose), and merged back the same way.
        "heads_view_without_transpose": variant(
            "CausalSelfAttention",
            ("(split_heads(t, self.n_head) for", "(t.reshape(B, self.n_head, T, C // self.n_head) for"),
            ("self.c_proj(merge_heads(y))", "self.c_proj(y.reshape(B, T, C))")),
        # Splits the heads correctly but merges without the transpose.
        "merge_without_transpose": variant("CausalSelfAttention", ("self.c_proj(merge_heads(y))",
                                                                   "self.c_proj(y.reshape(B, T, C))")),
        # k, q, v: the first two thirds of c_attn's output swapped.
        "qk_swapped": variant("CausalSelfAttention",
                              ("q, k, v = self.c_attn(x)", "k, q, v = self.c_attn(x)")),
        # v, k, q: the alphabetical habit.
        "qv_swapped": variant("CausalSelfAttention", ("q, k, v = self.c_attn(x).split(C, dim=-1)",
                                                      "v, k, q = self.c_attn(x).chunk(3, dim=-1)")),
        # Per-head layout (B, T, n_head, 3 * head_size), as in some other codebases: not GPT-2's
        # q | k | v layout of c_attn's output.
        "qkv_interleaved_per_head": variant("CausalSelfAttention", (
            "        q, k, v = self.c_attn(x).split(C, dim=-1)\n"
            "        q, k, v = (split_heads(t, self.n_head) for t in (q, k, v))  # (B, nh, T, hs) each\n",
            "        hs = C // self.n_head\n"
            "        qkv = self.c_attn(x).view(B, T, self.n_head, 3 * hs).transpose(1, 2)\n"
            "        q, k, v = qkv.split(hs, dim=-1)\n")),
        # split(3) cuts chunks of 3 channels (that is chunk(3)'s job): too many values to unpack.
        "split_3_instead_of_chunk": variant("CausalSelfAttention", ("split(C, dim=-1)", "split(3, dim=-1)")),
        # c_proj is defined but the merged heads are returned without it.
        "c_proj_unused": variant("CausalSelfAttention",
                                 (_RETURN, "return merge_heads(y)")),
        # No output projection at all.
        "no_c_proj": variant("CausalSelfAttention", ("        self.c_proj = nn.Linear(n_embd, n_embd)\n", ""),
                             (_RETURN, "return merge_heads(y)")),
        # Three separate projections instead of GPT-2's fused c_attn.
        "separate_qkv_linears": """
            import torch
            from torch import nn

            class CausalSelfAttention(nn.Module):
                def __init__(self, n_embd, n_head):
                    super().__init__()
                    self.n_head = n_head
                    self.q_proj = nn.Linear(n_embd, n_embd)
                    self.k_proj = nn.Linear(n_embd, n_embd)
                    self.v_proj = nn.Linear(n_embd, n_embd)
                    self.c_proj = nn.Linear(n_embd, n_embd)

                def forward(self, x):
                    T = x.size(1)
                    q, k, v = (split_heads(p(x), self.n_head)
                               for p in (self.q_proj, self.k_proj, self.v_proj))
                    y, _ = attention(q, k, v, causal_mask(T))
                    return self.c_proj(merge_heads(y))
            """,
        # bias=False on the projections: GPT-2's c_attn and c_proj have biases.
        "no_biases": variant("CausalSelfAttention",
                             ("nn.Linear(n_embd, 3 * n_embd)", "nn.Linear(n_embd, 3 * n_embd, bias=False)"),
                             ("nn.Linear(n_embd, n_embd)", "nn.Linear(n_embd, n_embd, bias=False)")),
        # Adds the residual inside attention (that is the Block's job).
        "adds_residual": variant("CausalSelfAttention", ("return self.resid_dropout(", "return x + self.resid_dropout(")),
        # head_size = C / n_head is a float: view() refuses it.
        "float_head_size": variant("CausalSelfAttention", (
            "(split_heads(t, self.n_head) for",
            "(t.view(B, T, self.n_head, C / self.n_head).transpose(1, 2) for")),
        # Scales q in place: q is a view of c_attn's output, which autograd forbids changing.
        "inplace_scale_q": variant("CausalSelfAttention", (_ATTENTION, (
            "q /= math.sqrt(q.size(-1))\n"
            '        att = (q @ k.transpose(-2, -1)).masked_fill(~causal_mask(T), float("-inf"))\n'
            "        y = att.softmax(dim=-1) @ v"))),
        # c_attn under torch.no_grad(): c_attn gets no gradient.
        "c_attn_under_no_grad": variant("CausalSelfAttention", (
            "        q, k, v = self.c_attn(x).split(C, dim=-1)",
            "        with torch.no_grad():\n            q, k, v = self.c_attn(x).split(C, dim=-1)")),
        # Detaches the attention weights (kept for plotting) before using them.
        "detached_attention_weights": variant("CausalSelfAttention", (_ATTENTION, (
            "att = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))\n"
            '        att = att.masked_fill(~causal_mask(T), float("-inf")).softmax(dim=-1)\n'
            "        self.last_att = att.detach()\n"
            "        y = self.last_att @ v"))),
        # The output projection through .data: c_proj gets no gradient.
        "c_proj_through_data": variant("CausalSelfAttention", (
            "self.c_proj(merge_heads(y))",
            "F.linear(merge_heads(y), self.c_proj.weight.data, self.c_proj.bias.data)")),
        # An assert instead of the ValueError the text asks for.
        "assert_instead_of_valueerror": variant("CausalSelfAttention", (
            "        if n_embd % n_head != 0:\n"
            '            raise ValueError(f"n_embd ({n_embd}) must be divisible by n_head ({n_head})")\n',
            '        assert n_embd % n_head == 0, "n_embd must be divisible by n_head"\n')),
        # No check at all: CausalSelfAttention(10, 4) is built, with heads of 10 // 4 = 2 channels.
        "no_divisibility_check": variant("CausalSelfAttention", (
            "        if n_embd % n_head != 0:\n"
            '            raise ValueError(f"n_embd ({n_embd}) must be divisible by n_head ({n_head})")\n', "")),
        # The check raises, but another exception than the one asked for.
        "raises_runtimeerror": variant("CausalSelfAttention", ("raise ValueError(", "raise RuntimeError(")),
        # The mask is made on the CPU whatever x's device: on a GPU, masked_fill fails.
        "mask_not_on_x_device": variant("CausalSelfAttention", ("causal_mask(T).to(x.device)", "causal_mask(T)")),
        # A hand-written attention with torch.tril(torch.ones(T, T)) on the CPU.
        "tril_ones_on_cpu": variant("CausalSelfAttention", (_ATTENTION, (
            "att = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))\n"
            '        att = att.masked_fill(torch.tril(torch.ones(T, T)) == 0, float("-inf"))\n'
            "        y = att.softmax(dim=-1) @ v"))),
        # An additive mask, rebuilt only when T changes, made on the CPU.
        "cached_additive_mask_on_cpu": """
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
                    self._mask = None

                def forward(self, x):
                    B, T, C = x.shape
                    if self._mask is None or self._mask.size(-1) != T:
                        self._mask = torch.zeros(T, T).masked_fill(~causal_mask(T), float("-inf"))
                    q, k, v = self.c_attn(x).split(C, dim=-1)
                    q, k, v = (split_heads(t, self.n_head) for t in (q, k, v))
                    scores = q @ k.transpose(-2, -1) / math.sqrt(C // self.n_head) + self._mask
                    y = torch.softmax(scores, dim=-1) @ v
                    return self.c_proj(merge_heads(y))
            """,
        # masked_fill with 0 instead of -inf: the future still gets weight exp(0 - max).
        "mask_filled_with_zero": variant("CausalSelfAttention", (_ATTENTION, (
            "att = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))\n"
            "        att = att.masked_fill(~causal_mask(T).to(x.device), 0.0)\n"
            "        y = att.softmax(dim=-1) @ v"))),
        # The future's weights zeroed after the softmax: the rows no longer sum to 1.
        "mask_after_softmax": variant("CausalSelfAttention", (_ATTENTION, (
            "att = (q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))).softmax(dim=-1)\n"
            "        y = (att * causal_mask(T).to(x.device)) @ v"))),
        # Divides by head_size instead of its square root.
        "scale_by_head_size": variant("CausalSelfAttention", (_ATTENTION, (
            "att = q @ k.transpose(-2, -1) / q.size(-1)\n"
            '        att = att.masked_fill(~causal_mask(T).to(x.device), float("-inf"))\n'
            "        y = att.softmax(dim=-1) @ v"))),
        # The classic: F.dropout(x, p) on the attention weights. Its training argument defaults
        # to True, so it drops in eval mode as well.
        "functional_dropout_in_eval_mode": variant("CausalSelfAttention",
            (_DROPOUTS, "        self.p = dropout\n"),
            ("self.attn_dropout(att)", "F.dropout(att, self.p)"),
            (_RETURN, "return self.c_proj(merge_heads(y))")),
        # Dropout on the output told training=True: on whatever the mode.
        "dropout_training_true": variant("CausalSelfAttention",
            ("self.resid_dropout(self.c_proj(merge_heads(y)))",
             "nn.functional.dropout(self.c_proj(merge_heads(y)), self.resid_dropout.p, training=True)")),
        # Passes the head size where split_heads wants the number of heads.
        "n_head_and_head_size_confused": variant("CausalSelfAttention",
            ("self.n_head = n_head", "self.head_size = n_embd // n_head"),
            ("split_heads(t, self.n_head)", "split_heads(t, self.head_size)")),
    },
}

# For each wrong answer: the rule of the exercise's text it breaks, and a fragment the failure
# message must hold (the mistake named in the learner's terms; None: a general message will do).
EXPECT = {
    "split_heads": {
        "view_without_transpose": ("contiguous heads", "reshaping straight to (B, n_head, T, head_size)"),
        "interleaved_channels": ("contiguous heads", "not (B, T, head_size, n_head)"),
        "transpose_then_reshape": ("contiguous heads", "transposing (B, T, C) first"),
        "transpose_1_3": ("shape", "dims 1 and 3 were swapped"),
        "forgets_transpose": ("shape", "the head dimension still comes after time"),
        "split_by_n_head_not_head_size": ("shape", "heads of n_head = 3 channels"),
        "heads_folded_into_batch": ("shape", "folded into the batch dimension"),
        "permute_wrong_order": ("shape", "time should come before head_size"),
        "chunk_by_head_size": ("shape", "heads of n_head = 3 channels"),
    },
    "merge_heads": {
        "reshape_without_transpose": ("heads side by side", "straight to (B, T, C) mixes heads and time"),
        "view_after_transpose": ("shape", "not contiguous, so .view cannot reshape it"),
        "heads_axis_last": ("heads side by side", "interleaved across the heads"),
        "transpose_2_3": ("heads side by side", "dims 2 and 3 (time and head_size) were swapped"),
        "forgets_reshape": ("shape", "still need flattening"),
        "cat_heads_along_time": ("shape", "concatenated along time"),
        "averages_heads": ("shape", "the heads were averaged"),
        "sums_heads": ("shape", "the heads were summed"),
    },
    "CausalSelfAttention": {
        "no_mask": ("causal", "later positions leak into earlier ones"),
        "sdpa_not_causal": ("causal", "later positions leak into earlier ones"),
        "mask_inverted": ("causal", "the mask is the wrong way round"),
        "triu_mask": ("causal", "not the upper one"),
        "sdpa_float_tril_mask": ("causal", "added to the scores as numbers"),
        "mask_filled_with_zero": ("causal", "masked scores were set to 0"),
        "mask_after_softmax": ("causal", "masked after the softmax"),
        "scale_by_sqrt_n_embd": ("attention per head", "not by sqrt(n_embd)"),
        "no_scale": ("attention per head", "the scores are not scaled"),
        "scale_by_head_size": ("attention per head", "not by head_size = 4"),
        "softmax_over_queries": ("attention per head", "not over the queries"),
        "heads_view_without_transpose": ("q, k, v and heads", "made with a plain reshape/view"),
        "merge_without_transpose": ("q, k, v and heads", "merged with a plain reshape/view"),
        "qk_swapped": ("q, k, v and heads", "splits into q, k, v in that order"),
        "qv_swapped": ("q, k, v and heads", "splits into q, k, v in that order"),
        "qkv_interleaved_per_head": ("q, k, v and heads", "not q, k, v per head"),
        "split_3_instead_of_chunk": ("q, k, v and heads", "gives exactly three tensors"),
        "n_head_and_head_size_confused": ("q, k, v and heads", "takes the number of heads"),
        "functional_dropout_in_eval_mode": ("no dropout in eval mode", "its training argument defaults to True"),
        "dropout_training_true": ("no dropout in eval mode", "two calls on the same input gave different outputs"),
        "float_head_size": ("q, k, v and heads", "not C / n_head"),
        "c_proj_unused": ("output projection", "through the output projection self.c_proj"),
        "no_c_proj": ("parameters", "it has no `c_proj.weight`, `c_proj.bias`"),
        "separate_qkv_linears": ("parameters", "it has no `c_attn.weight`, `c_attn.bias`"),
        "no_biases": ("parameters", "it has no `c_attn.bias`, `c_proj.bias`"),
        "adds_residual": ("output projection", "the residual connection (x + ...) belongs to the block"),
        "inplace_scale_q": ("gradients", "write q = q / ... instead"),
        "c_attn_under_no_grad": ("gradients", "no gradient reached c_attn.weight"),
        "detached_attention_weights": ("gradients", "no gradient reaches q and k"),
        "c_proj_through_data": ("gradients", "no gradient reached c_proj.weight"),
        "assert_instead_of_valueerror": ("n_embd divisible by n_head", "raised AssertionError, not a ValueError"),
        "no_divisibility_check": ("n_embd divisible by n_head", "was built without an error"),
        "raises_runtimeerror": ("n_embd divisible by n_head", "raised RuntimeError"),
        "mask_not_on_x_device": ("mask on x's device", "masked_fill got a tensor on another device (where the inputs are) and one on the CPU"),
        "tril_ones_on_cpu": ("mask on x's device", "masked_fill got a tensor on another device (where the inputs are) and one on the CPU"),
        "cached_additive_mask_on_cpu": ("mask on x's device", "add got a tensor on another device (where the inputs are) and one on the CPU"),
    },
}

VALID = {
    "split_heads": {
        "reshape_permute": """
            def split_heads(x, n_head):
                B, T, C = x.shape
                return x.reshape(B, T, n_head, -1).permute(0, 2, 1, 3)
            """,
        # One slice of channels per head, stacked on a new head axis.
        "stack_of_slices": """
            import torch

            def split_heads(x, n_head):
                head_size = x.size(-1) // n_head
                return torch.stack(x.split(head_size, dim=-1), dim=1)
            """,
        # torch.chunk into n_head pieces.
        "stack_of_chunks": """
            import torch

            def split_heads(x, n_head):
                return torch.stack(torch.chunk(x, n_head, dim=2), dim=1)
            """,
        # unflatten the channel axis, then swapaxes; contiguous for good measure.
        "unflatten_swapaxes": """
            def split_heads(x, n_head):
                return x.unflatten(-1, (n_head, -1)).swapaxes(1, 2).contiguous()
            """,
    },
    "merge_heads": {
        "transpose_contiguous_view": """
            def merge_heads(x):
                B, n_head, T, head_size = x.shape
                return x.transpose(1, 2).contiguous().view(B, T, n_head * head_size)
            """,
        "permute_flatten": """
            def merge_heads(x):
                return x.permute(0, 2, 1, 3).flatten(start_dim=2)
            """,
        # Concatenates the heads along the channels.
        "cat_heads_along_channels": """
            import torch

            def merge_heads(x):
                return torch.cat(x.unbind(dim=1), dim=-1)
            """,
        "swapaxes_reshape_minus_one": """
            def merge_heads(x):
                B, _, T, _ = x.shape
                return x.swapaxes(1, 2).reshape(B, T, -1)
            """,
    },
    "CausalSelfAttention": {
        # The pieces of notebooks 03 and 04.
        "from_the_pieces": """
            import torch
            from torch import nn

            class CausalSelfAttention(nn.Module):
                def __init__(self, n_embd, n_head):
                    super().__init__()
                    if n_embd % n_head != 0:
                        raise ValueError("n_embd must be a multiple of n_head")
                    self.n_head = n_head
                    self.c_attn = nn.Linear(n_embd, 3 * n_embd)
                    self.c_proj = nn.Linear(n_embd, n_embd)

                def forward(self, x):
                    B, T, C = x.shape
                    q, k, v = self.c_attn(x).chunk(3, dim=-1)
                    q = split_heads(q, self.n_head)
                    k = split_heads(k, self.n_head)
                    v = split_heads(v, self.n_head)
                    y, _ = attention(q, k, v, mask=causal_mask(T).to(x.device))
                    return self.c_proj(merge_heads(y))
            """,
        # One head at a time: each head's slice of q, k and v, its own masked softmax, the
        # outputs concatenated in head order (no split_heads / merge_heads).
        "loop_over_heads": """
            import math
            import torch
            from torch import nn

            class CausalSelfAttention(nn.Module):
                def __init__(self, n_embd, n_head):
                    super().__init__()
                    if n_embd % n_head != 0:
                        raise ValueError("n_embd must be divisible by n_head")
                    self.n_head = n_head
                    self.c_attn = nn.Linear(n_embd, 3 * n_embd)
                    self.c_proj = nn.Linear(n_embd, n_embd)

                def forward(self, x):
                    B, T, C = x.shape
                    hs = C // self.n_head
                    q, k, v = self.c_attn(x).split(C, dim=-1)
                    future = torch.ones(T, T, dtype=torch.bool, device=x.device).triu(diagonal=1)
                    outs = []
                    for h in range(self.n_head):
                        part = slice(h * hs, (h + 1) * hs)
                        scores = q[..., part] @ k[..., part].transpose(-2, -1) / math.sqrt(hs)
                        weights = torch.softmax(scores.masked_fill(future, float("-inf")), dim=-1)
                        outs.append(weights @ v[..., part])
                    return self.c_proj(torch.cat(outs, dim=-1))
            """,
        # PyTorch's fused attention with is_causal=True.
        "sdpa_is_causal": """
            import torch
            import torch.nn.functional as F
            from torch import nn

            class CausalSelfAttention(nn.Module):
                def __init__(self, n_embd, n_head):
                    super().__init__()
                    if n_embd % n_head:
                        raise ValueError(f"{n_embd} channels cannot be split into {n_head} heads")
                    self.n_head = n_head
                    self.n_embd = n_embd
                    self.c_attn = nn.Linear(n_embd, 3 * n_embd)
                    self.c_proj = nn.Linear(n_embd, n_embd)

                def forward(self, x):
                    B, T, C = x.size()
                    q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
                    k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
                    q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
                    v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
                    y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
                    y = y.transpose(1, 2).contiguous().view(B, T, C)
                    return self.c_proj(y)
            """,
        # Dropout with F.dropout, told the module's mode: off in eval mode.
        "functional_dropout_self_training": variant("CausalSelfAttention",
            (_DROPOUTS, "        self.p = dropout\n"),
            ("self.attn_dropout(att)", "F.dropout(att, self.p, self.training)"),
            (_RETURN, "return F.dropout(self.c_proj(merge_heads(y)), p=self.p, training=self.training)")),
        # nanoGPT's fused attention: dropout_p only while training, nn.Dropout on the output.
        "sdpa_dropout_p_while_training": """
            import torch.nn.functional as F
            from torch import nn

            class CausalSelfAttention(nn.Module):
                def __init__(self, n_embd, n_head, dropout=0.0):
                    super().__init__()
                    if n_embd % n_head:
                        raise ValueError("n_embd must be divisible by n_head")
                    self.n_head = n_head
                    self.dropout = dropout
                    self.c_attn = nn.Linear(n_embd, 3 * n_embd)
                    self.c_proj = nn.Linear(n_embd, n_embd)
                    self.resid_dropout = nn.Dropout(dropout)

                def forward(self, x):
                    B, T, C = x.shape
                    q, k, v = (split_heads(t, self.n_head) for t in self.c_attn(x).split(C, dim=-1))
                    y = F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                                       dropout_p=self.dropout if self.training else 0.0)
                    return self.resid_dropout(self.c_proj(merge_heads(y)))
            """,
        # nanoGPT's style: a fixed-size (1024) mask buffer and dropout (no-ops in eval mode).
        "fixed_size_mask_buffer_and_dropout": """
            import math
            import torch
            import torch.nn.functional as F
            from torch import nn

            class CausalSelfAttention(nn.Module):
                def __init__(self, n_embd, n_head, max_len=1024):
                    super().__init__()
                    if n_embd % n_head != 0:
                        raise ValueError("n_embd % n_head != 0")
                    self.n_head = n_head
                    self.c_attn = nn.Linear(n_embd, 3 * n_embd)
                    self.c_proj = nn.Linear(n_embd, n_embd)
                    self.attn_dropout = nn.Dropout(0.1)
                    self.resid_dropout = nn.Dropout(0.1)
                    self.register_buffer("bias", torch.tril(torch.ones(max_len, max_len))
                                         .view(1, 1, max_len, max_len))

                def forward(self, x):
                    B, T, C = x.size()
                    hs = C // self.n_head
                    q, k, v = self.c_attn(x).split(C, dim=2)
                    q = q.view(B, T, self.n_head, hs).transpose(1, 2)
                    k = k.view(B, T, self.n_head, hs).transpose(1, 2)
                    v = v.view(B, T, self.n_head, hs).transpose(1, 2)
                    att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
                    att = att.masked_fill(self.bias[:, :, :T, :T] == 0, float("-inf"))
                    att = self.attn_dropout(F.softmax(att, dim=-1))
                    y = (att @ v).transpose(1, 2).contiguous().view(B, T, C)
                    return self.resid_dropout(self.c_proj(y))
            """,
        # One reshape to (B, T, 3, n_head, head_size) and a permute; einsum; lazily built mask.
        "qkv_permute_einsum": """
            import math
            import torch
            from torch import nn

            class CausalSelfAttention(nn.Module):
                def __init__(self, n_embd, n_head):
                    super().__init__()
                    head_size, rest = divmod(n_embd, n_head)
                    if rest:
                        raise ValueError(f"n_embd={n_embd} is not a multiple of n_head={n_head}")
                    self.n_head = n_head
                    self.c_attn = nn.Linear(n_embd, 3 * n_embd)
                    self.c_proj = nn.Linear(n_embd, n_embd)

                def forward(self, x):
                    B, T, C = x.shape
                    hs = C // self.n_head
                    qkv = self.c_attn(x).reshape(B, T, 3, self.n_head, hs).permute(2, 0, 3, 1, 4)
                    q, k, v = qkv[0], qkv[1], qkv[2]
                    scores = torch.einsum("bhtd,bhsd->bhts", q * hs ** -0.5, k)
                    pos = torch.arange(T, device=x.device)
                    allowed = pos[:, None] >= pos[None, :]
                    weights = torch.where(allowed, scores, float("-inf")).softmax(-1)
                    y = torch.einsum("bhts,bhsd->bthd", weights, v).reshape(B, T, C)
                    return self.c_proj(y)
            """,
        # A hand-written attention with the mask made directly on x's device.
        "mask_made_on_x_device": variant("CausalSelfAttention", (_ATTENTION, (
            "att = q @ k.transpose(-2, -1) * q.size(-1) ** -0.5\n"
            "        future = torch.ones(T, T, dtype=torch.bool, device=x.device).triu(diagonal=1)\n"
            '        y = att.masked_fill(future, float("-inf")).softmax(dim=-1) @ v'))),
        # An additive mask on x's device, rebuilt only when T or the device changes (cached as a
        # plain attribute).
        "cached_additive_mask": """
            import math
            import torch
            from torch import nn

            class CausalSelfAttention(nn.Module):
                def __init__(self, n_embd, n_head):
                    super().__init__()
                    if n_embd % n_head != 0:
                        raise ValueError("n_embd must be divisible by n_head")
                    self.n_head = n_head
                    self.c_attn = nn.Linear(n_embd, 3 * n_embd)
                    self.c_proj = nn.Linear(n_embd, n_embd)
                    self._mask = None

                def forward(self, x):
                    B, T, C = x.shape
                    if self._mask is None or self._mask.size(-1) != T or self._mask.device != x.device:
                        self._mask = torch.zeros(T, T, device=x.device).masked_fill(
                            ~causal_mask(T).to(x.device), float("-inf"))
                    q, k, v = self.c_attn(x).split(C, dim=-1)
                    q, k, v = (split_heads(t, self.n_head) for t in (q, k, v))
                    scores = q @ k.transpose(-2, -1) / math.sqrt(C // self.n_head) + self._mask
                    y = torch.softmax(scores, dim=-1) @ v
                    return self.c_proj(merge_heads(y))
            """,
    },
}

UNCAUGHT: dict = {}

VALID_FAILING: dict = {}


WRONG, VALID, UNCAUGHT, VALID_FAILING = map(_tidy, (WRONG, VALID, UNCAUGHT, VALID_FAILING))
