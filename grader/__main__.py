"""Command line of the grading tools: ``python -m grader --help``."""

from __future__ import annotations

import argparse
import json
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grader", description=(
        "Grading tools of the GPT-2 course. 'check' grades one notebook; 'build' regenerates "
        "the learner notebooks and gpt2course/reference/ from solutions/."))
    sub = parser.add_subparsers(dest="command", required=True)

    check = sub.add_parser("check", help="grade one learner notebook (visible and hidden tests)",
                           description=(
        "Grade NOTEBOOK against its source in solutions/ (matched by its NN_ number). The "
        "learner's code runs in a sandbox with a per-cell time limit, a total limit of 15 "
        "minutes per notebook, a memory limit and no network, and only computes outputs on "
        "inputs the grader chooses; the grader itself "
        "compares them and awards the points. The file is never modified. Exit status: 0 when "
        "a grade was produced (even 0 points), 2 with a one-line reason when the file cannot "
        "be graded."))
    check.add_argument("notebook", help="the learner's .ipynb file")
    check.add_argument("--json", action="store_true", help="print one JSON object")
    check.add_argument("--timeout", type=int, default=None, help="seconds per cell (default 60)")
    check.add_argument("--call-timeout", type=int, default=None,
                       help="seconds per call of a learner's function by the checks (default 30)")
    check.add_argument("--seed", default=None,
                       help="vary the grading inputs: another seed, other hidden inputs (default: the "
                            "same inputs every run, so the same file always gets the same grade)")
    check.add_argument("--source", default=None, help="grade against this source notebook instead")

    build = sub.add_parser("build", help="regenerate notebooks/ and gpt2course/reference/ from solutions/",
                           description=(
        "Write the Colab badges and clone URLs in solutions/ and the README's course map from "
        "gpt2course.REPO_OWNER / REPO_NAME / REPO_BRANCH; write the code of every module of "
        "gpt2course/reference/ below its marker line from the answer cells that line names; then "
        "run nbgrader generate_assignment on every solutions/NN_*.ipynb in a throw-away course "
        "folder and write the learner versions to notebooks/."))
    build.add_argument("--check", action="store_true",
                       help="write nothing; exit 1 when notebooks/ differs from a fresh build, a "
                            "reference module differs from its answer cells, or a link disagrees "
                            "with the setting")

    course = sub.add_parser("course", help="the class workflow on nbgrader (init, collect, autograde, feedback, export)",
                            description="The instructor's class workflow; see README (For instructors).")
    steps = course.add_subparsers(dest="step", required=True)
    step = steps.add_parser("init", help="create an nbgrader course folder and release every notebook")
    step.add_argument("root", help="the course folder to create or update")
    step.add_argument("--students", help="CSV of students (nbgrader db student import format)")
    step.add_argument("--db", help="gradebook database URL (default: sqlite in the course folder)")
    step.add_argument("--course-id", default="gpt2course")
    step = steps.add_parser("collect", help="collect LMS downloads into submitted/")
    step.add_argument("root")
    step.add_argument("assignment", help="e.g. 01_tokens_and_data")
    step.add_argument("downloads", help="folder of <student>_*.ipynb, <student>_*.zip or <student>/ folders")
    step.add_argument("--pattern", default=None,
                      help="regular expression finding the student id in a file name, with a group "
                           "named student (default: everything before the first '_' or space)")
    step = steps.add_parser("autograde", help="grade every submission (sandboxed, in parallel) into the gradebook")
    step.add_argument("root")
    step.add_argument("assignment")
    step.add_argument("--jobs", type=int, default=None, help="parallel graders (default: all cores)")
    step.add_argument("--timeout", type=int, default=60, help="seconds per notebook cell (default 60)")
    step = steps.add_parser("feedback", help="write HTML feedback (no hidden tests) to feedback/")
    step.add_argument("root")
    step.add_argument("assignment")
    step = steps.add_parser("export", help="export every grade to a CSV file")
    step.add_argument("root")
    step.add_argument("csv")

    bench = sub.add_parser("bench", help="time grading one learner's full series (sequential and parallel)")
    bench.add_argument("--jobs", type=int, default=2)

    args = parser.parse_args(argv)
    if args.command == "bench":
        from .bench import run
        run(jobs=args.jobs)
        return 0
    if args.command == "course":
        from pathlib import Path

        from . import course as workflow
        root = Path(args.root)
        if args.step == "init":
            workflow.init(root, db_url=args.db, course_id=args.course_id,
                          students=Path(args.students) if args.students else None)
        elif args.step == "collect":
            import re
            pattern = re.compile(args.pattern) if args.pattern else workflow.STUDENT_ID
            if "student" not in pattern.groupindex:
                parser.error("--pattern needs a group named student, e.g. '^(?P<student>[^-]+)-'")
            workflow.collect(root, args.assignment, Path(args.downloads), pattern=pattern)
        elif args.step == "autograde":
            workflow.autograde(root, args.assignment, jobs=args.jobs, timeout=args.timeout)
        elif args.step == "feedback":
            workflow.feedback(root, args.assignment)
        elif args.step == "export":
            workflow.export(root, Path(args.csv))
        return 0
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
    try:
        sys.exit(main())
    except BrokenPipeError:  # the reader went away (e.g. `| head`): not an error of ours
        import os
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
