"""The sandboxed side of grading: trusted cells here, each exercise's answer in a process of its own.

Usage (by grader.check, inside the sandbox, from a copy of this file):
    python run_notebook.py SCRATCH CELL_TIMEOUT [own-pid-namespace]

It imports nothing of the course. The grader sends commands on stdin, one JSON object a line,
and this process answers on file descriptor 99 (the original stdout):

- ``{"run": i, "source": ...}``: run a trusted cell (the source notebook's setup and demo cells,
  and an exercise's reference answer once that exercise is graded) in this process, in an
  in-process IPython shell, with a time limit; answer ``{"ran": i}``.
- ``{"exercise": name, "imports": ..., "source": ..., "harness": ..., "deadline": s,
  "max_bytes": n}``: fork. The child runs the imports of the learner's earlier answer cells,
  the learner's answer cell, then the harness cell (which calls the learner's
  function on the grader's inputs and writes each result to file descriptor 98, a pipe to this
  process), and exits; this process waits for it (at most ``deadline`` seconds), kills what is
  left of it and answers ``{"exercise": name, "status": ..., "size": k}`` followed by the k
  bytes the child wrote (at most ``n``; more is status "too much output").
- ``{"done": true}``: answer ``{"done": true, "problems": [...]}`` and exit.

So the learner's code never runs in this process: an exercise's answer sees the trusted cells
before it and nothing after it, its records travel on a pipe only its own child holds, and a
child that crashes, hangs or floods takes only its own exercise with it. Everything a child
writes is still the learner's data; the grader checks its shape and its values.
"""

from __future__ import annotations

import json
import os
import select
import signal
import sys
import time

REPORT_FD = 99
RESULTS_FD = 98


class CellTimeout(BaseException):
    """Raised into a cell that ran past its limit (a BaseException: `except Exception` won't hide it)."""


def _not_dumpable() -> None:
    """Keep other processes of the same user (the children included) out of /proc/<this process>."""
    try:
        import ctypes
        ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE = 4
    except Exception:  # noqa: BLE001 - best effort
        pass


def _run_cell(shell, source: str, timeout: int | None) -> str | None:
    """Run ``source``; the name of the error it ended with, if any."""
    def on_alarm(signum, frame):
        raise CellTimeout(f"the cell ran longer than {timeout} s")

    if timeout:
        signal.signal(signal.SIGALRM, on_alarm)
        signal.setitimer(signal.ITIMER_REAL, timeout, 1.0)  # and again every second after
    try:
        outcome = shell.run_cell(source, store_history=False)
    except BaseException as exc:  # noqa: BLE001 - the shell lets some through
        return type(exc).__name__
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    error = outcome.error_in_exec or outcome.error_before_exec
    return None if error is None else type(error).__name__


def _one_thread() -> None:
    """After a fork, torch's OpenMP pool (libgomp) exists only in the parent: a parallel region in
    the child waits for threads that are not there and hangs. One thread keeps it out of them."""
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)


def _child(shell, command: dict, timeout: int, write_fd: int, commands_fd: int) -> None:
    """In the forked child: the learner's answer cell, then the harness; never returns."""
    try:
        os.setpgid(0, 0)
        devnull = os.open(os.devnull, os.O_RDWR)
        os.dup2(devnull, 0)
        os.dup2(write_fd, RESULTS_FD)
        os.close(write_fd)
        os.close(REPORT_FD)  # the grader's stream and its commands stay with the parent
        os.close(commands_fd)
        _one_thread()
        _run_cell(shell, command.get("imports", ""), timeout)
        error = _run_cell(shell, command["source"], timeout)
        if error == "CellTimeout":  # the grader words it (what the learner's code writes here is its data)
            os.write(RESULTS_FD, b'{"problem": "cell timeout"}\n')
        _run_cell(shell, command["harness"], None)
    finally:
        os._exit(0)


def _wait_for(pid: int, read_fd: int, deadline: float, max_bytes: int) -> tuple[bytes, str]:
    """Read what the child writes until it has exited (or the deadline); its bytes and status.

    The pipe's end of file does not mean the child is done (its code can close the pipe and go
    on), nor does the child's exit mean the pipe is drained (a process it started may hold it):
    both are waited for, the second only briefly."""
    chunks, size, status = [], 0, "ok"
    exited = at_eof = False
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            status = "timeout"
            break
        ready = False
        if not at_eof:
            ready = bool(select.select([read_fd], [], [], min(left, 0.2))[0])
        else:
            time.sleep(min(left, 0.05))
        if ready:
            data = os.read(read_fd, 1 << 16)
            if not data:
                at_eof = True
            else:
                size += len(data)
                if size > max_bytes:
                    status = "too much output"
                    break
                chunks.append(data)
                continue
        if not exited:
            done, code = os.waitpid(pid, os.WNOHANG)
            if done:
                exited = True
                if os.WIFSIGNALED(code):
                    status = f"signal {os.WTERMSIG(code)}"
        if exited and (at_eof or not ready):  # nothing more to read, or only a descendant holds the pipe
            break
    try:
        os.killpg(pid, signal.SIGKILL)  # the child and whatever it started in its group
    except OSError:
        pass
    if not exited:
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
    os.close(read_fd)
    return b"".join(chunks)[:max_bytes], status


def _kill_strays() -> None:
    """Every process of this PID namespace but this one and its ancestors: what a child left
    behind (a process that left its group, a daemon) must not outlive its exercise."""
    keep, pid = set(), os.getpid()
    while pid > 1:
        keep.add(pid)
        try:
            with open(f"/proc/{pid}/stat") as f:
                pid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    keep.add(1)
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) not in keep:
            try:
                os.kill(int(entry), signal.SIGKILL)
            except OSError:
                pass


def main(argv: list[str]) -> int:
    scratch, timeout = argv[0], int(argv[1])
    own_namespace = argv[2:] == ["own-pid-namespace"]  # only then is every other process ours
    _not_dumpable()
    os.makedirs(scratch, exist_ok=True)
    os.chdir(scratch)
    os.dup2(1, REPORT_FD, inheritable=False)  # the report stream; children close it
    report = os.fdopen(REPORT_FD, "w")

    def emit(obj, data: bytes = b""):
        report.write(json.dumps(obj) + "\n")
        report.flush()
        view = memoryview(data)
        while view:
            view = view[os.write(REPORT_FD, view):]

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    sys.stdout = sys.stderr = open(os.devnull, "w")
    commands = os.fdopen(os.dup(0), "r", encoding="utf-8")

    from IPython.core.interactiveshell import InteractiveShell
    shell = InteractiveShell.instance(colors="NoColor")
    problems: list[str] = []
    emit({"ready": True})
    for line in commands:
        command = json.loads(line)
        if "run" in command:
            error = _run_cell(shell, command["source"], timeout)
            if error == "CellTimeout":
                problems.append(f"code cell {command['run'] + 1} ran longer than {timeout} s and was interrupted")
            emit({"ran": command["run"], "error": error})
        elif "exercise" in command:
            read_fd, write_fd = os.pipe()
            sys.stdout.flush()
            pid = os.fork()
            if pid == 0:
                os.close(read_fd)
                _child(shell, command, timeout, write_fd, commands.fileno())
            os.close(write_fd)
            data, status = _wait_for(pid, read_fd, time.monotonic() + float(command["deadline"]),
                                     int(command["max_bytes"]))
            if own_namespace:
                _kill_strays()
            emit({"exercise": command["exercise"], "status": status, "size": len(data)}, data)
        elif command.get("done"):
            break
    emit({"done": True, "problems": problems[:20]})
    os._exit(0)  # skip interpreter teardown


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
