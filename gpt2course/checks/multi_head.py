"""Checks for notebook 04's ``split_heads``, ``merge_heads`` and ``CausalSelfAttention``."""

from __future__ import annotations

import math

import numpy as np

from .core import Case, CheckFailed, expected_error, register, require_tensor, to_numpy
from .layers import (construction_case, eval_dropout_case, explain, meta_case, module_case, module_verify,
                     oracle_run, tensor)
from .protocol import MODULE, RAISES


# ---- split_heads / merge_heads --------------------------------------------------------------

def _explain_shape(output, shape: tuple, mistakes: list, what: str) -> None:
    """When ``output`` is a tensor of another shape than ``shape``: CheckFailed naming the known
    mistake (hint, exact wrong output) whose output it is, value for value, or the shapes alone.
    Nothing when the shape is right (then ``explain`` compares the values)."""
    import torch

    if not isinstance(output, torch.Tensor) or tuple(output.shape) == tuple(shape):
        return
    got = to_numpy(output)
    hints = []
    for hint, alternative in mistakes:
        alt = alternative()
        if alt.shape == got.shape and np.allclose(got, alt, rtol=1e-5, atol=1e-6) and hint not in hints:
            hints.append(hint)
    if len(hints) == 1:  # two mistakes with the same output: the shapes alone say more
        raise CheckFailed(f"{what} has shape {tuple(output.shape)}, expected {tuple(shape)}: {hints[0]}")
    require_tensor(output, shape, what=what)


def _split_mistakes(xn, n_head):
    B, T, C = xn.shape
    hs = C // n_head
    heads = xn.reshape(B, T, n_head, hs)  # (B, T, n_head, head_size): split, not yet transposed
    return [
        ("reshaping straight to (B, n_head, T, head_size) mixes time steps and channels: reshape "
         "to (B, T, n_head, head_size) first, then swap dims 1 and 2 with .transpose(1, 2).",
         lambda: xn.reshape(B, n_head, T, hs)),
        ("head h should get the contiguous channels h*head_size ... (h+1)*head_size - 1: reshape "
         "to (B, T, n_head, head_size), not (B, T, head_size, n_head).",
         lambda: xn.reshape(B, T, hs, n_head).transpose(0, 3, 1, 2)),
        ("split the channels first (view to (B, T, n_head, head_size)), then swap dims 1 and 2: "
         "transposing (B, T, C) first mixes time steps and channels.",
         lambda: xn.transpose(0, 2, 1).reshape(B, n_head, T, hs)),
        ("this is (B, T, n_head, head_size): the channels are split, but the head dimension still "
         "comes after time: .transpose(1, 2) moves it in front.", lambda: heads),
        ("dims 1 and 3 were swapped, giving (B, head_size, n_head, T): swap dims 1 and 2 "
         "(.transpose(1, 2)) of (B, T, n_head, head_size).", lambda: heads.transpose(0, 3, 2, 1)),
        ("this is (B, n_head, head_size, T): time should come before head_size, "
         "(B, n_head, T, head_size) (.transpose(1, 2), or .permute(0, 2, 1, 3)).",
         lambda: heads.transpose(0, 2, 3, 1)),
        (f"these are C // n_head = {hs} heads of n_head = {n_head} channels: cut the C channels "
         f"into n_head pieces of head_size = C // n_head channels each (x.split(head_size, dim=-1), "
         "not x.split(n_head, dim=-1)).", lambda: xn.reshape(B, T, hs, n_head).transpose(0, 2, 1, 3)),
        ("the heads are folded into the batch dimension, (B * n_head, T, head_size): keep them as "
         "a dimension of their own, (B, n_head, T, head_size).",
         lambda: heads.transpose(0, 2, 1, 3).reshape(B * n_head, T, hs)),
    ]


