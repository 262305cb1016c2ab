"""Model FLOPs utilisation (MFU): how much of a GPU's peak arithmetic a training run uses.

MFU = (training FLOPs the model needs per token x tokens per second) / the device's peak FLOP/s.

FLOPs per token (``flops_per_token``), for one forward and backward pass, the estimate of
Kaplan et al. 2020 (section 2.1) and of the PaLM paper (Chowdhery et al. 2022, appendix B),
which nanoGPT's ``estimate_mfu`` also uses:

    6 * N  +  12 * L * C * T

- ``N``: the parameters that take part in matrix products, each costing 2 FLOPs per token
  forward (a multiply and an add) and 4 backward (gradients of the input and of the weight).
  Per block that is 12 C^2 + 13 C (attention: c_attn 3C^2 + 3C, c_proj C^2 + C; MLP: c_fc
  4C^2 + 4C, c_proj 4C^2 + C; two LayerNorms 4C), plus the final LayerNorm's 2C. The LayerNorm
  and bias parameters do not multiply anything; they are counted anyway, as everyone does (they
  are 0.02% of GPT-2's parameters). Embedding look-ups are not matrix products: the position
  embedding (T_max x C) is never counted. The LM head (V x C) *is* a matrix product, tied to the
  token embedding or not: ``include_head=True`` (the default) counts it, which gives nanoGPT's N
  (all parameters minus the position embedding: 123,653,376 for GPT-2 small);
  ``include_head=False`` gives Kaplan's "non-embedding" N (85,056,000 for GPT-2 small), which
  leaves out the head's 6 V C FLOPs per token.
- ``12 * L * C * T``: attention itself, for a sequence of T tokens: q @ k^T and weights @ v
  are 2 T C FLOPs each per token and layer forward, times 3 with the backward. The full T x T
  square is counted, not the causal half (as PaLM and nanoGPT do).

For GPT-2 small at T = 1024 that is 855,166,464 FLOPs per token with the head (0.86 GFLOP),
623,582,208 without it.

Peak FLOP/s (``PEAK_FLOPS``) are the dense (no 2:4 sparsity) tensor-core figures of NVIDIA's
data sheets, per dtype; "tf32" is float32 matrix products on TF32 tensor cores (what
``torch.backends.cuda.matmul.allow_tf32 = True`` gives), "float32" plain float32 on CUDA cores.
A device or dtype not in the table (a CPU, a GPU not listed, bfloat16 on a T4, which only
emulates it) has no peak here, and its MFU is None.
"""

from __future__ import annotations

import re

TERA = 1e12

# (regular expression matched against torch.cuda.get_device_name(), {dtype: peak FLOP/s}).
# The first pattern that matches wins, so the more specific names come first. Names as torch
# reports them, e.g. "Tesla T4", "NVIDIA L4", "NVIDIA A100-SXM4-40GB", "NVIDIA H100 80GB HBM3"
# (SXM), "NVIDIA H100 PCIe". \b keeps "L4" from matching "L40S".
PEAK_FLOPS: list[tuple[str, dict[str, float]]] = [
    # NVIDIA T4 data sheet: FP32 8.1 TFLOPS, mixed-precision FP16/FP32 65 TFLOPS (Turing, sm75:
    # no TF32, no bfloat16 tensor cores).
    (r"\bT4\b", {"float32": 8.1 * TERA, "float16": 65 * TERA}),
    # NVIDIA V100 data sheet (SXM2): FP32 15.7 TFLOPS, tensor performance 125 TFLOPS (FP16).
    (r"\bV100\b", {"float32": 15.7 * TERA, "float16": 125 * TERA}),
    # NVIDIA L4 data sheet: FP32 30.3 TFLOPS; TF32 120, BF16 and FP16 242 TFLOPS "with sparsity",
    # so half of each dense: 60 and 121.
    (r"\bL4\b", {"float32": 30.3 * TERA, "tf32": 60 * TERA, "bfloat16": 121 * TERA, "float16": 121 * TERA}),
    # NVIDIA A100 data sheet (SXM and PCIe alike): FP32 19.5, TF32 156, BF16 312, FP16 312 TFLOPS
    # dense (the sheet's 312 / 624 pairs are dense / with sparsity).
    (r"\bA100\b", {"float32": 19.5 * TERA, "tf32": 156 * TERA, "bfloat16": 312 * TERA, "float16": 312 * TERA}),
    # NVIDIA H100 data sheet, PCIe column: FP32 51; TF32 756, BF16 and FP16 1,513 TFLOPS with
    # sparsity, so 378 and 756 dense.
    (r"\bH100\b.*\bPCIe\b", {"float32": 51 * TERA, "tf32": 378 * TERA, "bfloat16": 756 * TERA,
                             "float16": 756 * TERA}),
    # NVIDIA H100 data sheet, SXM column (and torch's "H100 80GB HBM3"): FP32 67; TF32 989, BF16
    # and FP16 1,979 TFLOPS with sparsity, so ~494.7 and ~989.5 dense. The H200 data sheet gives
    # the same tensor-core figures (same GH100 chip, more memory). The H100 NVL has other
    # figures and is left out (no peak) rather than guessed.
    (r"\bH100\b(?!.*\bNVL\b)|\bH200\b", {"float32": 67 * TERA, "tf32": 494.7 * TERA, "bfloat16": 989.5 * TERA,
                            "float16": 989.5 * TERA}),
]

