"""gpt2course.weights: reading GPT-2 safetensors files, inferring the config, downloading, loading.

Nothing here touches the network: urlopen is replaced for every test, and the one test that
uses the real urlopen points it at a closed port on this machine.
"""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.request

import pytest
import torch
from safetensors.torch import save, save_file

from gpt2course import weights
from gpt2course.fixtures import WEIGHTS_NAME, fixtures_dir, load_fixture
from gpt2course.reference import GPT, GPTConfig
from gpt2course.weights import (DownloadError, OfflineError, WeightsFileError, config_from_state_dict,
                                download_gpt2, load_gpt2, read_hf_state_dict, read_metadata, with_prefix)

FIXTURE = fixtures_dir() / WEIGHTS_NAME


pytestmark = pytest.mark.usefixtures("no_network")


@pytest.fixture(scope="module")
def fixture():
    return load_fixture()


def hub_style(state_dict):
    """What the hub's model.safetensors looks like: no ``transformer.`` prefix, no lm_head."""
    return {k.removeprefix("transformer."): v for k, v in state_dict.items() if not k.startswith("lm_head.")}


def unprefixed_file(state_dict, path, metadata=None):
    save_file(hub_style(state_dict), str(path), metadata=metadata)
    return path


# --- prefixes and reading --------------------------------------------------------------------


def test_with_prefix_adds_transformer_but_leaves_lm_head():
    one = torch.zeros(1)
    sd = {"wte.weight": one, "h.0.attn.bias": one, "transformer.wpe.weight": one, "lm_head.weight": one}
    assert list(with_prefix(sd)) == ["transformer.wte.weight", "transformer.h.0.attn.bias",
                                     "transformer.wpe.weight", "lm_head.weight"]
    with pytest.raises(WeightsFileError, match="both"):
        with_prefix({"wte.weight": one, "transformer.wte.weight": one})


def test_hub_style_file_round_trip(tmp_path, fixture):
    state_dict, _, _ = fixture
    path = unprefixed_file(state_dict, tmp_path / "model.safetensors")
    read = read_hf_state_dict(path)
    expected = {k: v for k, v in state_dict.items() if not k.startswith("lm_head.")}
    assert set(read) == set(expected)
    assert "transformer.h.0.attn.bias" in read
    for key, value in expected.items():
        assert torch.equal(read[key], value), key


def test_prefixed_file_reads_as_is(tmp_path, fixture):
    state_dict, _, _ = fixture
    save_file(state_dict, str(tmp_path / "w.safetensors"))
    read = read_hf_state_dict(tmp_path / "w.safetensors")
    assert list(read) == list(read_hf_state_dict(FIXTURE))
    assert set(read) == set(state_dict)


def test_unreadable_files_name_the_file(tmp_path, fixture):
    with pytest.raises(WeightsFileError, match="no such file"):
        read_hf_state_dict(tmp_path / "absent.safetensors")
    with pytest.raises(WeightsFileError, match="not a file"):
        read_hf_state_dict(tmp_path)
    text = tmp_path / "notes.safetensors"
    text.write_text("these are not weights\n")
    with pytest.raises(WeightsFileError, match="not a readable safetensors file") as info:
        read_hf_state_dict(text)
    assert "notes.safetensors" in str(info.value)
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(save(fixture[0])[:5000])  # a download that stopped early
    with pytest.raises(WeightsFileError, match="not a readable safetensors file"):
        read_hf_state_dict(cut)
    with pytest.raises(WeightsFileError):
        read_metadata(text)


# --- the config --------------------------------------------------------------------------------


def test_config_from_tensors_and_metadata(tmp_path, fixture):
    state_dict, config, _ = fixture
    metadata = read_metadata(FIXTURE)
    assert config_from_state_dict(state_dict, metadata=metadata) == config
    assert config_from_state_dict(state_dict, n_head=3) == config  # no metadata: the argument
    assert config_from_state_dict(hub_style(state_dict), n_head=3) == config  # unprefixed keys
    assert config_from_state_dict(state_dict, n_head=4, metadata=metadata).n_head == 4  # argument wins
    with pytest.raises(ValueError, match="multiple of 64"):
        config_from_state_dict(state_dict)  # 36 wide, no metadata, no n_head
    # Hugging Face's own config names (n_positions) in the metadata work too.
    hf_names = {"config": json.dumps({"n_positions": 24, "n_head": 3, "vocab_size": 211})}
    assert config_from_state_dict(state_dict, metadata=hf_names) == config


