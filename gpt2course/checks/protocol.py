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
LOAD = "load"      # fn(model, state_dict) on a GPT-shaped model built here (see run_load)
RAISES = "raises"  # another kind's call that should raise: report what it raised
OPTIMIZER = "optimizer"  # fn(model, ...) builds an optimiser for a GPT-shaped model
TRAIN = "train"          # fn(model, x, y, optimizer, grad_clip) on a tiny language model
EVALUATE = "evaluate"    # fn(model, data, ...) evaluates a tiny language model
CACHE = "cache"          # fn(model, idx, cache) chunk after chunk on a GPT built here (run_cache)
GENERATE = "generate"    # fn(model, idx, max_new_tokens, ...) on a GPT built here (run_generate)
SAMPLE = "sample"        # fn(logits, ...) on rows repeated many times here (run_sample)
AUTOCAST = "autocast"    # fn(device[, capability]) with a stand-in GPU in torch.cuda (run_autocast)
SAVE_CHECKPOINT = "save_checkpoint"  # fn(path, model, optimizer, step[, scaler]); the file's bytes back
LOAD_CHECKPOINT = "load_checkpoint"  # fn(path, model, optimizer[, scaler]) on a file written here
ON_META = "on_meta"      # a module built, moved to the meta device and run there (run_on_meta)
CACHE_ON_META = "cache_on_meta"  # fn(model, idx, cache) on a GPT built here, on the meta device
SAMPLE_ON_META = "sample_on_meta"  # fn(logits, ...) with logits on the meta device


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
    if kind == LOAD:
        return run_load(fn, *args, **kwargs)
    if kind == RAISES:
        return run_expecting_error(fn, *args, **kwargs)
    if kind == OPTIMIZER:
        return run_optimizer(fn, *args, **kwargs)
    if kind == TRAIN:
        return run_train(fn, *args, **kwargs)
    if kind == EVALUATE:
        return run_evaluate(fn, *args, **kwargs)
    if kind == CACHE:
        return run_cache(fn, *args, **kwargs)
    if kind == GENERATE:
        return run_generate(fn, *args, **kwargs)
    if kind == SAMPLE:
        return run_sample(fn, *args, **kwargs)
    if kind == AUTOCAST:
        return run_autocast(fn, *args, **kwargs)
    if kind == SAVE_CHECKPOINT:
        return run_save_checkpoint(fn, *args, **kwargs)
    if kind == LOAD_CHECKPOINT:
        return run_load_checkpoint(fn, *args, **kwargs)
    if kind == ON_META:
        return run_on_meta(fn, *args, **kwargs)
    if kind == CACHE_ON_META:
        return run_cache_on_meta(fn, *args, **kwargs)
    if kind == SAMPLE_ON_META:
        return run_sample_on_meta(fn, *args, **kwargs)
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
    args = _requiring_grad(args)
    out = fn(*args, **kwargs)
    _weighted_outputs(out, grad_seed, cut_off=(
        "no gradient can flow through it: its outputs are cut off from the inputs "
        "(torch.no_grad(), .detach(), .data, .item() or NumPy inside?)")).backward()
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
            "nn.Embedding, ...)." + (
                " The output layer shares the token embedding's matrix (weight tying): "
                "self.lm_head.weight = self.transformer.wte.weight makes them one parameter."
                if "lm_head.weight" in extra else ""))
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


def make_config(fields):
    """A dataclass instance named GPTConfig with ``fields`` ({name: value}) as its attributes."""
    import dataclasses
    cls = dataclasses.make_dataclass("GPTConfig", [(k, type(v)) for k, v in fields.items()])
    return cls(**fields)


def _weighted_outputs(out, grad_seed, cut_off):
    """The scalar to backpropagate for what was returned (one tensor, or a tuple such as
    (logits, loss)): a seeded random weighting of every tensor in it that carries a gradient.
    ModuleMismatch(``cut_off``) when none does."""
    import torch
    outs = out if isinstance(out, tuple) else (out,)
    terms = [weighted_sum(o, grad_seed, i) for i, o in enumerate(outs)
             if isinstance(o, torch.Tensor) and o.requires_grad]
    if not terms:
        raise ModuleMismatch(cut_off)
    return sum(terms)


