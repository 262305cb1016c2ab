"""The speed ladder (gpt2course.training.speed_ladder) on a CPU with a tiny model: every rung is
reported, in order, measured or skipped with a reason; the rungs train the same model math; a
failing rung does not stop the ladder; the chart and the table draw. Speeds themselves are for
benchmarks."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from gpt2course.reference import GPT, GPTConfig  # noqa: E402
from gpt2course.training import speed_ladder as ladder_module  # noqa: E402
from gpt2course.training.fused import fuse  # noqa: E402
from gpt2course.training.speed_ladder import RUNGS, Rung, format_ladder, pad_vocab, plot_ladder, speed_ladder  # noqa: E402

CONFIG = GPTConfig(vocab_size=250, block_size=16, n_layer=2, n_head=2, n_embd=32)
FAST = dict(device="cpu", batch_size=2, steps=1, warmup=1, progress=False)


@pytest.fixture(scope="module")
def rows():
    return speed_ladder(CONFIG, **FAST)


def by_name(rows):
    return {row.name: row for row in rows}


def test_every_rung_is_reported_in_order(rows):
    assert [r.name for r in rows] == [r.name for r in RUNGS]
    skipped = {r.name: r.skipped for r in rows if r.skipped}
    assert set(skipped) == {"TF32", "autocast", "torch.compile"}
    assert "no TF32 on a CPU" in skipped["TF32"]
    assert "float32" in skipped["autocast"]
    assert "compile=True" in skipped["torch.compile"]
    for row in rows:
        if row.skipped:
            assert row.tokens_per_s is None and row.ratio is None and row.losses == []
        else:
            assert row.tokens_per_s > 0 and row.ratio > 0 and row.mfu is None  # no CPU peak
            assert len(row.losses) == 2  # one warm-up step, one timed
    assert rows[0].name == "fp32" and rows[0].ratio == 1.0


def test_rungs_train_the_same_model(rows):
    named = by_name(rows)
    base = named["fp32"].losses
    # Same initial weights, same batches: the fused kernels and fused AdamW compute the same
    # first loss and, after one AdamW step, the same second loss (float32 rounding apart).
    assert named["fused kernels (SDPA)"].losses == pytest.approx(base, rel=1e-5)
    # Padding adds zero logits to the softmax: the loss goes up a little, never down.
    padded = named["vocab padded to 64"].losses
    assert all(b < p < b + 0.1 for b, p in zip(base, padded))
    assert named["fused AdamW"].losses == pytest.approx(padded, rel=1e-5)


def test_padded_copy_keeps_the_weights_and_the_logits():
    torch.manual_seed(0)
    model = fuse(GPT(CONFIG))
    padded = pad_vocab(model)
    assert padded.config.vocab_size == 256 and type(padded) is type(model)
    assert padded.lm_head.weight is padded.transformer.wte.weight
    idx = torch.randint(CONFIG.vocab_size, (2, 5))
    with torch.no_grad():
        logits, _ = model(idx)
        padded_logits, _ = padded(idx)
    torch.testing.assert_close(padded_logits[..., :250], logits)
    assert torch.equal(padded_logits[..., 250:], torch.zeros(2, 5, 6))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_autocast_rung_where_autocast_applies(monkeypatch, dtype):
    # As on a GPU: autocast_dtype chooses a dtype (float16 trains with a GradScaler).
    monkeypatch.setattr("gpt2course.reference.precision.autocast_dtype", lambda device, capability=None: dtype)
    rows = speed_ladder(CONFIG, rungs=RUNGS[:3], **FAST)
    assert rows[2].name == f"autocast {str(dtype).replace('torch.', '')}"
    assert rows[2].skipped is None and rows[2].tokens_per_s > 0
    assert rows[2].losses == pytest.approx(rows[0].losses, abs=0.05)


def test_a_failing_rung_is_reported_and_the_ladder_goes_on(monkeypatch):
    def no_compiler(*args, **kwargs):
        raise RuntimeError("no C compiler found\nmore lines")

    monkeypatch.setattr(torch, "compile", no_compiler)
    rows = speed_ladder(CONFIG, compile=True, rungs=(RUNGS[0], RUNGS[4], RUNGS[6]), **FAST)
    assert rows[1].skipped == "failed: RuntimeError: no C compiler found"
    assert rows[2].tokens_per_s > 0  # fused AdamW, without compile
    with pytest.raises(ValueError, match="steps must be at least 1"):
        speed_ladder(CONFIG, **{**FAST, "steps": 0})


def test_custom_rungs_and_a_vocabulary_already_padded():
    config = GPTConfig(vocab_size=128, block_size=8, n_layer=1, n_head=2, n_embd=16)
    rows = speed_ladder(config, rungs=(Rung("fp32", ""), Rung("vocab padded to 64", "vocab_multiple")), **FAST)
    assert "multiple of 64 already" in rows[1].skipped


def test_chart_and_table(rows):
    fig = plot_ladder(rows, title="tiny model, CPU")
    ax = fig.axes[0]
    assert len(ax.patches) == len(rows)
    texts = [t.get_text() for t in ax.texts]
    assert sum(t.startswith("skipped:") for t in texts) == 3
    assert " 1.00x" in texts
    assert ax.get_title() == "tiny model, CPU"
    plt.close(fig)
    table = format_ladder(rows)
    assert table.count("\n") == len(rows) + 1 and "skipped: no TF32 on a CPU" in table
    assert ladder_module.PAD_MULTIPLE == 64


def test_which_rungs_apply_on_gpus():
    # Decided without a GPU: by device type and compute capability.
    cuda = torch.device("cuda")
    tf32, autocast, compile_ = RUNGS[1], RUNGS[2], RUNGS[4]
    assert "compute capability 7.5" in ladder_module._not_applicable(tf32, cuda, (7, 5), False)
    assert ladder_module._not_applicable(tf32, cuda, (8, 0), False) is None
    assert ladder_module._not_applicable(autocast, cuda, (7, 5), False) is None  # float16
    assert ladder_module._not_applicable(compile_, cuda, (9, 0), True) is None
    assert "not asked for" in ladder_module._not_applicable(compile_, cuda, (9, 0), False)


def test_every_rung_has_its_mfu_against_the_same_16_bit_peak(monkeypatch):
    # As on an A100 that autocasts to bfloat16: the float32 rung too is measured against the
    # bfloat16 peak, so the MFU column is tokens/s times one constant.
    from gpt2course.training import mfu as mfu_module

    monkeypatch.setattr("gpt2course.reference.precision.autocast_dtype", lambda device, capability=None: torch.bfloat16)
    monkeypatch.setattr(mfu_module, "device_name", lambda device=None: "NVIDIA A100-SXM4-40GB")
    rows = speed_ladder(CONFIG, rungs=RUNGS[:4], **FAST)
    measured = [row for row in rows if row.tokens_per_s is not None]
    assert len(measured) == 3  # fp32, autocast, fused (TF32 is skipped on a CPU device)
    peak = mfu_module.peak_flops("NVIDIA A100-SXM4-40GB", torch.bfloat16)
    for row in measured:
        assert row.mfu == pytest.approx(row.tokens_per_s * mfu_module.flops_per_token(CONFIG) / peak)
    assert "16-bit peak" in format_ladder(rows)
