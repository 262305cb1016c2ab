"""Running an untrusted command with limits: resource limits always, a sandbox where one works.

Under bubblewrap (when it runs here) the command's file system is deny-by-default: a new root
that holds only the system's programs and libraries (/usr and its /bin, /lib links, a few files
of /etc), the Python runtime that runs the grader (with any installed copy of gpt2course or the
grader in it covered), the course's data/, the job's folder, read-only, and a private
size-limited /tmp, its only writable space. No home folder, no other checkout or copy of the
course, no course folder or LMS download, no /run (so no Unix socket of the host), no network
(its own network namespace), and its own PID, IPC and UTS namespaces. Run by root, the command
also drops to an unprivileged user id of its own, so that the process limit holds (root ignores
RLIMIT_NPROC). Where bubblewrap cannot run, ``unshare --net`` still removes the network; where
neither can, only the resource limits apply, and ``describe()`` says so.
"""

from __future__ import annotations

import functools
import os
import resource
import secrets
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from .paths import REPO

SCRATCH = "/tmp/work"  # the command's writable folder under bubblewrap


@dataclass(frozen=True)
class Limits:
    memory_bytes: int = 6 * 2**30      # address space of each process (torch needs ~1 GB)
    cpu_seconds: int = 900             # CPU time of each process
    file_bytes: int = 256 * 2**20      # largest file a process may write
    scratch_bytes: int = 512 * 2**20   # size of the private /tmp (bubblewrap)
    processes: int = 256               # processes and threads of the sandbox's user id
    open_files: int = 1024


def _probe(argv: list[str]) -> bool:
    try:
        return subprocess.run(argv + ["true"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              timeout=20).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


@functools.lru_cache(maxsize=None)
def available() -> str:
    """"bwrap", "unshare" or "none": the strongest isolation that works on this machine.

    ``GPT2COURSE_SANDBOX`` forces one (tests use it to exercise the fallbacks).
    """
    if os.environ.get("GPT2COURSE_SANDBOX") in {"bwrap", "unshare", "none"}:
        return os.environ["GPT2COURSE_SANDBOX"]
    if shutil.which("bwrap") and _probe(["bwrap", "--ro-bind", "/", "/", "--dev", "/dev",
                                         "--proc", "/proc", "--unshare-net", "--unshare-pid"]):
        return "bwrap"
    if shutil.which("unshare") and _probe(["unshare", "--net", "--map-root-user"]):
        return "unshare"
    return "none"


def describe() -> str:
    return {
        "bwrap": "bubblewrap sandbox (read-only system, private /tmp, no network)",
        "unshare": "no network (unshare); bubblewrap is not available, install it for full isolation",
        "none": "WARNING: no sandbox available (install bubblewrap); only resource limits apply",
    }[available()]


def _under(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def wrap(argv: list[str], workdir: str, hide: list[Path] = (), limits: Limits = Limits(),
         uid: int | None = None) -> list[str]:
    """``argv`` wrapped in the strongest available isolation.

    ``workdir`` (the job's inputs) is visible read-only; under bubblewrap the command writes
    only to its private /tmp (``SCRATCH`` is meant for it).
    """
    kind = available()
    if kind == "bwrap":
        return _bwrap(workdir, hide, limits, uid) + argv
    if kind == "unshare":
        return ["unshare", "--net", "--map-root-user", *argv]
    return argv


# The host's system folders the command gets (those that exist; a link such as /bin -> usr/bin is
# made again as a link) and the files of /etc that programs and libraries read.
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
ETC_FILES = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "alternatives", "localtime", "passwd", "group",
             "nsswitch.conf", "hosts", "fonts", "mime.types", "ssl")
# Packages that must not be importable from the runtime's site-packages (the course's answers,
# the checks' oracles): the sandbox gets its own stubbed copy on PYTHONPATH instead.
COURSE_PACKAGES = ("gpt2course", "grader")


def _under_any(path: Path, folders) -> bool:
    return any(_under(path, f) for f in folders)


def course_copies(runtime: list[Path]) -> list[Path]:
    """Installed copies of the course's packages inside the runtime's folders."""
    found = []
    for root in runtime:
        for site in [*root.glob("lib/python*/site-packages"), *root.glob("lib/python*/dist-packages"),
                     *root.glob("Lib/site-packages")]:
            found += [site / name for name in COURSE_PACKAGES if (site / name).is_dir()]
    return sorted(set(found))


def _bwrap(workdir: str, hide, limits: Limits, uid: int | None) -> list[str]:
    args = ["bwrap", "--dev", "/dev", "--proc", "/proc"]
    made: set[Path] = {Path("/")}

    def parents(path: Path):
        # bubblewrap creates missing mount points 0700: make them traversable first.
        for folder in reversed(path.parents):
            if folder not in made:
                args.extend(["--perms", "0755", "--dir", str(folder)])
                made.add(folder)
        made.add(path)

    for name in SYSTEM_DIRS:
        path = Path(name)
        if path.is_symlink():
            args.extend(["--symlink", os.readlink(path), name])
            made.add(path)
        elif path.is_dir():
            args.extend(["--ro-bind", name, name])
            made.add(path)
    for name in ETC_FILES:
        path = Path("/etc") / name
        if path.exists():
            parents(path)
            args.extend(["--ro-bind", str(path), str(path)])
    args += ["--perms", "1777", "--size", str(limits.scratch_bytes), "--tmpfs", "/tmp"]
    made.add(Path("/tmp"))
    system = [Path(d) for d in SYSTEM_DIRS]
    runtime = sorted({p for p in _runtime_paths() if p.exists() and not _under_any(p, system)})
    runtime = [p for p in runtime if not any(o != p and _under(p, o) for o in runtime)]
    keep = [*runtime, (REPO / "data").resolve(), Path(workdir).resolve()]
    for path in keep:
        if path.exists():
            parents(path)
            args.extend(["--ro-bind", str(path), str(path)])
    bound = [*system, *keep]
    covered = [*course_copies([*runtime, *system]), *(Path(h).resolve() for h in hide)]
    for folder in sorted(set(covered)):
        if folder.is_dir() and _under_any(folder, bound) and not _under_any(folder, keep[-2:]):
            args.extend(["--tmpfs", str(folder)])
    args += ["--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
             "--die-with-parent", "--new-session", "--chdir", "/tmp"]
    if uid is not None:  # bubblewrap mounts as root; the command itself runs as ``uid``
        args += ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
                 "--inh-caps=-all", "--bounding-set=-all", "--"]
    return args


