"""Checks for notebook 07: ``GPT(config)`` and ``load_hf_weights(model, state_dict)``.

The model is checked against a float64 oracle written with PyTorch's own functions (the block
oracle of notebook 06, stacked) on random weights, against the logits Hugging Face's
GPT2LMHeadModel gives for the course's fixture checkpoint (``data/fixtures``; the test suite
proves those logits are Hugging Face's), for GPT-2's parameter names and initialisation
statistics, for a clear error on a too-long input, and on the meta device (tensors made inside
forward must follow idx). The loader is checked by what it leaves in a GPT-shaped model (see
protocol.gpt_skeleton) for Hugging Face state dicts with and without buffers, and by the errors
it raises for missing tensors and shapes that do not fit.
"""

from __future__ import annotations

import math
import re

import numpy as np

from .block import _block_oracle, _shapes as block_shapes
from .core import Case, CheckFailed, expected_error, register, to_numpy, worst_difference
from .layers import (edge_ids, expect_grads, expect_parameters, explain, ids, matches, meta_case, module_case,
                     same_twice, tensor)
from .protocol import LOAD, MODULE, RAISES, weighted_sum

CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
LN_WEIGHTS = (".ln_1.weight", ".ln_2.weight", ".ln_f.weight")


def config(vocab_size, block_size, n_layer, n_head, n_embd):
    return dict(vocab_size=vocab_size, block_size=block_size, n_layer=n_layer, n_head=n_head,
                n_embd=n_embd, dropout=0.0)


def gpt_shapes(cfg) -> dict[str, tuple]:
    """GPT-2's parameters (lm_head.weight is wte's tensor, so it is not listed)."""
    n = cfg["n_embd"]
    shapes = {"transformer.wte.weight": (cfg["vocab_size"], n),
              "transformer.wpe.weight": (cfg["block_size"], n)}
    for i in range(cfg["n_layer"]):
        shapes.update({f"transformer.h.{i}.{k}": v for k, v in block_shapes(n).items()})
    shapes.update({"transformer.ln_f.weight": (n,), "transformer.ln_f.bias": (n,)})
    return shapes


def random_state(rng, cfg, scale=0.2):
    state = {}
    for name, shape in gpt_shapes(cfg).items():
        if name.endswith(LN_WEIGHTS):
            state[name] = tensor(rng, *shape, scale=0.2, shift=1.0)
        elif name.endswith("wpe.weight"):
            state[name] = tensor(rng, *shape, scale=0.5)
        else:
            state[name] = tensor(rng, *shape, scale=scale)
    return state


def to_hf(state, cfg, *, buffers=True, lm_head=True):
    """The Hugging Face GPT2LMHeadModel state dict for our parameter values: Conv1D weights
    (in, out), the causal-mask buffers and the (tied) lm_head.weight."""
    import torch
    hf = {}
    for name, value in state.items():
        hf[name] = value.t().contiguous() if name.endswith(CONV1D) else value.clone()
        if buffers and name.endswith(".attn.c_attn.weight"):
            T = cfg["block_size"]
            hf[name.replace("c_attn.weight", "bias")] = torch.tril(torch.ones(T, T)).view(1, 1, T, T)
            hf[name.replace("c_attn.weight", "masked_bias")] = torch.tensor(-1e4)
    if lm_head:
        hf["lm_head.weight"] = state["transformer.wte.weight"].clone()
    return hf


def from_hf(hf):
    """Our parameters from a Hugging Face state dict (the inverse of to_hf)."""
    return {name: (value.t().contiguous() if name.endswith(CONV1D) else value.clone())
            for name, value in hf.items()
            if name.startswith("transformer.") and not name.endswith((".attn.bias", ".attn.masked_bias"))}


# ---- the model's oracle and its known mistakes ---------------------------------------------

def gpt_forward(p, idx, cfg, *, ln_f=True, positions=True, emb_scale=1.0, layers=None, output="logits",
                first_position=0):
    """GPT-2's logits in float64 from parameters ``p`` (our names); keyword arguments make the
    known mistakes."""
    import torch
    import torch.nn.functional as F

    n, T = cfg["n_embd"], idx.shape[1]
    block = _block_oracle(cfg["n_head"])
    x = F.embedding(idx, p["transformer.wte.weight"]) * emb_scale
    if positions:
        wpe = p["transformer.wpe.weight"][first_position:first_position + T]
        if wpe.shape[0] != T:
            raise IndexError("no such position")
        x = x + wpe
    for i in (range(cfg["n_layer"]) if layers is None else layers):
        prefix = f"transformer.h.{i}."
        x = block({k[len(prefix):]: v for k, v in p.items() if k.startswith(prefix)}, x)
    if ln_f:
        x = F.layer_norm(x, (n,), p["transformer.ln_f.weight"], p["transformer.ln_f.bias"], 1e-5)
    logits = x @ p["transformer.wte.weight"].T
    if output == "probs":
        return torch.softmax(logits, -1)
    if output == "log_probs":
        return torch.log_softmax(logits, -1)
    return logits


