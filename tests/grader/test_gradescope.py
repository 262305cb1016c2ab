"""``python -m grader gradescope``: the autograder package for Gradescope, built, unpacked and run
as Gradescope would (run_autograder under a temporary AUTOGRADER_ROOT, against the course's
dependencies in this venv) on a solved, a wrong, a corrupt and an empty submission of 00_welcome.
setup.sh itself is not run here (it installs system packages): it is checked to be valid Bash
that installs what the package needs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile

import pytest

from conftest import REPO, filled_notebook
from grader import gradescope
from test_class_workflow import ONE_D_BROKEN

VISIBILITIES = {"hidden", "after_due_date", "after_published", "visible"}


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    """The package for 00_welcome, built by the command line, and its zip."""
    out = tmp_path_factory.mktemp("gradescope") / "autograder.zip"
    proc = subprocess.run([sys.executable, "-m", "grader", "gradescope", "00_welcome", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert out.is_file()
    return out


def unpack(package, root):
    """The zip in ROOT/source, as Gradescope lays it out, file modes kept."""
    source = root / "source"
    with zipfile.ZipFile(package) as archive:
        archive.extractall(source)
        for info in archive.infolist():
            mode = info.external_attr >> 16 & 0o777
            if mode:
                os.chmod(source / info.filename, mode)
    (root / "submission").mkdir()
    return source


def run_autograder(root, metadata=None, **environ):
    """ROOT/source/run_autograder as Gradescope runs it (working directory ROOT); the results."""
    if metadata is not None:
        (root / "submission_metadata.json").write_text(json.dumps(metadata))
    env = {**os.environ, "AUTOGRADER_ROOT": str(root), "GPT2COURSE_PYTHON": sys.executable, **environ}
    proc = subprocess.run([str(root / "source" / "run_autograder")], cwd=root, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((root / "results" / "results.json").read_text())
    assert_gradescope_schema(results)
    return results, proc.stdout


def assert_gradescope_schema(results):
    """The fields of Gradescope's results.json ("Autograder Specifications") that the package writes."""
    assert isinstance(results["score"], (int, float))
    assert isinstance(results["output"], str) and results["output"]
    assert isinstance(results["tests"], list)
    for test in results["tests"]:
        assert isinstance(test["name"], str) and test["name"]
        assert isinstance(test["score"], (int, float)) and isinstance(test["max_score"], (int, float))
        assert 0 <= test["score"] <= test["max_score"]
        assert isinstance(test["output"], str) and test["output"]
        assert test["visibility"] in VISIBILITIES
        assert test["status"] in {"passed", "failed"}
    assert results["score"] == sum(t["score"] for t in results["tests"])


