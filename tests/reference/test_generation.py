"""gpt2course.reference's sampling and generation: the KV cache gives the same tokens."""

from __future__ import annotations

import math

import pytest
import torch

from gpt2course.reference import GPT, GPTConfig, forward_with_cache, generate, sample_next_token


def _model(vocab=97, block=16, n_layer=2, n_head=2, n_embd=32, seed=0):
    torch.manual_seed(seed)
    model = GPT(GPTConfig(vocab, block, n_layer, n_head, n_embd)).eval()
    with torch.no_grad():  # away from the initialisation, so logits differ clearly
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    return model


@pytest.mark.parametrize("kwargs", [dict(temperature=0), dict(temperature=1.0),
                                    dict(temperature=0.7, top_k=5), dict(temperature=1.3, top_p=0.8),
                                    dict(temperature=1.0, top_k=20, top_p=0.95)])
@pytest.mark.parametrize("prompt_len, new", [(1, 10), (5, 30), (16, 4)])  # 30: slides past block_size
def test_cached_and_uncached_generation_give_the_same_tokens(kwargs, prompt_len, new):
    model = _model()
    idx = torch.randint(0, 97, (3, prompt_len), generator=torch.Generator().manual_seed(prompt_len))
    cached = generate(model, idx, new, use_cache=True, generator=torch.Generator().manual_seed(7), **kwargs)
    plain = generate(model, idx, new, use_cache=False, generator=torch.Generator().manual_seed(7), **kwargs)
    assert cached.shape == (3, prompt_len + new)
    assert torch.equal(cached[:, :prompt_len], idx)
    assert torch.equal(cached, plain)


def test_forward_with_cache_in_chunks_equals_one_forward():
    model = _model(n_layer=3, n_head=4)
    x = torch.randint(0, 97, (2, 16))
    with torch.no_grad():
        full, _ = model(x)
        cache = []
        parts = [forward_with_cache(model, x[:, a:b], cache) for a, b in [(0, 5), (5, 6), (6, 16)]]
    assert len(cache) == 3 and cache[0][0].shape == (2, 4, 16, 8)
    assert (torch.cat(parts, dim=1) - full).abs().max() < 1e-5
    with pytest.raises(ValueError, match="block_size"):
        forward_with_cache(model, x[:, :1], cache)


def test_generate_restores_training_mode_and_crops_long_prompts():
    model = _model(block=8).train()
    out = generate(model, torch.randint(0, 97, (1, 20)), 3, temperature=0)
    assert out.shape == (1, 23) and model.training


def test_temperature_zero_is_greedy():
    logits = torch.randn(4, 50, generator=torch.Generator().manual_seed(0))
    assert torch.equal(sample_next_token(logits, temperature=0), logits.argmax(-1, keepdim=True))


def _frequencies(logits, draws, **kwargs):
    gen = torch.Generator().manual_seed(1)
    many = logits.expand(draws, -1)
    ids = sample_next_token(many, generator=gen, **kwargs)
    assert ids.shape == (draws, 1) and ids.dtype == torch.long
    return torch.bincount(ids[:, 0], minlength=logits.size(-1)).double() / draws


@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.0])
def test_sampling_follows_softmax_of_scaled_logits(temperature):
    logits = torch.tensor([[2.0, 1.0, 0.5, 0.0, -1.0, -3.0]])
    draws = 200_000
    want = torch.softmax(logits[0].double() / temperature, -1)
    got = _frequencies(logits, draws, temperature=temperature)
    # each frequency is a binomial proportion: 5 standard errors leave ~1e-6 false alarms per
    # value, while the smallest mistake (temperature ignored) moves a value by > 0.01
    tolerance = 5 * torch.sqrt(want * (1 - want) / draws) + 1e-4
    assert ((got - want).abs() <= tolerance).all(), (got, want)


def test_top_k_and_top_p_keep_the_right_tokens():
    logits = torch.log(torch.tensor([[0.4, 0.3, 0.15, 0.1, 0.05]]))
    got = _frequencies(logits, 100_000, top_k=2)
    assert got[2:].sum() == 0 and abs(got[0] - 0.4 / 0.7) < 0.01
    # top_p = 0.7: 0.4 + 0.3 reaches it, so exactly the first two remain
    got = _frequencies(logits, 100_000, top_p=0.7)
    assert got[2:].sum() == 0 and got[1] > 0.3
    # top_p = 0.71: a third token is needed to reach it
    got = _frequencies(logits, 100_000, top_p=0.71)
    assert got[3:].sum() == 0 and got[2] > 0.1
    # the most likely token always stays, even for a tiny top_p
    assert _frequencies(logits, 1_000, top_p=1e-9)[0] == 1.0
    assert math.isclose(float(_frequencies(logits, 1_000, top_k=1)[0]), 1.0)