def _double(state):
    return {k: v.detach().double() for k, v in state.items()}


def logit_mistakes(state, idx, cfg):
    p = _double(state)

    def variant(**kw):
        return lambda: gpt_forward(p, idx, cfg, **kw).numpy()

    L = cfg["n_layer"]
    return [
        ("the final LayerNorm is missing: apply transformer.ln_f to the last block's output "
         "before lm_head.", variant(ln_f=False)),
        ("the position embeddings are not added: x = wte(idx) + wpe(positions 0..T-1).",
         variant(positions=False)),
        ("positions should start at 0, not 1: torch.arange(T, device=idx.device).",
         variant(first_position=1)),
        ("the token embeddings should not be scaled (GPT-2 adds wte(idx) and wpe(pos) as they are).",
         variant(emb_scale=math.sqrt(cfg["n_embd"]))),
        ("forward should return logits (raw scores), not probabilities: leave out the softmax.",
         variant(output="probs")),
        ("forward should return logits, not log-probabilities: leave out the log_softmax "
         "(F.cross_entropy applies it itself).", variant(output="log_probs")),
        ("the blocks are not applied: run x through every block of transformer.h in order.",
         variant(layers=[])),
        ("only the first block is applied: loop over all of transformer.h.", variant(layers=[0])),
        ("only the last block's output reaches ln_f: each block takes the previous block's output "
         "(x = block(x) for every block of transformer.h, in order).", variant(layers=[L - 1])),
        ("the blocks run in reverse order: transformer.h[0] comes first.",
         variant(layers=list(range(L))[::-1])),
    ]


def cross_entropy(logits, targets, reduction="mean"):
    """Cross-entropy of logits (..., V) against targets (...), as F.cross_entropy after flattening."""
    import torch.nn.functional as F
    V = logits.shape[-1]
    return F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1), reduction=reduction)


def loss_mistakes(logits, targets):
    """The known mistakes of a language-model loss, for explain() (``logits`` float64)."""
    import torch
    import torch.nn.functional as F

    def ce(lg, tg, reduction="mean", divide=1):
        return lambda: (cross_entropy(lg, tg, reduction) / divide).numpy()

    def ignoring_0():
        V = logits.shape[-1]
        return F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1), ignore_index=0).numpy()

    return [
        ("the targets are already shifted (targets[b, t] is the token after idx[b, t]): compare "
         "logits[:, t] with targets[:, t], without shifting again.", ce(logits[:, :-1], targets[:, 1:])),
        ("the loss should be the mean over all B * T positions (F.cross_entropy's default), "
         "not the sum.", ce(logits, targets, "sum")),
        ("the loss is the cross-entropy of the logits; softmax is applied inside F.cross_entropy, "
         "so do not apply it before.", ce(torch.softmax(logits, -1), targets)),
        ("the loss should be the mean over all B * T positions, not summed over the sequence and "
         "averaged over the batch.", ce(logits, targets, "sum", divide=logits.shape[0])),
        ("the positions whose target is token 0 were left out (ignore_index=0?): id 0 is a real "
         "token (GPT-2's \"!\"), and every position counts.", ignoring_0),
    ]


def _unpack(out, B, T, V):
    import torch
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise CheckFailed(f"forward should return a pair (logits, loss), got {type(out).__name__}"
                          + (f" of length {len(out)}" if isinstance(out, (tuple, list)) else ""))
    logits, loss = out
    if not isinstance(logits, torch.Tensor):
        raise CheckFailed(f"the logits should be a tensor, got {type(logits).__name__}")
    shape = tuple(logits.shape)
    if shape != (B, T, V):
        hint = ""
        if shape == (B, 1, V) and T > 1:
            hint = (": return the logits of every position, also without targets (generation "
                    "takes the last position itself)")
        raise CheckFailed(f"the logits have shape {shape}, expected (B, T, vocab_size) = "
                          f"{(B, T, V)}{hint}")
    if logits.dtype != torch.float32:
        raise CheckFailed(f"the logits have dtype {logits.dtype}; they should stay float32")
    return to_numpy(logits), loss


