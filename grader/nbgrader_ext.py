"""nbgrader classes of the class workflow (configured in the course's nbgrader_config.py, not forked).

``ApplyVerdicts`` replaces nbgrader's Execute: the learner's code has already been graded by
grader.check (sandboxed, points decided by trusted code, see grader.course); this writes each
test cell's verdict into the notebook as the cell's only output, so that nbgrader's own
SaveAutoGrades records the points and generate_feedback shows the messages. A test cell without
a verdict gets an error, so every test cell in the gradebook provably has one; where the upload
could not be read at all, that error says why. Hidden tests are stripped from the test cells'
text, so feedback never shows them.

``CoursePipelineOnly`` is the exporter of nbgrader's Autograde converter. nbgrader makes it after
finding the submissions and before it touches any of them (before ``--force`` removes the
graded copies in ``autograded/``), so it is where a stock ``nbgrader autograde`` or formgrader's
"Autograde" button is stopped: those would run ApplyVerdicts on the raw ``submitted/`` files
with stale verdicts. It lets through only the course's own call, ``python -m grader course
autograde``, which runs nbgrader inside ``course_pipeline()`` (see grader.run_nbgrader) on the
staged copies in ``.grader/staged``.
"""

from __future__ import annotations

import contextlib
import json
import re
from pathlib import Path

from nbconvert.exporters import NotebookExporter
from nbformat.v4 import new_output
from nbgrader.converters.base import NbGraderException
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Unicode

from .check import public_source
from .notebook import grade_id, is_test_cell

NO_VERDICT = "not graded: no verdict was recorded for this cell"
_in_course_pipeline = False


@contextlib.contextmanager
def course_pipeline():
    """Within this block (and this process only), nbgrader autograde may run on the course's
    staged copies: the course's own pipeline is running it."""
    global _in_course_pipeline
    previous, _in_course_pipeline = _in_course_pipeline, True
    try:
        yield
    finally:
        _in_course_pipeline = previous


def refusal(root: str | Path, assignment: str) -> str:
    """What a stock autograde in the course folder says when it stops."""
    return (f"This course is graded by `python -m grader course autograde {root} {assignment or 'ASSIGNMENT'}`: "
            "it grades every submission in a sandbox, then runs nbgrader autograde itself. Stock "
            "`nbgrader autograde` and formgrader's Autograde button are turned off in this course "
            "folder (they would overwrite the graded copies with stale results); nothing was changed. "
            "Formgrader's manual grading, feedback and export work as usual.")


class CoursePipelineOnly(NotebookExporter):
    """nbgrader's notebook exporter, made only for the course's own autograde (see module doc)."""

    def __init__(self, *args, **kwargs):
        converter = kwargs.get("parent")
        coursedir = getattr(converter, "coursedir", None)
        if coursedir is None:
            raise NbGraderException("CoursePipelineOnly is nbgrader Autograde's exporter; it has no course here")
        root = Path(coursedir.root).resolve()
        staged = (root / coursedir.submitted_directory).resolve() == root / ".grader" / "staged"
        if not (_in_course_pipeline and staged):
            message = refusal(root, coursedir.assignment_id)
            converter.log.error(message)
            raise NbGraderException(message)
        super().__init__(*args, **kwargs)


def _readable(reason: str) -> str:
    """An "ungradable: PATH: why" reason without the instructor's folders: "FILE: why"."""
    head, sep, tail = reason.partition(": ")
    if sep and re.search(r"[/\\]", head):
        head = re.split(r"[/\\]", head)[-1]
    return head + sep + tail


def _fallback_message(verdict: dict) -> str:
    """The message of a test cell the verdict has no entry for: why the upload was not graded,
    where it says so (corrupt JSON, not a notebook, an empty file, nothing handed in)."""
    reasons = [_readable(e.split(":", 1)[1].strip()) for e in verdict.get("errors", [])
               if isinstance(e, str) and e.startswith("ungradable:")]
    if not reasons:
        return NO_VERDICT
    return f"not graded: {'; '.join(reasons)}"[:1000]


class ApplyVerdicts(NbGraderPreprocessor):
    verdict_dir = Unicode("", help="folder of verdict files: <assignment>/<student>.json").tag(config=True)

    def preprocess(self, nb, resources):
        info = resources["nbgrader"]
        path = Path(self.verdict_dir) / info["assignment"] / f"{info['student']}.json"
        try:
            verdict = json.loads(path.read_text())
            cells = {c["grade_id"]: c for c in verdict["cells"]}
            fallback = _fallback_message(verdict)
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            cells, fallback = {}, NO_VERDICT
        for cell in nb.cells:
            cell.metadata.pop("tags", None)
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = [], None
            if not is_test_cell(cell):
                continue
            # nbgrader restored the source's test cell, hidden tests included: feedback must not show them.
            cell.source = public_source(cell.source).rstrip() or "# hidden tests"
            result = cells.get(grade_id(cell))
            if result is not None and result.get("passed"):
                cell.outputs = [new_output("stream", name="stdout", text="\u2714 passed\n")]
            else:
                message = (result or {}).get("message") or fallback
                cell.outputs = [new_output("error", ename="Failed", evalue=message, traceback=[message])]
        return nb, resources