def test_package_layout_and_setup_script(package, tmp_path):
    with zipfile.ZipFile(package) as archive:
        names = set(archive.namelist())
        modes = {i.filename: i.external_attr >> 16 & 0o777 for i in archive.infolist()}
        config = json.loads(archive.read("gradescope.json"))
        setup = archive.read("setup.sh").decode()
    assert {"setup.sh", "run_autograder", "gradescope.json", "course/pyproject.toml",
            "course/solutions/00_welcome.ipynb", "course/grader/check.py",
            "course/gpt2course/__init__.py", "course/data/SOURCES.md"} <= names
    assert not [n for n in names if n.startswith("course/solutions/") and "00_welcome" not in n]
    assert not [n for n in names if "__pycache__" in n]
    assert modes["setup.sh"] == modes["run_autograder"] == 0o755
    assert config["assignment"] == "00_welcome" and len(config["secret"]) == 64
    root = tmp_path / "autograder"
    source = unpack(package, root)
    for script in ("setup.sh", "run_autograder"):
        proc = subprocess.run(["bash", "-n", str(source / script)], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
    assert "bubblewrap" in setup and "python3-venv" in setup
    assert '-e "$SRC/course"' in setup and "nbformat" in setup and '"torch>=2.1"' in setup
    assert "chmod 0600" in setup  # the secret is root's only


def test_each_build_has_its_own_secret(package, tmp_path):
    other = gradescope.build("00", tmp_path / "other.zip")
    secrets = [json.loads(zipfile.ZipFile(p).read("gradescope.json"))["secret"] for p in (package, other)]
    assert secrets[0] != secrets[1]


def test_solved_wrong_corrupt_and_empty_submissions(package, tmp_path):
    metadata = {"id": 1, "users": [{"id": 4242, "name": "A Student", "email": "a@example.org"}]}

    solved = tmp_path / "solved"
    unpack(package, solved)
    filled_notebook("00_welcome.ipynb", {}, solved / "submission" / "00_welcome.ipynb")
    results, stdout = run_autograder(solved, metadata)
    assert results["score"] == 2.0, results
    tests = {t["name"]: t for t in results["tests"]}
    assert set(tests) == {"test_softmax", "test_softmax_hidden"}
    assert tests["test_softmax"]["visibility"] == "visible"
    assert tests["test_softmax_hidden"]["visibility"] == "after_published"
    assert all(t["score"] == t["max_score"] == 1.0 and t["status"] == "passed" for t in tests.values())
    assert "2 / 2" in results["output"] and "2 / 2" in stdout
    assert f"graded with the course in {(solved / 'source' / 'course').resolve()}" in stdout  # the package's own tree

    # Renamed by the student: the only notebook of the submission is graded.
    wrong = tmp_path / "wrong"
    unpack(package, wrong)
    filled_notebook("00_welcome.ipynb", {"softmax": ONE_D_BROKEN}, wrong / "submission" / "my homework.ipynb")
    results, _ = run_autograder(wrong)
    assert results["score"] < 2.0, results
    failed = [t for t in results["tests"] if t["status"] == "failed"]
    assert failed and all(t["score"] == 0 and len(t["output"]) > 10 for t in failed)

    corrupt = tmp_path / "corrupt"
    unpack(package, corrupt)
    (corrupt / "submission" / "00_welcome.ipynb").write_text('{"cells": [')
    results, _ = run_autograder(corrupt, metadata)
    assert results["score"] == 0
    assert "not a notebook" in results["output"] and "corrupt JSON" in results["output"]
    assert str(corrupt) not in results["output"]  # the autograder's own folders are not shown
    assert results["tests"] and all(t["score"] == 0 and t["output"].startswith("not graded")
                                    for t in results["tests"])

    empty = tmp_path / "empty"
    unpack(package, empty)
    (empty / "submission" / "answers.py").write_text("print('hello')\n")
    results, _ = run_autograder(empty)
    assert results["score"] == 0 and "no .ipynb notebook was submitted" in results["output"]
    assert "answers.py" in results["output"]


def test_without_a_sandbox_the_student_is_not_told_but_the_log_says_so(package, tmp_path):
    """Gradescope's containers may allow no sandbox: the grader falls back (grader/sandbox.py);
    the sandbox's line is for the instructor's log, not the student's output."""
    root = tmp_path / "autograder"
    unpack(package, root)
    filled_notebook("00_welcome.ipynb", {}, root / "submission" / "00_welcome.ipynb")
    results, stdout = run_autograder(root, GPT2COURSE_SANDBOX="none")
    assert results["score"] == 2.0, results
    assert "sandbox" not in results["output"]
    assert "no sandbox available" in stdout


def test_a_broken_package_still_writes_results(package, tmp_path):
    """Without its configuration the package cannot grade: results.json says so, score 0."""
    root = tmp_path / "autograder"
    source = unpack(package, root)
    (source / "gradescope.json").unlink()
    results, _ = run_autograder(root)
    assert results["score"] == 0 and "misconfigured" in results["output"]


def test_salt_depends_on_secret_students_and_assignment():
    one = {"users": [{"id": 1}, {"id": 2}]}
    salt = gradescope.salt("s", "00_welcome", one)
    assert salt == gradescope.salt("s", "00_welcome", {"users": [{"id": 2}, {"id": 1}], "id": 99})
    assert salt != gradescope.salt("t", "00_welcome", one)
    assert salt != gradescope.salt("s", "01_tokens_and_data", one)
    assert salt != gradescope.salt("s", "00_welcome", {"users": [{"id": 1}]})
    assert gradescope.salt("s", "00_welcome", None) == gradescope.salt("s", "00_welcome", {"users": "?"})


def test_which_notebook_is_graded(tmp_path):
    for name in ("00_welcome.ipynb", "Copy of 00_welcome (1).ipynb", "notes.ipynb"):
        (tmp_path / name).write_text("{}")
    assert gradescope.pick_submission(tmp_path, "00_welcome.ipynb").name == "00_welcome.ipynb"
    (tmp_path / "00_welcome.ipynb").unlink()
    assert gradescope.pick_submission(tmp_path, "00_welcome.ipynb").name == "Copy of 00_welcome (1).ipynb"
    (tmp_path / "Copy of 00_welcome (1).ipynb").unlink()
    assert gradescope.pick_submission(tmp_path, "00_welcome.ipynb").name == "notes.ipynb"
    (tmp_path / "more.ipynb").write_text("{}")
    with pytest.raises(gradescope.UngradableNotebook, match="several notebooks"):
        gradescope.pick_submission(tmp_path, "00_welcome.ipynb")


def test_unknown_notebook_is_refused(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "grader", "gradescope", "99_nothing", str(tmp_path / "x.zip")],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "unknown notebook" in proc.stderr and "00_welcome" in proc.stderr
    assert not (tmp_path / "x.zip").exists()
