"""The catalogue through the trusted path: harness in this process, verdicts by remote.Plan.

Grading never runs checks in the learner's process: the harness calls the function on inputs
from salted seeds and the grader verifies plain-data results. This walks every catalogue entry
through that path (without a sandbox, for speed; tests/grader/test_catalogue_notebooks.py and
tests/grader/test_attacks.py cover the sandboxed pipeline) and through the static review: wrong entries
must fail, valid ones must pass unflagged, for several salts: two in `make test`, all eight in
`make test-all` (the tests marked slow).
"""

from __future__ import annotations

import pytest

from grader import expectations, flags
from grader import plans as remote
from test_catalogue_checks import MODULES, NOTEBOOK_EXERCISES, build

SALTS = [f"salt-{i}" for i in range(8)]  # mistakes must be caught whatever the salt
# Two salts in `make test` (a maintainer's quick answer, which already shows a mistake caught only
# under some inputs); the slow tier, which CI runs, takes all eight together, so that a mistake
# caught one way under some salts and another way (or not at all) under the others shows.
SALT_SETS = [pytest.param(SALTS[:2], id="2salts"),
             pytest.param(SALTS, id="8salts", marks=pytest.mark.slow)]


def _verdicts(exercise: str, fn, salt: str, tmp_path) -> list[tuple[bool, str]]:
    specs = [remote.Spec(exercise, seed=11), remote.Spec(exercise, seed=12, hidden=True)]
    plan = remote.Plan(specs, salt)
    jobs, results = tmp_path / "jobs.json", tmp_path / "results.jsonl"
    jobs.write_text(plan.jobs_json())
    namespace = {exercise: fn}
    exec(remote.harness_source(str(jobs), str(results), 20), namespace)
    records = remote.read_results(results.read_text())
    return [plan.verdict(spec, records, validate=expectations.validate) for spec in specs]


def _entries(kind):
    for stem, module in MODULES.items():
        for exercise, entries in getattr(module, kind).items():
            for entry, source in entries.items():
                yield pytest.param(exercise, entry, source, id=f"{stem}-{exercise}-{entry}")


@pytest.mark.parametrize("salts", SALT_SETS)
@pytest.mark.parametrize("exercise, entry, source", list(_entries("VALID")))
def test_valid_entry_passes_the_trusted_path_unflagged(exercise, entry, source, salts, tmp_path):
    assert flags.review(source) == [], "a valid answer must not be flagged"
    fn = build(exercise, entry, source)
    for salt in salts:
        verdicts = _verdicts(exercise, fn, salt, tmp_path)
        assert all(ok for ok, _ in verdicts), (salt, verdicts)


@pytest.mark.parametrize("salts", SALT_SETS)
@pytest.mark.parametrize("exercise, entry, source", list(_entries("WRONG")))
def test_wrong_entry_fails_the_trusted_path(exercise, entry, source, salts, tmp_path):
    try:
        fn = build(exercise, entry, source)
    except Exception:  # noqa: BLE001 - a cell that cannot even define its function earns nothing
        return
    patterns = {salt: tuple(ok for ok, _ in _verdicts(exercise, fn, salt, tmp_path)) for salt in salts}
    assert not any(all(p) for p in patterns.values()), f"{exercise}/{entry} passed: {patterns}"
    # Caught with certainty, not by chance: the same test cells fail whatever the inputs.
    assert len(set(patterns.values())) == 1, f"{exercise}/{entry} is caught by chance: {patterns}"


def test_catalogue_notebooks_are_known():
    assert {m.NOTEBOOK for m in MODULES.values()} == set(NOTEBOOK_EXERCISES)


def _stub_cells():
    """Every exercise's answer cell as released to learners (the stub nbgrader makes)."""
    import nbformat

    from conftest import NOTEBOOKS, answer_cells
    for name in sorted(NOTEBOOK_EXERCISES):
        for exercise, source in answer_cells(nbformat.read(NOTEBOOKS / name, as_version=4)).items():
            yield pytest.param(exercise, source, id=exercise)


@pytest.mark.parametrize("exercise, source", list(_stub_cells()))
def test_learner_stub_fails_the_trusted_path(exercise, source, tmp_path):
    fn = build(exercise, "stub", source)
    for ok, message in _verdicts(exercise, fn, SALTS[0], tmp_path):
        assert not ok and "not implemented yet" in message, message