def _blocked_ancestors(paths) -> set[Path]:
    blocked = set()
    for path in paths:
        for folder in [*reversed(path.parents), path]:
            try:
                if folder != Path("/") and not folder.stat().st_mode & 0o001:
                    blocked.add(folder)
                    break
            except OSError:
                break
    return blocked


def _runtime_paths() -> list[Path]:
    return [Path(p).resolve() for p in (sys.prefix, sys.base_prefix, os.path.realpath(sys.executable))]


def scratch_dir(workdir: str) -> str:
    """The folder the sandboxed command may write to."""
    return SCRATCH if available() == "bwrap" else os.path.join(workdir, "scratch")


def pick_uid() -> int | None:
    """A fresh unprivileged user id for one sandbox when we are root (None otherwise).

    Outside bubblewrap, only when other users can reach this Python (a Python under /root
    cannot be run by them without the sandbox's own mounts).
    """
    if os.geteuid() != 0:
        return None
    if available() == "bwrap":
        if not shutil.which("setpriv"):
            return None
    elif _blocked_ancestors(_runtime_paths() + [REPO.resolve()]):
        return None
    return 61000 + secrets.randbelow(4000)


def prepare(workdir: str, uid: int | None) -> None:
    """Make the job's folder readable by the sandbox user (and its scratch folder writable)."""
    for root, dirs, files in os.walk(workdir):
        os.chmod(root, 0o755)
        for name in files:
            os.chmod(os.path.join(root, name), 0o644)
    scratch = os.path.join(workdir, "scratch")
    os.makedirs(scratch, exist_ok=True)
    if uid is not None:
        os.chown(scratch, uid, uid)


def own_tasks() -> int:
    """Processes and threads of this real user id now: what RLIMIT_NPROC counts."""
    me, count = os.getuid(), 0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/status") as f:
                    uid_line = next(line for line in f if line.startswith("Uid:"))
                if int(uid_line.split()[1]) == me:
                    count += len(os.listdir(f"/proc/{entry.name}/task"))
            except (OSError, StopIteration, ValueError, IndexError):
                pass
    return count


