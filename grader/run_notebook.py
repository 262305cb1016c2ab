"""The sandboxed side of grading: trusted cells here, each exercise's answer in a process of its own.

Usage (by grader.check, inside the sandbox, from a copy of this file):
    python run_notebook.py SCRATCH CELL_TIMEOUT [own-pid-namespace]
or, by grader.worker (a warm worker, see "Warm mode" below):
    python run_notebook.py SCRATCH CELL_TIMEOUT own-pid-namespace warm

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

Warm mode (grader/worker.py) grades a whole class in one sandbox. This process then runs as
root inside bubblewrap (its own mount, PID, IPC, UTS and network namespaces, read-only system),
runs the trusted cells once, and at each exercise forks a *stage*: a process that keeps the
state of the trusted cells before that exercise and never runs anything else. For each
submission the grader names a fresh unprivileged user id and a submission id; a stage forks one
child per exercise, which, before any of the learner's code runs, enters a mount and IPC
namespace of its own with that submission's private folder bound over /tmp, sets the resource
limits, joins a new session keyring, drops every capability and becomes that user
(``_enter_submission``). Commands, besides ``run`` and ``done``:

- ``{"probe": {"uid": u, "sub": s}}``: fork a child that enters a submission and exits;
  answer ``{"probe": true}`` when it could (the grader falls back to a sandbox per submission
  otherwise).
- ``{"stage": i}``: fork the stage of step i (after the cells before i); answer ``{"staged": i}``.
- ``{"grade": i, "exercise": name, "uid": u, "sub": s, "limits": [...], "jobs": text, ...}``:
  stage i forks the child (the jobs reach its harness as /dev/fd/97, a memory file), waits
  for it as above, kills every process of user u and answers as for ``exercise``
  (status ``"lost"``: the stage is gone; ``"not started"``: the child could not enter the
  submission; both are the grader's failures, never the learner's).
- ``{"forget": {"uid": u, "sub": s}}``: kill every process of user u, remove the submission's
  folder; answer ``{"forgot": s, "clean": true}`` when nothing of it is left.
- ``{"problems": true}``: answer ``{"problems": [...]}`` (trusted cells that timed out).

So nothing of one submission reaches the next: its processes are killed, its files removed,
its IPC objects and keys were in namespaces and keyrings of its own, and the stages it was
forked from are root processes that it cannot signal, trace or limit.
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
JOBS_FD = 97  # warm mode: the harness's jobs, a memory file


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


def _wait_for(pid: int, read_fd: int, deadline: float, max_bytes: int, kill=None) -> tuple[bytes, str]:
    """Read what the child writes until it has exited (or the deadline); its bytes and status.

    The pipe's end of file does not mean the child is done (its code can close the pipe and go
    on), nor does the child's exit mean the pipe is drained (a process it started may hold it):
    both are waited for, the second only briefly. ``kill``: what ends the child and whatever it
    started (default: a SIGKILL to its process group)."""
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
    if kill is not None:
        kill()
    else:
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
    own_namespace = argv[2:3] == ["own-pid-namespace"]  # only then is every other process ours
    warm = own_namespace and argv[3:] == ["warm"]
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
    if warm:
        # No history database: its open file would be shared by every submission's processes.
        from traitlets.config import Config
        config = Config()
        config.HistoryManager.enabled = False
        shell = InteractiveShell.instance(config=config, colors="NoColor")
        _serve(shell, timeout, emit, commands)  # never returns
    shell = InteractiveShell.instance(colors="NoColor")
    problems: list[str] = []
    emit({"ready": True})
    for line in commands:
        command = json.loads(line)
        if "run" in command:
            _run_trusted(shell, command, timeout, problems, emit)
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


# ---------------------------------------------------------------------------------------------
# Warm mode (grader/worker.py): one sandbox, trusted cells run once, one stage per exercise.

SUBMISSIONS = "/tmp/.grader-submissions"   # root only: one folder per submission
CLONE_NEWNS, CLONE_NEWIPC = 0x00020000, 0x08000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_REMOUNT = 1, 2, 4, 32
MS_BIND, MS_REC, MS_PRIVATE = 4096, 16384, 1 << 18
PR_CAPBSET_DROP, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 24, 47, 4
KEYCTL_SYSCALL = {"x86_64": 250, "aarch64": 219}
KEYCTL_JOIN_SESSION_KEYRING = 1


def _libc():
    import ctypes
    return ctypes.CDLL(None, use_errno=True)


def _ok(result: int, what: str) -> None:
    if result != 0:
        import ctypes
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _mounts_under_tmp() -> list[str]:
    """The mount points the sandbox has under /tmp (the runtime, the course's data and this
    worker's package copy where they live under /tmp), outermost only."""
    import re
    points = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if len(fields) > 4:
                point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), fields[4])
                if point.startswith("/tmp/") and not (point + "/").startswith(SUBMISSIONS + "/"):
                    points.append(point)
    return [p for p in sorted(set(points)) if not any(p.startswith(q + "/") for q in points if q != p)]


