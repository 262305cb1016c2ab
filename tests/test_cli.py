"""``python -m gpt2course generate``: the tiny fixture checkpoint end to end, and its errors."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.error
import urllib.request

import pytest
import torch
from safetensors.torch import save_file

from conftest import REPO
from gpt2course import cli
from gpt2course.fixtures import WEIGHTS_NAME, fixtures_dir
from gpt2course.reference import GPT, GPTConfig, generate
from gpt2course.tokenizer import gpt2_encoding
from gpt2course.weights import load_gpt2

FIXTURE = "data/fixtures/tiny_gpt2.safetensors"  # as a user types it, from the repository root
FIXTURE_FILE = str(fixtures_dir() / WEIGHTS_NAME)  # for calls in this process, from any folder


def run_cli(*args, timeout=120):
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    return subprocess.run([sys.executable, "-m", "gpt2course", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, encoding="utf-8", timeout=timeout)


def in_process(prompt_ids, max_new_tokens, **sampling):
    """What the command should print after the prompt, computed here with the library."""
    model, _ = load_gpt2(FIXTURE_FILE, device="cpu")
    out = generate(model, torch.tensor([prompt_ids]), max_new_tokens, **sampling)
    continuation = gpt2_encoding().decode_bytes(out[0, len(prompt_ids):].tolist())
    return cli.printable(continuation.decode("utf-8", errors="replace"))


def byte_tokens(text):
    """GPT-2's single-byte tokens spelling ``text`` (the fixture's vocabulary has no merges)."""
    enc = gpt2_encoding()
    return [enc.encode_single_token(bytes([b])) for b in text.encode()]


def one_line_error(result, *fragments):
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def test_greedy_generation_matches_the_library():
    result = run_cli("generate", "--weights", FIXTURE, "--prompt", "Hello", "--max-new-tokens", "5",
                     "--temperature", "0", "--device", "cpu")
    assert result.returncode == 0, result.stderr
    ids = byte_tokens("Hello")
    assert all(i < 211 for i in ids)
    assert result.stdout == "Hello" + in_process(ids, 5, temperature=0) + "\n"
    assert "byte by byte" in result.stderr and "Traceback" not in result.stderr


def test_seeded_sampling_is_reproducible():
    args = ["generate", "--weights", FIXTURE, "--prompt", "Hi!", "--max-new-tokens", "12",
            "--temperature", "0.9", "--top-k", "40", "--top-p", "0.95", "--device", "cpu"]
    first, again, other = run_cli(*args, "--seed", "7"), run_cli(*args, "--seed", "7"), run_cli(*args, "--seed", "8")
    assert first.returncode == again.returncode == other.returncode == 0, first.stderr
    assert first.stdout == again.stdout != other.stdout
    expected = in_process(byte_tokens("Hi!"), 12, temperature=0.9, top_k=40, top_p=0.95,
                          generator=torch.Generator().manual_seed(7))
    assert first.stdout == "Hi!" + expected + "\n"


def test_missing_and_unreadable_weights(tmp_path):
    one_line_error(run_cli("generate", "--weights", "data/fixtures/absent.safetensors", "--prompt", "a"),
                   "absent.safetensors", "no such file")
    one_line_error(run_cli("generate", "--weights", "README.md", "--prompt", "a"),
                   "README.md", "not a readable safetensors file")
    other = tmp_path / "other.safetensors"
    save_file({"encoder.weight": torch.zeros(4, 4)}, str(other))
    one_line_error(run_cli("generate", "--weights", str(other), "--prompt", "a"), "not GPT-2 weights")


@pytest.mark.parametrize("args, fragment", [
    (["--temperature", "-0.5"], "--temperature"),
    (["--top-p", "0"], "--top-p"),
    (["--top-p", "1.5"], "--top-p"),
    (["--top-k", "0"], "--top-k"),
    (["--max-new-tokens", "many"], "--max-new-tokens"),
    (["--download"], "not allowed with"),
], ids=["negative-temperature", "top-p-0", "top-p-1.5", "top-k-0", "max-new-tokens", "both-sources"])
def test_bad_arguments(args, fragment):
    one_line_error(run_cli("generate", "--weights", FIXTURE, "--prompt", "a", *args), fragment)


def test_no_weights_and_no_command():
    one_line_error(run_cli("generate", "--prompt", "a"), "--weights", "--download")
    one_line_error(run_cli(), "COMMAND")


def test_prompts_the_fixture_cannot_spell():
    one_line_error(run_cli("generate", "--weights", FIXTURE, "--prompt", "Hello world"),
                   "211 tokens", "' '")
    one_line_error(run_cli("generate", "--weights", FIXTURE), "<|endoftext|>", "--prompt")


def test_help_texts():
    top = run_cli("--help")
    assert top.returncode == 0 and "generate" in top.stdout
    sub = run_cli("generate", "--help")
    assert sub.returncode == 0
    text = " ".join(sub.stdout.split())
    for option in ("--weights PATH", "--download", "--prompt", "--max-new-tokens N", "--temperature T",
                   "--top-k K", "--top-p P", "--seed S", "--device D", "--n-head H"):
        assert option in text, option
    # The defaults it states are the parser's.
    args = cli.build_parser().parse_args(["generate", "--weights", "x"])
    assert args.max_new_tokens == 50 and "(default 50)" in text
    assert args.temperature == 1.0 and "(default 1.0)" in text
    assert args.prompt == "" and "<|endoftext|>" in text
    assert args.top_k is None and args.top_p is None and args.seed is None


# --- in process: the pieces, and paths that need other checkpoints ---------------------------


def test_encode_prompt_and_decode():
    enc = gpt2_encoding()
    assert cli.encode_prompt(enc, "Hello world", 50257) == ([15496, 995], None)
    assert cli.encode_prompt(enc, "", 50257) == ([50256], None)
    ids, note = cli.encode_prompt(enc, "Hello", 211)
    assert ids == byte_tokens("Hello") and "byte by byte" in note
    with pytest.raises(cli.UsageError, match="<|endoftext|>"):
        cli.encode_prompt(enc, "", 211)
    # Bytes split over tokens join up; ids the tokenizer lacks become U+FFFD.
    assert cli.decode_tokens(enc, byte_tokens("é")) == "é"
    assert cli.decode_tokens(enc, byte_tokens("é")[:1]) == "\ufffd"
    assert cli.decode_tokens(enc, [15496, 60000]) == "Hello\ufffd"
    assert cli.printable("a\x1b[2Jb\n\tc\r\x07") == "a\ufffd[2Jb\n\tc\ufffd\ufffd"


def test_long_prompt_is_cropped(capsys):
    prompt = "ab" * 20  # 40 byte tokens, the fixture reads 24
    assert cli.main(["generate", "--weights", FIXTURE_FILE, "--prompt", prompt, "--max-new-tokens", "3",
                     "--temperature", "0", "--device", "cpu"]) == 0
    out, err = capsys.readouterr()
    assert out == prompt + in_process(byte_tokens(prompt)[-24:], 3, temperature=0) + "\n"
    assert "40 tokens" in err and "last 24" in err


def test_gpt2_vocabulary_checkpoint(tmp_path, capsys):
    """A checkpoint with GPT-2's 50,257 tokens: BPE prompts, and an empty prompt starts from
    <|endoftext|>. 8 wide, so the heads must be given."""
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=50257, block_size=16, n_layer=1, n_head=2, n_embd=8))
    conv1d = ("c_attn.weight", "c_proj.weight", "c_fc.weight")
    state_dict = {k: (v.t() if k.endswith(conv1d) else v).contiguous() for k, v in model.state_dict().items()}
    state_dict["lm_head.weight"] = state_dict["lm_head.weight"].clone()  # untie for safetensors
    path = tmp_path / "gpt2-vocab.safetensors"
    save_file(state_dict, str(path))
    base = ["generate", "--weights", str(path), "--max-new-tokens", "4", "--temperature", "0", "--device", "cpu"]

    assert cli.main(base) == 2
    assert "--n-head" in capsys.readouterr().err
    assert cli.main(base + ["--n-head", "2"]) == 0
    out, err = capsys.readouterr()
    expected = generate(model.eval(), torch.tensor([[50256]]), 4, temperature=0)[0, 1:].tolist()
    assert out == cli.printable(cli.decode_tokens(gpt2_encoding(), expected)) + "\n"
    assert err == ""
    assert cli.main(base + ["--n-head", "2", "--prompt", "Hello world"]) == 0
    expected = generate(model, torch.tensor([[15496, 995]]), 4, temperature=0)[0, 2:].tolist()
    assert capsys.readouterr().out == "Hello world" + cli.printable(cli.decode_tokens(gpt2_encoding(), expected)) + "\n"


def test_download_offline(tmp_path, monkeypatch, capsys):
    def offline(request, timeout=None):
        raise urllib.error.URLError(OSError(101, "Network is unreachable"))

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    monkeypatch.setenv("GPT2COURSE_CACHE", str(tmp_path))
    assert cli.main(["generate", "--download", "--prompt", "Hello", "--device", "cpu"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1
    assert "offline" in err and "--weights" in err
    assert list(tmp_path.iterdir()) == []
