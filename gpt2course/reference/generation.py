"""Notebook 09: sampling the next token and generating text."""

import torch
import torch.nn.functional as F


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


@torch.no_grad()
def generate(model, idx: torch.Tensor, max_new_tokens: int, temperature: float = 1.0,
             top_k: int | None = None, top_p: float | None = None,
             generator: torch.Generator | None = None, use_cache: bool = True) -> torch.Tensor:
    """Extend idx (B, T) by ``max_new_tokens`` tokens -> (B, T + max_new_tokens).

    The model reads at most its last ``block_size`` tokens. ``use_cache`` is accepted for the
    KV-cached path of notebook 09; both paths give the same tokens."""
    block_size = model.config.block_size
    was_training = model.training
    model.eval()
    try:
        for _ in range(max_new_tokens):
            logits, _ = model(idx[:, -block_size:])
            next_id = sample_next_token(logits[:, -1, :], temperature, top_k, top_p, generator)
            idx = torch.cat([idx, next_id], dim=1)
    finally:
        model.train(was_training)
    return idx
