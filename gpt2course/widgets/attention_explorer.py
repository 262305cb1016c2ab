"""An attention explorer: pick a layer, a head and a query token, and see where that token looks.

Usage, in a notebook cell::

    from gpt2course.widgets.attention_explorer import attention_explorer
    # tokens: the T token texts; weights: softmaxed, shape (T, T), (H, T, T) or (L, H, T, T)
    attention_explorer(tokens, weights)   # row i: how much token i attends to each token
    attention_explorer(tokens, weights, layer=1, head=3)   # start at layer 1, head 3

Notebooks 03 and 04 show heads made by hand; 07 and 10 show every layer of a trained model, whose
weights ``gpt2course.heads.attention_weights`` reads.

The widget shows sliders for the layer and the head, a dropdown for the query token, a strip of
the tokens shaded by how much the query attends to each of them (hover a token for its weight),
and a heatmap of the whole (T, T) matrix with the query's row outlined.

It is built from core ipywidgets and inline images only (no third-party widgets, no JavaScript,
nothing loaded from a CDN), so it works in Colab (ipywidgets 7.7) and in JupyterLab or VS Code
(ipywidgets 8). The heatmap is drawn on a matplotlib ``Figure`` with its own Agg canvas and shown
as a PNG inside an ``ipywidgets.Output``: it never enters pyplot's list of figures, so it does not
also appear below the cell, and it looks the same whichever matplotlib backend is active. Outside
IPython (scripts, tests) the widget still builds and draws; ``explorer.figure`` is the last figure.
"""

from __future__ import annotations

import html
import io
import math
import warnings

import ipywidgets as widgets
import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

__all__ = ["AttentionExplorer", "attention_explorer"]

CMAP = "Blues"            # sequential: white = no attention
FIGSIZE = (5.0, 4.0)      # inches
DPI = 100                 # the figure's size on screen is FIGSIZE * DPI pixels ...
RENDER_SCALE = 2          # ... rendered at twice that for sharp labels on high-density screens
MAX_TICK_LABELS = 40      # longer sequences label every k-th token only
MAX_LABEL_CHARS = 12


def _shown(token: str) -> str:
    """A token's text with whitespace made visible (plain text, not yet HTML-escaped)."""
    return token.replace(" ", "\u00b7").replace("\n", "\u21b5").replace("\t", "\u2192")


def _axis_label(token: str) -> str:
    """A tick label: visible whitespace, shortened, with ``$`` escaped so mathtext stays off."""
    text = _shown(token)
    if len(text) > MAX_LABEL_CHARS:
        text = text[: MAX_LABEL_CHARS - 1] + "\u2026"
    return text.replace("$", r"\$")


def _as_array(weights) -> np.ndarray:
    """A float64 numpy copy of a torch tensor (any device or dtype) or an array-like."""
    if hasattr(weights, "detach"):  # a torch.Tensor, without importing torch
        weights = weights.detach().cpu().float().numpy()
    try:
        return np.array(weights, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"weights must be a numeric tensor or array, got "
                         f"{type(weights).__name__}: {exc}") from None


def _validated(tokens, weights) -> tuple[list[str], np.ndarray]:
    """(tokens as a list, weights as an (L, H, T, T) array), or a ValueError saying what's wrong."""
    if isinstance(tokens, str):
        raise ValueError("tokens must be a list of token strings (one per position), not a single "
                         "string; e.g. [enc.decode([t]) for t in ids]")
    tokens = list(tokens)
    bad = [(i, t) for i, t in enumerate(tokens) if not isinstance(t, str)]
    if bad:
        i, t = bad[0]
        raise ValueError(f"tokens must be strings (the token texts), but tokens[{i}] is "
                         f"{type(t).__name__} {t!r}; decode token ids first")
    w = _as_array(weights)
    if w.ndim not in (2, 3, 4):
        raise ValueError(f"weights must have shape (T, T), (H, T, T) or (L, H, T, T) "
                         f"(layers, heads, queries, keys); got {w.ndim} dimension(s), shape "
                         f"{tuple(w.shape)}. For a batch, pick one sequence first, e.g. weights[0]")
    if w.shape[-1] != w.shape[-2]:
        raise ValueError(f"the last two dimensions of weights (queries x keys) must be equal, "
                         f"T x T; got {w.shape[-2]} x {w.shape[-1]} in shape {tuple(w.shape)}")
    while w.ndim < 4:
        w = w[np.newaxis]
    n_layers, n_heads, t, _ = w.shape
    if t == 0 or n_layers == 0 or n_heads == 0:
        raise ValueError(f"weights is empty: shape {tuple(w.shape)} as (L, H, T, T)")
    if len(tokens) != t:
        raise ValueError(f"got {len(tokens)} tokens but weights are for T = {t} positions "
                         f"(shape {tuple(w.shape)} as (L, H, T, T)); pass one token per position")
    return tokens, w


