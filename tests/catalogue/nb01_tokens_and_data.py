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
        # Returns Counter.most_common(): a list of (pair, count), most frequent first.
        "returns_most_common_list": """
            from collections import Counter

            def get_pair_counts(ids):
                return Counter(zip(ids, ids[1:])).most_common()
            """,
        # Zips the wrong way round: the keys are (ids[i + 1], ids[i]).
        "pairs_reversed": variant("get_pair_counts", ("zip(ids, ids[1:])", "zip(ids[1:], ids)")),
        # Loops over every index, so the last id looks for a neighbour that is not there.
        "index_past_end": """
            def get_pair_counts(ids):
                counts = {}
                for i in range(len(ids)):
                    pair = (ids[i], ids[i + 1])
                    counts[pair] = counts.get(pair, 0) + 1
                return counts
            """,
        # Starts every count at 1 instead of 0.
        "counts_start_at_one": variant("get_pair_counts", ("counts.get(pair, 0) + 1", "counts.get(pair, 1) + 1")),
        # Reads ids[0] before looping: an empty list raises IndexError.
        "reads_first_id_of_empty_list": """
            def get_pair_counts(ids):
                counts = {}
                previous = ids[0]
                for token in ids[1:]:
                    pair = (previous, token)
                    counts[pair] = counts.get(pair, 0) + 1
                    previous = token
                return counts
            """,
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
        # Loops over range(len(ids) - 1): a last id that ends no replaced pair is lost.
        "drops_last_id": """
            def merge(ids, pair, new_id):
                out = []
                skip = False
                for i in range(len(ids) - 1):
                    if skip:
                        skip = False
                    elif (ids[i], ids[i + 1]) == tuple(pair):
                        out.append(new_id)
                        skip = True
                    else:
                        out.append(ids[i])
                return out
            """,
        # Replaces every position that starts the pair and drops every id that ends one:
        # [5, 5, 5] becomes [256, 256] (overlapping occurrences both replaced).
        "replaces_overlapping_occurrences": """
            def merge(ids, pair, new_id):
                out = []
                for i in range(len(ids)):
                    if i + 1 < len(ids) and (ids[i], ids[i + 1]) == tuple(pair):
                        out.append(new_id)
                    elif i > 0 and (ids[i - 1], ids[i]) == tuple(pair):
                        continue
                    else:
                        out.append(ids[i])
                return out
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
        # max over the keys: the largest pair, whatever its count.
        "largest_pair_not_most_frequent": variant("train_bpe", ("max(counts, key=counts.get)", "max(counts)")),
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
        # `return merges` indented into the loop: training stops after the first merge.
        "returns_inside_the_loop": variant("train_bpe", ("        merges[pair] = new_id\n    return merges",
                                                         "        merges[pair] = new_id\n        return merges")),
        # Keeps the learned pairs in a list, without their ids.
        "returns_list_of_pairs": """
            def train_bpe(text, vocab_size):
                ids = list(text.encode("utf-8"))
                merges = []
                for new_id in range(256, vocab_size):
                    counts = get_pair_counts(ids)
                    if not counts:
                        break
                    pair = max(counts, key=counts.get)
                    ids = merge(ids, pair, new_id)
                    merges.append(pair)
                return merges
            """,
        # Sorts the dict by pair "to tidy it": the learning order is lost.
        "sorted_by_pair": variant("train_bpe", ("    return merges", "    return dict(sorted(merges.items()))")),
        # Learns vocab_size merges instead of vocab_size - 256 (until the pairs run out).
        "vocab_size_merges": """
            def train_bpe(text, vocab_size):
                ids = list(text.encode("utf-8"))
                merges = {}
                while len(merges) < vocab_size:
                    counts = get_pair_counts(ids)
                    if not counts:
                        break
                    pair = max(counts, key=counts.get)
                    new_id = 256 + len(merges)
                    ids = merge(ids, pair, new_id)
                    merges[pair] = new_id
                return merges
            """,
        # Stops once no pair occurs twice, "since merging it would not compress anything".
        "stops_when_pairs_occur_once": variant("train_bpe", ("        if not counts:\n",
                                                             "        if not counts or max(counts.values()) < 2:\n")),
        # Counts the pairs of the text's bytes every round instead of those of the merged ids.
        "counts_raw_bytes_every_round": variant("train_bpe", ("counts = get_pair_counts(ids)",
                                                              'counts = get_pair_counts(list(text.encode("utf-8")))')),
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
        # Applies the merges sorted by pair, not by new id.
        "sorted_by_pair": """
            def encode(text, merges):
                ids = list(text.encode("utf-8"))
                for pair in sorted(merges):
                    ids = merge(ids, pair, merges[pair])
                return ids
            """,
        # Walks the merges in learning order but stops at the first one that does not occur.
        "stops_at_first_absent_merge": """
            def encode(text, merges):
                ids = list(text.encode("utf-8"))
                for pair, new_id in merges.items():
                    if pair not in get_pair_counts(ids):
                        break
                    ids = merge(ids, pair, new_id)
                return ids
            """,
        # No length test: min() of the pairs of a text shorter than two ids raises ValueError.
        "no_length_guard": variant("encode", ("while len(ids) >= 2:", "while True:")),
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
        # Makes a merged id's bytes from its two parts as if both were bytes: bytes([300, 33])
        # raises ValueError once a part is itself a merged id.
        "one_level_only": variant("decode", ("vocab[new_id] = vocab[left] + vocab[right]",
                                             "vocab[new_id] = bytes([left, right])")),
        # Joins a merged id's parts in the wrong order.
        "parts_swapped": variant("decode", ("vocab[left] + vocab[right]", "vocab[right] + vocab[left]")),
        # Starts from the first id's bytes: an empty list raises IndexError.
        "reads_first_id_of_empty_list": """
            def decode(ids, merges):
                vocab = {i: bytes([i]) for i in range(256)}
                for (left, right), new_id in sorted(merges.items(), key=lambda item: item[1]):
                    vocab[new_id] = vocab[left] + vocab[right]
                data = vocab[ids[0]]
                for i in ids[1:]:
                    data += vocab[i]
                return data.decode("utf-8", errors="replace")
            """,
        # Gives up on invalid UTF-8 and returns an empty string.
        "empty_string_on_invalid_utf8": variant("decode", (
            '    return b"".join(vocab[i] for i in ids).decode("utf-8", errors="replace")',
            '    try:\n        return b"".join(vocab[i] for i in ids).decode("utf-8")\n'
            '    except UnicodeDecodeError:\n        return ""')),
        # Escapes invalid bytes as \x80 instead of replacing them.
        "errors_backslashreplace": variant("decode", ('errors="replace"', 'errors="backslashreplace"')),
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
        # Adds 1 to the ids instead of taking the next tokens.
        "y_is_x_plus_one": variant("get_batch", ("y = data[starts[:, None] + offsets + 1]", "y = x + 1")),
        # Slices with one start too many: the last window comes out short and torch.stack fails.
        "stacked_slices_start_range_too_large": """
            import torch

            def get_batch(data, block_size, batch_size, generator=None):
                starts = torch.randint(len(data) - block_size + 1, (batch_size,), generator=generator)
                x = torch.stack([data[s:s + block_size] for s in starts])
                y = torch.stack([data[s + 1:s + 1 + block_size] for s in starts])
                return x, y
            """,
        # Converts to int64 "because embeddings want long": data of another dtype changes dtype.
        "casts_to_long": variant("get_batch", ("return x, y", "return x.long(), y.long()")),
        # Draws separate starts for y: y is a window of its own, not x shifted.
        "separate_starts_for_y": variant("get_batch", (
            "y = data[starts[:, None] + offsets + 1]",
            "y_starts = torch.randint(len(data) - block_size, (batch_size,), generator=generator)\n"
            "    y = data[y_starts[:, None] + offsets + 1]")),
        # randint(1, high): the first start, 0, is never drawn.
        "never_picks_first_start": variant("get_batch", ("torch.randint(len(data) - block_size,",
                                                         "torch.randint(1, len(data) - block_size,")),
        # Distinct starts from a permutation: fewer rows than batch_size when data is short.
        "distinct_starts_randperm": variant("get_batch", (
            "torch.randint(len(data) - block_size, (batch_size,), generator=generator)",
            "torch.randperm(len(data) - block_size, generator=generator)[:batch_size]")),
        # Makes its own seeded generator: every call gives the same batch, whatever the caller's.
        "seeds_its_own_generator": variant("get_batch", (
            "    starts = torch.randint(",
            "    generator = torch.Generator().manual_seed(1337)\n    starts = torch.randint(")),
    },
}

# For each wrong answer: the rule of the exercise's text it breaks, and a fragment the failure
# message must hold (the mistake named in the learner's terms; None: a general message will do).
EXPECT = {
    "get_pair_counts": {
        "counts_each_pair_once": ("counts", "every pair got the count 1"),
        "skips_overlapping_pairs": ("overlapping pairs", "overlapping pairs were counted once"),
        "misses_last_pair": ("every adjacent pair", "the last pair, (ids[-2], ids[-1]), was not counted"),
        "wraps_around": ("every adjacent pair", "as if the list wrapped around"),
        "returns_most_common_list": ("a dict of pairs", "should return a dict {(a, b): count}, got list"),
        "pairs_reversed": ("every adjacent pair", "the pairs are the wrong way round"),
        "index_past_end": ("every adjacent pair", "an index ran past the end of ids"),
        "counts_start_at_one": ("counts", "every count is one too high"),
        "reads_first_id_of_empty_list": ("short lists", "a list of fewer than two ids has no pairs"),
    },
    "merge": {
        "overlapping_pairs_replaced_twice": ("left to right, no overlaps", "the second id of a replaced pair was kept"),
        "misses_pair_at_end": ("every occurrence", "the pair in the last two positions was not replaced"),
        "mutates_input": ("a new list", "changed its input (argument 1) in place"),
        "first_occurrence_only": ("every occurrence", "only the first occurrence was replaced"),
        "drops_last_id": ("other ids kept", "the last id was dropped"),
        "replaces_overlapping_occurrences": ("left to right, no overlaps", "overlapping occurrences were all replaced"),
        "right_to_left": ("left to right, no overlaps", "taken right to left"),
    },
    "train_bpe": {
        "ids_start_at_255": ("new ids in order", "the first merge got id 255: new ids start at 256"),
        "ids_start_at_257": ("new ids in order", "the first merge got id 257: new ids start at 256"),
        "one_merge_too_few": ("vocab_size - 256 merges", "1 too few"),
        "one_merge_too_many": ("vocab_size - 256 merges", "1 too many"),
        "least_frequent_pair": ("most frequent pair", "a least frequent pair"),
        "largest_pair_not_most_frequent": ("most frequent pair", "max(counts) gives without key=counts.get"),
        "counts_once_no_recount": ("most frequent pair", "count the pairs again each round"),
        "characters_not_bytes": ("bytes first", "learned from characters (code points, ord), not bytes"),
        "forgets_to_keep_merged_ids": ("most frequent pair", "the same pair won every round"),
        "inverted_dict": ("pairs to new ids", "the dict is the wrong way round"),
        "crashes_when_pairs_run_out": ("until no pairs are left", "stop early when get_pair_counts(ids) is empty"),
        "returns_inside_the_loop": ("vocab_size - 256 merges", "learned 1 merge, 2 too few"),
        "returns_list_of_pairs": ("pairs to new ids", "should return a dict {(id1, id2): new_id}, got list"),
        "sorted_by_pair": ("new ids in order", "not in learning order"),
        "vocab_size_merges": ("vocab_size - 256 merges", "too many: vocab_size="),
        "stops_when_pairs_occur_once": ("until no pairs are left", "while pairs were left (each occurring once)"),
        "counts_raw_bytes_every_round": ("most frequent pair", "count the pairs of the merged ids each round"),
    },
    "encode": {
        "merges_in_reverse_order": ("learning order", "the merges were applied latest first"),
        "single_left_to_right_pass": ("until no learned pair is left", "merged ids were never merged further"),
        "stops_after_one_merge": ("until no learned pair is left", "only one merge was applied"),
        "returns_raw_bytes": ("until no learned pair is left", "returned the raw UTF-8 bytes"),
        "most_frequent_learned_pair_first": ("learning order", "you merged the most frequent learned pair"),
        "characters_not_bytes": ("bytes first", "code points (ord), not the UTF-8 bytes"),
        "sorted_by_pair": ("learning order", "in the order of their pairs (sorted), not of their ids"),
        "stops_at_first_absent_merge": ("until no learned pair is left",
                                        "stopped at the first learned pair that does not occur"),
        "no_length_guard": ("short texts", "a text of fewer than two ids has no pairs"),
    },
    "decode": {
        "no_errors_replace": ("invalid UTF-8", "not every id sequence is valid UTF-8"),
        "errors_ignore": ("invalid UTF-8", "invalid bytes were dropped"),
        "decodes_each_token_separately": ("join, then decode", "split across tokens came out as"),
        "vocab_built_in_pair_order": ("merged ids", "raised KeyError"),
        "latin1_not_utf8": ("join, then decode", "Latin-1"),
        "one_level_only": ("merged ids", "bytes([i]) holds only the byte ids 0-255"),
        "parts_swapped": ("merged ids", "the two parts of a merged id were joined in the wrong order"),
        "reads_first_id_of_empty_list": ("empty list", "an empty list of ids decodes to ''"),
        "empty_string_on_invalid_utf8": ("invalid UTF-8", "returned '' for ids"),
        "errors_backslashreplace": ("invalid UTF-8", "invalid bytes became escapes"),
    },
    "get_batch": {
        "consecutive_windows_wrapping": ("independent random starts", "the windows start at consecutive positions"),
        "never_picks_last_start": ("every start possible", "(the last start, len(data) - block_size - 1)"),
        "start_range_too_large": ("every start possible", "an index ran past the end of data"),
        "y_equals_x": ("y is x shifted by one", "y equals x"),
        "x_and_y_swapped": ("y is x shifted by one", "did you swap x and y?"),
        "ignores_generator": ("uses the generator", "seeded the same gave different batches"),
        "transposed": ("shapes and dtype", "the windows should be the rows"),
        "float_tensors": ("shapes and dtype", "x has dtype torch.float32; keep the dtype of data"),
        "consecutive_windows_from_one_start": ("independent random starts",
                                               "the windows start at consecutive positions"),
        "arange_starts_no_random": ("independent random starts", "the windows start at consecutive positions"),
        "one_window_repeated": ("independent random starts", "rows are the same window"),
        "y_is_x_plus_one": ("y is x shifted by one", "y is x + 1, each id plus one"),
        "stacked_slices_start_range_too_large": ("every start possible",
                                                 "a window ran past the end of data and came out short"),
        "casts_to_long": ("shapes and dtype", "x has dtype torch.int64; keep the dtype of data (torch.int32)"),
        "separate_starts_for_y": ("y is x shifted by one", "for the same start s as x"),
        "never_picks_first_start": ("every start possible", "(the first start, 0)"),
        "distinct_starts_randperm": ("independent random starts", "one per possible start"),
        "seeds_its_own_generator": ("uses the generator", "not with a generator of your own or a fixed seed"),
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
        "pairwise_counter": """
            from collections import Counter
            from itertools import pairwise

            def get_pair_counts(ids):
                return dict(Counter(pairwise(ids)))
            """,
        # Counts each distinct pair with list.count.
        "list_count_per_pair": """
            def get_pair_counts(ids):
                pairs = list(zip(ids, ids[1:]))
                return {pair: pairs.count(pair) for pair in set(pairs)}
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
        # Looks back at the output: a pair's second id turns the last output id into new_id.
        "look_back_on_output": """
            def merge(ids, pair, new_id):
                out = []
                for token in ids:
                    if out and out[-1] == pair[0] and token == pair[1] and out[-1] != new_id:
                        out[-1] = new_id
                    else:
                        out.append(token)
                return out
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
        # Sorts the counts, most frequent first, and takes the first.
        "sorted_counts_first": """
            def train_bpe(text, vocab_size):
                ids = list(text.encode("utf-8"))
                merges = {}
                while len(merges) < vocab_size - 256 and len(ids) > 1:
                    ranked = sorted(get_pair_counts(ids).items(), key=lambda kv: -kv[1])
                    pair = ranked[0][0]
                    merges[pair] = 256 + len(merges)
                    ids = merge(ids, pair, merges[pair])
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
        # Among the pairs present, the one with the smallest new id, found from the positions.
        "smallest_rank_from_positions": """
            def encode(text, merges):
                ids = list(text.encode("utf-8"))
                while True:
                    ranked = [merges[p] for p in zip(ids, ids[1:]) if p in merges]
                    if not ranked:
                        return ids
                    new_id = min(ranked)
                    pair = next(p for p, v in merges.items() if v == new_id)
                    ids = merge(ids, pair, new_id)
            """,
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
        # bytes.decode's encoding defaults to UTF-8.
        "default_encoding_bytearray": """
            def decode(ids, merges):
                vocab = {i: bytes([i]) for i in range(256)}
                for pair, new_id in merges.items():
                    vocab[new_id] = vocab[pair[0]] + vocab[pair[1]]
                out = bytearray()
                for i in ids:
                    out.extend(vocab[i])
                return out.decode(errors="replace")
            """,
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
        # index_select on the flattened window indices.
        "index_select_view": """
            import torch

            def get_batch(data, block_size, batch_size, generator=None):
                starts = torch.randint(high=len(data) - block_size, size=(batch_size,), generator=generator)
                idx = starts.unsqueeze(1) + torch.arange(block_size).unsqueeze(0)
                x = data.index_select(0, idx.flatten()).view(batch_size, block_size)
                y = data.index_select(0, (idx + 1).flatten()).view(batch_size, block_size)
                return x, y
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
