"""gpt2course: what the course notebooks share.

- ``gpt2course.datafiles``: the files shipped in ``data/``, checked against their SHA-256.
- ``gpt2course.data``: Tiny Shakespeare, its train/val split and its GPT-2 tokens.
- ``gpt2course.tokenizer``: GPT-2's tiktoken encoding, built offline from ``data/gpt2``.
- ``gpt2course.reference``: the finished version of every exercise, under the exercise's name.
- ``gpt2course.checks``: the checks that the notebooks' test cells run on a learner's code.
- ``gpt2course.env``: fast mode and device selection.
- ``gpt2course.weights``: GPT-2 weights as safetensors files: read, infer the config, download, load.
- ``gpt2course.fixtures``: the tiny GPT-2 test checkpoint in ``data/fixtures`` (``load_fixture``).
- ``gpt2course.cli``: the command line, ``python -m gpt2course generate`` and ``train``.
- ``gpt2course.train``: the training run behind ``train`` (with ``presets``, ``checkpoint``,
  ``devices`` (processes, device, autocast dtype) and ``runlog``).
- ``gpt2course.fast``: ``fuse(model)``, PyTorch's fused kernels in place of the hand-written ones,
  and the LM head and loss in one autograd node.
- ``gpt2course.mfu``: FLOPs per token, GPUs' peak FLOP/s, model FLOPs utilisation.
- ``gpt2course.speed_ladder``: tokens/s with each optimisation switched on in turn (notebook 10).
- ``gpt2course.viz``, ``loss_plot``, ``sampling_widget``, ``attention_explorer``: plots and
  widgets used by the notebooks.
"""

__version__ = "0.1.0"

# The public repository the notebooks' Colab badges and setup cells point at (and the README's
# course map). Change these, run `make notebooks`, and every link follows (grader/links.py).
REPO_OWNER = "gpt2-from-scratch"
REPO_NAME = "gpt2-course"
REPO_BRANCH = "main"
REPO_URL = f"https://github.com/{REPO_OWNER}/{REPO_NAME}"
