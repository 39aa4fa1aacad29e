"""Rootless podman in the VM (pure cgroup v2 under systemd) with
ociruntime: a user the fixture makes (tests/rootless_user.py, in the
guest's overlay) runs `podman --runtime ociruntime`, storage in the
guest's /run.  `--cgroup-manager cgroupfs`: podman's systemd manager
needs the user's own systemd (user@UID.service, a logind session: logind
is masked in the VM) and ociruntime refuses --systemd-cgroup when rootless.
The user's commands run in a cgroup delegated to it (chowned, as systemd
delegates user@UID.service's), beside pytest in the test service's."""
import os
import shutil
import subprocess
import uuid

import pytest

from rootless_user import RootlessUser
from test_rootless import _skip_reason
from vmhelpers import CG, IN_VM_ONLY, delegated, read
from vmpodman import OCIRUNTIME, REPO

IMAGE = "localhost/ociruntime-vm-rootless/busybox:latest"
missing = [b for b in ("podman", "conmon", "newuidmap", "newgidmap") if not shutil.which(b)]
pytestmark = [
    IN_VM_ONLY,
    pytest.mark.skipif(bool(missing), reason=f"needs {', '.join(missing)}"),
    pytest.mark.skipif(_skip_reason() is not None, reason=str(_skip_reason())),
]


class RootlessVmPodman:
    def __init__(self, user, base, cgroup, runtime=OCIRUNTIME):
        self.user, self.base, self.cgroup, self.runtime = user, base, cgroup, runtime
        self.leaf = f"{cgroup}/podman"
        self.runtime_root = os.path.join(user.xdg, "ociruntime")

    def argv(self, *args):
        return ["podman", "--root", f"{self.base}/root", "--runroot", f"{self.base}/runroot",
                "--tmpdir", f"{self.base}/tmp", "--storage-driver", "vfs",
                "--cgroup-manager", "cgroupfs", "--events-backend", "file",
                "--runtime", self.runtime, *map(str, args)]

    def cmd(self, *args, timeout=300, **kw):
        """As the user, in the delegated cgroup's leaf."""
        env = [f"{k}={v}" for k, v in self.user.env().items()]
        inner = self.user.argv(["env", "-i", *env, *self.argv(*args)])
        return subprocess.run(["sh", "-c", f'echo $$ > {self.leaf}/cgroup.procs && exec "$@"',
                               "sh", *inner], cwd=self.user.home, capture_output=True,
                              text=True, timeout=timeout, **kw)

    def ok(self, *args, **kw):
        r = self.cmd(*args, **kw)
        assert r.returncode == 0, f"podman {' '.join(map(str, args))}: {r.returncode}: {r.stderr}"
        return r.stdout


def delegate(cgroup, uid, gid):
    """What systemd does for Delegate=yes with User=: the directory and
    its cgroup.procs, cgroup.subtree_control and cgroup.threads chowned."""
    os.mkdir(cgroup)
    for f in ("", "/cgroup.procs", "/cgroup.subtree_control", "/cgroup.threads"):
        os.chown(cgroup + f, uid, gid)


@pytest.fixture(scope="module")
def rpm():
    u = RootlessUser.make("ocivmrl")
    base = f"/run/ocivm-rl-{uuid.uuid4().hex[:8]}"
    cgroup = f"{CG}{delegated()}/rl-{u.name}"
    p = RootlessVmPodman(u, base, cgroup)
    try:
        os.mkdir(base, 0o700)
        os.chown(base, u.uid, u.gid)
        with open(f"{CG}{delegated()}/cgroup.subtree_control", "w") as f:
            f.write("+memory +pids +cpu")
        delegate(cgroup, u.uid, u.gid)
        delegate(p.leaf, u.uid, u.gid)
        tar = os.path.join(u.home, "rootfs.tar")
        subprocess.run(["tar", "-C", str(REPO / "bundles" / "busybox" / "rootfs"),
                        "--numeric-owner", "-cf", tar, "."], check=True)
        os.chown(tar, u.uid, u.gid)
        p.ok("import", "--change", 'CMD ["/bin/sh"]', "--change",
             "ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin", tar, IMAGE)
        yield p
        p.cmd("rm", "-a", "-f", "-t", "0")
        left = os.listdir(p.runtime_root) if os.path.isdir(p.runtime_root) else []
        assert not left, f"runtime state left behind: {left}"
    finally:
        p.cmd("system", "reset", "--force")
        u.remove()   # kills what the user left running (podman's pause process)
        for dirpath, _, _ in sorted(os.walk(cgroup), key=lambda w: -len(w[0])):
            try:
                os.rmdir(dirpath)
            except OSError:
                pass
        shutil.rmtree(base, ignore_errors=True)


def test_rootless_run_exec_stop_rm(rpm):
    r = rpm.cmd("run", "--rm", "--network", "none", IMAGE, "sh", "-c",
                "id -u; cat /proc/self/uid_map")
    assert r.returncode == 0, r.stderr
    lines = [l.split() for l in r.stdout.strip().splitlines()]
    assert lines[0] == ["0"]
    assert ["0", str(rpm.user.uid), "1"] in lines, r.stdout
    name = f"rl-{uuid.uuid4().hex[:8]}"
    rpm.ok("run", "-d", "--name", name, "--network", "none", IMAGE, "sleep", "1000")
    assert rpm.ok("exec", name, "echo", "in-exec") == "in-exec\n"
    rpm.ok("stop", "-t", "0", name)
    rpm.ok("rm", name)
    assert not os.path.exists(os.path.join(rpm.runtime_root, name))


@pytest.mark.parametrize("runtime", ["ociruntime", "runc"])
def test_rootless_limits_in_the_delegated_cgroup(rpm, runtime):
    """podman (cgroupfs, rootless) gives the runtime no cgroupsPath: the
    container goes beside the runtime's own cgroup in the delegated
    subtree (runc's fs2 default), where its limits apply.  Before, ours
    went below its own cgroup (conmon's, with processes) and the limit
    failed ("... has processes"); runc ran it."""
    rpm = RootlessVmPodman(rpm.user, rpm.base, rpm.cgroup,
                           OCIRUNTIME if runtime == "ociruntime" else shutil.which("runc"))
    name = f"rl-{uuid.uuid4().hex[:8]}"
    try:
        rpm.ok("run", "-d", "--name", name, "--network", "none", "--memory", "64m",
               "--pids-limit", "42", IMAGE, "sleep", "1000")
        cid = rpm.ok("inspect", "-f", "{{.Id}}", name).strip()
        pid = rpm.ok("inspect", "-f", "{{.State.Pid}}", name).strip()
        d = f"{rpm.cgroup}/{cid}"
        assert read(f"/proc/{pid}/cgroup") == f"0::{d[len(CG):]}"
        assert (read(f"{d}/memory.max"), read(f"{d}/pids.max")) == (str(64 << 20), "42")
        assert rpm.ok("exec", name, "cat", "/sys/fs/cgroup/pids.max") == "42\n"
        rpm.ok("rm", "-f", "-t", "0", name)
        assert not os.path.exists(d)
    finally:
        rpm.cmd("rm", "-f", "-t", "0", name)
