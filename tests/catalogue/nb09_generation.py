"""Notebook 09's exercises (``sample_next_token``, ``forward_with_cache``, ``generate``): learner
mistakes and valid alternatives.

Each source is a complete answer cell. ``tests/checks/test_catalogue_checks.py`` runs it in a namespace
that already holds ``torch``, ``nn``, ``F``, ``math`` and the finished pieces of
``gpt2course.reference`` other than the exercise itself, so a ``generate`` cell calls the
reference ``sample_next_token`` and ``forward_with_cache``, and a ``forward_with_cache`` cell may
use ``split_heads``, ``attention``, ``merge_heads`` and ``causal_mask``, as the notebook's would.
Mistakes of a line or two are edits of the exercise's reference answer (``variant``).

How the checks see these answers: the sampler by the frequencies of thousands of draws (within 5
binomial standard errors of softmax(logits / temperature) over the kept tokens, and never a token
outside them), exactly for greedy decoding, and by drawing twice with one seed; the cache by
feeding a sequence in chunks to a GPT the checks build and comparing logits and cache with a
float64 oracle of the whole sequence; ``generate`` by replaying every new token against the
oracle's logits of the window it should have read, by the frequencies of its first new token
for one prompt in thousands of rows, and by what the model saw (its mode, whether gradients were
on, how many positions it processed).
"""

from catalogue import tidy as _tidy, variant

NOTEBOOK = "09_generation.ipynb"

# Pieces of the reference answers, as written there, that several variants edit.
_TOP_K = """\
    if top_k is not None:
        kth = torch.topk(logits, min(top_k, logits.size(-1)), dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
"""
_TOP_P = """\
    if top_p is not None:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        probs = F.softmax(sorted_logits, dim=-1)
        before = probs.cumsum(dim=-1) - probs  # probability of the tokens ranked above each one
        sorted_logits = sorted_logits.masked_fill(before >= top_p, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)
"""
_BEFORE = "before = probs.cumsum(dim=-1) - probs  # probability of the tokens ranked above each one"
_DRAW = """\
    probs = F.softmax(logits, dim=-1)
    return torch.multinomial(probs, num_samples=1, generator=generator)
"""
_POSITIONS = ("positions = torch.arange(past, past + T, device=idx.device)"
              "   # not 0 .. T-1: they follow the cache")
_MASK = "mask = torch.ones(T, past + T, dtype=torch.bool, device=idx.device).tril(diagonal=past)"
_ATTEND = "y, _ = attention(q, k, v, mask)"
_RESTART = "elif cache is None or cache[0][0].size(2) >= block_size:"
_STEP = "                logits = forward_with_cache(model, idx[:, -1:], cache)\n"