def _split_case(label, x, n_head) -> Case:
    B, T, C = x.shape
    hs = C // n_head
    xn = x.double().numpy()
    expected = xn.reshape(B, T, n_head, hs).transpose(0, 2, 1, 3)
    mistakes = _split_mistakes(xn, n_head)
    what = "the result (B, n_head, T, C // n_head)"

    def verify(output):
        _explain_shape(output, (B, n_head, T, hs), mistakes, what)
        got = require_tensor(output, (B, n_head, T, hs), what=what)
        explain(got, expected, mistakes, "the result", rtol=0, atol=0)
    return Case(label=label, args=(x, n_head), verify=verify)


def _merge_mistakes(xn):
    B, nh, T, hs = xn.shape
    back = xn.transpose(0, 2, 1, 3)  # (B, T, n_head, head_size)
    return [
        ("reshaping (B, n_head, T, head_size) straight to (B, T, C) mixes heads and time steps: "
         ".transpose(1, 2) first (then .reshape, or .contiguous().view).",
         lambda: xn.reshape(B, T, nh * hs)),
        ("dims 2 and 3 (time and head_size) were swapped: swap dims 1 and 2 (heads and time), "
         ".transpose(1, 2), before flattening.", lambda: xn.transpose(0, 1, 3, 2).reshape(B, T, nh * hs)),
        ("the channels are interleaved across the heads (the head dimension was moved last): head "
         "0's head_size channels should come first, then head 1's: .transpose(1, 2) to "
         "(B, T, n_head, head_size), then flatten the last two dims.",
         lambda: xn.transpose(0, 2, 3, 1).reshape(B, T, nh * hs)),
        ("this is (B, T, n_head, head_size): the heads are back in place, but the last two dims "
         "still need flattening into n_head * head_size channels (.reshape(B, T, n_head * head_size)).",
         lambda: back),
        ("the heads were averaged: merging puts their channels side by side (n_head * head_size "
         "channels), it does not combine them.", lambda: xn.mean(axis=1)),
        ("the heads were summed: merging puts their channels side by side (n_head * head_size "
         "channels), it does not combine them.", lambda: xn.sum(axis=1)),
        ("the heads were concatenated along time (dim 1): put them side by side along the "
         "channels (torch.cat(..., dim=-1), or transpose(1, 2) and reshape).",
         lambda: xn.reshape(B, nh * T, hs)),
    ]


def _merge_case(label, x) -> Case:
    B, nh, T, hs = x.shape
    xn = x.double().numpy()
    expected = xn.transpose(0, 2, 1, 3).reshape(B, T, nh * hs)
    mistakes = _merge_mistakes(xn)
    what = "the result (B, T, n_head * head_size)"

    def verify(output):
        _explain_shape(output, (B, T, nh * hs), mistakes, what)
        got = require_tensor(output, (B, T, nh * hs), what=what)
        explain(got, expected, mistakes, "the result", rtol=0, atol=0)
    return Case(label=label, args=(x,), verify=verify,
                errors={"RuntimeError": "after .transpose the tensor is not contiguous, so .view "
                                        "cannot reshape it: use .reshape(...) or .contiguous().view(...)"})


_SPLIT_LABELS = ["(2, 5, 12) into 3 heads", "(1, 4, 8) into 2 heads", "one head", "T=1",
                 "(3, 7, 20) into 4 heads", "(1, 9, 18) into 6 heads", "head size 1"]


@register("split_heads", "shape (B, n_head, T, head_size), which channels go to which head", rules={
    "shape": _SPLIT_LABELS,
    "contiguous heads": _SPLIT_LABELS,
})
def split_heads_cases(rng: np.random.Generator, hidden: bool):
    t = lambda *s: tensor(rng, *s)  # noqa: E731
    if not hidden:
        return [_split_case("(2, 5, 12) into 3 heads", t(2, 5, 12), 3),
                _split_case("(1, 4, 8) into 2 heads", t(1, 4, 8), 2),
                _split_case("one head", t(3, 4, 6), 1),
                _split_case("T=1", t(2, 1, 8), 4)]
    return [_split_case("(3, 7, 20) into 4 heads", t(3, 7, 20), 4),
            _split_case("(1, 9, 18) into 6 heads", t(1, 9, 18), 6),
            _split_case("head size 1", t(2, 3, 5), 5)]