def _check_loss(loss, expected, mistakes):
    import torch
    if loss is None:
        raise CheckFailed("with targets, forward should return the loss as its second value, got None")
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        raise CheckFailed("the loss should be a tensor holding one number (F.cross_entropy's mean), "
                          f"got {type(loss).__name__}"
                          + (f" of shape {tuple(loss.shape)}" if isinstance(loss, torch.Tensor) else ""))
    explain(to_numpy(loss).reshape(()), expected, mistakes, "the loss")


def _oracle(state, runs, cfg, grad_seed):
    """(logits, losses, grads) of the oracle for each (idx, targets or None) of ``runs``."""
    outputs = []
    for idx, targets in runs:
        p = {n: v.detach().double().requires_grad_(grad_seed is not None) for n, v in state.items()}
        logits = gpt_forward(p, idx, cfg)
        loss = None if targets is None else cross_entropy(logits, targets)
        grads = None
        if grad_seed is not None:
            total = weighted_sum(logits, grad_seed, 0)
            if loss is not None:
                total = total + weighted_sum(loss, grad_seed, 1)
            total.backward()
            grads = ([None] * (1 if targets is None else 2), {n: v.grad.numpy() for n, v in p.items()})
        outputs.append((logits.detach(), None if loss is None else loss.detach(), grads))
    return outputs


# What an error inside forward most likely means, by the kind of run that raised it.
INDEX_ERRORS = {
    "IndexError": "an index is out of range: wpe has one row per position, so index it with the "
                  "positions 0 .. T - 1 (torch.arange(T, device=idx.device)), not with the token "
                  "ids (up to vocab_size - 1, which index wte).",
}
FULL_BLOCK_ERRORS = {
    "IndexError": "there is no position block_size: with T = block_size tokens the positions are "
                  "0 .. block_size - 1 (torch.arange(T)).",
    "ValueError": "T = block_size tokens fit (positions 0 .. block_size - 1): raise only when "
                  "T > block_size.",
    "AssertionError": "T = block_size tokens fit (positions 0 .. block_size - 1): raise only when "
                      "T > block_size.",
}
LOSS_ERRORS = {
    "RuntimeError": "F.cross_entropy reads dimension 1 as the classes: flatten the logits to "
                    "(B * T, vocab_size) and the targets to (B * T,) first.",
    "ValueError": "F.cross_entropy wants as many rows of logits as targets: flatten the logits to "
                  "(B * T, vocab_size) and the targets to (B * T,).",
}


def forward_case(label, cfg, state, runs, *, grad_seed=None, expected_logits=None, errors=None):
    """Build the learner's GPT for ``cfg``, load ``state`` and run each (idx, targets or None)."""
    oracle = _oracle(state, runs, cfg, grad_seed)

    def verify(report):
        for i, out in enumerate(report["outputs"]):
            idx, targets = runs[i]
            B, T = idx.shape
            got, loss = _unpack(out, B, T, cfg["vocab_size"])
            logits, expected_loss, _ = oracle[i]
            expected = logits.numpy() if expected_logits is None else expected_logits[i]
            explain(got, expected, logit_mistakes(state, idx, cfg), "the logits")
            if targets is None:
                if loss is not None:
                    raise CheckFailed("without targets, the loss should be None "
                                      f"(forward(idx) returns (logits, None)), got {type(loss).__name__}")
            else:
                _check_loss(loss, expected_loss.numpy(), loss_mistakes(logits, targets))
        if grad_seed is not None:
            for i, g in enumerate(report["grads"] or []):
                expect_grads(g, oracle[i][2], ["idx", "targets"])

    inputs = [(idx,) if targets is None else (idx, targets) for idx, targets in runs]
    return module_case(label, (), state, inputs, verify, grad_seed=grad_seed, config=cfg, errors=errors)


def eval_dropout(label, cfg, rng, B, T, rate=0.5):
    """GPT(config) with ``config.dropout = rate`` in eval mode, run twice on one idx: the same
    logits both times, those of the oracle (which has no dropout)."""
    cfg = {**cfg, "dropout": rate}
    idx = edge_ids(rng, cfg["vocab_size"], B, T)
    case = forward_case(label, cfg, random_state(rng, cfg), [(idx, None), (idx, None)])
    compare = case.verify

    def verify(report):
        first, second = (_unpack(out, B, T, cfg["vocab_size"])[0] for out in report["outputs"])
        same_twice(first, second)
        compare(report)
    case.verify = verify
    return case


