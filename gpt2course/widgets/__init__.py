"""What the notebooks show beside the exercises: widgets, plots and the demos behind them.

- ``token_explorer``: a text split into tokens as you type (notebook 01).
- ``attention_explorer``: attention weights per layer, head and query (notebooks 03 and 04).
- ``hand_made_heads``: four attention heads built by hand for that explorer (notebook 04).
- ``residual_experiments``: gradient flow and pre-LN vs post-LN, with their plots (notebook 06).
- ``loss_plot``: a loss curve that redraws while a loop trains (notebooks 08 and 10).
- ``sampling``: temperature / top-k / top-p sliders over the next-token distribution (notebook 09).

Built from inline matplotlib and core ipywidgets only, so they work with Colab's ipywidgets 7.7
and with 8. May import ``gpt2course.reference``, ``data`` (with ``datafiles``), ``tokenizer``
and ``env``; never ``training``, ``checks`` or ``cli`` (tests/test_package_layout.py checks it).
Nothing is imported here: import the module you need.
"""
