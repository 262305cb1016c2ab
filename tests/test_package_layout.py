"""The layout of the gpt2course package: no import circles between its modules.

Every ``import`` and ``from ... import`` statement of every module counts, those inside
functions too (a lazy import is still a dependency, and a circle through one only hides until
someone moves it up). The test reads the source with ``ast`` and imports nothing.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "gpt2course"


def module_files(root: Path = PACKAGE) -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package below ``root``."""
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _innermost(name: str, modules) -> str | None:
    """The module that ``import name`` loads last: ``name`` itself, or the package holding it
    (``gpt2course.reference.GPT`` is the package ``gpt2course.reference``)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(name: str, path: Path, modules) -> dict[str, int]:
    """The package's modules that module ``name`` (file ``path``) imports -> the first line."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: dict[str, int] = {}
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        targets = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parent = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            # `from pkg import x` imports the submodule pkg.x when there is one, else pkg.
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                       for alias in node.names]
        for target in targets:
            module = _innermost(target, modules)
            if module is not None and module != name:
                found.setdefault(module, node.lineno)
    return found


def import_graph(root: Path = PACKAGE) -> dict[str, dict[str, int]]:
    """Module -> {imported module of the package: line}."""
    modules = module_files(root)
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def find_cycle(graph: dict[str, dict[str, int]]) -> list[str] | None:
    """One import circle as [a, b, ..., a], or None."""
    state: dict[str, str] = {}  # "open" while on the current path, "done" after

    def visit(node, path):
        state[node] = "open"
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt, path)
                if cycle:
                    return cycle
        path.pop()
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state:
            cycle = visit(start, [])
            if cycle:
                return cycle
    return None


def describe(cycle: list[str], graph) -> str:
    steps = [f"{a} imports {b} (line {graph[a][b]})" for a, b in zip(cycle, cycle[1:])]
    return "import circle: " + "; ".join(steps)


def test_no_import_circle():
    graph = import_graph()
    cycle = find_cycle(graph)
    assert cycle is None, describe(cycle, graph) + (
        ". Move what both need into a module that imports neither (as gpt2course.datafiles "
        "holds the checked data files for both data and tokenizer)")


# --------------------------------------------------------------------------------------------
# The checker itself, on small packages written for it


def _write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root / "gpt2course"


def test_a_lazy_import_that_closes_a_circle_is_found(tmp_path):
    package = _write(tmp_path, {
        "gpt2course/__init__.py": "",
        "gpt2course/data.py": "def tokens():\n    from .tokenizer import encode\n",
        "gpt2course/tokenizer.py": "from .data import verified_path\n",
    })
    graph = import_graph(package)
    assert graph["gpt2course.data"] == {"gpt2course.tokenizer": 2}
    cycle = find_cycle(graph)
    assert cycle is not None and set(cycle) == {"gpt2course.data", "gpt2course.tokenizer"}
    assert "line 2" in describe(cycle, graph)


@pytest.mark.parametrize("statement, expected", [
    ("from . import b", "gpt2course.sub.b"),
    ("from .b import f", "gpt2course.sub.b"),
    ("from .. import top", "gpt2course.top"),
    ("from ..top import f", "gpt2course.top"),
    ("import gpt2course.top", "gpt2course.top"),
    ("from gpt2course.sub import NAME", "gpt2course.sub"),   # a name of the package's __init__
    ("from gpt2course import sub", "gpt2course.sub"),
])
def test_import_statements_resolve(tmp_path, statement, expected):
    package = _write(tmp_path, {
        "gpt2course/__init__.py": "", "gpt2course/top.py": "",
        "gpt2course/sub/__init__.py": "NAME = 1\n", "gpt2course/sub/b.py": "",
        "gpt2course/sub/a.py": f"def f():\n    {statement}\n",
    })
    assert list(import_graph(package)["gpt2course.sub.a"]) == [expected]


def test_no_circle_in_a_chain(tmp_path):
    package = _write(tmp_path, {
        "gpt2course/__init__.py": "", "gpt2course/a.py": "from . import b\n",
        "gpt2course/b.py": "from . import c\n", "gpt2course/c.py": "import os\n",
    })
    assert find_cycle(import_graph(package)) is None
