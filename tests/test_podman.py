"""Real podman (with conmon) driving ociruntime: `podman --runtime OURS`.

Everything podman keeps is private to this session (--root, --runroot,
--tmpdir, network config, events file); the image is imported offline from
the busybox rootfs.
The session fixture removes the containers, podman's storage, mounts and
cgroups at the end, and fails (as a teardown error) if the runtime left any
state, mount or cgroup behind.  Skipped only if podman/conmon are missing.
"""
import json
import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

from conftest import RUNTIME
from engines import (CliClient, cgroups_named, make_rootfs, mounts_under, remove_cgroups, run_in_pty,
                     unmount_all_under, wait_for)

IMAGE = "localhost/ociruntime-test/busybox:latest"
# podman asks for nofile=1048576 by default; this machine has no
# CAP_SYS_RESOURCE in the bounding set to allow it.
ULIMITS = ("--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096")
LONG = ('trap "echo got-usr1" USR1; trap "echo got-term; exit 0" TERM; echo started; '
        'while :; do sleep 0.1; done')

missing = [b for b in ("podman", "conmon") if not shutil.which(b)]
if os.geteuid() != 0:
    missing.append("root")
pytestmark = pytest.mark.skipif(bool(missing), reason=f"needs {', '.join(missing)}")


class Podman(CliClient):
    program = "podman"

    def __init__(self, base):
        self.base = Path(base)
        # podman 4.3 drops --runtime-flag from some calls (delete after
        # --rm), so the runtime keeps its default root; we look there for
        # what belongs to this session's containers.
        self.runtime_root = Path("/run/ociruntime")
        self.names = []
        self.ids = set()
        self.global_args = [
            "--root", str(self.base / "root"), "--runroot", str(self.base / "runroot"),
            "--tmpdir", str(self.base / "tmp"), "--network-config-dir", str(self.base / "net"),
            "--cgroup-manager", "cgroupfs", "--events-backend", "file",
            "--runtime", RUNTIME,
        ]

    def argv(self, *args):
        return ["podman", *self.global_args, *map(str, args)]

    def name(self):
        n = f"ociruntime-test-{uuid.uuid4().hex[:8]}"
        self.names.append(n)
        return n

    def run(self, *args, **kw):
        """podman run --rm with the session's limits, no network."""
        return self.cmd("run", "--rm", *ULIMITS, "--network", "none", *args, **kw)

    def run_d(self, *args):
        name = self.name()
        cid = self.ok("run", "-d", "--name", name, *ULIMITS, "--network", "none", *args).strip()
        self.ids.add(cid)
        return name

    def status(self, name):
        return self.ok("inspect", "-f", "{{.State.Status}}", name).strip()


@pytest.fixture(scope="session")
def podman():
    base = tempfile.mkdtemp(prefix="ociruntime-test-podman-", dir="/tmp")
    pm = Podman(base)
    try:
        rootfs = make_rootfs(pm.base / "rootfs")
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "--numeric-owner", "-c", "."],
                               stdout=subprocess.PIPE)
        pm.ok("import", "--change", 'CMD ["/bin/sh"]', "--change",
              "ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin", "-", IMAGE, stdin=tar.stdout, timeout=120)
        tar.wait()
        yield pm
    finally:
        problems = _teardown(pm)
    if problems:
        pytest.fail(f"podman session left behind: {problems}")


def _podman_processes(base):
    """Pids of the processes whose command line names the session's
    directory (podman, conmon, their cleanup calls)."""
    pids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if str(base).encode() in f.read():
                    pids.append(int(pid))
        except OSError:
            pass
    return pids


