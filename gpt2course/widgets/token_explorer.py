"""The token explorer of notebook 01: a text box whose text is shown split into tokens (GPT-2's
there), each on its own colour. Core ipywidgets and HTML only: works in Colab's ipywidgets 7.7
and in JupyterLab with ipywidgets 8."""

from __future__ import annotations

import html

_PALETTE = ["#fde2e4", "#dbe7fb", "#e2f0cb", "#fff1c1", "#e8dff5", "#d7f2ef"]


def tokens_html(pieces: list[str]) -> str:
    """HTML showing each token piece on its own coloured background (spaces shown as ·)."""
    spans = []
    for i, piece in enumerate(pieces):
        shown = html.escape(piece).replace(" ", "\u00b7").replace("\n", "\u21b5<br>")
        spans.append(f'<span style="background:{_PALETTE[i % len(_PALETTE)]};padding:1px 0;'
                     f'border-right:1px solid #999;font-family:monospace">{shown}</span>')
    return "<div style='line-height:1.9'>" + "".join(spans) + "</div>"


def gpt2_pieces(text: str, enc) -> list[str]:
    """The text of each GPT-2 token of ``text`` (partial UTF-8 shown as the replacement char)."""
    return [enc.decode_single_token_bytes(t).decode("utf-8", errors="replace")
            for t in enc.encode(text, allowed_special="all")]


def token_explorer(enc, text: str = "Hello world! Tokenization isn't always intuitive.<|endoftext|>"):
    """A text box and a live view of how ``enc`` splits what you type."""
    import ipywidgets as widgets

    box = widgets.Textarea(value=text, layout=widgets.Layout(width="95%", height="70px"))
    view = widgets.HTML()
    count = widgets.HTML()

    def update(_=None):
        ids = enc.encode(box.value, allowed_special="all")
        view.value = tokens_html(gpt2_pieces(box.value, enc))
        count.value = (f"<b>{len(ids)}</b> tokens for <b>{len(box.value)}</b> characters; "
                       f"ids: <code>{ids[:40]}{' ...' if len(ids) > 40 else ''}</code>")

    box.observe(update, names="value")
    update()
    return widgets.VBox([box, count, view])
