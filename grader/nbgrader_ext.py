"""nbgrader preprocessors of the class workflow (configured, not forked).

``ApplyVerdicts`` replaces nbgrader's Execute: the learner's code has already been graded by
grader.check (sandboxed, points decided by trusted code, see grader.course); this writes each
test cell's verdict into the notebook as the cell's only output, so that nbgrader's own
SaveAutoGrades records the points and generate_feedback shows the messages. A test cell without
a verdict gets an error, so every test cell in the gradebook provably has one. Hidden tests
are stripped from the test cells' text, so feedback never shows them.
"""

from __future__ import annotations

import json
from pathlib import Path

from nbgrader.preprocessors import NbGraderPreprocessor
from nbformat.v4 import new_output
from traitlets import Unicode

from .check import public_source
from .notebook import grade_id, is_test_cell


class ApplyVerdicts(NbGraderPreprocessor):
    verdict_dir = Unicode("", help="folder of verdict files: <assignment>/<student>.json").tag(config=True)

    def preprocess(self, nb, resources):
        info = resources["nbgrader"]
        path = Path(self.verdict_dir) / info["assignment"] / f"{info['student']}.json"
        try:
            verdict = json.loads(path.read_text())
            cells = {c["grade_id"]: c for c in verdict["cells"]}
        except (OSError, ValueError, KeyError, TypeError):
            cells = {}
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
                message = (result or {}).get("message") or "not graded: no verdict was recorded for this cell"
                cell.outputs = [new_output("error", ename="Failed", evalue=message, traceback=[message])]
        return nb, resources
