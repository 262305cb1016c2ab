"""The sandbox itself: what code inside it can and cannot do."""

from __future__ import annotations

import json
import os
import sys
import textwrap

import pytest

from conftest import REPO
from grader import sandbox
from shutil import which as shutil_which

PROBE = textwrap.dedent("""
    import json, os, socket
    found = {}
    try:
        socket.create_connection(("1.1.1.1", 53), timeout=3)
        found["network"] = True
    except OSError:
        found["network"] = False
    found["uid"] = os.getuid()
    for key, path in PATHS.items():
        found[key] = os.path.exists(path)
    try:
        open(os.path.join(WORKDIR, "planted"), "w").write("x")
        found["workdir_writable"] = True
    except OSError:
        found["workdir_writable"] = False
    try:
        with open("/tmp/big", "wb") as f:
            for _ in range(64):
                f.write(b"0" * 2**24)
        found["scratch_unbounded"] = True
    except OSError:
        found["scratch_unbounded"] = False
    try:
        hog = bytearray(12 * 2**30)
        found["memory_unbounded"] = True
    except MemoryError:
        found["memory_unbounded"] = False
    print(json.dumps(found))
""")


def _run(code: str, tmp_path, hide=(), limits=sandbox.Limits(scratch_bytes=256 * 2**20)):
    workdir = tmp_path / "job"
    workdir.mkdir()
    uid = sandbox.pick_uid()
    sandbox.prepare(str(workdir), uid)
    argv = sandbox.wrap([sys.executable, "-c", code], str(workdir), hide=list(hide), limits=limits, uid=uid)
    out, err, timed_out = sandbox.run_capped(
        argv, env={"PATH": "/usr/bin:/bin", "HOME": sandbox.scratch_dir(str(workdir))},
        cwd=str(workdir), timeout=120, preexec_fn=sandbox.set_limits(limits, uid), max_bytes=2**20)
    assert not timed_out and out, err.decode(errors="replace")
    return json.loads(out.decode().strip().splitlines()[-1])


@pytest.mark.skipif(sandbox.available() != "bwrap", reason="needs bubblewrap")
def test_inside_bubblewrap(tmp_path):
    secret = tmp_path / "class" / "other_student.ipynb"
    secret.parent.mkdir()
    secret.write_text("{}")
    paths = {"solutions": str(REPO / "solutions" / "00_welcome.ipynb"),
             "reference": str(REPO / "gpt2course" / "reference" / "softmax.py"),
             "tests": str(REPO / "tests"),
             "data": str(REPO / "data" / "tinyshakespeare.txt"),
             "other_student": str(secret)}
    code = f"PATHS = {paths!r}\nWORKDIR = {str(tmp_path / 'job')!r}\n" + PROBE
    found = _run(code, tmp_path, hide=[secret.parent])
    assert found["network"] is False
    assert found["solutions"] is False and found["reference"] is False and found["tests"] is False
    assert found["other_student"] is False
    assert found["data"] is True
    assert found["workdir_writable"] is False
    assert found["scratch_unbounded"] is False
    assert found["memory_unbounded"] is False
    if os.geteuid() == 0:
        assert found["uid"] != 0


@pytest.mark.skipif(sandbox.available() != "bwrap" or os.geteuid() != 0,
                    reason="the process limit needs bubblewrap and an unprivileged uid")
def test_fork_bomb_is_contained(tmp_path):
    code = textwrap.dedent("""
        import os, time
        made = 0
        try:
            for _ in range(5000):
                if os.fork() == 0:
                    time.sleep(30)
                    os._exit(0)
                made += 1
        except OSError:
            pass
        print('{"made": %d}' % made, flush=True)
        os._exit(0)
    """)
    found = _run(code, tmp_path, limits=sandbox.Limits(processes=100))
    assert found["made"] < 100


def test_limits_apply_without_any_sandbox(tmp_path, monkeypatch):
    monkeypatch.setenv("GPT2COURSE_SANDBOX", "none")
    sandbox.available.cache_clear()
    try:
        code = ("import json\ntry:\n    hog = bytearray(12 * 2**30)\n    big = True\n"
                "except MemoryError:\n    big = False\nprint(json.dumps({'memory_unbounded': big}))")
        assert _run(code, tmp_path)["memory_unbounded"] is False
    finally:
        sandbox.available.cache_clear()