def _runs(rng, cfg, shapes, with_targets=False):
    V = cfg["vocab_size"]
    return [(edge_ids(rng, V, B, T), edge_ids(rng, V, B, T) if with_targets else None) for B, T in shapes]


def parameters_case(label, cfg):
    """The model as built from ``cfg``, before anything runs: GPT-2's parameter names and shapes,
    the mistakes that show in them named."""
    shapes = gpt_shapes(cfg)
    L = cfg["n_layer"]

    def verify(report):
        got = {n: tuple(s) for n, s in report["parameters"].items()}
        missing = [n for n in shapes if n not in got]
        extra = [n for n in got if n not in shapes]
        if "lm_head.weight" in extra:
            raise CheckFailed("lm_head.weight is a parameter of its own: the output layer should share "
                              "the token embedding's matrix (weight tying). self.lm_head.weight = "
                              "self.transformer.wte.weight makes them one Parameter (assign it, do not "
                              "copy its values).")
        if "lm_head.bias" in extra:
            raise CheckFailed("lm_head has a bias; GPT-2's output layer has none: "
                              "nn.Linear(n_embd, vocab_size, bias=False).")
        for name in extra:
            if f"transformer.{name}" in missing:
                module = name.split(".")[0]
                raise CheckFailed(f"{name} should be transformer.{name}: put {module} inside "
                                  "self.transformer (the nn.ModuleDict), where GPT-2's weights have it.")
        blocks = {int(n.split(".")[2]) for n in got if n.startswith("transformer.h.")}
        if not blocks and any(n.startswith("transformer.h.") for n in missing):
            raise CheckFailed("the blocks have no parameters in the model (no transformer.h.0....): keep "
                              "them in an nn.ModuleList, not a Python list, so that PyTorch finds, "
                              "trains and loads their weights.")
        if blocks and blocks != set(range(L)):
            raise CheckFailed(f"transformer.h should hold n_layer = {L} blocks (h.0 .. h.{L - 1}); it "
                              f"holds {len(blocks)}.")
        expect_parameters(report, shapes)
    return module_case(label, (), None, [], verify, config=cfg)


def construction(label, cfg, rng, B, T):
    shapes = gpt_shapes(cfg)
    idx = edge_ids(rng, cfg["vocab_size"], B, T)

    def verify(report):
        expect_parameters(report, shapes)
        kept = report.get("config") or {}
        if any(kept.get(k) != cfg[k] for k in ("vocab_size", "block_size", "n_layer", "n_embd")):
            raise CheckFailed("keep the config on the model (self.config = config): generation "
                              "and the training code read model.config.block_size and others.")
        _, loss = _unpack(report["outputs"][0], B, T, cfg["vocab_size"])
        if loss is not None:
            raise CheckFailed("without targets, the loss should be None")
    return module_case(label, (), None, [(idx,)], verify, config=cfg, expect=shapes, errors=INDEX_ERRORS)


def _std_message(name, std, target, L, shape, tol):
    def near(value):
        return abs(std / value - 1) <= tol

    linear_default = 1 / math.sqrt(3 * shape[1])  # nn.Linear: uniform(+-1/sqrt(in_features))
    if near(1.0) and name.endswith(("wte.weight", "wpe.weight")):
        return (f"{name} starts with standard deviation {std:.4f}: nn.Embedding's default "
                "initialisation, normal(0, 1), was left in place. GPT-2 initialises every weight "
                "matrix and embedding from normal(0, 0.02).")
    if near(linear_default) and not near(target):
        tied = (" (or it took lm_head's default values after the initialisation: tie first, then "
                "initialise)" if name.endswith("wte.weight") else "")
        return (f"{name} starts with standard deviation {std:.4f}, nn.Linear's default "
                f"(uniform, 1/sqrt(3 * {shape[1]}) = {linear_default:.4f}): it was not initialised"
                f"{tied}. GPT-2 initialises every weight matrix and embedding from normal(0, 0.02).")
    if name.endswith("c_proj.weight"):
        fix = ("you divided by sqrt(n_layer); the residual stream gets two updates per layer "
               "(attention and MLP), so " if near(0.02 / math.sqrt(L)) else "")
        return (f"{name} starts with standard deviation {std:.4f}; GPT-2 scales the projections "
                f"that write into the residual stream (attn.c_proj and mlp.c_proj weights) down to "
                f"{fix}0.02 / sqrt(2 * n_layer) = {target:.4f} here.")
    scaled = near(0.02 / math.sqrt(2 * L))
    return (f"{name} starts with standard deviation {std:.4f}, expected 0.02: GPT-2 initialises "
            "every weight matrix and embedding from normal(0, 0.02)"
            + (" and scales only the c_proj weights by 1/sqrt(2 * n_layer)." if scaled else "."))


