"""The demo experiments of notebook 06 (gpt2course.widgets.residual_experiments): gradient flow through a deep
stack and pre-LN vs post-LN training curves."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from gpt2course.reference import Block  # noqa: E402
from gpt2course.widgets import residual_experiments as ex  # noqa: E402

# A small, quick configuration for the training tests (a couple of seconds per run).
TINY = dict(n_layer=2, n_embd=32, n_head=4, block_size=32, batch_size=8, eval_every=10,
            eval_batches=2, progress=False)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One torch thread: the suite runs two workers on two cores (pytest -n 2), and two threads
    per worker made these tests many times slower on a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture
def global_rng_untouched():
    """Fails the test if it changed the global torch RNG state."""
    before = torch.random.get_rng_state().clone()
    yield
    assert torch.equal(torch.random.get_rng_state(), before), "global torch RNG state changed"


# ---------------------------------------------------------------------------- gradient flow

def test_stack_block_with_residual_and_layer_norm_is_gpt2_block():
    torch.manual_seed(0)
    ours = ex.StackBlock(32, 4, residual=True, layer_norm=True)
    ref = Block(32, 4)
    ref.load_state_dict(ours.state_dict())
    x = torch.randn(2, 5, 32)
    torch.testing.assert_close(ours(x), ref(x))


def test_gradient_norms_one_finite_positive_value_per_layer(global_rng_untouched):
    # 24 blocks: without residuals and layer norm the bottom norms (about 1e-30 of the top)
    # would underflow to 0 in float32; the default float64 keeps them.
    for residual in (True, False):
        for layer_norm in (True, False):
            norms = ex.gradient_norms(n_layer=24, residual=residual, layer_norm=layer_norm)
            assert len(norms) == 24
            assert all(math.isfinite(n) and n > 0 for n in norms), (residual, layer_norm, norms)


def test_gradient_norms_deterministic_for_a_seed(global_rng_untouched):
    a = ex.gradient_norms(n_layer=8, seed=3)
    b = ex.gradient_norms(n_layer=8, seed=3)
    c = ex.gradient_norms(n_layer=8, seed=4)
    assert a == b
    assert a != c


@pytest.mark.parametrize("seed", range(5))
def test_gradient_vanishes_without_residuals_not_with_them(seed):
    # Measured over seeds 0..19 at these sizes: bottom/top ratio 1.3e-14..6.6e-14 without
    # residuals (and without layer norm), 0.8..1.1 with residuals, 1.2..1.5 for GPT-2's block;
    # the margins asserted are far wider (1e-8, and a factor of 10).
    kw = dict(n_layer=12, seed=seed, layer_norm=False)
    with_res = ex.bottom_top_ratio(ex.gradient_norms(residual=True, **kw))
    without = ex.bottom_top_ratio(ex.gradient_norms(residual=False, **kw))
    assert 0.1 < with_res < 10
    assert without < with_res / 1e8
    # GPT-2's block (residual + layer norm) keeps the gradient within an order of magnitude.
    gpt2 = ex.bottom_top_ratio(ex.gradient_norms(n_layer=12, seed=seed))
    assert 0.1 < gpt2 < 10


def test_gradient_flow_demo_and_plot():
    results = ex.gradient_flow_demo(n_layer=6)
    assert list(results) == list(ex.GRADIENT_SETTINGS)
    assert all(len(v) == 6 for v in results.values())
    fig = ex.plot_gradient_norms(results)
    assert isinstance(fig, matplotlib.figure.Figure)
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    assert len(ax.get_lines()) == len(results)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == list(results)
    assert ax.get_xlabel() and ax.get_ylabel() and ax.get_title()


def test_plot_gradient_norms_survives_underflowed_zeros():
    fig = ex.plot_gradient_norms({"a": [0.0, 1e-3, 1.0], "b": [1.0, 1.0, 1.0]})
    assert len(fig.axes[0].get_lines()) == 2


# ---------------------------------------------------------------------------- pre vs post LN

def test_char_vocab_and_split():
    train, val, vocab = ex.shakespeare_chars()
    assert len(vocab) == 65 and list(vocab) == sorted(vocab)
    assert train.dtype == torch.long and int(train.max()) < 65 and int(val.max()) < 65
    assert len(train) + len(val) == 1_115_394
    assert "".join(vocab[i] for i in train[:14].tolist()) == "First Citizen:"


@pytest.mark.parametrize("style", ex.STYLES)
def test_char_lm_shapes(style):
    model = ex.make_char_lm(style, 65, 16, 32, 4, 2, seed=0)
    assert model(torch.zeros(3, 16, dtype=torch.long)).shape == (3, 16, 65)


def test_both_styles_start_from_the_same_weights(global_rng_untouched):
    pre = ex.make_char_lm("pre", 65, 16, 32, 4, 3, seed=7).state_dict()
    post = ex.make_char_lm("post", 65, 16, 32, 4, 3, seed=7).state_dict()
    assert set(pre) - set(post) == {"ln_f.weight", "ln_f.bias"}
    for name, value in post.items():
        assert torch.equal(value, pre[name]), name


def test_post_ln_block_normalises_the_residual_stream():
    block = ex.PostLNBlock(32, 4)
    out = block(torch.randn(2, 5, 32) * 10)
    torch.testing.assert_close(out.mean(-1), torch.zeros(2, 5), atol=1e-5, rtol=0)
    torch.testing.assert_close(out.std(-1, unbiased=False), torch.ones(2, 5), atol=1e-3, rtol=0)


def test_batch_stream_depends_only_on_seed(global_rng_untouched):
    data = torch.arange(1000)
    a, b = ex.batch_stream(data, 8, 4, seed=1), ex.batch_stream(data, 8, 4, seed=1)
    for _ in range(3):
        (xa, ya), (xb, yb) = next(a), next(b)
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    x2, _ = next(ex.batch_stream(data, 8, 4, seed=2))
    assert not torch.equal(x2, next(ex.batch_stream(data, 8, 4, seed=1))[0])


def test_train_curves_pre_ln_learns(global_rng_untouched):
    result = ex.train_curves("pre", steps=40, lr=3e-3, **TINY)
    losses = result["train_loss"]
    assert len(losses) == 40 and all(math.isfinite(v) for v in losses)
    uniform = math.log(result["vocab_size"])
    assert abs(losses[0] - uniform) < 0.5
    assert sum(losses[-5:]) / 5 < losses[0] - 0.5
    assert result["val_steps"] == [0, 10, 20, 30, 40]
    assert len(result["val_loss"]) == 5 and result["val_loss"][-1] < result["val_loss"][0]


def test_train_curves_deterministic_for_a_seed():
    a = ex.train_curves("post", steps=5, **TINY)
    b = ex.train_curves("post", steps=5, **TINY)
    assert a["train_loss"] == b["train_loss"] and a["val_loss"] == b["val_loss"]
    c = ex.train_curves("post", steps=5, seed=1, **TINY)
    assert c["train_loss"] != a["train_loss"]


def test_train_curves_rejects_unknown_style():
    with pytest.raises(ValueError, match="style"):
        ex.train_curves("middle", steps=1, **TINY)


def test_compare_ln_placement_fast_mode_and_plot(monkeypatch, global_rng_untouched):
    monkeypatch.setenv("GPT2COURSE_FAST", "1")
    results = ex.compare_ln_placement(progress=False)
    assert list(results) == ["pre", "post"]
    for style, result in results.items():
        assert result["style"] == style
        assert len(result["train_loss"]) == 30
        assert all(math.isfinite(v) for v in result["train_loss"])
    fig = ex.plot_training_curves(results)
    assert isinstance(fig, matplotlib.figure.Figure)
    ax = fig.axes[0]
    assert len(ax.get_lines()) == 4   # two styles, uniform guess, character frequencies
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("pre-LN" in t for t in labels) and any("post-LN" in t for t in labels)
    lines = {line.get_label().split(":")[0]: line for line in ax.get_lines()}
    assert lines["uniform guess"].get_ydata()[0] == pytest.approx(math.log(65))
    assert lines["character frequencies only"].get_ydata()[0] == pytest.approx(3.31, abs=0.01)
    assert ax.get_xlabel() and ax.get_ylabel() and "no warmup" in ax.get_title()
    plain = ex.plot_training_curves(results, show_unigram=False)
    assert len(plain.axes[0].get_lines()) == 3


def test_smooth():
    assert ex.smooth([1.0, 3.0, 5.0, 7.0], 2) == [1.0, 2.0, 4.0, 6.0]
    assert ex.smooth([2.0], 10) == [2.0]
