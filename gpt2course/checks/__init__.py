"""Checks that the notebooks' test cells run on a learner's code.

Usage in a test cell::

    from gpt2course.checks import check
    check("softmax", softmax)                # visible cases
    check("softmax", softmax, hidden=True)   # other shapes and values (hidden test cells)

A failure raises ``CheckFailed`` (an AssertionError) whose message says what is probably wrong.
"""

from . import (attention, batches, block, bpe, checkpoints, embeddings, generation,  # noqa: F401
               gpt, heads, layernorm_mlp, multi_head, precision, softmax, training)  # (importing registers the checks)
from .core import REGISTRY, Call, Case, CheckFailed, build_cases, run_check
from .wire import Seeded

check = run_check

__all__ = ["check", "run_check", "build_cases", "CheckFailed", "Case", "Call", "Seeded", "REGISTRY"]
