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
    step = steps.add_parser("init", help="create or update an nbgrader course folder and release every notebook",
                            description=(
        "Create the course folder, or update it: safe to re-run. New and changed notebooks of "
        "solutions/ are released; unchanged ones are left alone; an assignment with submissions is "
        "never rewritten (a changed notebook for it is refused, exit status 1: release it with "
        "--new-version). --students adds and updates students, grades are kept. Settings given "
        "once (--db, --course-id, --late-penalty) are kept by later runs."))
    step.add_argument("root", help="the course folder to create or update")
    step.add_argument("--students", help="roster CSV with a header row: id (required), first_name, last_name, "
                                         "email, lms_user_id (Canvas user id / Moodle participant id)")
    step.add_argument("--db", help="gradebook database URL (default: sqlite in the course folder)")
    step.add_argument("--course-id", default=None, help="nbgrader course id (default: gpt2course)")
    step.add_argument("--late-penalty", default=None, metavar="RULE",
                      help="for submissions after the due date (collect --due): none (marked late, no "
                           "penalty; the default), zero (no credit), or a fraction such as 0.1 or 10%% "
                           "of the score taken off per started day late")
    step.add_argument("--new-version", action="append", default=[], metavar="NOTEBOOK=ASSIGNMENT",
                      help="release a changed notebook (e.g. 00_welcome) as a new assignment (e.g. "
                           "00_welcome_v2), leaving the old one and its submissions as they are")
    step.add_argument("--solutions", metavar="DIR",
                      help="the folder of source notebooks NN_name.ipynb (default: the course's solutions/): "
                           "a copy of it with your own written questions added, or a few notebooks only")
    step.add_argument("--exchange", help="nbgrader exchange folder (JupyterHub): written to the course's "
                                         "config as c.Exchange.root (created world-writable), every assignment "
                                         "released through it; a later init without it keeps it")
    step = steps.add_parser("collect", help="collect LMS downloads into submitted/")
    step.add_argument("root")
    step.add_argument("assignment", help="e.g. 01_tokens_and_data")
    step.add_argument("downloads", nargs="?",
                      help="an LMS download, as a folder or its zip: Canvas or Moodle bulk-download names, "
                           "<student>_*.ipynb, <student>_*.zip or <student>/ folders, <student> a roster id, "
                           "email or LMS user id (left out: nbgrader collect from the course's exchange)")
    step.add_argument("--timestamps", metavar="CSV",
                      help="the LMS's submission times: columns student (id, email or LMS user id) and "
                           "timestamp (ISO 8601); otherwise zip entry times, then file times")
    step.add_argument("--due", metavar="ISO-TIME",
                      help="the assignment's due date (e.g. 2026-10-01T23:59:00+02:00; no zone: UTC), "
                           "recorded in the gradebook: later submissions get the late penalty")
    step.add_argument("--exchange", action="store_true",
                      help="collect from the nbgrader exchange named in the course's config (nbgrader "
                           "collect: each submission keeps its own timestamp)")
    step.add_argument("--pattern", default=None,
                      help="regular expression finding the student id in a file name, with a group "
                           "named student, for names that are no LMS's (default: everything before "
                           "the first '_' or space)")
    step = steps.add_parser(
        "autograde", help="grade new and changed submissions (sandboxed, in parallel) into the gradebook",
        description=(
            "Grade the submissions of ASSIGNMENT that are new or changed since they were last graded "
            "(the submitted files, their timestamp or the course's source notebook differ), record them "
            "in the gradebook and write reports/ASSIGNMENT-review.csv for every submission. Written "
            "answers and tasks are left to be graded by hand (formgrader). Grades given by hand "
            "(manual scores, extra credit, comments) survive a regrade. With --scheduler or --cluster "
            "the submissions are graded on a Dask cluster's workers (each in its own sandbox; a "
            "worker that dies has its submission graded again elsewhere) and recorded here; the "
            "review's worker column names who graded each. See README (Grading past one machine)."))
    step.add_argument("root")
    step.add_argument("assignment")
    where = step.add_mutually_exclusive_group()
    where.add_argument("--jobs", type=int, default=None, help="parallel graders on this machine (default: all cores)")
    where.add_argument("--scheduler", metavar="ADDRESS",
                       help="grade on the Dask cluster of this scheduler (e.g. tcp://HOST:8786), whose "
                            "workers ('dask worker ADDRESS --nthreads 1') have the same version of the course "
                            "installed; needs dask.distributed (dev extras)")
    where.add_argument("--cluster", metavar="local:N",
                       help="start a Dask cluster of N worker processes on this machine for the run "
                            "(e.g. local:4); needs dask.distributed (dev extras)")
    step.add_argument("--timeout", type=int, default=60, help="seconds per notebook cell (default 60)")
    which = step.add_mutually_exclusive_group()
    which.add_argument("--student", action="append", metavar="ID",
                       help="regrade this student's submission, changed or not (repeat for several)")
    which.add_argument("--all", action="store_true", dest="regrade_all",
                       help="regrade every submission, changed or not")
    step = steps.add_parser("feedback", help="write HTML feedback (no hidden tests) to feedback/, one zip per "
                                             "student to feedback_archives/, and release it to the exchange")
    step.add_argument("root")
    step.add_argument("assignment")
    step.add_argument("--student", help="this student's feedback only")
    step = steps.add_parser("export", help="export every grade to a CSV file (nbgrader's, or an LMS's import)")
    step.add_argument("root")
    step.add_argument("csv")
    step.add_argument("--format", default="nbgrader", choices=("nbgrader", "canvas", "moodle"),
                      help="nbgrader: nbgrader export (default); canvas: Canvas's gradebook import CSV; "
                           "moodle: Moodle's grade import CSV (no submission: blank, never 0)")

    gradescope = sub.add_parser(
        "gradescope", help="build a Gradescope autograder package (zip) for one notebook",
        description=(
            "Write OUT (a zip to upload as a Gradescope programming assignment's autograder) for "
            "NOTEBOOK: setup.sh installs the course and bubblewrap on Gradescope's image; "
            "run_autograder grades each submitted notebook with 'check' and writes Gradescope's "
            "results.json (one test per graded cell, hidden tests shown once grades are published). "
            "The zip holds a secret that salts the hidden inputs: keep it private. See README "
            "(Grading on Gradescope)."))
    gradescope.add_argument("notebook", help="an assignment (e.g. 00_welcome) or a path to a source "
                                             "notebook solutions/NN_name.ipynb")
    gradescope.add_argument("out", help="the zip file to write")
    gradescope.add_argument("--torch-index-url", metavar="URL", default=None,
                            help="a package index setup.sh installs torch from (e.g. PyTorch's index of "
                                 "CPU-only builds, far smaller; default: the default index)")

    bench = sub.add_parser("bench", help="time grading a class: a sandbox per submission vs warm workers, 1 and N jobs",
                           description=(
        "Grade a class of generated submissions (notebooks 03 and 07: solved, wrong and mixed answers "
        "from solutions/ and tests/catalogue/) four times in this process: a sandbox per submission "
        "and warm workers (grader/worker.py), each with 1 job and with --jobs jobs; print seconds per "
        "notebook amortised over the class, check the verdicts agree, and append the table with the "
        "machine to bench/RESULTS.md."))
    bench.add_argument("--jobs", type=int, default=2, help="parallel jobs of the second run (default 2)")
    bench.add_argument("--size", type=int, default=60, help="submissions in the class (default 60)")
    bench.add_argument("--notebooks", nargs="+", default=None, metavar="NN_name",
                       help="the notebooks the class submits (default: 03_attention 07_gpt2_model)")
    bench.add_argument("--quick", action="store_true",
                       help="two submissions of notebook 03, nothing appended: the code path, not a timing")
    bench.add_argument("--no-record", action="store_true", help="print the table only")

    args = parser.parse_args(argv)
    if args.command == "gradescope":
        from .gradescope import BuildError, build
        try:
            out = build(args.notebook, args.out, torch_index_url=args.torch_index_url)
        except BuildError as exc:
            print(f"cannot build: {exc}", file=sys.stderr)
            return 2
        print(f"wrote {out}: upload it as the assignment's autograder (keep it private: it holds the "
              "grading secret)")
        return 0
    if args.command == "bench":
        from .bench import NOTEBOOKS_BENCHED, RESULTS, run
        run(jobs=args.jobs, size=args.size, notebooks=tuple(args.notebooks or NOTEBOOKS_BENCHED),
            results=None if args.quick or args.no_record else RESULTS, quick=args.quick)
        return 0
    if args.command == "course":
        from pathlib import Path

        from . import course as workflow
        root = Path(args.root)
        if args.step == "init":
            versions = dict(v.split("=", 1) for v in args.new_version if "=" in v)
            if len(versions) != len(args.new_version):
                parser.error("--new-version takes NOTEBOOK=ASSIGNMENT, e.g. 00_welcome=00_welcome_v2")
            workflow.init(root, db_url=args.db, course_id=args.course_id,
                          students=Path(args.students) if args.students else None,
                          exchange=Path(args.exchange) if args.exchange else None,
                          late_penalty=args.late_penalty, new_versions=versions,
                          solutions=Path(args.solutions) if args.solutions else None)
        elif args.step == "collect":
            import re
            pattern = re.compile(args.pattern) if args.pattern else workflow.STUDENT_ID
            if "student" not in pattern.groupindex:
                parser.error("--pattern needs a group named student, e.g. '^(?P<student>[^-]+)-'")
            if args.exchange or args.downloads is None:
                from . import exchange
                if args.due:
                    workflow.record_due(root, args.assignment, args.due)
                exchange.collect(root, args.assignment)
            else:
                workflow.collect(root, args.assignment, Path(args.downloads), pattern=pattern,
                                 timestamps=Path(args.timestamps) if args.timestamps else None, due=args.due)
        elif args.step == "autograde":
            local = None
            if args.cluster or args.scheduler:
                from . import cluster
                if args.cluster:
                    try:
                        local = cluster.parse_local(args.cluster)
                    except ValueError as exc:
                        parser.error(str(exc))
                try:
                    cluster.require_dask()
                except SystemExit as exc:
                    print(f"grader: {exc}", file=sys.stderr)
                    return 2
            workflow.autograde(root, args.assignment, jobs=args.jobs, timeout=args.timeout,
                               students=args.student, regrade_all=args.regrade_all,
                               scheduler=args.scheduler, cluster=local)
        elif args.step == "feedback":
            workflow.feedback(root, args.assignment, student=args.student)
        elif args.step == "export":
            workflow.export(root, Path(args.csv), fmt=args.format)
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
