"""Properties of the check machinery itself."""

from __future__ import annotations

import torch
import pytest

from gpt2course import reference
from gpt2course.checks import REGISTRY, CheckFailed, build_cases, check


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_cases_do_not_touch_global_rng(name):
    torch.manual_seed(123)
    before = torch.get_rng_state()
    build_cases(name, seed=5, hidden=False)
    build_cases(name, seed=5, hidden=True)
    assert torch.equal(before, torch.get_rng_state())


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_hidden_cases_differ_from_visible(name):
    visible = [c.label for c in build_cases(name)]
    hidden = [c.label for c in build_cases(name, hidden=True)]
    assert visible and hidden and visible != hidden


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_reference_passes_for_several_seeds(name):
    for seed in range(3):
        check(name, getattr(reference, name), seed=seed, quiet=True)
        check(name, getattr(reference, name), seed=seed, hidden=True, quiet=True)


def test_input_mutation_is_caught():
    def softmax(x, dim=-1):
        x -= x.amax(dim=dim, keepdim=True)
        return x.exp() / x.exp().sum(dim=dim, keepdim=True)

    with pytest.raises(CheckFailed, match="in place"):
        check("softmax", softmax, quiet=True)


def test_stub_message_and_not_callable():
    def softmax(x, dim=-1):
        raise NotImplementedError()

    with pytest.raises(CheckFailed, match="not implemented yet"):
        check("softmax", softmax, quiet=True)
    with pytest.raises(CheckFailed, match="should be a function"):
        check("softmax", 3, quiet=True)


def test_messages_say_what_is_probably_wrong():
    def softmax(x, dim=-1):
        e = torch.exp(x)
        return e / e.sum(dim=dim, keepdim=True)

    with pytest.raises(CheckFailed, match="Subtract the maximum"):
        check("softmax", softmax, quiet=True)
