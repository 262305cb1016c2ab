"""Checks for notebook 08: ``lm_loss``, ``configure_optimizer``, ``get_lr``, ``train_step`` and
``estimate_loss``.

The loss is compared with ``F.cross_entropy`` in float64 (and differentiated); the schedule with
its formula over whole schedules; the optimiser by its parameter groups on a GPT-shaped model;
a training step by running two steps of plain SGD on a tiny language model (protocol.tiny_lm)
and replaying them in float64 (zeroing, clipping and the step all show in the parameters); the
evaluation by what the model saw (batches of the data, eval mode, no gradients) and the mean
of those batches' losses, whatever order the learner draws random numbers in.
"""

from __future__ import annotations

import math

import numpy as np

from .core import Call, Case, CheckFailed, register, to_numpy, worst_difference
from .gpt import config, cross_entropy, gpt_shapes, loss_mistakes
from .layers import explain, ids, matches, tensor
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
    ]


def _loss_case(rng, label, B, T, V, *, scale=2.0, grad_seed=None):
    logits = tensor(rng, B, T, V, scale=scale)
    targets = ids(rng, V, B, T)
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
        return Case(label=label, args=([logits, targets], {}, grad_seed), kind=GRAD, verify=verify)
    return Case(label=label, args=(logits, targets), verify=verify)


@register("lm_loss", "mean cross-entropy over every position, large logits, T = 1, gradients")
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
               no_floor=False, cosine_from_zero=False, linear=False):
    """The schedule (and, with keywords, its known mistakes)."""
    floor = 0.0 if to_zero else min_lr
    if step < warmup:
        return max_lr * (step if zero_start else step + 1) / warmup
    if step >= max_steps and not no_floor:
        return floor
    start = 0 if cosine_from_zero else warmup
    progress = (step - start) / (max_steps - start)
    if linear:
        return floor + (1 - progress) * (max_lr - floor)
    return floor + 0.5 * (1 + math.cos(math.pi * progress)) * (max_lr - floor)


_LR_MISTAKES = [
    (dict(zero_start=True), "the learning rate is 0 at step 0, which wastes the first step: the "
                            "warm-up should give max_lr * (step + 1) / warmup_steps."),
    (dict(to_zero=True), "the cosine decays to 0; it should decay to min_lr (and stay there after "
                         "max_steps)."),
    (dict(no_floor=True), "after max_steps the learning rate should stay at min_lr; the cosine "
                          "went on (back up)."),
    (dict(cosine_from_zero=True), "the cosine should start where the warm-up ends: progress = "
                                  "(step - warmup_steps) / (max_steps - warmup_steps)."),
    (dict(linear=True), "the decay should follow a cosine, 0.5 * (1 + cos(pi * progress)), not "
                        "a straight line."),
]


def _lr_case(label, max_lr, min_lr, warmup, max_steps, steps):
    calls = [Call((int(s), max_lr, min_lr, warmup, max_steps)) for s in steps]
    expected = np.array([lr_formula(s, max_lr, min_lr, warmup, max_steps) for s in steps])

    def verify(outputs):
        got = []
        for s, value in zip(steps, outputs):
            if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:
                value = value.item()
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise CheckFailed(f"get_lr({s}, ...) should return a number, got {type(value).__name__}")
            got.append(float(value))
        got = np.array(got)
        if np.allclose(got, expected, rtol=1e-6, atol=1e-15):  # float32 arithmetic is fine
            return
        for kw, hint in _LR_MISTAKES:
            alt = np.array([lr_formula(s, max_lr, min_lr, warmup, max_steps, **kw) for s in steps])
            if np.allclose(got, alt, rtol=1e-6, atol=1e-15):
                raise CheckFailed(hint)
        i = int(np.argmax(np.abs(got - expected)))
        raise CheckFailed(f"get_lr({steps[i]}, max_lr={max_lr}, min_lr={min_lr}, warmup_steps={warmup}, "
                          f"max_steps={max_steps}) returned {got[i]:.6g}, expected {expected[i]:.6g}")
    return Case(label=label, calls=calls, verify=verify)


@register("get_lr", "linear warm-up from step 0, cosine to min_lr, min_lr after max_steps")
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

