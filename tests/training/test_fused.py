"""gpt2course.training.fused: fused modules compute what the course's modules compute."""

from __future__ import annotations

import copy

import torch

from gpt2course.training.fused import fuse, is_fused, unfuse
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


# --- the LM head and the loss in one autograd node (FusedGPT, head_and_loss) -------------------

import pytest  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from gpt2course.training import fused as fused_module  # noqa: E402
from gpt2course.training.fused import FusedGPT, head_and_loss  # noqa: E402


def _models(vocab_size, dtype=torch.float32):
    torch.manual_seed(0)
    plain = GPT(GPTConfig(vocab_size=vocab_size, block_size=16, n_layer=2, n_head=2, n_embd=16)).to(dtype)
    with torch.no_grad():
        for p in plain.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    return plain, fuse(copy.deepcopy(plain))


def _run(model, x, y, extra=None, use_loss=True):
    model.zero_grad(set_to_none=True)
    logits, loss = model(x, y)
    total = (loss if loss is not None and use_loss else 0) + (extra(logits) if extra else 0)
    total.backward()
    return logits.detach(), loss, {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}


def _close(a, b, tol):  # float32 rounding grows with the values' size
    return (a - b).abs().max() <= tol * max(1.0, float(a.abs().max()))


def _assert_same(a, b, tol):
    (l1, s1, g1), (l2, s2, g2) = a, b
    assert l1.shape == l2.shape and l2.is_contiguous()
    assert _close(l1, l2, tol)
    assert (s1 is None) == (s2 is None)
    if s1 is not None:
        assert _close(s1.detach(), s2.detach(), tol)
    for name in g1:
        assert _close(g1[name], g2[name], tol), name


@pytest.mark.parametrize("vocab_size", [101, 128])  # rows padded to 128 internally / already aligned
@pytest.mark.parametrize("shape", [(3, 16), (1, 1), (5, 1), (2, 7)])
@pytest.mark.parametrize("block_rows", [None, 3])  # one block of rows / blocks of 3 rows and a rest
def test_fused_head_and_loss_match_the_course_model(vocab_size, shape, block_rows, monkeypatch):
    if block_rows:
        monkeypatch.setattr(fused_module, "_ROWS_ELEMENTS", block_rows * vocab_size)
    plain, fused = _models(vocab_size)
    assert type(fused) is FusedGPT
    x = torch.randint(0, vocab_size, shape)
    y = torch.randint(0, vocab_size, shape)
    _assert_same(_run(plain, x, y), _run(fused, x, y), 1e-5)


def test_fused_loss_and_gradients_in_float64_agree_to_rounding():
    plain, fused = _models(101, torch.float64)
    x = torch.randint(0, 101, (4, 16))
    y = torch.randint(0, 101, (4, 16))
    _assert_same(_run(plain, x, y), _run(fused, x, y), 1e-12)


def test_fused_path_uses_the_logits_gradient_too():
    plain, fused = _models(101)
    x = torch.randint(0, 101, (2, 9))
    y = torch.randint(0, 101, (2, 9))
    penalty = lambda logits: 0.01 * (logits ** 2).mean() + logits[:, -1, 3].sum()  # noqa: E731
    _assert_same(_run(plain, x, y, penalty), _run(fused, x, y, penalty), 1e-5)


def test_fused_path_with_targets_but_only_the_logits_in_the_backward():
    plain, fused = _models(101)
    x = torch.randint(0, 101, (2, 9))
    use = lambda logits: (logits[:, 2:] ** 2).sum() * 0.01  # noqa: E731
    _assert_same(_run(plain, x, x, use, use_loss=False), _run(fused, x, x, use, use_loss=False), 1e-5)


def test_fused_model_without_targets_and_without_grad():
    plain, fused = _models(101)
    x = torch.randint(0, 101, (2, 5))
    y = torch.randint(0, 101, (2, 5))
    _assert_same(_run(plain, x, None, lambda lg: lg.sum()), _run(fused, x, None, lambda lg: lg.sum()), 1e-5)
    with torch.no_grad():
        (l1, s1), (l2, s2) = plain(x, y), fused(x, y)
        assert (l1 - l2).abs().max() < 1e-5 and abs(float(s1 - s2)) < 1e-6
        assert fused(x)[1] is None


