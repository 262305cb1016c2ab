"""Notebook 01: byte-level BPE from scratch (no pre-tokenisation: the whole text's UTF-8 bytes)."""


# ---- generated from solutions/01_tokens_and_data.ipynb by `python -m grader build` ----
# cells: get_pair_counts, merge, train_bpe, encode, decode
# Edit those answer cells in the notebook, not the code below.


def get_pair_counts(ids: list[int]) -> dict[tuple[int, int], int]:
    """How often each adjacent pair occurs in ``ids``: {(a, b): count}."""
    ### BEGIN SOLUTION
    counts = {}
    for pair in zip(ids, ids[1:]):
        counts[pair] = counts.get(pair, 0) + 1
    return counts
    ### END SOLUTION


def merge(ids: list[int], pair: tuple[int, int], new_id: int) -> list[int]:
    """A new list where every occurrence of ``pair`` (left to right) is replaced by ``new_id``."""
    ### BEGIN SOLUTION
    out = []
    i = 0
    while i < len(ids):
        if i + 1 < len(ids) and ids[i] == pair[0] and ids[i + 1] == pair[1]:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out
    ### END SOLUTION


def train_bpe(text: str, vocab_size: int) -> dict[tuple[int, int], int]:
    """Learn ``vocab_size - 256`` merges from ``text``: {(id1, id2): new_id} in learning order.

    Start from the UTF-8 bytes of ``text`` (ids 0-255); repeatedly merge the most frequent
    adjacent pair into the next new id (256, 257, ...). Stop early only if no pairs are left.
    """
    ### BEGIN SOLUTION
    if vocab_size < 256:
        raise ValueError(f"vocab_size must be at least 256 (one id per byte), got {vocab_size}")
    ids = list(text.encode("utf-8"))
    merges = {}
    for new_id in range(256, vocab_size):
        counts = get_pair_counts(ids)
        if not counts:
            break
        pair = max(counts, key=counts.get)
        ids = merge(ids, pair, new_id)
        merges[pair] = new_id
    return merges
    ### END SOLUTION


def encode(text: str, merges: dict[tuple[int, int], int]) -> list[int]:
    """Token ids of ``text``: its UTF-8 bytes with the learned merges applied in learning order."""
    ### BEGIN SOLUTION
    ids = list(text.encode("utf-8"))
    while len(ids) >= 2:
        counts = get_pair_counts(ids)
        # The pair learned earliest goes first; pairs never learned rank last.
        pair = min(counts, key=lambda p: merges.get(p, float("inf")))
        if pair not in merges:
            break
        ids = merge(ids, pair, merges[pair])
    return ids
    ### END SOLUTION


def decode(ids: list[int], merges: dict[tuple[int, int], int]) -> str:
    """The text of token ids ``ids``; invalid UTF-8 becomes the replacement character."""
    ### BEGIN SOLUTION
    vocab = {i: bytes([i]) for i in range(256)}
    for (left, right), new_id in sorted(merges.items(), key=lambda item: item[1]):
        vocab[new_id] = vocab[left] + vocab[right]
    return b"".join(vocab[i] for i in ids).decode("utf-8", errors="replace")
    ### END SOLUTION