def _text_colour(rgba) -> str:
    r, g, b = rgba[:3]
    return "#000" if 0.299 * r + 0.587 * g + 0.114 * b > 0.55 else "#fff"


def _hex(rgba) -> str:
    return "#" + "".join(f"{round(255 * c):02x}" for c in rgba[:3])


class AttentionExplorer(widgets.VBox):
    """Sliders for layer and head, a query dropdown, a token strip and a heatmap.

    Attributes: ``layer``, ``head`` (IntSlider; hidden and disabled when there is only one),
    ``query`` (Dropdown of (label, index) pairs), ``strip`` (HTML), ``plot`` (Output),
    ``figure`` (the last matplotlib Figure drawn), ``tokens``, ``weights`` ((L, H, T, T)
    numpy array). Methods: ``matrix()`` (the (T, T) array shown), ``redraw()``.
    """

    def __init__(self, tokens, weights, *, title=None, layer=0, head=0):
        tokens, w = _validated(tokens, weights)
        self.tokens = tokens
        self.weights = w
        self.figure = None
        n_layers, n_heads, t, _ = w.shape

        def slider(name, n, value):
            if not 0 <= value < n:
                raise ValueError(f"{name} {value} does not exist: the weights have {n} {name}s "
                                 f"(0 .. {n - 1})")
            s = widgets.IntSlider(value=value, min=0, max=max(n - 1, 0), step=1, description=name,
                                  continuous_update=False, disabled=n == 1)
            if n == 1:
                s.layout.display = "none"
            return s

        self.layer = slider("layer", n_layers, int(layer))
        self.head = slider("head", n_heads, int(head))
        self.query = widgets.Dropdown(
            options=[(f"{i}: {tok!r}", i) for i, tok in enumerate(tokens)],
            value=t - 1, description="query")
        self.strip = widgets.HTML()
        self.plot = widgets.Output()
        children = [widgets.HBox([self.layer, self.head]), self.query, self.strip, self.plot]
        if title is not None:
            children.insert(0, widgets.HTML(f"<b>{html.escape(str(title))}</b>"))
        super().__init__(children=children)
        for control in (self.layer, self.head, self.query):
            control.observe(self._changed, names="value")
        self.redraw()

    def matrix(self) -> np.ndarray:
        """The (T, T) attention matrix of the selected layer and head (rows are queries)."""
        return self.weights[self.layer.value, self.head.value].copy()

    def _changed(self, change):
        self.redraw()

    def redraw(self):
        """Redraw the token strip and the heatmap for the current layer, head and query."""
        if not _in_kernel():
            self._render()
            return
        from IPython.display import Image, display

        with self.plot:  # an error shows up in the widget, not only in the kernel's log
            self.plot.clear_output(wait=True)
            display(Image(data=self._render(), retina=True))

    def _render(self) -> bytes:
        """Update the strip and ``figure``; the figure as PNG bytes."""
        m = self.matrix()
        self.strip.value = self._strip_html(m)
        self.figure = self._draw(m)
        buf = io.BytesIO()
        with warnings.catch_warnings():  # tokens with characters DejaVu Sans lacks
            warnings.filterwarnings("ignore", message="Glyph .* missing", category=UserWarning)
            self.figure.savefig(buf, format="png", dpi=DPI * RENDER_SCALE)
        return buf.getvalue()

    def _strip_html(self, m: np.ndarray) -> str:
        cmap = colormaps[CMAP]
        q = self.query.value
        row = m[q]
        top = float(np.nanmax(row)) if np.isfinite(row).any() else 0.0
        spans = []
        for j, (tok, wt) in enumerate(zip(self.tokens, row)):
            rgba = cmap(float(wt) / top if top > 0 and np.isfinite(wt) else 0.0)
            tip = html.escape(f"key {j}: {tok!r}  weight {wt:.3f}", quote=True)
            border = "2px solid #d62728" if j == q else "1px solid #bbb"
            spans.append(
                f'<span title="{tip}" style="background:{_hex(rgba)};color:{_text_colour(rgba)};'
                f'border:{border};padding:1px 2px;margin:1px;font-family:monospace;'
                f'white-space:pre">{html.escape(_shown(tok))}</span>')
        head = (f"<div style='font-size:90%'>query <b>{q}</b> "
                f"<code>{html.escape(repr(self.tokens[q]))}</code> attends to "
                f"(shade relative to its largest weight, {top:.3f}; hover a token for its "
                f"weight):</div>")
        return head + "<div style='line-height:2.1'>" + "".join(spans) + "</div>"

    def _draw(self, m: np.ndarray):
        t = m.shape[0]
        q = self.query.value
        fig = Figure(figsize=FIGSIZE, dpi=DPI, layout="constrained")
        FigureCanvasAgg(fig)  # its own canvas: not in pyplot, never shown below the cell
        ax = fig.add_subplot()
        finite = m[np.isfinite(m)]
        vmax = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
        im = ax.imshow(m, cmap=CMAP, vmin=0.0, vmax=vmax, interpolation="nearest")
        ax.add_patch(Rectangle((-0.5, q - 0.5), t, 1, fill=False, edgecolor="#d62728",
                               linewidth=1.8, clip_on=False))
        step = max(1, math.ceil(t / MAX_TICK_LABELS))
        ticks = list(range(0, t, step))
        labels = [_axis_label(self.tokens[i]) for i in ticks]
        size = 8 if len(ticks) <= 20 else 6
        ax.set_xticks(ticks)
        ax.set_xticklabels(labels, rotation=90, fontsize=size)
        ax.set_yticks(ticks)
        ax.set_yticklabels(labels, fontsize=size)
        ax.set_xlabel("key (attended to)", fontsize=8)
        ax.set_ylabel("query (attending)", fontsize=8)
        ax.set_title(f"layer {self.layer.value} \u00b7 head {self.head.value}", fontsize=10)
        fig.colorbar(im, ax=ax, shrink=0.8).ax.tick_params(labelsize=7)
        return fig

    def __repr__(self):
        n_layers, n_heads, t, _ = self.weights.shape
        return f"<AttentionExplorer: {n_layers} layer(s), {n_heads} head(s), {t} tokens>"


def _in_kernel() -> bool:
    """Whether this runs in a Jupyter kernel (elsewhere there is no front end to draw in, and
    clear_output would print escape codes)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    return getattr(get_ipython(), "kernel", None) is not None


def attention_explorer(tokens, weights, *, title=None, layer=0, head=0) -> AttentionExplorer:
    """An interactive view of attention ``weights`` over ``tokens`` (end a cell with it to show it).

    ``tokens``: the T token texts, as shown (e.g. ``[enc.decode([t]) for t in ids]``).
    ``weights``: attention probabilities as a torch tensor or numpy array of shape (T, T),
    (H, T, T) or (L, H, T, T): row i is how much token i attends to each token.
    ``title``: an optional heading. ``layer``, ``head``: where the sliders start.
    """
    return AttentionExplorer(tokens, weights, title=title, layer=layer, head=head)
