"""Checks for notebook 09: ``sample_next_token``, ``forward_with_cache`` and ``generate``.

The sampler is checked statistically: a few distributions, each repeated in thousands of rows
(protocol.run_sample), drawn once with a seeded generator; every token's frequency must lie
within 5 binomial standard errors of the probability that temperature, top-k and top-p give
(computed here in float64), and tokens outside the kept set must never appear. The known
mistakes (a temperature that changes nothing, top-k or top-p off by one, top-p before the
temperature, ...) move some frequency by many standard errors and are named. Greedy decoding
is checked exactly, the generator by drawing twice with one seed.

The KV cache and generation run on a GPT built by the checks (protocol.gpt_model), never on the
learner's: ``forward_with_cache`` is fed a sequence chunk after chunk and its logits and cache
are compared with a float64 oracle of the whole sequence; ``generate`` is replayed step by step
against the oracle's logits of the window it should have read (cropped to block_size).
"""

from __future__ import annotations

import math

import numpy as np

from .core import Call, Case, CheckFailed, register, require_tensor, to_numpy, worst_difference
from .gpt import config, gpt_forward, random_state
from .layers import explain, ids, matches
from .protocol import CACHE, GENERATE, SAMPLE
from .wire import Seeded

# ---- sample_next_token ------------------------------------------------------------------------

DRAWS = 16_000  # draws per distribution: a frequency's standard error is at most 0.004
# 5 standard errors: a correct sampler fails a given frequency with probability ~6e-7, so a whole
# notebook's checks (~100 frequencies) raise a false alarm less than once in 10,000 gradings;
# every named mistake moves some frequency by more than 0.05 (> 12 standard errors).
SIGMAS = 5.0


def kept_probs(logits, temperature=1.0, top_k=None, top_p=None, *, temp="divide", k_shift=0,
               p_rule="crossing_kept", p_on="tempered", p_before_k=False):
    """The distribution (rows of ``logits``, float64) the sampler should draw from; keywords
    give the known mistakes."""
    z = np.asarray(logits, dtype=np.float64)
    base = z
    if temp == "divide":
        z = z / temperature
    elif temp == "multiply":
        z = z * temperature
    V = z.shape[-1]
    keep = np.ones_like(z, dtype=bool)
    if top_k is not None and not p_before_k:
        k = max(1, min(top_k + k_shift, V))
        kth = -np.sort(-z, axis=-1)[:, k - 1:k]
        keep &= z >= kth
    if top_p is not None:
        src = z if p_on == "tempered" else base
        if p_before_k:
            masked = src
        else:
            masked = np.where(keep, src, -np.inf)
        probs = _softmax(masked)
        order = np.argsort(-probs, axis=-1, kind="stable")
        sorted_p = np.take_along_axis(probs, order, -1)
        cum = np.cumsum(sorted_p, -1)
        before = cum - sorted_p
        if p_rule == "crossing_kept":
            keep_sorted = before < top_p
        elif p_rule == "crossing_dropped":
            keep_sorted = cum <= top_p
        else:  # "one_extra"
            n = (before < top_p).sum(-1, keepdims=True)
            keep_sorted = np.arange(V)[None, :] < n + 1
        keep_p = np.zeros_like(keep)
        np.put_along_axis(keep_p, order, keep_sorted, -1)
        keep &= keep_p
        if p_before_k and top_k is not None:
            k = min(top_k, V)
            kth = -np.sort(-z, axis=-1)[:, k - 1:k]
            keep &= z >= kth
    return _softmax(np.where(keep, z, -np.inf))


