"""The GPT-2 tokenizer is built offline from data/gpt2 and equals tiktoken's own "gpt2"."""

from __future__ import annotations

import hashlib
import shutil
import socket

import pytest

from gpt2course import data, tokenizer
from gpt2course.data import DataFileError, load_shakespeare


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the tokenizer tried to use the network")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@pytest.fixture
def tiktoken_gpt2(tmp_path, monkeypatch, no_network):
    """tiktoken's own get_encoding("gpt2"), fed the shipped files through its cache (no download)."""
    import tiktoken
    import tiktoken.registry
    from tiktoken_ext import openai_public

    urls = [u for u in openai_public.gpt2.__code__.co_consts if isinstance(u, str) and u.startswith("http")]
    assert len(urls) == 2, urls
    for url in urls:
        key = hashlib.sha1(url.encode()).hexdigest()
        shutil.copy(data.data_dir() / "gpt2" / url.rsplit("/", 1)[-1], tmp_path / key)
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(tiktoken.registry, "ENCODINGS", {})
    return tiktoken.get_encoding("gpt2")


def test_identical_to_tiktoken_gpt2(tiktoken_gpt2, no_network):
    ours = tokenizer.gpt2_encoding()
    assert ours._mergeable_ranks == tiktoken_gpt2._mergeable_ranks
    assert ours._pat_str == tiktoken_gpt2._pat_str
    assert ours._special_tokens == tiktoken_gpt2._special_tokens
    assert ours.n_vocab == tiktoken_gpt2.n_vocab == 50257
    text = load_shakespeare()[:200_000] + " naïve café 日本語 😀 <|endoftext|> 12345  \n\n  'll 've"
    assert ours.encode(text, allowed_special="all") == tiktoken_gpt2.encode(text, allowed_special="all")


def test_known_values():
    enc = tokenizer.gpt2_encoding()
    assert enc.encode("Hello world<|endoftext|>", allowed_special="all") == [15496, 995, 50256]
    assert len(enc.encode_ordinary(load_shakespeare())) == 338_025
    train, val = data.shakespeare_tokens()
    assert (len(train), len(val)) == (301_966, 36_059)


def test_builds_without_network(tmp_path, no_network):
    shutil.copytree(data.data_dir(), tmp_path / "data")
    enc = tokenizer.gpt2_encoding(tmp_path / "data")
    assert enc.decode(enc.encode("offline")) == "offline"


@pytest.mark.parametrize("name", ["gpt2/vocab.bpe", "gpt2/encoder.json"])
def test_corrupt_or_missing_file_is_named(tmp_path, name):
    shutil.copytree(data.data_dir(), tmp_path / "data")
    target = tmp_path / "data" / name
    target.write_bytes(target.read_bytes()[:-10] + b"corrupted!")
    with pytest.raises(DataFileError, match="corrupt") as info:
        tokenizer.gpt2_encoding(tmp_path / "data")
    assert name.split("/")[-1] in str(info.value)
    target.unlink()
    with pytest.raises(DataFileError, match="missing") as info:
        tokenizer.gpt2_encoding(tmp_path / "data")
    assert name.split("/")[-1] in str(info.value)


def test_checksums_match_sources_md():
    table = (data.data_dir() / "SOURCES.md").read_text()
    for name, digest in data.CHECKSUMS.items():
        assert f"| {name} |" in table and digest in table, name
        assert data.sha256(data.data_dir() / name) == digest
