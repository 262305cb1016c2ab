"""The sampling widget (notebook 09): it builds headless, a slider change redraws the next-token
distribution, the button draws fresh samples, and its filter matches the reference sampler's."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import ipywidgets as widgets  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from gpt2course.reference import GPT, GPTConfig, generate, sample_next_token  # noqa: E402
from gpt2course.widgets.sampling import SamplingWidget, filtered_probs, sampling_widget  # noqa: E402

VOCAB = "abcdefghijklmnopqrstuvwxyz .,\n"


def encode(text):
    return [VOCAB.index(c) for c in text if c in VOCAB]


def decode(ids):
    return "".join(VOCAB[i] for i in ids)


@pytest.fixture
def widget():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=len(VOCAB), block_size=16, n_layer=1, n_head=2, n_embd=16))
    with torch.no_grad():
        model.lm_head.weight.mul_(8)  # a peaked distribution, so the filters visibly cut it
    return sampling_widget(model, encode, decode, generate, prompt="the cat", max_new_tokens=12)


def test_builds_with_its_controls(widget):
    assert isinstance(widget, SamplingWidget) and isinstance(widget, widgets.VBox)
    for name in ("temperature", "top_p"):
        assert isinstance(getattr(widget, name), widgets.FloatSlider)
    assert isinstance(widget.top_k, widgets.IntSlider) and widget.top_k.max == len(VOCAB)
    assert isinstance(widget.button, widgets.Button) and isinstance(widget.plot, widgets.Output)
    assert len(widget.samples) == 2 and all(len(s) == 12 for s in widget.samples)
    assert widget.figure is not None and "cat" in widget.text.value


def test_a_slider_change_redraws_the_distribution(widget):
    before = widget.figure
    kept = int((widget.distribution()[1] > 0).sum())
    widget.top_k.value = 2
    assert widget.figure is not before
    assert int((widget.distribution()[1] > 0).sum()) == 2 < kept
    assert "2 token(s)" in widget.figure.axes[0].get_title()
    widget.top_k.value = 0
    widget.temperature.value = 0.0
    assert int((widget.distribution()[1] > 0).sum()) == 1
    assert widget.settings() == {"temperature": 0.0, "top_k": None, "top_p": None}


def test_the_button_draws_fresh_samples(widget):
    first = list(widget.samples)
    widget.button.click()
    assert widget.samples != first and widget.seed == 4
    widget.temperature.value = 0.0
    widget.button.click()
    assert widget.samples[0] == widget.samples[1], "greedy samples are all the same"


@pytest.mark.parametrize("kwargs", [dict(temperature=0.7, top_k=3), dict(temperature=1.3, top_p=0.6),
                                    dict(temperature=1.0, top_k=5, top_p=0.5)])
def test_filtered_probs_is_the_support_the_sampler_draws_from(kwargs):
    logits = torch.randn(20, generator=torch.Generator().manual_seed(3)) * 2
    probs = filtered_probs(logits, kwargs["temperature"], kwargs.get("top_k", 0), kwargs.get("top_p", 1.0))
    draws = sample_next_token(logits.expand(4000, -1), generator=torch.Generator().manual_seed(0), **kwargs)
    assert set(draws[:, 0].tolist()) == set(torch.nonzero(probs).flatten().tolist())