_MERGE_LABELS = ["(2, 3, 5, 4) -> (2, 5, 12)", "(1, 2, 4, 4)", "one head", "T=1",
                 "(3, 4, 7, 5)", "(1, 6, 9, 3)", "head size 1"]


@register("merge_heads", "shape (B, T, C), the inverse of split_heads", rules={
    "shape": _MERGE_LABELS,
    "heads side by side": _MERGE_LABELS,
})
def merge_heads_cases(rng: np.random.Generator, hidden: bool):
    t = lambda *s: tensor(rng, *s)  # noqa: E731
    if not hidden:
        return [_merge_case("(2, 3, 5, 4) -> (2, 5, 12)", t(2, 3, 5, 4)),
                _merge_case("(1, 2, 4, 4)", t(1, 2, 4, 4)),
                _merge_case("one head", t(3, 1, 4, 6)),
                _merge_case("T=1", t(2, 4, 1, 2))]
    return [_merge_case("(3, 4, 7, 5)", t(3, 4, 7, 5)),
            _merge_case("(1, 6, 9, 3)", t(1, 6, 9, 3)),
            _merge_case("head size 1", t(2, 5, 3, 1))]


# ---- CausalSelfAttention --------------------------------------------------------------------

def _csa_oracle(n_head):
    def run(p, x):
        import torch.nn.functional as F
        B, T, C = x.shape
        q, k, v = F.linear(x, p["c_attn.weight"], p["c_attn.bias"]).split(C, dim=-1)
        heads = [t.reshape(B, T, n_head, C // n_head).transpose(1, 2) for t in (q, k, v)]
        y = F.scaled_dot_product_attention(*heads, is_causal=True)
        return F.linear(y.transpose(1, 2).reshape(B, T, C), p["c_proj.weight"], p["c_proj.bias"])
    return run


def csa_numpy(p: dict, x: np.ndarray, n_head: int, *, scale=None, mask="causal", order=(0, 1, 2),
              split="transpose", merge="transpose", softmax_axis=-1, interleaved=False,
              proj=True, residual=False) -> np.ndarray:
    """NumPy float64 multi-head causal attention with knobs for the usual mistakes. ``mask``:
    "causal", "inverted", "triu", "none", "zero" (masked scores set to 0 instead of -inf),
    "after_softmax" (weights of the future zeroed after the softmax) or "added" (the 0/1 lower
    triangle added to the scores, as a float attn_mask of SDPA does)."""
    B, T, C = x.shape
    hs = C // n_head
    qkv = x @ p["c_attn.weight"].T + p["c_attn.bias"]
    if interleaved:  # (q, k, v) per head side by side instead of all q, then all k, then all v
        parts = [qkv.reshape(B, T, n_head, 3, hs)[..., i, :].reshape(B, T, C) for i in range(3)]
    else:
        parts = [qkv[..., i * C:(i + 1) * C] for i in range(3)]
    q, k, v = (parts[i] for i in order)

    def split_fn(t):
        if split == "transpose":
            return t.reshape(B, T, n_head, hs).transpose(0, 2, 1, 3)
        return t.reshape(B, n_head, T, hs)  # a plain reshape: time steps and channels mixed

    q, k, v = split_fn(q), split_fn(k), split_fn(v)
    scores = q @ k.transpose(0, 1, 3, 2) / (math.sqrt(hs) if scale is None else scale)
    lower = np.tril(np.ones((T, T), dtype=bool))
    allowed = {"causal": lower, "inverted": ~lower, "triu": lower.T}.get(mask)
    if allowed is not None:
        scores = np.where(allowed, scores, -np.inf)
    elif mask == "zero":
        scores = np.where(lower, scores, 0.0)
    elif mask == "added":
        scores = scores + lower
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        w = np.exp(scores - scores.max(axis=softmax_axis, keepdims=True))
        w = w / w.sum(axis=softmax_axis, keepdims=True)
    if mask == "after_softmax":
        w = np.where(lower, w, 0.0)
    y = w @ v
    y = y.transpose(0, 2, 1, 3).reshape(B, T, C) if merge == "transpose" else y.reshape(B, T, C)
    y = y @ p["c_proj.weight"].T + p["c_proj.bias"] if proj else y
    return x + y if residual else y


def _csa_mistakes(state, x, n_head):
    p = {n: v.double().numpy() for n, v in state.items()}
    xn = x.double().numpy()
    C = xn.shape[-1]
    hs = C // n_head
    run = lambda **kw: (lambda: csa_numpy(p, xn, n_head, **kw))  # noqa: E731
    order = "c_attn's output splits into q, k, v in that order (GPT-2's layout): " \
            "q, k, v = self.c_attn(x).split(n_embd, dim=-1)."
    # Scales that coincide for these sizes give one output: name them together.
    scales = {}
    for value, wrong in ((math.sqrt(C), f"sqrt(n_embd) = sqrt({C})"), (float(hs), f"head_size = {hs}")):
        if not math.isclose(value, math.sqrt(hs)):
            scales.setdefault(value, []).append(wrong)
    mistakes = [
        ("later positions leak into earlier ones: apply the causal mask (position t attends to "
         "0..t only).", run(mask="none")),
        ("the mask is the wrong way round: position t may attend to 0..t (torch.tril, True = "
         "may attend), so fill the scores where the mask is False.", run(mask="inverted")),
        ("the mask lets each position see the future instead of the past: use the lower "
         "triangle (torch.tril), not the upper one.", run(mask="triu")),
        ("the masked scores were set to 0, which still gives them weight: fill them with "
         "float('-inf') (exp(-inf) = 0).", run(mask="zero")),
        ("the future was masked after the softmax, so each row's weights no longer sum to 1: fill "
         "the scores with -inf before the softmax.", run(mask="after_softmax")),
        ("the 0/1 mask was added to the scores as numbers (F.scaled_dot_product_attention adds a "
         "float attn_mask): pass a bool mask (True = may attend) or is_causal=True.", run(mask="added")),
        *[(f"divide the scores by sqrt(head_size) = sqrt({hs}), not by {' or '.join(wrong)}.",
           run(scale=value)) for value, wrong in scales.items()],
        (f"the scores are not scaled: divide them by sqrt(head_size) = sqrt({hs}).", run(scale=1.0)),
        ("softmax should run over the keys (the last dimension), not over the queries.",
         run(softmax_axis=-2)),
        ("the heads were made with a plain reshape/view to (B, n_head, T, head_size): reshape to "
         "(B, T, n_head, head_size) and transpose(1, 2) (use split_heads and merge_heads).",
         run(split="view", merge="view")),
        ("the heads are merged with a plain reshape/view: transpose(1, 2) back to (B, T, n_head, "
         "head_size) first (use merge_heads).", run(merge="view")),
        ("the heads are split with a plain reshape/view: reshape to (B, T, n_head, head_size), "
         "then transpose(1, 2) (use split_heads).", run(split="view")),
        (order, run(order=(1, 0, 2))),
        (order, run(order=(0, 2, 1))),
        (order, run(order=(2, 1, 0))),
        (order, run(order=(2, 0, 1))),
        (order, run(order=(1, 2, 0))),
        (order + " (All queries first, then all keys, then all values; not q, k, v per head.)",
         run(interleaved=True)),
        ("the heads' merged output should go through the output projection self.c_proj.",
         run(proj=False)),
        ("return the attention's output only: the residual connection (x + ...) belongs to the "
         "block (notebook 06), not to this layer.", run(residual=True)),
    ]
    if hs != n_head:  # n_head and head_size confused: head_size heads of n_head channels
        mistakes.append((f"this has {hs} heads of {n_head} channels: there should be n_head = {n_head} "
                         f"heads of head_size = {hs} channels (split_heads(t, n_head) takes the number "
                         "of heads).", lambda: csa_numpy(p, xn, hs)))
    return mistakes


# Errors the learner's forward raises, by what their message says.
_CSA_ERRORS = {
    "ValueError": "if it says too many (or not enough) values to unpack: self.c_attn(x).split(n_embd, "
                  "dim=-1) gives exactly three tensors, q, k and v (split(3) cuts pieces of 3 "
                  "channels; chunk(3) cuts 3 pieces).",
    "TypeError": "if it names a float: a size passed to view/reshape must be an int: head_size = "
                 "C // n_head (integer division), not C / n_head.",
    "RuntimeError": "if it says a view is being modified inplace: q /= ... (or another in-place "
                    "operation) changes a slice of c_attn's output that autograd needs: write "
                    "q = q / ... instead. If it says view size is not compatible: use .reshape "
                    "after a transpose.",
}


def _csa_parameters(n_embd):
    return {"c_attn.weight": (3 * n_embd, n_embd), "c_attn.bias": (3 * n_embd,),
            "c_proj.weight": (n_embd, n_embd), "c_proj.bias": (n_embd,)}


def _csa_case(rng, label, n_embd, n_head, B, T, *, grad_seed=None, loaded=True, weight_scale=0.4):
    x = tensor(rng, B, T, n_embd)
    parameters = _csa_parameters(n_embd)
    if not loaded:
        return construction_case(label, (n_embd, n_head), parameters, x, (B, T, n_embd), errors=_CSA_ERRORS)
    state = {n: tensor(rng, *shape, scale=weight_scale) for n, shape in parameters.items()}
    expected, grads = oracle_run(_csa_oracle(n_head), state, [(x,)], grad_seed)
    compare = module_verify(shape_of=lambda i: (B, T, n_embd), expected=expected, grads=grads or None,
                            mistakes_of=lambda i: _csa_mistakes(state, x, n_head))

    def verify(report):
        try:
            compare(report)
        except CheckFailed as failure:
            if "gradient" in str(failure) and _qk_cut_off(report, n_embd):
                raise CheckFailed(
                    "the output is right, but no gradient reaches q and k (the first 2 * n_embd "
                    "rows of c_attn.weight's gradient are 0, v's rows are not): the attention "
                    "weights are cut off from autograd (.detach(), .data or torch.no_grad() on "
                    "the scores or their softmax?)") from None
            raise
    return module_case(label, (n_embd, n_head), state, [(x,)], verify, grad_seed=grad_seed,
                       errors=_CSA_ERRORS)


def _csa_dropout_case(rng, label, n_embd, n_head, B, T) -> Case:
    """CausalSelfAttention(n_embd, n_head, dropout=0.5) (where it takes a dropout) in eval mode."""
    x = tensor(rng, B, T, n_embd)
    state = {n: tensor(rng, *shape, scale=0.4) for n, shape in _csa_parameters(n_embd).items()}
    oracle = _csa_oracle(n_head)
    return eval_dropout_case(label, (n_embd, n_head), state, x, lambda p, x: oracle(p, x),
                             lambda: _csa_mistakes(state, x, n_head), (B, T, n_embd))


def _qk_cut_off(report, n_embd) -> bool:
    """Whether c_attn.weight's gradient is 0 in the rows that make q and k, and not in v's."""
    grads = report.get("grads") or []
    g = grads[0]["parameters"].get("c_attn.weight") if grads else None
    if g is None:
        return False
    g = to_numpy(g)
    return bool(np.all(g[:2 * n_embd] == 0) and np.any(g[2 * n_embd:] != 0))


def _indivisible_case(label, n_embd, n_head) -> Case:
    """Building CausalSelfAttention(n_embd, n_head) with n_embd not divisible by n_head must raise
    a ValueError (an assert is another exception, and ``python -O`` drops it)."""
    inner = module_case(label, (n_embd, n_head), None, [], lambda report: None)
    call = f"CausalSelfAttention({n_embd}, {n_head})"

    def verify(result):
        type_name, message = expected_error(
            "CausalSelfAttention", result,
            f"{call} was built without an error, but {n_embd} is not divisible by {n_head}: in "
            "__init__, raise a ValueError when n_embd % n_head != 0.")
        if type_name == "AssertionError":
            raise CheckFailed(f"{call} raised AssertionError, not a ValueError: an assert is not the "
                              "error asked for (and python -O skips asserts): "
                              "if n_embd % n_head != 0: raise ValueError(...).")
        if type_name != "ValueError":
            raise CheckFailed(f"{call} raised {type_name} ({message[:120]}), not a ValueError: check "
                              "n_embd % n_head first in __init__ and raise ValueError(...).")
    return Case(label=label, args=(MODULE, list(inner.args), {}), kind=RAISES, verify=verify)


_CSA_LOADED = ["n_embd=12, n_head=3, batch 2, T=5", "one head, T=6", "T=1",
               "n_embd=24, n_head=6, batch 3, T=9", "n_embd=10, n_head=2, T=16, larger weights",
               "head size 1"]
_CSA_GRADIENTS = ["n_embd=16, n_head=4, gradients", "n_embd=12, n_head=2, gradients"]


@register("CausalSelfAttention", "parameters c_attn/c_proj, causal heads, scale, T = 1, ValueError, "
          "device, gradients, no dropout in eval mode", helpers=("split_heads", "merge_heads"), rules={
    "parameters": ["n_embd=12, n_head=3: parameters", "n_embd=24, n_head=6: parameters"],
    "n_embd divisible by n_head": ["n_embd=10, n_head=4: not divisible",
                                   "n_embd=12, n_head=5: not divisible"],
    "q, k, v and heads": _CSA_LOADED,
    "causal": _CSA_LOADED,
    "attention per head": _CSA_LOADED,
    "output projection": _CSA_LOADED,
    "mask on x's device": ["the causal mask on the input's device",
                           "the causal mask on the input's device, one head"],
    "gradients": _CSA_GRADIENTS,
    "no dropout in eval mode": ["dropout 0.5, eval mode: two calls", "dropout 0.5, eval mode: two calls, T=7"],
})
def csa_cases(rng: np.random.Generator, hidden: bool):
    seed = int(rng.integers(0, 2**31))
    if not hidden:
        return [
            _csa_case(rng, "n_embd=12, n_head=3: parameters", 12, 3, 2, 5, loaded=False),
            _csa_case(rng, "n_embd=12, n_head=3, batch 2, T=5", 12, 3, 2, 5),
            _csa_case(rng, "one head, T=6", 8, 1, 1, 6),
            _csa_case(rng, "T=1", 12, 4, 3, 1),
            _csa_case(rng, "n_embd=16, n_head=4, gradients", 16, 4, 2, 7, grad_seed=seed),
            meta_case("the causal mask on the input's device", (12, 3), [(tensor(rng, 2, 5, 12),)],
                      [(2, 5, 12)], errors=_CSA_ERRORS),
            _indivisible_case("n_embd=10, n_head=4: not divisible", 10, 4),
            _csa_dropout_case(rng, "dropout 0.5, eval mode: two calls", 12, 3, 2, 5),
        ]
    return [
        _csa_case(rng, "n_embd=24, n_head=6: parameters", 24, 6, 1, 3, loaded=False),
        _csa_case(rng, "n_embd=24, n_head=6, batch 3, T=9", 24, 6, 3, 9),
        _csa_case(rng, "n_embd=10, n_head=2, T=16, larger weights", 10, 2, 2, 16, weight_scale=0.8),
        _csa_case(rng, "head size 1", 5, 5, 2, 4),
        _csa_case(rng, "n_embd=12, n_head=2, gradients", 12, 2, 1, 8, grad_seed=seed + 1),
        meta_case("the causal mask on the input's device, one head", (6, 1), [(tensor(rng, 3, 4, 6),)],
                  [(3, 4, 6)], errors=_CSA_ERRORS),
        _indivisible_case("n_embd=12, n_head=5: not divisible", 12, 5),
        _csa_dropout_case(rng, "dropout 0.5, eval mode: two calls, T=7", 16, 4, 2, 7),
    ]