def _submission_id(command: dict) -> tuple[int, str]:
    uid, sub = int(command["uid"]), str(command["sub"])
    if uid <= 0 or not sub.isalnum() or len(sub) > 64:
        raise ValueError("bad submission")
    return uid, sub


def _enter_submission(uid: int, sub: str, limits: list) -> None:
    """In a child that has run nothing of the learner's yet: its own mount and IPC namespaces,
    the submission's folder as /tmp, the resource limits, no capability, the submission's user
    id, a new session keyring. Raises when any of it fails (the child must then not go on)."""
    import ctypes
    import resource
    import stat
    libc = _libc()
    _ok(libc.unshare(CLONE_NEWNS | CLONE_NEWIPC), "unshare")
    _ok(libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None), "make / private")
    folder = os.path.join(SUBMISSIONS, sub)
    try:
        os.mkdir(folder, 0o700)
        os.chown(folder, uid, uid)
    except FileExistsError:
        info = os.lstat(folder)
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != uid:
            raise
    # The submission's folder hides what the sandbox mounted under /tmp: bind those again,
    # read-only, so that what the stage imports lazily (torch's modules, the course's) is found.
    kept = [(point, os.open(point, os.O_PATH | os.O_CLOEXEC)) for point in _mounts_under_tmp()]
    _ok(libc.mount(folder.encode(), b"/tmp", None, MS_BIND, None), "bind /tmp")
    for point, fd in kept:
        os.makedirs(point, mode=0o755, exist_ok=True)
        _ok(libc.mount(f"/proc/self/fd/{fd}".encode(), point.encode(), None, MS_BIND | MS_REC, None),
            f"bind {point}")
        _ok(libc.mount(b"none", point.encode(), None,
                       MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, None), f"read-only {point}")
        os.close(fd)
    for which, value in limits:
        resource.setrlimit(int(which), (int(value), int(value)))
    with open("/proc/sys/kernel/cap_last_cap") as f:
        last = int(f.read())
    for cap in range(last + 1):
        _ok(libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0), "drop a capability")
    libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                    ("inheritable", ctypes.c_uint32)]

    _ok(libc.capset(ctypes.byref(Header(0x20080522, 0)), (Data * 2)()), "capset")
    with open("/proc/self/status") as f:
        status = dict(line.split(":", 1) for line in f if ":" in line)
    for key in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        if int(status.get(key, "1").strip(), 16) != 0:
            raise OSError(f"{key} is not empty")
    for key in ("Uid", "Gid"):
        if {int(v) for v in status[key].split()} != {uid}:
            raise OSError(f"{key} is not the submission's")
    if status.get("NoNewPrivs", "0").strip() != "1":
        raise OSError("no_new_privs is not set")
    number = KEYCTL_SYSCALL.get(os.uname().machine)
    if number is not None:  # a keyring of its own (best effort: a seccomp filter may refuse keyctl)
        libc.syscall(number, KEYCTL_JOIN_SESSION_KEYRING, None)
    os.makedirs("/tmp/work", exist_ok=True)
    os.chdir("/tmp/work")


