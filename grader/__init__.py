"""The grading tools of the course: they know nbgrader and sandboxes, and nothing of attention.

- ``python -m grader build [--check]``: regenerate (or verify) notebooks/ from solutions/ with
  nbgrader's generate_assignment.
- ``python -m grader check NOTEBOOK.ipynb [--json]``: grade one learner notebook against its
  source in solutions/ (visible and hidden tests), in a sandbox with time and memory limits and
  no network.
- ``python -m grader course init|collect|autograde|feedback|export ...``: a class on nbgrader
  (grader/course.py and the modules it names: roster, collect, regrade, lms, exchange, late).
  ``course autograde --jobs N`` grades on N warm workers (grader/worker.py: torch, the course
  and each notebook's trusted cells loaded once per worker, each submission still in a sandbox
  of its own).
  ``course autograde ... --scheduler tcp://HOST:8786`` or ``--cluster local:N`` grades on a Dask
  cluster's workers and records the grades here (grader/cluster.py).
- ``python -m grader gradescope NOTEBOOK OUT.zip``: a Gradescope autograder package
  (grader/gradescope.py).
- ``python -m grader bench [--jobs N] [--size N] [--quick]``: time grading a class of generated
  submissions of notebooks 03 and 07, a sandbox per submission vs warm workers, 1 and N jobs
  (grader/bench.py; appends to bench/RESULTS.md).
"""

import sys

# nbformat imports jsonschema, which imports the optional rfc3987-syntax package when it is
# installed (jupyter-events asks for it); that package builds a Lark grammar at import, 2.7 s of
# every `python -m grader` run on the 2-core test machine (bench/RESULTS.md), for an "iri"
# format check that notebook validation never uses. Without it jsonschema skips that format.
sys.modules.setdefault("rfc3987_syntax", None)