def _optimizer_case(label, cfg, weight_decay, lr, betas):
    shapes = gpt_shapes(cfg)

    def verify(report):
        if not isinstance(report, dict) or not report.get("adamw"):
            raise CheckFailed(f"it should return a torch.optim.AdamW, got {report.get('type') if isinstance(report, dict) else report!r}")
        seen = {}
        for g in report["groups"]:
            for name in g["names"]:
                if name in seen:
                    tied = " (lm_head.weight is transformer.wte.weight: tied)" if "wte" in name else ""
                    raise CheckFailed(f"{name} is listed twice{tied}: list each parameter once, "
                                      "e.g. from model.parameters() or model.named_parameters(), "
                                      "which skip repeats")
                seen[name] = g
        missing = [n for n in shapes if n not in seen]
        if missing:
            raise CheckFailed(f"these parameters are in no group, so they would never be trained: "
                              f"{', '.join(missing[:4])}{' ...' if len(missing) > 4 else ''}")
        for name, g in seen.items():
            if g["lr"] is None or not math.isclose(g["lr"], lr, rel_tol=1e-9):
                raise CheckFailed(f"the learning rate should be {lr} (the learning_rate argument), "
                                  f"got {g['lr']} for {name}'s group")
            if [b for b in g["betas"]] != [float(b) for b in betas]:
                raise CheckFailed(f"betas should be {tuple(betas)} (the betas argument), got {g['betas']}")
            decays = len(shapes[name]) >= 2
            want = weight_decay if decays else 0.0
            if g["weight_decay"] is None or not math.isclose(g["weight_decay"], want, abs_tol=1e-12):
                if decays:
                    raise CheckFailed(f"{name} ({len(shapes[name])}-D) should get weight decay "
                                      f"{weight_decay}; its group has {g['weight_decay']}")
                kind = "LayerNorm parameter" if ".ln_" in name else "bias"
                raise CheckFailed(f"{name} is a {kind} (1-D): it should get no weight decay "
                                  f"(weight_decay 0.0), its group has {g['weight_decay']}. AdamW's "
                                  "default is 0.01, so set 0.0 explicitly.")
    return Case(label=label, args=(cfg, [weight_decay, lr, tuple(betas)], {}), kind=OPTIMIZER, verify=verify)


@register("configure_optimizer", "AdamW, decay on 2-D parameters only, every parameter once, lr and betas")
def optimizer_cases(rng: np.random.Generator, hidden: bool):
    if not hidden:
        return [_optimizer_case("a 2-layer GPT, weight_decay 0.1", config(50, 8, 2, 2, 8), 0.1, 6e-4, (0.9, 0.95))]
    wd = float(np.round(rng.uniform(0.02, 0.3), 3))
    return [_optimizer_case(f"a 3-layer GPT, weight_decay {wd}", config(31, 6, 3, 1, 4), wd, 3e-4, (0.8, 0.99))]


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


def replay(state, batches, lr, grad_clip, *, zero=True, clip=True, value_clip=False):
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
            else:
                norm = torch.sqrt(sum((v ** 2).sum() for v in g.values()))
                coef = min(1.0, grad_clip / (float(norm) + 1e-6))
                g = {n: v * coef for n, v in g.items()}
                if not zero:  # clip_grad_norm_ scales the stored gradients in place
                    grads = g
        p = {n: p[n] - lr * g[n] for n in p}
    return losses, {n: v.numpy() for n, v in p.items()}


def _train_case(rng, label, V, C, B, T, lr, grad_clip, steps=2):
    state = _tiny_state(rng, V, C)
    batches = [(ids(rng, V, B, T), ids(rng, V, B, T)) for _ in range(steps)]
    losses, expected = replay(state, batches, lr, grad_clip)

    def verify(report):
        if not isinstance(report, dict):
            raise CheckFailed("its result could not be read")
        for value in report["returned"]:
            if not isinstance(value, float) or isinstance(value, bool):
                raise CheckFailed(f"train_step should return the loss as a Python float (loss.item()), "
                                  f"got {type(value).__name__}")
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
            ("the gradients are not clipped: call torch.nn.utils.clip_grad_norm_(model.parameters(), "
             "grad_clip) between backward and step.", dict(clip=False)),
            ("clip the gradients' total norm (clip_grad_norm_), not each value (clip_grad_value_).",
             dict(value_clip=True)),
            ("the gradients are neither zeroed nor clipped.", dict(zero=False, clip=False)),
        ]
        for hint, kw in mistakes:
            if grad_clip is None and "clip" in kw:
                continue
            if same(replay(state, batches, lr, grad_clip, **kw)[1]):
                raise CheckFailed(hint)
        name = max(expected, key=lambda n: float(np.abs(got[n] - expected[n]).max()))
        raise CheckFailed(f"after {len(batches)} steps the parameters differ from zero_grad, "
                          f"backward, clip, step ({name}: {worst_difference(got[name], expected[name])})")

    spec = {"vocab_size": V, "n_embd": C}
    return Case(label=label, args=(spec, state, batches, lr, grad_clip), kind=TRAIN, verify=verify)


@register("train_step", "two SGD steps replayed: zeroed gradients, norm clipping, the loss as a float")
def train_step_cases(rng: np.random.Generator, hidden: bool):
    if not hidden:
        return [
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
        losses = []
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
        raise CheckFailed(f"it returned {value:.6g}; the mean loss over the batches the model saw "
                          f"is {want:.6g}")

    spec = {"vocab_size": V, "n_embd": C}
    return Case(label=label, args=(spec, state, data, block_size, batch_size, eval_iters, seed),
                kind=EVALUATE, verify=verify)


@register("estimate_loss", "eval mode, no gradients, mode restored, the mean over eval_iters batches")
def estimate_loss_cases(rng: np.random.Generator, hidden: bool):
    if not hidden:
        return [_evaluate_case(rng, "eval_iters 5, batch 3, block_size 6", 400, 8, 300, 6, 3, 5)]
    return [_evaluate_case(rng, "eval_iters 7, batch 2, block_size 9", 500, 6, 250, 9, 2, 7),
            _evaluate_case(rng, "eval_iters 1", 300, 4, 100, 4, 5, 1)]
