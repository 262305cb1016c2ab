"""gpt2course: what the course notebooks share.

Top level, what every part may use:

- ``gpt2course.datafiles``: the files shipped in ``data/``, checked against their SHA-256.
- ``gpt2course.data``: Tiny Shakespeare, its train/val split, its GPT-2 tokens and characters.
- ``gpt2course.tokenizer``: GPT-2's tiktoken encoding, built offline from ``data/gpt2``.
- ``gpt2course.env``: fast mode and device selection.
- ``gpt2course.weights``: GPT-2 weights as safetensors files: read, infer the config, download, load.
- ``gpt2course.fixtures``: the tiny GPT-2 test checkpoint in ``data/fixtures`` (``load_fixture``).
- ``gpt2course.cli``: the command line, ``python -m gpt2course generate`` and ``train``.

Folders, each with its own ``__init__`` saying what it holds and what it may import:

- ``gpt2course.reference``: the finished version of every exercise, under the exercise's name.
- ``gpt2course.checks``: the checks that the notebooks' test cells run on a learner's code.
- ``gpt2course.training``: training runs (``run``, one optimizer ``step``, ``presets``,
  ``checkpoints``, ``devices``, ``loss_log``), the ``fused`` kernels, ``mfu`` and notebook 10's
  ``speed_ladder``.
- ``gpt2course.widgets``: the notebooks' widgets, plots and demos (``token_explorer``,
  ``attention_explorer``, ``hand_made_heads``, ``residual_experiments``, ``loss_plot``,
  ``sampling``).

Modules that moved into a folder keep their old names (``MOVED`` below), because learners keep
their own copies of the notebooks (Colab's "Save a copy in Drive") that import them by those
names.
"""

import importlib
import importlib.abc
import importlib.util
import sys

__version__ = "0.1.0"

# The public repository the notebooks' Colab badges and setup cells point at (and the README's
# course map and clone command); Colab's setup cell clones REPO_BRANCH. Change these, run
# `make notebooks`, and every link follows (grader/links.py, grader/setup_cell.py; the README's
# "Publish your own copy").
REPO_OWNER = "gpt2-from-scratch"
REPO_NAME = "gpt2-course"
REPO_BRANCH = "main"
REPO_URL = f"https://github.com/{REPO_OWNER}/{REPO_NAME}"

# Old module name -> where the module lives now (both below gpt2course). `import
# gpt2course.loss_plot`, `from gpt2course import loss_plot` and `from gpt2course.loss_plot
# import LossPlot` all give the module object of gpt2course.widgets.loss_plot itself.
MOVED = {
    "train": "training.run",
    "presets": "training.presets",
    "checkpoint": "training.checkpoints",
    "devices": "training.devices",
    "runlog": "training.loss_log",
    "fast": "training.fused",
    "mfu": "training.mfu",
    "speed_ladder": "training.speed_ladder",
    "viz": "widgets.token_explorer",
    "attention_explorer": "widgets.attention_explorer",
    "demos": "widgets.hand_made_heads",
    "experiments": "widgets.residual_experiments",
    "loss_plot": "widgets.loss_plot",
    "sampling_widget": "widgets.sampling",
}


class MovedModuleFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Answers ``gpt2course.<old name>`` for the names in ``MOVED`` with the module at its new
    path. It sits last on ``sys.meta_path``, so it only sees names that no file answers."""

    prefix = __name__ + "."

    def find_spec(self, fullname, path=None, target=None):
        if fullname.startswith(self.prefix) and fullname[len(self.prefix):] in MOVED:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec):
        # The import system then files the module under the old name too and sets it as an
        # attribute of gpt2course; it also sets module.__spec__ to this alias spec, so the
        # module's own spec is kept here for exec_module to put back.
        module = importlib.import_module(self.prefix + MOVED[spec.name[len(self.prefix):]])
        spec.loader_state = module.__spec__
        return module

    def exec_module(self, module):
        module.__spec__ = module.__spec__.loader_state


def _install() -> None:
    """Put one MovedModuleFinder last on sys.meta_path (once, even if gpt2course is reloaded)."""
    mine = [f for f in sys.meta_path if type(f).__qualname__ == "MovedModuleFinder"
            and type(f).__module__ == __name__]
    for finder in mine:
        sys.meta_path.remove(finder)
    sys.meta_path.append(MovedModuleFinder())


_install()
