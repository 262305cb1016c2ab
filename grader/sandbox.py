"""Running an untrusted command with limits: resource limits always, a sandbox where one works.

The sandbox is bubblewrap when it can run here: the whole file system read-only except the job's
own folder, a private /tmp, the repository's solutions/ hidden, no network, its own PID and IPC
namespaces. Where bubblewrap cannot run, ``unshare --net`` still removes the network; where
neither can, the command runs with resource limits only and ``describe()`` says so.
"""

from __future__ import annotations

import functools
import os
import resource
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from .paths import REPO, SOLUTIONS


@dataclass(frozen=True)
class Limits:
    memory_bytes: int = 6 * 2**30      # address space of each process (torch needs ~1 GB)
    cpu_seconds: int = 900             # CPU time of each process
    file_bytes: int = 256 * 2**20      # largest file a process may write
    open_files: int = 1024


def _probe(argv: list[str]) -> bool:
    try:
        return subprocess.run(argv + ["true"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              timeout=20).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


@functools.lru_cache(maxsize=None)
def available() -> str:
    """"bwrap", "unshare" or "none": the strongest isolation that works on this machine."""
    if os.environ.get("GPT2COURSE_SANDBOX") in {"bwrap", "unshare", "none"}:
        return os.environ["GPT2COURSE_SANDBOX"]
    if shutil.which("bwrap") and _probe(["bwrap", "--ro-bind", "/", "/", "--dev", "/dev",
                                         "--proc", "/proc", "--unshare-net", "--unshare-pid"]):
        return "bwrap"
    if shutil.which("unshare") and _probe(["unshare", "--net", "--map-root-user"]):
        return "unshare"
    return "none"


def describe() -> str:
    kind = available()
    return {
        "bwrap": "bubblewrap sandbox (read-only system, private /tmp, no network)",
        "unshare": "no network (unshare); bubblewrap is not available, install it for full isolation",
        "none": "WARNING: no sandbox available (install bubblewrap); only resource limits apply",
    }[kind]


def wrap(argv: list[str], workdir: str) -> list[str]:
    """``argv`` wrapped in the strongest available isolation, with ``workdir`` writable."""
    kind = available()
    if kind == "bwrap":
        # The private /tmp would hide a repository or virtual environment living under /tmp:
        # bind those back (read-only) before hiding solutions/ on top.
        needed = {Path(p).resolve() for p in (REPO, sys.prefix, sys.base_prefix,
                                               os.path.dirname(os.path.realpath(sys.executable)))}
        keep = [arg for p in sorted(needed) if _under(p, Path("/tmp").resolve())
                for arg in ("--ro-bind", str(p), str(p))]
        hidden = [arg for d in (SOLUTIONS, REPO / ".git") if d.is_dir() for arg in ("--tmpfs", str(d))]
        return ["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
                "--tmpfs", "/tmp", *keep, "--bind", workdir, workdir, *hidden,
                "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
                "--die-with-parent", "--new-session", "--chdir", workdir, *argv]
    if kind == "unshare":
        return ["unshare", "--net", "--map-root-user", *argv]
    return argv


def _under(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def set_limits(limits: Limits):
    """A preexec_fn applying ``limits`` to the child (and everything it starts)."""
    def apply():
        os.setsid()
        for which, value in ((resource.RLIMIT_AS, limits.memory_bytes),
                             (resource.RLIMIT_CPU, limits.cpu_seconds),
                             (resource.RLIMIT_FSIZE, limits.file_bytes),
                             (resource.RLIMIT_NOFILE, limits.open_files),
                             (resource.RLIMIT_CORE, 0)):
            resource.setrlimit(which, (value, value))
    return apply
