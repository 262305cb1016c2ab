"""The course as a real package: the sdist and the wheel built from it carry every module and the
course files (data/, solutions/), and the installed wheel works outside the checkout."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest

from conftest import REPO

from gpt2course.datafiles import CHECKSUMS, sha256

PACKAGES = ("gpt2course", "grader")
# What a build needs; copied so that no build/ folder or stray file of the checkout fills a gap.
BUILD_INPUTS = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", *PACKAGES, "data", "solutions")


SKIP = ("__pycache__", ".ipynb_checkpoints", "_data", "_solutions")   # never built from


def _build_files(folder: str) -> set[str]:
    """The files under ``folder`` (relative to the repository) that a build takes: the working
    tree's, as `pip install .` would, less caches and the build's own copies."""
    return {str(p.relative_to(REPO)) for p in (REPO / folder).rglob("*")
            if p.is_file() and not set(p.relative_to(REPO).parts) & set(SKIP)}


@pytest.fixture(scope="module")
def dists(tmp_path_factory) -> dict[str, Path]:
    """The sdist built from a copy of the checkout's tracked files, and the wheel built from it."""
    tmp = tmp_path_factory.mktemp("dist")
    source = tmp / "source"
    for name in BUILD_INPUTS:
        for rel in _build_files(name) if (REPO / name).is_dir() else {name}:
            (source / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(REPO / rel, source / rel)
    out = tmp / "out"
    proc = subprocess.run([sys.executable, "-c", "import sys; from setuptools import build_meta; "
                           "print(build_meta.build_sdist(sys.argv[1]))", str(out)],
                          cwd=source, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    sdist = out / proc.stdout.split()[-1]
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-index",
                           "--no-build-isolation", "-w", str(out), str(sdist)],
                          cwd=tmp, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    wheel, = out.glob("gpt2course-*.whl")
    return {"sdist": sdist, "wheel": wheel}


def test_wheel_holds_every_module_and_the_course_files(dists):
    names = set(zipfile.ZipFile(dists["wheel"]).namelist())
    sources = {rel for package in PACKAGES for rel in _build_files(package) if rel.endswith(".py")}
    assert sources - names == set(), f"modules missing from the wheel: {sorted(sources - names)}"
    for package in ("gpt2course/reference", "gpt2course/checks", "gpt2course/training", "gpt2course/widgets"):
        assert f"{package}/__init__.py" in names
    data = {"gpt2course/_data/" + rel.removeprefix("data/") for rel in _build_files("data")}
    solutions = {"grader/_solutions/" + rel.removeprefix("solutions/") for rel in _build_files("solutions")}
    assert data - names == set(), f"data files missing from the wheel: {sorted(data - names)}"
    assert solutions - names == set(), f"source notebooks missing from the wheel: {sorted(solutions - names)}"
    assert not any(n.startswith(("data/", "solutions/", "tests/")) for n in names), "stray top-level folders"
    with zipfile.ZipFile(dists["wheel"]) as wheel:
        for name, digest in CHECKSUMS.items():
            assert hashlib.sha256(wheel.read(f"gpt2course/_data/{name}")).hexdigest() == digest


def test_sdist_holds_what_a_wheel_is_built_from(dists):
    with tarfile.open(dists["sdist"]) as sdist:
        top = sdist.getnames()[0].split("/")[0]
        names = {n.removeprefix(top + "/") for n in sdist.getnames()}
    wanted = {"pyproject.toml", "setup.py", "MANIFEST.in", "README.md",
              *_build_files("data"), *_build_files("solutions"),
              *(rel for package in PACKAGES for rel in _build_files(package))}
    assert wanted - names == set(), f"missing from the sdist: {sorted(wanted - names)}"


# Run inside the fresh environment: where everything comes from, the data, the tokenizer, and
# an import of every module of both packages.
INSIDE = r"""
import importlib, json, pkgutil, sys
from pathlib import Path
checkout = Path(sys.argv[1]).resolve()
# The dependencies' folder may lie inside the checkout (.venv), the checkout itself may not.
assert checkout not in [Path(p or ".").resolve() for p in sys.path], f"the checkout is on sys.path: {sys.path}"
import gpt2course, grader
from gpt2course import data, datafiles, tokenizer
from grader import paths
enc = tokenizer.gpt2_encoding()
modules = []
for package in (gpt2course, grader):
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        if info.name.split(".")[-1] == "__main__":
            continue
        module = importlib.import_module(info.name)
        assert checkout not in Path(module.__file__).resolve().parents, module.__file__
        modules.append(info.name)
print(json.dumps({
    "files": [gpt2course.__file__, grader.__file__],
    "data_dir": str(datafiles.data_dir()),
    "solutions": str(paths.SOLUTIONS),
    "shakespeare": len(data.load_shakespeare()),
    "tokens": enc.encode("Hello world<|endoftext|>", allowed_special="all"),
    "modules": modules,
}))
"""


def _link_dependencies(have: Path, site: Path) -> None:
    """This environment's installed packages, less the course's own (its editable install), into
    ``site``: hard links where the file system allows (a second or two for torch), else copies.
    Real files, not a path to this environment, because the grading sandbox mounts only the
    environment that runs it."""
    own = ("gpt2course", "grader", "__editable__", "_gpt2course", "__pycache__")
    for entry in have.iterdir():
        if entry.name.startswith(own) or (site / entry.name).exists():
            continue
        if entry.is_dir():
            try:
                shutil.copytree(entry, site / entry.name, symlinks=True, copy_function=os.link)
            except (OSError, shutil.Error):
                shutil.rmtree(site / entry.name, ignore_errors=True)
                shutil.copytree(entry, site / entry.name, symlinks=True)
        else:
            shutil.copy2(entry, site / entry.name)


@pytest.mark.slow
def test_installed_wheel_works_outside_the_checkout(dists, tmp_path):
    """A fresh virtual environment outside the checkout gets the wheel and nothing else of the
    course; torch and the other dependencies are linked in from this environment (so nothing is
    downloaded); no PYTHONPATH, run from a folder outside the checkout."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    proc = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet",
                           "--no-deps", "--no-index", str(dists["wheel"])],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    _link_dependencies(Path(sysconfig.get_paths()["purelib"]), site)
    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "GPT2COURSE_DATA", "VIRTUAL_ENV")}
    env.update(GPT2COURSE_FAST="1", PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}")

    def run(*args: str) -> subprocess.CompletedProcess:
        proc = subprocess.run([str(python), *args], cwd=work, env=env, capture_output=True, text=True,
                              timeout=600)
        assert proc.returncode == 0, f"{args[:3]}: {proc.stderr[-3000:]}"
        return proc

    report = json.loads(run("-c", INSIDE, str(REPO)).stdout.splitlines()[-1])
    for file in report["files"]:
        assert Path(file).resolve().is_relative_to(site.resolve()), file
    assert Path(report["data_dir"]) == site.resolve() / "gpt2course" / "_data"
    assert Path(report["solutions"]) == site.resolve() / "grader" / "_solutions"
    assert report["tokens"] == [15496, 995, 50256]
    assert report["shakespeare"] == 1_115_394
    expected = {rel.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
                for package in PACKAGES for rel in _build_files(package)
                if rel.endswith(".py") and not rel.endswith("__main__.py")} - set(PACKAGES)
    assert expected - set(report["modules"]) == set(), "modules not imported"

    weights = site / "gpt2course" / "_data" / "fixtures" / "tiny_gpt2.safetensors"
    assert sha256(weights) == sha256(REPO / "data" / "fixtures" / "tiny_gpt2.safetensors")
    out = run("-m", "gpt2course", "generate", "--weights", str(weights), "--prompt", "abc",
              "--max-new-tokens", "8", "--seed", "0", "--device", "cpu").stdout
    assert out.startswith("abc") and len(out.rstrip("\n")) > len("abc"), out

    solved = work / "00_welcome.ipynb"
    shutil.copy(REPO / "solutions" / "00_welcome.ipynb", solved)
    graded = json.loads(run("-m", "grader", "check", "--json", str(solved)).stdout)
    assert graded["score"] == graded["max_score"] > 0, graded