DENY_PROBE = textwrap.dedent("""
    import json, os, stat
    found = {key: os.path.exists(path) for key, path in PATHS.items()}
    sockets = []
    for top in ("/etc", "/usr", "/tmp", "/root", "/home", "/work", "/var", "/run", "/srv", "/opt", "/mnt"):
        for root, dirs, files in os.walk(top):
            for name in files + dirs:
                try:
                    if stat.S_ISSOCK(os.lstat(os.path.join(root, name)).st_mode):
                        sockets.append(os.path.join(root, name))
                except OSError:
                    pass
    found["sockets"] = sockets[:5]
    found["top"] = sorted(os.listdir("/"))
    print(json.dumps(found))
""")


@pytest.mark.skipif(sandbox.available() != "bwrap", reason="needs bubblewrap")
def test_only_what_the_notebook_needs_is_visible(tmp_path, monkeypatch):
    """Deny by default: another clone of the course (outside this checkout and /tmp), a copy
    installed in the Python runtime's site-packages, home folders, /run and every Unix socket
    are out of sight; the runtime's other libraries and data/ are there."""
    import tempfile
    from pathlib import Path

    outside = Path(tempfile.mkdtemp(dir=Path.home(), prefix=".gpt2course-sandbox-test-"))
    try:
        clone = outside / "second-clone" / "gpt2course" / "reference" / "softmax.py"
        runtime = outside / "runtime"
        site = runtime / "lib" / "python3.11" / "site-packages"
        for path in (clone, site / "gpt2course" / "reference" / "softmax.py",
                     site / "grader" / "check.py", site / "some_library" / "__init__.py"):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("x = 1\n")
        os.chmod(outside, 0o755)
        real = sandbox._runtime_paths
        monkeypatch.setattr(sandbox, "_runtime_paths", lambda: real() + [runtime])
        paths = {"clone": str(clone), "installed_reference": str(site / "gpt2course" / "reference" / "softmax.py"),
                 "installed_grader": str(site / "grader" / "check.py"),
                 "library": str(site / "some_library" / "__init__.py"),
                 "repo_readme": str(REPO / "README.md"), "solutions": str(REPO / "solutions"),
                 "data": str(REPO / "data" / "tinyshakespeare.txt"), "python": sys.executable,
                 "run": "/run", "home": "/home", "var": "/var", "etc_shadow": "/etc/shadow"}
        found = _run(f"PATHS = {paths!r}\n" + DENY_PROBE, tmp_path)
    finally:
        import shutil
        shutil.rmtree(outside)
    assert found["library"] and found["data"] and found["python"], found
    hidden = ["clone", "installed_reference", "installed_grader", "repo_readme", "solutions", "run",
              "home", "var", "etc_shadow"]
    assert not [k for k in hidden if found[k]], found
    assert found["sockets"] == [], found["sockets"]
    assert set(found["top"]) <= {"bin", "dev", "etc", "lib", "lib32", "lib64", "libx32", "proc", "sbin",
                                 "tmp", "usr", *{Path(p).parts[1] for p in (sys.prefix, sys.base_prefix,
                                                                             str(REPO))}}, found["top"]


def test_a_grader_without_a_uid_to_give_still_limits_processes(tmp_path):
    """Where the command keeps the grader's own user id (an instructor who is not root), the
    process limit counts that user's processes: it is set to what the user runs now plus the
    sandbox's allowance."""
    import resource
    import subprocess

    limits = sandbox.Limits(processes=77)
    before = sandbox.own_tasks()
    proc = subprocess.run([sys.executable, "-c", "import resource; print(resource.getrlimit(resource.RLIMIT_NPROC)[0])"],
                          capture_output=True, text=True, preexec_fn=sandbox.set_limits(limits, None), timeout=60)
    limit = int(proc.stdout)
    assert before + 77 - 20 <= limit <= sandbox.own_tasks() + 77 + 20, (before, limit)
    assert limit < resource.getrlimit(resource.RLIMIT_NPROC)[0] or resource.getrlimit(resource.RLIMIT_NPROC)[0] == -1


