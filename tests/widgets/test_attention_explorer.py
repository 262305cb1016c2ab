"""The attention explorer widget: controls drive the matrix, the strip and the heatmap; bad input
is refused clearly; it runs in a real kernel without errors or a stray figure below the cell."""

from __future__ import annotations

import re
import textwrap

import matplotlib

matplotlib.use("Agg")

import nbformat  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from nbclient import NotebookClient  # noqa: E402

from conftest import REPO, Client  # noqa: E402
from gpt2course.widgets.attention_explorer import AttentionExplorer, attention_explorer  # noqa: E402

TOKENS = ["The", " cat", " sat", " on", " the", " mat"]


def causal_weights(shape=(2, 3, 6, 6), seed=0) -> np.ndarray:
    """Softmax of random logits under a causal mask: rows are queries and sum to 1."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=2.0, size=shape)
    t = shape[-1]
    logits[..., np.triu(np.ones((t, t), dtype=bool), k=1)] = -np.inf
    w = np.exp(logits - logits.max(-1, keepdims=True))
    return w / w.sum(-1, keepdims=True)


def rendered(fig) -> np.ndarray:
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba()).copy()


def titles(strip_html: str) -> list[str]:
    return re.findall(r'title="([^"]*)"', strip_html)


@pytest.fixture
def weights():
    return causal_weights()


@pytest.fixture
def explorer(weights):
    return attention_explorer(TOKENS, weights, title="random heads")


def test_builds_a_vbox_with_the_controls(explorer, weights):
    import ipywidgets as widgets

    assert isinstance(explorer, AttentionExplorer) and isinstance(explorer, widgets.VBox)
    assert isinstance(explorer.layer, widgets.IntSlider) and explorer.layer.max == 1
    assert isinstance(explorer.head, widgets.IntSlider) and explorer.head.max == 2
    assert not explorer.layer.disabled and not explorer.head.disabled
    assert isinstance(explorer.query, widgets.Dropdown)
    assert explorer.query.options[1] == ("1: ' cat'", 1)
    assert isinstance(explorer.strip, widgets.HTML) and isinstance(explorer.plot, widgets.Output)
    np.testing.assert_allclose(explorer.matrix(), weights[0, 0])
    image = explorer.figure.axes[0].images[0].get_array()
    np.testing.assert_allclose(np.ma.getdata(image), weights[0, 0])
    assert explorer.figure.axes[0].get_title() == "layer 0 \u00b7 head 0"
    assert len(explorer.figure.axes) == 2, "heatmap and colorbar"
    labels = [t.get_text() for t in explorer.figure.axes[0].get_xticklabels()]
    assert labels == ["The", "\u00b7cat", "\u00b7sat", "\u00b7on", "\u00b7the", "\u00b7mat"]


def test_head_slider_changes_matrix_and_figure(explorer, weights):
    before_fig = explorer.figure
    before = rendered(before_fig)
    explorer.head.value = 2
    np.testing.assert_allclose(explorer.matrix(), weights[0, 2])
    assert explorer.figure is not before_fig
    np.testing.assert_allclose(np.ma.getdata(explorer.figure.axes[0].images[0].get_array()),
                               weights[0, 2])
    after = rendered(explorer.figure)
    assert before.shape == after.shape and not np.array_equal(before, after)
    assert explorer.figure.axes[0].get_title() == "layer 0 \u00b7 head 2"


def test_layer_slider_changes_matrix_and_figure(explorer, weights):
    explorer.head.value = 1
    before = rendered(explorer.figure)
    strip_before = explorer.strip.value
    explorer.layer.value = 1
    np.testing.assert_allclose(explorer.matrix(), weights[1, 1])
    after = rendered(explorer.figure)
    assert not np.array_equal(before, after)
    assert explorer.strip.value != strip_before
    assert explorer.figure.axes[0].get_title() == "layer 1 \u00b7 head 1"


def test_starts_at_the_layer_and_head_asked_for(weights):
    ex = attention_explorer(TOKENS, weights, layer=1, head=2)
    assert (ex.layer.value, ex.head.value) == (1, 2)
    np.testing.assert_allclose(ex.matrix(), weights[1, 2])
    assert ex.figure.axes[0].get_title() == "layer 1 \u00b7 head 2"
    with pytest.raises(ValueError, match="head 3 does not exist"):
        attention_explorer(TOKENS, weights, head=3)
    with pytest.raises(ValueError, match="layer 2 does not exist"):
        attention_explorer(TOKENS, weights, layer=2)


def test_query_dropdown_changes_strip_outline_and_tooltips(explorer, weights):
    assert explorer.query.value == 5, "starts at the last token, which sees the whole sequence"
    row5 = titles(explorer.strip.value)
    before = rendered(explorer.figure)
    explorer.query.value = 2
    np.testing.assert_allclose(explorer.matrix(), weights[0, 0], err_msg="query keeps the matrix")
    row2 = titles(explorer.strip.value)
    assert row2 != row5 and len(row2) == len(TOKENS)
    for j, tip in enumerate(row2):
        assert f"{weights[0, 0, 2, j]:.3f}" in tip, (j, tip)
    assert "0.000" in row2[5], "a causal mask: query 2 cannot see key 5"
    assert "query <b>2</b>" in explorer.strip.value
    outline = [p for p in explorer.figure.axes[0].patches if p.get_width() == len(TOKENS)]
    assert outline and outline[0].get_y() == pytest.approx(1.5), "row 2 outlined"
    assert not np.array_equal(before, rendered(explorer.figure))


def test_strip_shades_by_weight(weights):
    w = np.zeros((3, 3))
    w[2] = [0.1, 0.0, 0.9]
    w[0, 0] = w[1, 1] = 1.0
    ex = attention_explorer(["a", "b", "c"], w)
    backgrounds = re.findall(r"background:(#[0-9a-f]{6})", ex.strip.value)
    assert len(backgrounds) == 3
    assert backgrounds[1] != backgrounds[2] and backgrounds[0] != backgrounds[2]
    darkness = [sum(int(b[i:i + 2], 16) for i in (1, 3, 5)) for b in backgrounds]
    assert darkness[2] < darkness[0] < darkness[1], "darker = more attention"


def test_single_matrix_hides_and_disables_sliders(weights):
    ex = attention_explorer(TOKENS, weights[0, 0])
    for slider in (ex.layer, ex.head):
        assert slider.disabled and slider.layout.display == "none"
    np.testing.assert_allclose(ex.matrix(), weights[0, 0])
    ex.query.value = 0
    assert ex.figure.axes[0].get_title() == "layer 0 \u00b7 head 0"


def test_heads_only_shows_head_slider(weights):
    ex = attention_explorer(TOKENS, weights[1])
    assert ex.layer.disabled and ex.layer.layout.display == "none"
    assert not ex.head.disabled and ex.head.layout.display != "none"
    ex.head.value = 2
    np.testing.assert_allclose(ex.matrix(), weights[1, 2])


def test_accepts_torch_tensors(weights):
    torch = pytest.importorskip("torch")
    t = torch.tensor(weights, dtype=torch.float32, requires_grad=True) * 1.0
    ex = attention_explorer(TOKENS, t)
    ex.head.value = 1
    assert isinstance(ex.matrix(), np.ndarray)
    np.testing.assert_allclose(ex.matrix(), weights[0, 1], rtol=1e-6, atol=1e-7)
    ex16 = attention_explorer(TOKENS, torch.tensor(weights[0, 0], dtype=torch.bfloat16))
    np.testing.assert_allclose(ex16.matrix(), weights[0, 0], atol=1e-2)


@pytest.mark.parametrize("tokens, shape, message", [
    (TOKENS[:5], (6, 6), "got 5 tokens but weights are for T = 6"),
    (TOKENS, (6, 5), "must be equal, T x T; got 6 x 5"),
    (TOKENS, (2, 3, 6, 7), "got 6 x 7"),
    (TOKENS, (6,), r"\(T, T\), \(H, T, T\) or \(L, H, T, T\)"),
    (TOKENS, (1, 2, 3, 6, 6), "got 5 dimension"),
    ([], (0, 0), "empty"),
])
def test_bad_shapes_raise_clear_errors(tokens, shape, message):
    with pytest.raises(ValueError, match=message):
        attention_explorer(tokens, np.full(shape, 0.5))


def test_bad_tokens_raise_clear_errors(weights):
    with pytest.raises(ValueError, match="list of token strings"):
        attention_explorer("The cat sat on the mat", weights)
    with pytest.raises(ValueError, match=r"tokens\[0\] is int"):
        attention_explorer([464, 3797, 3332, 319, 262, 2603], weights)
    with pytest.raises(ValueError, match="numeric"):
        attention_explorer(TOKENS, [["a"] * 6] * 6)


def test_html_in_tokens_is_escaped(weights):
    tokens = ["<b>", "<script>alert(1)</script>", ' "q"', " &amp;", "\n", " $x$"]
    ex = attention_explorer(tokens, weights[0, 0], title="<i>t</i>")
    strip = ex.strip.value
    assert "<b>" not in strip.replace("query <b>", "").replace("</b>", "")
    assert "<script>" not in strip and "&lt;script&gt;alert(1)&lt;/script&gt;" in strip
    assert "&amp;amp;" in strip, "an entity in a token is shown literally"
    assert "\u21b5" in strip and "\u00b7&quot;q&quot;" in strip, "visible whitespace"
    tips = titles(strip)
    assert len(tips) == len(tokens) and "&quot;q&quot;" in tips[2], "quotes end no attribute"
    heading = ex.children[0]
    assert heading.value == "<b>&lt;i&gt;t&lt;/i&gt;</b>"
    labels = [t.get_text() for t in ex.figure.axes[0].get_yticklabels()]
    assert labels[5] == "\u00b7\\$x\\$"
    rendered(ex.figure)  # "$" must not switch on mathtext


def test_long_sequences_thin_the_tick_labels():
    t = 100
    w = np.tril(np.ones((t, t)))
    w /= w.sum(-1, keepdims=True)
    ex = attention_explorer([f" w{i}" for i in range(t)], w)
    ax = ex.figure.axes[0]
    assert 10 <= len(ax.get_xticks()) <= 40 and len(ax.get_yticks()) == len(ax.get_xticks())
    assert len(ex.query.options) == t
    w_in = ex.figure.get_size_inches()
    assert tuple(w_in) == pytest.approx((5, 4))


def test_no_pyplot_figures_leak(weights):
    import matplotlib.pyplot as plt

    plt.close("all")
    ex = attention_explorer(TOKENS, weights)
    ex.head.value = 1
    ex.layer.value = 1
    assert plt.get_fignums() == [], "the heatmap must not also show below the cell"


NOTEBOOK_CELLS = [
    """
    import numpy as np
    from gpt2course.widgets.attention_explorer import attention_explorer
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 3, 5, 5)) + np.triu(np.full((5, 5), -1e9), 1)
    w = np.exp(logits - logits.max(-1, keepdims=True)); w /= w.sum(-1, keepdims=True)
    ex = attention_explorer(["<b>", " cat", " sat", " on", " mats"], w, title="demo")
    ex
    """,
    """
    ex.head.value = 2
    ex.layer.value = 1
    ex.query.value = 1
    assert np.allclose(ex.matrix(), w[1, 2])
    print(ex.figure.axes[0].get_title())
    """,
]


def test_runs_in_a_kernel(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(textwrap.dedent(src).strip()) for src in NOTEBOOK_CELLS]
    client = Client(nb, timeout=60, kernel_name="python3",
                            resources={"metadata": {"path": str(REPO)}})
    client.execute()
    outputs = [o for c in nb.cells for o in c.outputs]
    errors = [o for o in outputs if o.output_type == "error"
              or (o.output_type == "stream" and o.name == "stderr"
                  and re.search(r"Error|Traceback|Exception", o.text))]
    assert not errors, errors
    views = [o for o in nb.cells[0].outputs
             if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert views, nb.cells[0].outputs
    assert not [o for o in outputs if "image/png" in o.get("data", {})], \
        "the heatmap belongs in the widget, not below the cell"
    assert "".join(o.text for o in nb.cells[1].outputs if o.output_type == "stream") \
        == "layer 1 \u00b7 head 2\n"
    # The heatmap went into the Output widget (its saved state holds the last PNG).
    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    plots = [m["state"].get("outputs", []) for m in state.values()
             if m["model_name"] == "OutputModel"]
    assert plots and any("image/png" in o.get("data", {}) for outs in plots for o in outs)
