"""The repository links in the notebooks and the README, made from one setting.

``gpt2course.REPO_OWNER``, ``REPO_NAME`` and ``REPO_BRANCH`` say where the course lives. The
Colab badge at the top of every notebook, the setup cell (grader/setup_cell.py: one template,
with the ``REPO_URL`` and ``REPO_BRANCH`` that Colab clones), the badge column of the README's
course map and its Quick start's ``git clone`` command are written from them: change the setting, run ``make notebooks`` (``python -m grader
build``), and every link follows. ``build --check`` fails while any link or setup cell disagrees.
"""

from __future__ import annotations

import re

import nbformat

from . import setup_cell
from .paths import SOLUTIONS, solution_notebooks

README = SOLUTIONS.parent / "README.md"
BADGE_IMAGE = "https://colab.research.google.com/assets/colab-badge.svg"
_BADGE = re.compile(r"\[!\[Open In Colab\]\([^)]*\)\]\(https://colab\.research\.google\.com/github/[^)]*\)")
_MAP_ROW = re.compile(r"^\| `(\d\d_[a-z0-9_]+)` \|.*$", flags=re.MULTILINE)
# The Quick start's first two commands: `git clone --branch BRANCH URL` and `cd NAME`.
_CLONE = re.compile(r"^git clone --branch \S+ https://github\.com/\S+\ncd \S+", flags=re.MULTILINE)


def settings() -> tuple[str, str, str]:
    import gpt2course

    return gpt2course.REPO_OWNER, gpt2course.REPO_NAME, gpt2course.REPO_BRANCH


def repo_url(owner: str, name: str) -> str:
    return f"https://github.com/{owner}/{name}"


def badge(notebook: str, owner: str, name: str, branch: str) -> str:
    """The Markdown of an "Open in Colab" badge for notebooks/<notebook>.ipynb."""
    target = f"https://colab.research.google.com/github/{owner}/{name}/blob/{branch}/notebooks/{notebook}.ipynb"
    return f"[![Open In Colab]({BADGE_IMAGE})]({target})"


def notebook_text(source: str, notebook: str, cell_type: str, repo: tuple[str, str, str]) -> str:
    """``source`` (one cell of notebook ``notebook``) with its badge, or its setup part, from ``repo``."""
    owner, name, branch = repo
    if cell_type == "markdown":
        return _BADGE.sub(lambda _: badge(notebook, owner, name, branch), source)
    return setup_cell.rewrite(source, repo_url(owner, name), branch)


def clone_command(owner: str, name: str, branch: str) -> str:
    return f"git clone --branch {branch} {repo_url(owner, name)}\ncd {name}"


def readme_text(text: str, repo: tuple[str, str, str]) -> str:
    """The README with a badge at the end of every course-map row (``| `NN_name` | ... |``) and
    the Quick start's clone command for ``repo``."""
    text = _CLONE.sub(lambda _: clone_command(*repo), text)
    def row(match: re.Match) -> str:
        line, notebook = match.group(0), match.group(1)
        line = _BADGE.sub("", line).rstrip()
        line = re.sub(r"(\|\s*)+$", "", line).rstrip()  # the old badge cell, if any
        return f"{line} | {badge(notebook, *repo)} |"
    return _MAP_ROW.sub(row, text)


def out_of_date(repo: tuple[str, str, str] | None = None, write: bool = False) -> list[str]:
    """Files whose links disagree with ``repo`` (default: the setting); rewritten when ``write``."""
    repo = repo or settings()
    stale = []
    for path in solution_notebooks():
        nb = nbformat.read(path, as_version=4)
        setups = [c for c in nb.cells if c.cell_type == "code" and setup_cell.is_setup_cell(c.source)]
        if len(setups) != 1:
            raise ValueError(f"{path.name}: {len(setups)} setup cells; every notebook has one, starting "
                             "with the first line of grader/setup_cell.py's TEMPLATE")
        changed = False
        for cell in nb.cells:
            new = notebook_text(cell.source, path.stem, cell.cell_type, repo)
            if new != cell.source:
                cell.source, changed = new, True
        if changed:
            stale.append(str(path.relative_to(SOLUTIONS.parent)))
            if write:
                nbformat.write(nb, path)
    if README.exists():
        text = README.read_text(encoding="utf-8")
        new = readme_text(text, repo)
        if new != text:
            stale.append(README.name)
            if write:
                README.write_text(new, encoding="utf-8")
    return stale
