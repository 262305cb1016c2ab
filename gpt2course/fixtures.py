"""A tiny GPT-2 checkpoint in Hugging Face's format, and the logits it must give.

``python -m gpt2course.fixtures`` writes two files to ``data/fixtures/``:

- ``tiny_gpt2.safetensors``: a GPT2LMHeadModel state dict (keys ``transformer.wte.weight``,
  ``transformer.h.0.attn.c_attn.weight`` ..., Conv1D weights stored (in, out), the
  ``attn.bias`` causal-mask buffers older checkpoints carry, and ``lm_head.weight`` as a copy
  of ``wte``) for a 2-layer, 3-head, 36-wide model with a 211-token vocabulary and 24
  positions; its config is JSON under "config" in the file's metadata.
- ``tiny_gpt2_expected.safetensors``: token batches ``idx_0``, ``idx_1``, ... and the logits
  ``logits_0``, ``logits_1``, ... that the reference GPT computes for them in float64
  (stored as float32).

The weights are drawn from a seeded ``torch.Generator`` as sums of uniform integers scaled by
powers of two: roughly normal, and exactly representable in float32, so every machine writes
the same bytes. ``--check`` writes nothing and exits 1 when the committed files differ from
what it would write. Tests (and the grader's checks) read the files with ``load_fixture()``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

SEED = 20240607
CONFIG = dict(vocab_size=211, block_size=24, n_layer=2, n_head=3, n_embd=36, dropout=0.0)
WEIGHTS_NAME = "tiny_gpt2.safetensors"
EXPECTED_NAME = "tiny_gpt2_expected.safetensors"
BATCH_SHAPES = [(2, 24), (3, 7), (1, 1)]  # (B, T): the full context, a middle length, one token
MAKE_COMMAND = "python -m gpt2course.fixtures"
# Logits are computed in float64 and rounded to float32; another BLAS may round a value the other
# way, so --check allows them this much (about one float32 step at the logits' size).
LOGITS_ATOL = 1e-5


def fixtures_dir() -> Path:
    """``data/fixtures`` in the course's data folder (``GPT2COURSE_DATA`` when set)."""
    from .datafiles import data_dir

    return data_dir() / "fixtures"


# --------------------------------------------------------------------------------------------
# Making the files


def _noise(shape, log2_scale: int, g):
    """Roughly normal values, exactly representable in float32: the sum of four uniform integers
    in [0, 255], centred (standard deviation about 148) and multiplied by 2 ** log2_scale."""
    import torch

    draws = torch.randint(0, 256, (4, *shape), generator=g, dtype=torch.int64).sum(0) - 510
    return draws.to(torch.float32) * 2.0 ** log2_scale


def make_state_dict():
    """The tiny model's weights as a GPT2LMHeadModel state dict (Conv1D weights (in, out))."""
    import torch

    c = CONFIG
    C, V, T = c["n_embd"], c["vocab_size"], c["block_size"]
    g = torch.Generator().manual_seed(SEED)
    weight = lambda *shape: _noise(shape, -10, g)          # std ~0.14  # noqa: E731
    bias = lambda n: _noise((n,), -12, g)                  # std ~0.04  # noqa: E731
    ln = lambda: (1.0 + _noise((C,), -11, g), bias(C))     # weight ~1 (std ~0.07), bias ~0  # noqa: E731

    sd = {"transformer.wte.weight": _noise((V, C), -9, g),  # std ~0.29: logits spread over units
          "transformer.wpe.weight": _noise((T, C), -10, g)}
    for i in range(c["n_layer"]):
        p = f"transformer.h.{i}."
        sd[p + "ln_1.weight"], sd[p + "ln_1.bias"] = ln()
        sd[p + "attn.c_attn.weight"], sd[p + "attn.c_attn.bias"] = weight(C, 3 * C), bias(3 * C)
        sd[p + "attn.c_proj.weight"], sd[p + "attn.c_proj.bias"] = weight(C, C), bias(C)
        sd[p + "ln_2.weight"], sd[p + "ln_2.bias"] = ln()
        sd[p + "mlp.c_fc.weight"], sd[p + "mlp.c_fc.bias"] = weight(C, 4 * C), bias(4 * C)
        sd[p + "mlp.c_proj.weight"], sd[p + "mlp.c_proj.bias"] = weight(4 * C, C), bias(C)
        # The causal mask older Hugging Face versions saved with every block (a buffer, no weights).
        sd[p + "attn.bias"] = torch.tril(torch.ones(T, T)).view(1, 1, T, T)
    sd["transformer.ln_f.weight"], sd["transformer.ln_f.bias"] = ln()
    # Tied to wte in the model; safetensors cannot store one tensor under two names: a copy.
    sd["lm_head.weight"] = sd["transformer.wte.weight"].clone()
    return sd


