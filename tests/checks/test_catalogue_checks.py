"""Walk tests/catalogue: every realistic mistake must lose points, with a message that names it
(the fragment its module's EXPECT gives), and every valid answer must pass.

Each catalogue entry is the source of a learner's answer cell. It is exec'd in a fresh namespace
holding what the notebook would already hold (``torch``, ``nn``, ``F``, ``math`` and the
finished earlier pieces from ``gpt2course.reference``, never the exercise itself), and the
function or class it defines is run through the visible and
the hidden checks of its exercise.

Nothing runs at collection time: a test id names the entry (for example
``nb00-softmax-wrong-global_max``), and the test computes the outcome of both runs and says it
when it fails, so a report shows whether a mistake is caught by a helpful ``CheckFailed`` or only
by some other exception (which also loses the learner the points, but says less). The global
torch RNG is seeded around each run, so the outcomes are deterministic.

Entries listed under ``UNCAUGHT`` (wrong answers the checks do not catch yet) and
``VALID_FAILING`` (valid answers the checks reject) are skipped with a reason; once the checks
are fixed, those tests fail and ask for the entry to be moved back to ``WRONG`` / ``VALID``.
"""

from __future__ import annotations

import importlib.util
import math
import pathlib
from types import ModuleType

import pytest
import torch
import torch.nn.functional as F

from gpt2course import reference
from gpt2course.checks import REGISTRY, CheckFailed, check

CATALOGUE_DIR = pathlib.Path(__file__).parent.parent / "catalogue"

# The graded exercises of every notebook the catalogue covers.
NOTEBOOK_EXERCISES = {
    "00_welcome.ipynb": ("softmax",),
    "01_tokens_and_data.ipynb": ("get_pair_counts", "merge", "train_bpe", "encode", "decode",
                                 "get_batch"),
    "02_embeddings.ipynb": ("Embeddings",),
    "03_attention.ipynb": ("causal_mask", "attention"),
    "04_multi_head_attention.ipynb": ("split_heads", "merge_heads", "CausalSelfAttention"),
    "05_layernorm_and_mlp.ipynb": ("LayerNorm", "gelu", "MLP"),
    "06_residual_block.ipynb": ("Block",),
    "07_gpt2_model.ipynb": ("GPT", "load_hf_weights"),
    "08_training.ipynb": ("lm_loss", "configure_optimizer", "get_lr", "train_step", "estimate_loss"),
    "09_generation.ipynb": ("sample_next_token", "forward_with_cache", "generate"),
    "10_full_training_run.ipynb": ("autocast_dtype", "save_checkpoint", "load_checkpoint",
                                   "previous_token_scores", "induction_scores"),
}

# Minimum number of entries per exercise (WRONG, VALID).
MINIMUM = {"softmax": (5, 3), "get_batch": (5, 2), "attention": (8, 3),
           "CausalSelfAttention": (6, 3), "LayerNorm": (6, 3), "Block": (6, 2),
           "GPT": (14, 8), "load_hf_weights": (10, 5),
           "lm_loss": (7, 4), "configure_optimizer": (6, 4), "get_lr": (6, 3), "train_step": (6, 4),
           "estimate_loss": (6, 4),
           "sample_next_token": (14, 5), "forward_with_cache": (10, 4), "generate": (12, 4),
           "autocast_dtype": (10, 4), "save_checkpoint": (12, 3), "load_checkpoint": (12, 3),
           "previous_token_scores": (10, 4), "induction_scores": (10, 4)}
DEFAULT_MINIMUM = (3, 2)

KINDS = {  # kind -> (catalogue dict, expectation)
    "wrong": ("WRONG", "caught"),
    "valid": ("VALID", "passes"),
    "uncaught": ("UNCAUGHT", "known-uncaught"),
    "valid_failing": ("VALID_FAILING", "known-failing"),
}

PASS = "pass"


