"""gpt2course.heads: reading a model's attention, the repeated random sequences, the per-position
loss, and the small trained model shipped in data/trained/ (its checksum, its record, and the
previous-token and induction heads notebooks 07 and 10 say it has)."""

from __future__ import annotations


import pytest
import torch
import torch.nn.functional as F

from gpt2course import heads
from gpt2course.datafiles import CHECKSUMS, DataFileError, sha256, verified_path
from gpt2course.reference import GPT, GPTConfig, induction_scores, previous_token_scores
from gpt2course.reference import multi_head
from gpt2course.training.fused import fuse


def _model(seed=0, **kw):
    torch.manual_seed(seed)
    config = dict(vocab_size=97, block_size=24, n_layer=3, n_head=4, n_embd=32)
    config.update(kw)
    return GPT(GPTConfig(**config))


def _weights_seen_by_attention(model, idx, monkeypatch):
    """The weights the reference attention itself computes, layer by layer (captured)."""
    seen = []
    original = multi_head.attention

    def capturing(q, k, v, mask=None):
        out, w = original(q, k, v, mask)
        seen.append(w.detach().clone())
        return out, w

    monkeypatch.setattr(multi_head, "attention", capturing)
    with torch.no_grad():
        model(idx)
    return torch.stack(seen, dim=1)


def test_attention_weights_are_the_weights_the_model_computes(monkeypatch):
    model = _model()
    with torch.no_grad():  # weights that are not all alike: a model that has "learned" something
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    idx = torch.randint(0, 97, (3, 17), generator=torch.Generator().manual_seed(1))
    got = heads.attention_weights(model, idx)
    expected = _weights_seen_by_attention(model, idx, monkeypatch)
    assert got.shape == (3, 3, 4, 17, 17)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    assert torch.all(got.triu(diagonal=1) == 0)
    torch.testing.assert_close(got.sum(-1), torch.ones(3, 3, 4, 17))


def test_attention_weights_of_a_fused_model_and_modes_restored():
    model = _model(seed=3)
    idx = torch.randint(0, 97, (2, 11), generator=torch.Generator().manual_seed(2))
    plain = heads.attention_weights(model, idx)
    model.train()
    fuse(model, head=False)   # SDPA attention keeps no weights: they must be recomputed
    fused = heads.attention_weights(model, idx)
    assert model.training, "the model's mode is restored"
    torch.testing.assert_close(fused, plain)
    assert all(not m._forward_pre_hooks for m in model.modules()), "no hook is left behind"


def test_repeated_random_tokens():
    pool = torch.tensor([5, 9, 11, 40, 41, 42, 77])
    idx = heads.repeated_random_tokens(pool, 5, batch=4, generator=torch.Generator().manual_seed(0))
    assert idx.shape == (4, 10) and idx.dtype == torch.long
    assert torch.equal(idx[:, :5], idx[:, 5:])
    for row in idx[:, :5]:
        assert len(set(row.tolist())) == 5 and set(row.tolist()) <= set(pool.tolist())
    again = heads.repeated_random_tokens(pool, 5, batch=4, generator=torch.Generator().manual_seed(0))
    assert torch.equal(idx, again)
    assert not torch.equal(idx[0], idx[1]) or not torch.equal(idx[1], idx[2])
    with pytest.raises(ValueError, match="period"):
        heads.repeated_random_tokens(pool, 8)


def test_per_position_loss_matches_the_mean_loss():
    model = _model(seed=4)
    idx = torch.randint(0, 97, (5, 13), generator=torch.Generator().manual_seed(3))
    loss = heads.per_position_loss(model, idx)
    assert loss.shape == (12,)
    with torch.no_grad():
        logits, mean = model(idx[:, :-1], idx[:, 1:])
    torch.testing.assert_close(loss.mean(), mean, rtol=1e-5, atol=1e-6)
    first = F.cross_entropy(logits[:, 0], idx[:, 1])
    torch.testing.assert_close(loss[0], first, rtol=1e-5, atol=1e-6)


def test_text_token_pool_reads_bytes_or_gpt2_tokens():
    assert heads.text_token_pool(256, "abca").tolist() == sorted({64, 65, 66})  # GPT-2's byte ids
    bpe = heads.text_token_pool(50257, "Hello world Hello")
    assert bpe.tolist() == [995, 15496, 18435]


# ---- the shipped model ---------------------------------------------------------------------

def test_the_shipped_model_is_verified_and_loads():
    path = verified_path(heads.TRAINED_MODEL)
    assert sha256(path) == CHECKSUMS[heads.TRAINED_MODEL]
    assert path.stat().st_size < 8 * 2**20
    model, record = heads.load_trained_model()
    assert not model.training
    assert model.config.n_layer >= 2
    assert model.lm_head.weight is model.transformer.wte.weight
    assert record["format"] == "gpt2course-trained-model-1"
    assert record["command"].startswith("python -m gpt2course train ")
    assert int(record["steps"]) == record["train_config"]["max_steps"]
    for flag, field in (("--n-layer", "n_layer"), ("--n-head", "n_head"), ("--n-embd", "n_embd"),
                        ("--vocab-size", "vocab_size"), ("--max-steps", "max_steps")):
        assert f"{flag} {record['train_config'][field]}" in record["command"], flag


def test_a_corrupt_shipped_model_is_refused(tmp_path, monkeypatch):
    (tmp_path / "trained").mkdir()
    original = verified_path(heads.TRAINED_MODEL).read_bytes()
    (tmp_path / heads.TRAINED_MODEL).write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
    monkeypatch.setenv("GPT2COURSE_DATA", str(tmp_path))
    with pytest.raises(DataFileError, match="corrupt"):
        heads.load_trained_model()


def test_the_shipped_model_has_previous_token_heads_and_no_induction_head_yet():
    """What data/trained/README.md reports, measured as notebooks 07 and 10 measure it."""
    model, _ = heads.load_trained_model()
    pool = heads.text_token_pool(model.config.vocab_size)
    period = 50
    idx = heads.repeated_random_tokens(pool, period, 8, torch.Generator().manual_seed(0))
    mean = heads.attention_weights(model, idx).mean(0)
    previous, induction = previous_token_scores(mean), induction_scores(mean, period)
    T = 2 * period
    even = torch.ones(T, T).tril()
    even = (even / even.sum(-1, keepdim=True)).expand(1, 1, T, T)
    even_previous, even_induction = previous_token_scores(even).item(), induction_scores(even, period).item()
    assert previous.max() > 2.5 * even_previous, (previous, even_previous)
    assert induction.max() < 2 * even_induction, (induction, even_induction)
    loss = heads.per_position_loss(model, idx)
    assert loss[period:].mean() > 0.9 * loss[: period - 1].mean(), "no copying: the loss stays up"