def make_batches():
    """The token batches the expected logits are computed for, each (B, T) int64."""
    import torch

    g = torch.Generator().manual_seed(SEED + 1)
    batches = [torch.randint(0, CONFIG["vocab_size"], shape, generator=g) for shape in BATCH_SHAPES]
    batches[0][0, 0], batches[0][-1, -1] = 0, CONFIG["vocab_size"] - 1  # both ends of the vocabulary
    return batches


def expected_logits(state_dict, batches):
    """The reference GPT's logits for each batch, computed in float64, returned as float32."""
    import torch

    from .reference.config import GPTConfig
    from .reference.gpt import GPT, load_hf_weights

    model = GPT(GPTConfig(**CONFIG))
    load_hf_weights(model, state_dict)
    model = model.double().eval()
    with torch.no_grad():
        return [model(idx)[0].to(torch.float32) for idx in batches]


def _canonical_bytes(tensors: dict, metadata: dict[str, str]) -> bytes:
    """``safetensors.torch.save`` with the metadata keys sorted (safetensors keeps them in a hash
    map, so their order, and the file's bytes, would otherwise change from run to run)."""
    from safetensors.torch import save

    raw = save(tensors, metadata=metadata)
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + n])
    header["__metadata__"] = dict(sorted(header.pop("__metadata__", {}).items()))
    header = {"__metadata__": header.pop("__metadata__"), **header}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # safetensors pads the header to a multiple of 8 bytes
    return len(text).to_bytes(8, "little") + text + raw[8 + n:]


def build() -> dict[str, bytes]:
    """The two fixture files' contents, by file name."""
    state_dict = make_state_dict()
    batches = make_batches()
    logits = expected_logits(state_dict, batches)
    config = json.dumps(CONFIG, sort_keys=True)
    expected = {}
    for i, (idx, out) in enumerate(zip(batches, logits)):
        expected[f"idx_{i}"], expected[f"logits_{i}"] = idx.contiguous(), out.contiguous()
    made_by = f"{MAKE_COMMAND} (seed {SEED})"
    return {
        WEIGHTS_NAME: _canonical_bytes(state_dict, {"format": "pt", "config": config, "made_by": made_by}),
        EXPECTED_NAME: _canonical_bytes(expected, {
            "format": "pt", "config": config, "made_by": made_by,
            "about": "logits_i = reference GPT(idx_i) in float64 with the weights of " + WEIGHTS_NAME}),
    }


