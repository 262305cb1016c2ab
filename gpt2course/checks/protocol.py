"""How a check calls the learner's code: a plain call, or a module built, loaded and run.

``invoke(fn, kind, args, kwargs)`` is what both the in-notebook checks and the grading harness
call, so a learner's code meets the same protocol in both. For ``kind == "module"`` the
arguments describe a module run (see ``run_module``): construct the learner's class, load given
parameter values by GPT-2's names, run forward on inputs and, optionally, backpropagate a seeded
random weighting of the output and report the gradients. Only plain data comes back.

This file is pasted, as source, into the grading harness next to ``wire.py``, so it imports
nothing from the course.
"""

CALL = "call"
MODULE = "module"
GRAD = "grad"


class ModuleMismatch(Exception):
    """The learner's module is not what the exercise asks for (kind, parameter names or shapes)."""


def invoke(fn, kind, args, kwargs):
    """Call ``fn`` the way ``kind`` says and return what the checks compare."""
    if kind == CALL:
        return fn(*args, **kwargs)
    if kind == MODULE:
        return run_module(fn, *args, **kwargs)
    if kind == GRAD:
        return run_with_grad(fn, *args, **kwargs)
    raise ValueError(f"unknown call kind {kind!r}")


def weighted_sum(out, grad_seed, index=0):
    """``(out * g).sum()`` for a standard-normal ``g`` seeded with ``grad_seed + index``: the
    scalar whose gradients the checks compare (the grader's oracles use it too)."""
    import torch
    g = torch.randn(tuple(out.shape), generator=torch.Generator().manual_seed(grad_seed + index))
    return (out * g.to(out.dtype)).sum()


def _requiring_grad(args):
    """Copies of the floating-point tensors in ``args`` that require grad; other values as they are."""
    import torch
    return [a.detach().clone().requires_grad_(True)
            if isinstance(a, torch.Tensor) and a.is_floating_point() else a for a in args]


def _grads(args):
    import torch
    return [a.grad if isinstance(a, torch.Tensor) and a.requires_grad else None for a in args]


def run_with_grad(fn, args, kwargs, grad_seed):
    """Call ``fn(*args, **kwargs)`` with its floating-point tensor arguments requiring grad, and
    backpropagate a seeded random weighting of every tensor it returns (one tensor or a tuple).
    Returns {"outputs": what fn returned, "grads": [grad of each argument or None]}."""
    import torch

    args = _requiring_grad(args)
    out = fn(*args, **kwargs)
    outs = out if isinstance(out, tuple) else (out,)
    terms = [weighted_sum(o, grad_seed, i) for i, o in enumerate(outs)
             if isinstance(o, torch.Tensor) and o.requires_grad]
    if not terms:
        raise ModuleMismatch(
            "no gradient can flow through it: its outputs are cut off from the inputs "
            "(torch.no_grad(), .detach(), .data, .item() or NumPy inside?)")
    sum(terms).backward()
    return {"outputs": out, "grads": _grads(args)}


def _shape(t):
    return "(" + ", ".join(str(n) for n in t.shape) + ")"


def _names(names):
    return ", ".join(f"`{n}`" for n in names)


def _check_parameters(module, shapes):
    """Raise ModuleMismatch unless the module's parameters have exactly these names and shapes
    (``shapes``: {name: shape}; buffers may be anything)."""
    own = dict(module.named_parameters())
    own.update({n: b for n, b in module.named_buffers() if n in shapes})
    missing = [n for n in shapes if n not in own]
    extra = [n for n in own if n not in shapes]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"it has no {_names(missing)}")
        if extra:
            parts.append(f"it has parameters the exercise does not ask for: {_names(extra)}")
        raise ModuleMismatch(
            "its parameters do not have GPT-2's names: " + "; ".join(parts) + ". Expected "
            f"exactly {_names(shapes)} (attribute names matter: they are how GPT-2's weights "
            "load; a tensor that should be learned must be an nn.Parameter or inside an nn.Linear, "
            "nn.Embedding, ...).")
    bad = [n for n, shape in shapes.items() if tuple(own[n].shape) != tuple(shape)]
    if bad:
        wrong = [f"`{n}` is {_shape(own[n])}, expected ({', '.join(str(d) for d in shapes[n])})" for n in bad]
        swapped = any(own[n].dim() == 2 and tuple(own[n].shape) == tuple(shapes[n])[::-1] for n in bad)
        raise ModuleMismatch("parameter shapes differ: " + "; ".join(wrong) + (
            " (nn.Linear(in, out) stores its weight as (out, in))." if swapped else "."))


def _load(module, state):
    import torch

    _check_parameters(module, {n: tuple(v.shape) for n, v in state.items()})
    own = module.state_dict()
    with torch.no_grad():
        for n, value in state.items():
            own[n].copy_(value)


def run_module(cls, init_args, init_kwargs, state, inputs, grad_seed=None, init_seed=0, expect=None):
    """Build ``cls(*init_args, **init_kwargs)`` (global RNG seeded with ``init_seed``), load
    ``state`` ({name: tensor}, every parameter by name) unless it is None, and call the module
    on each ``(args, kwargs)`` of ``inputs`` in eval mode.

    With ``grad_seed``, floating-point inputs require grad and ``(out * g).sum()`` is
    backpropagated for a seeded standard-normal ``g``. With ``expect`` ({name: shape}), the
    parameters' names and shapes are checked before anything runs. Returns {"parameters":
    {name: shape}, "initial": {name: value} (only without ``state``), "outputs": [...],
    "grads": [{"inputs": [...], "parameters": {name: grad}}] or None}.
    """
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(init_seed)
        module = cls(*init_args, **init_kwargs)
    if not isinstance(module, torch.nn.Module):
        raise ModuleMismatch(f"it should be a torch.nn.Module (class ...(nn.Module), calling "
                             f"super().__init__() first), but building it gave a {type(module).__name__}")
    shapes = {n: list(p.shape) for n, p in module.named_parameters()}
    if expect is not None:
        _check_parameters(module, expect)
    initial = None
    if state is not None:
        _load(module, state)
    else:
        initial = {n: p.detach().clone() for n, p in module.named_parameters()}
    module.eval()
    outputs, grads = [], []
    for args, kwargs in inputs:
        if grad_seed is None:
            outputs.append(module(*args, **kwargs))
            continue
        args = _requiring_grad(args)
        module.zero_grad(set_to_none=True)
        out = module(*args, **kwargs)
        outputs.append(out)
        if not isinstance(out, torch.Tensor):
            raise ModuleMismatch(f"forward should return a tensor, got {type(out).__name__}")
        if not out.requires_grad:
            raise ModuleMismatch(
                "no gradient can flow through forward: its output is cut off from the parameters "
                "(torch.no_grad(), .detach(), .data, .item() or NumPy inside forward?)")
        weighted_sum(out, grad_seed).backward()
        grads.append({"inputs": _grads(args),
                      "parameters": {n: p.grad for n, p in module.named_parameters()}})
    return {"parameters": shapes, "initial": initial, "outputs": outputs,
            "grads": grads if grad_seed is not None else None}