def run_module(cls, init_args, init_kwargs, state, inputs, grad_seed=None, init_seed=0, expect=None,
               config=None, optional=None):
    """Build ``cls(*init_args, **init_kwargs)`` (global RNG seeded with ``init_seed``), load
    ``state`` ({name: tensor}, every parameter by name) unless it is None, and call the module
    on each ``(args, kwargs)`` of ``inputs`` in eval mode.

    With ``grad_seed``, floating-point inputs require grad and ``(out * g).sum()`` is
    backpropagated for a seeded standard-normal ``g``. With ``expect`` ({name: shape}), the
    parameters' names and shapes are checked before anything runs. With ``config`` ({name:
    value}), the module is built as ``cls(GPTConfig(**config), *init_args)``. With ``optional``
    ({name: value}), each is passed as a keyword argument too where the constructor names it (a
    module without dropout need not take a ``dropout``). Returns {"parameters":
    {name: shape}, "initial": {name: value} (only without ``state``), "outputs": [...],
    "grads": [{"inputs": [...], "parameters": {name: grad}}] or None}.
    """
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(init_seed)
        if config is not None:
            init_args = [make_config(config), *init_args]
        if optional:
            init_kwargs = {**init_kwargs, **_named_by(cls, optional)}
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
        if not any(isinstance(o, torch.Tensor) for o in (out if isinstance(out, tuple) else (out,))):
            raise ModuleMismatch(f"forward should return a tensor, got {type(out).__name__}")
        _weighted_outputs(out, grad_seed, cut_off=(
            "no gradient can flow through forward: its output is cut off from the parameters "
            "(torch.no_grad(), .detach(), .data, .item() or NumPy inside forward?)")).backward()
        grads.append({"inputs": _grads(args),
                      "parameters": {n: p.grad for n, p in module.named_parameters()}})
    report = {"parameters": shapes, "initial": initial, "outputs": outputs,
              "grads": grads if grad_seed is not None else None}
    if config is not None:  # what the module kept of its config (generate reads model.config)
        kept = getattr(module, "config", None)
        report["config"] = {k: getattr(kept, k, None) for k in config
                            if isinstance(getattr(kept, k, None), (int, float))}
    return report


def _named_by(cls, optional):
    """The items of ``optional`` whose names are parameters of ``cls``'s constructor."""
    import inspect
    try:
        named = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return {}
    return {k: v for k, v in optional.items()
            if k in named and named[k].kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                                inspect.Parameter.KEYWORD_ONLY)}


class MixedDevices(Exception):
    """A torch call inside forward mixed a tensor on the model's device with one elsewhere."""


