"""The layout of the gpt2course package: no import circles between its modules, each folder
importing only what its ``__init__`` says it may (``MAY_IMPORT``), and the modules that moved
into a folder still importable under their old names (``gpt2course.MOVED``).

Every ``import`` and ``from ... import`` statement of every module counts, those inside
functions too (a lazy import is still a dependency, and a circle through one only hides until
someone moves it up). The graph is read from the source with ``ast``, importing nothing.
"""

from __future__ import annotations

import ast
import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "gpt2course"

# What each folder (or top-level module) of gpt2course may import, besides its own modules;
# names are below gpt2course. Whatever is not listed is off limits. The folders' __init__
# docstrings say the same in their "May import" sentence (test_docstrings_state_the_rules).
MAY_IMPORT = {
    "training": ("reference", "data", "datafiles", "tokenizer", "weights", "env"),
    "widgets": ("reference", "data", "datafiles", "tokenizer", "env"),
    # the modules every part may use import none of the parts
    "datafiles": (),
    "data": ("datafiles", "tokenizer"),
    "tokenizer": ("datafiles",),
    "env": (),
    "weights": ("reference",),
    "fixtures": ("reference", "datafiles", "weights"),
}


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


def _within(module: str, name: str) -> bool:
    """``module`` is gpt2course.<name> or below it."""
    full = f"gpt2course.{name}"
    return module == full or module.startswith(full + ".")


def rule_breaks(graph: dict[str, dict[str, int]], rules=MAY_IMPORT) -> list[str]:
    """Every import that ``rules`` forbids, as "importer imports imported (line n)"."""
    breaks = []
    for importer, imported in sorted(graph.items()):
        for owner, allowed in rules.items():
            if not _within(importer, owner):
                continue
            for target, line in sorted(imported.items()):
                if not any(_within(target, name) for name in (owner, *allowed)):
                    breaks.append(f"{importer} imports {target} (line {line}): gpt2course.{owner} may "
                                  f"import only {', '.join(allowed) or 'nothing of the package'}")
    return breaks


def test_folders_import_only_what_they_may():
    breaks = rule_breaks(import_graph())
    assert not breaks, "imports against the rules (MAY_IMPORT):\n" + "\n".join(breaks)


def _allowed_in_docstring(folder: str) -> set[str]:
    """The ``names`` in the "May import ...;" sentence of a folder's __init__ docstring."""
    text = ast.get_docstring(ast.parse((PACKAGE / folder / "__init__.py").read_text()))
    sentence = re.search(r"May import (.*?);", text or "", flags=re.S)
    assert sentence, f"gpt2course/{folder}/__init__.py: its docstring has no 'May import ...;' sentence"
    return {name.removeprefix("gpt2course.") for name in re.findall(r"``([\w.]+)``", sentence.group(1))}


@pytest.mark.parametrize("folder", [name for name in MAY_IMPORT if (PACKAGE / name).is_dir()])
def test_docstrings_state_the_rules(folder):
    assert _allowed_in_docstring(folder) == set(MAY_IMPORT[folder])


# --------------------------------------------------------------------------------------------
# Old module names (gpt2course.MOVED)


def _moved():
    import gpt2course
    return sorted(gpt2course.MOVED.items())


@pytest.mark.parametrize("old, new", _moved())
def test_old_name_is_the_new_module(old, new):
    module = importlib.import_module(f"gpt2course.{new}")
    assert importlib.import_module(f"gpt2course.{old}") is module
    assert sys.modules[f"gpt2course.{old}"] is module
    namespace: dict = {}
    exec(f"import gpt2course.{old}\nfrom gpt2course import {old} as via_from\n", namespace)
    assert namespace["via_from"] is module
    assert getattr(namespace["gpt2course"], old) is module
    public = sorted(n for n, v in vars(module).items()
                    if not n.startswith("_") and getattr(v, "__module__", None) == module.__name__)
    assert public, f"gpt2course.{new} defines nothing public to import"
    exec(f"from gpt2course.{old} import {public[0]} as name\n", namespace)
    assert namespace["name"] is getattr(module, public[0])
    assert module.__name__ == module.__spec__.name == f"gpt2course.{new}"  # its own spec, kept


@pytest.mark.parametrize("old, new", _moved())
def test_patching_the_old_name_patches_the_new_module(old, new, monkeypatch):
    marker = object()
    monkeypatch.setattr(importlib.import_module(f"gpt2course.{old}"), "_layout_test_marker", marker,
                        raising=False)
    assert importlib.import_module(f"gpt2course.{new}")._layout_test_marker is marker


@pytest.mark.parametrize("old, new", _moved())
def test_old_names_are_no_files_and_new_ones_are(old, new):
    # A file under the old name would be imported instead, as a second copy of the module.
    assert not (PACKAGE / f"{old}.py").exists() and not (PACKAGE / old).exists()
    assert (PACKAGE / (new.replace(".", "/") + ".py")).is_file()


@pytest.mark.parametrize("statement", [
    "import gpt2course.no_such_module",
    "from gpt2course.no_such_module import anything",
    "import gpt2course.train.no_such_module",       # below an old name: it was never a package
])
def test_unknown_names_are_still_not_found(statement):
    with pytest.raises(ModuleNotFoundError, match="no_such_module"):
        exec(statement, {})


def test_old_names_in_a_fresh_interpreter():
    """What a learner's saved notebook does first thing: the old name before the new one."""
    code = ("from gpt2course.loss_plot import LossPlot\n"
            "import gpt2course.runlog, gpt2course.widgets.loss_plot as new\n"
            "from gpt2course.training import loss_log\n"
            "assert LossPlot is new.LossPlot and gpt2course.runlog is loss_log\n"
            "import sys; assert sys.modules['gpt2course.loss_plot'] is new\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          cwd=PACKAGE.parent)
    assert done.returncode == 0, done.stderr


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


def test_a_forbidden_import_is_named(tmp_path):
    package = _write(tmp_path, {
        "gpt2course/__init__.py": "",
        "gpt2course/widgets/__init__.py": "", "gpt2course/widgets/plot.py": "from ..training import run\n",
        "gpt2course/training/__init__.py": "", "gpt2course/training/run.py": "from . import step\n",
        "gpt2course/training/step.py": "from ..reference import gpt\n",
        "gpt2course/reference/__init__.py": "", "gpt2course/reference/gpt.py": "",
    })
    breaks = rule_breaks(import_graph(package), {"widgets": ("reference",), "training": ("reference",)})
    assert breaks == ["gpt2course.widgets.plot imports gpt2course.training.run (line 1): gpt2course.widgets "
                      "may import only reference"]
