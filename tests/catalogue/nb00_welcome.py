"""Notebook 00's exercise, softmax(x, dim=-1): learner mistakes and valid alternatives.

Each source is a complete answer cell. ``tests/checks/test_catalogue_checks.py`` runs it in a namespace
that already holds ``torch``, ``F`` (torch.nn.functional) and ``math``.

Mistakes of a line or two are written as edits of the exercise's reference answer in solutions/
(``catalogue.variant``); answers built another way are written out whole.
"""

from catalogue import tidy as _tidy, variant

NOTEBOOK = "00_welcome.ipynb"

WRONG = {
    "softmax": {
        # Normalises over the first axis whatever `dim` says.
        "dim0_hardcoded": variant("softmax", ("amax(dim=dim", "amax(dim=0"), ("sum(dim=dim", "sum(dim=0")),
        # Accepts `dim` but always works over the last axis.
        "ignores_dim": variant("softmax", ("amax(dim=dim", "amax(dim=-1"), ("sum(dim=dim", "sum(dim=-1")),
        # The textbook formula: exp overflows float32 above ~88 (inf / inf = NaN).
        "no_max_subtraction": variant("softmax", ("shifted = x - x.amax(dim=dim, keepdim=True)",
                                                  "shifted = x")),
        # Shifts by the max of the whole tensor: rows far below it underflow to 0 / 0.
        "global_max": variant("softmax", ("x.amax(dim=dim, keepdim=True)", "x.max()")),
        # Sum without keepdim: broadcasts against the wrong axis (or fails to broadcast).
        "sum_without_keepdim": variant("softmax", ("exps.sum(dim=dim, keepdim=True)", "exps.sum(dim=dim)")),
        # Divides by the sum over every element instead of along `dim`.
        "normalise_over_all_elements": variant("softmax", ("exps.sum(dim=dim, keepdim=True)", "exps.sum()")),
        # Right values, but shifts the caller's tensor in place.
        "inplace_subtract_max": variant("softmax", ("shifted = x - x.amax(dim=dim, keepdim=True)",
                                                    "x -= x.amax(dim=dim, keepdim=True)\n    shifted = x")),
        # Computes in float64 "for accuracy" and forgets to cast back.
        "returns_float64": variant("softmax",
                                   ("    shifted = x - ", "    x = x.double()\n    shifted = x - ")),
        # Log-softmax: the logsumexp trick without the final exp.
        "log_softmax": """
            import torch

            def softmax(x, dim=-1):
                return x - torch.logsumexp(x, dim=dim, keepdim=True)
            """,
        # "Removes the infinities to be safe": masked positions get exp(0 - max) > 0.
        "neginf_replaced_by_zero": variant("softmax", ("    shifted = x - ",
                                                       "    x = torch.nan_to_num(x, neginf=0.0)\n    shifted = x - ")),
        # Masks by multiplying: -inf * 0 is NaN.
        "mask_by_multiplying": variant("softmax", ("shifted = x - x.amax(dim=dim, keepdim=True)",
                                                   "shifted = (x - x.amax(dim=dim, keepdim=True)) * (x > float('-inf'))")),
        # Uses `dim` in the sum but takes the max over the last axis: the shift is no longer
        # constant along `dim`, so the result is wrong whenever dim is not the last axis.
        "max_ignores_dim": variant("softmax", ("x.amax(dim=dim, keepdim=True)",
                                               "x.max(dim=-1, keepdim=True).values")),
    },
}

# For each wrong answer: the rule of the exercise's text it breaks, and a fragment the failure
# message must hold (the mistake named in the learner's terms; None: a general message will do).
EXPECT = {
    "softmax": {
        "dim0_hardcoded": ("along dim", "you normalised over dimension 0"),
        "ignores_dim": ("along dim", "you normalised over dimension"),
        "no_max_subtraction": ("large inputs", "exp overflows"),
        "global_max": ("large inputs", "maximum of the whole tensor"),
        "sum_without_keepdim": ("sums to 1", "keepdim=True"),
        "normalise_over_all_elements": ("sums to 1", "sum over the same dimension"),
        "inplace_subtract_max": ("input unchanged", "in place"),
        "returns_float64": ("float32 in, float32 out", "should stay float32"),
        "log_softmax": ("sums to 1", "log-softmax"),
        "max_ignores_dim": ("along dim", "maximum you subtract was taken over dimension"),
        "neginf_replaced_by_zero": ("masked entries", "where the input is -inf"),
        "mask_by_multiplying": ("masked entries", "0 * (-inf)"),
    },
}

VALID = {
    "softmax": {
        # exp(x - logsumexp(x)).
        "logsumexp": """
            import torch

            def softmax(x, dim=-1):
                return torch.exp(x - torch.logsumexp(x, dim=dim, keepdim=True))
            """,
        "torch_softmax": """
            import torch

            def softmax(x, dim=-1):
                return torch.softmax(x, dim=dim)
            """,
        "functional_softmax": """
            import torch.nn.functional as F

            def softmax(x, dim=-1):
                return F.softmax(x, dim=dim)
            """,
        # torch.max(...) returns (values, indices).
        "torch_max_values": """
            import torch

            def softmax(x, dim=-1):
                m = torch.max(x, dim=dim, keepdim=True).values
                e = torch.exp(x - m)
                return e / torch.sum(e, dim=dim, keepdim=True)
            """,
        # Works in float64, then returns the input's dtype.
        "float64_then_cast_back": """
            import torch

            def softmax(x, dim=-1):
                z = x.to(torch.float64)
                z = z - z.amax(dim=dim, keepdim=True)
                p = z.exp() / z.exp().sum(dim=dim, keepdim=True)
                return p.to(x.dtype)
            """,
        # Moves `dim` last, works on the last axis, moves it back.
        "movedim_last_axis": """
            import torch

            def softmax(x, dim=-1):
                z = x.movedim(dim, -1)
                z = z - z.max(-1, keepdim=True)[0]
                e = z.exp()
                return (e / e.sum(-1, keepdim=True)).movedim(-1, dim)
            """,
    },
}

UNCAUGHT: dict = {}

VALID_FAILING: dict = {}


WRONG, VALID, UNCAUGHT, VALID_FAILING = map(_tidy, (WRONG, VALID, UNCAUGHT, VALID_FAILING))
