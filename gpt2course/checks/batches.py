"""Checks for notebook 01's ``get_batch(data, block_size, batch_size, generator=None)``."""

from __future__ import annotations

import numpy as np

from .core import Call, Case, CheckFailed, register, to_numpy
from .wire import Seeded

# An index past the end of data, or slices of different lengths: a start beyond the last valid
# one (the likely cause of both).
_LAST_START = ("the last valid start is len(data) - block_size - 1, whose y, "
               "data[s + 1 : s + 1 + block_size], ends at the last token (torch.randint(high, ...) "
               "never returns high)")
_ERRORS = {"IndexError": f"an index ran past the end of data: {_LAST_START}",
           "RuntimeError": ("if torch.stack says the tensors differ in size, a window ran past the "
                            f"end of data and came out short: {_LAST_START}")}


def _window_starts(data: np.ndarray, rows: np.ndarray, block_size: int) -> list[set]:
    """For each row, every start s with data[s:s+block_size] equal to that row."""
    windows = np.lib.stride_tricks.sliding_window_view(data, block_size)
    return [set(np.flatnonzero((windows == row).all(axis=1)).tolist()) for row in rows]


def _consecutive(starts: list[int], n: int) -> bool:
    steps = {(b - a) % n for a, b in zip(starts, starts[1:])}
    return len(steps) == 1 and steps.pop() in (1, n - 1)


def _require_pair(output, batch_size, block_size, data_dtype, n_starts=None):
    import torch

    if not (isinstance(output, tuple) and len(output) == 2):
        raise CheckFailed("should return a tuple (x, y)")
    for name, t in zip("xy", output):
        if not isinstance(t, torch.Tensor):
            raise CheckFailed(f"{name} should be a torch.Tensor, got {type(t).__name__}")
        shape = tuple(t.shape)
        if shape != (batch_size, block_size):
            said = (f"{name} has shape {shape}, expected (batch_size, block_size) = "
                    f"{(batch_size, block_size)}")
            if shape == (block_size, batch_size):
                raise CheckFailed(f"{said}: the windows should be the rows (stack them along dim=0)")
            if n_starts is not None and shape == (n_starts, block_size) and n_starts < batch_size:
                raise CheckFailed(
                    f"{said}: only {n_starts} rows, one per possible start. Every row draws its own "
                    "random start, so starts may repeat (torch.randint, not torch.randperm, which "
                    "gives each start once)")
            raise CheckFailed(said)
        if t.dtype != data_dtype:
            raise CheckFailed(f"{name} has dtype {t.dtype}; keep the dtype of data ({data_dtype}): "
                              "index data, without converting")
    return to_numpy(output[0]), to_numpy(output[1])


def _windows_case(label, data_np, block_size, batch_size, seed, dtype="long"):
    import torch

    data = torch.tensor(data_np, dtype=getattr(torch, dtype))

    def verify(output):
        x, y = _require_pair(output, batch_size, block_size, data.dtype)
        starts_x = _window_starts(data_np, x, block_size)
        starts_y = _window_starts(data_np, y, block_size)
        for row, sx in enumerate(starts_x):
            if not sx:
                if batch_size == block_size and all(_window_starts(data_np, x.T, block_size)):
                    raise CheckFailed("the windows are the columns of x: stack them as rows (dim=0), "
                                      "so x[i] is data[s : s + block_size]")
                raise CheckFailed(f"row {row} of x is not a contiguous window of data: take "
                                  "data[s : s + block_size] for a random start s")
        shifted = [any(s + 1 in sy for s in sx) for sx, sy in zip(starts_x, starts_y)]
        if not all(shifted) and np.array_equal(y, x + 1):
            raise CheckFailed("y is x + 1, each id plus one: y should hold the next tokens, the "
                              "window shifted one position, data[s + 1 : s + 1 + block_size]")
        if not all(shifted):
            row = shifted.index(False)
            if all(sx & sy for sx, sy in zip(starts_x, starts_y)):
                raise CheckFailed("y equals x: y should be the window shifted one token to "
                                  "the right, data[s + 1 : s + 1 + block_size]")
            if all(any(s - 1 in sy for s in sx) for sx, sy in zip(starts_x, starts_y)):
                raise CheckFailed("y is x shifted one token to the left: did you swap x and y? "
                                  "x = data[s : s + block_size], y = data[s + 1 : s + 1 + block_size]")
            if all(any(s + block_size in sy for s in sx) for sx, sy in zip(starts_x, starts_y)):
                raise CheckFailed("y is the window right after x (shifted by block_size): shift by one "
                                  "token, y = data[s + 1 : s + 1 + block_size]")
            if not starts_y[row]:
                raise CheckFailed(f"row {row} of y is not a contiguous window of data: y should be "
                                  "data[s + 1 : s + 1 + block_size]")
            raise CheckFailed(f"row {row} of y is not x shifted by one token: y should be "
                              "data[s + 1 : s + 1 + block_size] for the same start s as x")
        starts = [min(sx) for sx in starts_x]
        if batch_size >= 4 and len(data_np) > 4 * batch_size:
            if len(set(starts)) == 1:
                raise CheckFailed(f"all {batch_size} rows are the same window (start {starts[0]}): "
                                  "draw batch_size starts, one per row")
            if _consecutive(starts, len(data_np) - block_size) or _consecutive(starts, len(data_np)):
                raise CheckFailed(f"the windows start at consecutive positions {starts[:5]}...: draw "
                                  "an independent random start for every row")
    return Case(label=label, args=(data, block_size, batch_size),
                kwargs={"generator": Seeded(seed)}, verify=verify, errors=_ERRORS)


