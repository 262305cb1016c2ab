"""Static review of answer cells: patterns that tamper with grading rather than answer.

An answer cell should hold one exercise's definition. Code that reaches into the interpreter,
the notebook machinery, other files or the course's own solutions is flagged, and the reason
goes to the report and the review CSV for an instructor to look at. A flag changes no points:
integrity comes from the sandbox and the trusted verification (grader.check), which hold with
this review switched off. The patterns are generic (no knowledge of any exercise).
"""

from __future__ import annotations

import ast
import re

# Modules an answer cell has no business importing.
FORBIDDEN_MODULES = {
    "gpt2course": "imports the course package (its reference solutions)",
    "grader": "imports the grader",
    "importlib": "imports modules dynamically",
    "ctypes": "uses ctypes", "gc": "inspects the garbage collector", "inspect": "inspects frames",
    "subprocess": "starts processes", "socket": "uses the network", "signal": "handles signals",
    "builtins": "touches builtins", "IPython": "reaches into IPython", "nbformat": "reads notebooks",
    "nbgrader": "reaches into nbgrader", "pickle": "uses pickle", "marshal": "uses marshal",
    "multiprocessing": "starts processes", "threading": "starts threads", "shutil": "manipulates files",
    "pathlib": "reads files", "glob": "lists files", "tempfile": "writes files", "io": "does raw I/O",
    "atexit": "registers exit hooks", "traceback": "rewrites tracebacks", "sqlite3": "opens databases",
    "urllib": "uses the network", "http": "uses the network", "requests": "uses the network",
    "unittest": "patches test machinery", "pytest": "patches test machinery",
}
FORBIDDEN_CALLS = {
    "__import__": "imports modules dynamically", "exec": "executes generated code",
    "eval": "evaluates generated code", "compile": "compiles generated code",
    "open": "opens files", "globals": "rewrites the notebook's globals", "locals": "reads frames",
    "vars": "reads namespaces", "setattr": "sets attributes dynamically",
    "delattr": "deletes attributes", "get_ipython": "reaches into IPython", "breakpoint": "starts a debugger",
    "input": "waits for input",
}
FORBIDDEN_ATTRIBUTES = {
    "_exit": "kills the process", "exit": "exits the process", "abort": "kills the process",
    "system": "runs shell commands", "popen": "runs shell commands", "fork": "forks",
    "kill": "sends signals", "modules": "rewrites sys.modules", "_getframe": "reads frames",
    "settrace": "traces execution", "setprofile": "profiles execution", "meta_path": "hooks imports",
    "path_hooks": "hooks imports", "excepthook": "rewrites error handling",
    "set_custom_exc": "rewrites error handling", "input_transformers_cleanup": "rewrites later cells",
    "input_transformers_post": "rewrites later cells", "register_magic_function": "defines magics",
    "environ": "reads or changes the environment", "putenv": "changes the environment",
    "__subclasses__": "walks the class hierarchy", "__globals__": "reads function globals",
    "__code__": "rewrites code objects", "__builtins__": "touches builtins",
    "__torch_function__": "overrides torch dispatch", "__torch_dispatch__": "overrides torch dispatch",
    "fromfile": "reads files", "loadtxt": "reads files", "genfromtxt": "reads files",
    "memmap": "maps files", "read_text": "reads files", "read_bytes": "reads files",
    "write_text": "writes files", "write_bytes": "writes files", "listdir": "lists files",
    "scandir": "lists files", "walk": "walks folders", "load": "loads files", "save": "writes files",
    "events": "hooks notebook events", "register": "registers hooks",
}
# Forbidden attribute names that are also honest methods when called (``self.modules()``).
CALLABLE_ATTRIBUTES = {"modules"}
# Names of the test machinery: an answer cell that rebinds them is tampering.
TEST_HELPERS = {"check", "run_check", "CheckFailed"}
# Methods whose definition on a class overrides how tensors or comparisons behave.
FORBIDDEN_METHODS = {"__torch_function__": "overrides torch dispatch",
                     "__torch_dispatch__": "overrides torch dispatch",
                     "__array_function__": "overrides NumPy dispatch",
                     "__array_ufunc__": "overrides NumPy dispatch"}
SUSPICIOUS_TEXT = re.compile(r"solutions/|gradebook|nbgrader|BEGIN HIDDEN|autograded|/proc/")


def _module_names(tree) -> set[str]:
    """Names bound to imported modules (``import torch`` -> torch, ``import numpy as np`` -> np)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            names |= {a.asname or a.name for a in node.names}
    return names | {"torch", "np", "numpy", "F", "nn", "math", "sys", "os"}


def _root_name(node) -> str | None:
    while isinstance(node, ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


class Unreadable(Exception):
    """Source that Python's parser cannot turn into a tree (the message says why)."""