WRONG = {
    "sample_next_token": {
        # The -inf fill made with torch.full and no device=: on a GPU, scatter mixes it with the
        # logits there.
        "top_p_fill_on_the_cpu": variant("sample_next_token", (
            'torch.full_like(logits, float("-inf"))', 'torch.full(logits.shape, float("-inf"))')),
        # Top-k as a mask of the k indices, the mask made with torch.zeros and no device=.
        "top_k_mask_on_the_cpu": variant("sample_next_token", (_TOP_K, """\
    if top_k is not None:
        top = torch.topk(logits, min(top_k, logits.size(-1)), dim=-1).indices
        keep = torch.zeros(logits.shape, dtype=torch.bool).scatter(-1, top, True)
        logits = logits.masked_fill(~keep, float("-inf"))
""")),
        # The classic: the probabilities divided by the temperature, then renormalised. The
        # division cancels out and every temperature samples softmax(logits).
        "temperature_divides_probabilities": """
            def sample_next_token(logits, temperature=1.0, top_k=None, top_p=None, generator=None):
                if temperature == 0:
                    return logits.argmax(dim=-1, keepdim=True)
                if top_k is not None:
                    kth = torch.topk(logits, min(top_k, logits.size(-1)), dim=-1).values[:, -1:]
                    logits = logits.masked_fill(logits < kth, float("-inf"))
                probs = F.softmax(logits, dim=-1) / temperature
                probs = probs / probs.sum(dim=-1, keepdim=True)
                if top_p is not None:
                    sorted_probs, order = torch.sort(probs, dim=-1, descending=True)
                    before = sorted_probs.cumsum(-1) - sorted_probs
                    sorted_probs = sorted_probs.masked_fill(before >= top_p, 0.0)
                    probs = torch.zeros_like(probs).scatter(-1, order, sorted_probs)
                return torch.multinomial(probs, 1, generator=generator)
            """,
        "temperature_multiplies": variant("sample_next_token",
                                          ("logits / temperature", "logits * temperature")),
        "temperature_ignored": variant("sample_next_token", ("    logits = logits / temperature\n", "")),
        # argmax without keepdim: (B,) instead of (B, 1).
        "greedy_without_keepdim": variant("sample_next_token",
                                          ("argmax(dim=-1, keepdim=True)", "argmax(dim=-1)")),
        # topk(k + 1): the k-th largest is taken from one place too far.
        "top_k_keeps_one_more": variant("sample_next_token", ("min(top_k, ", "min(top_k + 1, ")),
        # <= instead of <: the k-th largest itself is dropped.
        "top_k_drops_the_kth": variant("sample_next_token", ("logits < kth", "logits <= kth")),
        # torch.topk(logits, top_k) fails when top_k exceeds the vocabulary.
        "top_k_not_clamped": variant("sample_next_token", ("min(top_k, logits.size(-1))", "top_k")),
        # cumsum > top_p removed without the shift: the token that crosses top_p goes too.
        "top_p_drops_the_crossing_token": variant("sample_next_token",
            (_BEFORE, "remove = probs.cumsum(dim=-1) > top_p\n        remove[:, 0] = False"),
            ("masked_fill(before >= top_p,", "masked_fill(remove,")),
        # Shifted twice (the shift done on a mask that was already "probability above"): one
        # token too many.
        "top_p_keeps_one_more": variant("sample_next_token", (_BEFORE, (
            "remove = (probs.cumsum(dim=-1) - probs) > top_p\n"
            "        remove[:, 1:] = remove[:, :-1].clone()\n"
            "        remove[:, 0] = False")), ("masked_fill(before >= top_p,", "masked_fill(remove,")),
        # The mask made in sorted order is applied to the unsorted logits.
        "top_p_mask_not_unsorted": variant("sample_next_token", (
            '        sorted_logits = sorted_logits.masked_fill(before >= top_p, float("-inf"))\n'
            '        logits = torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)\n',
            '        logits = logits.masked_fill(before >= top_p, float("-inf"))\n')),
        # The nucleus chosen from the probabilities before the temperature.
        "top_p_before_temperature": variant("sample_next_token",
            ("    logits = logits / temperature\n", ""),
            ("probs = F.softmax(logits, dim=-1)",
             "probs = F.softmax(logits / temperature, dim=-1)")),
        # Top-p computed on the full distribution and intersected with top-k afterwards.
        "top_p_ignores_top_k": """
            def sample_next_token(logits, temperature=1.0, top_k=None, top_p=None, generator=None):
                if temperature == 0:
                    return logits.argmax(dim=-1, keepdim=True)
                logits = logits / temperature
                keep = torch.ones_like(logits, dtype=torch.bool)
                if top_k is not None:
                    kth = torch.topk(logits, min(top_k, logits.size(-1)), dim=-1).values[:, -1:]
                    keep &= logits >= kth
                if top_p is not None:
                    probs, order = torch.sort(F.softmax(logits, dim=-1), dim=-1, descending=True)
                    sorted_keep = (probs.cumsum(dim=-1) - probs) < top_p
                    keep &= torch.zeros_like(keep).scatter(-1, order, sorted_keep)
                logits = logits.masked_fill(~keep, float("-inf"))
                return torch.multinomial(F.softmax(logits, dim=-1), num_samples=1, generator=generator)
            """,
        # The global random generator: a seed does not reproduce the draws.
        "generator_ignored": variant("sample_next_token", (", generator=generator)", ")")),
        # Divides the caller's logits in place.
        "temperature_in_place": variant("sample_next_token",
                                        ("logits = logits / temperature", "logits /= temperature")),
        # In-place masking; harmless after a division, but at temperature 1 there is none.
        "top_k_in_place_at_temperature_1": variant("sample_next_token",
            ("logits = logits / temperature",
             "logits = logits / temperature if temperature != 1.0 else logits"),
            ('logits = logits.masked_fill(logits < kth, float("-inf"))',
             'logits[logits < kth] = float("-inf")')),
        # Softmax over the batch dimension.
        "softmax_over_batch": variant("sample_next_token",
                                      ("F.softmax(logits, dim=-1)", "F.softmax(logits, dim=0)")),
        # Always greedy: no sampling at all.
        "always_argmax": variant("sample_next_token",
                                 (_DRAW, "    return logits.argmax(dim=-1, keepdim=True)\n")),
        # The cumulative sum over the tokens in vocabulary order, not sorted by probability.
        "top_p_without_sorting": variant("sample_next_token", (_TOP_P, (
            "    if top_p is not None:\n"
            "        probs = F.softmax(logits, dim=-1)\n"
            "        before = probs.cumsum(dim=-1) - probs\n"
            '        logits = logits.masked_fill(before >= top_p, float("-inf"))\n'))),
        # int32 ids.
        "int32_ids": variant("sample_next_token", ("generator=generator)", "generator=generator).int()")),
        # The k-th largest without keepdim: (B,) does not line up with the (B, V) logits.
        "top_k_threshold_without_keepdim": variant("sample_next_token", ("values[:, -1:]", "values[:, -1]")),
        # No greedy branch: logits / 0 is inf or NaN, which torch.multinomial refuses.
        "temperature_zero_not_greedy": variant("sample_next_token", (
            "    if temperature == 0:\n        return logits.argmax(dim=-1, keepdim=True)\n", "")),
        # argmax without dim: the position of the largest value of the whole tensor.
        "argmax_without_dim": variant("sample_next_token",
                                      ("logits.argmax(dim=-1, keepdim=True)", "torch.argmax(logits)")),
        # The largest value taken as the threshold: only one token is ever kept.
        "top_k_keeps_only_the_largest": variant("sample_next_token", ("values[:, -1:]", "values[:, :1]")),
        # masked_fill's result thrown away: top_k changes nothing.
        "top_k_result_discarded": variant("sample_next_token", (
            'logits = logits.masked_fill(logits < kth, float("-inf"))',
            'logits.masked_fill(logits < kth, float("-inf"))')),
        # Sorted in increasing order: the nucleus is made of the least likely tokens.
        "top_p_sorted_ascending": variant("sample_next_token", (
            "torch.sort(logits, dim=-1, descending=True)", "torch.sort(logits, dim=-1)")),
        # A new generator made on each call: every seed draws the same tokens.
        "fresh_generator_each_call": variant("sample_next_token",
                                             ("generator=generator)", "generator=torch.Generator())")),
        # The draw squeezed to (B,).
        "sample_squeezed": variant("sample_next_token", ("num_samples=1, generator=generator)",
                                                         "num_samples=1, generator=generator).squeeze(-1)")),
    },
    "forward_with_cache": {
        # Positions 0 .. T-1 as in a plain forward pass.
        "positions_restart_at_zero": variant("forward_with_cache",
                                             (_POSITIONS, "positions = torch.arange(T, device=idx.device)")),
        # Off by one: the first new token put after the cache's last position plus one.
        "positions_one_too_far": variant("forward_with_cache", (
            _POSITIONS, "positions = torch.arange(past + 1, past + T + 1, device=idx.device)")),
        # Attends to the cache but never stores the new keys and values.
        "cache_not_appended": variant("forward_with_cache", (
            "            cache[i] = (k, v)\n        else:\n            cache.append((k, v))\n", "")),
        # Stores only the new keys and values, replacing the old ones.
        "cache_overwritten": variant("forward_with_cache",
            ("        if i < len(cache):\n", "        new = (k, v)\n        if i < len(cache):\n"),
            ("cache[i] = (k, v)", "cache[i] = new"),
            ("cache.append((k, v))", "cache.append(new)")),
        # Rebinds the name: the caller's list stays empty.
        "cache_rebound": """
            def forward_with_cache(model, idx, cache):
                past = cache[0][0].size(2) if cache else 0
                B, T = idx.shape
                x = model.transformer.wte(idx) + model.transformer.wpe(torch.arange(past, past + T))
                new_cache = []
                for i, block in enumerate(model.transformer.h):
                    attn = block.attn
                    q, k, v = attn.c_attn(block.ln_1(x)).split(x.size(-1), dim=-1)
                    q, k, v = (split_heads(t, attn.n_head) for t in (q, k, v))
                    if cache:
                        k = torch.cat([cache[i][0], k], dim=2)
                        v = torch.cat([cache[i][1], v], dim=2)
                    new_cache.append((k, v))
                    mask = torch.ones(T, past + T, dtype=torch.bool).tril(diagonal=past)
                    y, _ = attention(q, k, v, mask)
                    x = x + attn.c_proj(merge_heads(y))
                    x = x + block.mlp(block.ln_2(x))
                cache = new_cache
                return model.lm_head(model.transformer.ln_f(x))
            """,
        # is_causal=True: the triangle starts at the first key, wrong once the cache is not empty.
        "sdpa_is_causal": variant("forward_with_cache", (_MASK, "mask = None"), (
            _ATTEND, "y = F.scaled_dot_product_attention(q, k, v, is_causal=T > 1)")),
        # No mask at all: right for one new token, wrong for a chunk.
        "no_mask": variant("forward_with_cache", (_MASK, "mask = None")),
        # The mask of a plain forward pass, only when the cache is empty.
        "mask_only_without_cache": variant("forward_with_cache",
                                           (_MASK, "mask = causal_mask(T) if past == 0 else None")),
        # The (T, T) causal mask padded with True on the left, but built with the wrong diagonal.
        "mask_diagonal_zero": variant("forward_with_cache", ("tril(diagonal=past)", "tril()")),
        # Only the last position's logits.
        "last_position_only": variant("forward_with_cache",
            ("model.lm_head(model.transformer.ln_f(x))",
             "model.lm_head(model.transformer.ln_f(x[:, -1:, :]))[:, -1, :]")),
        # The MLP on the residual stream without ln_2.
        "mlp_without_ln_2": variant("forward_with_cache", ("block.mlp(block.ln_2(x))", "block.mlp(x)")),
        # ln_f forgotten.
        "no_final_layernorm": variant("forward_with_cache",
                                      ("model.lm_head(model.transformer.ln_f(x))", "model.lm_head(x)")),
        # Concatenated along the heads instead of the sequence.
        "cat_along_heads": variant("forward_with_cache", ("torch.cat([cache[i][0], k], dim=2)",
                                                          "torch.cat([cache[i][0], k], dim=1)"),
                                   ("torch.cat([cache[i][1], v], dim=2)", "torch.cat([cache[i][1], v], dim=1)")),
        # A new entry appended on every call, not only for a new block.
        "always_appends": variant("forward_with_cache", (
            "            cache[i] = (k, v)\n        else:\n            cache.append((k, v))\n",
            "        cache.append((k, v))\n")),
        # S taken as the length of the list (the number of blocks), not of the cached keys.
        "past_is_len_cache": variant("forward_with_cache",
                                     ("past = cache[0][0].size(2) if cache else 0", "past = len(cache)")),
        # S read from the heads' dimension of the cached keys.
        # torch.arange without device=: the positions stay on the CPU when the model and idx are
        # on a GPU ("Expected all tensors to be on the same device").
        "positions_on_the_cpu": variant("forward_with_cache",
                                        (_POSITIONS, "positions = torch.arange(past, past + T)")),
        # The mask made without device=: masked_fill or the attention mixes it with GPU scores.
        "mask_on_the_cpu": variant("forward_with_cache",
                                   (_MASK, "mask = torch.ones(T, past + T, dtype=torch.bool).tril(diagonal=past)")),
        "past_from_the_heads_dimension": variant("forward_with_cache",
                                                 ("cache[0][0].size(2) if cache", "cache[0][0].size(1) if cache")),
        # Keys and values cached before split_heads: (B, S, C), so the cache has the wrong layout.
        "cache_before_split_heads": """
            def forward_with_cache(model, idx, cache):
                past = cache[0][0].size(1) if cache else 0
                B, T = idx.shape
                x = model.transformer.wte(idx) + model.transformer.wpe(torch.arange(past, past + T))
                for i, block in enumerate(model.transformer.h):
                    attn = block.attn
                    q, k, v = attn.c_attn(block.ln_1(x)).split(x.size(-1), dim=-1)
                    if i < len(cache):
                        k = torch.cat([cache[i][0], k], dim=1)
                        v = torch.cat([cache[i][1], v], dim=1)
                        cache[i] = (k, v)
                    else:
                        cache.append((k, v))
                    q, k, v = (split_heads(t, attn.n_head) for t in (q, k, v))
                    mask = torch.ones(T, past + T, dtype=torch.bool).tril(diagonal=past)
                    y, _ = attention(q, k, v, mask)
                    x = x + attn.c_proj(merge_heads(y))
                    x = x + block.mlp(block.ln_2(x))
                return model.lm_head(model.transformer.ln_f(x))
            """,
    },
    "generate": {
        # The whole sequence every step: the model refuses more than block_size tokens.
        "no_cropping": variant("generate", ("model(idx[:, -block_size:])", "model(idx)"),
                               ("forward_with_cache(model, idx[:, -block_size:], cache)",
                                "forward_with_cache(model, idx, cache)")),
        # One token short of the window.
        "crops_one_short": variant("generate",
            ("model(idx[:, -block_size:])", "model(idx[:, -(block_size - 1):])"),
            ("forward_with_cache(model, idx[:, -block_size:], cache)",
             "forward_with_cache(model, idx[:, -(block_size - 1):], cache)")),
        # The first block_size tokens instead of the last.
        "crops_the_start": variant("generate", ("model(idx[:, -block_size:])", "model(idx[:, :block_size])"),
                                   ("forward_with_cache(model, idx[:, -block_size:], cache)",
                                    "forward_with_cache(model, idx[:, :block_size], cache)")),
        # use_cache is ignored: always the slow path.
        "cache_never_used": variant("generate", ("if not use_cache:", "if True:")),
        # The cache is never restarted: positions run past block_size.
        "cache_never_restarted": variant("generate", (_RESTART, "elif cache is None:")),
        # Slides the cache by dropping its oldest entry: the cached keys carry their old positions.
        "cache_slides": variant("generate", (_RESTART, "elif cache is None:"), (_STEP, (
            "                if cache[0][0].size(2) >= block_size:\n"
            "                    for i, (k, v) in enumerate(cache):\n"
            "                        cache[i] = (k[:, :, 1:], v[:, :, 1:])\n" + _STEP))),
        # No eval mode.
        "no_eval": variant("generate", ("    model.eval()\n", "")),
        # eval, never back.
        "mode_not_restored": variant("generate", ("model.train(was_training)", "pass")),
        # Always back to training mode, whatever it was.
        "always_train_after": variant("generate", ("model.train(was_training)", "model.train()")),
        # Gradients on: no decorator.
        "no_no_grad": variant("generate", ("@torch.no_grad()\n", "")),
        # Options not passed on: always temperature 1, no filters.
        "options_not_passed": variant("generate",
                                      ("temperature, top_k, top_p, generator)", "generator=generator)")),
        # The generator not passed on.
        "generator_not_passed": variant("generate", ("top_k, top_p, generator)", "top_k, top_p)")),
        # The first position's logits.
        "first_position_logits": variant("generate", ("logits[:, -1, :]", "logits[:, 0, :]")),
        # The cache restarted on the whole text, not the window: fails once the text is longer.
        "cache_restart_uncropped": variant("generate",
            ("forward_with_cache(model, idx[:, -block_size:], cache)",
             "forward_with_cache(model, idx, cache)")),
        # Returns the new tokens only.
        "returns_new_tokens_only": variant("generate",
            ("    block_size = model.config.block_size\n",
             "    block_size = model.config.block_size\n    T0 = idx.size(1)\n"),
            ("    return idx", "    return idx[:, T0:]")),
        # The model's (logits, loss) taken as the logits.
        "model_output_not_unpacked": variant("generate", ("logits, _ = model(idx[:, -block_size:])",
                                                          "logits = model(idx[:, -block_size:])")),
        # The new tokens appended as new rows.
        "cat_along_batch": variant("generate", ("torch.cat([idx, next_id], dim=1)",
                                                "torch.cat([idx, next_id], dim=0)")),
        # The logits divided by the temperature before the sampler, which divides them again.
        "temperature_applied_twice": variant("generate", (
            "            next_id = sample_next_token(logits[:, -1, :], temperature,",
            "            last = logits[:, -1, :] / temperature if temperature > 0 else logits[:, -1, :]\n"
            "            next_id = sample_next_token(last, temperature,")),
        # Probabilities handed to the sampler, which takes their softmax again.
        "probabilities_to_the_sampler": variant("generate", (
            "sample_next_token(logits[:, -1, :], temperature,",
            "sample_next_token(F.softmax(logits[:, -1, :], dim=-1), temperature,")),
        # The whole window fed to forward_with_cache every step, with the same cache.
        "window_into_the_cache_each_step": variant("generate", (
            _STEP, "                logits = forward_with_cache(model, idx[:, -block_size:], cache)\n")),
    },
}