def _tensors(value):
    """Every tensor in ``value`` (nested lists, tuples and dicts)."""
    import torch

    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _tensors(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _tensors(v)


def _to_meta(value):
    import torch

    if isinstance(value, torch.Tensor):
        return value.to("meta")
    if isinstance(value, (list, tuple)):
        return type(value)(_to_meta(v) for v in value)
    return value


def _device_watch():
    """A torch function mode that raises MixedDevices when a call mixes a meta tensor with a CPU
    one (not a 0-dimensional scalar, which torch allows next to a GPU tensor too)."""
    from torch.overrides import TorchFunctionMode

    class Watch(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            found = {t.device.type for t in _tensors((args, kwargs)) if t.dim() > 0}
            if "meta" in found and len(found) > 1:
                name = getattr(func, "__name__", str(func))
                raise MixedDevices(f"{name} got a tensor on another device (where the inputs are) and one on the CPU: a "
                                   "tensor made inside your code (torch.arange, torch.ones, torch.tril, ...) "
                                   "without device=... stays on the CPU; make it on the input's device "
                                   "(device=x.device)")
            return func(*args, **kwargs)
    return Watch()


def _devices_and_shapes(out):
    return [{"device": t.device.type, "shape": list(t.shape)} for t in _tensors(out)]


def run_on_meta(cls, init_args, init_kwargs, inputs, config=None):
    """Build ``cls`` (as run_module does), move it to the meta device (tensors with a shape and
    no data: a stand-in for a GPU that every machine has) and call it on each ``(args, kwargs)``
    of ``inputs``, their tensors moved there too. A torch call that mixes a meta tensor with a
    CPU one (not a 0-dimensional scalar, which torch allows next to a GPU tensor too) raises
    MixedDevices: forward made a tensor without ``device=``, and on a GPU it would fail.
    Returns, per input, every output tensor's device type and shape."""
    import torch

    if config is not None:
        init_args = [make_config(config), *init_args]
    module = cls(*init_args, **init_kwargs)
    if not isinstance(module, torch.nn.Module):
        raise ModuleMismatch(f"it should be a torch.nn.Module, but building it gave a {type(module).__name__}")
    module = module.to("meta").eval()
    report = []
    for args, kwargs in inputs:
        with _device_watch():
            out = module(*_to_meta(list(args)), **{k: _to_meta(v) for k, v in kwargs.items()})
        report.append(_devices_and_shapes(out))
    return report


def run_cache_on_meta(fn, config, chunks):
    """Call ``fn(model, idx, cache)`` for each idx of ``chunks`` (moved to the meta device) on
    ``gpt_model(config)`` moved there, with one cache list, under the same watch as run_on_meta:
    positions or a mask made without ``device=`` raise MixedDevices. Returns, per call, every
    output tensor's device type and shape."""
    import torch

    model = gpt_model(config).to("meta").eval()
    cache = []
    report = []
    with torch.no_grad():
        for idx in chunks:
            with _device_watch():
                out = fn(model, _to_meta(idx), cache)
            report.append(_devices_and_shapes(out))
    return report


def run_sample_on_meta(fn, rows, options):
    """Call ``fn(logits, **options)`` on ``rows`` moved to the meta device, under the same watch
    as run_on_meta: a threshold or a fill made without ``device=`` raises MixedDevices. Returns
    a one-run list: the output tensors' device types and shapes."""
    with _device_watch():
        out = fn(_to_meta(rows), **options)
    return [_devices_and_shapes(out)]


def gpt_skeleton(config):
    """An nn.Module with exactly GPT-2's parameter names and shapes for ``config`` ({name: value})
    and ``lm_head`` tied to ``transformer.wte``, every value NaN (so what was not loaded shows),
    and ``.config``. It has no forward: it is what a weight loader fills."""
    import torch
    from torch import nn

    cfg = make_config(config)
    n = cfg.n_embd

    def part(**children):
        module = nn.Module()
        for name, child in children.items():
            setattr(module, name, child)
        return module

    def block():
        return part(ln_1=nn.LayerNorm(n), attn=part(c_attn=nn.Linear(n, 3 * n), c_proj=nn.Linear(n, n)),
                    ln_2=nn.LayerNorm(n), mlp=part(c_fc=nn.Linear(n, 4 * n), c_proj=nn.Linear(4 * n, n)))

    model = part(transformer=nn.ModuleDict(dict(
        wte=nn.Embedding(cfg.vocab_size, n), wpe=nn.Embedding(cfg.block_size, n),
        h=nn.ModuleList([block() for _ in range(cfg.n_layer)]), ln_f=nn.LayerNorm(n))),
        lm_head=nn.Linear(n, cfg.vocab_size, bias=False))
    model.lm_head.weight = model.transformer.wte.weight
    model.config = cfg
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(float("nan"))
    return model


def run_load(fn, config, state_dict):
    """Call ``fn(model, state_dict)`` on ``gpt_skeleton(config)``. Returns {"parameters":
    {name: value after the call}, "tied": whether lm_head.weight is still wte's tensor,
    "returned_model": whether fn returned the model it was given}."""
    model = gpt_skeleton(config)
    returned = fn(model, state_dict)
    lm_head = getattr(model, "lm_head", None)
    tied = lm_head is not None and getattr(lm_head, "weight", None) is model.transformer.wte.weight
    return {"parameters": {n: p.detach().clone() for n, p in model.named_parameters()},
            "tied": bool(tied), "returned_model": returned is model}


def run_expecting_error(fn, kind, args, kwargs):
    """Run ``invoke(fn, kind, args, kwargs)``, which should raise. Returns {"raised": None} when
    it did not, else {"raised": [exception type name, message]}."""
    try:
        invoke(fn, kind, args, kwargs)
    except Exception as exc:  # noqa: BLE001 - what was raised is the result
        return {"raised": [type(exc).__name__, str(exc)[:500]]}
    return {"raised": None}


def tiny_lm(vocab_size, n_embd):
    """A small language model with GPT's interface, forward(idx, targets=None) -> (logits, loss):
    a token embedding, a LayerNorm and a linear layer on a residual branch, and an output layer
    tied to the embedding. It records what every forward call saw in ``.seen``."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    class TinyLM(nn.Module):
        def __init__(self):
            super().__init__()
            self.wte = nn.Embedding(vocab_size, n_embd)
            self.ln = nn.LayerNorm(n_embd)
            self.proj = nn.Linear(n_embd, n_embd)
            self.lm_head = nn.Linear(n_embd, vocab_size, bias=False)
            self.lm_head.weight = self.wte.weight
            self.seen = []

        def forward(self, idx, targets=None):
            self.seen.append({"idx": idx.detach().clone(), "training": self.training,
                              "grad_enabled": torch.is_grad_enabled()})
            x = self.wte(idx)
            x = x + torch.tanh(self.proj(self.ln(x)))
            logits = self.lm_head(x)
            loss = None
            if targets is not None:
                loss = F.cross_entropy(logits.reshape(-1, vocab_size), targets.reshape(-1))
            return logits, loss

    return TinyLM()


def _tiny(spec, state):
    model = tiny_lm(spec["vocab_size"], spec["n_embd"])
    _load(model, state)
    return model


def run_optimizer(fn, config, args, kwargs, frozen=()):
    """``fn(gpt_skeleton(config), *args, **kwargs)`` should build an optimiser; the parameters
    named in ``frozen`` do not require grad. Returns its type and parameter groups: {"type",
    "adamw", "groups": [{"names", "weight_decay", "lr", "betas"}]}."""
    import torch

    model = gpt_skeleton(config)
    own = dict(model.named_parameters())
    for name in frozen:
        own[name].requires_grad_(False)
    opt = fn(model, *args, **kwargs)
    names = {id(p): n for n, p in model.named_parameters()}
    groups = []
    for g in getattr(opt, "param_groups", None) or []:
        def number(v):
            return float(v) if isinstance(v, (int, float, torch.Tensor)) else None
        groups.append({"names": [names.get(id(p), "?") for p in g.get("params", [])],
                       "weight_decay": number(g.get("weight_decay")), "lr": number(g.get("lr")),
                       "betas": [number(b) for b in g.get("betas", ())]})
    return {"type": type(opt).__name__, "adamw": isinstance(opt, torch.optim.AdamW), "groups": groups}


def run_train(fn, spec, state, batches, lr, grad_clip):
    """Call ``fn(model, x, y, optimizer, grad_clip)`` for each (x, y) of ``batches`` on a tiny_lm
    loaded with ``state``, left in eval mode (as an evaluation may leave it), and one plain SGD
    optimiser (learning rate ``lr``). Returns {"returned": [what each call returned],
    "parameters": {name: value at the end}, "calls": forward calls, "modes": whether each forward
    call ran in training mode}."""
    import torch

    model = _tiny(spec, state).eval()
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    returned = [fn(model, x, y, optimizer, grad_clip) for x, y in batches]
    return {"returned": returned, "calls": len(model.seen), "modes": [bool(s["training"]) for s in model.seen],
            "parameters": {n: p.detach().clone() for n, p in model.named_parameters()}}


def run_evaluate(fn, spec, state, data, block_size, batch_size, eval_iters, seed):
    """Call ``fn(model, data, block_size, batch_size, eval_iters, generator=...)`` on a tiny_lm in
    training mode. Returns {"returned", "seen": [{"idx", "training", "grad_enabled"}],
    "training_after", "grads": whether any parameter got a gradient, "generator_used"}."""
    import torch

    model = _tiny(spec, state)
    model.train()
    generator = torch.Generator().manual_seed(seed)
    before = generator.get_state()
    value = fn(model, data, block_size, batch_size, eval_iters, generator=generator)
    return {"returned": value, "seen": model.seen, "training_after": model.training,
            "grads": any(p.grad is not None for p in model.parameters()),
            "generator_used": not torch.equal(generator.get_state(), before)}


def gpt_model(config):
    """A GPT written here, with GPT-2's module tree and parameter names for ``config`` ({name:
    value}): what notebook 09's functions run on instead of a model the learner's code could
    have patched. ``forward(idx, targets=None) -> (logits, loss)`` refuses more than block_size
    tokens; blocks have ``ln_1``, ``attn`` (``c_attn``, ``c_proj``, ``n_head``), ``ln_2``, ``mlp``
    (``c_fc``, ``c_proj``), all callable. ``.calls`` records every call of ``transformer.wte``,
    each block's ``ln_1``, ``ln_f`` and ``lm_head``: [module name, sequence length, training,
    gradients enabled]."""
    import math

    import torch
    import torch.nn.functional as F
    from torch import nn

    cfg = make_config(config)
    n, n_head = cfg.n_embd, cfg.n_head

    class Attention(nn.Module):
        def __init__(self):
            super().__init__()
            self.n_head, self.n_embd = n_head, n
            self.c_attn = nn.Linear(n, 3 * n)
            self.c_proj = nn.Linear(n, n)

        def forward(self, x):
            B, T, C = x.shape
            q, k, v = (t.reshape(B, T, n_head, C // n_head).transpose(1, 2)
                       for t in self.c_attn(x).split(C, dim=-1))
            scores = q @ k.transpose(-2, -1) / math.sqrt(C // n_head)
            future = torch.ones(T, T, dtype=torch.bool, device=x.device).triu(1)
            y = torch.softmax(scores.masked_fill(future, float("-inf")), dim=-1) @ v
            return self.c_proj(y.transpose(1, 2).reshape(B, T, C))

    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.c_fc = nn.Linear(n, 4 * n)
            self.c_proj = nn.Linear(4 * n, n)

        def forward(self, x):
            return self.c_proj(F.gelu(self.c_fc(x), approximate="tanh"))

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln_1, self.attn = nn.LayerNorm(n), Attention()
            self.ln_2, self.mlp = nn.LayerNorm(n), MLP()

        def forward(self, x):
            x = x + self.attn(self.ln_1(x))
            return x + self.mlp(self.ln_2(x))

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.config = cfg
            self.transformer = nn.ModuleDict(dict(
                wte=nn.Embedding(cfg.vocab_size, n), wpe=nn.Embedding(cfg.block_size, n),
                h=nn.ModuleList([Block() for _ in range(cfg.n_layer)]), ln_f=nn.LayerNorm(n)))
            self.lm_head = nn.Linear(n, cfg.vocab_size, bias=False)
            self.lm_head.weight = self.transformer.wte.weight

        def forward(self, idx, targets=None):
            T = idx.size(1)
            if T > cfg.block_size:
                raise ValueError(f"the model got {T} tokens, but its block_size is {cfg.block_size}: "
                                 "it has no position embedding beyond that")
            x = self.transformer.wte(idx) + self.transformer.wpe(torch.arange(T, device=idx.device))
            for block in self.transformer.h:
                x = block(x)
            logits = self.lm_head(self.transformer.ln_f(x))
            loss = None
            if targets is not None:
                loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1))
            return logits, loss

    model = Model()
    model.calls = []

    def recorder(name):
        def hook(module, inputs, output):
            x = inputs[0] if inputs else None
            length = int(x.shape[1]) if isinstance(x, torch.Tensor) and x.dim() >= 2 else -1
            model.calls.append([name, length, bool(module.training), bool(torch.is_grad_enabled())])
        return hook

    watched = {"wte": model.transformer.wte, "ln_f": model.transformer.ln_f, "lm_head": model.lm_head}
    watched.update({f"h.{i}.ln_1": b.ln_1 for i, b in enumerate(model.transformer.h)})
    for name, module in watched.items():
        module.register_forward_hook(recorder(name))
    return model


def _gpt(config, state):
    model = gpt_model(config)
    _load(model, state)
    return model


def run_cache(fn, config, state, chunks):
    """Call ``fn(model, idx, cache)`` for each idx of ``chunks`` on ``gpt_model(config)`` loaded
    with ``state``, in eval mode without gradients, with one cache list (empty at first).
    Returns {"outputs": [what each call returned], "cache": the list's entries at the end,
    each a list of what the entry holds (or its type name)}."""
    import torch

    model = _gpt(config, state).eval()
    cache = []
    with torch.no_grad():
        outputs = [fn(model, idx, cache) for idx in chunks]

    def entry(e):
        if isinstance(e, (tuple, list)):
            return [t if isinstance(t, torch.Tensor) else type(t).__name__ for t in e]
        return type(e).__name__
    return {"outputs": outputs, "cache": [entry(e) for e in cache] if isinstance(cache, list) else None}


def run_generate(fn, config, state, idx, max_new_tokens, options, generator, training):
    """Call ``fn(model, idx, max_new_tokens, **options, generator=generator)`` (no generator
    argument when it is None) on ``gpt_model(config)`` loaded with ``state``, in training mode
    if ``training``. Returns {"returned", "calls": the model's record of module calls,
    "training_after"}."""
    model = _gpt(config, state)
    model.train(bool(training))
    extra = {} if generator is None else {"generator": generator}
    out = fn(model, idx, max_new_tokens, **options, **extra)
    return {"returned": out, "calls": model.calls, "training_after": model.training}


def run_sample(fn, rows, repeats, options, generator):
    """Call ``fn(logits, **options, generator=generator)`` on ``logits = rows.repeat(repeats, 1)``
    (row r of the batch is row r % len(rows) of ``rows``): many draws from a few distributions
    without sending them all. Returns {"returned": what fn returned, "changed": whether fn
    changed the logits it was given}."""
    logits = rows.repeat(int(repeats), 1)
    before = logits.clone()
    extra = {} if generator is None else {"generator": generator}
    out = fn(logits, **options, **extra)
    changed = logits.shape != before.shape or not bool((logits == before).all())
    return {"returned": out, "changed": changed}


def _asked(device):
    """What a stand-in torch.cuda function was asked about, as plain data."""
    import torch
    if device is None:
        return None
    if isinstance(device, torch.device):
        return ["device", str(device)]
    if isinstance(device, str):
        return ["str", device]
    if isinstance(device, int) and not isinstance(device, bool):
        return ["int", int(device)]
    return ["other", type(device).__name__]


def _plain_or_type(value):
    """``value`` if it is None, a number or a string, else [\"not plain\", its type, its repr]."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    try:
        text = repr(value)[:120]
    except Exception:  # noqa: BLE001 - a repr that fails is only a description
        text = "?"
    return ["not plain", type(value).__name__, text]


def shown_plain(value) -> str:
    """How a value that went through ``_plain_or_type`` reads in a message."""
    if value is None or isinstance(value, str):
        return str(value)
    if isinstance(value, list) and value[:1] == ["not plain"]:
        return f"a {value[1]} ({value[2]})"
    return repr(value)


def run_autocast(fn, device, capability, gpus):
    """Call ``fn(device)`` (``fn(device, capability=capability)`` when ``capability`` is not
    None) while torch.cuda stands for a machine whose GPUs have the compute capabilities ``gpus``
    ([major, minor] per device index; the current device is 0): get_device_capability and
    get_device_properties answer from ``gpus`` and record what they were asked about,
    is_bf16_supported says True (as PyTorch does on a T4, which only emulates bfloat16),
    is_available True, device_count len(gpus) (get_device_name answers too). ``device`` is ["str", text] or ["device",
    text] (a torch.device). The real functions are back in place afterwards.
    Returns {"returned": str(dtype), None, or [\"not plain\", type, repr], "asked": [what the
    capability functions were asked about], "bf16_asked": whether is_bf16_supported was called}."""
    import types

    import torch

    cuda = torch.cuda
    asked, bf16 = [], []
    device = torch.device(device[1]) if device[0] == "device" else str(device[1])

    def capability_of(device=None):
        asked.append(_asked(device))
        index = device
        if device is None:
            index = 0
        elif not isinstance(device, int):
            d = torch.device(device)
            if d.type != "cuda":
                raise ValueError(f"Expected a cuda device, but got: {d}")
            index = 0 if d.index is None else d.index
        if not 0 <= index < len(gpus):
            raise AssertionError(f"Invalid device id {index}: this machine has {len(gpus)} GPUs")
        return tuple(int(n) for n in gpus[index])

    def properties(device=None):
        major, minor = capability_of(device)
        return types.SimpleNamespace(major=major, minor=minor, name="a GPU standing in for the checks",
                                     total_memory=16 * 2**30, multi_processor_count=40)

    def bf16_supported(*args, **kwargs):
        bf16.append(True)
        return True

    stubs = {"get_device_capability": capability_of, "get_device_properties": properties,
             "is_bf16_supported": bf16_supported, "is_available": lambda: True,
             "device_count": lambda: len(gpus), "current_device": lambda: 0,
             "get_device_name": lambda device=None: "a GPU standing in for the checks"}
    saved = {name: getattr(cuda, name) for name in stubs}
    try:
        for name, stub in stubs.items():
            setattr(cuda, name, stub)
        out = fn(device) if capability is None else fn(device, capability=tuple(capability))
    finally:
        for name, real in saved.items():
            setattr(cuda, name, real)
    returned = str(out) if isinstance(out, torch.dtype) else _plain_or_type(out)
    return {"returned": returned, "asked": asked, "bf16_asked": bool(bf16)}


def checkpoint_model(config, tied, state=None, init_seed=0):
    """``gpt_model(config)`` for the checkpoint checks (initialised with the global RNG seeded with
    ``init_seed``, which is restored afterwards), its ``lm_head`` a parameter of its own unless
    ``tied``, then set to ``state`` ({name: tensor}) when given."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(init_seed)
        model = gpt_model(config)
        if not tied:
            model.lm_head.weight = torch.nn.Parameter(torch.randn(model.lm_head.weight.shape) * 0.02)
    if state is not None:
        own = dict(model.named_parameters())
        with torch.no_grad():
            for name, value in state.items():
                own[name].copy_(value)
    return model


def checkpoint_optimizer(model, settings):
    """AdamW as notebook 08's configure_optimizer builds it (weight decay on the 2-D parameters,
    none on the others), single-tensor code path: the same arithmetic in every process."""
    import torch

    params = [p for _, p in model.named_parameters()]
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": settings["weight_decay"]},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=settings["lr"], betas=tuple(settings["betas"]), eps=1e-8,
                             foreach=False, fused=False)


def set_optimizer_state(optimizer, state):
    """Give ``optimizer`` the per-parameter ``state`` ({index: {key: tensor}}, the indices of
    optimizer.state_dict()["state"])."""
    full = optimizer.state_dict()
    full["state"] = {int(i): {k: v.clone() for k, v in s.items()} for i, s in state.items()}
    optimizer.load_state_dict(full)


def checkpoint_state(model, optimizer, scaler=None):
    """{"model": state_dict copies, "optimizer": {index: {key: value}}, "scaler": its state or None}."""
    import torch

    def copy(v):
        return v.detach().clone() if isinstance(v, torch.Tensor) else _plain_or_type(v)
    opt = optimizer.state_dict()["state"]
    return {"model": {n: v.detach().clone() for n, v in model.state_dict().items()},
            "optimizer": {int(i) if isinstance(i, int) else str(i): {str(k): copy(v) for k, v in s.items()}
                          for i, s in opt.items()},
            "scaler": None if scaler is None else scaler.state_dict()}


def checkpoint_step(model, optimizer, x, y):
    """One training step (zero_grad, forward, backward, AdamW step); the loss as a float."""
    optimizer.zero_grad(set_to_none=True)
    _, loss = model(x, y)
    loss.backward()
    optimizer.step()
    return float(loss.item())


def _grad_scaler(state):
    import torch
    scaler = torch.amp.GradScaler("cpu")
    if state:
        scaler.load_state_dict(dict(state))
    return scaler


MAX_CHECKPOINT_BYTES = 4 * 2**20  # the checks' models make files of well under 1 MB


def run_save_checkpoint(fn, config, tied, settings, state, optimizer_state, step, scaler_state, as_path,
                        subfolder=""):
    """``fn(path, model, optimizer, step)`` (and ``scaler`` as a fifth argument when
    ``scaler_state`` is not None) on checkpoint_model(config, tied) holding ``state``, its AdamW
    holding ``optimizer_state`` and a CPU GradScaler holding ``scaler_state``; ``path`` (a
    pathlib.Path if ``as_path``, else a str) names a new file in an empty temporary folder, inside
    ``subfolder`` of it ("a/b": folders that do not exist yet) when given.
    Returns {"file": the bytes written at path (None if nothing; at most MAX_CHECKPOINT_BYTES + 1),
    "files": every file the folder holds afterwards (relative paths), "after": checkpoint_state
    after the call}."""
    import os
    import pathlib
    import shutil
    import tempfile

    model = checkpoint_model(config, tied, state)
    optimizer = checkpoint_optimizer(model, settings)
    set_optimizer_state(optimizer, optimizer_state)
    scaler = None if scaler_state is None else _grad_scaler(scaler_state)
    folder = tempfile.mkdtemp(prefix="checkpoint-check-")
    try:
        target = os.path.join(folder, *[part for part in str(subfolder).split("/") if part],
                              "checkpoint.safetensors")
        extra = () if scaler is None else (scaler,)
        fn(pathlib.Path(target) if as_path else target, model, optimizer, step, *extra)
        data = None
        if os.path.isfile(target):
            with open(target, "rb") as f:
                data = f.read(MAX_CHECKPOINT_BYTES + 1)
        files = sorted(os.path.relpath(os.path.join(root, name), folder)
                       for root, _, names in os.walk(folder) for name in names)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return {"file": data, "files": files, "after": checkpoint_state(model, optimizer, scaler)}


def run_load_checkpoint(fn, config, tied, settings, tensors, metadata, init_seed, with_scaler, batch):
    """Write ``tensors`` and ``metadata`` as a safetensors file, then call ``fn(path, model,
    optimizer)`` (plus a fresh CPU GradScaler when ``with_scaler``) on a fresh
    checkpoint_model(config, tied, init_seed=init_seed) and its fresh AdamW; with ``batch`` (x, y),
    take one more training step afterwards. Returns {"returned", "replaced": names of parameters
    that are no longer the objects they were, "tied": whether lm_head.weight is still
    transformer.wte.weight (tied models), "loaded": checkpoint_state after the call, "loss" and
    "stepped" (the model's state_dict after the step) or "step_error"}."""
    import os
    import shutil
    import tempfile

    from safetensors.torch import save_file

    model = checkpoint_model(config, tied, init_seed=init_seed)
    optimizer = checkpoint_optimizer(model, settings)
    scaler = _grad_scaler(None) if with_scaler else None
    before = list(model.named_parameters(remove_duplicate=False))
    folder = tempfile.mkdtemp(prefix="checkpoint-check-")
    try:
        path = os.path.join(folder, "checkpoint.safetensors")
        save_file(dict(tensors), path, metadata=dict(metadata))
        returned = fn(path, model, optimizer, *(() if scaler is None else (scaler,)))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    now = dict(model.named_parameters(remove_duplicate=False))
    report = {"returned": _plain_or_type(returned),
              "replaced": [n for n, p in before if now.get(n) is not p],
              "tied": getattr(getattr(model, "lm_head", None), "weight", None) is model.transformer.wte.weight,
              "loaded": checkpoint_state(model, optimizer, scaler)}
    if batch is not None:
        try:
            report["loss"] = checkpoint_step(model, optimizer, *batch)
            report["stepped"] = {n: v.detach().clone() for n, v in model.state_dict().items()}
        except Exception as exc:  # noqa: BLE001 - a step that fails after loading is the result
            report["step_error"] = [type(exc).__name__, str(exc)[:300]]
    return report