def set_limits(limits: Limits, uid: int | None):
    """A preexec_fn: new session, resource limits, and (as root) the unprivileged ``uid``.

    Without a uid of its own (a grader that is not root), the command shares the grader's user
    id, and RLIMIT_NPROC counts that user's every process: the limit is then what the user runs
    now plus ``limits.processes``, so a fork bomb stops there as well.
    """
    nproc = limits.processes if uid is not None else own_tasks() + limits.processes

    def apply():
        os.setsid()
        for which, value in ((resource.RLIMIT_AS, limits.memory_bytes),
                             (resource.RLIMIT_CPU, limits.cpu_seconds),
                             (resource.RLIMIT_FSIZE, limits.file_bytes),
                             (resource.RLIMIT_NOFILE, limits.open_files),
                             (resource.RLIMIT_CORE, 0)):
            resource.setrlimit(which, (value, value))
        resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
        if uid is not None and available() != "bwrap":  # under bubblewrap, setpriv drops it
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
    return apply


def warm_capable() -> bool:
    """Whether a warm worker (grader/worker.py) can run here: bubblewrap started by root, so
    that the sandbox's trusted processes can give each submission a user id, a mount and an IPC
    namespace of its own (grader/run_notebook.py, warm mode)."""
    return available() == "bwrap" and os.geteuid() == 0


def exposed(paths) -> frozenset[Path]:
    """The folders among ``paths`` that a sandbox would show unless hidden (those inside the
    system, runtime or data folders it binds): the ones ``wrap``'s ``hide`` must cover."""
    system = [Path(d) for d in SYSTEM_DIRS]
    bound = [*system, *(p for p in _runtime_paths() if p.exists()), (REPO / "data").resolve()]
    return frozenset(p for p in (Path(h).resolve() for h in paths) if p.is_dir() and _under_any(p, bound))


def warm_limits(limits: Limits):
    """A preexec_fn for a warm worker's sandbox: a new session and the limits of its trusted
    processes (memory, file size, open files, no core). Each submission's processes get all of
    ``limits`` (CPU time and processes too) from run_notebook.py when they enter it."""
    def apply():
        os.setsid()
        for which, value in ((resource.RLIMIT_AS, limits.memory_bytes),
                             (resource.RLIMIT_FSIZE, limits.file_bytes),
                             (resource.RLIMIT_NOFILE, limits.open_files),
                             (resource.RLIMIT_CORE, 0)):
            resource.setrlimit(which, (value, value))
    return apply


def submission_limits(limits: Limits) -> list[tuple[int, int]]:
    """(resource, value) pairs that run_notebook.py sets in each submission's processes."""
    return [(resource.RLIMIT_AS, limits.memory_bytes), (resource.RLIMIT_CPU, limits.cpu_seconds),
            (resource.RLIMIT_FSIZE, limits.file_bytes), (resource.RLIMIT_NOFILE, limits.open_files),
            (resource.RLIMIT_CORE, 0), (resource.RLIMIT_NPROC, limits.processes)]


def run_capped(argv, *, env, cwd, timeout, preexec_fn, max_bytes: int) -> tuple[bytes | None, bytes, bool]:
    """Run ``argv``; return (stdout, or None when it exceeded ``max_bytes``; stderr tail; timed out)."""
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, preexec_fn=preexec_fn)
    chunks, size, tail = [], [0], [b""]

    def read_out():
        for chunk in iter(lambda: proc.stdout.read(1 << 16), b""):
            size[0] += len(chunk)
            if size[0] <= max_bytes:
                chunks.append(chunk)

    def read_err():
        for chunk in iter(lambda: proc.stderr.read(1 << 16), b""):
            tail[0] = (tail[0] + chunk)[-4000:]

    readers = [threading.Thread(target=read_out, daemon=True), threading.Thread(target=read_err, daemon=True)]
    for r in readers:
        r.start()
    timed_out = False
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        try:
            os.killpg(proc.pid, 9)
        except OSError:
            proc.kill()
        proc.wait()
    for r in readers:
        r.join(timeout=10)
    out = b"".join(chunks) if size[0] <= max_bytes else None
    return out, tail[0], timed_out
