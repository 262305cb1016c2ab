"""environment.yml (conda) and pyproject.toml ask for the same packages; the README's commands exist."""

from __future__ import annotations

import re
import tomllib

import yaml

from conftest import REPO


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_environment_yml_mirrors_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = {_name(r) for r in project["dependencies"] + project["optional-dependencies"]["dev"]}
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    conda = {_name(d) for d in env["dependencies"] if isinstance(d, str)}
    pip = {_name(d) for d in env["dependencies"] if isinstance(d, dict) for d in d.get("pip", [])}
    conda_names = {"pytorch": "torch"}
    have = {conda_names.get(n, n) for n in conda} | pip
    assert wanted <= have, f"missing from environment.yml: {sorted(wanted - have)}"
    assert "conda-forge" in env["channels"]


def test_readme_commands_are_make_targets():
    readme = (REPO / "README.md").read_text()
    makefile = (REPO / "Makefile").read_text()
    for target in ("lab", "test"):
        assert f"make {target}" in readme
        assert re.search(rf"^{target}:", makefile, re.M)
    ci = (REPO / ".ci" / "run").read_text()
    assert "make test" in ci
