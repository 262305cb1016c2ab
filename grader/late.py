"""The late penalty nbgrader's autograde applies (``course init --late-penalty``).

nbgrader marks a submission late when its timestamp.txt is after the assignment's due date
(``course collect --due``) and asks ``AssignLatePenalties.plugin_class`` for the penalty of each
notebook. This plugin extends nbgrader's own LateSubmissionPlugin ('none': late but no penalty;
'zero': no credit) with 'per_day': ``per_day`` of the notebook's score taken off for every day
or part of a day late, never below 0.
"""

from __future__ import annotations

import math

from nbgrader.plugins import LateSubmissionPlugin
from traitlets import Enum, Float


class LatePenalty(LateSubmissionPlugin):
    penalty_method = Enum(("none", "zero", "per_day"), default_value="none",
                          help="'none', 'zero', or 'per_day' (see per_day)").tag(config=True)
    per_day = Float(0.1, help="fraction of the score taken off per started day late").tag(config=True)

    def late_submission_penalty(self, student_id, score, total_seconds_late):
        if self.penalty_method != "per_day":
            return super().late_submission_penalty(student_id, score, total_seconds_late)
        days = math.ceil(total_seconds_late / 86400)
        return min(score, score * self.per_day * days)


def config_lines(rule: str) -> str:
    """nbgrader_config.py lines for a --late-penalty value: 'none', 'zero' or a fraction per day
    such as '0.1' (10% of the score per started day late)."""
    rule = rule.strip().lower()
    if rule in ("none", "zero"):
        method, per_day = rule, None
    else:
        try:
            per_day = float(rule.rstrip("%")) / (100 if rule.endswith("%") else 1)
        except ValueError:
            raise SystemExit(f"--late-penalty {rule!r}: use none, zero, or a fraction per day "
                             "late such as 0.1 (or 10%)") from None
        if not 0 < per_day <= 1:
            raise SystemExit(f"--late-penalty {rule!r}: the fraction per day must be in (0, 1]")
        method = "per_day"
    lines = ["# Late penalty (course init --late-penalty): see grader/late.py",
             'c.AssignLatePenalties.plugin_class = "grader.late.LatePenalty"',
             f"c.LatePenalty.penalty_method = {method!r}"]
    if per_day is not None:
        lines.append(f"c.LatePenalty.per_day = {per_day!r}")
    return "\n".join(lines) + "\n"
