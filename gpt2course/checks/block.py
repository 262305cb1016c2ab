"""Checks for notebook 06's ``Block(n_embd, n_head)`` (pre-LN)."""

from __future__ import annotations

import numpy as np

from .core import Case, CheckFailed, register
from .layers import construction_case, expect_parameters, meta_case, module_case, oracle_case, tensor
from .layernorm_mlp import gelu_tanh
from .multi_head import csa_numpy

_PARTS = {"ln_1.weight": "n", "ln_1.bias": "n", "attn.c_attn.weight": "3n,n", "attn.c_attn.bias": "3n",
          "attn.c_proj.weight": "n,n", "attn.c_proj.bias": "n", "ln_2.weight": "n", "ln_2.bias": "n",
          "mlp.c_fc.weight": "4n,n", "mlp.c_fc.bias": "4n", "mlp.c_proj.weight": "n,4n", "mlp.c_proj.bias": "n"}


def _shapes(n):
    sizes = {"n": n, "3n": 3 * n, "4n": 4 * n}
    return {name: tuple(sizes[s] for s in spec.split(",")) for name, spec in _PARTS.items()}


def _block_oracle(n_head):
    def run(p, x):
        import torch.nn.functional as F
        B, T, C = x.shape

        def attn(h):
            q, k, v = F.linear(h, p["attn.c_attn.weight"], p["attn.c_attn.bias"]).split(C, dim=-1)
            heads = [t.reshape(B, T, n_head, C // n_head).transpose(1, 2) for t in (q, k, v)]
            y = F.scaled_dot_product_attention(*heads, is_causal=True).transpose(1, 2).reshape(B, T, C)
            return F.linear(y, p["attn.c_proj.weight"], p["attn.c_proj.bias"])

        def mlp(h):
            h = F.gelu(F.linear(h, p["mlp.c_fc.weight"], p["mlp.c_fc.bias"]), approximate="tanh")
            return F.linear(h, p["mlp.c_proj.weight"], p["mlp.c_proj.bias"])

        x = x + attn(F.layer_norm(x, (C,), p["ln_1.weight"], p["ln_1.bias"], 1e-5))
        return x + mlp(F.layer_norm(x, (C,), p["ln_2.weight"], p["ln_2.bias"], 1e-5))
    return run


def _block_mistakes(state, x, n_head):
    p = {n: v.double().numpy() for n, v in state.items()}
    xn = x.double().numpy()

    def ln(h, which, eps=1e-5):
        mean, var = h.mean(-1, keepdims=True), h.var(-1, keepdims=True)
        return (h - mean) / np.sqrt(var + eps) * p[f"{which}.weight"] + p[f"{which}.bias"]

    def _eps_variant(eps):
        h = xn + attn(ln(xn, "ln_1", eps))
        return h + mlp(ln(h, "ln_2", eps))

    def attn(h):
        return csa_numpy({k[5:]: v for k, v in p.items() if k.startswith("attn.")}, h, n_head)

    def mlp(h):
        hidden = gelu_tanh(h @ p["mlp.c_fc.weight"].T + p["mlp.c_fc.bias"])
        return hidden @ p["mlp.c_proj.weight"].T + p["mlp.c_proj.bias"]

    def post_ln():
        h = ln(xn + attn(xn), "ln_1")
        return ln(h + mlp(h), "ln_2")

    def no_residual():
        return mlp(ln(attn(ln(xn, "ln_1")), "ln_2"))

    def residual_of_normalised():
        h = ln(xn, "ln_1")
        h = h + attn(h)
        g = ln(h, "ln_2")
        return g + mlp(g)

    def one_ln():
        h = xn + attn(ln(xn, "ln_1"))
        return h + mlp(ln(h, "ln_1"))

    def mlp_first():
        h = xn + mlp(ln(xn, "ln_2"))
        return h + attn(ln(h, "ln_1"))

    def parallel():
        return xn + attn(ln(xn, "ln_1")) + mlp(ln(xn, "ln_2"))

    def heads(h):  # the attention with h heads instead of n_head
        return csa_numpy({k[5:]: v for k, v in p.items() if k.startswith("attn.")}, ln(xn, "ln_1"), h)

    C = xn.shape[-1]
    other_heads = [h for h in range(1, C + 1) if C % h == 0 and h != n_head]

    return [
        ("this is post-LN (LayerNorm after adding the residual, as in the original Transformer); "
         "GPT-2 is pre-LN: x = x + attn(ln_1(x)), then x = x + mlp(ln_2(x)).", post_ln),
        ("the residual connections are missing: add each sub-layer's output to x "
         "(x = x + attn(ln_1(x)); x = x + mlp(ln_2(x))).", no_residual),
        ("only the attention's residual is there: the MLP's output should be added to x too.",
         lambda: (lambda h: mlp(ln(h, "ln_2")))(xn + attn(ln(xn, "ln_1")))),
        ("only the MLP's residual is there: the attention's output should be added to x too.",
         lambda: (lambda h: h + mlp(ln(h, "ln_2")))(attn(ln(xn, "ln_1")))),
        ("the residual stream should carry x itself, not the normalised x: "
         "x = x + attn(ln_1(x)) (keep ln_1(x) out of the sum).", residual_of_normalised),
        ("use ln_1 before the attention and ln_2 before the MLP (two separate LayerNorms).", one_ln),
        ("attention comes first, then the MLP.", mlp_first),
        ("the MLP should read the stream after the attention was added (sequential, not parallel).",
         parallel),
        ("the LayerNorms are not applied: each sub-layer reads ln_1(x) / ln_2(x), not x.",
         lambda: (lambda h: h + mlp(h))(xn + attn(xn))),
        ("the second residual should add to the stream after the attention (x = x + attn(...), "
         "then x = x + mlp(ln_2(x))), not to the block's input.",
         lambda: xn + mlp(ln(xn + attn(ln(xn, "ln_1")), "ln_2"))),
        ("the LayerNorms should use eps=1e-5 (GPT-2's, the default of the course's LayerNorm "
         "and of nn.LayerNorm).", lambda: _eps_variant(1e-6)),
        ("the LayerNorms should use eps=1e-5 (GPT-2's, the default of the course's LayerNorm "
         "and of nn.LayerNorm).", lambda: _eps_variant(1e-12)),
        ("ln_2 is not applied: the MLP should read ln_2(x), not x (x = x + mlp(ln_2(x))).",
         lambda: (lambda h: h + mlp(h))(xn + attn(ln(xn, "ln_1")))),
        ("ln_1 is not applied: the attention should read ln_1(x), not x (x = x + attn(ln_1(x))).",
         lambda: (lambda h: h + mlp(ln(h, "ln_2")))(xn + attn(xn))),
        ("the LayerNorms normalise the sub-layers' outputs; they belong on their inputs: "
         "x = x + attn(ln_1(x)), then x = x + mlp(ln_2(x)).",
         lambda: (lambda h: h + ln(mlp(h), "ln_2"))(xn + ln(attn(xn), "ln_1"))),
        *[(f"the attention has {h} heads; it should have n_head = {n_head}: build it as "
           "CausalSelfAttention(n_embd, n_head), with the block's n_head.",
           (lambda h=h: (lambda g: g + mlp(ln(g, "ln_2")))(xn + heads(h)))) for h in other_heads],
    ]


_ERRORS = {"ValueError": "if CausalSelfAttention raised it: build it as CausalSelfAttention(n_embd, n_head), "
                         "with the block's own n_embd and n_head, in that order."}
_GRAD_ERRORS = {**_ERRORS, "RuntimeError": "if it says a variable needed for gradient computation has been "
                "modified by an inplace operation: x += ... (or another in-place operation) overwrote "
                "a tensor autograd saved for the backward pass: write x = x + ... instead."}


def _parameters_case(label, n_embd, n_head) -> Case:
    """Block(n_embd, n_head) as the learner builds it: its parameters, before anything runs."""
    want = _shapes(n_embd)

    def verify(report):
        shapes = {name: tuple(shape) for name, shape in report["parameters"].items()}
        names = set(shapes)
        ln_1, ln_2 = ({f"{ln}.weight", f"{ln}.bias"} for ln in ("ln_1", "ln_2"))
        if ln_1 <= names and not ln_2 & names and names <= set(want):
            raise CheckFailed("ln_2 has no parameters of its own: is it the same module as ln_1 "
                              "(self.ln_2 = self.ln_1)? GPT-2 has two LayerNorms, each with its own "
                              "weight and bias: self.ln_2 = LayerNorm(n_embd).")
        others = {name.split(".")[0] for name in names} - {"attn", "mlp"}
        if len(others) == 1 and not names & (ln_1 | ln_2):
            (only,) = others
            if {n: s for n, s in shapes.items() if n.startswith(only + ".")} == {
                    f"{only}.weight": (n_embd,), f"{only}.bias": (n_embd,)}:
                raise CheckFailed(f"there is one LayerNorm ({only}) for both sub-layers: GPT-2 has two, "
                                  "ln_1 before the attention and ln_2 before the MLP, each with its own "
                                  "weight and bias.")
        expect_parameters(report, want)
    return module_case(label, (n_embd, n_head), None, [], verify, errors=_ERRORS)


def _block_case(rng, label, n_embd, n_head, B, T, *, grad_seed=None, loaded=True, scale=1.5, shift=0.0):
    x = tensor(rng, B, T, n_embd, scale=scale, shift=shift)
    parameters = _shapes(n_embd)
    if not loaded:
        return construction_case(label, (n_embd, n_head), parameters, x, (B, T, n_embd), errors=_ERRORS)
    state = {}
    for name, shape in parameters.items():
        if name.startswith("ln_") and name.endswith("weight"):
            state[name] = tensor(rng, *shape, scale=0.3, shift=1.0)
        else:
            state[name] = tensor(rng, *shape, scale=0.3)
    return oracle_case(label, (n_embd, n_head), state, x, _block_oracle(n_head),
                       lambda: _block_mistakes(state, x, n_head), (B, T, n_embd), grad_seed=grad_seed,
                       errors=_GRAD_ERRORS if grad_seed is not None else _ERRORS)


_VALUES = ["n_embd=12, n_head=3, batch 2, T=5", "T=1", "n_embd=20, n_head=5, batch 3, T=8", "one head, T=11"]


@register("Block", "parameters ln_1/attn/ln_2/mlp, pre-LN with two residuals, T = 1, device, gradients",
          rules={
    "sub-modules": ["n_embd=12, n_head=3: parameters", "n_embd=12, n_head=3: built and run",
                    "n_embd=20, n_head=5: parameters", "n_embd=20, n_head=5: built and run",
                    "n_embd=12, n_head=3, batch 2, T=5", "n_embd=20, n_head=5, batch 3, T=8",
                    "nearly constant vectors (the LayerNorms' eps matters)", "nearly constant vectors"],
    "pre-LN": _VALUES,
    "residuals": _VALUES,
    "attention, then MLP": _VALUES,
    "input unchanged": ["n_embd=12, n_head=3: built and run", "n_embd=12, n_head=3, batch 2, T=5"],
    "on x's device": ["on the input's device", "on the input's device, one head"],
    "gradients": ["gradients", "n_embd=12, n_head=6, gradients"],
})
def block_cases(rng: np.random.Generator, hidden: bool):
    seed = int(rng.integers(0, 2**31))
    if not hidden:
        return [
            _parameters_case("n_embd=12, n_head=3: parameters", 12, 3),
            _block_case(rng, "n_embd=12, n_head=3: built and run", 12, 3, 2, 4, loaded=False),
            _block_case(rng, "n_embd=12, n_head=3, batch 2, T=5", 12, 3, 2, 5),
            _block_case(rng, "T=1", 8, 2, 3, 1),
            _block_case(rng, "nearly constant vectors (the LayerNorms' eps matters)", 8, 2, 2, 4,
                        scale=2e-3, shift=0.05),
            _block_case(rng, "gradients", 8, 4, 2, 6, grad_seed=seed),
            meta_case("on the input's device", (12, 3), [(tensor(rng, 2, 5, 12),)], [(2, 5, 12)],
                      errors=_ERRORS),
        ]
    return [
        _parameters_case("n_embd=20, n_head=5: parameters", 20, 5),
        _block_case(rng, "n_embd=20, n_head=5: built and run", 20, 5, 1, 2, loaded=False),
        _block_case(rng, "n_embd=20, n_head=5, batch 3, T=8", 20, 5, 3, 8),
        _block_case(rng, "one head, T=11", 6, 1, 2, 11),
        _block_case(rng, "nearly constant vectors", 12, 3, 1, 5, scale=3e-3, shift=-0.04),
        _block_case(rng, "n_embd=12, n_head=6, gradients", 12, 6, 2, 5, grad_seed=seed + 1),
        meta_case("on the input's device, one head", (6, 1), [(tensor(rng, 1, 4, 6),)], [(1, 4, 6)],
                  errors=_ERRORS),
    ]
