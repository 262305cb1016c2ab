"""The built wheel holds every module of the packages, subpackages included."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile

from conftest import REPO


def test_wheel_holds_every_module(tmp_path):
    # Built from a copy, so that no build/ folder left by an earlier build can fill the gaps.
    source = tmp_path / "source"
    for name in ("pyproject.toml", "README.md"):
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / name, source / name)
    for package in ("gpt2course", "grader"):
        shutil.copytree(REPO / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                           "--no-build-isolation", "-w", str(tmp_path), str(source)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    wheel, = tmp_path.glob("gpt2course-*.whl")
    inside = {n for n in zipfile.ZipFile(wheel).namelist() if n.endswith(".py")}
    sources = {str(p.relative_to(REPO)) for package in ("gpt2course", "grader")
               for p in (REPO / package).rglob("*.py") if "__pycache__" not in p.parts}
    assert sources - inside == set(), f"modules missing from the wheel: {sorted(sources - inside)}"
    for package in ("gpt2course/reference", "gpt2course/checks", "gpt2course/training", "gpt2course/widgets"):
        assert f"{package}/__init__.py" in inside
