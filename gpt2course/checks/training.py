"""Checks for notebook 08: ``lm_loss``, ``configure_optimizer``, ``get_lr``, ``train_step`` and
``estimate_loss``.

The loss is compared with ``F.cross_entropy`` in float64 (and differentiated); the schedule with
its formula over whole schedules; the optimiser by its parameter groups on a GPT-shaped model;
a training step by running one to three steps of plain SGD on a tiny language model
(protocol.tiny_lm) handed over in eval mode, checking the mode each forward ran in, and replaying
the steps in float64 (zeroing, clipping and the step all show in the parameters; after one step,
the norm the gradients were clipped to); the
evaluation by what the model saw (batches of the data, eval mode, no gradients) and the mean
of those batches' losses, whatever order the learner draws random numbers in.
"""

from __future__ import annotations

import math

import numpy as np

from .core import Call, Case, CheckFailed, register, to_numpy, worst_difference
from .gpt import config, cross_entropy, gpt_shapes, loss_mistakes
from .layers import edge_ids, explain, ids, matches, tensor
from .protocol import EVALUATE, GRAD, OPTIMIZER, TRAIN


# ---- lm_loss ----------------------------------------------------------------------------------

def _loss_mistakes(logits, targets):
    """The model's loss mistakes (notebook 07) and those of writing the cross-entropy by hand."""
    import torch

    def m(fn):
        return lambda: fn().numpy()

    return loss_mistakes(logits, targets) + [
        ("the loss is minus the log-probability of the target token (cross-entropy), not the "
         "probability itself.", m(lambda: -torch.softmax(logits, -1).gather(-1, targets[..., None]).mean())),
        ("log(softmax(...)) underflows to log(0) = -inf for large logits: use F.cross_entropy "
         "(or log_softmax), which computes it stably.",
         m(lambda: -torch.log(torch.softmax(logits.float(), -1)).gather(-1, targets[..., None]).double().mean())),
        ("minus the log-probability of the *target* token: did you take the most likely token "
         "instead?", m(lambda: -torch.log_softmax(logits, -1).max(-1).values.mean())),
        ("the (log-)softmax ran over dimension 1, the positions: the classes are the vocabulary, "
         "the last dimension (dim=-1).",
         m(lambda: -torch.log_softmax(logits, 1).gather(-1, targets[..., None]).mean())),
        ("the flattened logits do not line up with the flattened targets: reshape the logits "
         "(B, T, V) straight to (B * T, V), without permuting or transposing them first.",
         m(lambda: cross_entropy(logits.permute(0, 2, 1).reshape(logits.shape), targets))),
    ]


_LOSS_ERRORS = {
    "ValueError": "F.cross_entropy wants one row of logits per target: reshape the logits to "
                  "(B * T, V), with V = logits.size(-1), and the targets to (B * T,).",
    "RuntimeError": "F.cross_entropy reads dimension 1 as the classes: flatten the logits to "
                    "(B * T, V) and the targets to (B * T,) first.",
}


def _loss_case(rng, label, B, T, V, *, scale=2.0, grad_seed=None):
    logits = tensor(rng, B, T, V, scale=scale)
    targets = edge_ids(rng, V, B, T)
    lg = logits.double()
    expected = cross_entropy(lg, targets)

    def verify(output):
        import torch
        if grad_seed is not None:
            if not isinstance(output, dict):
                raise CheckFailed("its result could not be read")
            out = output["outputs"]
        else:
            out = output
        if not isinstance(out, torch.Tensor):
            raise CheckFailed(f"the loss should be a tensor (so that .backward() works), got "
                              f"{type(out).__name__}")
        if out.numel() != 1:
            raise CheckFailed(f"the loss should be one number, got shape {tuple(out.shape)}: "
                              "average over every position")
        explain(to_numpy(out).reshape(()), expected.numpy(), _loss_mistakes(lg, targets), "the loss")
        if grad_seed is not None:
            g = output["grads"][0]
            if g is None:
                raise CheckFailed("no gradient flows back to the logits: keep the loss a tensor "
                                  "computed from them (no .item(), .detach() or NumPy)")
            x = lg.clone().requires_grad_(True)
            from .protocol import weighted_sum
            weighted_sum(cross_entropy(x, targets), grad_seed).backward()
            if not matches(to_numpy(g), x.grad.numpy(), rtol=1e-3, atol=1e-5):
                raise CheckFailed(f"the gradient of the loss with respect to the logits is wrong "
                                  f"({worst_difference(to_numpy(g), x.grad.numpy())})")

    if grad_seed is not None:
        return Case(label=label, args=([logits, targets], {}, grad_seed), kind=GRAD, verify=verify,
                    errors=_LOSS_ERRORS)
    return Case(label=label, args=(logits, targets), verify=verify, errors=_LOSS_ERRORS)


