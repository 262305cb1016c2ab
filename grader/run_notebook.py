"""The sandboxed side of grading: execute a notebook, write its trimmed result as JSON.

Usage (by grader.check, inside the sandbox): python -m grader.run_notebook IN OUT TIMEOUT

The input file is deleted once read, so learner code cannot read the hidden tests from disk. Each
cell's execute_reply status is recorded in its metadata (``grader.status``): a test cell that
has no status did not run. Outputs are trimmed before they are written.
"""

from __future__ import annotations

import json
import os
import sys

MAX_TEXT = 4000        # characters kept per output text
MAX_OUTPUTS = 20       # outputs kept per cell


def _trim(text: str) -> str:
    if len(text) <= MAX_TEXT:
        return text
    return text[: MAX_TEXT // 2] + f"\n... [{len(text) - MAX_TEXT} characters cut] ...\n" + text[-MAX_TEXT // 2:]


def _trim_outputs(outputs: list) -> list:
    kept = []
    for out in outputs[:MAX_OUTPUTS]:
        kind = out.get("output_type")
        if kind == "stream":
            kept.append({"output_type": "stream", "name": out.get("name", "stdout"),
                         "text": _trim(str(out.get("text", "")))})
        elif kind == "error":
            kept.append({"output_type": "error", "ename": _trim(str(out.get("ename", ""))),
                         "evalue": _trim(str(out.get("evalue", ""))),
                         "traceback": [_trim(str(t)) for t in out.get("traceback", [])[-8:]]})
        elif kind in {"execute_result", "display_data"}:
            text = out.get("data", {}).get("text/plain", "")
            kept.append({"output_type": kind, "text": _trim(str(text))})
    return kept


def main(argv: list[str]) -> int:
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import DeadKernelError

    src, dst, timeout = argv[0], argv[1], int(argv[2])
    nb = nbformat.read(src, as_version=4)
    os.unlink(src)
    statuses: dict[int, str] = {}

    def on_executed(cell, cell_index, execute_reply):
        statuses[cell_index] = execute_reply.get("content", {}).get("status", "error")

    client = NotebookClient(
        nb, timeout=timeout, kernel_name="python3", allow_errors=True,
        interrupt_on_timeout=True, record_timing=False,
        error_on_timeout={"ename": "TimeoutError",
                          "evalue": f"the cell ran longer than {timeout} s and was interrupted",
                          "traceback": []},
        resources={"metadata": {"path": os.getcwd()}},
        on_cell_executed=on_executed,
    )
    problems = []
    try:
        with client.setup_kernel():
            for index, cell in enumerate(nb.cells):
                if cell.cell_type != "code":
                    continue
                try:
                    client.execute_cell(cell, index)
                except DeadKernelError:
                    problems.append(f"the kernel died while running cell {index + 1} "
                                    "(out of memory, or the process was killed)")
                    break
    except Exception as exc:  # noqa: BLE001 - report, never hide, what stopped execution
        problems.append(f"execution stopped: {type(exc).__name__}: {str(exc)[:300]}")

    cells = []
    for index, cell in enumerate(nb.cells):
        cells.append({"status": statuses.get(index),
                      "outputs": _trim_outputs(cell.get("outputs", [])) if cell.cell_type == "code" else []})
    with open(dst, "w", encoding="utf-8") as f:
        json.dump({"cells": cells, "problems": problems}, f)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