def _load(path: pathlib.Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"_catalogue_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


MODULES = {path.stem: _load(path) for path in sorted(CATALOGUE_DIR.glob("nb*.py"))}


def build(exercise: str, entry: str, source: str):
    """The function an answer cell defines, exec'd in a notebook-like namespace."""
    # What a notebook holds when the learner reaches the exercise: the libraries, and earlier
    # pieces (the learner's own or imported from gpt2course.reference), never the exercise itself.
    namespace = {name: getattr(reference, name) for name in reference.__all__ if name != exercise}
    namespace.update({"__name__": "__catalogue__", "torch": torch, "nn": torch.nn, "F": F,
                      "math": math})
    code = compile(source, f"<catalogue {exercise}/{entry}>", "exec")
    exec(code, namespace)
    fn = namespace.get(exercise)
    if not callable(fn):
        raise LookupError(f"catalogue entry {exercise}/{entry} does not define {exercise}()")
    return fn


def run_checks(exercise: str, fn, messages: list[str] | None = None) -> dict[str, str]:
    """{"visible": outcome, "hidden": outcome}; outcome is "pass" or the exception's class name.
    The message of each failure is appended to ``messages``."""
    outcomes = {}
    for phase, hidden in (("visible", False), ("hidden", True)):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            try:
                check(exercise, fn, hidden=hidden, quiet=True)
            except CheckFailed as failure:
                outcomes[phase] = "CheckFailed"
                if messages is not None:
                    messages.append(str(failure))
            except Exception as exc:  # noqa: BLE001 - any exception loses the learner the points
                outcomes[phase] = type(exc).__name__
                if messages is not None:
                    messages.append(f"{type(exc).__name__}: {exc}")
            else:
                outcomes[phase] = PASS
    return outcomes


def _outcome(exercise: str, entry: str, source: str, messages: list[str] | None = None) -> dict[str, str] | str:
    try:
        fn = build(exercise, entry, source)
    except Exception as exc:  # noqa: BLE001 - reported by the test itself
        return f"build-error={type(exc).__name__}"
    return run_checks(exercise, fn, messages)


def expected(module: ModuleType, exercise: str, entry: str) -> tuple[str, str | None]:
    """(the rule a wrong entry breaks, the fragment its message must hold or None) from the
    catalogue module's EXPECT."""
    try:
        return module.EXPECT[exercise][entry]
    except (AttributeError, KeyError):
        raise AssertionError(f"{module.NOTEBOOK}: EXPECT has no (rule, message fragment) for the wrong "
                             f"answer {exercise}/{entry}") from None


def _describe(outcome: dict[str, str] | str) -> str:
    if isinstance(outcome, str):
        return outcome
    return "-".join(f"{phase}={result}" for phase, result in outcome.items())


def _params():
    params = []
    for stem, module in MODULES.items():
        short = stem.split("_", 1)[0]
        for kind, (attribute, _) in KINDS.items():
            for exercise, entries in getattr(module, attribute, {}).items():
                for entry, source in entries.items():
                    params.append(pytest.param(kind, exercise, entry, source,
                                               id=f"{short}-{exercise}-{kind}-{entry}"))
    return params


@pytest.mark.parametrize("kind, exercise, entry, source", _params())
def test_catalogue_entry(kind, exercise, entry, source):
    messages: list[str] = []
    outcome = _outcome(exercise, entry, source, messages)
    if isinstance(outcome, str):  # the source itself is broken: show why
        build(exercise, entry, source)
        pytest.fail(f"{exercise}/{entry}: {outcome}")
    caught = any(result != PASS for result in outcome.values())
    summary = _describe(outcome)
    if kind == "wrong":
        assert caught, (f"the wrong answer {exercise}/{entry} passes both the visible and the "
                        "hidden checks; if the checks cannot catch it yet, move it to UNCAUGHT")
        _rule, fragment = expected(MODULES[_stem_of(exercise)], exercise, entry)
        if fragment is not None:
            assert fragment.lower() in messages[0].lower(), (
                f"the message for {exercise}/{entry} should name the mistake ({fragment!r}), but says: "
                f"{messages[0]}")
    elif kind == "valid":
        assert not caught, (f"the valid answer {exercise}/{entry} is rejected ({summary}); if "
                            "the checks are at fault, move it to VALID_FAILING")
    elif kind == "uncaught":
        assert not caught, (f"{exercise}/{entry} is now caught ({summary}): move it from "
                            "UNCAUGHT to WRONG")
        pytest.skip(f"known gap: the checks do not catch the wrong answer {exercise}/{entry}")
    else:
        assert caught, (f"{exercise}/{entry} now passes the checks: move it from VALID_FAILING "
                        "to VALID")
        pytest.skip(f"known gap: the checks reject the valid answer {exercise}/{entry} ({summary})")


def _stem_of(exercise: str) -> str:
    return next(stem for stem, module in MODULES.items() if exercise in module.WRONG)


NAMED_SHARE = 0.90  # of the catalogue's wrong answers, those whose message names the mistake


def test_every_wrong_answer_expects_a_rule_and_a_message():
    """EXPECT lists exactly the WRONG entries, each with a rule its exercise states and a message
    fragment (None: the message may stay general); at least NAMED_SHARE of them have a fragment."""
    from gpt2course.checks import REGISTRY
    total = named = 0
    problems = []
    for stem, module in MODULES.items():
        expect = getattr(module, "EXPECT", {})
        for exercise, entries in module.WRONG.items():
            tagged = expect.get(exercise, {})
            problems += [f"{exercise}/{e}: no EXPECT" for e in entries if e not in tagged]
            problems += [f"{exercise}/{e}: EXPECT for an entry that is not in WRONG" for e in tagged if e not in entries]
            for entry, (rule, fragment) in tagged.items():
                if rule not in REGISTRY[exercise].rules:
                    problems.append(f"{exercise}/{entry}: the rule {rule!r} is not one of {sorted(REGISTRY[exercise].rules)}")
                total += 1
                named += fragment is not None
    assert not problems, "\n".join(problems)
    share = named / total
    print(f"catalogue: {named} of {total} wrong answers ({share:.0%}) get a message that names the mistake")
    assert share >= NAMED_SHARE, f"only {named} of {total} ({share:.0%}) messages name the mistake"


@pytest.mark.parametrize("stem", sorted(MODULES))
def test_catalogue_covers_every_exercise(stem):
    module = MODULES[stem]
    assert module.NOTEBOOK in NOTEBOOK_EXERCISES, f"{stem}: unknown notebook {module.NOTEBOOK!r}"
    assert stem.startswith("nb" + module.NOTEBOOK[:2]), f"{stem} does not match {module.NOTEBOOK}"
    exercises = set(NOTEBOOK_EXERCISES[module.NOTEBOOK])
    assert set(module.WRONG) == exercises, f"{stem}.WRONG covers {sorted(module.WRONG)}"
    assert set(module.VALID) == exercises, f"{stem}.VALID covers {sorted(module.VALID)}"
    for attribute in ("UNCAUGHT", "VALID_FAILING"):
        extra = set(getattr(module, attribute, {})) - exercises
        assert not extra, f"{stem}.{attribute} names exercises of another notebook: {extra}"
    for exercise in exercises:
        assert exercise in REGISTRY, f"no checks registered for {exercise}"
        want_wrong, want_valid = MINIMUM.get(exercise, DEFAULT_MINIMUM)
        assert len(module.WRONG[exercise]) >= want_wrong, f"too few WRONG entries for {exercise}"
        assert len(module.VALID[exercise]) >= want_valid, f"too few VALID entries for {exercise}"
        # An entry name means one thing: no name in both a list and its "known gap" list.
        for listed, gap in (("WRONG", "UNCAUGHT"), ("VALID", "VALID_FAILING")):
            both = (set(getattr(module, listed).get(exercise, {}))
                    & set(getattr(module, gap, {}).get(exercise, {})))
            assert not both, f"{stem}: {exercise} entries in both {listed} and {gap}: {both}"


def test_every_notebook_has_a_catalogue():
    notebooks = {module.NOTEBOOK for module in MODULES.values()}
    assert notebooks == set(NOTEBOOK_EXERCISES)
