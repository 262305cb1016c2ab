"""The plain-data encoding between the grader and the sandbox keeps values exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gpt2course.checks import wire


@pytest.mark.parametrize("value", [
    torch.tensor(-1e4),                              # 0-d: a loss, a scalar buffer
    torch.arange(6, dtype=torch.float32).view(2, 3).t(),   # not contiguous
    torch.tensor([[1.0, float("nan")], [float("inf"), -float("inf")]]),
    torch.zeros(0, 3),
    torch.tensor([1, 2, 3], dtype=torch.long),
    torch.tensor([True, False]),
])
def test_tensors_round_trip_exactly(value):
    back = wire.decode(wire.encode(value))
    assert isinstance(back, torch.Tensor)
    assert back.shape == value.shape and back.dtype == value.dtype
    assert torch.equal(torch.nan_to_num(back), torch.nan_to_num(value))


def test_half_precision_keeps_its_dtype():
    value = torch.tensor([1.5, -2.25], dtype=torch.bfloat16)
    back = wire.decode(wire.encode(value))
    assert back.dtype == torch.bfloat16 and torch.equal(back, value)


def test_arrays_and_containers_round_trip():
    value = {"a": (1, 2.5, None, "x"), 3: [np.float64(2.0), np.array(7.0), b"\x00\xff"],
             "big": 2**60, "nan": float("nan")}
    back = wire.decode(wire.encode(value))
    assert back["a"] == (1, 2.5, None, "x") and isinstance(back["a"], tuple)
    assert back[3][0] == 2.0 and back[3][1].shape == () and back[3][2] == b"\x00\xff"
    assert back["big"] == 2**60 and np.isnan(back["nan"])


def test_seeded_generators_become_fresh_generators():
    plain = wire.to_plain([wire.Seeded(5)])
    assert wire.from_plain(plain) == [wire.Seeded(5)]
    gen = wire.from_plain(plain, True)[0]
    assert torch.equal(torch.rand(3, generator=gen), torch.rand(3, generator=torch.Generator().manual_seed(5)))


@pytest.mark.parametrize("value", [object(), np.array([object()]), lambda: 0])
def test_other_objects_are_refused(value):
    with pytest.raises(wire.WireError):
        wire.encode(value)


def test_malformed_input_is_refused():
    for text in ['{"__nope__": 1}', '{"a": 1, "b": 2}']:
        with pytest.raises(wire.WireError):
            wire.decode(text)