_DTYPE_NAMES = {"float32": "float32", "fp32": "float32", "float": "float32",
                "tf32": "tf32",
                "bfloat16": "bfloat16", "bf16": "bfloat16",
                "float16": "float16", "fp16": "float16", "half": "float16"}


def dtype_key(dtype) -> str:
    """"float32", "tf32", "bfloat16" or "float16" for a torch dtype or one of those names
    (also "fp32", "bf16", "fp16")."""
    name = str(dtype).replace("torch.", "").lower()
    if name not in _DTYPE_NAMES:
        raise ValueError(f"no peak FLOP/s for dtype {dtype!r}: use float32, tf32, bfloat16 or float16")
    return _DTYPE_NAMES[name]


def n_params(config, include_head: bool = True) -> int:
    """The parameters counted in 6N (see the module's docstring): every block's, the final
    LayerNorm's and, with ``include_head``, the LM head's V x C; never the position embedding."""
    C, L, V = config.n_embd, config.n_layer, config.vocab_size
    n = L * (12 * C * C + 13 * C) + 2 * C
    return n + (V * C if include_head else 0)


def flops_per_token(config, include_head: bool = True, seq_len: int | None = None) -> int:
    """Training FLOPs (forward + backward) per token: 6 N + 12 L C T, for a GPTConfig-like
    ``config`` (``vocab_size``, ``n_layer``, ``n_embd``, ``block_size``) trained on sequences of
    ``seq_len`` tokens (default ``config.block_size``). ``include_head``: count the LM head's
    matrix product (nanoGPT's count) or not (Kaplan's non-embedding N). Pass the padded
    vocabulary's config to count the padding's FLOPs too."""
    T = config.block_size if seq_len is None else seq_len
    return 6 * n_params(config, include_head) + 12 * config.n_layer * config.n_embd * T


def device_name(device=None) -> str:
    """torch.cuda.get_device_name for a CUDA device (default: the current one if there is a
    GPU), otherwise the device type ("cpu", "mps")."""
    import torch

    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return device.type


def peak_flops(device_name: str, dtype) -> float | None:
    """The dense peak FLOP/s of GPU ``device_name`` (as torch.cuda.get_device_name gives it) in
    ``dtype`` (a torch dtype or "float32", "tf32", "bfloat16", "float16"); None when the device or
    the dtype on it is not in PEAK_FLOPS (CPUs, unlisted GPUs, bfloat16 on a T4)."""
    key = dtype_key(dtype)
    for pattern, peaks in PEAK_FLOPS:
        if re.search(pattern, device_name, flags=re.IGNORECASE):
            return peaks.get(key)
    return None


def mfu(tokens_per_s: float, config, device_name: str, dtype, include_head: bool = True,
        seq_len: int | None = None) -> float | None:
    """Model FLOPs utilisation, a fraction (0.5 = 50%): tokens_per_s x flops_per_token / peak;
    None when ``peak_flops(device_name, dtype)`` does not know the device."""
    peak = peak_flops(device_name, dtype)
    if peak is None:
        return None
    return tokens_per_s * flops_per_token(config, include_head, seq_len) / peak


def speed_text(tokens_per_s: float, config, device_name: str, dtype, include_head: bool = True,
               seq_len: int | None = None) -> str:
    """One line for a live progress display: "41,230 tokens/s, MFU 38.2% (of 312 TFLOPS bfloat16
    on NVIDIA A100-SXM4-40GB)", or "... tokens/s (MFU: no peak FLOP/s known for cpu)"."""
    speed = f"{tokens_per_s:,.0f} tokens/s"
    peak = peak_flops(device_name, dtype)
    if peak is None:
        return f"{speed} (MFU: no peak FLOP/s known for {dtype_key(dtype)} on {device_name})"
    value = mfu(tokens_per_s, config, device_name, dtype, include_head, seq_len)
    return f"{speed}, MFU {value:.1%} (of {peak / TERA:,.0f} TFLOPS {dtype_key(dtype)} on {device_name})"
