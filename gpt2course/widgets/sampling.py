"""A sampling playground: sliders for temperature, top-k and top-p, a button for fresh samples.

Usage, in a notebook cell::

    from gpt2course.widgets.sampling import sampling_widget
    sampling_widget(model, encode, decode, generate, prompt="ROMEO:")

``generate`` is the notebook's own ``generate(model, idx, max_new_tokens, temperature, top_k,
top_p, generator)``: the widget only calls it. Moving a slider redraws the next-token
distribution after the prompt (the most likely tokens, before and after the settings); the
button draws new samples with a new seed.

Built from core ipywidgets and a PNG in an ``Output`` (as ``widgets.attention_explorer``), so
it works with ipywidgets 7.7 (Colab) and 8. Outside a kernel it still builds and computes;
``widget.figure`` is the last figure and ``widget.samples`` the last texts.
"""

from __future__ import annotations

import html
import io

import ipywidgets as widgets
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = ["SamplingWidget", "sampling_widget", "filtered_probs"]

TOP_SHOWN = 12


def filtered_probs(logits, temperature: float, top_k: int = 0, top_p: float = 1.0):
    """The next-token distribution (V,) for logits (V,) after temperature, top-k (0 = off) and
    top-p (1 = off); temperature 0 puts everything on the most likely token."""
    import torch

    logits = logits.detach().double()
    if temperature == 0:
        return torch.nn.functional.one_hot(logits.argmax(), logits.numel()).double()
    z = logits / temperature
    if top_k:
        kth = torch.topk(z, min(top_k, z.numel())).values[-1]
        z = z.masked_fill(z < kth, float("-inf"))
    if top_p < 1.0:
        probs, order = torch.softmax(z, -1).sort(descending=True)
        drop = (probs.cumsum(-1) - probs) >= top_p
        z = z.clone()
        z[order[drop]] = float("-inf")
    return torch.softmax(z, -1)


def _shown(token: str) -> str:
    """A token as a label: escapes for control characters, spaces made visible."""
    return (token if token.isprintable() else repr(token)[1:-1]).replace(" ", "\u2423")


