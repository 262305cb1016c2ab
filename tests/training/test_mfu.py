"""FLOPs per token, peak FLOP/s per GPU and MFU (gpt2course.training.mfu), against numbers worked out
here by hand: from GPT-2 small's published parameter count and from the tensors of a real model."""

from __future__ import annotations

import pytest
import torch

from gpt2course.training.mfu import (PEAK_FLOPS, device_name, dtype_key, flops_per_token, mfu, n_params, peak_flops,
                            speed_text)
from gpt2course.reference import GPT, GPTConfig

# GPT-2 small: 124,439,808 parameters (notebook 07), of which the token embedding is
# 50,257 x 768 = 38,597,376 and the position embedding 1,024 x 768 = 786,432.
GPT2_TOTAL = 124_439_808
WTE = 50_257 * 768
WPE = 1_024 * 768


def test_gpt2_small_parameter_counts():
    assert WTE == 38_597_376 and WPE == 786_432
    config = GPTConfig()
    # With the head: everything but the position embedding (nanoGPT's N).
    assert n_params(config) == GPT2_TOTAL - WPE == 123_653_376
    # Without it: Kaplan's non-embedding N.
    assert n_params(config, include_head=False) == GPT2_TOTAL - WPE - WTE == 85_056_000


def test_gpt2_small_flops_per_token():
    # 6 N + 12 L C T at T = 1024: 6 x 123,653,376 + 12 x 12 x 768 x 1024.
    attention = 12 * 12 * 768 * 1024
    assert attention == 113_246_208
    assert flops_per_token(GPTConfig()) == 741_920_256 + 113_246_208 == 855_166_464
    assert flops_per_token(GPTConfig(), include_head=False) == 510_336_000 + 113_246_208 == 623_582_208
    # Shorter sequences only change the attention term.
    assert flops_per_token(GPTConfig(), seq_len=256) == 741_920_256 + 12 * 12 * 768 * 256


def test_parameter_count_matches_a_real_model():
    config = GPTConfig(vocab_size=100, block_size=16, n_layer=3, n_head=2, n_embd=24)
    model = GPT(config)
    every = sum(p.numel() for p in model.parameters())  # the tied head is listed once
    wpe = model.transformer.wpe.weight.numel()
    wte = model.transformer.wte.weight.numel()
    assert n_params(config) == every - wpe
    assert n_params(config, include_head=False) == every - wpe - wte
    # The matrix products' parameters really are a forward pass's FLOPs / 2 per token: count
    # the multiply-adds of every nn.Linear for one token.
    linear = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))
    assert linear == 3 * 12 * 24 * 24 + 100 * 24  # 3 layers x (3C^2 + C^2 + 4C^2 + 4C^2), head V x C


@pytest.mark.parametrize("name, dtype, tflops", [
    ("Tesla T4", torch.float16, 65),
    ("Tesla T4", "float32", 8.1),
    ("NVIDIA L4", torch.bfloat16, 121),
    ("NVIDIA L4", "tf32", 60),
    ("NVIDIA A100-SXM4-40GB", torch.bfloat16, 312),
    ("NVIDIA A100-SXM4-80GB", "bf16", 312),
    ("NVIDIA A100-PCIE-40GB", torch.float16, 312),
    ("NVIDIA A100-SXM4-40GB", "tf32", 156),
    ("NVIDIA H100 80GB HBM3", torch.bfloat16, 989.5),
    ("NVIDIA H100 PCIe", torch.bfloat16, 756),
    ("NVIDIA H200", "fp16", 989.5),
    ("Tesla V100-SXM2-16GB", torch.float16, 125),
])
def test_peak_flops_of_known_gpus(name, dtype, tflops):
    assert peak_flops(name, dtype) == pytest.approx(tflops * 1e12)


@pytest.mark.parametrize("name, dtype", [
    ("Tesla T4", torch.bfloat16),          # emulated only: no peak to divide by
    ("Tesla T4", "tf32"),                  # no TF32 before compute capability 8.0
    ("NVIDIA L40S", torch.bfloat16),       # not listed; "L4" must not match it
    ("NVIDIA H100 NVL", torch.bfloat16),   # other figures, left out rather than guessed
    ("cpu", torch.float32),
    ("mps", torch.float16),
])
def test_no_peak_for_unknown_devices(name, dtype):
    assert peak_flops(name, dtype) is None
    assert mfu(1e6, GPTConfig(), name, dtype) is None


def test_dtype_names():
    assert dtype_key(torch.float32) == dtype_key("fp32") == "float32"
    assert dtype_key(torch.bfloat16) == "bfloat16" and dtype_key("half") == "float16"
    with pytest.raises(ValueError, match="no peak FLOP/s for dtype"):
        dtype_key(torch.int8)


def test_table_is_well_formed():
    for pattern, peaks in PEAK_FLOPS:
        assert set(peaks) <= {"float32", "tf32", "bfloat16", "float16"}, pattern
        assert all(1e12 < v < 2e15 for v in peaks.values()), pattern


def test_mfu_of_the_build_nanogpt_a100_run():
    # GPT-2 124M with the vocabulary padded to 50,304 at ~180k tokens/s on an A100 in bfloat16:
    # reported as about 50% MFU. By hand: N = 85,056,000 + 50,304 x 768 = 123,689,472;
    # 6 N + 113,246,208 = 855,383,040 FLOPs/token; x 180,000 / 312e12 = 0.4935.
    config = GPTConfig(vocab_size=50_304)
    assert flops_per_token(config) == 6 * (85_056_000 + 50_304 * 768) + 113_246_208 == 855_383_040
    value = mfu(180_000, config, "NVIDIA A100-SXM4-40GB", torch.bfloat16)
    assert value == pytest.approx(180_000 * 855_383_040 / 312e12)
    assert 0.49 < value < 0.50


def test_speed_text_for_a_live_display():
    config = GPTConfig(vocab_size=50_304)
    text = speed_text(180_000, config, "NVIDIA A100-SXM4-40GB", torch.bfloat16)
    assert text == "180,000 tokens/s, MFU 49.3% (of 312 TFLOPS bfloat16 on NVIDIA A100-SXM4-40GB)"
    assert speed_text(2_474.4, config, "cpu", torch.float32) == \
        "2,474 tokens/s (MFU: no peak FLOP/s known for float32 on cpu)"


def test_device_name_off_cuda():
    assert device_name("cpu") == "cpu" and device_name(torch.device("cpu")) == "cpu"
    if not torch.cuda.is_available():
        assert device_name() == "cpu"
