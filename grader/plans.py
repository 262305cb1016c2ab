"""The grader's side of the checks: points decided by trusted code, the learner's code elsewhere.

This is the trust boundary (it lives in grader/, apart from gpt2course/checks/, which is what a
learner's kernel runs).

The grader reads which checks a test cell runs (``specs_in``), makes a ``Plan`` (the cases'
inputs as plain data, from seeds the learner cannot know), and appends ``harness_source`` to the
learner's notebook. Inside the sandbox the harness only calls the learner's functions on those
inputs and writes what they return (or raise) as plain data. Back in the grader, ``Plan.verdict``
decodes those values and runs the cases' ``verify``: nothing the learner's process does can
change how outputs are compared.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import json
from dataclasses import dataclass
from pathlib import Path

from gpt2course.checks import REGISTRY, protocol, wire
from gpt2course.checks.core import CheckFailed, Case, build_cases, check_unchanged, finish, raised


@dataclass(frozen=True)
class Spec:
    """One ``check(name, fn, seed=..., hidden=...)`` call of a test cell."""
    name: str
    seed: int = 0
    hidden: bool = False


def specs_in(source: str) -> list[Spec]:
    """The check calls of a test cell's code. Raises ValueError for anything it cannot read."""
    specs = []
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id in {"check", "run_check"}):
            continue
        if not (node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            raise ValueError("check() must name its exercise with a string literal")
        kwargs = {k.arg: k.value for k in node.keywords}
        seed = kwargs.get("seed", ast.Constant(0))
        hidden = kwargs.get("hidden", ast.Constant(False))
        if not (isinstance(seed, ast.Constant) and isinstance(hidden, ast.Constant)):
            raise ValueError("check()'s seed and hidden must be literals")
        if node.args[0].value not in REGISTRY:
            raise ValueError(f"no checks for {node.args[0].value!r}")
        specs.append(Spec(node.args[0].value, int(seed.value), bool(hidden.value)))
    return specs


def graded_seed(spec: Spec, salt: str) -> int:
    """The seed used at grading: the cell's seed mixed with a secret salt."""
    digest = hashlib.sha256(f"{salt}|{spec.name}|{spec.seed}|{spec.hidden}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


class Plan:
    """The cases of some specs, their inputs as jobs for the harness, and the verdicts."""

    def __init__(self, specs: list[Spec], salt: str):
        self.cases: dict[Spec, list[Case]] = {}
        self.jobs: list[dict] = []
        for spec in dict.fromkeys(specs):
            cases = build_cases(spec.name, seed=graded_seed(spec, salt), hidden=spec.hidden)
            self.cases[spec] = cases
            for c, case in enumerate(cases):
                for k, call in enumerate(case.all_calls()):
                    self.jobs.append({"id": self._id(spec, c, k), "name": spec.name,
                                      "args": wire.to_plain(list(call.args)),
                                      "kwargs": wire.to_plain(dict(call.kwargs)),
                                      "kind": call.kind})

    @staticmethod
    def _id(spec: Spec, case_index: int, call_index: int) -> str:
        return f"{spec.name}|{spec.seed}|{int(spec.hidden)}|{case_index}|{call_index}"

    def jobs_json(self) -> str:
        return json.dumps(self.jobs, allow_nan=False)

    def verdict(self, spec: Spec, results: dict[str, dict], validate=None) -> tuple[bool, str]:
        """(passed, message) for ``spec`` given the harness's records by job id. ``validate(call,
        output, after)`` (grader.expectations.validate) refuses a record whose shape differs
        from what the call must give, before any check compares values."""
        try:
            for c, case in enumerate(self.cases[spec]):
                outputs = []
                for k, call in enumerate(case.all_calls()):
                    record = results.get(self._id(spec, c, k))
                    if record is None:
                        raise CheckFailed(f"{spec.name} [{case.label}] did not run: the "
                                          "notebook stopped or timed out before it was called")
                    if "raised" in record:
                        type_name, message = (str(x)[:500] for x in record["raised"][:2])
                        raise raised(spec.name, case, type_name, message)
                    try:
                        output = wire.from_plain(record["ok"])
                        after = wire.from_plain(record["after"])
                    except (wire.WireError, KeyError, TypeError, ValueError, RecursionError):
                        raise CheckFailed(f"{spec.name} [{case.label}]: its result could not be read") from None
                    if validate is not None:
                        try:
                            validate(call, output, after)
                        except CheckFailed as failure:
                            raise CheckFailed(f"{spec.name} [{case.label}]: {failure}") from None
                    check_unchanged(spec.name, case, list(call.args) + list(call.kwargs.values()),
                                    list(after))
                    outputs.append(output)
                finish(spec.name, case, outputs)
        except CheckFailed as failure:
            return False, str(failure)
        except Exception as exc:  # noqa: BLE001 - a verify that trips on odd output is a failure
            return False, f"{spec.name}: the output could not be checked ({type(exc).__name__}: {str(exc)[:200]})"
        return True, ""


_HARNESS = '''
def __gpt2course_harness(jobs_path, results_path, seconds, wire_source):
    import json, signal
    wire = {}
    exec(compile(wire_source, "<grader wire>", "exec"), wire)

    def on_alarm(signum, frame):
        raise TimeoutError(f"the call ran longer than {seconds} s")

    signal.signal(signal.SIGALRM, on_alarm)
    with open(jobs_path, encoding="utf-8") as f:
        jobs = json.load(f)
    space = globals()
    too_slow = {}  # name -> what to report instead of calling it again
    if results_path.startswith("/dev/fd/"):  # a stream the grader's runner holds open
        import os
        sink = os.fdopen(os.dup(int(results_path.rsplit("/", 1)[1])), "w", encoding="utf-8")
    else:
        sink = open(results_path, "w", encoding="utf-8")
    with sink as out:
        for job in jobs:
            record = {"id": job["id"]}
            try:
                if job["name"] in too_slow:
                    raise too_slow[job["name"]]
                fn = space.get(job["name"])
                if fn is None:
                    raise NameError(f"{job['name']} is not defined: run the cell that defines it")
                args = wire["from_plain"](job["args"], True)
                kwargs = wire["from_plain"](job["kwargs"], True)
                signal.alarm(seconds)
                try:
                    value = wire["invoke"](fn, job.get("kind", "call"), args, kwargs)
                finally:
                    signal.alarm(0)
                record["ok"] = wire["to_plain"](value)
                record["after"] = wire["to_plain"](list(args) + list(kwargs.values()))
            except BaseException as exc:
                record = {"id": job["id"], "raised": [type(exc).__name__, str(exc)[:500]]}
                if isinstance(exc, (TimeoutError, KeyboardInterrupt, MemoryError)) and job["name"] not in too_slow:
                    too_slow[job["name"]] = type(exc)(f"not called again: an earlier call raised {type(exc).__name__}")
            out.write(json.dumps(record, allow_nan=False) + "\\n")
            out.flush()


__gpt2course_harness(@ARGS@)
del __gpt2course_harness
'''


def harness_source(jobs_path: str, results_path: str, seconds: int) -> str:
    """The code of the cell that calls the learner's functions on the jobs and records results."""
    helpers = inspect.getsource(wire) + "\n\n" + inspect.getsource(protocol)
    args = ", ".join(repr(a) for a in (jobs_path, results_path, int(seconds), helpers))
    return _HARNESS.replace("@ARGS@", args).strip()


def read_results(text: str) -> dict[str, dict]:
    """The harness's records by job id; unreadable lines are skipped (they count as not run)."""
    results = {}
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):
            continue
        if isinstance(record, dict) and isinstance(record.get("id"), str):
            results.setdefault(record["id"], record)
    return results


_CHECKS_STUB = '''"""Replaced while a notebook is graded: the checks run in the grader, not in this process."""


class CheckFailed(AssertionError):
    pass


def check(*args, **kwargs):
    return 0


run_check = check
'''


def package_overrides(exercises: list[str]) -> dict[str, str | None]:
    """Files of the gpt2course package to replace in the grading sandbox (path -> new text;
    None removes the file): the checks (their oracles would answer the exercises) and the
    reference modules that define the exercises being graded."""
    import gpt2course
    from gpt2course import reference

    root = Path(gpt2course.__file__).resolve().parent
    overrides: dict[str, str | None] = {}
    for path in (root / "checks").glob("*.py"):
        overrides[str(path.relative_to(root))] = None
    overrides["checks/__init__.py"] = _CHECKS_STUB
    for name in exercises:
        obj = getattr(reference, name, None)
        if obj is None:
            continue
        module = inspect.getmodule(obj)
        public = [n for n, v in vars(module).items()
                  if not n.startswith("_") and getattr(v, "__module__", None) == module.__name__]
        lines = [f'"""{module.__name__} is hidden while a notebook that asks for it is graded."""', ""]
        for n in public:
            message = f"gpt2course.reference.{n} is not available while this notebook is graded"
            if inspect.isclass(vars(module)[n]):
                lines += [f"class {n}:", "    def __init__(self, *args, **kwargs):",
                          f"        raise RuntimeError({message!r})", ""]
            else:
                lines += [f"def {n}(*args, **kwargs):", f"    raise RuntimeError({message!r})", ""]
        overrides[str(Path(module.__file__).resolve().relative_to(root))] = "\n".join(lines)
    return overrides
