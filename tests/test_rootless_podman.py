"""Rootless podman end to end: an ordinary user (made by the fixture, with
/etc/subuid and /etc/subgid entries) runs `podman --runtime OURS` with
its own storage under its home, cgroupfs (this v1 host delegates no
cgroups: no limits), no network, and an image imported offline from the
busybox rootfs.  podman runs the runtime as root of podman's own user
namespace and passes no --root: the runtime is rootless by detection.

The module fixture removes the containers, podman's storage and the user
(with everything it left running), and fails if the runtime left state.
"""
import os
import shutil
import subprocess
import uuid

import pytest

from conftest import RUNTIME
from engines import make_rootfs, run_in_pty, wait_for
from rootless_user import RootlessUser
from test_rootless import _skip_reason

IMAGE = "localhost/ociruntime-rootless/busybox:latest"

missing = [b for b in ("podman", "conmon", "newuidmap", "newgidmap") if not shutil.which(b)]
pytestmark = [
    pytest.mark.skipif(bool(missing), reason=f"needs {', '.join(missing)}"),
    pytest.mark.skipif(_skip_reason() is not None, reason=str(_skip_reason())),
]


class RootlessPodman:
    def __init__(self, user):
        self.user = user
        self.names = []
        self.store = os.path.join(user.home, "podman")
        self.runtime_root = os.path.join(user.xdg, "ociruntime")

    def argv(self, *args):
        return ["podman", "--root", self.store + "/root", "--runroot", self.store + "/runroot",
                "--cgroup-manager", "cgroupfs", "--events-backend", "file",
                "--runtime", RUNTIME, *map(str, args)]

    def cmd(self, *args, timeout=120, **kw):
        return self.user.run(self.argv(*args), timeout=timeout, **kw)

    def ok(self, *args, **kw):
        r = self.cmd(*args, **kw)
        assert r.returncode == 0, f"podman {' '.join(map(str, args))}: {r.returncode}: {r.stderr}"
        return r.stdout

    def name(self):
        n = f"rl-{uuid.uuid4().hex[:8]}"
        self.names.append(n)
        return n

    def run(self, *args, **kw):
        return self.cmd("run", "--rm", "--network", "none", *args, **kw)


@pytest.fixture(scope="module")
def pm():
    u = RootlessUser.make("ocirlpm")
    p = RootlessPodman(u)
    try:
        rootfs = make_rootfs(os.path.join(u.home, "rootfs"))
        tar = os.path.join(u.home, "rootfs.tar")
        subprocess.run(["tar", "-C", str(rootfs), "--numeric-owner", "-cf", tar, "."], check=True)
        subprocess.run(["chown", f"{u.uid}:{u.gid}", tar], check=True)
        p.ok("import", "--change", 'CMD ["/bin/sh"]', "--change",
             "ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin", tar, IMAGE)
        yield p
        p.cmd("rm", "-a", "-f", "-t", "0")
        left = os.listdir(p.runtime_root) if os.path.isdir(p.runtime_root) else []
        assert not left, f"runtime state left behind: {left}"
    finally:
        p.cmd("system", "reset", "--force")
        u.remove()


def test_run(pm):
    """The issue's third row: podman passes no --root, runs us as its root."""
    r = pm.run(IMAGE, "sh", "-c", "id -u; cat /proc/self/uid_map")
    assert r.returncode == 0, r.stderr
    lines = [l.split() for l in r.stdout.strip().splitlines()]
    assert lines[0] == ["0"]
    assert ["0", str(pm.user.uid), "1"] in lines[1:], r.stdout
    assert ["1", str(pm.user.subid), "65536"] in lines[1:], r.stdout


def test_exit_code_and_missing_command(pm):
    assert pm.run(IMAGE, "sh", "-c", "exit 3").returncode == 3
    r = pm.run(IMAGE, "no-such-command")
    assert r.returncode == 127, r.stderr


def test_detached_exec_stop_rm(pm):
    name = pm.name()
    pm.ok("run", "-d", "--name", name, "--network", "none", IMAGE,
          "sh", "-c", 'trap "exit 0" TERM; while :; do sleep 0.1; done')
    assert pm.ok("inspect", "-f", "{{.State.Status}}", name).strip() == "running"
    assert pm.ok("exec", name, "sh", "-c", "echo in-exec; id -u") == "in-exec\n0\n"
    assert "sleep" in pm.ok("top", name) or "sh" in pm.ok("top", name)
    pm.ok("stop", "-t", "10", name)
    assert pm.ok("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", name).strip() == "exited 0"
    pm.ok("rm", name)
    assert not os.path.exists(os.path.join(pm.runtime_root, name))


def test_kill_and_rm_force(pm):
    name = pm.name()
    pm.ok("run", "-d", "--name", name, "--network", "none", IMAGE, "sleep", "1000")
    pm.ok("kill", name)
    assert wait_for(lambda: pm.ok("inspect", "-f", "{{.State.Status}}", name).strip() == "exited")
    pm.ok("rm", "-f", name)


def test_tty(pm):
    rc, out = run_in_pty(pm.user.argv(["env", "-i", *[f"{k}={v}" for k, v in pm.user.env().items()],
                                       *pm.argv("run", "--rm", "-t", "--network", "none", IMAGE,
                                                "sh", "-c", "[ -t 0 ] && [ -t 1 ] && echo is-a-tty; tty")]),
                         timeout=120)
    assert rc == 0, out
    assert "is-a-tty" in out and "/dev/pts/0" in out, out


def test_userns_keep_id(pm):
    """--userns keep-id: podman asks for a user namespace of several
    ranges inside its own; we are its root and write the maps."""
    r = pm.run("--userns", "keep-id", IMAGE, "sh", "-c", "id -u; id -g")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [str(pm.user.uid), str(pm.user.gid)], r.stdout


def test_volume(pm):
    vol = os.path.join(pm.user.home, "vol")
    os.mkdir(vol)
    with open(os.path.join(vol, "in"), "w") as f:
        f.write("from-host\n")
    subprocess.run(["chown", "-R", f"{pm.user.uid}:{pm.user.gid}", vol], check=True)
    r = pm.run("-v", f"{vol}:/vol", IMAGE, "sh", "-c", "cat /vol/in; echo from-container > /vol/out")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "from-host\n"
    st = os.stat(os.path.join(vol, "out"))
    assert st.st_uid == pm.user.uid   # root in the container is the user on the host
    with open(os.path.join(vol, "out")) as f:
        assert f.read() == "from-container\n"


def test_memory_limit_on_v1_is_dropped_by_podman(pm):
    """cgroup v1 delegates nothing to a user: podman itself drops the
    limit with a warning (as with runc), and the container runs."""
    r = pm.run("--memory", "64m", IMAGE, "true")
    assert r.returncode == 0, r.stderr
    assert "not supported and ignored on cgroups V1 rootless" in r.stderr
