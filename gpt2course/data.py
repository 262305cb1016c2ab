"""The course's text: Tiny Shakespeare as a string, split for training and validation, as GPT-2
tokens and as characters.

The files come from ``data/`` through ``gpt2course.datafiles``, which checks their SHA-256; its
names (``verified_path``, ``data_dir``, ``DataFileError``, ...) are importable from here too.
"""

from __future__ import annotations

from functools import lru_cache

from .datafiles import CHECKSUMS, DATA_ENV, DataFileError, data_dir, sha256, verified_path

__all__ = ["load_shakespeare", "split_text", "shakespeare_tokens", "shakespeare_chars",
           "CHECKSUMS", "DATA_ENV", "DataFileError", "data_dir", "sha256", "verified_path"]


@lru_cache(maxsize=None)
def load_shakespeare() -> str:
    """Tiny Shakespeare (1,115,394 characters) as one string."""
    return verified_path("tinyshakespeare.txt").read_text(encoding="utf-8")


def split_text(text: str, train_fraction: float = 0.9) -> tuple[str, str]:
    """Split by characters: the first ``train_fraction`` for training, the rest for validation."""
    if not 0.0 < train_fraction < 1.0:
        raise ValueError(f"train_fraction must be between 0 and 1, got {train_fraction}")
    cut = int(len(text) * train_fraction)
    return text[:cut], text[cut:]


def shakespeare_tokens(train_fraction: float = 0.9):
    """Tiny Shakespeare as GPT-2 tokens: (train, val) int64 tensors, split 90/10 by characters.

    The well-known figures: 301,966 training and 36,059 validation tokens.
    """
    import torch

    from .tokenizer import gpt2_encoding

    enc = gpt2_encoding()
    train_text, val_text = split_text(load_shakespeare(), train_fraction)
    return (torch.tensor(enc.encode_ordinary(train_text), dtype=torch.long),
            torch.tensor(enc.encode_ordinary(val_text), dtype=torch.long))


@lru_cache(maxsize=None)
def shakespeare_chars():
    """Tiny Shakespeare as character ids: (train, val, vocab), split 90/10 by characters (the
    character-level models of notebooks 06 and 09).

    ``vocab`` is the sorted set of characters of the whole text (65 of them); id i is vocab[i].
    """
    import torch

    text = load_shakespeare()
    vocab = "".join(sorted(set(text)))
    lookup = {ch: i for i, ch in enumerate(vocab)}
    train_text, val_text = split_text(text)

    def encode(part: str):
        return torch.tensor([lookup[ch] for ch in part], dtype=torch.long)

    return encode(train_text), encode(val_text), vocab