def initialisation(label, cfg, rng, init_seed):
    shapes = gpt_shapes(cfg)
    L = cfg["n_layer"]
    idx = edge_ids(rng, cfg["vocab_size"], 1, 4)

    def verify(report):
        expect_parameters(report, shapes)
        for name, value in report["initial"].items():
            v = to_numpy(value).astype(np.float64)
            if v.ndim == 2:
                target = 0.02 / math.sqrt(2 * L) if name.endswith("c_proj.weight") else 0.02
                allowed = [target, 0.01] if name.endswith("wpe.weight") else [target]  # GPT-2's TF code: 0.01
                std, n = float(v.std()), v.size
                tol = 0.08 + 5 / math.sqrt(2 * n)  # a sample std's relative error ~ 1/sqrt(2n)
                if not any(abs(std / t - 1) <= tol for t in allowed):
                    raise CheckFailed(_std_message(name, std, target, L, v.shape, tol))
                if abs(float(v.mean())) > 6 * std / math.sqrt(n) + 1e-4:
                    raise CheckFailed(f"{name} should start centred on 0 (normal(0, std)); its mean is "
                                      f"{float(v.mean()):.4f}")
                if n >= 2000:
                    inside = float((np.abs(v - v.mean()) <= std).mean())
                    if abs(inside - 0.6827) > 0.05:
                        raise CheckFailed(
                            f"{name} does not look normally distributed ({inside:.0%} of its values lie "
                            "within one standard deviation of the mean, 68% for a normal): use "
                            "torch.nn.init.normal_(weight, mean=0.0, std=...).")
            elif name.endswith(LN_WEIGHTS):
                if not np.allclose(v, 1.0, atol=1e-6):
                    raise CheckFailed(f"{name} (a LayerNorm's gain) should start at 1")
            elif not np.allclose(v, 0.0, atol=1e-6):
                raise CheckFailed(f"{name} should start at 0 (GPT-2's biases start at zero; "
                                  f"largest |value| {float(np.abs(v).max()):.3g})")
    return module_case(label, (), None, [(idx,)], verify, config=cfg, expect=shapes, init_seed=init_seed,
                       errors=INDEX_ERRORS)


# An error that says what is wrong names the limit (nanoGPT: "... block size is only 16").
_BLOCK_SIZE = re.compile(r"block[\s_-]*size|context|too long|longer than|maximum|max\w* length",
                         re.IGNORECASE)


def too_long(label, cfg, rng):
    T = cfg["block_size"] + 1
    idx = ids(rng, cfg["vocab_size"], 1, T)
    inner = module_case(label, (), None, [(idx,)], lambda r: None, config=cfg)

    def verify(result):
        type_name, message = expected_error(
            "GPT", result, f"forward on {T} tokens with block_size {cfg['block_size']} should raise "
            f"an error: there is no position embedding for position {cfg['block_size']}.")
        if not _BLOCK_SIZE.search(message):
            raise CheckFailed(
                f"forward on {T} tokens raised {type_name} ({message[:120]}), which does not say "
                "what is wrong: check T against config.block_size first and raise an error that "
                "says so (e.g. a ValueError naming block_size).")
    return Case(label=label, args=(MODULE, list(inner.args), {}), kind=RAISES, verify=verify)


def fixture_case(label):
    from gpt2course.fixtures import load_fixture
    hf, cfg, batches = load_fixture()
    cfg = config(cfg.vocab_size, cfg.block_size, cfg.n_layer, cfg.n_head, cfg.n_embd)
    runs = [(idx, None) for idx, _ in batches]
    return forward_case(label, cfg, from_hf(hf), runs,
                        expected_logits=[to_numpy(logits) for _, logits in batches])


def meta_gpt(label, cfg, rng, B, T, with_targets=False):
    """The model moved to the meta device (a stand-in for a GPU): the positions (and anything
    else forward makes) must follow idx onto it."""
    V = cfg["vocab_size"]
    idx = edge_ids(rng, V, B, T)
    inputs = [(idx, edge_ids(rng, V, B, T))] if with_targets else [(idx,)]
    return meta_case(label, (), inputs, [(B, T, V), ()] if with_targets else [(B, T, V)], config=cfg)


