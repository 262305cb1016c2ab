"""Notebook 01's exercises (byte-level BPE and get_batch): learner mistakes and valid alternatives.

Each source is a complete answer cell. ``tests/checks/test_catalogue_checks.py`` runs it in a namespace
that already holds ``torch``, ``F``, ``math`` and the solution ``get_pair_counts`` and ``merge``
(as the notebook would, once the learner has solved those two), so the train_bpe, encode and
get_batch cells may call them without defining them.

Mistakes of a line or two are written as edits of the exercise's reference answer in solutions/
(``catalogue.variant``); answers built another way are written out whole.
"""

from catalogue import tidy as _tidy, variant

NOTEBOOK = "01_tokens_and_data.ipynb"

WRONG = {
    "get_pair_counts": {
        # A set-like dict: every pair present gets count 1.
        "counts_each_pair_once": variant("get_pair_counts", ("counts.get(pair, 0) + 1", "1")),
        # Jumps past both ids of a repeated pair, so (5, 5) in [5, 5, 5] is counted once.
        "skips_overlapping_pairs": """
            def get_pair_counts(ids):
                counts = {}
                i = 0
                while i < len(ids) - 1:
                    pair = (ids[i], ids[i + 1])
                    counts[pair] = counts.get(pair, 0) + 1
                    i += 2 if ids[i] == ids[i + 1] else 1
                return counts
            """,
        # Off by one: the last pair is never looked at.
        "misses_last_pair": variant("get_pair_counts", ("zip(ids, ids[1:])", "zip(ids, ids[1:-1])")),
        # Pairs the last id with the first, as if the sequence were circular.
        "wraps_around": variant("get_pair_counts", ("zip(ids, ids[1:])", "zip(ids, ids[1:] + ids[:1])")),
    },
    "merge": {
        # Forgets to step over the second id of a replaced pair: overlapping pairs are replaced
        # twice and the second id is kept.
        "overlapping_pairs_replaced_twice": variant("merge", ("i += 2", "i += 1")),
        # Off by one in the bounds test: a pair in the last two positions is never replaced.
        "misses_pair_at_end": variant("merge", ("i + 1 < len(ids)", "i < len(ids) - 2")),
        # Right result, but rewrites the caller's list in place.
        "mutates_input": """
            def merge(ids, pair, new_id):
                i = 0
                while i < len(ids) - 1:
                    if ids[i] == pair[0] and ids[i + 1] == pair[1]:
                        ids[i:i + 2] = [new_id]
                    i += 1
                return ids
            """,
        # Replaces only the first occurrence.
        "first_occurrence_only": """
            def merge(ids, pair, new_id):
                for i in range(len(ids) - 1):
                    if (ids[i], ids[i + 1]) == tuple(pair):
                        return ids[:i] + [new_id] + ids[i + 2:]
                return list(ids)
            """,
        # Scans right to left: [5, 5, 5] becomes [5, 256] instead of [256, 5].
        "right_to_left": """
            def merge(ids, pair, new_id):
                out = []
                i = len(ids) - 1
                while i >= 0:
                    if i >= 1 and ids[i - 1] == pair[0] and ids[i] == pair[1]:
                        out.append(new_id)
                        i -= 2
                    else:
                        out.append(ids[i])
                        i -= 1
                return out[::-1]
            """,
    },
    "train_bpe": {
        "ids_start_at_255": variant("train_bpe", ("range(256, vocab_size)", "range(255, vocab_size - 1)")),
        "ids_start_at_257": variant("train_bpe", ("range(256, vocab_size)", "range(257, vocab_size + 1)")),
        "one_merge_too_few": variant("train_bpe", ("range(256, vocab_size)", "range(256, vocab_size - 1)")),
        "one_merge_too_many": variant("train_bpe", ("range(256, vocab_size)", "range(256, vocab_size + 1)")),
        "least_frequent_pair": variant("train_bpe", ("max(counts", "min(counts")),
        # Counts once, then merges the initially most frequent pairs without recounting.
        "counts_once_no_recount": """
            def train_bpe(text, vocab_size):
                ids = list(text.encode("utf-8"))
                counts = get_pair_counts(ids)
                ranked = sorted(counts, key=counts.get, reverse=True)
                merges = {}
                for new_id, pair in zip(range(256, vocab_size), ranked):
                    ids = merge(ids, pair, new_id)
                    merges[pair] = new_id
                return merges
            """,
        # Works on characters (code points) instead of UTF-8 bytes.
        "characters_not_bytes": variant("train_bpe",
                                        ('list(text.encode("utf-8"))', "[ord(c) for c in text]")),
        # Calls merge but drops its result: the same pair wins every round and its entry is
        # overwritten, leaving one merge with the last id.
        "forgets_to_keep_merged_ids": variant("train_bpe", ("ids = merge(ids", "merge(ids")),
        # Stores the merges the other way round, {new_id: pair}, like a vocabulary.
        "inverted_dict": variant("train_bpe", ("merges[pair] = new_id", "merges[new_id] = pair")),
        # No stop when the text runs out of pairs: max() of an empty dict raises ValueError.
        "crashes_when_pairs_run_out": variant("train_bpe",
                                              ("        if not counts:\n            break\n", "")),
    },
    "encode": {
        # Applies the latest-learned merge first.
        "merges_in_reverse_order": """
            def encode(text, merges):
                ids = list(text.encode("utf-8"))
                for pair, new_id in reversed(list(merges.items())):
                    ids = merge(ids, pair, new_id)
                return ids
            """,
        # One left-to-right pass that replaces any learned pair it meets: merged ids are never
        # merged further, and the pass order is not the learning order.
        "single_left_to_right_pass": """
            def encode(text, merges):
                ids = list(text.encode("utf-8"))
                out = []
                i = 0
                while i < len(ids):
                    if i + 1 < len(ids) and (ids[i], ids[i + 1]) in merges:
                        out.append(merges[(ids[i], ids[i + 1])])
                        i += 2
                    else:
                        out.append(ids[i])
                        i += 1
                return out
            """,
        # Applies just one merge (the earliest-learned pair present) and stops.
        "stops_after_one_merge": """
            def encode(text, merges):
                ids = list(text.encode("utf-8"))
                counts = get_pair_counts(ids)
                learned = [p for p in counts if p in merges]
                if learned:
                    pair = min(learned, key=merges.get)
                    ids = merge(ids, pair, merges[pair])
                return ids
            """,
        "returns_raw_bytes": """
            def encode(text, merges):
                return list(text.encode("utf-8"))
            """,
        # Repeats training: merges the most frequent learned pair of *this* text first.
        "most_frequent_learned_pair_first": """
            def encode(text, merges):
                ids = list(text.encode("utf-8"))
                while True:
                    counts = get_pair_counts(ids)
                    learned = {p: c for p, c in counts.items() if p in merges}
                    if not learned:
                        return ids
                    pair = max(learned, key=learned.get)
                    ids = merge(ids, pair, merges[pair])
            """,
        # Starts from code points instead of UTF-8 bytes.
        "characters_not_bytes": variant("encode", ('list(text.encode("utf-8"))', "[ord(c) for c in text]")),
    },
    "decode": {
        # Strict UTF-8: raises UnicodeDecodeError on invalid sequences.
        "no_errors_replace": variant("decode", ('.decode("utf-8", errors="replace")', '.decode("utf-8")')),
        # Drops invalid bytes instead of replacing them with U+FFFD.
        "errors_ignore": variant("decode", ('errors="replace"', 'errors="ignore"')),
        # Decodes every token on its own: a character split across tokens becomes U+FFFD.
        "decodes_each_token_separately": variant("decode", (
            'b"".join(vocab[i] for i in ids).decode("utf-8", errors="replace")',
            '"".join(vocab[i].decode("utf-8", errors="replace") for i in ids)')),
        # Builds the vocabulary in pair order, not learning order: a merge whose part is a
        # later-sorted merged id is looked up before that id exists.
        "vocab_built_in_pair_order": variant("decode", ("sorted(merges.items(), key=lambda item: item[1])",
                                                        "sorted(merges.items())")),
        # One byte = one character (Latin-1): wrong for every non-ASCII character.
        "latin1_not_utf8": variant("decode",
            ('b"".join(vocab[i] for i in ids).decode("utf-8", errors="replace")',
             '"".join(chr(byte) for i in ids for byte in vocab[i])')),
    },
    "get_batch": {
        # One random start, then consecutive windows that wrap around the valid range: every
        # window alone is uniformly random, but the rows of a batch are not independent draws.
        "consecutive_windows_wrapping": """
            import torch

            def get_batch(data, block_size, batch_size, generator=None):
                n = len(data) - block_size
                s = torch.randint(n, (1,), generator=generator)
                starts = (s + torch.arange(batch_size)) % n
                offsets = torch.arange(block_size)
                return data[starts[:, None] + offsets], data[starts[:, None] + offsets + 1]
            """,
        # randint's upper bound is already exclusive: the last valid start is never drawn.
        "never_picks_last_start": variant("get_batch",
                                          ("len(data) - block_size,", "len(data) - block_size - 1,")),
        # One start too many: y of the last start runs past the end of data.
        "start_range_too_large": variant("get_batch",
                                         ("len(data) - block_size,", "len(data) - block_size + 1,")),
        "y_equals_x": variant("get_batch", ("offsets + 1]", "offsets]")),
        # Shifted the wrong way: y is the window one token to the left of x.
        "x_and_y_swapped": variant("get_batch", ("return x, y", "return y, x")),
        # Draws from the global RNG: the same seed does not give the same batch.
        "ignores_generator": variant("get_batch", (", generator=generator)", ")")),
        # Stacks along dim=1: (block_size, batch_size).
        "transposed": variant("get_batch",
                              ("data[starts[:, None] + offsets]", "data[starts + offsets[:, None]]"),
                              ("data[starts[:, None] + offsets + 1]", "data[starts + offsets[:, None] + 1]")),
        "float_tensors": variant("get_batch", ("return x, y", "return x.float(), y.float()")),
        # One random start, then batch_size consecutive (overlapping) windows from it.
        "consecutive_windows_from_one_start": """
            import torch

            def get_batch(data, block_size, batch_size, generator=None):
                s = int(torch.randint(len(data) - block_size - batch_size + 1, (1,), generator=generator))
                starts = s + torch.arange(batch_size)
                offsets = torch.arange(block_size)
                return data[starts[:, None] + offsets], data[starts[:, None] + offsets + 1]
            """,
        # No randomness at all: windows start at 0, 1, 2, ...
        "arange_starts_no_random": variant("get_batch", (
            "torch.randint(len(data) - block_size, (batch_size,), generator=generator)",
            "torch.arange(batch_size) % (len(data) - block_size)")),
        # One random window, repeated batch_size times.
        "one_window_repeated": variant("get_batch", ("(batch_size,), generator=generator)",
                                                     "(1,), generator=generator).repeat(batch_size)")),
    },
}

