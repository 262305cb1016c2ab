"""gpt2course/reference/ is generated from the answer cells of solutions/: one copy to edit.

Every exercise's finished code lives in one place, its answer cell in ``solutions/NN_*.ipynb``.
A reference module keeps only a hand-written head (its docstring and the imports the code
needs) and, after it, a marker line naming the notebook and the answer cells that follow::

    # ---- generated from solutions/03_attention.ipynb by `python -m grader build` ----
    # cells: causal_mask, attention
    # Edit those answer cells in the notebook, not the code below.

``python -m grader build`` (``make notebooks``) rewrites everything below the marker from the
named cells, in the order named; ``build --check`` fails when a module differs from what the
build would write, when a marker names a notebook or cell that does not exist, and when an
answer cell of solutions/ is in no reference module (or in two).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .notebook import grade_id, is_answer_cell, read_notebook
from .paths import REPO, SOLUTIONS, solution_notebooks

REFERENCE = REPO / "gpt2course" / "reference"

MARKER = re.compile(
    r"^# ---- generated from solutions/(?P<notebook>\S+\.ipynb) by `python -m grader build` ----\n"
    r"# cells: (?P<cells>[A-Za-z_][\w, ]*)\n"
    r"# Edit those answer cells in the notebook, not the code below\.\n",
    re.MULTILINE)


class ReferenceError(Exception):
    """gpt2course/reference/ and solutions/ cannot be reconciled; the message says how."""


@dataclass(frozen=True)
class Module:
    path: Path
    head: str           # everything up to and including the marker
    notebook: str
    cells: tuple[str, ...]

    def text(self, answers: dict[str, dict[str, str]]) -> str:
        """The module as the build writes it: the head, then the named answer cells."""
        sources = answers.get(self.notebook)
        if sources is None:
            raise ReferenceError(f"{self.path.name}: solutions/{self.notebook} does not exist")
        body = []
        for name in self.cells:
            if name not in sources:
                raise ReferenceError(f"{self.path.name}: solutions/{self.notebook} has no answer "
                                     f"cell {name!r} (its answer cells: {', '.join(sources)})")
            body.append(sources[name].strip() + "\n")
        return self.head + "\n\n" + "\n\n".join(body)


def generated_modules(reference: Path = REFERENCE) -> list[Module]:
    """The reference modules that carry a marker, in file-name order."""
    modules = []
    for path in sorted(reference.glob("*.py")):
        text = path.read_text(encoding="utf-8")
        match = MARKER.search(text)
        if match is None:
            continue
        cells = tuple(name.strip() for name in match.group("cells").split(",") if name.strip())
        modules.append(Module(path, text[:match.end()], match.group("notebook"), cells))
    return modules


def answer_sources(solutions: Path = SOLUTIONS) -> dict[str, dict[str, str]]:
    """{notebook name: {grade_id: source}} of every answer cell in solutions/."""
    answers = {}
    for path in solution_notebooks(solutions):
        nb = read_notebook(path)
        answers[path.name] = {grade_id(c): c.source for c in nb.cells if is_answer_cell(c)}
    return answers


def expected(reference: Path = REFERENCE, solutions: Path = SOLUTIONS) -> dict[Path, str]:
    """What every generated reference module should hold; raises ReferenceError when an answer
    cell has no module (or two), or a marker names something that does not exist."""
    answers = answer_sources(solutions)
    modules = generated_modules(reference)
    texts = {module.path: module.text(answers) for module in modules}  # names checked first
    placed: dict[tuple[str, str], str] = {}
    for module in modules:
        for name in module.cells:
            key = (module.notebook, name)
            if key in placed:
                raise ReferenceError(f"the answer cell {name} of solutions/{module.notebook} is "
                                     f"generated into both {placed[key]} and {module.path.name}")
            placed[key] = module.path.name
    homeless = [f"{nb}: {name}" for nb, cells in answers.items() for name in cells
                if (nb, name) not in placed]
    if homeless:
        raise ReferenceError("answer cells that no module of gpt2course/reference/ is generated "
                             "from (name them in a module's marker line, see grader/"
                             "reference_code.py): " + "; ".join(homeless))
    return texts


def stale(reference: Path = REFERENCE, solutions: Path = SOLUTIONS) -> list[str]:
    """Names of the reference modules that differ from their answer cells."""
    return [path.name for path, text in expected(reference, solutions).items()
            if path.read_text(encoding="utf-8") != text]


def write(reference: Path = REFERENCE, solutions: Path = SOLUTIONS) -> list[str]:
    """Rewrite the stale reference modules; returns their names."""
    changed = []
    for path, text in expected(reference, solutions).items():
        if path.read_text(encoding="utf-8") != text:
            tmp = path.with_suffix(".py.tmp")
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(path)
            changed.append(path.name)
    return changed