def parse(source: str) -> ast.Module:
    """``ast.parse(source)``; SyntaxError for code that is not Python, ``Unreadable`` for code
    the parser gives up on (nested too deeply for its recursion or memory, not encodable)."""
    try:
        return ast.parse(source)
    except SyntaxError:
        raise
    except (RecursionError, MemoryError):
        raise Unreadable("nested too deeply for Python's parser") from None
    except (ValueError, UnicodeError) as exc:
        raise Unreadable(f"not readable as Python ({type(exc).__name__})") from None


def review(source: str) -> list[str]:
    """Reasons this answer cell is flagged (empty when it looks like an honest answer)."""
    reasons = []
    if SUSPICIOUS_TEXT.search(source):
        reasons.append("mentions grading files or markers")
    if re.search(r"^\s*[%!]", source, re.M):
        reasons.append("uses IPython magics or shell commands")
    try:
        tree = parse(source)
    except SyntaxError:
        return reasons  # a syntax error fails on its own; nothing to review
    except Unreadable as exc:
        return sorted(set(reasons + [f"its code could not be reviewed ({exc})"]))
    try:
        return sorted(set(reasons + _review_tree(tree)))
    except (RecursionError, MemoryError):
        return sorted(set(reasons + ["its code could not be reviewed (nested too deeply)"]))


def _review_tree(tree) -> list[str]:
    reasons = []
    modules = _module_names(tree)
    # nn.Module.modules() is an honest method call; sys.modules is only ever read, never called.
    module_method_calls = {id(node.func) for node in ast.walk(tree)
                           if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                           and node.func.attr in CALLABLE_ATTRIBUTES}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name in TEST_HELPERS:
            reasons.append(f"redefines the test helper {node.name}")
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            for name in names:
                top = name.split(".")[0]
                if top in FORBIDDEN_MODULES:
                    reasons.append(f"{FORBIDDEN_MODULES[top]} (import {name})")
                if isinstance(node, ast.ImportFrom) and node.level:
                    reasons.append("uses a relative import")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in FORBIDDEN_CALLS:
            reasons.append(f"{FORBIDDEN_CALLS[node.func.id]} ({node.func.id}(...))")
        elif isinstance(node, ast.Name) and node.id in {"__builtins__", "__import__", "get_ipython", "exec", "eval"}:
            reasons.append(f"refers to {node.id}")
        elif (isinstance(node, ast.Attribute) and node.attr in FORBIDDEN_ATTRIBUTES
              and id(node) not in module_method_calls):
            reasons.append(f"{FORBIDDEN_ATTRIBUTES[node.attr]} (.{node.attr})")
        elif isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Delete)):
            targets = node.targets if isinstance(node, (ast.Assign, ast.Delete)) else [node.target]
            for target in targets:
                if isinstance(target, ast.Attribute) and _root_name(target) in modules:
                    reasons.append(f"modifies a library ({ast.unparse(target)} = ...)")
                if isinstance(target, ast.Name) and target.id in TEST_HELPERS:
                    reasons.append(f"rebinds the test helper {target.id}")
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in FORBIDDEN_METHODS:
            reasons.append(f"{FORBIDDEN_METHODS[node.name]} (def {node.name})")
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            reasons.append(f"rebinds names outside its function ({', '.join(node.names)})")
    return reasons


def _tree(source: str) -> ast.Module | None:
    """``parse(source)``, or None for code that is not Python or that the parser gives up on."""
    try:
        return parse(source)
    except (SyntaxError, Unreadable):
        return None


def bound_names(source: str) -> set[str]:
    """Every name a cell binds at its top level (def, class, assignment, import, for, with);
    empty when the cell cannot be parsed."""
    names = set()
    for node in getattr(_tree(source), "body", []):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        else:
            try:
                names.update(n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store))
            except RecursionError:
                pass
    return names


def import_lines(source: str) -> list[str]:
    """The top-level import statements of a cell, as text (``from __future__`` left out);
    none when the cell cannot be parsed."""
    return [ast.unparse(node) for node in getattr(_tree(source), "body", [])
            if isinstance(node, ast.Import) or (isinstance(node, ast.ImportFrom) and node.module != "__future__")]


def defined_names(source: str) -> list[str]:
    """Top-level functions and classes a cell defines (for matching cells without metadata)."""
    tree = _tree(source)
    if tree is None:
        return re.findall(r"^(?:def|class)\s+([A-Za-z_]\w*)", source, re.M)
    return [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