def _teardown(pm):
    """Remove everything; what the runtime left behind, as a list."""
    r = pm.cmd("ps", "-a", "--no-trunc", "--format", "{{.ID}}", timeout=60)
    pm.ids.update(r.stdout.split())
    # every container of the session, --rm ones too, from the events file
    r = pm.cmd("events", "--stream=false", "--filter", "type=container", "--format", "{{.ID}}", timeout=60)
    pm.ids.update(i for i in r.stdout.split() if len(i) == 64)
    pm.cmd("rm", "-a", "-f", "-t", "0", timeout=120)
    problems = []
    left = [n for n in pm.ids if (pm.runtime_root / n).exists()]
    if left:
        problems += [f"runtime state {pm.runtime_root / n}" for n in left]
        for n in left:
            subprocess.run([RUNTIME, "--root", str(pm.runtime_root), "delete", "--force", n],
                           capture_output=True, timeout=60)
    cgs = cgroups_named(pm.ids)
    remove_cgroups(cgs)
    problems += [f"cgroup {c}" for c in cgroups_named(pm.ids)]
    pm.cmd("system", "reset", "--force", timeout=120)
    # conmon starts `podman container cleanup` when a container exits, on
    # its own: one still running opens the store again and bind-mounts its
    # overlay directory onto itself after we unmounted it.  Wait for them.
    wait_for(lambda: not _podman_processes(pm.base), timeout=30)
    unmount_all_under(pm.base)
    problems += [f"mount {m}" for m in mounts_under(pm.base)]
    if not mounts_under(pm.base):
        shutil.rmtree(pm.base, ignore_errors=True)
    return problems


# -- run ----------------------------------------------------------------------

def test_run_echo(podman):
    r = podman.run(IMAGE, "echo", "hello")
    assert (r.returncode, r.stdout) == (0, "hello\n"), r.stderr


def test_exit_codes(podman):
    assert podman.run(IMAGE, "sh", "-c", "exit 3").returncode == 3
    # podman maps runc's wording to 127 / 126
    r = podman.run(IMAGE, "no-such-command")
    assert r.returncode == 127, r.stderr
    assert "executable file not found in $PATH" in r.stderr
    r = podman.run(IMAGE, "/etc/passwd")
    assert r.returncode == 126, r.stderr
    assert "permission denied" in r.stderr


def test_run_with_tty(podman):
    rc, out = run_in_pty(podman.argv("run", "--rm", "-t", *ULIMITS, "--network", "none", IMAGE,
                                     "sh", "-c", "[ -t 0 ] && [ -t 1 ] && echo is-a-tty; tty"))
    assert rc == 0, out
    assert "is-a-tty" in out and "/dev/pts/" in out, out


def test_user(podman):
    r = podman.run("--user", "1000", IMAGE, "id")
    assert r.returncode == 0, r.stderr
    assert "uid=1000(user) gid=1000(user)" in r.stdout


def test_read_only_root(podman):
    r = podman.run("--read-only", IMAGE, "sh", "-c",
                   "touch /x 2>/dev/null && echo rootfs-writable; touch /tmp/y && echo tmp-ok")
    assert (r.returncode, r.stdout) == (0, "tmp-ok\n"), r.stderr


def test_cap_drop(podman):
    r = podman.run("--cap-drop", "ALL", IMAGE, "grep", "-E", "^Cap(Eff|Prm|Bnd):", "/proc/self/status")
    assert r.returncode == 0, r.stderr
    assert [l.split()[1] for l in r.stdout.splitlines()] == ["0000000000000000"] * 3, r.stdout
    r = podman.run("--cap-drop", "CHOWN", IMAGE, "sh", "-c", "touch /f; chown 1000 /f")
    assert r.returncode != 0


def test_memory_limit(podman):
    r = podman.run("--memory", "64m", IMAGE, "sh", "-c",
                   "cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes")
    assert (r.returncode, r.stdout) == (0, "67108864\n"), r.stderr


def test_memory_512k(podman):
    """Issue 4: `podman run --memory 512k ... echo it works` (crun runs it,
    runc fails at 4M): podman's default seccomp profile and all."""
    r = podman.run("--memory", "512k", IMAGE, "echo", "it works")
    assert (r.returncode, r.stdout) == (0, "it works\n"), r.stderr