def write(dest: Path | None = None) -> list[Path]:
    """Write the fixture files (atomically) to ``dest`` (default ``fixtures_dir()``)."""
    from .weights import finish_atomic_write

    dest = Path(dest) if dest is not None else fixtures_dir()
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    for name, content in build().items():
        fd, tmp = tempfile.mkstemp(dir=dest, prefix=f".{name}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(content)
            finish_atomic_write(Path(tmp), dest / name)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        written.append(dest / name)
    return written


def differences(dest: Path | None = None) -> list[str]:
    """What differs between the files in ``dest`` and what ``write`` would put there ([] when
    nothing does). Byte-identical files pass; otherwise every tensor and the metadata must be
    identical, except expected logits, which may differ by ``LOGITS_ATOL`` (float64 rounding of
    another machine's BLAS)."""
    import torch
    from safetensors import SafetensorError
    from safetensors.torch import load

    from .weights import read_metadata

    dest = Path(dest) if dest is not None else fixtures_dir()
    problems = []
    for name, content in build().items():
        path = dest / name
        if not path.is_file():
            problems.append(f"{path}: missing")
            continue
        on_disk = path.read_bytes()
        if on_disk == content:
            continue
        try:
            have, meta = load(on_disk), read_metadata(path)
        except (SafetensorError, ValueError) as exc:
            problems.append(f"{path}: unreadable ({exc})")
            continue
        want = load(content)
        want_meta = json.loads(content[8:8 + int.from_bytes(content[:8], "little")])["__metadata__"]
        if meta != want_meta:
            problems.append(f"{path}: metadata differs")
        if set(have) != set(want):
            problems.append(f"{path}: tensors differ: {sorted(set(have) ^ set(want))}")
            continue
        for key, value in want.items():
            got = have[key]
            if got.dtype != value.dtype or got.shape != value.shape:
                problems.append(f"{path}: {key} is {got.dtype} {tuple(got.shape)}, "
                                f"expected {value.dtype} {tuple(value.shape)}")
            elif key.startswith("logits_"):
                if not torch.allclose(got, value, rtol=0, atol=LOGITS_ATOL):
                    problems.append(f"{path}: {key} differs by {(got - value).abs().max().item():.3g}")
            elif not torch.equal(got, value):
                problems.append(f"{path}: {key} differs")
    return problems


# --------------------------------------------------------------------------------------------
# Reading


def load_fixture(root: Path | None = None):
    """The tiny checkpoint: ``(state_dict, config, [(idx, logits), ...])``.

    ``state_dict`` is the GPT2LMHeadModel state dict as stored (``transformer.`` keys,
    Conv1D weights (in, out), ``attn.bias`` buffers, ``lm_head.weight``), ``config`` its
    ``GPTConfig``, and each ``(idx, logits)`` a (B, T) int64 batch with the float32 logits
    (B, T, 211) the reference GPT gives for it."""
    from safetensors.torch import load_file

    from .reference.config import GPTConfig
    from .weights import read_metadata

    root = Path(root) if root is not None else fixtures_dir()
    for name in (WEIGHTS_NAME, EXPECTED_NAME):
        if not (root / name).is_file():
            raise FileNotFoundError(f"{root / name}: missing; make it with `{MAKE_COMMAND}`")
    state_dict = load_file(str(root / WEIGHTS_NAME))
    config = GPTConfig(**json.loads(read_metadata(root / WEIGHTS_NAME)["config"]))
    expected = load_file(str(root / EXPECTED_NAME))
    n = sum(1 for key in expected if key.startswith("idx_"))
    cases = [(expected[f"idx_{i}"], expected[f"logits_{i}"]) for i in range(n)]
    return state_dict, config, cases


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gpt2course.fixtures", description=(
        f"Write the tiny GPT-2 test checkpoint ({WEIGHTS_NAME}) and its expected logits "
        f"({EXPECTED_NAME}) to data/fixtures/. The output is the same on every run."))
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 when the files there differ from what would be written")
    parser.add_argument("--dest", type=Path, default=None, help="another folder than data/fixtures")
    args = parser.parse_args(argv)
    if args.check:
        problems = differences(args.dest)
        for line in problems:
            print(line, file=sys.stderr)
        if problems:
            print(f"the fixtures are stale: run `{MAKE_COMMAND}` and commit them", file=sys.stderr)
            return 1
        print("fixtures up to date")
        return 0
    for path in write(args.dest):
        print(f"wrote {path} ({path.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
