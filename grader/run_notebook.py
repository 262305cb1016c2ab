"""The sandboxed side of grading: run a notebook's code cells in this process, report on stdout.

Usage (by grader.check, inside the sandbox, from a copy of this file):
    python run_notebook.py NOTEBOOK SCRATCH CELL_TIMEOUT

It imports nothing of the course. Cells run one after another in an in-process IPython shell
(magics and displays work; no kernel to start, no messages to pass), each with a time limit;
what they print is discarded. The report is a stream of JSON lines on file descriptor 99 (the
original stdout): {"cell": i} before code cell i runs, the harness's records (the harness cell,
marked ``metadata.grader.harness``, writes them to /dev/fd/99 and sets its own per-call limits),
and {"done": true, "problems": [...]} at the end. A stream without "done" tells the grader which
cell ended the process. Everything here is untrusted: the grader treats it as the learner's data.
"""

from __future__ import annotations

import json
import os
import signal
import sys

REPORT_FD = 99


class CellTimeout(BaseException):
    """Raised into a cell that ran past its limit (a BaseException: `except Exception` won't hide it)."""


def _not_dumpable() -> None:
    """Keep other processes of the same user out of /proc/<this process>."""
    try:
        import ctypes
        ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE = 4
    except Exception:  # noqa: BLE001 - best effort
        pass


def main(argv: list[str]) -> int:
    path, scratch, timeout = argv[0], argv[1], int(argv[2])
    _not_dumpable()
    os.makedirs(scratch, exist_ok=True)
    os.chdir(scratch)
    os.dup2(1, REPORT_FD, inheritable=False)  # the report stream; processes started later don't get it
    report = os.fdopen(REPORT_FD, "w")

    def emit(obj):
        report.write(json.dumps(obj) + "\n")
        report.flush()

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    sys.stdout = sys.stderr = open(os.devnull, "w")

    with open(path, encoding="utf-8") as f:
        cells = [c for c in json.load(f)["cells"] if c.get("cell_type") == "code"]
    problems: list[str] = []

    from IPython.core.interactiveshell import InteractiveShell
    shell = InteractiveShell.instance(colors="NoColor")

    def on_alarm(signum, frame):
        raise CellTimeout(f"the cell ran longer than {timeout} s")

    for index, cell in enumerate(cells):
        emit({"cell": index})
        source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
        harness = cell.get("metadata", {}).get("grader", {}).get("harness", False)
        if not harness:
            signal.signal(signal.SIGALRM, on_alarm)
            signal.setitimer(signal.ITIMER_REAL, timeout, 1.0)  # and again every second after
        try:
            outcome = shell.run_cell(source, store_history=False)
        except BaseException as exc:  # noqa: BLE001 - the shell lets some through
            outcome = None
            problems.append(f"code cell {index + 1} stopped the shell ({type(exc).__name__})")
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        if outcome is not None and isinstance(outcome.error_in_exec, CellTimeout):
            problems.append(f"code cell {index + 1} ran longer than {timeout} s and was interrupted")

    emit({"done": True, "problems": problems[:20]})
    os._exit(0)  # skip interpreter teardown (and anything the learner registered for it)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