def _softmax(z):
    z = z - z.max(-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(-1, keepdims=True)


def _distributions(rng, V, count):
    """``count`` rows of logits over V tokens: skewed distributions (every token at least 1%
    likely), tokens in random order, shifted by a random constant (which must not matter)."""
    import torch
    shapes = [np.array([0.30, 0.22, 0.16, 0.12, 0.09, 0.05, 0.04, 0.02]),
              np.array([0.42, 0.19, 0.13, 0.09, 0.07, 0.05, 0.03, 0.02])]
    rows = []
    for i in range(count):
        p = shapes[i % 2]
        if V > len(p):
            p = np.concatenate([p * 0.9, np.full(V - len(p), 0.1 / (V - len(p)))])
        p = p[:V] * np.exp(rng.normal(0.0, 0.04, size=V))
        p = p / p.sum()
        rows.append(np.log(p[rng.permutation(V)]) + rng.uniform(-3, 3))
    return torch.tensor(np.stack(rows), dtype=torch.float32)


def _describe(options):
    shown = [f"{k}={v}" for k, v in options.items()]
    return ", ".join(shown) if shown else "defaults"


def _sample_output(output, R):
    import torch
    if not isinstance(output, dict):
        raise CheckFailed("its result could not be read")
    if output.get("changed"):
        raise CheckFailed("it changed the logits it was given in place. Build new tensors "
                          "(logits = logits / temperature, logits.masked_fill(...)) instead of "
                          "`logits /= ...`, `logits[...] = -inf` or `.masked_fill_(...)` on the argument.")
    out = output["returned"]
    if not isinstance(out, torch.Tensor):
        raise CheckFailed(f"it should return a tensor of token ids, got {type(out).__name__}")
    if tuple(out.shape) != (R, 1):
        hint = ""
        if tuple(out.shape) == (R,):
            hint = ": keep a dimension for the one new token (argmax(..., keepdim=True), " \
                   "torch.multinomial(probs, num_samples=1))"
        raise CheckFailed(f"for logits of shape ({R}, V) it returned shape {tuple(out.shape)}, "
                          f"expected (B, 1) = ({R}, 1){hint}")
    if out.dtype != torch.long:
        raise CheckFailed(f"the token ids should be a LongTensor (torch.long, what argmax and "
                          f"multinomial return), got {out.dtype}")
    return to_numpy(out)[:, 0]


def _frequency_verify(rows, options, mistakes):
    """verify for a statistical case: the drawn tokens' frequencies against kept_probs."""
    G, V = rows.shape
    expected = kept_probs(to_numpy(rows), **options)

    def counts(got):
        if got.min() < 0 or got.max() >= V:
            raise CheckFailed(f"it returned token id {int(got.min() if got.min() < 0 else got.max())}, "
                              f"outside the vocabulary 0..{V - 1}")
        return np.stack([np.bincount(got[g::G], minlength=V) for g in range(G)]).astype(np.float64)

    def fits(freq, probs):
        n = DRAWS
        support = probs > 0
        if ((freq > 0) & ~support).any() or (~(freq > 0) & (probs > 10 / n)).any():
            return False
        tol = SIGMAS * np.sqrt(probs * (1 - probs) / n) + 1e-12
        return bool((np.abs(freq - probs) <= tol).all())

    def verify(output):
        got = _sample_output(output, G * DRAWS)
        freq = counts(got) / DRAWS
        if fits(freq, expected):
            return
        for hint, alternative in mistakes:
            if fits(freq, alternative):
                raise CheckFailed(hint)
        outside = (freq > 0) & (expected == 0)
        if outside.any():
            g, t = map(int, np.argwhere(outside)[0])
            hint = (": for top_p, sort the probabilities in decreasing order, decide in that order, "
                    "then put the decision back in vocabulary order (scatter with the sort's "
                    "indices)" if options.get("top_p") is not None else "")
            raise CheckFailed(f"with {_describe(options)}, token {t} should never be drawn (it is "
                              f"not kept), but it came {int(freq[g, t] * DRAWS)} times in {DRAWS} "
                              f"draws{hint}")
        missing = (freq == 0) & (expected > 10 / DRAWS)
        if missing.any():
            g, t = map(int, np.argwhere(missing)[0])
            raise CheckFailed(f"with {_describe(options)}, token {t} should be drawn with probability "
                              f"{expected[g, t]:.3f}, but it never came in {DRAWS} draws: is it dropped?")
        z = np.abs(freq - expected) / np.sqrt(expected * (1 - expected) / DRAWS + 1e-12)
        g, t = map(int, np.unravel_index(int(np.argmax(z)), z.shape))
        raise CheckFailed(f"with {_describe(options)}, token {t} came with frequency {freq[g, t]:.4f} "
                          f"in {DRAWS} draws; softmax(logits / temperature) over the kept tokens "
                          f"gives {expected[g, t]:.4f} (the difference is {z[g, t]:.0f} standard errors)")
    return verify


def _mistakes(rows, options):
    """(hint, distribution) of the known mistakes that differ from the right answer here."""
    logits = to_numpy(rows)
    T, k, p = options.get("temperature", 1.0), options.get("top_k"), options.get("top_p")
    right = kept_probs(logits, **options)
    found = []

    def add(hint, **kw):
        alt = kept_probs(logits, **options, **kw)
        if np.abs(alt - right).max() > 0.05:
            found.append((hint, alt))

    if T != 1.0:
        add("the temperature changed nothing: divide the logits by it before the softmax "
            "(dividing the probabilities and renormalising cancels out).", temp="ignore")
        add("the logits should be divided by the temperature, not multiplied (a temperature "
            "below 1 sharpens the distribution).", temp="multiply")
    if k is not None:
        add(f"top_k={k} kept {k + 1} tokens: keep exactly the k largest logits (those >= the k-th "
            "largest, torch.topk(logits, k).values[:, -1:]).", k_shift=1)
        if k > 1:
            add(f"top_k={k} kept only {k - 1} tokens: keep the k largest logits (those >= the k-th "
                "largest, torch.topk(logits, k).values[:, -1:]).", k_shift=-1)
    if p is not None and T != 1.0:
        add("top_p chose the tokens from the probabilities before the temperature: divide the "
            "logits by the temperature first, then apply top-k and top-p.", p_on="raw")
    if p is not None and k is not None:
        add("top_p should work on the probabilities left after top-k (renormalised over the k "
            "kept tokens), not on the full distribution: apply top-k first.", p_before_k=True)
    if p is not None:
        add("top_p dropped the token that makes the cumulative probability cross top_p: keep the "
            "smallest set whose probability reaches top_p, i.e. keep a token while the probability "
            "of the tokens ranked *above* it is below top_p (shift the cumulative sum by one).",
            p_rule="crossing_dropped")
        add("top_p kept one token too many: keep a token only while the probability of the tokens "
            "ranked above it is still below top_p.", p_rule="one_extra")
    return found


def sampling_case(rng, label, V, options, *, groups=2, same_seed_twice=False):
    rows = _distributions(rng, V, groups)
    options = dict(options)
    seed = int(rng.integers(0, 2**31))
    verify = _frequency_verify(rows, options, _mistakes(rows, options))
    call = Call((rows, DRAWS, options, Seeded(seed)), kind=SAMPLE)
    if not same_seed_twice:
        return Case(label=label, calls=[call], verify=lambda outputs: verify(outputs[0]))
    other = Call((rows, DRAWS, options, Seeded(seed + 1)), kind=SAMPLE)

    def verify_twice(outputs):
        verify(outputs[0])
        first, again, new = (_sample_output(o, groups * DRAWS) for o in outputs)
        if not np.array_equal(first, again):
            raise CheckFailed("two calls with generators seeded alike drew different tokens: pass "
                              "generator=generator to torch.multinomial (or whatever draws the "
                              "random numbers) so that a seed makes the samples reproducible.")
        if np.array_equal(first, new):
            raise CheckFailed("generators with different seeds drew the same tokens: the draws "
                              "should come from the generator it is given.")
    return Case(label=label, calls=[call, call, other], verify=verify_twice)


def _p_between(rng, rows, options, keep, *, differ=None):
    """A top_p that keeps exactly ``keep`` tokens of every row (with a margin of at least 0.01
    to every cumulative probability), preferring one where the distribution ``differ`` (keyword
    arguments of kept_probs) keeps a different set."""
    logits = to_numpy(rows)
    candidates = []
    for t in np.linspace(0.02, 0.98, 97):
        opts = dict(options, top_p=float(t))
        probs = kept_probs(logits, **{k: v for k, v in opts.items()})
        if not ((probs > 0).sum(-1) == keep).all():
            continue
        z = logits / opts.get("temperature", 1.0)
        if opts.get("top_k") is not None:
            kth = -np.sort(-z, -1)[:, opts["top_k"] - 1:opts["top_k"]]
            z = np.where(z >= kth, z, -np.inf)
        cum = np.cumsum(-np.sort(-_softmax(z), -1), -1)
        if np.abs(cum - t).min() < 0.01:
            continue
        candidates.append(float(t))
    if not candidates:
        raise RuntimeError("no top_p fits these distributions")  # a bug in the case, not the learner
    if differ is not None:
        for t in candidates:
            a = kept_probs(logits, **dict(options, top_p=t)) > 0
            b = kept_probs(logits, **dict(options, top_p=t), **differ) > 0
            if (a != b).any():
                return round(t, 4)
    return round(candidates[len(candidates) // 2], 4)


def greedy_case(rng, label, B, V, options):
    import torch
    logits = torch.tensor(rng.normal(size=(B, V)) * 3, dtype=torch.float32)
    want = to_numpy(logits).argmax(-1)

    def verify(out):
        got = require_tensor(out, (B, 1), what=f"the result for logits of shape ({B}, {V})")
        if out.dtype != torch.long:
            raise CheckFailed(f"the token ids should be a LongTensor (torch.long), got {out.dtype}")
        if not np.array_equal(got[:, 0], want):
            hint = (" top_k=1 keeps one token, the largest logit: are more than k kept?"
                    if options.get("top_k") == 1 and options.get("temperature") != 0 else "")
            raise CheckFailed(f"with {_describe(options)} it should return the most likely token of "
                              f"each row (argmax over the vocabulary); got {got[:, 0].tolist()}, "
                              f"expected {want.tolist()}.{hint}")
    return Case(label=label, args=(logits,), kwargs=dict(options), verify=verify)


SAMPLER_ERRORS = {
    "RuntimeError": "torch.topk needs k <= the vocabulary size: use min(top_k, logits.size(-1)); "
                    "and every row needs at least one token left (a probability tensor of NaN or "
                    "all zeros makes torch.multinomial fail).",
}


@register("sample_next_token", "greedy, temperature, top-k and top-p frequencies within 5 "
                               "standard errors, exact supports, the generator, (B, 1) longs")
def sample_cases(rng: np.random.Generator, hidden: bool):
    V = 8 if not hidden else 11
    cases = [
        greedy_case(rng, "temperature 0 is greedy", 5, 13 if not hidden else 29, dict(temperature=0)),
        greedy_case(rng, "temperature 0.0 with top_k and top_p is still greedy", 4, 7,
                    dict(temperature=0.0, top_k=3, top_p=0.5)),
        greedy_case(rng, "top_k=1 keeps only the most likely token", 6, 9, dict(temperature=1.0, top_k=1)),
        sampling_case(rng, "temperature 1: frequencies follow softmax(logits); one seed, same draws",
                      V, dict(temperature=1.0), same_seed_twice=True),
        sampling_case(rng, "temperature 0.5", V, dict(temperature=0.5 if not hidden else 0.6)),
        sampling_case(rng, "temperature 2", V, dict(temperature=2.0 if not hidden else 1.7)),
        sampling_case(rng, "top_k=3", V, dict(temperature=1.0, top_k=3 if not hidden else 4)),
        sampling_case(rng, "top_k larger than the vocabulary keeps every token", V,
                      dict(top_k=V + 5)),
    ]
    for c in cases:
        c.errors = SAMPLER_ERRORS
    rows_p = _distributions(rng, V, 1)
    seed = int(rng.integers(0, 2**31))

    def p_case(label, options, keep, differ=None):
        options = dict(options, top_p=_p_between(rng, rows_p, options, keep, differ=differ))
        verify = _frequency_verify(rows_p, options, _mistakes(rows_p, options))
        return Case(label=f"{label} (top_p={options['top_p']})", errors=SAMPLER_ERRORS,
                    calls=[Call((rows_p, DRAWS, options, Seeded(seed)), kind=SAMPLE)],
                    verify=lambda outputs: verify(outputs[0]))

    cases += [
        p_case("top_p", dict(temperature=1.0), 3 if not hidden else 4),
        p_case("top_p after the temperature", dict(temperature=0.6 if not hidden else 1.6), 3,
               differ=dict(p_on="raw")),
        p_case("top_k, then top_p on what is left", dict(temperature=1.0, top_k=4 if not hidden else 5), 2,
               differ=dict(p_before_k=True)),
    ]
    return cases


# ---- forward_with_cache -----------------------------------------------------------------------

def cached_oracle(state, chunks, cfg, *, positions="continue", attend="cache", mask="aligned"):
    """Logits of each chunk (float64 NumPy) and the final cache [(k, v)] when the chunks are fed
    one after another. ``positions="restart"`` numbers each chunk from 0; ``attend="chunk"``
    lets a chunk see only itself (the cache is not used); ``mask="top_left"`` aligns the causal
    mask with the first key instead of the last, ``mask="none"`` lets a chunk see its own future."""
    import torch
    import torch.nn.functional as F

    p = {n: v.detach().double() for n, v in state.items()}
    n, H = cfg["n_embd"], cfg["n_head"]
    hs = n // H
    cache = [None] * cfg["n_layer"]
    past, logits = 0, []
    for idx in chunks:
        B, T = idx.shape
        start = {"continue": past, "restart": 0, "shifted": past + 1}[positions]
        x = F.embedding(idx, p["transformer.wte.weight"]) + p["transformer.wpe.weight"][start:start + T]
        for i in range(cfg["n_layer"]):
            w = {k[len(f"transformer.h.{i}."):]: v for k, v in p.items() if k.startswith(f"transformer.h.{i}.")}
            h = F.layer_norm(x, (n,), w["ln_1.weight"], w["ln_1.bias"], 1e-5)
            q, k, v = (t.reshape(B, T, H, hs).transpose(1, 2)
                       for t in F.linear(h, w["attn.c_attn.weight"], w["attn.c_attn.bias"]).split(n, -1))
            if cache[i] is not None:
                k_all, v_all = torch.cat([cache[i][0], k], 2), torch.cat([cache[i][1], v], 2)
            else:
                k_all, v_all = k, v
            cache[i] = (k_all, v_all)
            if attend == "chunk":
                k_use, v_use, offset = k, v, 0
            else:
                k_use, v_use, offset = k_all, v_all, k_all.shape[2] - T
            S = k_use.shape[2]
            if mask == "aligned":
                allowed = torch.ones(T, S, dtype=torch.bool).tril(offset)
            elif mask == "top_left":
                allowed = torch.ones(T, S, dtype=torch.bool).tril(0)
            elif mask == "none_after_cache" and offset == 0:
                allowed = torch.ones(T, S, dtype=torch.bool).tril(0)
            else:
                allowed = torch.ones(T, S, dtype=torch.bool)
            scores = (q @ k_use.transpose(-2, -1) / math.sqrt(hs)).masked_fill(~allowed, float("-inf"))
            y = (torch.softmax(scores, -1) @ v_use).transpose(1, 2).reshape(B, T, n)
            x = x + F.linear(y, w["attn.c_proj.weight"], w["attn.c_proj.bias"])
            h = F.layer_norm(x, (n,), w["ln_2.weight"], w["ln_2.bias"], 1e-5)
            h = F.gelu(F.linear(h, w["mlp.c_fc.weight"], w["mlp.c_fc.bias"]), approximate="tanh")
            x = x + F.linear(h, w["mlp.c_proj.weight"], w["mlp.c_proj.bias"])
        x = F.layer_norm(x, (n,), p["transformer.ln_f.weight"], p["transformer.ln_f.bias"], 1e-5)
        logits.append((x @ p["transformer.wte.weight"].T).numpy())
        past += T
    return logits, [(k.numpy(), v.numpy()) for k, v in cache]


def _cache_mistakes(state, chunks, cfg, i):
    def variant(hint, **kw):
        return hint, lambda: cached_oracle(state, chunks, cfg, **kw)[0][i]
    return [
        variant("the new tokens' positions start at 0 again; they follow the cached ones: "
                "positions S .. S + T - 1, where S is how many positions the cache holds "
                "(cache[0][0].size(2)).", positions="restart"),
        variant("the new tokens attend only to themselves, not to the cached keys and values: "
                "concatenate the cache's keys and values with the new ones (torch.cat along the "
                "sequence dimension, dim=2) before attention.", attend="chunk"),
        variant("the new tokens attend only to themselves and start again at position 0: was the "
                "cache used at all?", attend="chunk", positions="restart"),
        variant("the causal mask is aligned with the first key: new token t (at position S + t) "
                "may see every key up to S + t, i.e. a (T, S + T) mask "
                "torch.ones(T, S + T).tril(diagonal=S). (is_causal=True in "
                "F.scaled_dot_product_attention aligns it top-left, which is wrong here.)",
                mask="top_left"),
        variant("the positions are one too far: the first new token is at position S, the "
                "number of cached positions (0 for an empty cache).", positions="shifted"),
        variant("a chunk of new tokens after a non-empty cache is not masked: token t must not "
                "see the new tokens after it, whether or not the cache is empty (a (T, S + T) "
                "mask, torch.ones(T, S + T).tril(diagonal=S)).", mask="none_after_cache"),
        variant("a chunk of several new tokens is not masked: token t must not see the new tokens "
                "after it (a (T, S + T) mask, torch.ones(T, S + T).tril(diagonal=S)).", mask="none"),
    ]


def cache_case(rng, label, cfg, B, sizes):
    import torch
    state = random_state(rng, cfg, scale=0.3)
    full = ids(rng, cfg["vocab_size"], B, sum(sizes))
    bounds = np.cumsum([0, *sizes])
    chunks = [full[:, a:b].clone() for a, b in zip(bounds[:-1], bounds[1:])]
    expected, cache = cached_oracle(state, chunks, cfg)
    H, hs = cfg["n_head"], cfg["n_embd"] // cfg["n_head"]

    def verify(report):
        if not isinstance(report, dict):
            raise CheckFailed("its result could not be read")
        for i, (out, chunk) in enumerate(zip(report["outputs"], chunks)):
            T = chunk.shape[1]
            what = f"the logits of call {i + 1} ({T} new token{'s' if T > 1 else ''} after {bounds[i]} cached)"
            if not isinstance(out, torch.Tensor):
                raise CheckFailed(f"{what} should be a tensor, got {type(out).__name__}")
            if tuple(out.shape) != (B, T, cfg["vocab_size"]):
                raise CheckFailed(f"{what} have shape {tuple(out.shape)}, expected (B, T, vocab_size) = "
                                  f"{(B, T, cfg['vocab_size'])}: return the logits of every new position")
            explain(to_numpy(out), expected[i], _cache_mistakes(state, chunks, cfg, i), what,
                    rtol=1e-4, atol=1e-4)
        got = report.get("cache")
        S = int(bounds[-1])
        if not isinstance(got, list) or len(got) != cfg["n_layer"]:
            raise CheckFailed(f"after the calls the cache list should hold one (keys, values) pair per "
                              f"block ({cfg['n_layer']}), it holds "
                              f"{len(got) if isinstance(got, list) else got!r}: append to the list you "
                              "were given (or replace its entries); `cache = ...` inside the function "
                              "makes a new list the caller never sees.")
        for layer, (entry, (k, v)) in enumerate(zip(got, cache)):
            if not isinstance(entry, list) or len(entry) != 2 or not all(isinstance(t, torch.Tensor) for t in entry):
                raise CheckFailed(f"cache[{layer}] should be a pair (keys, values) of tensors, got {entry!r}")
            for name, t, want in (("keys", entry[0], k), ("values", entry[1], v)):
                if tuple(t.shape) != (B, H, S, hs):
                    raise CheckFailed(f"cache[{layer}]'s {name} have shape {tuple(t.shape)} after {S} "
                                      f"positions; expected (B, n_head, S, head_size) = {(B, H, S, hs)}")
                if not matches(to_numpy(t), want, rtol=1e-4, atol=1e-4):
                    raise CheckFailed(f"cache[{layer}]'s {name} differ from block {layer}'s {name} of the "
                                      f"whole sequence ({worst_difference(to_numpy(t), want)}): store the "
                                      "keys and values after split_heads, the cached ones first")
    return Case(label=label, args=(cfg, state, chunks), kind=CACHE, verify=verify)


@register("forward_with_cache", "chunks fed one after another give the whole sequence's logits; "
                                "positions continue; the cache holds every key and value")
def cache_cases(rng: np.random.Generator, hidden: bool):
    if not hidden:
        small = config(61, 16, 2, 2, 16)
        return [
            cache_case(rng, "a prompt of 5, then one token at a time", small, 2, [5, 1, 1, 1]),
            cache_case(rng, "a chunk of 3 new tokens after 6 cached", small, 2, [6, 3]),
            cache_case(rng, "one token at a time from an empty cache, up to block_size", config(37, 8, 1, 1, 8),
                       1, [1] * 8),
        ]
    cfg = config(53, 12, 3, 3, 24)
    return [
        cache_case(rng, "a prompt of 4, two single tokens, a chunk of 4", cfg, 3, [4, 1, 1, 4]),
        cache_case(rng, "two chunks of 2, filling block_size in the end", config(29, 10, 2, 1, 12), 2,
                   [3, 2, 2, 1, 2]),
    ]


# ---- generate ---------------------------------------------------------------------------------

LOGIT_TOLERANCE = 1e-3  # float32 logits of cached and uncached runs differ by ~1e-6


def _replay(state, cfg, out, T0):
    """For each generated position: the oracle's logits (float64) of the window the model should
    have read (the last block_size tokens before it): [(B, V) arrays]."""
    import torch
    tokens = torch.tensor(out)
    steps = []
    for t in range(T0, out.shape[1]):
        window = tokens[:, max(0, t - cfg["block_size"]):t]
        steps.append(gpt_forward({n: v.double() for n, v in state.items()}, window, cfg)[:, -1].numpy())
    return steps


def _window_hint(state, cfg, out, T0, t):
    """Which wrong window explains token ``t``, if any."""
    import torch
    tokens = torch.tensor(out)
    p = {n: v.double() for n, v in state.items()}
    for size, hint in ((cfg["block_size"] - 1, "the window is one token too short: crop to the last "
                        "block_size tokens, idx[:, -block_size:]"),
                       (t, "the whole sequence is read")):
        if size <= 0 or size > cfg["block_size"]:
            continue
        logits = gpt_forward(p, tokens[:, max(0, t - size):t], cfg)[:, -1].numpy()
        if (out[:, t] == logits.argmax(-1)).all():
            return hint
    return None


def generate_case(rng, label, cfg, B, T0, new, options, *, training=False, seeded=False,
                  twice=False, cached=None):
    """Generate ``new`` tokens after a prompt of T0 and replay them: with greedy ``options`` each
    token must be the oracle's most likely one (up to float32 ties); with ``top_k`` it must be
    among the oracle's top_k. ``cached`` True/False: whether the model should then have been run
    on one new token per step (use_cache) or on whole windows."""
    import torch
    state = random_state(rng, cfg, scale=0.3)
    for name in state:  # strong attention: each token depends on its window, so a wrong window shows
        if name.endswith(("attn.c_attn.weight", "attn.c_proj.weight")):
            state[name] = state[name] * (0.8 / 0.3)
    idx = ids(rng, cfg["vocab_size"], B, T0)
    seed = int(rng.integers(0, 2**31))
    gen = Seeded(seed) if seeded else None
    call = Call((cfg, state, idx, new, dict(options), gen, training), kind=GENERATE)
    greedy = options.get("temperature", 1.0) == 0 or options.get("top_k") == 1 or \
        options.get("temperature", 1.0) < 1e-3 or (options.get("top_p") or 1) < 1e-3
    block = cfg["block_size"]

    def check_one(report):
        if not isinstance(report, dict):
            raise CheckFailed("its result could not be read")
        out = report["returned"]
        if not isinstance(out, torch.Tensor):
            raise CheckFailed(f"it should return the token ids as a tensor, got {type(out).__name__}")
        if tuple(out.shape) != (B, T0 + new):
            raise CheckFailed(f"for idx of shape {(B, T0)} and max_new_tokens={new} it returned shape "
                              f"{tuple(out.shape)}, expected (B, T + max_new_tokens) = {(B, T0 + new)}: "
                              "return the prompt followed by the new tokens")
        if out.dtype != torch.long:
            raise CheckFailed(f"the token ids should be a LongTensor (torch.long), got {out.dtype}")
        got = to_numpy(out)
        if not np.array_equal(got[:, :T0], to_numpy(idx)):
            raise CheckFailed("the result should start with the prompt idx, unchanged, followed by the new tokens")
        if got.min() < 0 or got.max() >= cfg["vocab_size"]:
            raise CheckFailed("it returned token ids outside the vocabulary")
        calls = report.get("calls") or []
        if any(c[2] for c in calls):
            raise CheckFailed("the model was in training mode while generating: call model.eval() first "
                              "(dropout would make every step random)")
        if any(c[3] for c in calls):
            raise CheckFailed("gradients were recorded while generating: decorate generate with "
                              "@torch.no_grad() (or use `with torch.no_grad():`); the cache would "
                              "otherwise keep every step's graph alive")
        if report.get("training_after") != training:
            raise CheckFailed(f"the model was in {'training' if training else 'eval'} mode before "
                              f"generate and in {'training' if report.get('training_after') else 'eval'} "
                              "mode after: restore the mode it was in (was_training = model.training "
                              "... model.train(was_training))")
        steps = _replay(state, cfg, got, T0)
        for j, logits in enumerate(steps):
            t = T0 + j
            chosen = np.take_along_axis(logits, got[:, t:t + 1], -1)[:, 0]
            if greedy:
                bad = chosen < logits.max(-1) - LOGIT_TOLERANCE
                what = "the most likely token"
            else:
                k = options["top_k"]
                kth = -np.sort(-logits, -1)[:, k - 1]
                bad = chosen < kth - LOGIT_TOLERANCE
                what = f"one of the top_k={k} most likely tokens"
            if bad.any():
                hint = _window_hint(state, cfg, got, T0, t) if greedy else None
                if hint is None:
                    hint = ("generate should pass temperature, top_k, top_p and generator on to "
                            "sample_next_token" if any(k in options for k in ("top_k", "top_p")) or
                            options.get("temperature", 0) != 0 else
                            "are temperature (and top_k, top_p, generator) passed on to "
                            "sample_next_token, and does it sample from the logits of the last "
                            "position, logits[:, -1, :], of the window idx[:, -block_size:]?")
                window = f"{min(t, block)} tokens" + (" (cropped to block_size)" if t > block else "")
                raise CheckFailed(f"new token {j + 1} (position {t}) is not {what} given the window "
                                  f"of the last {window}: {hint}.")
        if cached is not None and calls:
            per_module = {}
            for name, length, _, _ in calls:
                per_module[name] = per_module.get(name, 0) + max(length, 0)
            work = max(per_module.values())
            uncached = sum(min(T0 + j, block) for j in range(new))
            if cached and work > 0.6 * uncached:
                raise CheckFailed(f"with use_cache=True the model read {work} token positions in "
                                  f"{new} steps, as many as without a cache: after the first step, "
                                  "call forward_with_cache on the newest token only, idx[:, -1:], "
                                  "with the same cache")
        return got

    if not twice:
        return Case(label=label, calls=[call], verify=lambda outputs: check_one(outputs[0]))

    def verify_twice(outputs):
        first, again = (check_one(o) for o in outputs)
        if not np.array_equal(first, again):
            raise CheckFailed("two runs with generators seeded alike gave different tokens: pass "
                              "generator on to sample_next_token")
    return Case(label=label, calls=[call, call], verify=verify_twice)


GENERATE_ERRORS = {
    "ValueError": "the model got more than block_size tokens: crop the input to its last block_size "
                  "tokens, idx[:, -block_size:], before each forward pass (and start a fresh cache "
                  "once the cached positions reach block_size).",
    "IndexError": "a position beyond block_size? Crop the input to its last block_size tokens, "
                  "idx[:, -block_size:], and start a fresh cache once the cache is full.",
}


@register("generate", "greedy replays with and without the cache, cropping to block_size, "
                      "options passed on, the generator, eval mode and no_grad",
          helpers=("sample_next_token", "forward_with_cache"))
def generate_cases(rng: np.random.Generator, hidden: bool):
    if not hidden:
        cfg = config(47, 12, 2, 2, 16)
        cases = [
            generate_case(rng, "greedy, use_cache=False", cfg, 2, 3, 6, dict(temperature=0, use_cache=False),
                          cached=False),
            generate_case(rng, "greedy, use_cache=True", cfg, 2, 3, 6, dict(temperature=0, use_cache=True),
                          cached=True),
            generate_case(rng, "beyond block_size without the cache (12): the window slides", cfg, 2, 9, 8,
                          dict(temperature=0, use_cache=False)),
            generate_case(rng, "beyond block_size with the cache", cfg, 3, 9, 20,
                          dict(temperature=0, use_cache=True)),
            generate_case(rng, "a prompt longer than block_size", cfg, 1, 15, 3, dict(temperature=0)),
            generate_case(rng, "top_k=1 is greedy (top_k passed on)", cfg, 2, 2, 6,
                          dict(temperature=1.0, top_k=1), seeded=True),
            generate_case(rng, "a tiny top_p is greedy (top_p passed on)", cfg, 2, 2, 6,
                          dict(temperature=1.0, top_p=1e-6), seeded=True),
            generate_case(rng, "a tiny temperature is greedy (temperature passed on)", cfg, 2, 2, 6,
                          dict(temperature=1e-4), seeded=True),
            generate_case(rng, "top_k=3 sampling; one seed, same tokens", cfg, 3, 2, 8,
                          dict(temperature=1.0, top_k=3), seeded=True, twice=True),
            generate_case(rng, "a model in training mode: eval while generating, restored after", cfg, 1,
                          4, 3, dict(temperature=0), training=True),
        ]
    else:
        cfg = config(71, 10, 3, 2, 20)
        cases = [
            generate_case(rng, "greedy, use_cache=False", cfg, 3, 4, 5, dict(temperature=0, use_cache=False),
                          cached=False),
            generate_case(rng, "greedy, use_cache=True", cfg, 1, 2, 7, dict(temperature=0, use_cache=True),
                          cached=True),
            generate_case(rng, "beyond block_size with the cache", cfg, 3, 6, 20,
                          dict(temperature=0.0)),
            generate_case(rng, "beyond block_size without the cache", cfg, 2, 6, 9,
                          dict(temperature=0.0, use_cache=False)),
            generate_case(rng, "a prompt longer than block_size, cached", cfg, 2, 13, 4,
                          dict(temperature=0, use_cache=True)),
            generate_case(rng, "top_k=1 and a tiny top_p", cfg, 2, 3, 5, dict(top_k=1, top_p=1e-7), seeded=True),
            generate_case(rng, "a tiny temperature", cfg, 1, 3, 6, dict(temperature=1e-5), seeded=True),
            generate_case(rng, "top_k=4 sampling; one seed, same tokens", cfg, 2, 3, 7,
                          dict(temperature=1.3, top_k=4), seeded=True, twice=True),
            generate_case(rng, "training mode restored", cfg, 2, 2, 2, dict(temperature=0), training=True),
        ]
    for c in cases:
        c.errors = GENERATE_ERRORS
    return cases