# For each wrong answer: the rule of the exercise's text it breaks, and a fragment the failure
# message must hold (the mistake named in the learner's terms; None: a general message will do).
EXPECT = {
    "sample_next_token": {
        "top_p_fill_on_the_cpu": ("on the logits' device", "and one on the cpu: a tensor made inside your code"),
        "top_k_mask_on_the_cpu": ("on the logits' device", "and one on the cpu: a tensor made inside your code"),
        "temperature_divides_probabilities": ("temperature", "the temperature changed nothing"),
        "temperature_multiplies": ("temperature", "divided by the temperature, not multiplied"),
        "temperature_ignored": ("temperature", "the temperature changed nothing"),
        "greedy_without_keepdim": ("(B, 1) token ids", "the dimension of the new token was dropped"),
        "top_k_keeps_one_more": ("top-k", "4 tokens were kept"),
        "top_k_drops_the_kth": ("top-k", "keeps the k-th largest logit itself"),
        "top_k_not_clamped": ("top-k", "min(top_k, logits.size(-1))"),
        "top_p_drops_the_crossing_token": ("top-p",
                                           "dropped the token that makes the cumulative probability cross"),
        "top_p_keeps_one_more": ("top-p", "kept one token too many"),
        "top_p_mask_not_unsorted": ("top-p", "put the decision back in vocabulary order"),
        "top_p_before_temperature": ("top-p", "before the temperature"),
        "top_p_ignores_top_k": ("top-p", "left after top-k"),
        "generator_ignored": ("the generator", "pass generator=generator"),
        "temperature_in_place": ("logits unchanged", "changed the logits it was given in place"),
        "top_k_in_place_at_temperature_1": ("logits unchanged", "changed its input"),
        "softmax_over_batch": ("draws from the softmax", "the softmax went over the batch"),
        "always_argmax": ("draws from the softmax", "returned the most likely token of each row every time"),
        "top_p_without_sorting": ("top-p", "sort the probabilities in decreasing order"),
        "int32_ids": ("(B, 1) token ids", "should be a LongTensor"),
        "top_k_threshold_without_keepdim": ("top-k", "keep the k-th largest logit's dimension, shape (B, 1)"),
        "temperature_zero_not_greedy": ("greedy at temperature 0",
                                        "temperature 0 is greedy: return logits.argmax"),
        "argmax_without_dim": ("(B, 1) token ids", "argmax without dim="),
        "top_k_keeps_only_the_largest": ("top-k", "only the most likely token of each row was kept, not 3"),
        "top_k_result_discarded": ("top-k", "are more than k kept?"),
        "top_p_sorted_ascending": ("top-p", "sort the probabilities in decreasing order"),
        "fresh_generator_each_call": ("the generator", "generators with different seeds drew the same tokens"),
        "sample_squeezed": ("(B, 1) token ids", "keep a dimension for the one new token"),
    },
    "forward_with_cache": {
        "positions_restart_at_zero": ("positions follow the cache", "positions start at 0 again"),
        "positions_one_too_far": ("positions follow the cache", "the positions are one too far"),
        "cache_not_appended": ("the cache list", "the cache list is still empty"),
        "cache_overwritten": ("the cache list", "the cache kept only the last call's keys and values"),
        "cache_rebound": ("the cache list", "makes a new list the caller never sees"),
        "sdpa_is_causal": ("the mask", "the causal mask is aligned with the first key"),
        "no_mask": ("the mask", "a chunk of several new tokens is not masked"),
        "mask_only_without_cache": ("the mask", "after a non-empty cache is not masked"),
        "mask_diagonal_zero": ("the mask", "the causal mask is aligned with the first key"),
        "last_position_only": ("same logits", "return the logits of every new position"),
        "mlp_without_ln_2": ("same logits", "the MLP half of a block reads ln_2"),
        "no_final_layernorm": ("same logits", "the final LayerNorm is missing"),
        "cat_along_heads": ("the cache list", "along the sequence dimension, torch.cat([...], dim=2)"),
        "always_appends": ("the cache list", "append a block's pair only while the cache is empty"),
        "past_is_len_cache": ("positions follow the cache", "S is the length of the cached keys"),
        "past_from_the_heads_dimension": ("positions follow the cache", "S is the length of the cached keys"),
        "positions_on_the_cpu": ("on idx's device", "and one on the cpu: a tensor made inside your code"),
        "mask_on_the_cpu": ("on idx's device", "and one on the cpu: a tensor made inside your code"),
        "cache_before_split_heads": ("the cache list", "expected (B, n_head, S, head_size)"),
    },
    "generate": {
        "no_cropping": ("the window", "crop its input to the last block_size tokens"),
        "crops_one_short": ("the window", "the window is one token too short"),
        "crops_the_start": ("the window", "the window is the first block_size tokens"),
        "cache_never_used": ("the cache", "call forward_with_cache on the newest token only"),
        "cache_never_restarted": ("the cache", "'cached + 1 new': the cache is full"),
        "cache_slides": ("the cache", "dropping the cache's oldest entries is not the same"),
        "no_eval": ("eval mode, restored", "call model.eval() first"),
        "mode_not_restored": ("eval mode, restored", "restore the mode it was in"),
        "always_train_after": ("eval mode, restored", "restore the mode it was in"),
        "no_no_grad": ("no gradients", "gradients were recorded while generating"),
        "options_not_passed": ("options passed on", "passed on to sample_next_token"),
        "generator_not_passed": ("options passed on", "pass generator on to sample_next_token"),
        "first_position_logits": ("the next token", "the logits of the window's first position"),
        "cache_restart_uncropped": ("the cache",
                                    "'0 cached + N new': start each cache on the last block_size tokens"),
        "returns_new_tokens_only": ("prompt first", "return the prompt followed by the new tokens"),
        "model_output_not_unpacked": ("the window", "the model returns (logits, loss)"),
        "cat_along_batch": ("the next token", "append the new tokens along the sequence"),
        "window_into_the_cache_each_step": ("the cache", "give forward_with_cache the newest token only"),
        "temperature_applied_twice": ("options passed on", "divided by the temperature twice"),
        "probabilities_to_the_sampler": ("options passed on", "got probabilities instead of logits"),
    },
}

