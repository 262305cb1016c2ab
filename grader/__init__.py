"""The grading tools of the course: they know nbgrader and sandboxes, and nothing of attention.

- ``python -m grader build [--check]``: regenerate (or verify) notebooks/ from solutions/ with
  nbgrader's generate_assignment.
- ``python -m grader check NOTEBOOK.ipynb [--json]``: grade one learner notebook against its
  source in solutions/ (visible and hidden tests), in a sandbox with time and memory limits and
  no network.
"""
