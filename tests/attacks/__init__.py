"""Attacks on the grader and faults in submissions, as data (see tests/grader/test_attacks.py).

Each entry: the notebook, answer cells to put in (others solved), an optional structural edit,
the exercises it targets, and what the report must say. Attacks must gain 0 points on their
targets and be flagged; faults must give a clear verdict while grading completes.
"""