class SamplingWidget(widgets.VBox):
    """Attributes: ``temperature``, ``top_p`` (FloatSlider), ``top_k`` (IntSlider, 0 = off),
    ``prompt`` (Text), ``length`` (IntSlider), ``button`` (Button), ``plot`` (Output),
    ``text`` (HTML), ``figure``, ``samples`` (list of str), ``seed`` (the next seed)."""

    def __init__(self, model, encode, decode, generate, *, prompt: str = "", max_new_tokens: int = 100,
                 n_samples: int = 2, seed: int = 0):
        self.model, self.encode, self.decode, self.generate_fn = model, encode, decode, generate
        self.n_samples, self.seed = n_samples, seed
        self.figure, self.samples = None, []
        vocab = model.config.vocab_size
        style = {"description_width": "90px"}
        layout = widgets.Layout(width="420px")
        self.temperature = widgets.FloatSlider(value=0.8, min=0.0, max=2.0, step=0.05, description="temperature",
                                               continuous_update=False, style=style, layout=layout)
        self.top_k = widgets.IntSlider(value=0, min=0, max=vocab, step=1, description="top_k (0 = off)",
                                       continuous_update=False, style=style, layout=layout)
        self.top_p = widgets.FloatSlider(value=1.0, min=0.05, max=1.0, step=0.05, description="top_p (1 = off)",
                                         continuous_update=False, style=style, layout=layout)
        self.length = widgets.IntSlider(value=max_new_tokens, min=1, max=max(max_new_tokens * 3, 10),
                                        description="new tokens", continuous_update=False, style=style,
                                        layout=layout)
        self.prompt = widgets.Text(value=prompt, description="prompt", style=style, layout=layout)
        self.button = widgets.Button(description="Sample", button_style="primary")
        self.plot = widgets.Output()
        self.text = widgets.HTML()
        controls = widgets.VBox([self.prompt, self.temperature, self.top_k, self.top_p, self.length,
                                 self.button])
        super().__init__(children=[widgets.HBox([controls, self.plot]), self.text])
        for control in (self.temperature, self.top_k, self.top_p, self.prompt):
            control.observe(self._changed, names="value")
        self.button.on_click(self._clicked)
        self.redraw()
        self.sample()

    def settings(self) -> dict:
        """The keyword arguments for generate: top_k None when 0, top_p None when 1."""
        return {"temperature": float(self.temperature.value),
                "top_k": int(self.top_k.value) or None,
                "top_p": float(self.top_p.value) if self.top_p.value < 1.0 else None}

    def _ids(self):
        import torch
        ids = list(self.encode(self.prompt.value)) or [0]
        return torch.tensor([ids[-self.model.config.block_size:]], dtype=torch.long)

    def distribution(self):
        """(before, after): the next-token probabilities after the prompt at temperature 1 and
        with the current settings, each (V,)."""
        import torch
        with torch.no_grad():
            was_training = self.model.training
            self.model.eval()
            logits, _ = self.model(self._ids())
            self.model.train(was_training)
        s = self.settings()
        last = logits[0, -1]
        return (filtered_probs(last, 1.0),
                filtered_probs(last, s["temperature"], s["top_k"] or 0, s["top_p"] or 1.0))

    def _changed(self, change):
        self.redraw()

    def _clicked(self, button):
        self.sample()

    def redraw(self):
        before, after = self.distribution()
        order = before.argsort(descending=True)[:TOP_SHOWN].tolist()
        fig = Figure(figsize=(4.6, 3.2), dpi=100, layout="constrained")
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        labels = [_shown(self.decode([i])) for i in order]
        y = range(len(order))
        ax.barh([v + 0.2 for v in y], [float(before[i]) for i in order], height=0.4, label="temperature 1, no filter",
                color="#bbbbbb")
        ax.barh([v - 0.2 for v in y], [float(after[i]) for i in order], height=0.4, label="these settings",
                color="#1f77b4")
        ax.set_yticks(list(y))
        ax.set_yticklabels(labels, fontsize=8)
        ax.invert_yaxis()
        ax.set_xlim(0, 1)
        ax.set_xlabel("probability of the next token", fontsize=8)
        kept = int((after > 0).sum())
        ax.set_title(f"after the prompt: {kept} token(s) can be drawn", fontsize=9)
        ax.legend(fontsize=7, loc="lower right")
        self.figure = fig
        self._show(fig)

    def _show(self, fig):
        if not _in_kernel():
            return
        from IPython.display import Image, display
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=200)
        with self.plot:
            self.plot.clear_output(wait=True)
            display(Image(data=buf.getvalue(), retina=True))

    def sample(self):
        """Draw ``n_samples`` continuations of the prompt with the current settings and a new seed."""
        import torch
        idx = self._ids()
        self.samples = []
        for _ in range(self.n_samples):
            out = self.generate_fn(self.model, idx, int(self.length.value), generator=torch.Generator().manual_seed(self.seed),
                                   **self.settings())
            self.samples.append(self.decode(out[0, idx.size(1):].tolist()))
            self.seed += 1
        s = self.settings()
        head = (f"<div style='font-size:90%;color:#555'>temperature {s['temperature']}, top_k {s['top_k']}, "
                f"top_p {s['top_p']} &middot; seeds {self.seed - self.n_samples}..{self.seed - 1}</div>")
        body = "".join(
            "<pre style='white-space:pre-wrap;border-left:3px solid #1f77b4;padding-left:6px'>"
            f"<b>{html.escape(self.prompt.value)}</b>{html.escape(text)}</pre>" for text in self.samples)
        self.text.value = head + body
        return self.samples


def _in_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    return getattr(get_ipython(), "kernel", None) is not None


def sampling_widget(model, encode, decode, generate, *, prompt: str = "", max_new_tokens: int = 100,
                    n_samples: int = 2, seed: int = 0) -> SamplingWidget:
    """Sliders for temperature / top-k / top-p and a button that draws fresh samples from ``model``
    with ``generate`` (end a cell with it to show it). ``encode``: text -> list of ids;
    ``decode``: list of ids -> text."""
    return SamplingWidget(model, encode, decode, generate, prompt=prompt, max_new_tokens=max_new_tokens,
                          n_samples=n_samples, seed=seed)