def test_head_count_defaults_to_head_size_64():
    model = GPT(GPTConfig(vocab_size=50, block_size=8, n_layer=2, n_head=1, n_embd=128))
    sd = hf_layout(model)
    assert config_from_state_dict(sd) == GPTConfig(vocab_size=50, block_size=8, n_layer=2, n_head=2, n_embd=128)


def hf_layout(model):
    """The course model's weights as a GPT2LMHeadModel state dict (Conv1D weights (in, out))."""
    conv1d = ("c_attn.weight", "c_proj.weight", "c_fc.weight")
    return {k: (v.t() if k.endswith(conv1d) else v).contiguous() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("change, message", [
    (lambda sd: {}, "no transformer.wte.weight"),
    (lambda sd: {"encoder.weight": torch.zeros(3, 3)}, "no transformer.wte.weight"),
    (lambda sd: {k: v for k, v in sd.items() if "wpe" not in k}, "no transformer.wpe.weight"),
    (lambda sd: {**sd, "transformer.wte.weight": torch.zeros(211)}, "2-D"),
    (lambda sd: {**sd, "transformer.wpe.weight": torch.zeros(24, 20)}, "wpe 20"),
    (lambda sd: {k: v for k, v in sd.items() if ".h." not in k}, "no blocks"),
    (lambda sd: {**sd, "transformer.h.3.ln_1.weight": torch.ones(36)}, r"blocks \[2\] are missing"),
    (lambda sd: {**sd, "transformer.h.0.attn.c_attn.weight": torch.zeros(36, 36)}, "c_attn.weight has shape"),
    (lambda sd: {**sd, "transformer.h.0.attn.c_attn.weight": torch.zeros(108, 36)}, "nn.Linear"),
], ids=["empty", "other-model", "no-wpe", "wte-1d", "wpe-width", "no-blocks", "gap", "c_attn-shape",
        "linear-layout"])
def test_not_gpt2_weights(fixture, change, message):
    with pytest.raises(ValueError, match=message):
        config_from_state_dict(change(dict(fixture[0])), n_head=3)


def test_bad_head_counts_and_metadata(fixture):
    sd = fixture[0]
    with pytest.raises(ValueError, match="does not divide"):
        config_from_state_dict(sd, n_head=5)
    with pytest.raises(ValueError, match="positive"):
        config_from_state_dict(sd, n_head=0)
    with pytest.raises(ValueError, match="vocab_size=300"):
        config_from_state_dict(sd, metadata={"config": json.dumps({"vocab_size": 300, "n_head": 3})})
    with pytest.raises(ValueError, match="not JSON"):
        config_from_state_dict(sd, metadata={"config": "{n_head: 3"})


def test_our_own_state_dict_is_explained(fixture):
    model = GPT(fixture[1])
    with pytest.raises(ValueError, match="model.load_state_dict"):
        config_from_state_dict(model.state_dict(), n_head=3)


# --- loading -----------------------------------------------------------------------------------


def test_load_gpt2_gives_the_expected_logits(fixture):
    _, config, cases = fixture
    model, loaded = load_gpt2(FIXTURE)
    assert loaded == config and model.config == config
    assert not model.training
    assert model.lm_head.weight is model.transformer.wte.weight
    for idx, expected in cases:
        with torch.no_grad():
            logits, _ = model(idx)
        assert (logits - expected).abs().max().item() <= 1e-4


def test_load_gpt2_hub_style_file(tmp_path, fixture):
    state_dict, _, cases = fixture
    path = unprefixed_file(state_dict, tmp_path / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(WeightsFileError, match="n_head") as info:
        load_gpt2(path)  # 36 wide and no config in the metadata: the heads are unknown
    assert str(path) in str(info.value)
    model, config = load_gpt2(path, n_head=3)
    idx, expected = cases[0]
    with torch.no_grad():
        assert (model(idx)[0] - expected).abs().max().item() <= 1e-4


def test_load_gpt2_errors_name_the_file(tmp_path, fixture):
    state_dict = dict(fixture[0])
    del state_dict["transformer.h.1.mlp.c_fc.bias"]
    save_file(state_dict, str(tmp_path / "partial.safetensors"), metadata=read_metadata(FIXTURE))
    with pytest.raises(WeightsFileError, match="h.1.mlp.c_fc.bias") as info:
        load_gpt2(tmp_path / "partial.safetensors")
    assert "partial.safetensors" in str(info.value)


def test_transformers_checkpoint_loads_end_to_end(tmp_path):
    """A GPT2LMHeadModel's weights, saved the way the hub stores GPT-2, give the same logits."""
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    hf = transformers.GPT2LMHeadModel(transformers.GPT2Config(
        vocab_size=131, n_positions=16, n_layer=2, n_head=2, n_embd=128, resid_pdrop=0.0,
        embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=0, eos_token_id=0)).eval()
    with torch.no_grad():
        for p in hf.parameters():
            p.add_(torch.randn(p.shape) * 0.2)
    path = unprefixed_file({k: v.clone() for k, v in hf.state_dict().items()}, tmp_path / "model.safetensors")
    model, config = load_gpt2(path)  # n_head from n_embd // 64
    assert (config.vocab_size, config.block_size, config.n_layer, config.n_head) == (131, 16, 2, 2)
    idx = torch.randint(0, 131, (2, 16))
    with torch.no_grad():
        assert (model(idx)[0] - hf(idx).logits).abs().max().item() <= 1e-4


# --- downloading -------------------------------------------------------------------------------


class FakeResponse(io.BytesIO):
    """What urlopen returns: a readable body with headers."""

    def __init__(self, body: bytes, length: int | None = None):
        super().__init__(body)
        self.headers = {} if length is None else {"Content-Length": str(length)}


def fake_urlopen(monkeypatch, body: bytes, length: int | None = None, fail_after: int | None = None):
    calls = []

    def urlopen(request, timeout=None):
        calls.append(request.full_url)
        response = FakeResponse(body, len(body) if length is None else length)
        if fail_after is not None:
            read = response.read

            def broken(n=-1):
                if response.tell() >= fail_after:
                    raise ConnectionResetError("connection reset by peer")
                return read(min(n, fail_after - response.tell()) if n > 0 else n)
            response.read = broken
        return response

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    return calls


def hub_file_bytes(fixture):
    return save(hub_style(fixture[0]), metadata={"format": "pt"})


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name != "model.safetensors")


def test_download_writes_the_file_atomically(tmp_path, monkeypatch, fixture):
    body = hub_file_bytes(fixture)
    calls = fake_urlopen(monkeypatch, body)
    dest = tmp_path / "cache" / "gpt2-124M"
    path = download_gpt2(dest, progress=False)
    assert path == dest / "model.safetensors"
    assert path.read_bytes() == body
    assert leftovers(dest) == []
    assert calls == [weights.GPT2_124M_URL]
    model, config = load_gpt2(path, n_head=3)
    assert config == fixture[1]
    # A second call finds the file and opens nothing.
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: pytest.fail("downloaded twice"))
    assert download_gpt2(dest, progress=False) == path