def _generator_case(label, n, block_size, batch_size, seed):
    import torch

    data = torch.arange(n, dtype=torch.long) * 3 + 11

    def verify(output):
        first, again, other = (_require_pair(o, batch_size, block_size, torch.long) for o in output)
        if not (np.array_equal(first[0], again[0]) and np.array_equal(first[1], again[1])):
            raise CheckFailed("two calls with generators seeded the same gave different batches: "
                              "draw the random starts with the `generator` you were given "
                              "(torch.randint(..., generator=generator))")
        if np.array_equal(first[0], other[0]):
            raise CheckFailed("generators with different seeds gave the same batch: draw the starts "
                              "with the `generator` you were given (generator=generator), not with "
                              "a generator of your own or a fixed seed")
    calls = [Call((data, block_size, batch_size), {"generator": Seeded(s)}) for s in (seed, seed, seed + 1)]
    return Case(label=label, calls=calls, verify=verify, errors=_ERRORS)


def _coverage_case(label, block_size, extra, batch_size, seed):
    import torch

    n = block_size + extra  # valid starts: 0 .. extra - 1
    data = torch.arange(n, dtype=torch.long) + 1000

    def verify(output):
        x, y = _require_pair(output, batch_size, block_size, torch.long, n_starts=extra)
        if (y > 1000 + n - 1).any() or (x < 1000).any():
            raise CheckFailed("a window runs past the end of data")
        starts = set((x[:, 0] - 1000).tolist())
        if not np.array_equal(y, x + 1):
            raise CheckFailed("y should be x shifted by one token (data[s + 1 : s + 1 + block_size])")
        if max(starts) > extra - 1:
            raise CheckFailed(f"a window starts at {max(starts)}, so y runs past the end of data; "
                              f"the last valid start is len(data) - block_size - 1 = {extra - 1}")
        if starts != set(range(extra)):
            missing = sorted(set(range(extra)) - starts)
            which = {0: "the first start, 0", extra - 1: "the last start, len(data) - block_size - 1"}
            named = " and ".join(which.get(s, str(s)) for s in missing)
            raise CheckFailed(
                f"in {batch_size} windows from data of length {n} with block_size={block_size}, "
                f"no window started at {missing} ({named}): every start from 0 to "
                f"len(data) - block_size - 1 = {extra - 1} should be possible (torch.randint's "
                "upper bound is exclusive, its lower bound 0 is included)")
    return Case(label=label, args=(data, block_size, batch_size),
                kwargs={"generator": Seeded(seed)}, verify=verify, errors=_ERRORS)


def _no_generator_case(label, n, block_size, batch_size):
    import torch

    data = torch.arange(n, dtype=torch.long)

    def verify(output):
        x, y = _require_pair(output, batch_size, block_size, torch.long)
        if not np.array_equal(y, x + 1):
            raise CheckFailed("y should be x shifted by one token")
    return Case(label=label, args=(data, block_size, batch_size), verify=verify, errors=_ERRORS)


_FIRST = "random tokens, block_size=8, batch_size=4"
_INT32 = "int32 tokens, block_size=6, batch_size=5"


@register("get_batch", "shapes, windows, targets shifted by one, seeding, every start reachable", rules={
    "shapes and dtype": [_FIRST, "random tokens, block_size=3, batch_size=12", _INT32,
                         "block_size=1, batch_size=1", "distinct tokens, block_size=4, batch_size=4"],
    "y is x shifted by one": [_FIRST, "random tokens, block_size=3, batch_size=12",
                              "tokens with repeats, block_size=5, batch_size=7",
                              "distinct tokens, block_size=4, batch_size=4"],
    "every start possible": ["data only 3 tokens longer than block_size",
                             "data 4 tokens longer than block_size"],
    "independent random starts": [_FIRST, "random tokens, block_size=3, batch_size=12",
                                  "data only 3 tokens longer than block_size",
                                  "data 4 tokens longer than block_size"],
    "uses the generator": ["the same generator seed twice", "seeded twice, larger", "no generator given"],
})
def batch_cases(rng, hidden):
    seed = int(rng.integers(0, 2**31))
    if not hidden:
        return [
            _windows_case(_FIRST, rng.integers(0, 50257, size=300), 8, 4, seed),
            _windows_case("random tokens, block_size=3, batch_size=12",
                          rng.integers(0, 50257, size=500), 3, 12, seed + 3),
            _windows_case(_INT32, rng.integers(0, 50257, size=200), 6, 5, seed + 4, dtype="int32"),
            _generator_case("the same generator seed twice", 1000, 16, 8, seed),
            _coverage_case("data only 3 tokens longer than block_size", 5, 3, 64, seed),
            _no_generator_case("no generator given", 50, 4, 2),
        ]
    return [
        _windows_case("tokens with repeats, block_size=5, batch_size=7",
                      rng.integers(0, 6, size=400), 5, 7, seed),
        _windows_case("block_size=1, batch_size=1", rng.integers(0, 50257, size=40), 1, 1, seed),
        _windows_case("distinct tokens, block_size=4, batch_size=4", rng.permutation(50257)[:600], 4, 4, seed + 5),
        _generator_case("seeded twice, larger", 5000, 32, 3, seed + 7),
        _coverage_case("data 4 tokens longer than block_size", 11, 4, 200, seed + 1),
    ]
