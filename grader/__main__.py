"""Command line of the grading tools: ``python -m grader --help``."""

from __future__ import annotations

import argparse
import json
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grader", description=(
        "Grading tools of the GPT-2 course. 'check' grades one notebook; 'build' regenerates "
        "the learner notebooks from solutions/."))
    sub = parser.add_subparsers(dest="command", required=True)

    check = sub.add_parser("check", help="grade one learner notebook (visible and hidden tests)",
                           description=(
        "Grade NOTEBOOK against its source in solutions/ (matched by its NN_ number). The "
        "learner's code runs in a sandbox with a per-cell time limit, a memory limit and no "
        "network, and only computes outputs on inputs the grader chooses; the grader itself "
        "compares them and awards the points. The file is never modified. Exit status: 0 when "
        "a grade was produced (even 0 points), 2 with a one-line reason when the file cannot "
        "be graded."))
    check.add_argument("notebook", help="the learner's .ipynb file")
    check.add_argument("--json", action="store_true", help="print one JSON object")
    check.add_argument("--timeout", type=int, default=None, help="seconds per cell (default 60)")
    check.add_argument("--call-timeout", type=int, default=None,
                       help="seconds per call of a learner's function by the checks (default 30)")
    check.add_argument("--seed", default=None,
                       help="fix the grading inputs (default: fresh random inputs every run)")
    check.add_argument("--source", default=None, help="grade against this source notebook instead")

    build = sub.add_parser("build", help="regenerate notebooks/ from solutions/ with nbgrader",
                           description=(
        "Run nbgrader generate_assignment on every solutions/NN_*.ipynb in a throw-away course "
        "folder and write the learner versions to notebooks/."))
    build.add_argument("--check", action="store_true",
                       help="write nothing; exit 1 when notebooks/ differs from a fresh build")

    args = parser.parse_args(argv)
    if args.command == "check":
        from . import sandbox
        from .check import CALL_TIMEOUT, DEFAULT_CELL_TIMEOUT, UngradableNotebook, grade, render
        try:
            result = grade(args.notebook, timeout=args.timeout or DEFAULT_CELL_TIMEOUT,
                           call_timeout=args.call_timeout or CALL_TIMEOUT, source=args.source,
                           salt=args.seed)
        except UngradableNotebook as exc:
            print(f"cannot grade: {exc}", file=sys.stderr)
            return 2
        print(json.dumps(result.to_json()) if args.json else render(result))
        if sandbox.available() != "bwrap":
            print(f"grader: {sandbox.describe()}", file=sys.stderr)
        return 0
    if args.command == "build":
        from .build import build_notebooks
        return build_notebooks(check=args.check)
    return 2


if __name__ == "__main__":
    sys.exit(main())
