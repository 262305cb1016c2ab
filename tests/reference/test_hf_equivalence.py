"""The reference GPT computes what Hugging Face's GPT2LMHeadModel computes for the same weights.

transformers is the oracle here only (the learner's path never imports it). Every model is built
from a GPT2Config: nothing is downloaded.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from conftest import REPO
from gpt2course.fixtures import load_fixture
from gpt2course.reference import GPT, GPTConfig, load_hf_weights

transformers = pytest.importorskip("transformers")

ATOL = 1e-4

# (vocab_size, block_size, n_layer, n_head, n_embd, attention implementation of the oracle:
# "default" is the installed version's choice, SDPA in transformers 5)
CONFIGS = [
    (211, 16, 2, 4, 32, "default"),
    (97, 8, 1, 1, 24, "eager"),     # one head; a prime vocabulary
    (300, 12, 3, 5, 30, "default"),  # head size 6
    (128, 10, 2, 3, 36, "eager"),
]


def hf_model(vocab_size, block_size, n_layer, n_head, n_embd, attn="default", seed=0):
    """A randomly initialised GPT2LMHeadModel, float32, no dropout, eval mode."""
    torch.manual_seed(seed)
    extra = {} if attn == "default" else {"attn_implementation": attn}
    config = transformers.GPT2Config(
        vocab_size=vocab_size, n_positions=block_size, n_layer=n_layer, n_head=n_head,
        n_embd=n_embd, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
        bos_token_id=0, eos_token_id=0, **extra)
    return transformers.GPT2LMHeadModel(config).float().eval()


def ours_from(hf) -> GPT:
    c = hf.config
    model = GPT(GPTConfig(vocab_size=c.vocab_size, block_size=c.n_positions, n_layer=c.n_layer,
                          n_head=c.n_head, n_embd=c.n_embd, dropout=0.0))
    return load_hf_weights(model, hf.state_dict()).eval()


def perturb(hf, std=0.3, seed=1):
    """Add noise of ``std`` to every parameter, so that the weights are far from the init
    (GPT-2's init: std 0.02, LayerNorm 1 and 0, biases 0)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in hf.parameters():
            p.add_(torch.randn(p.shape, generator=g) * std)
    return hf


def lengths(block_size):
    return sorted({1, block_size // 2 + 1, block_size})


def compare_logits(hf, ours, block_size, vocab_size, seed=2):
    g = torch.Generator().manual_seed(seed)
    for T in lengths(block_size):
        for B in (1, 3):
            idx = torch.randint(0, vocab_size, (B, T), generator=g)
            with torch.no_grad():
                expected = hf(idx).logits
                got, loss = ours(idx)
            assert loss is None
            assert got.shape == expected.shape == (B, T, vocab_size)
            diff = (got - expected).abs().max().item()
            assert diff <= ATOL, f"B={B} T={T}: logits differ by {diff:.2e}"


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: "V{}-T{}-L{}-H{}-C{}-{}".format(*c))
def test_logits_match_transformers(cfg):
    vocab_size, block_size = cfg[0], cfg[1]
    hf = hf_model(*cfg)
    compare_logits(hf, ours_from(hf), block_size, vocab_size)


@pytest.mark.parametrize("cfg", CONFIGS[:3], ids=lambda c: "V{}-T{}-L{}-H{}-C{}-{}".format(*c))
def test_logits_match_after_perturbing_the_weights(cfg):
    vocab_size, block_size = cfg[0], cfg[1]
    hf = perturb(hf_model(*cfg))
    ours = ours_from(hf)
    idx = torch.randint(0, vocab_size, (2, block_size), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        spread = hf(idx).logits.std().item()
    assert spread > 0.5, "the perturbation should move the logits well away from the init's"
    compare_logits(hf, ours, block_size, vocab_size, seed=4)


@pytest.mark.parametrize("cfg", [CONFIGS[0], CONFIGS[1]], ids=["V211", "V97-one-head"])
def test_loss_matches_transformers_labels(cfg):
    """transformers shifts ``labels`` inside (position t predicts labels[t + 1]); ours takes the
    targets already shifted."""
    vocab_size, block_size = cfg[0], cfg[1]
    hf = perturb(hf_model(*cfg), std=0.1)
    ours = ours_from(hf)
    idx = torch.randint(0, vocab_size, (3, block_size), generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        expected = hf(idx, labels=idx).loss
        _, loss = ours(idx[:, :-1], targets=idx[:, 1:])
    assert abs(loss.item() - expected.item()) <= ATOL, (loss.item(), expected.item())


def test_fixture_logits_match_transformers():
    state_dict, config, cases = load_fixture()
    hf = hf_model(config.vocab_size, config.block_size, config.n_layer, config.n_head, config.n_embd)
    missing, unexpected = hf.load_state_dict(state_dict, strict=False)
    buffers = ("attn.bias", "attn.masked_bias")
    # Only the causal-mask buffers may differ (the file has them; transformers 5 does not).
    assert all(k.endswith(buffers) for k in missing + unexpected), (missing, unexpected)
    assert len(cases) >= 2
    for idx, expected in cases:
        with torch.no_grad():
            got = hf(idx).logits
        diff = (got - expected).abs().max().item()
        assert diff <= ATOL, f"idx {tuple(idx.shape)}: transformers' logits differ by {diff:.2e}"


def test_fixture_files_are_up_to_date():
    result = subprocess.run([sys.executable, "-m", "gpt2course.fixtures", "--check"], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_dropout_where_hugging_face_has_it():
    """With dropout 0.3 in training mode, the two models draw their dropout masks from one seed:
    equal logits mean that ours drops the same tensors, of the same shapes, in the same order as
    Hugging Face's (eager attention: dropout on the attention weights as a separate op): after the
    embeddings, on the attention weights, after the attention's c_proj and after the MLP's. In
    eval mode both are deterministic and equal again."""
    vocab_size, block_size, n_layer, n_head, n_embd, p = 89, 12, 2, 3, 24, 0.3
    torch.manual_seed(0)
    config = transformers.GPT2Config(
        vocab_size=vocab_size, n_positions=block_size, n_layer=n_layer, n_head=n_head, n_embd=n_embd,
        resid_pdrop=p, embd_pdrop=p, attn_pdrop=p, bos_token_id=0, eos_token_id=0,
        attn_implementation="eager")
    hf = perturb(transformers.GPT2LMHeadModel(config).float())
    ours = load_hf_weights(GPT(GPTConfig(vocab_size=vocab_size, block_size=block_size, n_layer=n_layer,
                                         n_head=n_head, n_embd=n_embd, dropout=p)), hf.state_dict())
    assert sum(isinstance(m, torch.nn.Dropout) and m.p == p for m in ours.modules()) == 1 + 3 * n_layer
    idx = torch.randint(0, vocab_size, (2, block_size), generator=torch.Generator().manual_seed(3))
    hf.train(), ours.train()
    with torch.no_grad():
        torch.manual_seed(7)
        expected = hf(idx).logits
        torch.manual_seed(7)
        got, _ = ours(idx)
        torch.manual_seed(8)
        other, _ = ours(idx)
    assert (got - expected).abs().max().item() <= ATOL
    assert (other - got).abs().max().item() > 1e-2  # another seed, other masks: dropout is on
    hf.eval(), ours.eval()
    with torch.no_grad():
        first, second = ours(idx)[0], ours(idx)[0]
        assert torch.equal(first, second)
        assert (first - hf(idx).logits).abs().max().item() <= ATOL
