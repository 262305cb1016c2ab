"""Checks for notebook 04's ``split_heads``, ``merge_heads`` and ``CausalSelfAttention``."""

from __future__ import annotations

import math

import numpy as np

from .core import Case, register, require_tensor
from .layers import construction_case, explain, oracle_case, tensor


# ---- split_heads / merge_heads --------------------------------------------------------------

def _split_case(label, x, n_head) -> Case:
    B, T, C = x.shape
    hs = C // n_head
    xn = x.double().numpy()
    expected = xn.reshape(B, T, n_head, hs).transpose(0, 2, 1, 3)
    mistakes = [
        ("reshaping straight to (B, n_head, T, head_size) mixes time steps and channels: reshape "
         "to (B, T, n_head, head_size) first, then swap dims 1 and 2 with .transpose(1, 2).",
         lambda: xn.reshape(B, n_head, T, hs)),
        ("head h should get the contiguous channels h*head_size ... (h+1)*head_size - 1: reshape "
         "to (B, T, n_head, head_size), not (B, T, head_size, n_head).",
         lambda: xn.reshape(B, T, hs, n_head).transpose(0, 3, 1, 2)),
        ("split the channels first (view to (B, T, n_head, head_size)), then swap dims 1 and 2: "
         "transposing (B, T, C) first mixes time steps and channels.",
         lambda: xn.transpose(0, 2, 1).reshape(B, n_head, T, hs)),
    ]

    def verify(output):
        got = require_tensor(output, (B, n_head, T, hs), what="the result (B, n_head, T, C // n_head)")
        explain(got, expected, mistakes, "the result", rtol=0, atol=0)
    return Case(label=label, args=(x, n_head), verify=verify)


def _merge_case(label, x) -> Case:
    B, nh, T, hs = x.shape
    xn = x.double().numpy()
    expected = xn.transpose(0, 2, 1, 3).reshape(B, T, nh * hs)
    mistakes = [
        ("reshaping (B, n_head, T, head_size) straight to (B, T, C) mixes heads and time steps: "
         ".transpose(1, 2) first (then .reshape, or .contiguous().view).",
         lambda: xn.reshape(B, T, nh * hs)),
    ]

    def verify(output):
        got = require_tensor(output, (B, T, nh * hs), what="the result (B, T, n_head * head_size)")
        explain(got, expected, mistakes, "the result", rtol=0, atol=0)
    return Case(label=label, args=(x,), verify=verify,
                errors={"RuntimeError": "after .transpose the tensor is not contiguous, so .view "
                                        "cannot reshape it: use .reshape(...) or .contiguous().view(...)"})


@register("split_heads", "shape (B, n_head, T, head_size), which channels go to which head")
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


@register("merge_heads", "shape (B, T, C), the inverse of split_heads")
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
    """NumPy float64 multi-head causal attention with knobs for the usual mistakes."""
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
    allowed = {"causal": lower, "inverted": ~lower, "triu": lower.T, "none": None}[mask]
    if allowed is not None:
        scores = np.where(allowed, scores, -np.inf)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        w = np.exp(scores - scores.max(axis=softmax_axis, keepdims=True))
        w = w / w.sum(axis=softmax_axis, keepdims=True)
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
    return [
        ("later positions leak into earlier ones: apply the causal mask (position t attends to "
         "0..t only).", run(mask="none")),
        ("the mask is the wrong way round: position t may attend to 0..t (torch.tril, True = "
         "may attend), so fill the scores where the mask is False.", run(mask="inverted")),
        ("the mask lets each position see the future instead of the past: use the lower "
         "triangle (torch.tril), not the upper one.", run(mask="triu")),
        (f"scale the scores by 1/sqrt(head_size) = 1/sqrt({hs}), not 1/sqrt(n_embd) = 1/sqrt({C}).",
         run(scale=math.sqrt(C))),
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
        (order + " (All queries first, then all keys, then all values; not q, k, v per head.)",
         run(interleaved=True)),
        ("the heads' merged output should go through the output projection self.c_proj.",
         run(proj=False)),
        ("return the attention's output only: the residual connection (x + ...) belongs to the "
         "block (notebook 06), not to this layer.", run(residual=True)),
    ]


def _csa_case(rng, label, n_embd, n_head, B, T, *, grad_seed=None, loaded=True, weight_scale=0.4):
    x = tensor(rng, B, T, n_embd)
    parameters = {"c_attn.weight": (3 * n_embd, n_embd), "c_attn.bias": (3 * n_embd,),
                  "c_proj.weight": (n_embd, n_embd), "c_proj.bias": (n_embd,)}
    if not loaded:
        return construction_case(label, (n_embd, n_head), parameters, x, (B, T, n_embd))
    state = {n: tensor(rng, *shape, scale=weight_scale) for n, shape in parameters.items()}
    return oracle_case(label, (n_embd, n_head), state, x, _csa_oracle(n_head),
                       lambda: _csa_mistakes(state, x, n_head), (B, T, n_embd), grad_seed=grad_seed)


@register("CausalSelfAttention", "parameters c_attn/c_proj, causal heads, scale, T = 1, gradients",
          helpers=("split_heads", "merge_heads"))
def csa_cases(rng: np.random.Generator, hidden: bool):
    seed = int(rng.integers(0, 2**31))
    if not hidden:
        return [
            _csa_case(rng, "n_embd=12, n_head=3: parameters", 12, 3, 2, 5, loaded=False),
            _csa_case(rng, "n_embd=12, n_head=3, batch 2, T=5", 12, 3, 2, 5),
            _csa_case(rng, "one head, T=6", 8, 1, 1, 6),
            _csa_case(rng, "T=1", 12, 4, 3, 1),
            _csa_case(rng, "n_embd=16, n_head=4, gradients", 16, 4, 2, 7, grad_seed=seed),
        ]
    return [
        _csa_case(rng, "n_embd=24, n_head=6: parameters", 24, 6, 1, 3, loaded=False),
        _csa_case(rng, "n_embd=24, n_head=6, batch 3, T=9", 24, 6, 3, 9),
        _csa_case(rng, "n_embd=10, n_head=2, T=16, larger weights", 10, 2, 2, 16, weight_scale=0.8),
        _csa_case(rng, "head size 1", 5, 5, 2, 4),
        _csa_case(rng, "n_embd=12, n_head=2, gradients", 12, 2, 1, 8, grad_seed=seed + 1),
    ]
