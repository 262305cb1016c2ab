"""nbgrader's command line as grader.course runs it: ``python -m grader.run_nbgrader ARGS``.

The same as ``python -m nbgrader ARGS`` run in a course folder, with three differences. Two only
make it faster: importing ``grader`` first keeps a slow optional import out (see
grader/__init__.py), and ``generate_assignment`` takes several assignment names and makes them
all in this one process, through nbgrader's own API, instead of one process each (a course's
eleven notebooks: 72 s as eleven processes on the 2-core test machine); ``release_assignment``
(to an exchange) likewise. The third: ``autograde``
runs inside ``grader.nbgrader_ext.course_pipeline()``, the one place where the course folder's
nbgrader lets autograde run (on the staged copies that grader.course passes as
``--CourseDirectory.submitted_directory``); a stock ``nbgrader autograde`` there stops at once.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import grader  # noqa: F401 - before nbgrader, for the import it keeps out


BATCHED = ("generate_assignment", "release_assignment")   # several names, one process


def run_batched(step: str, names: list[str], force: bool) -> int:
    """``step`` (one of BATCHED) for each of ``names`` through nbgrader's API in this process."""
    from nbgrader.apps.api import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=str(Path.cwd())).load_config()
    config.ExchangeReleaseAssignment.force = force
    api = NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)
    for name in names:
        if step == "generate_assignment":
            result = api.generate_assignment(name, force=force)
        else:
            result = api.release_assignment(name)
        if not result["success"]:
            sys.stderr.write(f"{step} {name} failed:\n{result.get('log', '')}\n"
                             f"{result.get('error', '')}\n")
            return 1
    return 0


def main(argv: list[str]) -> int:
    if argv and argv[0] in BATCHED:
        names = [a for a in argv[1:] if not a.startswith("-")]
        flags = [a for a in argv[1:] if a.startswith("-")]
        if names and set(flags) <= {"--force"}:
            return run_batched(argv[0], names, force="--force" in flags)
    from nbgrader.apps.nbgraderapp import main as nbgrader_main

    from .nbgrader_ext import course_pipeline
    sys.argv = ["nbgrader", *argv]
    with course_pipeline() if argv[:1] == ["autograde"] else contextlib.nullcontext():
        nbgrader_main()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