_NAMES = "parameter names and shapes"


@register("GPT", "GPT-2's parameters and initialisation, logits and loss equal to the oracle and "
                 "to Hugging Face's on the fixture, a clear error beyond block_size, positions on "
                 "idx's device, gradients, no dropout in eval mode",
          rules={
              "names and shapes": [f"vocab 101, block_size 16, 2 layers, 2 heads, n_embd 32: {_NAMES}",
                                   f"vocab 131, block_size 12, 3 layers, 3 heads, n_embd 24: {_NAMES}"],
              "tied head": [f"vocab 101, block_size 16, 2 layers, 2 heads, n_embd 32: {_NAMES}",
                            f"vocab 131, block_size 12, 3 layers, 3 heads, n_embd 24: {_NAMES}"],
              "config kept": ["vocab 101, block_size 16, 2 layers, 2 heads, n_embd 32: built from the config",
                              "vocab 131, block_size 12, 3 layers, 3 heads, n_embd 24: built from the config"],
              "initialisation": ["GPT-2's initialisation (3 layers, n_embd 64)",
                                 "GPT-2's initialisation (4 layers, n_embd 48)"],
              "logits": ["batch 2, T=7", "T=1 and T=block_size", "gradients",
                         "the fixture checkpoint: logits equal to Hugging Face's GPT2LMHeadModel",
                         "batch 3, T=5", "one layer, one head, T=1 and T=9", "the fixture checkpoint"],
              "loss": ["with targets: the loss", "T=block_size with targets",
                       "one layer, one head, T=1 and T=9",
                       "vocab 101, block_size 16, 2 layers, 2 heads, n_embd 32: built from the config"],
              "too long": ["a sequence longer than block_size"],
              "positions on idx's device": ["the positions on idx's device",
                                           "the positions on idx's device, with targets"],
              "no dropout in eval mode": ["dropout 0.5, eval mode: two calls",
                                          "dropout 0.5, eval mode: two calls, 3 layers"],
          })
def gpt_cases(rng: np.random.Generator, hidden: bool):
    seed = int(rng.integers(0, 2**31))
    if not hidden:
        small = config(101, 16, 2, 2, 32)
        state = random_state(rng, small)
        name = "vocab 101, block_size 16, 2 layers, 2 heads, n_embd 32"
        return [
            parameters_case(f"{name}: {_NAMES}", small),
            construction(f"{name}: built from the config", small, rng, 2, 5),
            initialisation("GPT-2's initialisation (3 layers, n_embd 64)", config(300, 64, 3, 4, 64), rng, seed % 1000),
            forward_case("batch 2, T=7", small, state, _runs(rng, small, [(2, 7)]), errors=INDEX_ERRORS),
            forward_case("T=1 and T=block_size", small, state, _runs(rng, small, [(3, 1), (1, 16)]),
                         errors=FULL_BLOCK_ERRORS),
            forward_case("with targets: the loss", small, state, _runs(rng, small, [(2, 9)], True),
                         errors=LOSS_ERRORS),
            too_long("a sequence longer than block_size", small, rng),
            meta_gpt("the positions on idx's device", config(29, 8, 1, 2, 8), rng, 2, 5),
            forward_case("gradients", config(53, 8, 2, 2, 16), random_state(rng, config(53, 8, 2, 2, 16)),
                         _runs(rng, config(53, 8, 2, 2, 16), [(2, 6)], True), grad_seed=seed),
            fixture_case("the fixture checkpoint: logits equal to Hugging Face's GPT2LMHeadModel"),
            eval_dropout("dropout 0.5, eval mode: two calls", config(41, 8, 2, 2, 16), rng, 2, 6),
        ]
    cfg = config(131, 12, 3, 3, 24)
    state = random_state(rng, cfg)
    one_head = config(67, 10, 1, 1, 20)
    name = "vocab 131, block_size 12, 3 layers, 3 heads, n_embd 24"
    return [
        parameters_case(f"{name}: {_NAMES}", cfg),
        construction(f"{name}: built from the config", cfg, rng, 1, 3),
        initialisation("GPT-2's initialisation (4 layers, n_embd 48)", config(500, 48, 4, 3, 48), rng, seed % 997),
        forward_case("batch 3, T=5", cfg, state, _runs(rng, cfg, [(3, 5)]), errors=INDEX_ERRORS),
        forward_case("T=block_size with targets", cfg, state, _runs(rng, cfg, [(2, 12)], True),
                     errors={**LOSS_ERRORS, **FULL_BLOCK_ERRORS, "ValueError": (
                         "T = block_size tokens fit (raise only when T > block_size), and "
                         "F.cross_entropy wants the logits flattened to (B * T, vocab_size) and the "
                         "targets to (B * T,): which of the two raised?")}),
        forward_case("one layer, one head, T=1 and T=9", one_head, random_state(rng, one_head),
                     _runs(rng, one_head, [(2, 1), (1, 9)], True), errors=LOSS_ERRORS),
        too_long("a sequence longer than block_size", cfg, rng),
        meta_gpt("the positions on idx's device, with targets", config(23, 6, 2, 1, 4), rng, 3, 1, True),
        forward_case("gradients", cfg, state, _runs(rng, cfg, [(2, 7)], True), grad_seed=seed + 7),
        fixture_case("the fixture checkpoint"),
        eval_dropout("dropout 0.5, eval mode: two calls, 3 layers", config(37, 10, 3, 2, 12), rng, 1, 9),
    ]


