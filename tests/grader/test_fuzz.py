"""Whatever a file holds, `grader check` ends with a grade or a one-line refusal, never a traceback.

Hypothesis writes arbitrary notebook JSON (cells of any type, metadata of any shape, sources of
any text, lone surrogates and deep nesting included) and arbitrary bytes. Everything before and
after the sandbox runs for real; the sandboxed run itself is replaced by one that reports
nothing (a notebook that crashed at once), which the attack and fault corpora cover for real.
A few hostile files also go through the command line itself.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from attacks.corpus import FAULTS
from conftest import REPO, SOLUTIONS, apply_edit, filled_notebook
from grader import check
from grader.notebook import UngradableNotebook, grade_id, is_test_cell, points, read_notebook

SOURCE = read_notebook(SOLUTIONS / "01_tokens_and_data.ipynb")
GRADE_IDS = [g for g in (grade_id(c) for c in SOURCE.cells) if g]
MAX_SCORE = sum(points(c) for c in SOURCE.cells if is_test_cell(c))

# Any text: every code point, lone surrogates included (json.dumps writes them as \ud800).
TEXT = st.text(st.characters(blacklist_categories=()), max_size=60)
DEEP = st.sampled_from(["a" + ".a" * 50_000, "-" * 50_000 + "1", "(" * 300 + ")" * 300,
                        "[" * 5000, "x = '\ud800'", "def f(:\n", "\x00", "%%bash\nls"])
SCALAR = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), TEXT)
JSON = st.recursive(SCALAR, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                    st.dictionaries(TEXT, inner, max_size=4)),
                    max_leaves=12)
NBGRADER = st.fixed_dictionaries({}, optional={
    "grade_id": st.one_of(st.sampled_from(GRADE_IDS), TEXT, JSON),
    "solution": st.one_of(st.booleans(), JSON), "grade": st.one_of(st.booleans(), JSON),
    "points": st.one_of(st.integers(), st.floats(), TEXT, JSON), "locked": JSON})
METADATA = st.one_of(JSON, st.fixed_dictionaries({}, optional={
    "nbgrader": st.one_of(NBGRADER, JSON), "tags": st.one_of(st.lists(TEXT, max_size=3), JSON)}))
SOURCE_TEXT = st.one_of(TEXT, DEEP, st.lists(st.one_of(TEXT, DEEP), max_size=3), JSON)
CELL = st.one_of(JSON, st.fixed_dictionaries(
    {"cell_type": st.one_of(st.sampled_from(["code", "markdown", "raw"]), TEXT, JSON)},
    optional={"source": SOURCE_TEXT, "metadata": METADATA, "outputs": JSON,
              "execution_count": JSON, "id": JSON}))
NOTEBOOK = st.one_of(JSON, st.fixed_dictionaries(
    {"cells": st.lists(CELL, max_size=6)},
    optional={"nbformat": st.one_of(st.just(4), JSON), "nbformat_minor": st.one_of(st.integers(0, 10), JSON),
              "metadata": JSON}))


@pytest.fixture
def no_sandbox_run(monkeypatch):
    """The sandboxed run replaced by one in which the notebook reported nothing."""
    seen = []

    def execute(steps, plan, exercises, **kwargs):
        seen.append(len(steps))
        return {}, ["the notebook could not be started for grading"]

    monkeypatch.setattr(check, "execute", execute)
    return seen


def _grade_or_refusal(path) -> str:
    try:
        result = check.grade(path, salt="fuzz")
    except UngradableNotebook as exc:
        assert "\n" not in str(exc)
        return "refused"
    json.dumps(result.to_json())
    assert result.score == 0 and result.max_score == MAX_SCORE
    return "graded"


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(notebook=NOTEBOOK)
def test_arbitrary_notebook_json_gets_a_grade_or_a_refusal(notebook, tmp_path_factory, no_sandbox_run):
    path = tmp_path_factory.mktemp("fuzz") / "01_tokens_and_data.ipynb"
    path.write_text(json.dumps(notebook))
    _grade_or_refusal(path)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.binary(max_size=300))
def test_arbitrary_bytes_get_a_grade_or_a_refusal(data, tmp_path_factory, no_sandbox_run):
    path = tmp_path_factory.mktemp("fuzz") / "01_tokens_and_data.ipynb"
    path.write_bytes(data)
    assert _grade_or_refusal(path) == "refused"


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(sources=st.dictionaries(st.sampled_from(GRADE_IDS), st.one_of(TEXT, DEEP), max_size=4),
       scratch=st.lists(st.one_of(TEXT, DEEP), max_size=2))
def test_arbitrary_answer_and_scratch_cells_get_a_grade(sources, scratch, tmp_path_factory, no_sandbox_run):
    """The learner's own notebook with any text in its answer cells and in new cells without
    metadata: always a grade (the file itself is a notebook)."""
    path = tmp_path_factory.mktemp("fuzz") / "01_tokens_and_data.ipynb"
    filled_notebook("01_tokens_and_data.ipynb", {}, path)
    data = json.loads(path.read_text())
    for cell in data["cells"]:
        gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if gid in sources:
            cell["source"] = sources[gid]
    data["cells"] += [{"cell_type": "code", "metadata": {}, "source": s, "outputs": [],
                       "execution_count": None} for s in scratch]
    path.write_text(json.dumps(data))
    assert _grade_or_refusal(path) == "graded"
    assert no_sandbox_run, "the notebook should have reached the sandbox"


# `make test` sends one of these through the command line; tests/grader/test_worker.py grades all
# four (every fault) there too, and the slow tier sends each through the command line.
@pytest.mark.parametrize("name", [pytest.param(name, marks=[] if name == "deep_chain_in_a_scratch_cell" else pytest.mark.slow)
                                  for name in ("attribute_chain_100000_deep", "unary_chain_100000_deep",
                                               "lone_surrogate", "deep_chain_in_a_scratch_cell")])
def test_hostile_source_through_the_command_line(name, tmp_path):
    entry = FAULTS[name]
    path = filled_notebook(entry["notebook"], entry["answers"], tmp_path / entry["notebook"])
    apply_edit(path, entry.get("edit"))
    proc = subprocess.run([sys.executable, "-m", "grader", "check", str(path), "--json",
                           "--timeout", "15", "--call-timeout", "5"],
                          capture_output=True, text=True, cwd=REPO, timeout=600)
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    assert all(c["score"] == 0 for c in result["cells"] if c["grade_id"].startswith("test_" + entry["targets"][0]))
