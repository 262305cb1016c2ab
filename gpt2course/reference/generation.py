"""Notebook 09: sampling the next token and generating text."""

import torch
import torch.nn.functional as F

from .attention import attention
from .multi_head import merge_heads, split_heads


# ---- generated from solutions/09_generation.ipynb by `python -m grader build` ----
# cells: sample_next_token, forward_with_cache, generate
# Edit those answer cells in the notebook, not the code below.


def sample_next_token(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
                      top_p: float | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
    """logits (B, vocab_size) of the last position -> next token ids (B, 1).

    ``temperature`` 0 picks the most likely token (greedy); otherwise the logits are divided by
    it, only the ``top_k`` most likely tokens and the smallest set whose probability reaches
    ``top_p`` are kept, and one token is drawn with ``generator``."""
    ### BEGIN SOLUTION
    if temperature == 0:
        return logits.argmax(dim=-1, keepdim=True)
    logits = logits / temperature
    if top_k is not None:
        kth = torch.topk(logits, min(top_k, logits.size(-1)), dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        probs = F.softmax(sorted_logits, dim=-1)
        before = probs.cumsum(dim=-1) - probs  # probability of the tokens ranked above each one
        sorted_logits = sorted_logits.masked_fill(before >= top_p, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)
    probs = F.softmax(logits, dim=-1)
    return torch.multinomial(probs, num_samples=1, generator=generator)
    ### END SOLUTION


def forward_with_cache(model, idx: torch.Tensor, cache: list) -> torch.Tensor:
    """Run ``model`` (a GPT) on new tokens idx (B, T) that follow the positions in ``cache``
    and return their logits (B, T, vocab_size).

    ``cache`` holds one (keys, values) pair per block, each (B, n_head, S, head_size) for the S
    positions seen so far (an empty list at first); the new keys and values are appended to it.
    The new tokens sit at positions S .. S + T - 1 and attend to every earlier position."""
    ### BEGIN SOLUTION
    past = cache[0][0].size(2) if cache else 0
    B, T = idx.shape
    if past + T > model.config.block_size:
        raise ValueError(f"{past} cached + {T} new positions exceed block_size {model.config.block_size}")
    positions = torch.arange(past, past + T, device=idx.device)   # not 0 .. T-1: they follow the cache
    x = model.transformer.wte(idx) + model.transformer.wpe(positions)
    for i, block in enumerate(model.transformer.h):
        attn = block.attn
        q, k, v = attn.c_attn(block.ln_1(x)).split(x.size(-1), dim=-1)
        q, k, v = (split_heads(t, attn.n_head) for t in (q, k, v))
        if i < len(cache):
            k = torch.cat([cache[i][0], k], dim=2)
            v = torch.cat([cache[i][1], v], dim=2)
            cache[i] = (k, v)
        else:
            cache.append((k, v))
        # new token t (position past + t) may see keys 0 .. past + t
        mask = torch.ones(T, past + T, dtype=torch.bool, device=idx.device).tril(diagonal=past)
        y, _ = attention(q, k, v, mask)
        x = x + attn.c_proj(merge_heads(y))
        x = x + block.mlp(block.ln_2(x))
    return model.lm_head(model.transformer.ln_f(x))
    ### END SOLUTION


@torch.no_grad()
def generate(model, idx: torch.Tensor, max_new_tokens: int, temperature: float = 1.0,
             top_k: int | None = None, top_p: float | None = None,
             generator: torch.Generator | None = None, use_cache: bool = True) -> torch.Tensor:
    """Extend idx (B, T) by ``max_new_tokens`` tokens -> (B, T + max_new_tokens).

    The model reads at most its last ``block_size`` tokens (positions 0 .. block_size - 1).
    With ``use_cache`` the keys and values of earlier positions are kept (forward_with_cache)
    and each step runs the model on one new token; once the window is full it slides, and the
    window is read afresh, exactly as without the cache. Both give the same tokens."""
    ### BEGIN SOLUTION
    block_size = model.config.block_size
    was_training = model.training
    model.eval()
    try:
        cache = None
        for step in range(max_new_tokens):
            if not use_cache:
                logits, _ = model(idx[:, -block_size:])
            elif cache is None or cache[0][0].size(2) >= block_size:
                cache = []  # (re)start: the window's positions begin at 0 again
                logits = forward_with_cache(model, idx[:, -block_size:], cache)
            else:
                logits = forward_with_cache(model, idx[:, -1:], cache)
            next_id = sample_next_token(logits[:, -1, :], temperature, top_k, top_p, generator)
            idx = torch.cat([idx, next_id], dim=1)
    finally:
        model.train(was_training)
    return idx
    ### END SOLUTION