# ---- load_hf_weights -------------------------------------------------------------------------

LOAD_ERRORS = {
    "RuntimeError": "a copy between tensors of different shapes (Hugging Face stores the four "
                    "projections attn.c_attn, attn.c_proj, mlp.c_fc, mlp.c_proj as Conv1D with "
                    "weight (in, out), nn.Linear keeps (out, in): transpose those four, and only "
                    "those), or a copy_ into a parameter outside torch.no_grad()?",
    "KeyError": "the state dict holds tensors that are not parameters of the model (each block's "
                "attn.bias, the causal-mask buffer, and lm_head.weight, which is wte's tensor): "
                "go through the model's parameters and look each up in the state dict, rather "
                "than the other way round.",
    "ValueError": "your loader rejected a valid GPT2LMHeadModel state dict: Hugging Face stores "
                  "the four Conv1D weights (attn.c_attn, attn.c_proj, mlp.c_fc, mlp.c_proj) as "
                  "(in, out); transpose those four, and only those, before comparing shapes.",
    "AssertionError": "your loader rejected a valid GPT2LMHeadModel state dict: transpose the four "
                      "Conv1D weights (and only those) before comparing shapes; skip the attn.bias "
                      "buffers and lm_head.weight.",
    "AttributeError": "load into the model's existing parameters by name (model.named_parameters() "
                      "or model.state_dict()), with param.copy_(value) under torch.no_grad().",
}


def load_verify(state, hf):
    expected = {n: to_numpy(v) for n, v in state.items()}

    def verify(report):
        if not isinstance(report, dict) or "parameters" not in report:
            raise CheckFailed("its result could not be read")
        got = {n: to_numpy(v) for n, v in report["parameters"].items()}
        if got and all(np.isnan(v).all() for v in got.values()):
            raise CheckFailed("the model it was given was not loaded (its parameters are as they "
                              "were): copy the values into that model's own parameters, in place "
                              "(not into a copy or a new model), and return it.")
        if not report.get("returned_model"):
            raise CheckFailed("it should return the model it loaded into (return model), so that "
                              "load_hf_weights(GPT(config), state_dict) gives the loaded model.")
        if not report.get("tied"):
            raise CheckFailed("lm_head.weight is no longer the token embedding's tensor: copy the "
                              "values into transformer.wte.weight (in place) and leave lm_head alone; "
                              "the two share one Parameter.")
        if set(got) != set(expected):
            raise CheckFailed("it changed which parameters the model has: "
                              f"now {sorted(set(got) ^ set(expected))[:4]} differ; copy values into "
                              "the existing parameters instead.")
        for name, exp in expected.items():
            value = got[name]
            if value.shape != exp.shape:
                raise CheckFailed(f"{name} now has shape {value.shape}, the model's is {exp.shape}")
            if np.isnan(value).any():
                raise CheckFailed(f"{name} was not loaded: every parameter of the model must come "
                                  "from the state dict.")
            if matches(value, exp, rtol=1e-6, atol=0.0, scaled=False):
                continue
            raw = to_numpy(hf[name]) if name in hf else None
            if raw is not None and raw.shape == value.shape and np.array_equal(value, raw):
                if name.endswith(CONV1D):
                    raise CheckFailed(f"{name} is loaded as stored; Hugging Face's Conv1D keeps its "
                                      "weight as (in, out) and nn.Linear as (out, in): transpose it.")
            if raw is not None and raw.ndim == 2 and raw.T.shape == value.shape and np.array_equal(value, raw.T):
                raise CheckFailed(f"{name} was transposed; only the four Conv1D weights (attn.c_attn, "
                                  "attn.c_proj, mlp.c_fc, mlp.c_proj) are stored transposed.")
            raise CheckFailed(f"{name} differs from the state dict's values "
                              f"({worst_difference(value, exp)})")
    return verify


