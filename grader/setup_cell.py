"""The setup cell, written once here into every notebook.

Every notebook opens with the same setup code (the first code cell, or the second where a
notebook begins with a Markdown "Setup" cell): it makes ``gpt2course`` importable, in Colab by
cloning the course repository, locally from the checkout. ``TEMPLATE`` is that code; a notebook's
setup cell is the template followed by the notebook's own imports. ``python -m grader build``
(``make notebooks``) writes the template into solutions/ (and so into the generated notebooks/),
with ``REPO_URL`` and ``REPO_BRANCH`` from ``gpt2course.REPO_OWNER`` / ``REPO_NAME`` /
``REPO_BRANCH``; ``build --check`` fails while any notebook's copy differs (grader/links.py).

In Colab the cell clones the configured branch into ``/content/<repository name>`` (or the
folder in ``$GPT2COURSE_CLONE_DIR``, which the tests use); when the clone fails it stops with one
line naming the URL and what to check, not a traceback (IPython prints what an exception's
``_render_traceback_`` returns instead of the traceback).
"""

from __future__ import annotations

import re

CLONE_DIR_ENV = "GPT2COURSE_CLONE_DIR"

# @URL@ and @BRANCH@ are filled in by ``source``; everything else is the cell, verbatim.
TEMPLATE = '''\
# Setup: run this cell first. In Colab it fetches the course repository (data and helpers);
# locally it uses your checkout. Colab already has torch, matplotlib, ipywidgets and tqdm.
import importlib.util, os, subprocess, sys
from pathlib import Path

REPO_URL = "@URL@"
REPO_BRANCH = "@BRANCH@"
if importlib.util.find_spec("gpt2course") is None:
    if "google.colab" in sys.modules:
        repo = Path(os.environ.get("GPT2COURSE_CLONE_DIR", "/content/" + REPO_URL.rstrip("/").split("/")[-1]))
        if not repo.exists():
            clone = subprocess.run(["git", "clone", "--quiet", "--depth", "1", "--branch", REPO_BRANCH,
                                    REPO_URL, str(repo)], capture_output=True, text=True,
                                   env={**os.environ, "GIT_TERMINAL_PROMPT": "0"})  # fail, don't ask
            if clone.returncode != 0:
                class SetupError(Exception):
                    def _render_traceback_(self):  # Jupyter shows this one line, not a traceback
                        return [f"SetupError: {self}"]
                said = [line for line in clone.stderr.splitlines() if line.strip()] or ["no message"]
                said = next((line for line in said if line.startswith("fatal:")), said[-1])
                raise SetupError(
                    f"could not clone branch {REPO_BRANCH!r} of {REPO_URL} (git: {said}). Check the "
                    "network, that the repository is public, and REPO_URL / REPO_BRANCH above "
                    "(set by gpt2course.REPO_OWNER, REPO_NAME and REPO_BRANCH, then `make notebooks`).")
        missing = [p for p in ("tiktoken", "safetensors") if importlib.util.find_spec(p) is None]
        if missing:
            subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", *missing], check=True)
    else:
        repo = next((p for p in [Path.cwd(), *Path.cwd().parents] if (p / "gpt2course").is_dir()), None)
        if repo is None:
            raise RuntimeError("Open this notebook from inside the course repository "
                               "(or run `pip install -e .` in it).")
    sys.path.insert(0, str(repo))

import torch
from gpt2course.checks import check
from gpt2course.env import fast_mode, pick
print(f"torch {torch.__version__}; fast mode {'on' if fast_mode() else 'off'}")'''

# How a setup cell is recognised, in the version written here and in older ones: it starts with
# this comment, and its setup part ends with the line that prints torch's version.
_START = "# Setup: run this cell first."
_END = re.compile(r'^print\(f"torch .*$', flags=re.MULTILINE)
assert TEMPLATE.startswith(_START) and _END.search(TEMPLATE).end() == len(TEMPLATE)
assert f'os.environ.get("{CLONE_DIR_ENV}"' in TEMPLATE


def source(url: str, branch: str) -> str:
    """The setup part of every setup cell, for the repository at ``url`` and its ``branch``."""
    return TEMPLATE.replace("@URL@", url).replace("@BRANCH@", branch)


def is_setup_cell(cell_source: str) -> bool:
    return cell_source.startswith(_START) and _END.search(cell_source) is not None


def rewrite(cell_source: str, url: str, branch: str) -> str:
    """``cell_source`` with its setup part replaced by the template (the notebook's own lines after
    it are kept); other cells come back unchanged."""
    if not is_setup_cell(cell_source):
        return cell_source
    end = _END.search(cell_source).end()
    return source(url, branch) + cell_source[end:]