_LOSS_VALUES = ["B=2, T=5, V=11", "T=1", "B=4, T=3, V=50", "B=1, T=9, V=5"]


@register("lm_loss", "mean cross-entropy over every position, large logits, T = 1, gradients",
          rules={
              "cross-entropy": _LOSS_VALUES,
              "mean over every position": _LOSS_VALUES,
              "large logits": ["large logits (a stable log-softmax is needed)", "large logits"],
              "a tensor with gradients": ["B=2, T=5, V=11", "gradients"],
              "inputs unchanged": _LOSS_VALUES,
          })
def lm_loss_cases(rng: np.random.Generator, hidden: bool):
    seed = int(rng.integers(0, 2**31))
    if not hidden:
        return [
            _loss_case(rng, "B=2, T=5, V=11", 2, 5, 11),
            _loss_case(rng, "T=1", 3, 1, 7),
            _loss_case(rng, "large logits (a stable log-softmax is needed)", 2, 4, 9, scale=400.0),
            _loss_case(rng, "gradients", 2, 3, 13, grad_seed=seed),
        ]
    return [
        _loss_case(rng, "B=4, T=3, V=50", 4, 3, 50),
        _loss_case(rng, "B=1, T=9, V=5", 1, 9, 5),
        _loss_case(rng, "large logits", 3, 2, 17, scale=900.0),
        _loss_case(rng, "gradients", 3, 4, 6, grad_seed=seed + 1),
    ]


# ---- get_lr -----------------------------------------------------------------------------------