VALID = {
    "get_pair_counts": {
        "counter_of_zip": """
            from collections import Counter

            def get_pair_counts(ids):
                return Counter(zip(ids, ids[1:]))
            """,
        "defaultdict_index_loop": """
            from collections import defaultdict

            def get_pair_counts(ids):
                counts = defaultdict(int)
                for i in range(len(ids) - 1):
                    counts[ids[i], ids[i + 1]] += 1
                return dict(counts)
            """,
        "setdefault_zip": """
            def get_pair_counts(ids):
                counts = {}
                for a, b in zip(ids[:-1], ids[1:]):
                    counts.setdefault((a, b), 0)
                    counts[(a, b)] += 1
                return counts
            """,
    },
    "merge": {
        "enumerate_with_skip_flag": """
            def merge(ids, pair, new_id):
                out = []
                skip = False
                for i, token in enumerate(ids):
                    if skip:
                        skip = False
                    elif i + 1 < len(ids) and (token, ids[i + 1]) == tuple(pair):
                        out.append(new_id)
                        skip = True
                    else:
                        out.append(token)
                return out
            """,
        # Copies first, then rewrites the copy in place.
        "copy_then_slice_assign": """
            def merge(ids, pair, new_id):
                ids = list(ids)
                i = 0
                while i < len(ids) - 1:
                    if ids[i] == pair[0] and ids[i + 1] == pair[1]:
                        ids[i:i + 2] = [new_id]
                    i += 1
                return ids
            """,
        "while_loop_lookahead": """
            def merge(ids, pair, new_id):
                out, i, n = [], 0, len(ids)
                while i < n:
                    if ids[i:i + 2] == list(pair):
                        out.append(new_id)
                        i += 2
                    else:
                        out.append(ids[i])
                        i += 1
                return out
            """,
    },
    "train_bpe": {
        # Ties go to the lexicographically smallest pair (the checks accept any tie-break).
        "smallest_pair_among_most_frequent": """
            def train_bpe(text, vocab_size):
                ids = list(text.encode("utf-8"))
                merges = {}
                for new_id in range(256, vocab_size):
                    counts = get_pair_counts(ids)
                    if not counts:
                        break
                    best = max(counts.values())
                    pair = min(p for p, c in counts.items() if c == best)
                    ids = merge(ids, pair, new_id)
                    merges[pair] = new_id
                return merges
            """,
        "counter_most_common": """
            from collections import Counter

            def train_bpe(text, vocab_size):
                ids = list(text.encode("utf-8"))
                merges = {}
                while len(merges) < vocab_size - 256:
                    counts = Counter(zip(ids, ids[1:]))
                    if not counts:
                        break
                    (pair, _), = counts.most_common(1)
                    new_id = 256 + len(merges)
                    ids = merge(ids, pair, new_id)
                    merges[pair] = new_id
                return merges
            """,
        # Ties go to the largest pair; counting and merging written inline.
        "largest_pair_among_most_frequent_inline": """
            def train_bpe(text, vocab_size):
                ids = list(text.encode("utf-8"))
                merges = {}
                for new_id in range(256, vocab_size):
                    counts = {}
                    for p in zip(ids, ids[1:]):
                        counts[p] = counts.get(p, 0) + 1
                    if not counts:
                        break
                    pair = max(counts.items(), key=lambda kv: (kv[1], kv[0]))[0]
                    out, i = [], 0
                    while i < len(ids):
                        if tuple(ids[i:i + 2]) == pair:
                            out.append(new_id)
                            i += 2
                        else:
                            out.append(ids[i])
                            i += 1
                    ids = out
                    merges[pair] = new_id
                return merges
            """,
    },
    "encode": {
        # Every merge in learning order (the dict's insertion order), each over the whole list.
        "sequential_in_learning_order": """
            def encode(text, merges):
                ids = list(text.encode("utf-8"))
                for pair, new_id in merges.items():
                    ids = merge(ids, pair, new_id)
                return ids
            """,
        "sequential_sorted_by_new_id": """
            def encode(text, merges):
                ids = list(text.encode("utf-8"))
                for pair, new_id in sorted(merges.items(), key=lambda item: item[1]):
                    if len(ids) < 2:
                        break
                    ids = merge(ids, pair, new_id)
                return ids
            """,
        # The earliest-learned pair present, again and again (minbpe's loop).
        "lowest_rank_pair_loop": """
            import math

            def encode(text, merges):
                ids = list(text.encode("utf-8"))
                while len(ids) >= 2:
                    counts = get_pair_counts(ids)
                    pair = min(counts, key=lambda p: merges.get(p, math.inf))
                    if pair not in merges:
                        break
                    ids = merge(ids, pair, merges[pair])
                return ids
            """,
    },
    "decode": {
        "vocab_in_insertion_order": """
            def decode(ids, merges):
                vocab = {i: bytes([i]) for i in range(256)}
                for (a, b), new_id in merges.items():
                    vocab[new_id] = vocab[a] + vocab[b]
                return b"".join(vocab[i] for i in ids).decode("utf-8", errors="replace")
            """,
        # Expands every id recursively into its two parts.
        "recursive_expansion": """
            def decode(ids, merges):
                parts = {new_id: pair for pair, new_id in merges.items()}

                def expand(i):
                    if i < 256:
                        return bytes([i])
                    a, b = parts[i]
                    return expand(a) + expand(b)

                return b"".join(expand(i) for i in ids).decode("utf-8", errors="replace")
            """,
        "bytearray_accumulate": """
            def decode(ids, merges):
                vocab = [bytes([i]) for i in range(256)]
                for (a, b), new_id in sorted(merges.items(), key=lambda kv: kv[1]):
                    assert new_id == len(vocab)
                    vocab.append(vocab[a] + vocab[b])
                buf = bytearray()
                for i in ids:
                    buf += vocab[i]
                return buf.decode("utf-8", errors="replace")
            """,
    },
    "get_batch": {
        "stack_of_slices": """
            import torch

            def get_batch(data, block_size, batch_size, generator=None):
                starts = torch.randint(0, len(data) - block_size, (batch_size,), generator=generator)
                x = torch.stack([data[s:s + block_size] for s in starts])
                y = torch.stack([data[s + 1:s + block_size + 1] for s in starts])
                return x, y
            """,
        # One (block_size + 1)-long window per row, split into x and y.
        "fancy_index_one_window": """
            import torch

            def get_batch(data, block_size, batch_size, generator=None):
                ix = torch.randint(len(data) - block_size, (batch_size,), generator=generator)
                chunk = data[ix.unsqueeze(1) + torch.arange(block_size + 1)]
                return chunk[:, :-1], chunk[:, 1:]
            """,
        # Uniform starts drawn with multinomial (with replacement) from the same generator.
        "multinomial_starts": """
            import torch

            def get_batch(data, block_size, batch_size, generator=None):
                weights = torch.ones(len(data) - block_size)
                starts = torch.multinomial(weights, batch_size, replacement=True, generator=generator)
                idx = starts[:, None] + torch.arange(block_size)
                return data[idx], data[idx + 1]
            """,
        "unfold_windows": """
            import torch

            def get_batch(data, block_size, batch_size, generator=None):
                windows = data.unfold(0, block_size + 1, 1)  # (len(data) - block_size, block_size + 1)
                rows = windows[torch.randint(windows.shape[0], (batch_size,), generator=generator)]
                return rows[:, :-1].clone(), rows[:, 1:].clone()
            """,
    },
}

UNCAUGHT: dict = {}

VALID_FAILING: dict = {}


WRONG, VALID, UNCAUGHT, VALID_FAILING = map(_tidy, (WRONG, VALID, UNCAUGHT, VALID_FAILING))
