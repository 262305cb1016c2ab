"""Notebook 03's exercises, causal_mask(T) and attention(q, k, v, mask=None): learner mistakes and
valid alternatives.

Each source is a complete answer cell. ``tests/checks/test_catalogue_checks.py`` runs it in a namespace
that already holds ``torch``, ``nn``, ``F`` (torch.nn.functional), ``math`` and the finished
pieces of the other exercises (so an attention cell may call ``causal_mask``).

Mistakes of a line or two are written as edits of the exercise's reference answer in solutions/
(``catalogue.variant``); answers built another way are written out whole.
"""

from catalogue import tidy as _tidy, variant

NOTEBOOK = "03_attention.ipynb"

# The masking step of the reference attention, as it is written there.
_MASKING = ('    if mask is not None:\n'
            '        scores = scores.masked_fill(~mask, float("-inf"))      # hidden keys get weight 0\n')

WRONG = {
    "causal_mask": {
        # The upper triangle: every position sees the future.
        "triu": variant("causal_mask", ("torch.tril(", "torch.triu(")),
        # The "masked out" convention: True where attention is forbidden.
        "true_means_hidden": variant("causal_mask",
            ("torch.tril(torch.ones(T, T, dtype=torch.bool))",
             "torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)")),
        # diagonal=-1: a position may not attend to itself.
        "diagonal_excluded": variant("causal_mask",
                                     ("dtype=torch.bool))", "dtype=torch.bool), diagonal=-1)")),
        # Strict comparison of positions: the same mistake written with aranges.
        "strict_comparison": """
            import torch

            def causal_mask(T):
                i = torch.arange(T)
                return i[:, None] > i[None, :]
            """,
        # Comparison the wrong way round: j >= i.
        "comparison_reversed": """
            import torch

            def causal_mask(T):
                i = torch.arange(T)
                return i[:, None] <= i[None, :]
            """,
        # Right pattern, but float 1.0 / 0.0 instead of bool.
        "float_mask": variant("causal_mask", ("torch.ones(T, T, dtype=torch.bool)", "torch.ones(T, T)")),
        # The additive form (0 where allowed, -inf where hidden) instead of a bool mask.
        "additive_minus_inf_mask": """
            import torch

            def causal_mask(T):
                return torch.triu(torch.full((T, T), float("-inf")), diagonal=1)
            """,
        # uint8, as in old PyTorch code.
        "uint8_mask": variant("causal_mask", ("torch.bool", "torch.uint8")),
        # nanoGPT's buffer shape (1, 1, T, T) instead of (T, T).
        "extra_batch_dims": variant("causal_mask",
                                    ("dtype=torch.bool))", "dtype=torch.bool)).view(1, 1, T, T)")),
        # A NumPy array instead of a torch tensor.
        "numpy_array": """
            import numpy as np

            def causal_mask(T):
                return np.tril(np.ones((T, T), dtype=bool))
            """,
        # Transposes the lower triangle "to get rows right": the upper triangle again.
        "tril_transposed": variant("causal_mask",
                                   ("torch.ones(T, T, dtype=torch.bool))", "torch.ones(T, T)).bool().T")),
        # Forgets the triangle: every position may attend to every other.
        "all_true": variant("causal_mask", ("torch.tril(torch.ones(T, T, dtype=torch.bool))",
                                            "torch.ones(T, T, dtype=torch.bool)")),
        # diagonal=1: each position also sees the next one.
        "tril_diagonal_1": variant("causal_mask",
                                   ("dtype=torch.bool))", "dtype=torch.bool), diagonal=1)")),
        # Only the diagonal: "a position attends to itself".
        "identity": variant("causal_mask", ("torch.tril(torch.ones(T, T, dtype=torch.bool))",
                                            "torch.eye(T, dtype=torch.bool)")),
        # Nested Python lists of bools instead of a tensor.
        "python_lists": """
            def causal_mask(T):
                return [[j <= i for j in range(T)] for i in range(T)]
            """,
        # int64 ones, the default of torch.ones(..., dtype=torch.long) habits.
        "int64_mask": variant("causal_mask", ("torch.bool", "torch.long")),
    },
    "attention": {
        # Softmax over the queries (dim=-2) instead of the keys.
        "softmax_over_queries": variant("attention", ("softmax(scores, dim=-1)", "softmax(scores, dim=-2)")),
        # Softmax over dim=1: the last axis only for 2-D scores.
        "softmax_dim_1": variant("attention", ("softmax(scores, dim=-1)", "softmax(scores, dim=1)")),
        # F.softmax without dim: PyTorch guesses dim 0 for 3-D and dim 1 for 4-D inputs.
        "softmax_without_dim": variant("attention", ("torch.softmax(scores, dim=-1)", "F.softmax(scores)")),
        # No 1/sqrt(d) scale.
        "no_scale": variant("attention", (" / math.sqrt(q.size(-1))", "")),
        # Divides by d instead of sqrt(d).
        "scale_by_d": variant("attention", ("math.sqrt(q.size(-1))", "q.size(-1)")),
        # Multiplies by sqrt(d) instead of dividing.
        "multiplies_by_sqrt_d": variant("attention", ("/ math.sqrt", "* math.sqrt")),
        # sqrt of the scores' last size (the number of keys), not of the head size.
        "scale_by_sqrt_of_key_count": variant("attention",
                                              ("math.sqrt(q.size(-1))", "math.sqrt(k.size(-2))")),
        # sqrt of the sequence length T = q.size(-2).
        "scale_by_sqrt_T": variant("attention", ("math.sqrt(q.size(-1))", "math.sqrt(q.size(-2))")),
        # Scales by the size of v's vectors (d_v) instead of q's (d).
        "scale_by_sqrt_dv": variant("attention", ("math.sqrt(q.size(-1))", "math.sqrt(v.size(-1))")),
        # Divides the output by sqrt(d) instead of the scores.
        "scales_output_not_scores": variant("attention",
            (" / math.sqrt(q.size(-1))", ""),
            ("return weights @ v,", "return weights @ v / math.sqrt(q.size(-1)),")),
        # Never applies the mask.
        "mask_ignored": variant("attention", (_MASKING, "")),
        # masked_fill is not in place: its result is thrown away, so the mask does nothing.
        "masked_fill_result_discarded": variant("attention",
                                                ("scores = scores.masked_fill", "scores.masked_fill")),
        # Fills where the mask is True: hides exactly the keys that should be visible.
        "mask_inverted": variant("attention", ("masked_fill(~mask,", "masked_fill(mask,")),
        # torch.where with its branches swapped: the same inversion.
        "where_branches_swapped": variant("attention", ('scores.masked_fill(~mask, float("-inf"))',
                                                        'torch.where(mask, float("-inf"), scores)')),
        # Zeroes the weights after the softmax: rows no longer sum to 1.
        "mask_after_softmax": variant("attention", (_MASKING, ""), (
            "    weights = torch.softmax(scores, dim=-1)\n",
            "    weights = torch.softmax(scores, dim=-1)\n"
            "    if mask is not None:\n"
            "        weights = weights * mask\n")),
        # Fills the hidden scores with 0 instead of -inf: they still get weight after the softmax.
        "masked_fill_zero": variant("attention", ('float("-inf")', "0.0")),
        # Multiplies the scores by the mask: hidden scores become 0, not -inf.
        "multiplies_scores_by_mask": variant("attention",
                                             ('scores.masked_fill(~mask, float("-inf"))', "scores * mask")),
        # Additive mask (~mask) * -inf: 0 * -inf is NaN wherever attention is allowed.
        "additive_mask_zero_times_inf": variant("attention", ('scores.masked_fill(~mask, float("-inf"))',
                                                              'scores + (~mask) * float("-inf")')),
        # Keeps the scores with mask * scores and adds (1 - mask) * -inf: NaN again.
        "float_mask_blend_nan": variant("attention", (
            '        scores = scores.masked_fill(~mask, float("-inf"))',
            '        m = mask.float()\n        scores = scores * m + (1 - m) * float("-inf")')),
        # Adds the bool mask to the scores as if it were the additive mask (+1 where allowed).
        "adds_bool_mask": variant("attention", ('scores.masked_fill(~mask, float("-inf"))', "scores + mask")),
        # Float-mask habit `1 - mask`: PyTorch refuses to subtract a bool tensor.
        "one_minus_bool_mask": variant("attention", ("masked_fill(~mask,", "masked_fill((1 - mask).bool(),")),
        # Applies a causal mask whatever mask it is given (or not given).
        "always_causal": variant("attention", (_MASKING, (
            "    T, S = scores.shape[-2:]\n"
            "    causal = torch.tril(torch.ones(T, S, dtype=torch.bool))\n"
            '    scores = scores.masked_fill(~causal, float("-inf"))\n'))),
        # `if mask:` instead of `if mask is not None:`: ambiguous truth value of a tensor.
        "if_mask_truthiness": variant("attention", ("if mask is not None:", "if mask:")),
        # Boolean indexing: works for a 2-D score matrix, not for batches of them.
        "boolean_index_assignment": variant("attention", ('scores = scores.masked_fill(~mask, float("-inf"))',
                                                          'scores[~mask] = float("-inf")')),
        # k.T reverses every dimension of a batched tensor, not just the last two.
        "dot_T_on_batched_keys": variant("attention", ("k.transpose(-2, -1)", "k.T")),
        # transpose(1, 2): right for (B, T, d) only.
        "transpose_1_2": variant("attention", ("k.transpose(-2, -1)", "k.transpose(1, 2)")),
        # torch.bmm: only 3-D batches of matrices.
        "bmm_only_3d": variant("attention", ("q @ k.transpose(-2, -1)", "torch.bmm(q, k.transpose(1, 2))"),
                               ("return weights @ v,", "return torch.bmm(weights, v),")),
        # Returns (weights, out) instead of (out, weights).
        "returns_weights_first": variant("attention",
                                         ("return weights @ v, weights", "return weights, weights @ v")),
        # Returns only the output.
        "returns_only_out": variant("attention", ("return weights @ v, weights", "return weights @ v")),
        # Scales the caller's q in place (q /= ...): right values, but q is changed.
        "inplace_divide_q": variant("attention",
            ("    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))",
             "    q /= math.sqrt(q.size(-1))\n    scores = q @ k.transpose(-2, -1)")),
        # q.mul_(...): the same in-place change of the input, as a method.
        "inplace_mul_q": variant("attention", ("q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))",
                                               "q.mul_(q.size(-1) ** -0.5) @ k.transpose(-2, -1)")),
        # Computes in float64 "for stability" and forgets to cast back.
        "returns_float64": variant("attention",
            ("    scores = q @", "    q, k, v = q.double(), k.double(), v.double()\n    scores = q @")),
        # Forgets the softmax: the (masked) scores are returned as the weights.
        "no_softmax": variant("attention", ('float("-inf")', "0.0"),
                              ("torch.softmax(scores, dim=-1)", "scores")),
        # Uses k in place of v: out = weights @ k.
        "weights_times_k": variant("attention", ("weights @ v", "weights @ k")),
        # Fills the caller's mask tensor in place while inverting it.
        "inplace_invert_mask": variant("attention", ("~mask", "mask.logical_not_()")),
        # Zeroes the weights after the softmax, then renormalises the rows: equal in exact
        # arithmetic, but when a hidden key's score dominates, the kept weights underflow to 0 / 0.
        "mask_after_softmax_renormalised": variant("attention", (_MASKING, ""), (
            "    weights = torch.softmax(scores, dim=-1)\n",
            "    weights = torch.softmax(scores, dim=-1)\n"
            "    if mask is not None:\n"
            "        weights = weights * mask\n"
            "        weights = weights / weights.sum(dim=-1, keepdim=True)\n")),
        # Detaches the weights ("they are only for plotting") before using them: no gradient
        # reaches q and k.
        "detached_weights": variant("attention",
            ("torch.softmax(scores, dim=-1)", "torch.softmax(scores, dim=-1).detach()")),
        # The scores under torch.no_grad(): the right values, cut off from autograd.
        "scores_under_no_grad": """
            import math
            import torch

            def attention(q, k, v, mask=None):
                with torch.no_grad():
                    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))
                    if mask is not None:
                        scores = scores.masked_fill(~mask, float("-inf"))
                weights = torch.softmax(scores, dim=-1)
                return weights @ v, weights
            """,
        # The softmax written out without subtracting the row maximum: exp overflows float32
        # once a score passes ~88 (inf / inf = NaN).
        "exp_without_max": variant("attention", ("    weights = torch.softmax(scores, dim=-1)\n",
                                                 "    e = scores.exp()\n"
                                                 "    weights = e / e.sum(dim=-1, keepdim=True)\n")),
        # Subtracts the maximum of all scores, not each row's: rows far below it underflow to 0 / 0.
        "global_max_shift": variant("attention", ("    weights = torch.softmax(scores, dim=-1)\n",
                                                  "    e = (scores - scores.max()).exp()\n"
                                                  "    weights = e / e.sum(dim=-1, keepdim=True)\n")),
        # Keeps the weights of the unmasked scores "for plotting"; out itself is right.
        "weights_before_masking": """
            import math
            import torch

            def attention(q, k, v, mask=None):
                scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))
                weights = torch.softmax(scores, dim=-1)
                if mask is not None:
                    scores = scores.masked_fill(~mask, float("-inf"))
                return torch.softmax(scores, dim=-1) @ v, weights
            """,
        # GPT-2 small's head size 64 hard-coded: sqrt(64) = 8, whatever q's size.
        "hardcoded_head_size_64": variant("attention", ("math.sqrt(q.size(-1))", "math.sqrt(64)")),
    },
}