def lr_formula(step, max_lr, min_lr, warmup, max_steps, *, zero_start=False, to_zero=False,
               no_floor=False, cosine_from_zero=False, linear=False, late=False, floor_division=False,
               bare_cosine=False, over_max_steps=False, rising=False):
    """The schedule (and, with keywords, its known mistakes)."""
    if step < warmup + (1 if late else 0):
        if late:
            return max_lr * (step + 1) / (warmup + 1)
        if floor_division:
            return max_lr * ((step + 1) // warmup)
        return max_lr * (step if zero_start else step + 1) / warmup
    if step >= max_steps and not no_floor:
        return min_lr
    floor = 0.0 if to_zero else min_lr
    start = 0 if cosine_from_zero else warmup
    progress = (step - start) / (max_steps if over_max_steps else max_steps - start)
    if rising:
        return max_lr + 0.5 * (1 + math.cos(math.pi * progress)) * (floor - max_lr)
    if linear:
        return floor + (1 - progress) * (max_lr - floor)
    if bare_cosine:
        return floor + math.cos(math.pi * progress) * (max_lr - floor)
    return floor + 0.5 * (1 + math.cos(math.pi * progress)) * (max_lr - floor)


# Each known mistake, by the part of the schedule where it shows.
_LR_MISTAKES = {
    "warm-up": [
        (dict(zero_start=True), "the learning rate is 0 at step 0, which wastes the first step: the "
                                "warm-up should give max_lr * (step + 1) / warmup_steps."),
        (dict(late=True), "the warm-up takes one step too many: it should reach max_lr at step "
                          "warmup_steps - 1, with max_lr * (step + 1) / warmup_steps for step < "
                          "warmup_steps."),
        (dict(floor_division=True), "the warm-up uses integer division (//), which gives 0 until the "
                                    "last warm-up step: divide with /."),
    ],
    "decay": [
        (dict(to_zero=True), "the cosine decays to 0; it should decay to min_lr: min_lr + 0.5 * "
                             "(1 + cos(pi * progress)) * (max_lr - min_lr)."),
        (dict(cosine_from_zero=True), "the cosine should start where the warm-up ends: progress = "
                                      "(step - warmup_steps) / (max_steps - warmup_steps)."),
        (dict(linear=True), "the decay should follow a cosine, 0.5 * (1 + cos(pi * progress)), not "
                            "a straight line."),
        (dict(over_max_steps=True), "progress should run from 0 at warmup_steps to 1 at max_steps: "
                                    "(step - warmup_steps) / (max_steps - warmup_steps)."),
        (dict(rising=True), "the cosine should go down from max_lr to min_lr: min_lr + 0.5 * "
                            "(1 + cos(pi * progress)) * (max_lr - min_lr)."),
        (dict(bare_cosine=True), "the cosine should be scaled into [0, 1] with 0.5 * (1 + cos(pi * "
                                 "progress)); cos alone goes down to -1, below min_lr."),
    ],
    "after max_steps": [
        (dict(no_floor=True), "after max_steps the learning rate should stay at min_lr; the cosine "
                              "went on (back up)."),
        (dict(to_zero=True), "after max_steps the learning rate should stay at min_lr, not 0."),
    ],
}


def _lr_case(label, max_lr, min_lr, warmup, max_steps, steps):
    calls = [Call((int(s), max_lr, min_lr, warmup, max_steps)) for s in steps]
    expected = np.array([lr_formula(s, max_lr, min_lr, warmup, max_steps) for s in steps])

    def verify(outputs):
        got = []
        for s, value in zip(steps, outputs):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                tensor = hasattr(value, "item") and getattr(value, "ndim", 1) == 0
                raise CheckFailed(f"get_lr({s}, ...) should return a Python float, got "
                                  f"{type(value).__name__}" + (": use math.cos (or .item() on the "
                                  "tensor), since an optimiser's lr should be a plain number" if tensor else ""))
            got.append(float(value))
        got = np.array(got)
        if np.allclose(got, expected, rtol=1e-6, atol=1e-15):  # float32 arithmetic is fine
            return
        parts = {"warm-up": [i for i, s in enumerate(steps) if s < warmup],
                 "decay": [i for i, s in enumerate(steps) if warmup <= s < max_steps],
                 "after max_steps": [i for i, s in enumerate(steps) if s >= max_steps]}
        for part, where in parts.items():
            where = np.array(where, dtype=int)
            if where.size == 0 or np.allclose(got[where], expected[where], rtol=1e-6, atol=1e-15):
                continue
            for kw, hint in _LR_MISTAKES[part]:
                alt = np.array([lr_formula(steps[i], max_lr, min_lr, warmup, max_steps, **kw) for i in where])
                if np.allclose(got[where], alt, rtol=1e-6, atol=1e-15):
                    raise CheckFailed(hint)
            i = int(where[np.argmax(np.abs(got[where] - expected[where]))])
            raise CheckFailed(f"in the {part} part of the schedule, get_lr({steps[i]}, max_lr={max_lr}, "
                              f"min_lr={min_lr}, warmup_steps={warmup}, max_steps={max_steps}) returned "
                              f"{got[i]:.6g}, expected {expected[i]:.6g}")
    return Case(label=label, calls=calls, verify=verify)


_SCHEDULES = ["max_lr 6e-4, min_lr 6e-5, warmup 10, max_steps 100", "max_lr 1.0, min_lr 0.1, warmup 3, max_steps 20",
              "random schedule", "one warm-up step"]


@register("get_lr", "linear warm-up from step 0, cosine to min_lr, min_lr after max_steps",
          rules={
              "warm-up": _SCHEDULES,
              "cosine decay": _SCHEDULES,
              "min_lr after max_steps": _SCHEDULES,
              "a float": _SCHEDULES,
          })
def get_lr_cases(rng: np.random.Generator, hidden: bool):
    def schedule(max_lr, min_lr, warmup, max_steps):
        extra = rng.integers(0, max_steps + 20, size=12)
        fixed = [0, 1, warmup - 1, warmup, warmup + 1, (warmup + max_steps) // 2, max_steps - 1,
                 max_steps, max_steps + 7]
        return sorted({int(s) for s in [*fixed, *extra] if s >= 0})

    if not hidden:
        return [
            _lr_case("max_lr 6e-4, min_lr 6e-5, warmup 10, max_steps 100", 6e-4, 6e-5, 10, 100,
                     schedule(6e-4, 6e-5, 10, 100)),
            _lr_case("max_lr 1.0, min_lr 0.1, warmup 3, max_steps 20", 1.0, 0.1, 3, 20,
                     schedule(1.0, 0.1, 3, 20)),
        ]
    max_lr = float(rng.uniform(1e-4, 3e-3))
    return [
        _lr_case("random schedule", max_lr, max_lr / 10, 25, 400, schedule(max_lr, max_lr / 10, 25, 400)),
        _lr_case("one warm-up step", 0.5, 0.05, 1, 9, schedule(0.5, 0.05, 1, 9)),
    ]


# ---- configure_optimizer -------------------------------------------------------------------

def _decay_mistake(shapes, decays, weight_decay):
    """The message for groups whose weight decay is wrong (``decays``: name -> the weight_decay of
    its group), naming the pattern when there is one; None when every value is right."""
    def equal(value, want):
        return value is not None and math.isclose(value, want, abs_tol=1e-12)

    matrices = [n for n in shapes if len(shapes[n]) >= 2]
    others = [n for n in shapes if len(shapes[n]) < 2]
    wrong_matrices = [n for n in matrices if not equal(decays[n], weight_decay)]
    wrong_others = [n for n in others if not equal(decays[n], 0.0)]
    if not wrong_matrices and not wrong_others:
        return None
    default = not math.isclose(weight_decay, 0.01)
    if all(equal(decays[n], 0.0) for n in matrices) and all(equal(decays[n], weight_decay) for n in others):
        return ("the two groups are swapped: weight decay goes on the parameters with two or more "
                "dimensions (p.dim() >= 2), none on the 1-D biases and LayerNorm parameters.")
    if default and all(equal(v, 0.01) for v in decays.values()):
        return ("every parameter has weight decay 0.01, AdamW's default: give the group of 2-D "
                f"parameters weight_decay={weight_decay} (the argument) and the other group 0.0.")
    if all(equal(v, 0.0) for v in decays.values()):
        return (f"no parameter gets weight decay: the parameters with two or more dimensions "
                f"(p.dim() >= 2: weight matrices and embeddings) should get weight_decay {weight_decay}.")
    if all(equal(v, weight_decay) for v in decays.values()):
        return (f"every parameter gets weight decay {weight_decay}; the biases and LayerNorm "
                "parameters (1-D) should get none: put them in a second group with weight_decay 0.0.")
    if wrong_others:
        name = wrong_others[0]
        if all(".ln_" in n and n.endswith(".weight") for n in wrong_others):
            return (f"{name}, a LayerNorm weight, gets weight decay {decays[name]}: LayerNorm weights "
                    "are 1-D too and get none. Choose by p.dim() (>= 2: decay), not by the name "
                    "'bias'.")
        kind = "LayerNorm parameter" if ".ln_" in name else "bias"
        return (f"{name} is a {kind} (1-D): it should get no weight decay (weight_decay 0.0), its "
                f"group has {decays[name]}."
                + (" AdamW's default is 0.01, so set 0.0 explicitly." if equal(decays[name], 0.01) else ""))
    embeddings = {"transformer.wte.weight", "transformer.wpe.weight"}
    if set(wrong_matrices) <= embeddings:
        return ("the embeddings (transformer.wte.weight, transformer.wpe.weight) get no weight decay, "
                "but they are 2-D matrices and should: choose by p.dim() >= 2, not by module type.")
    name = wrong_matrices[0]
    return (f"{name} ({len(shapes[name])}-D) should get weight decay {weight_decay}; its group has "
            f"{decays[name]}" + (", AdamW's default: pass weight_decay." if default and equal(decays[name], 0.01) else "."))


def _optimizer_case(label, cfg, weight_decay, lr, betas, frozen=()):
    """The optimiser built for a GPT-shaped model whose parameters named in ``frozen`` do not
    require grad (they must be in no group)."""
    shapes = {n: s for n, s in gpt_shapes(cfg).items() if n not in frozen}

    def verify(report):
        if not isinstance(report, dict) or not report.get("adamw"):
            got = report.get("type") if isinstance(report, dict) else report
            adam = (": Adam adds weight decay to the gradient (L2 regularisation, scaled by Adam's "
                    "step sizes); AdamW decays the weights directly" if got == "Adam" else "")
            raise CheckFailed(f"it should return a torch.optim.AdamW, got {got!r}{adam}")
        seen = {}
        for g in report["groups"]:
            for name in g["names"]:
                if name in seen:
                    tied = " (lm_head.weight is transformer.wte.weight: tied)" if "wte" in name else ""
                    raise CheckFailed(f"{name} is listed twice{tied}: list each parameter once, "
                                      "e.g. from model.parameters() or model.named_parameters(), "
                                      "which skip repeats")
                seen[name] = g
        kept = [n for n in frozen if n in seen]
        if kept:
            raise CheckFailed(f"{kept[0]} is frozen (requires_grad False) but in a parameter group: "
                              "give the optimiser only the trainable parameters, "
                              "[p for p in model.parameters() if p.requires_grad].")
        missing = [n for n in shapes if n not in seen]
        if missing:
            raise CheckFailed(f"these parameters are in no group, so they would never be trained: "
                              f"{', '.join(missing[:4])}{' ...' if len(missing) > 4 else ''}")
        for name, g in seen.items():
            if g["lr"] is None or not math.isclose(g["lr"], lr, rel_tol=1e-9):
                swapped = g["lr"] is not None and math.isclose(g["lr"], weight_decay, rel_tol=1e-9)
                raise CheckFailed(f"the learning rate should be {lr} (the learning_rate argument), "
                                  f"got {g['lr']} for {name}'s group"
                                  + (": that is weight_decay; the arguments come in the order (model, "
                                     "weight_decay, learning_rate, betas)" if swapped else ""))
            if [b for b in g["betas"]] != [float(b) for b in betas]:
                default = " (Adam's default: pass betas=betas)" if g["betas"] == [0.9, 0.999] else ""
                raise CheckFailed(f"betas should be {tuple(betas)} (the betas argument), got "
                                  f"{g['betas']}{default}")
        message = _decay_mistake(shapes, {n: g["weight_decay"] for n, g in seen.items()}, weight_decay)
        if message:
            raise CheckFailed(message)
    args = (cfg, [weight_decay, lr, tuple(betas)], {}) + ((list(frozen),) if frozen else ())
    return Case(label=label, args=args, kind=OPTIMIZER, verify=verify)


_OPTIMIZERS = ["a 2-layer GPT, weight_decay 0.1", "a 3-layer GPT, another weight_decay"]
_FROZEN = ["a 2-layer GPT with wpe and a LayerNorm bias frozen", "a 3-layer GPT with a weight and a gain frozen"]


@register("configure_optimizer", "AdamW, decay on 2-D parameters only, every parameter once, lr and betas",
          rules={
              "adamw": _OPTIMIZERS,
              "decay on matrices": _OPTIMIZERS,
              "no decay on the rest": _OPTIMIZERS,
              "each parameter once": _OPTIMIZERS,
              "trainable only": _FROZEN,
              "lr and betas": _OPTIMIZERS,
          })
def optimizer_cases(rng: np.random.Generator, hidden: bool):
    if not hidden:
        return [_optimizer_case("a 2-layer GPT, weight_decay 0.1", config(50, 8, 2, 2, 8), 0.1, 6e-4, (0.9, 0.95)),
                _optimizer_case(_FROZEN[0], config(50, 8, 2, 2, 8), 0.1, 6e-4, (0.9, 0.95),
                                frozen=("transformer.wpe.weight", "transformer.h.1.ln_2.bias"))]
    wd = float(np.round(rng.uniform(0.02, 0.3), 3))
    return [_optimizer_case("a 3-layer GPT, another weight_decay", config(31, 6, 3, 1, 4), wd, 3e-4, (0.8, 0.99)),
            _optimizer_case(_FROZEN[1], config(31, 6, 3, 1, 4), wd, 3e-4, (0.8, 0.99),
                            frozen=("transformer.h.0.attn.c_attn.weight", "transformer.ln_f.weight"))]


# ---- train_step --------------------------------------------------------------------------------

def _tiny_state(rng, V, C):
    return {"wte.weight": tensor(rng, V, C, scale=0.5), "ln.weight": tensor(rng, C, scale=0.2, shift=1.0),
            "ln.bias": tensor(rng, C, scale=0.2), "proj.weight": tensor(rng, C, C, scale=0.4),
            "proj.bias": tensor(rng, C, scale=0.2)}


def tiny_forward(p, idx, targets):
    """tiny_lm's loss in float64 from parameters ``p``."""
    import torch
    import torch.nn.functional as F
    C = p["wte.weight"].shape[1]
    x = F.embedding(idx, p["wte.weight"])
    x = x + torch.tanh(F.linear(F.layer_norm(x, (C,), p["ln.weight"], p["ln.bias"], 1e-5),
                                p["proj.weight"], p["proj.bias"]))
    logits = x @ p["wte.weight"].T
    return cross_entropy(logits, targets)


def replay(state, batches, lr, grad_clip, *, zero=True, clip=True, value_clip=False, per_parameter=False):
    """Two (or more) SGD steps in float64: (losses before each step, final parameters)."""
    import torch
    p = {n: v.double().clone() for n, v in state.items()}
    grads = {n: torch.zeros_like(v) for n, v in p.items()}
    losses = []
    for x, y in batches:
        q = {n: v.clone().requires_grad_(True) for n, v in p.items()}
        loss = tiny_forward(q, x, y)
        loss.backward()
        losses.append(loss.item())
        grads = {n: (grads[n] if not zero else 0) + q[n].grad for n in p}
        g = dict(grads)
        if grad_clip is not None and clip:
            if value_clip:
                g = {n: v.clamp(-grad_clip, grad_clip) for n, v in g.items()}
            elif per_parameter:
                g = {n: v * min(1.0, grad_clip / (float(v.norm()) + 1e-6)) for n, v in g.items()}
            else:
                norm = torch.sqrt(sum((v ** 2).sum() for v in g.values()))
                coef = min(1.0, grad_clip / (float(norm) + 1e-6))
                g = {n: v * coef for n, v in g.items()}
                if not zero:  # clip_grad_norm_ scales the stored gradients in place
                    grads = g
        p = {n: p[n] - lr * g[n] for n in p}
    return losses, {n: v.numpy() for n, v in p.items()}


def _gradient(state, batch):
    """The loss's gradient for each parameter at ``state`` (float64), as NumPy arrays."""
    q = {n: v.double().clone().requires_grad_(True) for n, v in state.items()}
    tiny_forward(q, *batch).backward()
    return {n: v.grad.numpy() for n, v in q.items()}


def _one_step_scale(got, start, grad, lr, grad_clip):
    """For one SGD step that moved the parameters along the gradient: a message naming the norm
    the gradients were clipped to when it is not grad_clip's; else None."""
    names = list(start)
    d = np.concatenate([(got[n] - start[n]).ravel() for n in names])
    g = np.concatenate([grad[n].ravel() for n in names])
    norm = float(np.linalg.norm(g))
    k = -float(d @ g) / (lr * norm ** 2)
    if k <= 0 or np.linalg.norm(d + lr * k * g) > 1e-3 * np.linalg.norm(d):
        return None  # not a step along the gradient
    coef = 1.0 if grad_clip is None else min(1.0, grad_clip / (norm + 1e-6))
    if abs(k - coef) <= 1e-3 * coef or abs(k - 1) <= 1e-3:
        return None  # right, or not clipped at all (named by the replayed mistakes)
    if grad_clip is None:
        return (f"grad_clip is None, so the gradients should not be clipped, but the step used them "
                f"scaled to a total norm of {k * norm:.3g}.")
    return (f"the step used gradients scaled to a total norm of {k * norm:.3g}, but grad_clip is "
            f"{grad_clip}: clip with torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip).")


_NOT_CLIPPED = ("the update used unclipped gradients: call torch.nn.utils.clip_grad_norm_(model."
                "parameters(), grad_clip) after loss.backward() and before optimizer.step() (before "
                "backward there is nothing to clip yet, and after the step has no effect).")


def _train_case(rng, label, V, C, B, T, lr, grad_clip, steps=2):
    state = _tiny_state(rng, V, C)
    batches = [(ids(rng, V, B, T), ids(rng, V, B, T)) for _ in range(steps)]
    losses, expected = replay(state, batches, lr, grad_clip)
    first = _gradient(state, batches[0]) if steps == 1 else None

    def verify(report):
        if not isinstance(report, dict):
            raise CheckFailed("its result could not be read")
        for value in report["returned"]:
            if not isinstance(value, float) or isinstance(value, bool):
                raise CheckFailed(f"train_step should return the loss as a Python float (loss.item()), "
                                  f"got {type(value).__name__}")
        if not all(report["modes"]):
            raise CheckFailed("the forward pass ran in eval mode: the model came in eval mode (as an "
                              "evaluation may leave it), and train_step should put it in training mode "
                              "with model.train() before the forward pass (dropout on).")
        check_parameters(report)
        for i, (value, want) in enumerate(zip(report["returned"], losses)):
            if not math.isclose(value, want, rel_tol=1e-4, abs_tol=1e-5):
                raise CheckFailed(f"call {i + 1} returned {value:.6g}, but the batch's loss before the "
                                  f"step is {want:.6g}: return the loss of this step's forward pass")

    def check_parameters(report):
        got = {n: to_numpy(v) for n, v in report["parameters"].items()}
        start = {n: to_numpy(v) for n, v in state.items()}
        if all(np.array_equal(got[n], start[n]) for n in start):
            raise CheckFailed("the parameters did not change: call loss.backward() and then "
                              "optimizer.step() (and zero the gradients before backward, not "
                              "between backward and step)")

        def same(params):
            return all(matches(got[n], params[n], rtol=1e-4, atol=1e-6) for n in params)

        if same(expected):
            return
        mistakes = [
            ("the gradients are not zeroed: call optimizer.zero_grad() before backward, or each "
             "step adds to the previous step's gradients.", dict(zero=False)),
            (_NOT_CLIPPED, dict(clip=False)),
            ("clip the gradients' total norm (clip_grad_norm_), not each value (clip_grad_value_).",
             dict(value_clip=True)),
            ("clip the total norm of all the gradients together (clip_grad_norm_(model.parameters(), "
             "grad_clip)), not each parameter's gradient on its own.", dict(per_parameter=True)),
            ("the gradients are neither zeroed nor clipped.", dict(zero=False, clip=False)),
        ]
        for hint, kw in mistakes:
            if grad_clip is None and kw.keys() & {"clip", "value_clip", "per_parameter"}:
                continue
            if same(replay(state, batches, lr, grad_clip, **kw)[1]):
                raise CheckFailed(hint)
        if first is not None:
            scaled = _one_step_scale(got, start, first, lr, grad_clip)
            if scaled:
                raise CheckFailed(scaled)
        name = max(expected, key=lambda n: float(np.abs(got[n] - expected[n]).max()))
        raise CheckFailed(f"after {len(batches)} step{'s' if len(batches) > 1 else ''} the parameters "
                          f"differ from zero_grad, backward, clip, step ({name}: "
                          f"{worst_difference(got[name], expected[name])})")

    spec = {"vocab_size": V, "n_embd": C}
    errors = {} if grad_clip is not None else {
        "TypeError": "grad_clip is None here, which means no clipping: clip only when grad_clip is not None."}
    return Case(label=label, args=(spec, state, batches, lr, grad_clip), kind=TRAIN, verify=verify, errors=errors)


@register("train_step", "SGD steps replayed: zeroed gradients, norm clipping, the loss as a float",
          rules={
              "training mode": ["one step, grad_clip 0.05 (clipping active)",
                                "two steps, grad_clip 0.05 (clipping active)", "two steps, grad_clip None",
                                "grad_clip large enough not to matter", "three steps, grad_clip 0.03",
                                "two steps, no clipping"],
              "one step": ["one step, grad_clip 0.05 (clipping active)", "two steps, grad_clip None",
                           "two steps, no clipping"],
              "zeroed gradients": ["two steps, grad_clip 0.05 (clipping active)", "two steps, grad_clip None",
                                   "three steps, grad_clip 0.03", "two steps, no clipping"],
              "norm clipping": ["one step, grad_clip 0.05 (clipping active)",
                                "two steps, grad_clip 0.05 (clipping active)", "two steps, grad_clip None",
                                "grad_clip large enough not to matter", "three steps, grad_clip 0.03",
                                "two steps, no clipping"],
              "the loss as a float": ["one step, grad_clip 0.05 (clipping active)",
                                      "two steps, grad_clip 0.05 (clipping active)"],
          })
def train_step_cases(rng: np.random.Generator, hidden: bool):
    if not hidden:
        return [
            _train_case(rng, "one step, grad_clip 0.05 (clipping active)", 19, 8, 2, 5, 0.5, 0.05, steps=1),
            _train_case(rng, "two steps, grad_clip 0.05 (clipping active)", 23, 8, 2, 5, 0.5, 0.05),
            _train_case(rng, "two steps, grad_clip None", 23, 8, 2, 5, 0.5, None),
            _train_case(rng, "grad_clip large enough not to matter", 17, 6, 3, 4, 0.3, 1e6),
        ]
    return [
        _train_case(rng, "three steps, grad_clip 0.03", 31, 12, 2, 6, 0.4, 0.03, steps=3),
        _train_case(rng, "two steps, no clipping", 11, 4, 4, 3, 0.8, None),
    ]


# ---- estimate_loss -----------------------------------------------------------------------------

def _evaluate_case(rng, label, V, C, n_data, block_size, batch_size, eval_iters):
    import torch
    state = _tiny_state(rng, V, C)
    data_np = rng.integers(0, V, size=n_data)
    data = torch.tensor(data_np, dtype=torch.long)
    seed = int(rng.integers(0, 2**31))
    windows = np.lib.stride_tricks.sliding_window_view(data_np, block_size)

    def verify(report):
        if not isinstance(report, dict):
            raise CheckFailed("its result could not be read")
        seen = report["seen"]
        if len(seen) != eval_iters:
            raise CheckFailed(f"with eval_iters={eval_iters} the model should run on {eval_iters} "
                              f"batches (one forward each); it ran {len(seen)} times")
        if any(s["training"] for s in seen):
            raise CheckFailed("the model was in training mode while evaluating: call model.eval() "
                              "first (dropout must be off)")
        if any(s["grad_enabled"] for s in seen) or report["grads"]:
            raise CheckFailed("gradients were being recorded: evaluate under torch.no_grad() "
                              "(it saves memory and time)")
        if not report["training_after"]:
            raise CheckFailed("the model was left in eval mode: put it back with model.train() "
                              "(or restore the mode it was in)")
        if eval_iters > 1 and all(np.array_equal(to_numpy(s["idx"]), to_numpy(seen[0]["idx"])) for s in seen):
            raise CheckFailed("every batch was the same: draw a new batch with get_batch(data, "
                              "block_size, batch_size, generator) inside the loop")
        if not report.get("generator_used"):
            raise CheckFailed("the generator it was given was not used: pass generator=generator on "
                              "to get_batch, so that evaluations can be repeated exactly")
        losses, own_inputs = [], []
        p = {n: v.double() for n, v in state.items()}
        for s in seen:
            x = to_numpy(s["idx"])
            if x.shape != (batch_size, block_size):
                raise CheckFailed(f"a batch had shape {x.shape}, expected (batch_size, block_size) = "
                                  f"{(batch_size, block_size)}")
            starts = []
            for row in x:
                match = np.flatnonzero((windows[: n_data - block_size] == row).all(axis=1))
                if match.size == 0:
                    raise CheckFailed("the model saw a batch that is not windows of `data`: draw "
                                      "batches with get_batch(data, block_size, batch_size, generator)")
                starts.append(int(match[0]))
            y = torch.tensor(np.stack([data_np[s + 1: s + 1 + block_size] for s in starts]))
            losses.append(float(tiny_forward(p, torch.tensor(x), y)))
            own_inputs.append(float(tiny_forward(p, torch.tensor(x), torch.tensor(x))))
        value = report["returned"]
        if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
            raise CheckFailed("return the mean loss as a Python float (.item()), not a tensor")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise CheckFailed(f"estimate_loss should return a float, got {type(value).__name__}")
        want = float(np.mean(losses))
        if math.isclose(value, want, rel_tol=1e-4):
            return
        if math.isclose(value, float(np.sum(losses)), rel_tol=1e-4):
            raise CheckFailed("it returned the sum of the batch losses; return their mean")
        if math.isclose(value, losses[-1], rel_tol=1e-4):
            raise CheckFailed("it returned the last batch's loss; return the mean over all batches")
        if math.isclose(value, float(np.mean(own_inputs)), rel_tol=1e-4):
            raise CheckFailed("it returned the loss of predicting each input token itself: the targets "
                              "are y, the batch shifted by one (x, y = get_batch(...); model(x, y)).")
        raise CheckFailed(f"it returned {value:.6g}; the mean loss over the batches the model saw "
                          f"is {want:.6g}")

    spec = {"vocab_size": V, "n_embd": C}
    return Case(label=label, args=(spec, state, data, block_size, batch_size, eval_iters, seed),
                kind=EVALUATE, verify=verify)


_EVALUATIONS = ["eval_iters 5, batch 3, block_size 6", "eval_iters 7, batch 2, block_size 9", "eval_iters 1"]


@register("estimate_loss", "eval mode, no gradients, mode restored, the mean over eval_iters batches",
          rules={
              "eval mode": _EVALUATIONS,
              "no gradients": _EVALUATIONS,
              "mode restored": _EVALUATIONS,
              "eval_iters batches": _EVALUATIONS,
              "the mean as a float": _EVALUATIONS,
          })
def estimate_loss_cases(rng: np.random.Generator, hidden: bool):
    if not hidden:
        return [_evaluate_case(rng, "eval_iters 5, batch 3, block_size 6", 400, 8, 300, 6, 3, 5)]
    return [_evaluate_case(rng, "eval_iters 7, batch 2, block_size 9", 500, 6, 250, 9, 2, 7),
            _evaluate_case(rng, "eval_iters 1", 300, 4, 100, 4, 5, 1)]
