"""The sandboxed side of grading: run a notebook, report on stdout. Imports nothing of the course.

Usage (by grader.check, inside the sandbox, from a copy of this file):
    python run_notebook.py NOTEBOOK SCRATCH RESULTS CELL_TIMEOUT HARNESS_TIMEOUT

The kernel runs in SCRATCH (the only writable folder) with its output streams discarded; cell
outputs are discarded too, so an output flood costs nothing. A cell marked
``metadata.grader.harness`` gets HARNESS_TIMEOUT instead of CELL_TIMEOUT. At the end one JSON
object goes to stdout: the problems seen (timeouts, a dead kernel) and the text of RESULTS (what
the harness cell wrote), capped.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

MAX_RESULTS = 48 * 2**20


def _not_dumpable() -> None:
    """Keep same-user processes (the kernel) out of /proc/<this process>/fd and /mem."""
    try:
        import ctypes
        ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE = 4
    except Exception:  # noqa: BLE001 - best effort
        pass


def main(argv: list[str]) -> int:
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import DeadKernelError

    path, scratch, results = argv[0], argv[1], argv[2]
    timeout, harness_timeout = int(argv[3]), int(argv[4])
    _not_dumpable()
    os.makedirs(scratch, exist_ok=True)
    os.chdir(scratch)
    nb = nbformat.read(path, as_version=4)
    problems: list[str] = []

    class Client(NotebookClient):
        def output(self, outs, msg, display_id, cell_index):
            return None  # points come from the harness's results, never from outputs

    def on_executed(cell, cell_index, execute_reply):
        content = execute_reply.get("content", {})
        if content.get("ename") == "TimeoutError" and "was interrupted" in str(content.get("evalue")):
            where = "the grading harness" if cell.metadata.get("grader", {}).get("harness") else f"cell {cell_index + 1}"
            problems.append(f"{where} timed out and was interrupted")

    client = Client(
        nb, timeout=timeout, kernel_name="python3", allow_errors=True, interrupt_on_timeout=True,
        timeout_func=lambda cell: harness_timeout if cell.metadata.get("grader", {}).get("harness") else timeout,
        record_timing=False, on_cell_executed=on_executed,
        error_on_timeout={"ename": "TimeoutError", "evalue": "the cell ran too long and was interrupted",
                          "traceback": []},
        resources={"metadata": {"path": scratch}},
    )
    try:
        with client.setup_kernel(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL):
            for index, cell in enumerate(nb.cells):
                if cell.cell_type != "code":
                    continue
                try:
                    client.execute_cell(cell, index)
                except DeadKernelError:
                    problems.append(f"the kernel died while running cell {index + 1} "
                                    "(out of memory, os._exit, or killed)")
                    break
    except Exception as exc:  # noqa: BLE001 - report, never hide, what stopped execution
        problems.append(f"execution stopped: {type(exc).__name__}: {str(exc)[:300]}")

    text = ""
    try:
        if os.path.isfile(results) and not os.path.islink(results):
            with open(results, encoding="utf-8", errors="replace") as f:
                text = f.read(MAX_RESULTS + 1)
            if len(text) > MAX_RESULTS:
                problems.append("the harness's results were too large")
                text = ""
    except OSError as exc:
        problems.append(f"the harness's results could not be read ({exc.strerror})")
    sys.stdout.write(json.dumps({"problems": problems, "results": text}))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