def _uid_alive(uid: int) -> bool:
    """Whether a process (not a zombie) of ``uid`` exists in this PID namespace."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as f:
                fields = dict(line.split(":", 1) for line in f if ":" in line)
            if int(fields["Uid"].split()[0]) == uid and not fields["State"].strip().startswith("Z"):
                return True
        except (OSError, KeyError, ValueError, IndexError):
            pass
    return False


def _kill_uid(uid: int) -> bool:
    """Kill every process of ``uid`` (kill(-1) from a helper of that user: no fork escapes it);
    True when none is left."""
    for _ in range(50):
        if not _uid_alive(uid):
            return True
        pid = os.fork()
        if pid == 0:
            try:
                os.setresgid(uid, uid, uid)
                os.setresuid(uid, uid, uid)
                os.kill(-1, signal.SIGKILL)
            finally:
                os._exit(0)
        os.waitpid(pid, 0)
        time.sleep(0.005)
    return not _uid_alive(uid)


def _close_others(keep: set[int]) -> None:
    for name in os.listdir("/proc/self/fd"):
        if int(name) not in keep:
            try:
                os.close(int(name))
            except OSError:
                pass


def _warm_child(shell, command: dict, uid: int, sub: str, write_fd: int, ok_fd: int, jobs_fd: int) -> None:
    """In the forked child of a stage: enter the submission, then as in _child; never returns."""
    try:
        os.setpgid(0, 0)
        devnull = os.open(os.devnull, os.O_RDWR)
        os.dup2(devnull, 0)
        os.dup2(write_fd, RESULTS_FD)
        os.dup2(jobs_fd, JOBS_FD)
        keep = {0, 1, 2, RESULTS_FD, JOBS_FD, ok_fd}
        for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
            try:
                keep.add(stream.fileno())
            except (AttributeError, OSError, ValueError):
                pass
        _close_others(keep)  # nothing of the stage's (its pipes, the runner's) reaches the learner
        _enter_submission(uid, sub, command.get("limits", []))
        os.write(ok_fd, b"1")
        os.close(ok_fd)
        _one_thread()
        timeout = int(command.get("timeout", 60))
        _run_cell(shell, command.get("imports", ""), timeout)
        error = _run_cell(shell, command["source"], timeout)
        if error == "CellTimeout":
            os.write(RESULTS_FD, b'{"problem": "cell timeout"}\n')
        _run_cell(shell, command["harness"], None)
    finally:
        os._exit(0)


def _grade_here(shell, command: dict) -> tuple[dict, bytes]:
    """In a stage: one exercise of one submission, in a child (see _warm_child)."""
    name = command["exercise"]
    try:
        uid, sub = _submission_id(command)
    except (KeyError, ValueError):
        return {"exercise": name, "status": "not started", "size": 0}, b""
    read_fd, write_fd = os.pipe()
    ok_r, ok_w = os.pipe()
    jobs_fd = os.memfd_create("jobs", 0)
    data = command.get("jobs", "[]").encode()
    view = memoryview(data)
    while view:
        view = view[os.write(jobs_fd, view):]
    os.lseek(jobs_fd, 0, os.SEEK_SET)
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        os.close(ok_r)
        _warm_child(shell, command, uid, sub, write_fd, ok_w, jobs_fd)
    os.close(write_fd)
    os.close(ok_w)
    os.close(jobs_fd)
    data, status = _wait_for(pid, read_fd, time.monotonic() + float(command["deadline"]),
                             int(command["max_bytes"]), kill=lambda: _kill_uid(uid))
    entered = os.read(ok_r, 1) == b"1"
    os.close(ok_r)
    if not _kill_uid(uid):
        status = "lost"
    elif not entered:
        status, data = "not started", b""
    return {"exercise": name, "status": status, "size": len(data)}, data


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _stage(shell, to_stage: int, from_stage: int, closing: list[int]) -> None:
    """A stage: the state of the trusted cells before one exercise, serving its children."""
    try:
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        for fd in closing:
            try:
                os.close(fd)
            except OSError:
                pass
        with os.fdopen(to_stage, "r", encoding="utf-8") as commands:
            for line in commands:
                header, data = _grade_here(shell, json.loads(line))
                _write_all(from_stage, (json.dumps(header) + "\n").encode() + data)
    finally:
        os._exit(0)


def _run_trusted(shell, command: dict, timeout: int, problems: list, emit) -> None:
    """A trusted cell (``{"run": index, "source": ...}``), in this process; a timeout is noted."""
    error = _run_cell(shell, command["source"], timeout)
    if error == "CellTimeout":
        problems.append(f"code cell {command['run'] + 1} ran longer than {timeout} s and was interrupted")
    emit({"ran": command["run"], "error": error})


def _serve(shell, timeout: int, emit, commands) -> None:
    """Warm mode's main loop (see the module's docstring); never returns."""
    import shutil
    os.makedirs(SUBMISSIONS, mode=0o700, exist_ok=True)
    stages: dict[int, tuple[int, int, object]] = {}  # step -> (pid, command pipe, answer stream)
    problems: list[str] = []
    emit({"ready": True, "warm": True})
    for line in commands:
        command = json.loads(line)
        if "run" in command:
            _run_trusted(shell, command, timeout, problems, emit)
        elif "stage" in command:
            index = int(command["stage"])
            to_r, to_w = os.pipe()
            from_r, from_w = os.pipe()
            sys.stdout.flush()
            pid = os.fork()
            if pid == 0:
                closing = [REPORT_FD, commands.fileno(), to_w, from_r]
                for _, w, r in stages.values():
                    closing += [w, r.fileno()]
                _stage(shell, to_r, from_w, closing)
            os.close(to_r)
            os.close(from_w)
            stages[index] = (pid, to_w, os.fdopen(from_r, "rb"))
            emit({"staged": index})
        elif "grade" in command:
            name = command.get("exercise", "?")
            stage = stages.get(int(command["grade"]))
            answer = None
            if stage is not None:
                try:
                    _write_all(stage[1], (json.dumps(command) + "\n").encode())
                    header = json.loads(stage[2].readline())
                    data = stage[2].read(int(header["size"]))
                    if len(data) == header["size"]:
                        answer = (header, data)
                except (OSError, ValueError, KeyError, TypeError):
                    answer = None
            if answer is None:
                emit({"exercise": name, "status": "lost", "size": 0})
            else:
                emit(*answer)
        elif "probe" in command:
            ok = False
            try:
                uid, sub = _submission_id(command["probe"])
                ok_r, ok_w = os.pipe()
                pid = os.fork()
                if pid == 0:
                    try:
                        os.close(ok_r)
                        _enter_submission(uid, sub, command.get("limits", []))
                        os.write(ok_w, b"1")
                    finally:
                        os._exit(0)
                os.close(ok_w)
                os.waitpid(pid, 0)
                ok = os.read(ok_r, 1) == b"1"
                os.close(ok_r)
            except (OSError, ValueError, KeyError):
                ok = False
            emit({"probe": ok})
        elif "forget" in command:
            clean = False
            try:
                uid, sub = _submission_id(command["forget"])
                clean = _kill_uid(uid)
                shutil.rmtree(os.path.join(SUBMISSIONS, sub), ignore_errors=True)
                clean = clean and not os.path.lexists(os.path.join(SUBMISSIONS, sub))
            except (OSError, ValueError, KeyError):
                clean = False
            emit({"forgot": command.get("forget", {}).get("sub"), "clean": clean})
        elif "problems" in command:
            emit({"problems": problems[:20]})
        elif command.get("done"):
            break
    emit({"done": True, "problems": problems[:20]})
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