NON_ROOT_PROBE = """
import json, os, socket, stat
found = {"uid": os.getuid(), "euid": os.geteuid()}
found.update({key: os.path.exists(path) for key, path in PATHS.items()})
try:
    socket.create_connection(("1.1.1.1", 53), timeout=3)
    found["network"] = True
except OSError:
    found["network"] = False
sockets = []
for top in ("/etc", "/usr", "/tmp", "/var", "/run", "/home", "/work", "/root"):
    for root, dirs, files in os.walk(top):
        for name in files + dirs:
            try:
                if stat.S_ISSOCK(os.lstat(os.path.join(root, name)).st_mode):
                    sockets.append(os.path.join(root, name))
            except OSError:
                pass
found["sockets"] = sockets[:5]
made = 0
try:
    for _ in range(2000):
        if os.fork() == 0:
            import time
            time.sleep(20)
            os._exit(0)
        made += 1
except OSError:
    pass
found["made"] = made
print(json.dumps(found), flush=True)
os._exit(0)
"""

NON_ROOT_DRIVER = textwrap.dedent("""
    import json, os, sys
    sys.path.insert(0, PKG)
    from grader import sandbox
    workdir = os.path.join(JOB, "job")
    os.makedirs(workdir)
    limits = sandbox.Limits(processes=60, scratch_bytes=64 * 2**20)
    uid = sandbox.pick_uid()
    argv = sandbox.wrap([sys.executable, "-c", "PATHS = %r\\n" % PATHS + PROBE], workdir, limits=limits, uid=uid)
    out, err, timed_out = sandbox.run_capped(argv, env={"PATH": "/usr/bin:/bin"}, cwd=workdir, timeout=120,
                                             preexec_fn=sandbox.set_limits(limits, uid), max_bytes=2**20)
    print(json.dumps({"kind": sandbox.available(), "uid_given": uid, "timed_out": timed_out,
                      "err": err.decode(errors="replace")[-500:],
                      "found": json.loads(out.decode().strip().splitlines()[-1]) if out and out.strip() else None}))
""")


@pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists("/usr/bin/python3") or not shutil_which("useradd"),
                    reason="creates an unprivileged user: needs root, useradd and the system's python3")
def test_as_an_unprivileged_user(tmp_path):
    """The usual instructor is not root. A user the test creates runs the sandbox (bubblewrap
    in a user namespace, the grader's own user id): another checkout, the course's repository
    and a planted clone are out of sight, no socket and no network are reachable, and a fork bomb
    stops at the process limit."""
    import pwd
    import shutil
    import subprocess
    import tempfile
    from pathlib import Path

    user = "gpt2course-grader-test"
    try:
        pwd.getpwnam(user)
    except KeyError:
        subprocess.run(["useradd", "--no-create-home", "--shell", "/bin/sh", user], check=True)
    job = Path(tempfile.mkdtemp(dir="/var/tmp", prefix="gpt2course-nonroot-"))
    try:
        (job / "pkg" / "grader").mkdir(parents=True)
        for name in ("sandbox.py", "paths.py"):
            shutil.copy(REPO / "grader" / name, job / "pkg" / "grader" / name)
        (job / "pkg" / "grader" / "__init__.py").write_text("")
        clone = job / "second-clone" / "gpt2course" / "reference" / "softmax.py"
        clone.parent.mkdir(parents=True)
        clone.write_text("x = 1\n")
        subprocess.run(["chmod", "-R", "a+rX", str(job)], check=True)
        subprocess.run(["chown", user, str(job)], check=True)
        paths = {"clone": str(clone), "repo_readme": str(REPO / "README.md"), "run": "/run", "home": "/home"}
        driver = (f"PKG = {str(job / 'pkg')!r}\nJOB = {str(job)!r}\nPATHS = {paths!r}\n"
                  f"PROBE = {NON_ROOT_PROBE!r}\n" + NON_ROOT_DRIVER)
        proc = subprocess.run(["runuser", "-u", user, "--", "/usr/bin/python3", "-c", driver],
                              capture_output=True, text=True, timeout=300, cwd="/")
    finally:
        shutil.rmtree(job, ignore_errors=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["kind"] == "bwrap" and report["uid_given"] is None, report
    found = report["found"]
    assert found is not None, report
    assert found["uid"] != 0 and found["euid"] != 0, found
    assert not found["network"] and found["sockets"] == [], found
    assert not (found["clone"] or found["repo_readme"] or found["run"] or found["home"]), found
    assert found["made"] < 60, found
