"""environment.yml (conda) and pyproject.toml ask for the same packages with the same bounds; the
Python versions the files state agree; `make lab` installs the learners' extra only; the README's
commands exist."""

from __future__ import annotations

import ast
import re
import subprocess
import tomllib

import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from conftest import REPO

CONDA_NAMES = {"pytorch": "torch"}   # conda-forge's name -> the Python package's
MAINTAINERS_ONLY = {"nbgrader", "pytest", "pytest-xdist", "hypothesis", "transformers", "playwright"}


def _project() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def _environment() -> dict:
    return yaml.safe_load((REPO / "environment.yml").read_text())


def _bounds(requirements) -> dict[str, SpecifierSet]:
    out = {}
    for text in requirements:
        req = Requirement(text.split("#")[0].strip().replace("_", "-"))
        name = CONDA_NAMES.get(req.name.lower(), req.name.lower())
        out[name] = req.specifier
    return out


def _environment_bounds() -> dict[str, SpecifierSet]:
    deps = _environment()["dependencies"]
    conda = [d for d in deps if isinstance(d, str) and d != "pip"]
    pip = [d for entry in deps if isinstance(entry, dict) for d in entry.get("pip", [])]
    return _bounds(conda + pip)


def test_environment_yml_mirrors_pyproject():
    """Every library and dev requirement of pyproject.toml is in environment.yml with the same
    version bounds (the Python bound is compared below)."""
    project = _project()
    wanted = _bounds(project["dependencies"] + project["optional-dependencies"]["dev"]
                     + project["optional-dependencies"]["lab"])
    have = _environment_bounds()
    have.pop("python")
    assert set(wanted) <= set(have), f"missing from environment.yml: {sorted(set(wanted) - set(have))}"
    differ = {name: (str(wanted[name]), str(have[name])) for name in wanted if wanted[name] != have[name]}
    assert differ == {}, f"bounds differ (pyproject, environment.yml): {differ}"
    assert set(have) <= set(wanted), f"only in environment.yml: {sorted(set(have) - set(wanted))}"
    assert "conda-forge" in _environment()["channels"]


def test_python_versions_agree():
    """The package runs on 3.10 (the Gradescope images' oldest Python, which setup.sh checks);
    the development environment, the tests and CI use 3.11, as environment.yml and the README's
    Quick start say."""
    package = SpecifierSet(_project()["requires-python"])
    assert package == SpecifierSet(">=3.10")
    assert "sys.version_info < (3, 10)" in (REPO / "grader" / "gradescope_scripts.py").read_text()
    development = _environment_bounds()["python"]
    assert development == SpecifierSet(">=3.11")
    readme = (REPO / "README.md").read_text()
    quick_start = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    assert "Python 3.11 or newer" in quick_start and "3.10" in quick_start
    assert "Python 3.10 or\n  newer" in readme or "Python 3.10 or newer" in readme


def test_the_packages_parse_as_python_3_10():
    """requires-python says 3.10: no module of the packages uses newer syntax."""
    for package in ("gpt2course", "grader"):
        for path in (REPO / package).rglob("*.py"):
            ast.parse(path.read_text(), filename=str(path), feature_version=(3, 10))


def test_lab_extra_is_the_learners():
    """`make lab` installs `.[lab]` (JupyterLab and its kernel) and not the maintainers' tools."""
    extras = _project()["optional-dependencies"]
    lab = set(_bounds(extras["lab"]))
    assert {"jupyterlab", "ipykernel"} <= lab and not lab & MAINTAINERS_ONLY
    assert MAINTAINERS_ONLY <= set(_bounds(extras["dev"]))
    dry = subprocess.run(["make", "-n", "-B", "lab"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert dry.returncode == 0, dry.stderr
    assert '-e ".[lab]"' in dry.stdout and ".[dev]" not in dry.stdout
    dry = subprocess.run(["make", "-n", "-B", "setup"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert '-e ".[dev]"' in dry.stdout


def test_readme_commands_are_make_targets():
    readme = (REPO / "README.md").read_text()
    makefile = (REPO / "Makefile").read_text()
    for target in ("lab", "test", "test-all", "notebooks"):
        assert f"make {target}" in readme
        assert re.search(rf"^{target}:", makefile, re.M)
    for variable in ("LAB_FLAGS", "TORCH_CPU_INDEX"):
        assert variable in readme and re.search(rf"^{variable} \?=", makefile, re.M), variable
    quick_start = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    assert "git clone" in quick_start.split("make lab")[0], "the Quick start begins with the clone"
    ci = (REPO / ".ci" / "run").read_text()
    assert "make test" in ci
