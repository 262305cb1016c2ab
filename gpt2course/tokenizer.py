"""GPT-2's byte-level BPE as a tiktoken encoding, built from the shipped files: no download."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from .datafiles import DataFileError, verified_path

ENDOFTEXT = "<|endoftext|>"


def _gpt2_pattern() -> str:
    """GPT-2's pre-tokenisation regex, as the installed tiktoken spells it for its "gpt2" encoding."""
    try:
        from tiktoken_ext.openai_public import r50k_pat_str
        return r50k_pat_str
    except ImportError:  # older tiktoken: the pattern from GPT-2's encoder.py
        return r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's printable stand-in character for each byte value, as its encoder.json spells tokens."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table, extra = {}, 0
    for b in range(256):
        if b in printable:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def _load_ranks(root: Path | None) -> dict[bytes, int]:
    """Token bytes -> rank, from encoder.json, checked against the merge order of vocab.bpe."""
    vocab_bpe = verified_path("gpt2/vocab.bpe", root)
    encoder_json = verified_path("gpt2/encoder.json", root)
    char_to_byte = {c: b for b, c in _bytes_to_unicode().items()}

    def to_bytes(token: str) -> bytes:
        return bytes(char_to_byte[c] for c in token)

    encoder = json.loads(encoder_json.read_text(encoding="utf-8"))
    ranks = {to_bytes(tok): rank for tok, rank in encoder.items() if tok != ENDOFTEXT}
    # vocab.bpe lists the merges in learning order: merge i creates the token of rank 256 + i.
    merges = vocab_bpe.read_text(encoding="utf-8").split("\n")[1:]
    for i, line in enumerate(m for m in merges if m):
        left, right = line.split(" ")
        if ranks.get(to_bytes(left) + to_bytes(right)) != 256 + i:
            raise DataFileError(f"{vocab_bpe}: merge {i} ({line!r}) disagrees with {encoder_json.name}")
    return ranks


@lru_cache(maxsize=None)
def _cached_encoding(root: str | None):
    import tiktoken

    ranks = _load_ranks(Path(root) if root else None)
    return tiktoken.Encoding(
        name="gpt2",
        explicit_n_vocab=50257,
        pat_str=_gpt2_pattern(),
        mergeable_ranks=ranks,
        special_tokens={ENDOFTEXT: 50256},
    )


def gpt2_encoding(root: str | Path | None = None):
    """The GPT-2 tokenizer as a ``tiktoken.Encoding``, identical to ``tiktoken.get_encoding("gpt2")``.

    Built from ``data/gpt2/vocab.bpe`` and ``data/gpt2/encoder.json`` after checking their
    SHA-256, so it works offline. ``root`` overrides the data folder. A missing or corrupt file
    raises ``DataFileError`` naming it.
    """
    return _cached_encoding(str(root) if root is not None else None)
