"""The one build step pyproject.toml cannot declare: ship the repository's course files inside
the packages.

In the repository the data (``data/``) and the source notebooks (``solutions/``) sit beside the
packages, once. A wheel built from the repository or from its sdist gets a copy of them inside
the packages, where an installed course finds them (``gpt2course.datafiles.data_dir``,
``grader.paths.SOLUTIONS``):

    data/       -> gpt2course/_data/
    solutions/  -> grader/_solutions/

Editable installs (``pip install -e .``) copy nothing: there the packages read the checkout.
The sdist carries ``data/`` and ``solutions/`` as they are (MANIFEST.in).
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
# folder in the repository -> folder inside the built packages
COPIES = {"data": "gpt2course/_data", "solutions": "grader/_solutions"}
SKIP = shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints", ".*")


class BuildPyWithCourseFiles(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return
        for source, target in COPIES.items():
            if not (ROOT / source).is_dir():
                raise SystemExit(f"setup.py: {source}/ is missing; build from the repository or its sdist")
            dest = Path(self.build_lib) / target
            shutil.rmtree(dest, ignore_errors=True)
            shutil.copytree(ROOT / source, dest, ignore=SKIP)


setup(cmdclass={"build_py": BuildPyWithCourseFiles})