# For each wrong answer: the rule of the exercise's text it breaks, and a fragment the failure
# message must hold (the mistake named in the learner's terms; None: a general message will do).
EXPECT = {
    "causal_mask": {
        "triu": ("past and itself", "not torch.triu"),
        "true_means_hidden": ("past and itself", "attend to itself"),
        "diagonal_excluded": ("past and itself", "diagonal=-1 drops it"),
        "strict_comparison": ("past and itself", "attend to itself"),
        "comparison_reversed": ("past and itself", "yours allows j >= i"),
        "float_mask": ("bool", "dtype torch.float32; return a bool tensor"),
        "additive_minus_inf_mask": ("bool", "additive form"),
        "uint8_mask": ("bool", "dtype torch.uint8; return a bool tensor"),
        "extra_batch_dims": ("shape (T, T)", "expected (T, T)"),
        "numpy_array": ("shape (T, T)", "should return a torch.Tensor, got ndarray"),
        "tril_transposed": ("past and itself", "yours allows j >= i"),
        "all_true": ("past and itself", "every entry is True"),
        "tril_diagonal_1": ("past and itself", "diagonal=1"),
        "identity": ("past and itself", "only the diagonal is True"),
        "python_lists": ("shape (T, T)", "should return a torch.Tensor, got list"),
        "int64_mask": ("bool", "dtype torch.int64; return a bool tensor"),
    },
    "attention": {
        "softmax_over_queries": ("softmax over the keys", "not over the queries"),
        "softmax_dim_1": ("softmax over the keys", "softmax ran over dimension 1"),
        "softmax_without_dim": ("softmax over the keys", "without dim="),
        "no_scale": ("scaled by sqrt(d)", "yours are not scaled"),
        "scale_by_d": ("scaled by sqrt(d)", "divided by d = "),
        "multiplies_by_sqrt_d": ("scaled by sqrt(d)", "yours are multiplied by it"),
        "scale_by_sqrt_of_key_count": ("scaled by sqrt(d)", "not of the sequence length"),
        "scale_by_sqrt_T": ("scaled by sqrt(d)", "not of the sequence length"),
        "scale_by_sqrt_dv": ("scaled by sqrt(d)", "not of v's size"),
        "scales_output_not_scores": ("scaled by sqrt(d)", "yours are not scaled"),
        "mask_ignored": ("mask before softmax", "the mask had no effect"),
        "masked_fill_result_discarded": ("mask before softmax", "masked_fill returns a new tensor"),
        "mask_inverted": ("mask before softmax", "the wrong way round"),
        "where_branches_swapped": ("mask before softmax", "the wrong way round"),
        "mask_after_softmax": ("mask before softmax", "applied after the softmax"),
        "masked_fill_zero": ("mask before softmax", "filled with 0"),
        "multiplies_scores_by_mask": ("mask before softmax", "multiplied by the mask"),
        "additive_mask_zero_times_inf": ("mask before softmax", "0 * (-inf)"),
        "float_mask_blend_nan": ("mask before softmax", "0 * (-inf)"),
        "adds_bool_mask": ("mask before softmax", "bool mask was added to the scores"),
        "one_minus_bool_mask": ("mask before softmax", "with a bool tensor is not supported"),
        "always_causal": ("no mask", "mask=None means no masking"),
        "if_mask_truthiness": ("no mask", "`if mask is not None:`"),
        "boolean_index_assignment": ("any leading dimensions", "boolean indexing needs the mask"),
        "dot_T_on_batched_keys": ("any leading dimensions", "not k.T"),
        "transpose_1_2": ("any leading dimensions", "not dims 1 and 2"),
        "bmm_only_3d": ("any leading dimensions", "torch.bmm takes 3-D tensors only"),
        "returns_weights_first": ("returns (out, weights)", "in that order"),
        "returns_only_out": ("returns (out, weights)", "not one tensor"),
        "inplace_divide_q": ("inputs unchanged", "changed its input (argument 1) in place"),
        "inplace_mul_q": ("inputs unchanged", "changed its input (argument 1) in place"),
        "returns_float64": ("returns (out, weights)", "keep float32"),
        "no_softmax": ("softmax over the keys", "the weights are the scores themselves"),
        "weights_times_k": ("returns (out, weights)", "yours is weights @ k"),
        "inplace_invert_mask": ("inputs unchanged", "changed its input (argument 4) in place"),
        "mask_after_softmax_renormalised": ("mask before softmax", "rows renormalised"),
        "detached_weights": ("gradients", "no gradient flows back to q"),
        "scores_under_no_grad": ("gradients", "no gradient flows back to q"),
        "exp_without_max": ("large scores", "exp overflows"),
        "global_max_shift": ("large scores", "maximum taken over more than the row"),
        "weights_before_masking": ("mask before softmax", "ignore the mask"),
        "hardcoded_head_size_64": ("scaled by sqrt(d)", "divided by 8, not by sqrt(d)"),
    },
}

