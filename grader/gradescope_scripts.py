"""The two scripts of a Gradescope autograder package (``python -m grader gradescope``).

Gradescope's "Autograder Specifications" (its autograder documentation) asks for a zip holding,
at its root, ``setup.sh`` (a Bash script Gradescope runs once, as root, on its Ubuntu image when
it builds the autograder: it installs the dependencies) and ``run_autograder`` (an executable
run once per submission, with the working directory /autograder: the zip's files are in
/autograder/source, the student's in /autograder/submission, and it must write
/autograder/results/results.json). Both scripts take the root from ``AUTOGRADER_ROOT`` (default
/autograder), so that the package can be tried on any machine.

``{torch_index}`` in SETUP_SH is filled in by grader.gradescope.build.
"""

SETUP_SH = r"""#!/usr/bin/env bash
# Gradescope runs this once, as root, on its Ubuntu image when it builds the autograder
# (Gradescope's "Autograder Specifications": setup.sh installs the dependencies). It installs
#   - bubblewrap, the grading sandbox (grader/sandbox.py), where the image's packages have it;
#   - python3 and python3-venv, for a virtual environment of the course in $ROOT/venv;
#   - torch, then the course itself from source/course (the gpt2course and grader packages,
#     data/, this assignment's source notebook) with its dependencies, and nbformat.
set -euo pipefail
ROOT="${AUTOGRADER_ROOT:-/autograder}"
SRC="$ROOT/source"
TORCH_INDEX_URL="${TORCH_INDEX_URL:-{torch_index}}"
export DEBIAN_FRONTEND=noninteractive

apt-get update
apt-get install -y --no-install-recommends python3 python3-venv python3-pip ca-certificates
if ! apt-get install -y --no-install-recommends bubblewrap; then
    echo "setup.sh: bubblewrap is not available from this image's packages; the grader falls back" \
         "to unshare or to resource limits only (see the grading log of each submission)" >&2
fi

python3 - <<'EOF'
import sys
if sys.version_info < (3, 10):
    sys.exit(f"setup.sh: Python {sys.version.split()[0]} is too old for the course (3.10 or newer): "
             "choose a newer Ubuntu base image in the assignment's autograder settings")
EOF

python3 -m venv "$ROOT/venv"
PIP=("$ROOT/venv/bin/python" -m pip install --no-cache-dir)
"${PIP[@]}" --upgrade pip
if [ -n "$TORCH_INDEX_URL" ]; then
    "${PIP[@]}" --index-url "$TORCH_INDEX_URL" "torch>=2.1"
fi
"${PIP[@]}" -e "$SRC/course" "nbformat>=5.9"

# The package's secret (the grading salt) and the course's answers are for root only: where no
# sandbox can run, the grader runs a submission's code as an unprivileged user of its own.
chmod 0600 "$SRC/gradescope.json"
chmod 0700 "$SRC/course/gpt2course" "$SRC/course/grader" "$SRC/course/solutions"
chmod 0755 "$SRC/run_autograder"
# ... and the runtime and the course's data stay reachable by that user (grader/sandbox.py drops
# to it only then).
chmod o+rx "$ROOT" "$SRC" "$SRC/course"

cd "$SRC/course"
"$ROOT/venv/bin/python" -c "import torch, grader.gradescope; from grader import sandbox; \
print('setup.sh: torch', torch.__version__, '-', 'grading isolation on this image:', sandbox.describe())"
"""

RUN_AUTOGRADER = r"""#!/usr/bin/env bash
# Gradescope runs this once per submission (Gradescope's "Autograder Specifications"): the
# student's files are in $ROOT/submission, the verdict goes to $ROOT/results/results.json.
# It grades the submitted notebook with the course's grader (python -m grader.gradescope); if
# that cannot even start, it still writes a results.json that says so, score 0.
ROOT="${AUTOGRADER_ROOT:-/autograder}"
PYTHON="${GPT2COURSE_PYTHON:-$ROOT/venv/bin/python}"
mkdir -p "$ROOT/results"
# Its previous results (hidden tests' output included) are not for the submission's code to read.
chmod 0600 "$ROOT/submission_metadata.json" 2>/dev/null || true
rm -f "$ROOT/results/results.json"
(cd "$ROOT/source/course" && "$PYTHON" -m grader.gradescope --root "$ROOT")
status=$?
if [ ! -s "$ROOT/results/results.json" ]; then
    printf '%s\n' "{\"score\": 0, \"tests\": [], \"output\": \"The autograder could not run (exit status $status), so nothing was graded. This is not about your notebook: please tell your instructor.\"}" \
        > "$ROOT/results/results.json"
fi
exit 0
"""
