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
are compared with a float64 oracle of the whole sequence (a mismatch is explained by the
oracles of known mistakes: positions restarted or elsewhere, the mask, a cache that kept only
the last call, a LayerNorm left out); ``generate`` is replayed step by step against the
oracle's logits of the window it should have read (cropped to block_size), and one prompt in
thousands of rows checks the first new token's frequencies at a temperature (a temperature lost
or applied twice, probabilities handed to the sampler, are named).
"""

from __future__ import annotations

import math

import numpy as np

from .core import Call, Case, CheckFailed, register, require_tensor, to_numpy, worst_difference
from .gpt import config, gpt_forward, random_state
from .layers import explain, ids, matches
from .protocol import CACHE, CACHE_ON_META, GENERATE, SAMPLE, SAMPLE_ON_META
from .wire import Seeded

# ---- sample_next_token ------------------------------------------------------------------------

DRAWS = 16_000  # draws per distribution: a frequency's standard error is at most 0.004
# 5 standard errors: a correct sampler fails a given frequency with probability ~6e-7, so a whole
# notebook's checks (~100 frequencies) raise a false alarm less than once in 10,000 gradings;
# every named mistake moves some frequency by more than 0.05 (> 12 standard errors).
SIGMAS = 5.0


def kept_probs(logits, temperature=1.0, top_k=None, top_p=None, *, temp="divide", k_shift=0,
               p_rule="crossing_kept", p_on="tempered", p_before_k=False, softmax_over="vocabulary"):
    """The distribution (rows of ``logits``, float64) the sampler should draw from; keywords
    give the known mistakes (``softmax_over="batch"``: the softmax taken over the rows, which
    torch.multinomial then normalises row by row; the rows' repeats cancel out)."""
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
    z = np.where(keep, z, -np.inf)
    if softmax_over == "batch":
        with np.errstate(all="ignore"):
            e = np.exp(z - z.max(0, keepdims=True))
            p = e / e.sum(0, keepdims=True)
            return p / p.sum(-1, keepdims=True)
    return _softmax(z)


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
                raise CheckFailed(f"with {_describe(options)}, {hint}")
        kept = _kept_count_hint(freq, to_numpy(rows), options)
        if kept:
            raise CheckFailed(f"with {_describe(options)}, {kept}")
        if ((freq == 1.0) == (to_numpy(rows) == to_numpy(rows).max(-1, keepdims=True))).all():
            raise CheckFailed(f"with {_describe(options)}, it returned the most likely token of each row "
                              f"every time in {DRAWS} draws: only temperature 0 is greedy; otherwise draw "
                              "with torch.multinomial(probs, num_samples=1, generator=generator).")
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


def _kept_count_hint(freq, logits, options):
    """"top_k=k kept m tokens" when every row drew exactly its m most likely tokens, the same m
    for every row, and m is not the number top_k keeps; else None."""
    k, V = options.get("top_k"), freq.shape[-1]
    if k is None or options.get("top_p") is not None:
        return None
    drawn = freq > 0
    m = int(drawn.sum(-1)[0])
    want = min(k, V)
    if m == want or not (drawn.sum(-1) == m).all():
        return None
    largest = logits >= -np.sort(-logits, axis=-1)[:, m - 1:m]  # the m largest (a temperature > 0 keeps the order)
    if not (drawn == largest).all():
        return None
    if m == V:
        return (f"all {V} tokens were kept: set every logit below the k-th largest to -inf before the "
                "softmax (was top_k applied?).")
    kept = ("only the most likely token of each row was" if m == 1 else
            f"the {m} most likely tokens of each row were")
    return (f"{kept} kept, not {want}: keep exactly the k largest logits (those >= the k-th largest, "
            "torch.topk(logits, k).values[:, -1:])"
            + (", every token when top_k exceeds the vocabulary." if k >= V else "."))


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
        add(f"{k + 1} tokens were kept: keep exactly the k largest logits (those >= the k-th "
            "largest, torch.topk(logits, k).values[:, -1:]).", k_shift=1)
        if k > 1:
            add(f"only {k - 1} tokens were kept: keep the k largest logits, the k-th largest too "
                "(drop those < the k-th largest, torch.topk(logits, k).values[:, -1:]).", k_shift=-1)
    if p is not None and T != 1.0:
        add("top_p chose the tokens from the probabilities before the temperature: divide the "
            "logits by the temperature first, then apply top-k and top-p.", p_on="raw")
    if p is not None and k is not None:
        add("top_p should work on the probabilities left after top-k (renormalised over the k "
            "kept tokens), not on the full distribution: apply top-k first.", p_before_k=True)
    if rows.shape[0] > 1 and k is None and p is None:
        add("the softmax went over the batch (dim=0), not over the vocabulary: each row is its own "
            "distribution, F.softmax(logits, dim=-1).", softmax_over="batch")
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
        if isinstance(out, torch.Tensor) and tuple(out.shape) in ((), (B,)):
            why = ("argmax without dim= is the position of the largest value of the whole tensor"
                   if out.dim() == 0 else "the dimension of the new token was dropped")
            raise CheckFailed(f"for logits of shape ({B}, {V}) it returned shape {tuple(out.shape)}, expected "
                              f"(B, 1) = ({B}, 1): {why}; use logits.argmax(dim=-1, keepdim=True)")
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


# What a RuntimeError in the sampler means, by what its message says (core shows the message).
_KEEPDIM = ("if it says 'must match the size of tensor': keep the k-th largest logit's dimension, shape "
            "(B, 1), so that it compares with the (B, V) logits row by row (.values[:, -1:], not "
            ".values[:, -1])")
_TOPK_RANGE = ("if it says 'out of range': torch.topk needs k <= the vocabulary size, "
               "min(top_k, logits.size(-1))")
_NO_TOKEN = ("if it says 'probability tensor': a row has no token left, or NaN (every row needs a "
             "finite logit)")


def _sampler_errors(*parts: str) -> dict[str, str]:
    """The RuntimeError hint of a case: the readings of the messages its inputs can give."""
    return {"RuntimeError": "; ".join(parts)}


SAMPLER_ERRORS = _sampler_errors(_KEEPDIM, _NO_TOKEN)
GREEDY_ERRORS = _sampler_errors(
    "if it says 'probability tensor': temperature 0 is greedy: return logits.argmax(dim=-1, "
    "keepdim=True) before dividing by the temperature (logits / 0 is inf or NaN)", _KEEPDIM)
TOP_1_ERRORS = _sampler_errors(
    _KEEPDIM, "if it says 'probability tensor': no token was left: top-k keeps the k-th largest "
    "logit itself (drop logits < kth, not <=)")
NO_TOP_K_ERRORS = _sampler_errors(_NO_TOKEN)

SAMPLE_RULES = {
    "greedy at temperature 0": ["temperature 0 is greedy", "temperature 0.0 with top_k and top_p is still greedy"],
    "temperature": ["temperature 0.5", "temperature 2", "temperature 0.6", "temperature 1.7"],
    "top-k": ["top_k=1 keeps only the most likely token", "top_k=3", "top_k=4",
              "top_k larger than the vocabulary keeps every token"],
    "top-p": ["top_p", "top_p after the temperature", "top_k, then top_p on what is left"],
    "draws from the softmax": ["temperature 1: frequencies follow softmax(logits); one seed, same draws"],
    "the generator": ["temperature 1: frequencies follow softmax(logits); one seed, same draws"],
    "(B, 1) token ids": ["temperature 0 is greedy", "top_k=1 keeps only the most likely token",
                         "temperature 1: frequencies follow softmax(logits); one seed, same draws"],
    "logits unchanged": ["temperature 0.5", "top_k=1 keeps only the most likely token"],
    "on the logits' device": ["top_k and top_p on another device", "top_p on another device, one row"],
}


def sample_meta_case(rng, label, B, V, options):
    """sample_next_token on logits moved to the meta device (protocol.run_sample_on_meta): a
    threshold, a fill or ranks made without device= meet the logits there and fail, as on a GPU."""
    rows = tensor_rows(rng, B, V)

    def verify(outputs):
        got = [(o["device"], tuple(o["shape"])) for o in outputs[0][0]]  # the one call's one run
        if [shape for _, shape in got] != [(B, 1)]:
            raise CheckFailed(f"on another device it returned tensors of shapes {[shape for _, shape in got]}; "
                              f"expected one, (B, 1) = {(B, 1)}")
        if got[0][0] != "meta":
            raise CheckFailed(f"with the logits on another device the token ids came back on {got[0][0]}: "
                              "make every tensor on the logits' device (device=logits.device)")
    return Case(label=label, calls=[Call((rows, options), kind=SAMPLE_ON_META)],
                verify=verify, errors=SAMPLER_ERRORS)


def tensor_rows(rng, B, V):
    import torch
    return torch.tensor(rng.normal(0.0, 2.0, (B, V)), dtype=torch.float32)


@register("sample_next_token", "greedy, temperature, top-k and top-p frequencies within 5 "
                               "standard errors, exact supports, the generator, (B, 1) longs",
          rules=SAMPLE_RULES)
def sample_cases(rng: np.random.Generator, hidden: bool):
    V = 8 if not hidden else 11
    cold, hot, k = (0.5, 2.0, 3) if not hidden else (0.6, 1.7, 4)
    cases = [
        greedy_case(rng, "temperature 0 is greedy", 5, 13 if not hidden else 29, dict(temperature=0)),
        greedy_case(rng, "temperature 0.0 with top_k and top_p is still greedy", 4, 7,
                    dict(temperature=0.0, top_k=3, top_p=0.5)),
        sampling_case(rng, "temperature 1: frequencies follow softmax(logits); one seed, same draws",
                      V, dict(temperature=1.0), same_seed_twice=True),
        greedy_case(rng, "top_k=1 keeps only the most likely token", 6, 9, dict(temperature=1.0, top_k=1)),
        sampling_case(rng, f"temperature {cold}", V, dict(temperature=cold)),
        sampling_case(rng, f"temperature {hot:g}", V, dict(temperature=hot)),
        sampling_case(rng, f"top_k={k}", V, dict(temperature=1.0, top_k=k)),
        sampling_case(rng, "top_k larger than the vocabulary keeps every token", V,
                      dict(top_k=V + 5)),
    ]
    for c in cases:
        c.errors = SAMPLER_ERRORS
    cases[0].errors = cases[1].errors = GREEDY_ERRORS
    cases[2].errors = cases[4].errors = cases[5].errors = NO_TOP_K_ERRORS
    cases[3].errors = TOP_1_ERRORS
    cases[7].errors = _sampler_errors(_TOPK_RANGE, _KEEPDIM)
    rows_p = _distributions(rng, V, 1)
    seed = int(rng.integers(0, 2**31))

    def p_case(label, options, keep, differ=None):
        # (the label leaves out the top_p chosen, which depends on the seed; messages show it)
        options = dict(options, top_p=_p_between(rng, rows_p, options, keep, differ=differ))
        verify = _frequency_verify(rows_p, options, _mistakes(rows_p, options))
        return Case(label=label, errors=SAMPLER_ERRORS if "top_k" in options else NO_TOP_K_ERRORS,
                    calls=[Call((rows_p, DRAWS, options, Seeded(seed)), kind=SAMPLE)],
                    verify=lambda outputs: verify(outputs[0]))

    cases += [
        p_case("top_p", dict(temperature=1.0), 3 if not hidden else 4),
        p_case("top_p after the temperature", dict(temperature=0.6 if not hidden else 1.6), 3,
               differ=dict(p_on="raw")),
        p_case("top_k, then top_p on what is left", dict(temperature=1.0, top_k=4 if not hidden else 5), 2,
               differ=dict(p_before_k=True)),
        sample_meta_case(rng, "top_k and top_p on another device", 3, V, dict(temperature=0.8, top_k=4, top_p=0.9))
        if not hidden else
        sample_meta_case(rng, "top_p on another device, one row", 1, V, dict(temperature=1.3, top_p=0.7)),
    ]
    return cases


# ---- forward_with_cache -----------------------------------------------------------------------

def cached_oracle(state, chunks, cfg, *, positions="continue", attend="cache", mask="aligned",
                  starts=None, store="all", skip=()):
    """Logits of each chunk (float64 NumPy) and the final cache [(k, v)] when the chunks are fed
    one after another. ``positions="restart"`` numbers each chunk from 0; ``starts`` ({chunk
    index: position}) puts a chunk's tokens elsewhere; ``attend="chunk"`` lets a chunk see only
    itself (the cache is not used); ``mask="top_left"`` aligns the causal mask with the first key
    instead of the last, ``mask="none"`` lets a chunk see its own future; ``store="new"`` keeps
    only the last chunk's keys and values in the cache (whose length is then the next chunk's
    S); ``skip`` leaves out LayerNorms ("ln_1", "ln_2", "ln_f")."""
    import torch
    import torch.nn.functional as F

    p = {n: v.detach().double() for n, v in state.items()}
    n, H = cfg["n_embd"], cfg["n_head"]
    hs = n // H
    cache = [None] * cfg["n_layer"]
    logits = []

    def norm(x, w, b, name):
        return x if name in skip else F.layer_norm(x, (n,), w, b, 1e-5)
    for c, idx in enumerate(chunks):
        B, T = idx.shape
        past = 0 if cache[0] is None else cache[0][0].shape[2]
        start = {"continue": past, "restart": 0, "shifted": past + 1}[positions]
        start = (starts or {}).get(c, start)
        wpe = p["transformer.wpe.weight"][start:start + T]
        if wpe.shape[0] != T:
            raise ValueError("positions beyond block_size")  # such a mistake cannot be computed
        x = F.embedding(idx, p["transformer.wte.weight"]) + wpe
        for i in range(cfg["n_layer"]):
            w = {k[len(f"transformer.h.{i}."):]: v for k, v in p.items() if k.startswith(f"transformer.h.{i}.")}
            h = norm(x, w["ln_1.weight"], w["ln_1.bias"], "ln_1")
            q, k, v = (t.reshape(B, T, H, hs).transpose(1, 2)
                       for t in F.linear(h, w["attn.c_attn.weight"], w["attn.c_attn.bias"]).split(n, -1))
            if cache[i] is not None:
                k_all, v_all = torch.cat([cache[i][0], k], 2), torch.cat([cache[i][1], v], 2)
            else:
                k_all, v_all = k, v
            cache[i] = (k_all, v_all) if store == "all" else (k, v)
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
            h = norm(x, w["ln_2.weight"], w["ln_2.bias"], "ln_2")
            h = F.gelu(F.linear(h, w["mlp.c_fc.weight"], w["mlp.c_fc.bias"]), approximate="tanh")
            x = x + F.linear(h, w["mlp.c_proj.weight"], w["mlp.c_proj.bias"])
        x = norm(x, p["transformer.ln_f.weight"], p["transformer.ln_f.bias"], "ln_f")
        logits.append((x @ p["transformer.wte.weight"].T).numpy())
    return logits, [(k.numpy(), v.numpy()) for k, v in cache]


def _cache_mistakes(state, chunks, cfg, i, S):
    """(hint, lazily computed logits of call ``i``) of the known mistakes; the last ones read the
    new tokens at every other start position (S is the right one)."""
    def variant(hint, **kw):
        return hint, lambda: cached_oracle(state, chunks, cfg, **kw)[0][i]
    T = chunks[i].shape[1]
    elsewhere = [variant(f"the new tokens were read at positions {s} .. {s + T - 1}; after {S} cached "
                         f"positions they are at {S} .. {S + T - 1}: S is the length of the cached "
                         "keys, cache[0][0].size(2) (B, n_head, S, head_size).", starts={i: s})
                 for s in range(cfg["block_size"] - T + 1) if s not in (0, S, S + 1)]
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
        variant("the cache kept only the last call's keys and values: store the concatenation (the "
                "cached ones first, then the new ones) in cache[i], so that it holds every position "
                "so far.", store="new"),
        variant("the MLP half of a block reads ln_2 of the residual stream: "
                "x = x + block.mlp(block.ln_2(x)).", skip=("ln_2",)),
        variant("the attention half of a block reads ln_1 of the residual stream: q, k, v come "
                "from block.attn.c_attn(block.ln_1(x)).", skip=("ln_1",)),
        variant("the final LayerNorm is missing: the logits are "
                "model.lm_head(model.transformer.ln_f(x)).", skip=("ln_f",)),
        *elsewhere,
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
        entries = report.get("cache")
        if entries == []:
            raise CheckFailed(f"after {len(chunks)} calls the cache list is still empty: store each block's keys "
                              "and values in the list you were given (cache.append(...) while it is empty, "
                              "cache[i] = ... afterwards); `cache = ...` inside the function makes a new list "
                              "the caller never sees")
        if isinstance(entries, list) and len(entries) > cfg["n_layer"]:
            raise CheckFailed(f"after {len(chunks)} calls the cache list holds {len(entries)} entries; it should "
                              f"hold one (keys, values) pair per block ({cfg['n_layer']}): append a block's "
                              "pair only while the cache is empty (the first call), then replace cache[i]")
        for i, (out, chunk) in enumerate(zip(report["outputs"], chunks)):
            T = chunk.shape[1]
            what = f"the output of call {i + 1} ({T} new token{'s' if T > 1 else ''} after {bounds[i]} cached)"
            if not isinstance(out, torch.Tensor):
                raise CheckFailed(f"{what} should be a tensor, got {type(out).__name__}")
            if tuple(out.shape) != (B, T, cfg["vocab_size"]):
                raise CheckFailed(f"{what} has shape {tuple(out.shape)}, expected (B, T, vocab_size) = "
                                  f"{(B, T, cfg['vocab_size'])}: return the logits of every new position")
            explain(to_numpy(out), expected[i], _cache_mistakes(state, chunks, cfg, i, int(bounds[i])), what,
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
    return Case(label=label, args=(cfg, state, chunks), kind=CACHE, verify=verify, errors=CACHE_ERRORS)


CACHE_ERRORS = {
    "RuntimeError": "if it says 'Sizes of tensors must match except in dimension': put the cached keys and "
                    "values in front of the new ones along the sequence dimension, torch.cat([...], dim=2) "
                    "(they are (B, n_head, S, head_size)); if it says 'must match the size of tensor': "
                    "the mask should be (T, S + T), one column per key, where S is the length of the "
                    "cached keys, cache[0][0].size(2)",
    "IndexError": "a position beyond block_size? The new tokens are at S .. S + T - 1, where S is the "
                  "length of the cached keys, cache[0][0].size(2)",
}
def cache_meta_case(rng, label, cfg, B, sizes):
    """forward_with_cache on a GPT and chunks moved to the meta device (protocol.run_cache_on_meta):
    positions or a mask made without device= meet the model's tensors and fail there, as on a GPU."""
    chunks = [ids(rng, cfg["vocab_size"], B, T) for T in sizes]

    def verify(report):
        for i, (outputs, T) in enumerate(zip(report, sizes)):
            got = [(o["device"], tuple(o["shape"])) for o in outputs]
            want = (B, T, cfg["vocab_size"])
            if [shape for _, shape in got] != [want]:
                raise CheckFailed(f"on another device, call {i + 1} returned tensors of shapes "
                                  f"{[shape for _, shape in got]}; expected one, {want}")
            if got[0][0] != "meta":
                raise CheckFailed(f"with the model and idx on another device, call {i + 1}'s logits came back "
                                  f"on {got[0][0]}: make the positions and the mask on idx's device "
                                  "(device=idx.device)")
    return Case(label=label, args=(cfg, chunks), kind=CACHE_ON_META, verify=verify, errors=CACHE_ERRORS)


_ALL_CACHE_CASES = ["a prompt of 5, then one token at a time", "a chunk of 3 new tokens after 6 cached",
                    "one token at a time from an empty cache, up to block_size",
                    "a prompt of 4, two single tokens, a chunk of 4",
                    "two chunks of 2, filling block_size in the end"]
CACHE_RULES = {
    "same logits": _ALL_CACHE_CASES,
    "positions follow the cache": ["a prompt of 5, then one token at a time",
                                   "one token at a time from an empty cache, up to block_size",
                                   "a prompt of 4, two single tokens, a chunk of 4"],
    "the mask": ["a prompt of 5, then one token at a time", "a chunk of 3 new tokens after 6 cached",
                 "a prompt of 4, two single tokens, a chunk of 4",
                 "two chunks of 2, filling block_size in the end"],
    "the cache list": _ALL_CACHE_CASES,
    "on idx's device": ["a prompt of 3, then one token, on another device",
                        "one token, then a chunk of 2, on another device"],
}


@register("forward_with_cache", "chunks fed one after another give the whole sequence's logits; "
                                "positions continue; the cache holds every key and value", rules=CACHE_RULES)
def cache_cases(rng: np.random.Generator, hidden: bool):
    if not hidden:
        small = config(61, 16, 2, 2, 16)
        return [
            cache_case(rng, "a prompt of 5, then one token at a time", small, 2, [5, 1, 1, 1]),
            cache_case(rng, "a chunk of 3 new tokens after 6 cached", small, 2, [6, 3]),
            cache_case(rng, "one token at a time from an empty cache, up to block_size", config(37, 8, 1, 1, 8),
                       1, [1] * 8),
            cache_meta_case(rng, "a prompt of 3, then one token, on another device", small, 2, [3, 1]),
        ]
    cfg = config(53, 12, 3, 3, 24)
    return [
        cache_case(rng, "a prompt of 4, two single tokens, a chunk of 4", cfg, 3, [4, 1, 1, 4]),
        cache_case(rng, "two chunks of 2, filling block_size in the end", config(29, 10, 2, 1, 12), 2,
                   [3, 2, 2, 1, 2]),
        cache_meta_case(rng, "one token, then a chunk of 2, on another device", cfg, 2, [1, 2]),
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
    """Which wrong reading explains greedy token ``t``, if any: a window one token short, the
    first block_size tokens instead of the last, the logits of the window's first position."""
    import torch
    tokens = torch.tensor(out)
    p = {n: v.double() for n, v in state.items()}
    block = cfg["block_size"]
    right = tokens[:, max(0, t - block):t]
    readings = [(tokens[:, max(0, t - block + 1):t], -1, "the window is one token too short: crop to the last "
                 "block_size tokens, idx[:, -block_size:]"),
                (tokens[:, :min(t, block)], -1, "the window is the first block_size tokens of the text: crop "
                 "to the last ones, idx[:, -block_size:]"),
                (right, 0, "it used the logits of the window's first position: the next token follows the "
                 "last one, logits[:, -1, :]")]
    for window, position, hint in readings:
        if window.shape[1] == 0 or (position == -1 and torch.equal(window, right)) or \
                (position == 0 and window.shape[1] == 1):
            continue
        logits = gpt_forward(p, window, cfg)[:, position].numpy()
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
                if hint is None and t >= block and j > 0 and options.get("use_cache", True):
                    hint = ("the tokens were right until the cache held block_size positions: then start a "
                            "fresh cache on the window the uncached loop reads, forward_with_cache(model, "
                            "idx[:, -block_size:], []) (dropping the cache's oldest entries is not the same: "
                            "the keys it keeps were computed at their old positions)")
                elif hint is None and t >= block and j > 0:
                    hint = ("the tokens were right until the text was longer than block_size: then the "
                            "window is the last block_size tokens, idx[:, -block_size:]")
                elif hint is None:
                    hint = ("generate should pass temperature, top_k, top_p and generator on to "
                            "sample_next_token" if any(k in options for k in ("top_k", "top_p")) or
                            options.get("temperature", 0) != 0 else
                            "is temperature (and top_k, top_p, generator) passed on to sample_next_token?")
                window = f"{min(t, block)} tokens" + (" (cropped to block_size)" if t > block else "")
                raise CheckFailed(f"new token {j + 1} (position {t}) is not {what} given the window "
                                  f"of the last {window}: {hint}" + ("" if hint.endswith(("?", ".")) else "."))
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

    errors = WITHIN_BLOCK_ERRORS if T0 + new <= block else GENERATE_ERRORS
    if not twice:
        return Case(label=label, calls=[call], verify=lambda outputs: check_one(outputs[0]), errors=errors)

    def verify_twice(outputs):
        first, again = (check_one(o) for o in outputs)
        if not np.array_equal(first, again):
            raise CheckFailed("two runs with generators seeded alike gave different tokens: pass "
                              "generator on to sample_next_token")
    return Case(label=label, calls=[call, call], verify=verify_twice, errors=errors)


def generate_sampling_case(rng, label, cfg, T0, temperature):
    """One prompt in each of DRAWS rows, one new token each, drawn with one seeded generator: the
    new tokens' frequencies must follow softmax(logits / temperature) of the oracle's logits of the
    prompt (within 5 standard errors, as sample_next_token's). Named: a temperature that never
    reaches the sampler, one applied twice, probabilities handed to the sampler as logits."""
    import torch
    state = random_state(rng, cfg, scale=0.3)
    prompt = ids(rng, cfg["vocab_size"], 1, T0)
    seed = int(rng.integers(0, 2**31))
    options = dict(temperature=temperature)
    call = Call((cfg, state, prompt.repeat(DRAWS, 1), 1, dict(options), Seeded(seed), False), kind=GENERATE)
    z = gpt_forward({n: v.double() for n, v in state.items()}, prompt, cfg)[:, -1]
    right = _softmax(z.numpy() / temperature)
    mistakes = []
    for hint, alternative in (
            ("the temperature did not reach sample_next_token: the tokens follow softmax(logits), not "
             "softmax(logits / temperature); pass it on, sample_next_token(logits[:, -1, :], temperature, ...).",
             _softmax(z.numpy())),
            ("the logits were divided by the temperature twice: sample_next_token divides them itself, so "
             "pass logits[:, -1, :] as they are.", _softmax(z.numpy() / temperature ** 2)),
            ("sample_next_token got probabilities instead of logits: pass logits[:, -1, :] as they are "
             "(it takes the softmax itself).", _softmax(_softmax(z.numpy()) / temperature))):
        if np.abs(alternative - right).max() > 0.02:
            mistakes.append((hint, alternative))
    draws = _frequency_verify(z, options, mistakes)

    def verify(outputs):
        report = outputs[0]
        if not isinstance(report, dict):
            raise CheckFailed("its result could not be read")
        out = report["returned"]
        if not isinstance(out, torch.Tensor) or tuple(out.shape) != (DRAWS, T0 + 1):
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise CheckFailed(f"for idx of shape {(DRAWS, T0)} and max_new_tokens=1 it returned {shape}, "
                              f"expected (B, T + max_new_tokens) = {(DRAWS, T0 + 1)}")
        if not torch.equal(out[:, :T0].cpu(), prompt.repeat(DRAWS, 1)):
            raise CheckFailed("the result should start with the prompt idx, unchanged, followed by the new tokens")
        draws({"returned": out[:, T0:], "changed": False})
    return Case(label=label, calls=[call], verify=verify, errors=WITHIN_BLOCK_ERRORS)


GENERATE_ERRORS = {
    "ValueError": "if it says 'the model got': crop its input to the last block_size tokens, "
                  "idx[:, -block_size:]; '0 cached + N new': start each cache on the last block_size tokens, "
                  "idx[:, -block_size:]; 'cached + 1 new': the cache is full, start a fresh one on "
                  "idx[:, -block_size:]; 'cached + N new' with N > 1: after the first step give "
                  "forward_with_cache the newest token only, idx[:, -1:]",
    "IndexError": "a position beyond block_size? Crop the input to its last block_size tokens, "
                  "idx[:, -block_size:], give forward_with_cache only the newest token after the first "
                  "step, and start a fresh cache once it holds block_size positions.",
    "TypeError": "if it says 'tuple indices': the model returns (logits, loss), so unpack it: "
                 "logits, _ = model(idx[:, -block_size:])",
    "RuntimeError": "if it says 'Sizes of tensors must match': append the new tokens along the sequence, "
                    "torch.cat([idx, next_id], dim=1)",
}
# Where the text never outgrows block_size, a position beyond it can only come from feeding a
# non-empty cache more than the newest token.
WITHIN_BLOCK_ERRORS = dict(GENERATE_ERRORS, IndexError=(
    "a position beyond block_size, though the text here never outgrows it: after the first step give "
    "forward_with_cache the newest token only, idx[:, -1:], with the same cache"))

_ALL_GENERATE_CASES = [
    "greedy, use_cache=False", "greedy, use_cache=True",
    "beyond block_size without the cache (12): the window slides",
    "beyond block_size with the cache", "a prompt longer than block_size", "top_k=1 is greedy (top_k passed on)",
    "a tiny top_p is greedy (top_p passed on)", "a tiny temperature is greedy (temperature passed on)",
    "top_k=3 sampling; one seed, same tokens", "a model in training mode: eval while generating, restored after",
    "beyond block_size without the cache", "a prompt longer than block_size, cached", "top_k=1 and a tiny top_p",
    "a tiny temperature", "top_k=4 sampling; one seed, same tokens", "training mode restored",
    "temperature 0.6: the first new token's frequencies over many rows",
    "temperature 0.5: the first new token's frequencies over many rows"]
GENERATE_RULES = {
    "prompt first": _ALL_GENERATE_CASES,
    "the next token": ["greedy, use_cache=False", "greedy, use_cache=True"],
    "options passed on": ["temperature 0.6: the first new token's frequencies over many rows",
                          "temperature 0.5: the first new token's frequencies over many rows",
                          "top_k=1 is greedy (top_k passed on)", "a tiny top_p is greedy (top_p passed on)",
                          "a tiny temperature is greedy (temperature passed on)",
                          "top_k=3 sampling; one seed, same tokens", "greedy, use_cache=False",
                          "top_k=1 and a tiny top_p", "a tiny temperature",
                          "top_k=4 sampling; one seed, same tokens"],
    "the window": ["beyond block_size without the cache (12): the window slides",
                   "a prompt longer than block_size",
                   "beyond block_size without the cache", "a prompt longer than block_size, cached"],
    "the cache": ["greedy, use_cache=True", "beyond block_size with the cache",
                  "a prompt longer than block_size, cached"],
    "eval mode, restored": ["a model in training mode: eval while generating, restored after",
                            "greedy, use_cache=False", "training mode restored"],
    "no gradients": _ALL_GENERATE_CASES,
}


@register("generate", "greedy replays with and without the cache, cropping to block_size, "
                      "options passed on, the generator, eval mode and no_grad",
          helpers=("sample_next_token", "forward_with_cache"), rules=GENERATE_RULES)
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
            generate_sampling_case(rng, "temperature 0.6: the first new token's frequencies over many rows",
                                   cfg, 3, 0.6),
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
            generate_sampling_case(rng, "temperature 0.5: the first new token's frequencies over many rows",
                                   cfg, 4, 0.5),
        ]
    return cases