VALID = {
    "causal_mask": {
        "tril_of_bool_ones": """
            import torch

            def causal_mask(T):
                return torch.ones(T, T, dtype=torch.bool).tril()
            """,
        # Comparison of position indices: key j <= query i.
        "arange_comparison": """
            import torch

            def causal_mask(T):
                return torch.arange(T)[:, None] >= torch.arange(T)[None, :]
            """,
        # Not the strictly-upper triangle.
        "not_strict_upper": """
            import torch

            def causal_mask(T):
                return ~torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
            """,
        # A float triangle compared back to bool.
        "float_tril_compared": """
            import torch

            def causal_mask(T):
                return torch.tril(torch.ones(T, T)) == 1
            """,
        # Python loops.
        "nested_loops": """
            import torch

            def causal_mask(T):
                mask = torch.zeros(T, T, dtype=torch.bool)
                for i in range(T):
                    for j in range(i + 1):
                        mask[i, j] = True
                return mask
            """,
        # Built in NumPy, returned as a torch tensor.
        "numpy_then_torch": """
            import numpy as np
            import torch

            def causal_mask(T):
                return torch.from_numpy(np.tril(np.ones((T, T), dtype=bool)))
            """,
        # A float triangle cast to bool.
        "float_tril_cast": variant("causal_mask", ("torch.tril(torch.ones(T, T, dtype=torch.bool))",
                                                   "torch.ones(T, T).tril().bool()")),
    },
    "attention": {
        # einsum for both products.
        "einsum": """
            import math
            import torch

            def attention(q, k, v, mask=None):
                scores = torch.einsum("...td,...sd->...ts", q, k) / math.sqrt(q.shape[-1])
                if mask is not None:
                    scores = scores.masked_fill(mask == 0, float("-inf"))
                weights = scores.softmax(dim=-1)
                return torch.einsum("...ts,...sd->...td", weights, v), weights
            """,
        # An additive mask: 0 where allowed, -inf where hidden.
        "additive_mask": """
            import math
            import torch.nn.functional as F
            import torch

            def attention(q, k, v, mask=None):
                scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))
                if mask is not None:
                    scores = scores + torch.zeros_like(scores).masked_fill(~mask, float("-inf"))
                weights = F.softmax(scores, dim=-1)
                return weights @ v, weights
            """,
        # torch.where with a scalar -inf.
        "torch_where": """
            import math
            import torch

            def attention(q, k, v, mask=None):
                scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(k.size(-1))
                if mask is not None:
                    scores = torch.where(mask, scores, float("-inf"))
                weights = torch.softmax(scores, -1)
                return torch.matmul(weights, v), weights
            """,
        # Scales q (out of place) before the product; k.mT for the batched transpose.
        "scale_q_first_mT": """
            import torch

            def attention(q, k, v, mask=None):
                q = q * q.shape[-1] ** -0.5
                scores = q @ k.mT
                if mask is not None:
                    scores = scores.masked_fill(~mask, float("-inf"))
                weights = torch.softmax(scores, dim=-1)
                return weights @ v, weights
            """,
        # log of the bool mask: log(1) = 0 where allowed, log(0) = -inf where hidden (no NaN).
        "log_mask_additive": """
            import math
            import torch

            def attention(q, k, v, mask=None):
                scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))
                if mask is not None:
                    scores = scores + mask.float().log()
                weights = torch.softmax(scores, dim=-1)
                return weights @ v, weights
            """,
        # A large negative number instead of -inf, as in many tutorials.
        "fill_minus_1e9": """
            import math
            import torch

            def attention(q, k, v, mask=None):
                d = q.size(-1)
                scores = (q @ k.transpose(-2, -1)) / math.sqrt(d)
                if mask is not None:
                    scores = scores.masked_fill(mask.logical_not(), -1e9)
                weights = torch.softmax(scores, dim=-1)
                out = weights @ v
                return out, weights
            """,
        # The softmax written out with max subtraction, in place on a fresh tensor.
        "manual_softmax_inplace_on_scores": """
            import math
            import torch

            def attention(q, k, v, mask=None):
                scores = q @ k.transpose(-2, -1)
                scores /= math.sqrt(q.size(-1))
                if mask is not None:
                    scores.masked_fill_(~mask, float("-inf"))
                e = torch.exp(scores - scores.amax(dim=-1, keepdim=True))
                weights = e / e.sum(dim=-1, keepdim=True)
                return weights @ v, weights
            """,
        # PyTorch's fused attention for out (the same bool-mask convention), weights by hand.
        "sdpa_for_out": """
            import math
            import torch
            import torch.nn.functional as F

            def attention(q, k, v, mask=None):
                out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
                scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))
                if mask is not None:
                    scores = scores.masked_fill(~mask, float("-inf"))
                return out, scores.softmax(-1)
            """,
        # Works in float64, then returns the inputs' dtype.
        "float64_then_cast_back": """
            import math
            import torch

            def attention(q, k, v, mask=None):
                qd, kd, vd = q.double(), k.double(), v.double()
                scores = qd @ kd.transpose(-2, -1) / math.sqrt(q.size(-1))
                if mask is not None:
                    scores = scores.masked_fill(~mask, float("-inf"))
                weights = torch.softmax(scores, dim=-1)
                return (weights @ vd).to(q.dtype), weights.to(q.dtype)
            """,
        # Notebook 00's softmax (the course's, or the learner's own).
        "notebook_00_softmax": variant("attention", ("torch.softmax(scores, dim=-1)", "softmax(scores, dim=-1)")),
        # The smallest float32 instead of -inf (Hugging Face's habit).
        "fill_finfo_min": variant("attention", ('float("-inf")', "torch.finfo(scores.dtype).min")),
        # An additive mask made from the bool one: -1e9 where hidden, 0 where allowed.
        "additive_minus_1e9": variant("attention", ('scores.masked_fill(~mask, float("-inf"))',
                                                    "scores + (~mask) * -1e9")),
        # q and k each scaled by d ** -0.25 (the product is scaled by 1 / sqrt(d)).
        "scale_q_and_k_by_fourth_root": """
            import torch

            def attention(q, k, v, mask=None):
                d = q.shape[-1]
                scores = (q / d ** 0.25) @ (k / d ** 0.25).transpose(-2, -1)
                if mask is not None:
                    scores = torch.where(mask, scores, torch.tensor(float("-inf")))
                weights = torch.softmax(scores, dim=-1)
                return weights @ v, weights
            """,
    },
}

UNCAUGHT = {}

VALID_FAILING: dict = {}


WRONG, VALID, UNCAUGHT, VALID_FAILING = map(_tidy, (WRONG, VALID, UNCAUGHT, VALID_FAILING))
