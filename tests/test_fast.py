"""gpt2course.fast: fused modules compute what the course's modules compute."""

from __future__ import annotations

import copy

import torch

from gpt2course.fast import fuse, is_fused, unfuse
from gpt2course.reference import GPT, GPTConfig, generate


def _pair():
    torch.manual_seed(0)
    plain = GPT(GPTConfig(vocab_size=101, block_size=24, n_layer=3, n_head=4, n_embd=32))
    with torch.no_grad():
        for p in plain.parameters():
            p.add_(torch.randn_like(p) * 0.2)
    return plain, fuse(copy.deepcopy(plain))


def test_fused_model_keeps_parameters_and_names():
    plain, fused = _pair()
    assert is_fused(fused) and not is_fused(plain)
    assert list(plain.state_dict()) == list(fused.state_dict())
    assert fused.lm_head.weight is fused.transformer.wte.weight
    for (n1, p1), (n2, p2) in zip(plain.named_parameters(), fused.named_parameters()):
        assert n1 == n2 and torch.equal(p1, p2)


def test_fused_model_gives_the_same_logits_loss_and_gradients():
    plain, fused = _pair()
    x = torch.randint(0, 101, (3, 24))
    y = torch.randint(0, 101, (3, 24))
    outs = []
    for model in (plain, fused):
        logits, loss = model(x, y)
        loss.backward()
        outs.append((logits.detach(), loss.detach(), {n: p.grad for n, p in model.named_parameters()}))
    (l1, s1, g1), (l2, s2, g2) = outs
    assert (l1 - l2).abs().max() < 1e-5 and abs(float(s1 - s2)) < 1e-5
    for name in g1:
        assert (g1[name] - g2[name]).abs().max() < 1e-5, name


def test_unfuse_restores_the_course_code_and_generation_agrees():
    plain, fused = _pair()
    idx = torch.randint(0, 101, (2, 3))
    a = generate(fused, idx, 10, temperature=0)
    b = generate(plain, idx, 10, temperature=0)
    assert torch.equal(a, b)
    unfuse(fused)
    assert not is_fused(fused)
    assert [type(m) for m in fused.modules()] == [type(m) for m in plain.modules()]