def test_download_shows_progress(tmp_path, monkeypatch, capsys, fixture):
    body = hub_file_bytes(fixture)
    fake_urlopen(monkeypatch, body)
    download_gpt2(tmp_path, progress=True)
    err = capsys.readouterr().err
    assert "GPT-2 124M" in err and "100%" in err


def test_download_uses_the_cache_dir(tmp_path, monkeypatch, fixture):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.delenv(weights.CACHE_ENV, raising=False)
    assert weights.default_cache_dir() == tmp_path / "home" / ".cache" / "gpt2course" / "gpt2-124M"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert weights.default_cache_dir() == tmp_path / "xdg" / "gpt2course" / "gpt2-124M"
    monkeypatch.setenv(weights.CACHE_ENV, str(tmp_path / "mine"))
    fake_urlopen(monkeypatch, hub_file_bytes(fixture))
    assert download_gpt2(progress=False) == tmp_path / "mine" / "model.safetensors"


@pytest.mark.parametrize("kind", ["short", "reset", "not-safetensors", "empty"])
def test_failed_download_leaves_nothing(tmp_path, monkeypatch, fixture, kind):
    body = hub_file_bytes(fixture)
    if kind == "short":
        fake_urlopen(monkeypatch, body[:-100], length=len(body))
        match = "stopped after"
    elif kind == "reset":
        fake_urlopen(monkeypatch, body, fail_after=len(body) // 2)
        match = "connection reset"
    elif kind == "not-safetensors":
        fake_urlopen(monkeypatch, b"<html>rate limited</html>" * 10)
        match = "not a safetensors file"
    else:
        fake_urlopen(monkeypatch, b"")
        match = "empty"
    with pytest.raises(DownloadError, match=match):
        download_gpt2(tmp_path, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_offline_download_says_how_to_pass_a_file(tmp_path, monkeypatch):
    def unreachable(request, timeout=None):
        raise urllib.error.URLError(OSError(-3, "Temporary failure in name resolution"))

    monkeypatch.setattr(urllib.request, "urlopen", unreachable)
    with pytest.raises(OfflineError) as info:
        download_gpt2(tmp_path, progress=False)
    message = str(info.value)
    assert isinstance(info.value, OSError)
    assert "offline" in message and "--weights" in message and "load_gpt2" in message
    assert list(tmp_path.iterdir()) == []


def test_unreachable_local_address_is_offline(tmp_path):
    # The real urlopen (through the guard), at a port on this machine that nothing listens on.
    with pytest.raises(OfflineError, match="127.0.0.1:9"):
        download_gpt2(tmp_path, progress=False, url="http://127.0.0.1:9/model.safetensors", timeout=5)
    assert list(tmp_path.iterdir()) == []


def test_http_error_is_not_called_offline(tmp_path, monkeypatch):
    def not_found(request, timeout=None):
        raise urllib.error.HTTPError(request.full_url, 404, "Not Found", {}, None)

    monkeypatch.setattr(urllib.request, "urlopen", not_found)
    with pytest.raises(DownloadError, match="HTTP 404") as info:
        download_gpt2(tmp_path, progress=False)
    assert not isinstance(info.value, OfflineError)


# --- the fixture files -------------------------------------------------------------------------


def test_fixture_check_notices_stale_files(tmp_path, capsys):
    from gpt2course import fixtures

    written = fixtures.write(tmp_path)
    assert sorted(p.name for p in written) == sorted([fixtures.WEIGHTS_NAME, fixtures.EXPECTED_NAME])
    assert [p.read_bytes() for p in written] == [(fixtures_dir() / p.name).read_bytes() for p in written]
    assert fixtures.main(["--check", "--dest", str(tmp_path)]) == 0
    state_dict, _, _ = fixtures.load_fixture(tmp_path)
    state_dict["transformer.h.1.ln_2.bias"][3] += 0.5
    save_file(state_dict, str(tmp_path / fixtures.WEIGHTS_NAME),
              metadata=read_metadata(tmp_path / fixtures.EXPECTED_NAME) | {"about": "edited"})
    (tmp_path / fixtures.EXPECTED_NAME).unlink()
    capsys.readouterr()
    assert fixtures.main(["--check", "--dest", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "transformer.h.1.ln_2.bias differs" in err and "metadata differs" in err
    assert f"{fixtures.EXPECTED_NAME}: missing" in err and "python -m gpt2course.fixtures" in err


def test_fixture_has_what_a_real_checkpoint_has(fixture):
    state_dict, config, cases = fixture
    assert (config.vocab_size, config.block_size, config.n_layer, config.n_head, config.n_embd) == (211, 24, 2, 3, 36)
    assert all(k.startswith(("transformer.", "lm_head.")) for k in state_dict)
    assert state_dict["transformer.h.1.attn.bias"].shape == (1, 1, 24, 24)
    assert state_dict["transformer.h.0.attn.c_attn.weight"].shape == (36, 108)  # Conv1D: (in, out)
    assert state_dict["transformer.h.0.mlp.c_proj.weight"].shape == (144, 36)
    assert torch.equal(state_dict["lm_head.weight"], state_dict["transformer.wte.weight"])
    ln_w, ln_b = state_dict["transformer.ln_f.weight"], state_dict["transformer.ln_f.bias"]
    assert (ln_w - 1).abs().max() < 0.3 and not torch.all(ln_w == 1)
    assert ln_b.abs().max() < 0.2 and not torch.all(ln_b == 0)
    assert [tuple(idx.shape) for idx, _ in cases] == [(2, 24), (3, 7), (1, 1)]
    for idx, logits in cases:
        assert idx.dtype == torch.int64 and logits.dtype == torch.float32
        assert logits.shape == (*idx.shape, 211)
        assert (logits.amax(-1) - logits.amin(-1)).min() > 3  # logits spread over several units