def test_fused_model_ignores_targets_minus_100_like_cross_entropy():
    plain, fused = _models(101)
    x = torch.randint(0, 101, (2, 6))
    y = torch.randint(0, 101, (2, 6))
    y[0, 2] = y[1, 5] = -100
    _assert_same(_run(plain, x, y), _run(fused, x, y), 1e-5)


def test_fused_steps_in_a_row_and_two_losses_before_one_backward():
    plain, fused = _models(101)
    batches = [(torch.randint(0, 101, (3, 8)), torch.randint(0, 101, (3, 8))) for _ in range(3)]
    for x, y in batches:  # the reused buffer must not leak one step into the next
        _assert_same(_run(plain, x, y), _run(fused, x, y), 1e-5)
    outs = []
    for model in (plain, fused):
        model.zero_grad(set_to_none=True)
        (_, a), (_, b) = model(*batches[0]), model(*batches[1])
        (a + 2 * b).backward()
        outs.append([p.grad.clone() for p in model.parameters()])
    for g1, g2 in zip(*outs):
        assert (g1 - g2).abs().max() < 1e-5


def test_head_and_loss_matches_cross_entropy_for_large_logits():
    torch.manual_seed(1)
    h = (torch.randn(37, 8) * 30).requires_grad_()
    w = torch.randn(300, 8).requires_grad_()
    t = torch.randint(0, 300, (37,))
    logits, loss = head_and_loss(h, w, t)
    ref_logits = F.linear(h, w)
    ref = F.cross_entropy(ref_logits, t)
    assert torch.isfinite(loss) and float(ref.detach()) > 100  # far beyond exp's range: needs log-softmax
    assert torch.allclose(logits, ref_logits) and torch.allclose(loss, ref, rtol=1e-6)
    gh, gw = torch.autograd.grad(loss, (h, w))
    rh, rw = torch.autograd.grad(ref, (h, w))
    assert torch.allclose(gh, rh, atol=1e-5) and torch.allclose(gw, rw, atol=1e-5)


def test_fused_head_refuses_a_second_backward_and_head_false_keeps_the_course_head():
    _, fused = _models(101)
    x = torch.randint(0, 101, (2, 4))
    _, loss = fused(x, x)
    loss.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="head=False"):
        loss.backward()
    plain, _ = _models(101)
    blocks_only = fuse(copy.deepcopy(plain), head=False)
    assert type(blocks_only) is GPT and is_fused(blocks_only)
    assert type(unfuse(fuse(copy.deepcopy(plain)))) is GPT


def test_fused_model_with_an_untied_or_frozen_head():
    plain, fused = _models(101)
    for model in (plain, fused):
        model.lm_head.weight = torch.nn.Parameter(model.lm_head.weight.detach() * 1.5)
    x = torch.randint(0, 101, (2, 8))
    y = torch.randint(0, 101, (2, 8))
    _assert_same(_run(plain, x, y), _run(fused, x, y), 1e-5)
    plain, fused = _models(101)
    for model in (plain, fused):
        model.transformer.wte.weight.requires_grad_(False)
    a, b = _run(plain, x, y), _run(fused, x, y)
    assert "transformer.wte.weight" not in b[2] and fused.transformer.wte.weight.grad is None
    _assert_same(a, b, 1e-5)


def test_fused_adamw_keeps_the_groups_and_settings():
    from gpt2course.training.fused import fused_adamw
    from gpt2course.reference import configure_optimizer

    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=64, block_size=8, n_layer=1, n_head=2, n_embd=16))
    plain = configure_optimizer(model, 0.1, 3e-3, (0.8, 0.9))
    fused = fused_adamw(plain)
    assert fused.defaults["fused"] is True
    assert [g["weight_decay"] for g in fused.param_groups] == [g["weight_decay"] for g in plain.param_groups]
    assert [[id(p) for p in g["params"]] for g in fused.param_groups] == \
        [[id(p) for p in g["params"]] for g in plain.param_groups]
    for key in ("lr", "betas", "eps"):
        assert all(g[key] == plain.defaults[key] for g in fused.param_groups), key
