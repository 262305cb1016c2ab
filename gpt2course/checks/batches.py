"""Checks for notebook 01's ``get_batch(data, block_size, batch_size, generator=None)``."""

from __future__ import annotations

import numpy as np

from .core import Call, Case, CheckFailed, register, to_numpy
from .wire import Seeded


def _window_starts(data: np.ndarray, rows: np.ndarray, block_size: int) -> list[set]:
    """For each row, every start s with data[s:s+block_size] equal to that row."""
    windows = np.lib.stride_tricks.sliding_window_view(data, block_size)
    return [set(np.flatnonzero((windows == row).all(axis=1)).tolist()) for row in rows]


def _consecutive(starts: list[int], n: int) -> bool:
    steps = {(b - a) % n for a, b in zip(starts, starts[1:])}
    return len(steps) == 1 and steps.pop() in (0, 1, n - 1)


def _require_pair(output, batch_size, block_size, data_dtype):
    import torch

    if not (isinstance(output, tuple) and len(output) == 2):
        raise CheckFailed("should return a tuple (x, y)")
    for name, t in zip("xy", output):
        if not isinstance(t, torch.Tensor):
            raise CheckFailed(f"{name} should be a torch.Tensor, got {type(t).__name__}")
        if tuple(t.shape) != (batch_size, block_size):
            raise CheckFailed(f"{name} has shape {tuple(t.shape)}, expected (batch_size, block_size) "
                              f"= {(batch_size, block_size)}")
        if t.dtype != data_dtype:
            raise CheckFailed(f"{name} has dtype {t.dtype}; keep the dtype of data ({data_dtype}), "
                              "since token ids index an embedding table")
    return to_numpy(output[0]), to_numpy(output[1])


def _windows_case(label, data_np, block_size, batch_size, seed):
    import torch

    data = torch.tensor(data_np, dtype=torch.long)

    def verify(output):
        x, y = _require_pair(output, batch_size, block_size, torch.long)
        starts_x = _window_starts(data_np, x, block_size)
        starts_y = _window_starts(data_np, y, block_size)
        for row, (sx, sy) in enumerate(zip(starts_x, starts_y)):
            if not sx:
                raise CheckFailed(f"row {row} of x is not a contiguous window of data: take "
                                  "data[s : s + block_size] for a random start s")
            if not any(s + 1 in sy for s in sx):
                if any(s in sy for s in sx):
                    raise CheckFailed("y equals x: y should be the window shifted one token to "
                                      "the right, data[s + 1 : s + 1 + block_size]")
                raise CheckFailed(f"row {row} of y is not x shifted by one token: y should be "
                                  "data[s + 1 : s + 1 + block_size] for the same start s as x")
        starts = [min(sx) for sx in starts_x]
        if batch_size >= 4 and len(data_np) > 4 * batch_size and _consecutive(starts, len(data_np)):
            raise CheckFailed(f"the windows start at consecutive positions {starts[:5]}...: draw "
                              "an independent random start for every row")
    return Case(label=label, args=(data, block_size, batch_size),
                kwargs={"generator": Seeded(seed)}, verify=verify)


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
            raise CheckFailed("generators with different seeds gave the same batch: the starts "
                              "should be random")
    calls = [Call((data, block_size, batch_size), {"generator": Seeded(s)}) for s in (seed, seed, seed + 1)]
    return Case(label=label, calls=calls, verify=verify)


def _coverage_case(label, block_size, extra, batch_size, seed):
    import torch

    n = block_size + extra  # valid starts: 0 .. extra - 1
    data = torch.arange(n, dtype=torch.long) + 1000

    def verify(output):
        x, y = _require_pair(output, batch_size, block_size, torch.long)
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
            raise CheckFailed(
                f"in {batch_size} windows from data of length {n} with block_size={block_size}, "
                f"no window started at {missing}: every start from 0 to len(data) - block_size - 1 "
                f"should be possible (torch.randint's upper bound is exclusive)")
    return Case(label=label, args=(data, block_size, batch_size),
                kwargs={"generator": Seeded(seed)}, verify=verify)


def _no_generator_case(label, n, block_size, batch_size):
    import torch

    data = torch.arange(n, dtype=torch.long)

    def verify(output):
        x, y = _require_pair(output, batch_size, block_size, torch.long)
        if not np.array_equal(y, x + 1):
            raise CheckFailed("y should be x shifted by one token")
    return Case(label=label, args=(data, block_size, batch_size), verify=verify)


@register("get_batch", "shapes, windows, targets shifted by one, seeding, every start reachable")
def batch_cases(rng, hidden):
    seed = int(rng.integers(0, 2**31))
    if not hidden:
        return [
            _windows_case("random tokens, block_size=8, batch_size=4",
                          rng.integers(0, 50257, size=300), 8, 4, seed),
        _windows_case("random tokens, block_size=3, batch_size=12",
                      rng.integers(0, 50257, size=500), 3, 12, seed + 3),
            _generator_case("the same generator seed twice", 1000, 16, 8, seed),
            _coverage_case("data only 3 tokens longer than block_size", 5, 3, 64, seed),
            _no_generator_case("no generator given", 50, 4, 2),
        ]
    return [
        _windows_case("tokens with repeats, block_size=5, batch_size=7",
                      rng.integers(0, 6, size=400), 5, 7, seed),
        _windows_case("block_size=1, batch_size=1", rng.integers(0, 50257, size=40), 1, 1, seed),
        _windows_case("distinct tokens, block_size=4, batch_size=9", rng.permutation(50257)[:600], 4, 9, seed + 5),
        _generator_case("seeded twice, larger", 5000, 32, 3, seed + 7),
        _coverage_case("data 4 tokens longer than block_size", 11, 4, 200, seed + 1),
    ]