def load_case(label, cfg, state, hf):
    return Case(label=label, args=(cfg, hf), kind=LOAD, verify=load_verify(state, hf), errors=LOAD_ERRORS)


def load_error_case(label, cfg, hf, culprit, what):
    """``hf`` does not fit the model (``culprit`` missing or of the wrong shape): it must raise,
    naming the tensor."""
    short = culprit.removeprefix("transformer.")

    def verify(result):
        type_name, message = expected_error(
            "load_hf_weights", result, f"it loaded a state dict in which {culprit} {what} without an "
            "error: check that every tensor is there and has the model's shape, and raise an error "
            "naming it otherwise.")
        if short not in message:
            raise CheckFailed(f"{culprit} {what}; it raised {type_name} ({message[:120]}), but the "
                              "message should name the tensor so the user knows what does not fit.")
    return Case(label=label, args=(LOAD, [cfg, hf], {}), kind=RAISES, verify=verify)


_LOADS = ["a GPT2LMHeadModel state dict (with attn.bias buffers and lm_head.weight)",
          "without buffers or lm_head.weight (as safetensors files store it)", "the fixture checkpoint"]


@register("load_hf_weights", "Hugging Face state dicts with and without buffers and lm_head, Conv1D "
                             "transposed, the tied head kept, the fixture, clear errors",
          rules={
              "every parameter": _LOADS,
              "conv1d transposed": _LOADS,
              "in place": _LOADS,
              "state dict unchanged": _LOADS,
              "missing tensor": ["a tensor missing from the state dict"],
              "wrong shape": ["a checkpoint made for a shorter block_size", "a Conv1D weight of the wrong width"],
          })
def load_cases(rng: np.random.Generator, hidden: bool):
    import torch
    from gpt2course.fixtures import load_fixture

    fixture_hf, fcfg, _ = load_fixture()
    fcfg = config(fcfg.vocab_size, fcfg.block_size, fcfg.n_layer, fcfg.n_head, fcfg.n_embd)
    a = config(61, 16, 2, 2, 12) if not hidden else config(89, 10, 3, 3, 18)
    b = config(37, 8, 1, 1, 8) if not hidden else config(45, 6, 2, 2, 10)
    sa, sb = random_state(rng, a), random_state(rng, b)
    cases = [
        load_case("a GPT2LMHeadModel state dict (with attn.bias buffers and lm_head.weight)", a, sa, to_hf(sa, a)),
        load_case("without buffers or lm_head.weight (as safetensors files store it)", b, sb,
                  to_hf(sb, b, buffers=False, lm_head=False)),
        load_case("the fixture checkpoint", fcfg, from_hf(fixture_hf), fixture_hf),
    ]
    L = a["n_layer"] - 1
    wrong_pos = to_hf(sa, a)
    wrong_pos["transformer.wpe.weight"] = tensor(rng, a["block_size"] // 2, a["n_embd"])
    missing = to_hf(sa, a)
    gone = f"transformer.h.{L}.ln_2.bias" if not hidden else "transformer.h.0.attn.c_proj.weight"
    del missing[gone]
    wrong_fc = to_hf(sa, a)
    fc = f"transformer.h.{L}.mlp.c_fc.weight"
    wrong_fc[fc] = torch.zeros(a["n_embd"] + 2, 4 * a["n_embd"])
    cases += [
        load_error_case("a checkpoint made for a shorter block_size", a, wrong_pos,
                        "transformer.wpe.weight", f"has shape {tuple(wrong_pos['transformer.wpe.weight'].shape)}"),
        load_error_case("a tensor missing from the state dict", a, missing, gone, "is missing"),
    ]
    if hidden:
        cases.append(load_error_case("a Conv1D weight of the wrong width", a, wrong_fc, fc,
                                     f"has shape {tuple(wrong_fc[fc].shape)}"))
    return cases