@pytest.mark.parametrize("user", ["0", "1000"])
def test_classic_allow_list_seccomp_profile(podman, user):
    """Issue 12.3: a profile that allows what busybox needs and the calls
    runc makes after its filter, but no openat2, close_range or getcwd;
    podman's capabilities and noNewPrivileges false (the early load)."""
    from test_seccomp_order import minimal_profile
    profile = podman.base / "minimal-seccomp.json"
    profile.write_text(json.dumps(minimal_profile()))
    opts = ("--security-opt", f"seccomp={profile}", "--user", user)
    r = podman.run(*opts, IMAGE, "echo", "filtered")
    assert (r.returncode, r.stdout) == (0, "filtered\n"), r.stderr
    c = podman.run_d(*opts, IMAGE, "sleep", "300")
    assert podman.ok("exec", c, "echo", "exec-filtered") == "exec-filtered\n"


# -- a detached container -----------------------------------------------------

def test_detached_run_and_exec(podman):
    c = podman.run_d(IMAGE, "sh", "-c", LONG)
    assert podman.status(c) == "running"
    assert podman.ok("exec", c, "sh", "-c", "echo exec-ok") == "exec-ok\n"
    assert podman.cmd("exec", c, "sh", "-c", "exit 4").returncode == 4
    assert podman.ok("exec", "--user", "1000", c, "id", "-u") == "1000\n"
    r = podman.cmd("exec", c, "no-such-command")
    assert r.returncode == 127, r.stderr
    r = podman.cmd("exec", c, "/etc/passwd")
    assert r.returncode == 126, r.stderr
    wait_for(lambda: "started" in podman.ok("logs", c), what="container output in podman logs")


def test_exec_with_tty(podman):
    c = podman.run_d(IMAGE, "sleep", "300")
    rc, out = run_in_pty(podman.argv("exec", "-t", c, "sh", "-c", "[ -t 1 ] && echo exec-tty; tty"))
    assert rc == 0, out
    assert "exec-tty" in out and "/dev/pts/" in out, out


def test_top(podman):
    c = podman.run_d(IMAGE, "sh", "-c", LONG)
    out = podman.ok("top", c, "pid", "args")
    assert "echo got-usr1" in out, out


def test_pause_and_resume(podman):
    c = podman.run_d(IMAGE, "sh", "-c", LONG)
    podman.ok("pause", c)
    assert podman.status(c) == "paused"
    podman.ok("unpause", c)
    assert podman.status(c) == "running"
    assert podman.ok("exec", c, "echo", "alive") == "alive\n"


def test_kill_of_a_paused_container(podman):
    """SIGKILL reaches a paused container: the freezer is thawed after it
    (podman waited for an exit file that never came)."""
    c = podman.run_d(IMAGE, "sleep", "300")
    podman.ok("pause", c)
    podman.ok("kill", c)
    assert podman.ok("wait", c).strip() == "137"
    assert podman.status(c) == "exited"
    podman.ok("rm", c)


def test_kill_signal_and_stop(podman):
    c = podman.run_d(IMAGE, "sh", "-c", LONG)
    podman.ok("kill", "-s", "USR1", c)
    wait_for(lambda: "got-usr1" in podman.ok("logs", c), what="the USR1 trap")
    podman.ok("stop", "-t", "20", c)
    assert podman.status(c) == "exited"
    assert podman.ok("inspect", "-f", "{{.State.ExitCode}}", c).strip() == "0"
    assert "got-term" in podman.ok("logs", c)
    # and it starts again
    podman.ok("start", c)
    wait_for(lambda: podman.status(c) == "running", what="restart")


def test_kill_and_wait(podman):
    c = podman.run_d(IMAGE, "sleep", "300")
    podman.ok("kill", c)
    assert podman.ok("wait", c).strip() == "137"
    assert podman.status(c) == "exited"
    podman.ok("rm", c)
    assert podman.cmd("container", "exists", c).returncode == 1


def test_wait_reports_exit_code(podman):
    c = podman.run_d(IMAGE, "sh", "-c", "sleep 0.2; exit 6")
    assert podman.ok("wait", c).strip() == "6"


def test_rm_force_running(podman):
    c = podman.run_d(IMAGE, "sleep", "300")
    podman.ok("rm", "-f", "-t", "0", c)
    assert podman.cmd("container", "exists", c).returncode == 1