VALID = {
    "sample_next_token": {
        # Hugging Face's way: remove where cumsum > top_p, shifted right by one.
        "top_p_shifted_mask": variant("sample_next_token", (_TOP_P, """\
    if top_p is not None:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        remove = F.softmax(sorted_logits, dim=-1).cumsum(dim=-1) > top_p
        remove[..., 1:] = remove[..., :-1].clone()
        remove[..., 0] = False
        logits = logits.masked_fill(remove.scatter(-1, order, remove), float("-inf"))
""")),
        # searchsorted finds how many tokens the nucleus needs.
        "top_p_searchsorted": variant("sample_next_token", (_TOP_P, """\
    if top_p is not None:
        probs, order = torch.sort(F.softmax(logits, dim=-1), dim=-1, descending=True)
        cum = probs.cumsum(dim=-1)
        n_keep = torch.searchsorted(cum, torch.full((logits.size(0), 1), float(top_p), device=logits.device),
                                    right=False) + 1
        ranks = torch.arange(logits.size(-1), device=logits.device).expand_as(logits)
        sorted_keep = ranks < n_keep
        keep = torch.zeros_like(sorted_keep).scatter(-1, order, sorted_keep)
        logits = logits.masked_fill(~keep, float("-inf"))
""")),
        # Top-k by sorting.
        "top_k_by_sort": variant("sample_next_token", (_TOP_K, """\
    if top_k is not None:
        k = min(top_k, logits.size(-1))
        kth = torch.sort(logits, dim=-1, descending=True).values[:, k - 1].unsqueeze(-1)
        logits = torch.where(logits >= kth, logits, torch.full_like(logits, float("-inf")))
""")),
        # The Gumbel-max trick with the generator: argmax(logits + Gumbel noise) samples the
        # same distribution as softmax + multinomial.
        "gumbel_max": variant("sample_next_token", (_DRAW, """\
    u = torch.rand(logits.shape, generator=generator, device=logits.device).clamp_min(1e-20)
    return (logits - torch.log(-torch.log(u))).argmax(dim=-1, keepdim=True)
""")),
        # Exponential races: argmax(p / E) with E ~ Exp(1) is a draw from p.
        "exponential_race": variant("sample_next_token", (_DRAW, """\
    probs = F.softmax(logits, dim=-1)
    e = torch.empty_like(probs).exponential_(1.0, generator=generator)
    return (probs / e).argmax(dim=-1, keepdim=True)
""")),
        # Temperature on the probabilities as a power: p ** (1 / T) renormalised is
        # softmax(logits / T); unnormalised weights are fine for multinomial.
        "probability_power": """
            def sample_next_token(logits, temperature=1.0, top_k=None, top_p=None, generator=None):
                if not temperature:
                    return torch.argmax(logits, dim=1).unsqueeze(1)
                probs = torch.softmax(logits.double(), dim=-1) ** (1.0 / temperature)
                probs = probs / probs.sum(dim=-1, keepdim=True)
                if top_k is not None:
                    kth = probs.topk(min(top_k, probs.size(-1)), dim=-1).values[:, -1:]
                    probs = torch.where(probs >= kth, probs, torch.zeros_like(probs))
                    probs = probs / probs.sum(dim=-1, keepdim=True)
                if top_p is not None:
                    sorted_probs, order = probs.sort(dim=-1, descending=True)
                    keep = (sorted_probs.cumsum(-1) - sorted_probs) < top_p
                    probs = torch.zeros_like(probs).scatter(-1, order, sorted_probs * keep)
                return torch.multinomial(probs, 1, generator=generator)
            """,
        "reference": variant("sample_next_token"),
        # Top-k before the temperature: dividing by a positive number keeps the order, so the same
        # tokens are kept (top-p, which reads probabilities, still comes after the temperature).
        "temperature_after_top_k": variant("sample_next_token", ("    logits = logits / temperature\n", ""),
                                           (_TOP_K, _TOP_K + "    logits = logits / temperature\n")),
        # Temperature 0 as top_k=1 sampling: a single token left is drawn every time.
        "greedy_as_top_k_1": variant("sample_next_token", ("        return logits.argmax(dim=-1, keepdim=True)\n",
                                                           "        temperature, top_k, top_p = 1.0, 1, None\n")),
        # In-place operations on its own copy.
        "in_place_on_a_copy": variant("sample_next_token",
            ("logits = logits / temperature", "logits = logits.clone()\n    logits /= temperature"),
            ('logits = logits.masked_fill(logits < kth, float("-inf"))',
             'logits.masked_fill_(logits < kth, float("-inf"))')),
    },
    "forward_with_cache": {
        # SDPA with the boolean (T, S + T) mask.
        "sdpa_with_mask": variant("forward_with_cache",
                                  (_ATTEND, "y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)")),
        # is_causal only when there is no cache; one new token needs no mask.
        "sdpa_causal_only_when_square": variant("forward_with_cache", (_MASK, "mask = None"), (_ATTEND, (
            "y = F.scaled_dot_product_attention(q, k, v, is_causal=(past == 0 and T > 1)) if past == 0 or T == 1 "
            "else F.scaled_dot_product_attention(q, k, v, "
            "attn_mask=torch.ones(T, past + T, dtype=torch.bool, device=idx.device).tril(past))"))),
        # Entries as mutable [k, v] lists, extended in place; the mask from position numbers;
        # the position embeddings sliced from the weight.
        "list_entries_and_position_mask": """
            def forward_with_cache(model, idx, cache):
                S = 0 if len(cache) == 0 else cache[0][0].shape[-2]
                T = idx.shape[1]
                pos = torch.arange(S, S + T, device=idx.device)
                x = model.transformer.wte(idx) + model.transformer.wpe.weight[S:S + T]
                keys_pos = torch.arange(S + T, device=idx.device)
                allowed = keys_pos[None, :] <= pos[:, None]          # (T, S + T)
                for i, block in enumerate(model.transformer.h):
                    h = block.ln_1(x)
                    qkv = block.attn.c_attn(h)
                    q, k, v = qkv.chunk(3, dim=-1)
                    nh = model.config.n_head
                    q, k, v = split_heads(q, nh), split_heads(k, nh), split_heads(v, nh)
                    if len(cache) <= i:
                        cache.append([k, v])
                    else:
                        cache[i][0] = torch.cat((cache[i][0], k), dim=-2)
                        cache[i][1] = torch.cat((cache[i][1], v), dim=-2)
                    K, V = cache[i]
                    att = torch.einsum("bhtd,bhsd->bhts", q, K) / math.sqrt(q.size(-1))
                    att = att.masked_fill(~allowed, float("-inf")).softmax(dim=-1)
                    x = x + block.attn.c_proj(merge_heads(att @ V))
                    x = x + block.mlp(block.ln_2(x))
                return model.lm_head(model.transformer.ln_f(x))
            """,
        "reference": variant("forward_with_cache"),
        # SDPA with an additive float mask (0 where allowed, -inf elsewhere).
        "sdpa_additive_mask": variant("forward_with_cache", (_ATTEND, (
            "y = F.scaled_dot_product_attention(q, k, v, attn_mask=torch.zeros(mask.shape, device=idx.device)"
            '.masked_fill(~mask, float("-inf")))'))),
    },
    "generate": {
        # A while loop on the length; with torch.no_grad() inside.
        "while_loop": """
            def generate(model, idx, max_new_tokens, temperature=1.0, top_k=None, top_p=None,
                         generator=None, use_cache=True):
                bs = model.config.block_size
                mode = model.training
                model.eval()
                target = idx.size(1) + max_new_tokens
                cache = []
                with torch.no_grad():
                    while idx.size(1) < target:
                        if use_cache and cache and cache[0][0].size(2) < bs:
                            logits = forward_with_cache(model, idx[:, -1:], cache)
                        elif use_cache:
                            cache = []
                            logits = forward_with_cache(model, idx[:, -bs:], cache)
                        else:
                            logits = model(idx[:, -bs:])[0]
                        idx = torch.cat((idx, sample_next_token(logits[:, -1], temperature, top_k,
                                                                top_p, generator)), dim=1)
                model.train(mode)
                return idx
            """,
        # Once the window is full, give up on the cache and read whole windows.
        "uncached_once_full": variant("generate", (_RESTART, "elif cache is None:"), (_STEP, (
            "                if cache[0][0].size(2) >= block_size:\n"
            "                    logits, _ = model(idx[:, -block_size:])\n"
            "                else:\n"
            "                    logits = forward_with_cache(model, idx[:, -1:], cache)\n"))),
        # inference_mode, a preallocated output, and try/finally for the mode.
        "inference_mode_preallocated": """
            def generate(model, idx, max_new_tokens, temperature=1.0, top_k=None, top_p=None,
                         generator=None, use_cache=True):
                B, T = idx.shape
                block_size = model.config.block_size
                out = torch.empty(B, T + max_new_tokens, dtype=torch.long)
                out[:, :T] = idx
                was_training = model.training
                model.eval()
                try:
                    with torch.inference_mode():
                        cache = []
                        for t in range(T, T + max_new_tokens):
                            if not use_cache:
                                logits = model(out[:, max(0, t - block_size):t])[0]
                            elif not cache or cache[0][0].shape[2] == block_size:
                                cache.clear()
                                logits = forward_with_cache(model, out[:, max(0, t - block_size):t], cache)
                            else:
                                logits = forward_with_cache(model, out[:, t - 1:t], cache)
                            out[:, t:t + 1] = sample_next_token(logits[:, -1, :], temperature, top_k, top_p,
                                                                generator)
                finally:
                    model.train(was_training)
                return out
            """,
        "reference": variant("generate"),
        # inference_mode instead of no_grad.
        "inference_mode_decorator": variant("generate", ("@torch.no_grad()", "@torch.inference_mode()")),
    },
}

WRONG, VALID = map(_tidy, (WRONG, VALID))
