"""Checks for notebook 01's byte-level BPE: get_pair_counts, merge, train_bpe, encode, decode.

The oracles here are written independently of ``gpt2course.reference`` (different code paths),
so a bug in one is not copied into the other. When an answer is wrong, the outputs of known
mistakes (the small functions beside each check) are compared with it, and the message names
every mistake that gives exactly what came back.
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


def _apply_in_order(ids, merges, order) -> list:
    for pair, new_id in order(merges):
        ids = merge_oracle(ids, pair, new_id)
    return ids


def _learning_order(merges):
    return sorted(merges.items(), key=lambda kv: kv[1])


def encode_oracle(text: str, merges: dict) -> list:
    return _apply_in_order(list(text.encode("utf-8")), merges, _learning_order)


def vocab_oracle(merges: dict) -> dict:
    vocab = {i: bytes([i]) for i in range(256)}
    for (a, b), new_id in _learning_order(merges):
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


# ---- shared helpers ------------------------------------------------------------------------

def _as_int_list(output, what: str) -> list:
    if isinstance(output, (str, bytes)) or not isinstance(output, Sequence):
        raise CheckFailed(f"{what} should be a list of ints, got {type(output).__name__}")
    return [int(i) for i in output]


def _show(ids, limit: int = 12) -> str:
    ids = list(ids)
    return f"{ids[:limit]}"[:-1] + (", ...]" if len(ids) > limit else "]")


def _times(n: int) -> str:
    return {1: "once", 2: "twice"}.get(n, f"{n} times")


def _named(got, mistakes) -> str | None:
    """What the known mistakes whose output equals ``got`` are (``mistakes``: a list of
    (description, function giving that mistake's output)), or None when none does. Two mistakes
    that give the same output are both named: the output cannot tell them apart."""
    found = []
    for description, output in mistakes:
        try:
            wrong = output()
        except Exception:  # noqa: BLE001 - a mistake that cannot happen on this input
            continue
        if wrong == got and description not in found:
            found.append(description)
    if len(found) > 1:
        return f"{len(found)} mistakes give exactly this: " + " Or: ".join(found)
    return found[0] if found else None


# ---- get_pair_counts -----------------------------------------------------------------------

def _counts_skipping_repeats(ids) -> dict:
    """Counts that jump past a repeated pair (i += 2 after ids[i] == ids[i + 1])."""
    counts, i = Counter(), 0
    while i < len(ids) - 1:
        counts[ids[i], ids[i + 1]] += 1
        i += 2 if ids[i] == ids[i + 1] else 1
    return dict(counts)


def _non_overlapping_counts(ids) -> dict:
    """Each pair counted without overlaps, as str.count counts substrings."""
    return {pair: (len(ids) - len(merge_oracle(ids, pair, -1))) for pair in pair_counts_oracle(ids)}


def _pair_count_mistakes(ids) -> list:
    expected = pair_counts_oracle(ids)
    overlap = ("overlapping pairs were counted once: pairs overlap, [5, 5, 5] contains (5, 5) "
               "twice (step to the next id, not past the pair)")
    return [
        ("every pair got the count 1: add 1 each time the pair occurs again "
         "(counts.get(pair, 0) + 1) instead of setting it", lambda: dict.fromkeys(expected, 1)),
        ("every count is one too high: a pair that occurs once has count 1 (start each count "
         "at 0: counts.get(pair, 0) + 1)", lambda: {p: c + 1 for p, c in expected.items()}),
        ("the last pair, (ids[-2], ids[-1]), was not counted: pair every id with the one right "
         "after it, up to the end (zip(ids, ids[1:]) does)", lambda: pair_counts_oracle(ids[:-1])),
        ("the first pair, (ids[0], ids[1]), was not counted", lambda: pair_counts_oracle(ids[1:])),
        ("(ids[-1], ids[0]) was counted too, as if the list wrapped around: the last id has no "
         "pair after it", lambda: pair_counts_oracle(list(ids) + list(ids[:1]))),
        ("the pairs are the wrong way round: the key is (ids[i], ids[i + 1]), the earlier id "
         "first", lambda: {(b, a): c for (a, b), c in expected.items()}),
        ("(a, b) and (b, a) were counted as one pair: the order matters, the key is "
         "(ids[i], ids[i + 1]) with the earlier id first",
         lambda: dict(Counter(tuple(sorted(p)) for p in zip(ids[:-1], ids[1:])))),
        (overlap, lambda: _counts_skipping_repeats(ids)),
        (overlap, lambda: _non_overlapping_counts(ids)),
    ]


def _counts_case(label, ids):
    expected = pair_counts_oracle(ids)

    def verify(output):
        if not isinstance(output, Mapping):
            short = (" A list of fewer than two ids has no pairs: return an empty dict {}."
                     if len(ids) < 2 else "")
            raise CheckFailed(f"should return a dict {{(a, b): count}}, got {type(output).__name__}.{short}")
        got = {k: v for k, v in output.items()}
        if any(not (isinstance(k, tuple) and len(k) == 2) for k in got):
            raise CheckFailed("keys should be pairs (tuples) of adjacent ids, like (104, 101)")
        if got == expected:
            return
        if not expected:
            raise CheckFailed(f"a list of fewer than two ids has no pairs: expected {{}}, got {got}")
        named = _named(got, _pair_count_mistakes(ids))
        if named:
            raise CheckFailed(named)
        missing = set(expected) - set(got)
        if missing:
            raise CheckFailed(f"the pair {sorted(missing)[0]} occurs in the input but is missing")
        extra = set(got) - set(expected)
        if extra:
            raise CheckFailed(f"the pair {sorted(extra)[0]} is counted but its ids are never next to "
                              "each other in the input: pair each id with the one right after it")
        pair = next(p for p in expected if got[p] != expected[p])
        hint = (" Pairs overlap: in [5, 5, 5] the pair (5, 5) occurs twice."
                if pair[0] == pair[1] and got[pair] < expected[pair] else "")
        raise CheckFailed(f"the pair {pair} occurs {_times(expected[pair])}, you counted "
                          f"{got[pair]}.{hint}")
    if len(ids) < 2:
        hint = ("a list of fewer than two ids has no pairs: return {} without reading ids[0] "
                "(an empty list has none) or ids[1]")
    else:
        hint = ("an index ran past the end of ids: the last pair is "
                "(ids[len(ids) - 2], ids[len(ids) - 1]), so i stops at len(ids) - 2")
    return Case(label=label, args=(list(ids),), verify=verify, errors={"IndexError": hint})


@register("get_pair_counts", "counts, overlapping pairs, empty and one-element lists", rules={
    "a dict of pairs": ["[1, 2, 3, 1, 2, 3, 4]", "a run between two other ids", "an empty list", "two ids"],
    "every adjacent pair": ["[1, 2, 3, 1, 2, 3, 4]", "40 random ids", "the bytes of a text",
                            "two ids", "200 random ids"],
    "counts": ["[1, 2, 3, 1, 2, 3, 4]", "40 random ids", "the bytes of a text", "200 random ids"],
    "overlapping pairs": ["a run between two other ids", "long runs"],
    "short lists": ["an empty list", "one id"],
})
def pair_count_cases(rng, hidden):
    if not hidden:
        return [
            _counts_case("[1, 2, 3, 1, 2, 3, 4]", [1, 2, 3, 1, 2, 3, 4]),
            _counts_case("a run between two other ids", [4, 5, 5, 5, 5, 6]),
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

def _matches(ids, i, pair) -> bool:
    return i + 1 < len(ids) and ids[i] == pair[0] and ids[i + 1] == pair[1]


def _merge_keeping_second(ids, pair, new_id) -> list:
    """Steps by 1 after a replacement: the pair's second id stays (and may start a match)."""
    out = []
    for i in range(len(ids)):
        out.append(new_id if _matches(ids, i, pair) else ids[i])
    return out


def _merge_overlapping(ids, pair, new_id) -> list:
    """Every position that starts the pair is replaced; an id that only ends one is dropped."""
    out = []
    for i in range(len(ids)):
        if _matches(ids, i, pair):
            out.append(new_id)
        elif not (i > 0 and _matches(ids, i - 1, pair)):
            out.append(ids[i])
    return out


def _merge_first_only(ids, pair, new_id) -> list:
    for i in range(len(ids)):
        if _matches(ids, i, pair):
            return list(ids[:i]) + [new_id] + list(ids[i + 2:])
    return list(ids)


def _merge_not_at_end(ids, pair, new_id) -> list:
    """A pair in the last two positions is never looked at."""
    return merge_oracle(ids[:-1], pair, new_id) + list(ids[-1:]) if ids else []


def _merge_right_to_left(ids, pair, new_id) -> list:
    return merge_oracle(list(ids)[::-1], tuple(pair)[::-1], new_id)[::-1]


def _merge_dropping_last(ids, pair, new_id) -> list:
    """A loop over range(len(ids) - 1): a last id that ends no replaced pair is lost."""
    out, skip = [], False
    for i in range(len(ids) - 1):
        if skip:
            skip = False
        elif _matches(ids, i, pair):
            out.append(new_id)
            skip = True
        else:
            out.append(ids[i])
    return out


def _merge_mistakes(ids, pair, new_id) -> list:
    example = "merge([5, 5, 5], (5, 5), 256) is [256, 5]"
    return [
        ("the second id of a replaced pair was kept: after a replacement, step past both ids "
         "of the pair (i += 2)", lambda: _merge_keeping_second(ids, pair, new_id)),
        (f"overlapping occurrences were all replaced: after a replacement, continue after both "
         f"ids of the pair, so {example}", lambda: _merge_overlapping(ids, pair, new_id)),
        ("only the first occurrence was replaced: replace every occurrence",
         lambda: _merge_first_only(ids, pair, new_id)),
        ("the pair in the last two positions was not replaced: look at every i with "
         "i + 1 < len(ids), the last pair included", lambda: _merge_not_at_end(ids, pair, new_id)),
        (f"the occurrences were taken right to left: scan left to right, so {example}, not "
         "[5, 256]", lambda: _merge_right_to_left(ids, pair, new_id)),
        ("the last id was dropped: every id that is not part of a replaced pair stays, the last "
         "one too (a loop over range(len(ids) - 1) never reaches it)",
         lambda: _merge_dropping_last(ids, pair, new_id)),
    ]


def _merge_case(label, ids, pair, new_id):
    expected = merge_oracle(ids, pair, new_id)

    def verify(output):
        got = _as_int_list(output, "merge's result")
        if got == expected:
            return
        shown = f"returned {_show(got)} but expected {_show(expected)}"
        named = _named(got, _merge_mistakes(ids, pair, new_id))
        if named:
            raise CheckFailed(f"{shown}: {named}")
        raise CheckFailed(f"{shown}: replace every occurrence of the pair, left to right, "
                          "continuing after both of its ids, and keep every other id in order")
    return Case(label=label, args=(list(ids), tuple(pair), new_id), verify=verify)


_MERGE_FIRST = "[1, 2, 3, 1, 2, 1, 2, 4] with (1, 2)"


@register("merge", "replacement, overlapping pairs, pairs at the end, no match", rules={
    "a new list": [_MERGE_FIRST, "overlapping pairs", "a pair at the end", "60 random ids"],
    "every occurrence": [_MERGE_FIRST, "a pair at the end", "60 random ids", "alternating"],
    "other ids kept": [_MERGE_FIRST, "no occurrence", "an empty list", "one id"],
    "left to right, no overlaps": ["overlapping pairs", "a run of four", "a run of five", "alternating"],
})
def merge_cases(rng, hidden):
    if not hidden:
        return [
            _merge_case(_MERGE_FIRST, [1, 2, 3, 1, 2, 1, 2, 4], (1, 2), 99),
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

def _first_bad(ids, merges) -> int:
    """The index of the first of ``merges`` that is not a most frequent pair of ``ids`` once the
    merges before it are applied (len(merges) when every one is)."""
    for k, (pair, new_id) in enumerate(merges):
        counts = pair_counts_oracle(ids)
        if counts.get(pair, 0) < max(counts.values(), default=1):
            return k
        ids = merge_oracle(ids, pair, new_id)
    return len(merges)


def _count_of_merges(n: int) -> str:
    return f"{n} merge{'' if n == 1 else 's'}"


def _train_case(label, text, vocab_size):
    wanted = vocab_size - 256

    def verify(output):
        if not isinstance(output, Mapping):
            raise CheckFailed("should return a dict {(id1, id2): new_id}, got "
                              f"{type(output).__name__}")
        merges = list(output.items())
        if merges and all(isinstance(k, int) and isinstance(v, tuple) for k, v in merges):
            raise CheckFailed("the dict is the wrong way round, {new_id: pair}: the keys should be "
                              "the pairs and the values their new ids, {(id1, id2): new_id}")
        for pair, new_id in merges:
            if not (isinstance(pair, tuple) and len(pair) == 2):
                raise CheckFailed(f"keys should be pairs (id1, id2), got {pair!r}")
            if not isinstance(new_id, int):
                raise CheckFailed(f"values should be the new ids (ints), got {new_id!r}")
        values = [new_id for _, new_id in merges]
        # One merge with a later id than 256, most frequent in the bytes, and pairs left after
        # it: the same pair was learned round after round, each time overwriting its entry.
        if len(merges) == 1 and wanted > 1 and values[0] != 256 \
                and _first_bad(list(text.encode("utf-8")), merges) == 1 \
                and pair_counts_oracle(merge_oracle(list(text.encode("utf-8")), *merges[0])):
            raise CheckFailed(
                f"only one merge, {merges[0][0]}: {merges[0][1]}, although vocab_size={vocab_size} "
                f"asks for {wanted}: the same pair won every round and its entry was overwritten. "
                "Count the pairs of the merged ids each round: keep merge's result, "
                "ids = merge(ids, pair, new_id), and count that")
        if values != list(range(256, 256 + len(merges))):
            if sorted(values) == list(range(256, 256 + len(merges))):
                raise CheckFailed(f"the dict is not in learning order (its ids go {values[:6]}...): "
                                  "add each merge as it is learned, and don't sort the dict")
            k = next(k for k, v in enumerate(values) if v != 256 + k)
            if k == 0:
                raise CheckFailed(f"the first merge got id {values[0]}: new ids start at 256 (ids "
                                  "0-255 are the bytes), then 257, 258, ...")
            raise CheckFailed(f"merge number {k} got id {values[k]}, expected {256 + k}: new ids "
                              "are 256, 257, ... in the order the merges were learned")
        # Replay: each merge must take a most frequent pair of the sequence at that point
        # (any tie-break is fine).
        start = list(text.encode("utf-8"))
        bad = _first_bad(start, merges)
        if bad < len(merges) and _first_bad([ord(c) for c in text], merges) > bad:
            raise CheckFailed(
                f"merge number {bad} is {merges[bad][0]}: your merges were learned from characters "
                "(code points, ord), not bytes. Start from the UTF-8 bytes, ids = "
                "list(text.encode('utf-8')): a character like 'é' or '日' is two or three bytes")
        ids, known = list(start), set(range(256))
        for k, (pair, new_id) in enumerate(merges):
            counts = pair_counts_oracle(ids)
            unknown = [i for i in pair if i not in known]
            if unknown:
                raise CheckFailed(f"merge number {k}, {pair}, holds id {unknown[0]}, which is "
                                  "neither a byte (0-255) nor the id of an earlier merge")
            if pair not in counts:
                if k > 0 and pair in pair_counts_oracle(start):
                    raise CheckFailed(
                        f"merge number {k}, {pair}, no longer occurs after the merges before it "
                        "(it did in the text's bytes): count the pairs again each round, on the "
                        "ids after the merges so far")
                raise CheckFailed(f"merge number {k}, {pair}, does not occur in the text at that "
                                  "point: start from list(text.encode('utf-8')) and apply each "
                                  "merge before counting again")
            best = max(counts.values())
            if counts[pair] < best:
                top = next(p for p, c in counts.items() if c == best)
                said = (f"merge number {k} picked {pair}, which occurs {_times(counts[pair])}, but "
                        f"{top} occurs {_times(best)}")
                if k > 0 and pair_counts_oracle(start).get(pair, 0) >= best:
                    raise CheckFailed(f"{said}: it was frequent in the text's bytes, before the "
                                      "earlier merges. Count the pairs again each round, on the "
                                      "ids after the merges so far")
                causes = []
                if pair == max(counts):
                    causes.append("the largest pair, as max(counts) gives without key=counts.get")
                if counts[pair] == min(counts.values()):
                    causes.append("a least frequent pair (min instead of max?)")
                if causes:
                    raise CheckFailed(f"{said}: that is {' and also '.join(causes)}; take a most "
                                      "frequent pair, max(counts, key=counts.get)")
                raise CheckFailed(f"{said}: pick the most frequent pair each round")
            ids = merge_oracle(ids, pair, new_id)
            known.add(new_id)
        said = (f"learned {_count_of_merges(len(merges))}, {abs(len(merges) - wanted)} too "
                f"{'many' if len(merges) > wanted else 'few'}: vocab_size={vocab_size} means "
                f"{_count_of_merges(wanted)} (256 byte ids plus one id per merge)")
        if len(merges) > wanted:
            raise CheckFailed(said)
        counts = pair_counts_oracle(ids)
        if len(merges) < wanted and counts:
            if max(counts.values()) == 1:
                raise CheckFailed(
                    f"stopped after {_count_of_merges(len(merges))} while pairs were left (each "
                    f"occurring once); vocab_size={vocab_size} asks for {wanted}. Keep merging "
                    "until vocab_size - 256 merges are learned; stop early only when no pairs are "
                    "left (a single id)")
            raise CheckFailed(said)
    errors = {"ValueError": ("when a single id is left there are no pairs, and max() of an empty "
                             "dict raises: stop early when get_pair_counts(ids) is empty")}
    return Case(label=label, args=(text, vocab_size), verify=verify,
                errors=errors if "runs out" in label else {})


_TRAIN_FIRST = "'aaabdaaabac', vocab_size=259"
_TRAIN_SHORT = "a short text, vocab_size=270"


@register("train_bpe", "merge order, new ids, most frequent pairs, vocabulary size",
          helpers=("get_pair_counts", "merge"), rules={
              "pairs to new ids": [_TRAIN_FIRST, _TRAIN_SHORT, "a longer text, vocab_size=330"],
              "bytes first": ["multi-byte characters", "non-ASCII text", "emoji and accents"],
              "most frequent pair": [_TRAIN_FIRST, _TRAIN_SHORT, "non-ASCII text",
                                     "a longer text, vocab_size=330"],
              "new ids in order": [_TRAIN_FIRST, _TRAIN_SHORT, "a longer text, vocab_size=330"],
              "vocab_size - 256 merges": [_TRAIN_FIRST, "vocab_size=256 (no merges)", _TRAIN_SHORT,
                                          "a longer text, vocab_size=330"],
              "until no pairs are left": ["pairs that occur once", "a text that runs out of pairs",
                                          "a text that runs out of pairs, 3 letters"],
          })
def train_cases(rng, hidden):
    if not hidden:
        return [
            _train_case(_TRAIN_FIRST, "aaabdaaabac", 259),
            _train_case("vocab_size=256 (no merges)", "hello world", 256),
            _train_case(_TRAIN_SHORT, "hello hello hello world, hello there " * 3, 270),
            _train_case("multi-byte characters", "日本日本日本 日本", 260),
            _train_case("non-ASCII text", random_text(rng, 60), 290),
            _train_case("pairs that occur once", "hello world", 263),
            _train_case("a text that runs out of pairs", "abab", 270),
        ]
    return [
        _train_case("a longer text, vocab_size=330", random_text(rng, 250), 330),
        _train_case("emoji and accents", "😀 café 😀 naïve 😀 café " * 4, 275),
        _train_case("a text that runs out of pairs, 3 letters", "abcabc", 270),
    ]


# ---- encode --------------------------------------------------------------------------------

def _trained(rng, n_words, vocab_size):
    text = random_text(rng, n_words)
    return text, train_oracle(text, vocab_size)


def _encode_most_frequent_first(ids, merges) -> list:
    """Merges the most frequent learned pair of the ids each time (training again)."""
    while True:
        counts = {p: c for p, c in pair_counts_oracle(ids).items() if p in merges}
        if not counts:
            return ids
        ids = merge_oracle(ids, max(counts, key=counts.get), merges[max(counts, key=counts.get)])


def _encode_one_pass(ids, merges) -> list:
    """One left-to-right pass replacing any learned pair of the ids it meets."""
    out, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and (ids[i], ids[i + 1]) in merges:
            out.append(merges[ids[i], ids[i + 1]])
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def _encode_one_merge(ids, merges) -> list:
    present = [p for p in pair_counts_oracle(ids) if p in merges]
    if not present:
        return ids
    pair = min(present, key=merges.get)
    return merge_oracle(ids, pair, merges[pair])


def _encode_until_absent(ids, merges) -> list:
    """Merges in learning order, stopping at the first learned pair that does not occur."""
    for pair, new_id in _learning_order(merges):
        if pair not in pair_counts_oracle(ids):
            break
        ids = merge_oracle(ids, pair, new_id)
    return ids


def _encode_mistakes(text, merges) -> list:
    raw = list(text.encode("utf-8"))
    order = ("apply the merges in learning order (the pair learned first is merged first): "
             "a later merge may be built from an earlier one's id")
    return [
        ("returned the raw UTF-8 bytes: apply the learned merges", lambda: raw),
        ("you started from the characters' code points (ord), not the UTF-8 bytes: start from "
         "list(text.encode('utf-8'))",
         lambda: _apply_in_order([ord(c) for c in text], merges, _learning_order)),
        (f"the merges were applied latest first: {order}",
         lambda: _apply_in_order(raw, merges, lambda m: _learning_order(m)[::-1])),
        (f"the merges were applied in the order of their pairs (sorted), not of their ids: {order}",
         lambda: _apply_in_order(raw, merges, lambda m: sorted(m.items()))),
        ("you merged the most frequent learned pair of this text first: the order comes from "
         f"training, not from this text's counts; {order}",
         lambda: _encode_most_frequent_first(raw, merges)),
        ("one left-to-right pass replaced the learned pairs of bytes it met, so merged ids were "
         "never merged further: keep merging, the earliest-learned pair present first, until no "
         "learned pair is left", lambda: _encode_one_pass(raw, merges)),
        ("only one merge was applied: keep merging, the earliest-learned pair present first, "
         "until no learned pair is left", lambda: _encode_one_merge(raw, merges)),
        ("you stopped at the first learned pair that does not occur in the text: skip it and go "
         "on with the later merges (they may still apply)", lambda: _encode_until_absent(raw, merges)),
    ]


def _encode_case(label, text, merges):
    expected = encode_oracle(text, merges)

    def verify(output):
        got = _as_int_list(output, "encode's result")
        if got == expected:
            return
        named = _named(got, _encode_mistakes(text, merges))
        if named:
            raise CheckFailed(f"{named} (got {len(got)} ids, expected {len(expected)})")
        invalid = [i for i in got if not 0 <= i < 256 + len(merges)]
        if invalid:
            raise CheckFailed(f"id {invalid[0]} is neither a byte (0-255) nor a learned id "
                              f"(256-{255 + len(merges)}): start from the UTF-8 bytes, "
                              "list(text.encode('utf-8')), and apply the merges")
        if got and decode_oracle(got, merges) == text:
            raise CheckFailed(
                f"your ids decode back to the text but are not its BPE encoding (got "
                f"{len(got)} tokens, expected {len(expected)}): apply the merges in learning "
                "order, the earliest-learned pair first, until no learned pair is left")
        raise CheckFailed(f"got {_show(got, 10)}, expected {_show(expected, 10)}")
    errors = {"ValueError": ("a text of fewer than two ids has no pairs, and min() or max() of "
                             "nothing raises: stop when len(ids) < 2")}
    return Case(label=label, args=(text, merges), verify=verify, errors=errors if len(text) < 2 else {})


_ENCODE_FIRST = "merges built on earlier merges"


@register("encode", "training text, unseen text, empty and non-ASCII text", helpers=("get_pair_counts", "merge"),
          rules={
              "bytes first": ["the training text", "another text", "characters never seen in training"],
              "learning order": [_ENCODE_FIRST, "the training text",
                                 "an early merge against a more frequent later one",
                                 "a slice of the training text", "merge order decides"],
              "until no learned pair is left": [_ENCODE_FIRST, "the training text", "a word repeated",
                                                "repeated words", "a pair learned before one that is absent",
                                                "a pair learned after one that is absent"],
              "short texts": ["an empty string", "one character", "no merges at all"],
          })
def encode_cases(rng, hidden):
    text, merges = _trained(rng, 80 if not hidden else 150, 300 if not hidden else 340)
    other = random_text(rng, 20)
    if not hidden:
        return [
            _encode_case(_ENCODE_FIRST, "xyzyzyz yz xy",
                         {(120, 121): 256, (121, 122): 257, (256, 122): 258, (32, 257): 259}),
            _encode_case("the training text", text, merges),
            _encode_case("another text", other, merges),
            _encode_case("an empty string", "", merges),
            _encode_case("one character", "a", merges),
            _encode_case("characters never seen in training", "Zebras \u00bfqu\u00e9? \u2603", merges),
            _encode_case("a word repeated", "the lord, the lord, my lord ", merges),
            _encode_case("an early merge against a more frequent later one", "abcbcbc",
                         {(97, 98): 256, (98, 99): 257}),
            _encode_case("a pair learned before one that is absent", "to be",
                         {(116, 111): 256, (113, 117): 257, (98, 101): 258, (32, 258): 259}),
        ]
    return [
        _encode_case("a slice of the training text", text[17:160], merges),
        _encode_case("repeated words", "the king the king the king ", merges),
        _encode_case("another text", other, merges),
        _encode_case("no merges at all", "abc", {}),
        _encode_case("merge order decides", "abcbcbc ab",
                     {(97, 98): 256, (98, 99): 257, (256, 99): 258, (32, 256): 259}),
        _encode_case("a pair learned after one that is absent", "a cab",
                     {(99, 97): 256, (120, 121): 257, (97, 98): 258, (32, 256): 259}),
    ]


# ---- decode --------------------------------------------------------------------------------

def _decode_mistakes(ids, merges) -> list:
    vocab = vocab_oracle(merges)
    joined = b"".join(vocab[i] for i in ids)
    swapped = {i: bytes([i]) for i in range(256)}
    for (a, b), new_id in _learning_order(merges):
        swapped[new_id] = swapped[b] + swapped[a]
    replace = ("bytes that are not valid UTF-8 should each become the replacement character "
               "'\ufffd': decode with errors='replace'")
    return [
        ("a character whose bytes are split across tokens came out as '\ufffd': join the bytes "
         "of all the tokens first, then decode once",
         lambda: "".join(vocab[i].decode("utf-8", errors="replace") for i in ids)),
        ("each byte became a character of its own (Latin-1, chr(byte)): decode the joined bytes "
         "as UTF-8", lambda: joined.decode("latin-1")),
        (f"invalid bytes were dropped: {replace}", lambda: joined.decode("utf-8", errors="ignore")),
        (f"invalid bytes became escapes like '\\x80': {replace}",
         lambda: joined.decode("utf-8", errors="backslashreplace")),
        ("the two parts of a merged id were joined in the wrong order: a merged id (a, b) is the "
         "bytes of a, then those of b",
         lambda: b"".join(swapped[i] for i in ids).decode("utf-8", errors="replace")),
    ]


def _decode_case(label, ids, merges):
    expected = decode_oracle(ids, merges)

    def verify(output):
        if not isinstance(output, str):
            raise CheckFailed(f"should return a str, got {type(output).__name__}")
        if output == expected:
            return
        at = next((i for i, (a, b) in enumerate(zip(output, expected)) if a != b),
                  min(len(output), len(expected)))
        said = (f"the text differs from character {at} on: got {output[max(0, at - 10):at + 30]!r}, "
                f"expected {expected[max(0, at - 10):at + 30]!r}")
        named = _named(output, _decode_mistakes(ids, merges))
        if named:
            raise CheckFailed(f"{said}: {named}")
        if output == "":
            raise CheckFailed(f"returned '' for ids whose text is {expected[:40]!r}: decode every id, "
                              "and turn invalid UTF-8 into '\ufffd' (errors='replace') rather than "
                              "giving up")
        raise CheckFailed(said)
    errors = {"UnicodeDecodeError": "not every id sequence is valid UTF-8: decode with errors='replace'",
              "KeyError": "build the byte string of every merged id from its two parts, in learning "
                          "order (an id's parts always have smaller ids)",
              "ValueError": "bytes([i]) holds only the byte ids 0-255: a merged id's bytes are the "
                            "bytes of its two parts, which may be merged ids themselves"}
    if not ids:
        errors["IndexError"] = "an empty list of ids decodes to '': there is no ids[0]"
    return Case(label=label, args=(list(ids), merges), verify=verify, errors=errors)


@register("decode", "round trips, merged ids, invalid UTF-8", rules={
    "merged ids": ["the training text", "merges whose parts were learned later in pair order",
                   "every merged id", "nested merges"],
    "join, then decode": ["the training text", "raw bytes only", "a character split across two tokens",
                          "another text"],
    "invalid UTF-8": ["invalid UTF-8 (a lone continuation byte)", "a cut multi-byte character"],
    "empty list": ["an empty list"],
})
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
            _decode_case("a character split across two tokens", [256, 0xA5, 32, 257, 0xAC],
                         {(0xE6, 0x97): 256, (0xE6, 0x9C): 257}),
        ]
    merged = [i for i in range(256, 256 + len(merges))]
    return [
        _decode_case("every merged id", merged, merges),
        _decode_case("another text", encode_oracle(random_text(rng, 30), merges), merges),
        _decode_case("a cut multi-byte character", list("😀".encode("utf-8"))[:3] + [33], merges),
        _decode_case("nested merges", [259, 32, 258],
                     {(111, 107): 256, (256, 33): 257, (32, 257): 258, (104, 258): 259}),
    ]
