"""notebooks/ is nbgrader's release of solutions/: current, deterministic, without answers."""

from __future__ import annotations

import subprocess
import sys

import nbformat

from conftest import NOTEBOOKS, REPO, SOLUTIONS, answer_cells, nbgrader, graded_cells
from grader.build import release


def test_notebooks_are_current():
    proc = subprocess.run([sys.executable, "-m", "grader", "build", "--check"], cwd=REPO,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_release_is_deterministic(tmp_path):
    first = {p.name: p.read_bytes() for p in release(tmp_path / "a")}
    second = {p.name: p.read_bytes() for p in release(tmp_path / "b")}
    assert first == second and first


def test_every_solution_has_a_learner_notebook():
    assert sorted(p.name for p in SOLUTIONS.glob("*.ipynb")) == sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))


def test_learner_notebook_has_no_answers_no_hidden_tests_no_outputs(notebook_name):
    learner = nbformat.read(NOTEBOOKS / notebook_name, as_version=4)
    source = nbformat.read(SOLUTIONS / notebook_name, as_version=4)
    text = "\n".join(c.source for c in learner.cells)
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "hidden=True"):
        assert marker not in text, marker
    for cell in learner.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None
    for gid, stub in answer_cells(learner).items():
        assert "raise NotImplementedError()" in stub, gid
        assert stub != answer_cells(source)[gid]
    assert graded_cells(learner) == graded_cells(source)


def test_solution_sources_are_committed_without_outputs(notebook_name):
    nb = nbformat.read(SOLUTIONS / notebook_name, as_version=4)
    assert all(c.outputs == [] for c in nb.cells if c.cell_type == "code")


def test_every_exercise_has_visible_and_hidden_tests(notebook_name):
    nb = nbformat.read(SOLUTIONS / notebook_name, as_version=4)
    tests = graded_cells(nb)
    for gid in answer_cells(nb):
        assert f"test_{gid}" in tests, f"{gid} has no visible test cell"
        hidden = [t for t in tests if t.startswith(f"test_{gid}_hidden")]
        assert hidden, f"{gid} has no hidden test cell"
        for cell in nb.cells:
            if nbgrader(cell).get("grade_id") in hidden:
                assert "### BEGIN HIDDEN TESTS" in cell.source
    assert all(points > 0 for points in tests.values())


def test_notebooks_have_badge_and_setup(notebook_name):
    import gpt2course

    nb = nbformat.read(NOTEBOOKS / notebook_name, as_version=4)
    badge = (f"https://colab.research.google.com/github/{gpt2course.REPO_OWNER}/"
             f"{gpt2course.REPO_NAME}/blob/main/notebooks/{notebook_name}")
    assert badge in nb.cells[0].source
    assert any(gpt2course.REPO_URL in c.source and "google.colab" in c.source for c in nb.cells)


def test_public_source_matches_nbgrader_release(notebook_name):
    """grader.check.public_source strips hidden tests exactly as nbgrader's release did."""
    from grader.check import public_source

    learner = nbformat.read(NOTEBOOKS / notebook_name, as_version=4)
    source = nbformat.read(SOLUTIONS / notebook_name, as_version=4)
    released = {nbgrader(c).get("grade_id"): c.source for c in learner.cells}
    for cell in source.cells:
        if nbgrader(cell).get("grade") and not nbgrader(cell).get("solution"):
            assert public_source(cell.source).strip() == released[nbgrader(cell)["grade_id"]].strip()


def test_test_cells_only_call_checks(notebook_name):
    """The grader runs test cells as data (their check calls), so they must hold nothing else."""
    import ast

    from grader import plans as remote

    nb = nbformat.read(SOLUTIONS / notebook_name, as_version=4)
    for cell in nb.cells:
        if nbgrader(cell).get("grade") and not nbgrader(cell).get("solution"):
            assert remote.specs_in(cell.source), cell.source
            for stmt in ast.parse(cell.source).body:
                assert isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call), ast.unparse(stmt)


def test_repository_links_follow_one_setting():
    """grader/links.py writes every Colab badge, clone URL and README badge from the setting:
    today's files agree with it, and another owner / name / branch reaches every link."""
    import re

    import gpt2course
    from grader import links

    assert links.out_of_date() == [], "run `make notebooks`: links disagree with the setting"
    other = ("someone-else", "their-fork", "dev")
    readme = links.README.read_text(encoding="utf-8")
    moved = links.readme_text(readme, other)
    names = sorted(p.stem for p in SOLUTIONS.glob("*.ipynb"))
    for name in names:
        assert links.badge(name, *other) in moved, f"README course map has no badge for {name}"
        assert links.badge(name, gpt2course.REPO_OWNER, gpt2course.REPO_NAME, gpt2course.REPO_BRANCH) in readme
    assert "colab.research.google.com/github/gpt2-from-scratch" not in moved.split("## For learners")[1].split("##")[0]
    assert links.readme_text(moved, other) == moved  # idempotent: one badge per row
    for name in names:
        nb = nbformat.read(SOLUTIONS / f"{name}.ipynb", as_version=4)
        texts = [links.notebook_text(c.source, name, c.cell_type, other) for c in nb.cells]
        assert f"/someone-else/their-fork/blob/dev/notebooks/{name}.ipynb" in texts[0]
        assert any(re.search(r'^REPO_URL = "https://github.com/someone-else/their-fork"$', t, re.MULTILINE)
                   for t in texts), f"{name}: no setup cell with REPO_URL"
