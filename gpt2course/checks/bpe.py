"""Checks for notebook 01's byte-level BPE: get_pair_counts, merge, train_bpe, encode, decode.

The oracles here are written independently of ``gpt2course.reference`` (different code paths),
so a bug in one is not copied into the other.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np

from .core import Case, CheckFailed, register


# ---- independent oracles -------------------------------------------------------------------

def pair_counts_oracle(ids) -> dict:
    return dict(Counter(zip(ids[:-1], ids[1:])))


def merge_oracle(ids, pair, new_id) -> list:
    out, skip = [], False
    for i, token in enumerate(ids):
        if skip:
            skip = False
            continue
        if tuple(ids[i:i + 2]) == tuple(pair):
            out.append(new_id)
            skip = True
        else:
            out.append(token)
    return out


def train_oracle(text: str, vocab_size: int) -> dict:
    ids, merges = list(text.encode("utf-8")), {}
    while len(merges) < vocab_size - 256:
        counts = pair_counts_oracle(ids)
        if not counts:
            break
        best = max(counts.values())
        pair = next(p for p, c in counts.items() if c == best)  # first occurrence wins ties
        merges[pair] = 256 + len(merges)
        ids = merge_oracle(ids, pair, merges[pair])
    return merges


def encode_oracle(text: str, merges: dict) -> list:
    ids = list(text.encode("utf-8"))
    for pair, new_id in sorted(merges.items(), key=lambda kv: kv[1]):
        ids = merge_oracle(ids, pair, new_id)
    return ids


def vocab_oracle(merges: dict) -> dict:
    vocab = {i: bytes([i]) for i in range(256)}
    for (a, b), new_id in sorted(merges.items(), key=lambda kv: kv[1]):
        vocab[new_id] = vocab[a] + vocab[b]
    return vocab


def decode_oracle(ids, merges) -> str:
    vocab = vocab_oracle(merges)
    return b"".join(vocab[i] for i in ids).decode("utf-8", errors="replace")


# ---- text generation for cases -------------------------------------------------------------

_WORDS = ["the", "king", "queen", "shall", "thee", "thou", "love", "lord", "night", "day",
          "sweet", "death", "hath", "what", "is", "a", "to", "and", "of", "my", "père", "naïve",
          "café", "日本", "😀", "—"]


def random_text(rng: np.random.Generator, n_words: int, vocabulary=_WORDS) -> str:
    words = rng.choice(vocabulary, size=n_words)
    seps = rng.choice([" ", " ", " ", ", ", ".\n"], size=n_words)
    return "".join(f"{w}{s}" for w, s in zip(words, seps))


def _as_int_list(output, what: str) -> list:
    if isinstance(output, (str, bytes)) or not isinstance(output, Sequence):
        raise CheckFailed(f"{what} should be a list of ints, got {type(output).__name__}")
    return [int(i) for i in output]


# ---- get_pair_counts -----------------------------------------------------------------------

def _counts_case(label, ids):
    expected = pair_counts_oracle(ids)

    def verify(output):
        if not isinstance(output, Mapping):
            raise CheckFailed(f"should return a dict {{(a, b): count}}, got {type(output).__name__}")
        got = {k: v for k, v in output.items()}
        if any(not (isinstance(k, tuple) and len(k) == 2) for k in got):
            raise CheckFailed("keys should be pairs (tuples) of adjacent ids, like (104, 101)")
        if got == expected:
            return
        missing = set(expected) - set(got)
        if missing:
            raise CheckFailed(f"the pair {sorted(missing)[0]} occurs in the input but is missing")
        extra = set(got) - set(expected)
        if extra:
            raise CheckFailed(f"the pair {sorted(extra)[0]} is counted but never occurs next to "
                              "itself in the input: pair each id with the one right after it")
        pair = next(p for p in expected if got[p] != expected[p])
        hint = (" Pairs overlap: in [5, 5, 5] the pair (5, 5) occurs twice."
                if pair[0] == pair[1] and got[pair] < expected[pair] else "")
        raise CheckFailed(f"the pair {pair} occurs {expected[pair]} times, you counted "
                          f"{got[pair]}.{hint}")
    return Case(label=label, args=(list(ids),), verify=verify)


@register("get_pair_counts", "counts, overlapping pairs, empty and one-element lists")
def pair_count_cases(rng, hidden):
    if not hidden:
        return [
            _counts_case("[1, 2, 3, 1, 2]", [1, 2, 3, 1, 2]),
            _counts_case("a run of equal ids", [5, 5, 5, 5]),
            _counts_case("an empty list", []),
            _counts_case("one id", [7]),
            _counts_case("40 random ids", rng.integers(0, 5, size=40).tolist()),
        ]
    return [
        _counts_case("the bytes of a text", list(random_text(rng, 30).encode("utf-8"))),
        _counts_case("two ids", [300, 4]),
        _counts_case("long runs", [9] * 7 + [3] * 3 + [9] * 2),
        _counts_case("200 random ids", rng.integers(250, 260, size=200).tolist()),
    ]


# ---- merge ---------------------------------------------------------------------------------

def _merge_case(label, ids, pair, new_id):
    expected = merge_oracle(ids, pair, new_id)

    def verify(output):
        got = _as_int_list(output, "merge's result")
        if got == expected:
            return
        if len(got) < len(expected):
            raise CheckFailed(f"returned {got[:12]}{'...' if len(got) > 12 else ''} but expected "
                              f"{expected[:12]}{'...' if len(expected) > 12 else ''}: after "
                              "replacing a pair, continue after both of its elements "
                              "(in [5, 5, 5] the pair (5, 5) is replaced once)")
        raise CheckFailed(f"returned {got[:12]}{'...' if len(got) > 12 else ''} but expected "
                          f"{expected[:12]}{'...' if len(expected) > 12 else ''}: replace every "
                          "non-overlapping occurrence, left to right, including one at the very end")
    return Case(label=label, args=(list(ids), tuple(pair), new_id), verify=verify)


@register("merge", "replacement, overlapping pairs, pairs at the end, no match")
def merge_cases(rng, hidden):
    if not hidden:
        return [
            _merge_case("[1, 2, 3, 1, 2] with (1, 2)", [1, 2, 3, 1, 2], (1, 2), 99),
            _merge_case("overlapping pairs", [5, 5, 5], (5, 5), 256),
            _merge_case("a pair at the end", [3, 1, 2], (1, 2), 256),
            _merge_case("no occurrence", [4, 3, 2, 1], (1, 2), 300),
            _merge_case("an empty list", [], (1, 2), 256),
        ]
    ids = rng.integers(0, 4, size=60).tolist()
    return [
        _merge_case("60 random ids", ids, (ids[10], ids[11]), 256 + int(rng.integers(0, 100))),
        _merge_case("a run of four", [8, 8, 8, 8, 1], (8, 8), 400),
        _merge_case("a run of five", [2, 7, 7, 7, 7, 7], (7, 7), 301),
        _merge_case("alternating", [1, 2, 1, 2, 1], (2, 1), 257),
        _merge_case("one id", [1], (1, 1), 256),
    ]


# ---- train_bpe -----------------------------------------------------------------------------

def _train_case(label, text, vocab_size):
    def verify(output):
        if not isinstance(output, Mapping):
            raise CheckFailed(f"should return a dict {{(id1, id2): new_id}}, got {type(output).__name__}")
        merges = list(output.items())
        for k, (pair, new_id) in enumerate(merges):
            if not (isinstance(pair, tuple) and len(pair) == 2):
                raise CheckFailed(f"keys should be pairs (id1, id2), got {pair!r}")
            if new_id != 256 + k:
                raise CheckFailed(
                    f"merge number {k} got id {new_id}; new ids should be 256, 257, ... in the "
                    "order the merges were learned (and the dict kept in that order)")
        # Replay: each merge must take a most frequent pair of the sequence at that point
        # (any tie-break is fine).
        ids = list(text.encode("utf-8"))
        for k, (pair, new_id) in enumerate(merges):
            counts = pair_counts_oracle(ids)
            if pair not in counts:
                raise CheckFailed(f"merge number {k}, {pair}, does not occur in the text at that "
                                  "point: start from list(text.encode('utf-8')) and apply each "
                                  "merge before counting again")
            best = max(counts.values())
            if counts[pair] < best:
                top = next(p for p, c in counts.items() if c == best)
                raise CheckFailed(
                    f"merge number {k} picked {pair}, which occurs {counts[pair]} times, but "
                    f"{top} occurs {best} times: pick the most frequent pair each round")
            ids = merge_oracle(ids, pair, new_id)
        wanted = vocab_size - 256
        if len(merges) > wanted:
            raise CheckFailed(f"learned {len(merges)} merges; vocab_size={vocab_size} means "
                              f"{wanted} merges (256 byte ids plus one id per merge)")
        if len(merges) < wanted:
            counts = pair_counts_oracle(ids)
            if counts and max(counts.values()) > 1:
                raise CheckFailed(f"learned {len(merges)} merges; vocab_size={vocab_size} means "
                                  f"{wanted} merges (256 byte ids plus one id per merge)")
    return Case(label=label, args=(text, vocab_size), verify=verify)


@register("train_bpe", "merge order, new ids, most frequent pairs, vocabulary size",
          helpers=("get_pair_counts", "merge"))
def train_cases(rng, hidden):
    if not hidden:
        return [
            _train_case("'aaabdaaabac', vocab_size=259", "aaabdaaabac", 259),
            _train_case("vocab_size=256 (no merges)", "hello world", 256),
            _train_case("a short text, vocab_size=270", "hello hello hello world, hello there " * 3, 270),
            _train_case("non-ASCII text", random_text(rng, 60), 290),
            _train_case("a text that runs out of pairs", "abab", 270),
        ]
    return [
        _train_case("a longer text, vocab_size=330", random_text(rng, 250), 330),
        _train_case("emoji and accents", "😀 café 😀 naïve 😀 café " * 4, 275),
        _train_case("a text that runs out of pairs", "abcabc", 270),
    ]


# ---- encode / decode -----------------------------------------------------------------------

def _trained(rng, n_words, vocab_size):
    text = random_text(rng, n_words)
    return text, train_oracle(text, vocab_size)


def _encode_case(label, text, merges):
    expected = encode_oracle(text, merges)

    def verify(output):
        got = _as_int_list(output, "encode's result")
        if got == expected:
            return
        raw = list(text.encode("utf-8"))
        if got == raw and expected != raw:
            raise CheckFailed("returned the raw UTF-8 bytes: apply the learned merges")
        if got and decode_oracle([i for i in got if i < 256 + len(merges)], merges) == text:
            raise CheckFailed(
                f"your ids decode back to the text but are not its BPE encoding (got "
                f"{len(got)} tokens, expected {len(expected)}): apply the merges in learning "
                "order, the earliest-learned pair first, until no learned pair is left")
        raise CheckFailed(f"got {got[:10]}..., expected {expected[:10]}...")
    return Case(label=label, args=(text, merges), verify=verify)


@register("encode", "training text, unseen text, empty and non-ASCII text", helpers=("get_pair_counts", "merge"))
def encode_cases(rng, hidden):
    text, merges = _trained(rng, 80 if not hidden else 150, 300 if not hidden else 340)
    other = random_text(rng, 20)
    if not hidden:
        return [
            _encode_case("the training text", text, merges),
            _encode_case("another text", other, merges),
            _encode_case("an empty string", "", merges),
            _encode_case("one character", "a", merges),
            _encode_case("characters never seen in training", "Zebras \u00bfqu\u00e9? \u2603", merges),
            _encode_case("a word repeated", "the lord, the lord, my lord ", merges),
            _encode_case("an early merge against a more frequent later one", "abcbcbc",
                         {(97, 98): 256, (98, 99): 257}),
        ]
    return [
        _encode_case("a slice of the training text", text[17:160], merges),
        _encode_case("repeated words", "the king the king the king ", merges),
        _encode_case("another text", other, merges),
        _encode_case("no merges at all", "abc", {}),
        _encode_case("merge order decides", "xyzyzyz yz xy",
                     {(120, 121): 256, (121, 122): 257, (256, 122): 258, (32, 257): 259}),
    ]


def _decode_case(label, ids, merges):
    expected = decode_oracle(ids, merges)

    def verify(output):
        if not isinstance(output, str):
            raise CheckFailed(f"should return a str, got {type(output).__name__}")
        if output != expected:
            at = next((i for i, (a, b) in enumerate(zip(output, expected)) if a != b),
                      min(len(output), len(expected)))
            raise CheckFailed(f"the text differs from character {at} on: got "
                              f"{output[max(0, at - 10):at + 30]!r}, expected "
                              f"{expected[max(0, at - 10):at + 30]!r}")
    errors = {"UnicodeDecodeError": "raised UnicodeDecodeError: not every id sequence is valid "
                                    "UTF-8; decode with errors='replace'",
              "KeyError": "raised KeyError: build the byte string of every merged id from its "
                          "two parts, in learning order"}
    return Case(label=label, args=(list(ids), merges), verify=verify, errors=errors)


@register("decode", "round trips, merged ids, invalid UTF-8")
def decode_cases(rng, hidden):
    text, merges = _trained(rng, 80 if not hidden else 150, 300 if not hidden else 340)
    if not hidden:
        return [
            _decode_case("the training text", encode_oracle(text, merges), merges),
            _decode_case("raw bytes only", list("héllo".encode("utf-8")), merges),
            _decode_case("an empty list", [], merges),
            _decode_case("invalid UTF-8 (a lone continuation byte)", [104, 0x80, 105], merges),
            _decode_case("merges whose parts were learned later in pair order",
                         [258, 257, 32], {(104, 105): 256, (256, 33): 257, (32, 256): 258}),
        ]
    merged = [i for i in range(256, 256 + len(merges))]
    return [
        _decode_case("every merged id", merged, merges),
        _decode_case("another text", encode_oracle(random_text(rng, 30), merges), merges),
        _decode_case("a cut multi-byte character", list("😀".encode("utf-8"))[:3] + [33], merges),
        _decode_case("nested merges", [259, 32, 258],
                     {(111, 107): 256, (256, 33): 257, (32, 257): 258, (104, 258): 259}),
    ]
