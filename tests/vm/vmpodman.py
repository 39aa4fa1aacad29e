"""podman inside the test VM, offline, as a systemd host runs it: its
default cgroup manager (systemd: conmon and each container in a transient
scope under machine.slice, the container's made by the runtime with
--systemd-cgroup), storage of its own in the guest's /run (a tmpfs: fast,
and nothing is written to the host), the busybox rootfs imported as its
image, and the runtimes named in a containers.conf of its own
(CONTAINERS_CONF): `--runtime ociruntime` is this worktree's, `--runtime
runc` the installed runc 1.1.5.

`VmPodman.make()` sets it up, `close()` removes every container, what
podman stored and mounted, and returns what was left behind (a unit, a
cgroup, a runtime state directory) for the caller to fail on.  The
`vm_podman` fixture is one per session: a VM test file takes it with
`from vmpodman import vm_podman`.  (Not a tests/vm/conftest.py: a second
module named conftest would hide tests/conftest.py from the helpers that
import from it.)
"""
import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

from engines import CliClient, mounts_under, unmount_all_under

REPO = Path(__file__).resolve().parents[2]
OCIRUNTIME = str(REPO / ".venv" / "bin" / "ociruntime")
IMAGE = "localhost/ociruntime-vm/busybox:latest"
CG = "/sys/fs/cgroup"
# The runtimes' state roots: podman 4.3 gives a runtime other than runc
# and crun no --root, and runc its default.
STATE_ROOTS = {"ociruntime": "/run/ociruntime", "runc": "/run/runc"}

CONTAINERS_CONF = """\
# containers.conf of the VM's podman (tests/vm/vmpodman.py): the runtimes
# by name; no cgroup_manager, so that podman picks its own default
# (systemd, on this host).
[containers]
log_driver = "k8s-file"

[engine]
events_logger = "file"
runtime_supports_json = ["crun", "runc", "kata", "runsc", "krun", "ociruntime"]

[engine.runtimes]
ociruntime = ["{ociruntime}"]
runc = ["/usr/sbin/runc", "/usr/bin/runc"]
"""


class VmPodman(CliClient):
    program = "podman"

    def __init__(self, base, runtime="ociruntime"):
        self.base = Path(base)
        self.runtime = runtime
        self.names = []
        self.env = dict(os.environ, CONTAINERS_CONF=str(self.base / "containers.conf"))
        self.global_args = [
            "--root", str(self.base / "root"), "--runroot", str(self.base / "runroot"),
            "--tmpdir", str(self.base / "tmp"), "--network-config-dir", str(self.base / "net"),
            "--storage-driver", "overlay",
        ]

    @classmethod
    def make(cls):
        """A fresh podman in a directory of /run, with the busybox image."""
        base = Path(tempfile.mkdtemp(prefix="ocivm-podman-", dir="/run"))
        pm = cls(base)
        try:
            (base / "net").mkdir()
            (base / "containers.conf").write_text(CONTAINERS_CONF.format(ociruntime=OCIRUNTIME))
            rootfs = REPO / "bundles" / "busybox" / "rootfs"
            tar = subprocess.Popen(["tar", "-C", str(rootfs), "--numeric-owner", "-c", "."],
                                   stdout=subprocess.PIPE)
            pm.ok("import", "--change", 'CMD ["/bin/sh"]', "--change",
                  "ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin", "-", IMAGE, stdin=tar.stdout,
                  timeout=300)
            tar.wait()
        except BaseException:
            pm.close()
            raise
        return pm

    def using(self, runtime):
        """The same podman (storage, image) with another --runtime."""
        other = VmPodman(self.base, runtime)
        other.names = self.names
        return other

    def argv(self, *args):
        return ["podman", *self.global_args, "--runtime", self.runtime, *map(str, args)]

    def cmd(self, *args, timeout=180, **kw):
        kw.setdefault("env", self.env)
        return super().cmd(*args, timeout=timeout, **kw)

    def name(self):
        n = f"ocivm-{uuid.uuid4().hex[:8]}"
        self.names.append(n)
        return n

    def run(self, *args, **kw):
        """podman run --rm, no network."""
        return self.cmd("run", "--rm", "--network", "none", *args, **kw)

    def run_d(self, *args, name=None):
        """A detached container; its name."""
        name = name or self.name()
        self.ok("run", "-d", "--name", name, "--network", "none", *args)
        return name

    def inspect(self, name, fmt):
        return self.ok("inspect", "-f", fmt, name).strip()

    def full_id(self, name):
        return self.inspect(name, "{{.Id}}")

    def close(self):
        """Remove every container and the storage; what was left behind."""
        problems = []
        ids = set()
        if (self.base / "root").exists():
            r = self.cmd("ps", "-a", "--no-trunc", "--format", "{{.ID}}")
            ids.update(r.stdout.split())
            r = self.cmd("events", "--stream=false", "--filter", "type=container",
                         "--format", "{{.ID}}")
            ids.update(i for i in r.stdout.split() if len(i) == 64)
            self.cmd("rm", "-a", "-f", "-t", "0", timeout=300)
            problems += leftovers(ids)
            self.cmd("system", "reset", "--force", timeout=300)
        unmount_all_under(self.base)
        problems += [f"mount {m}" for m in mounts_under(self.base)]
        if not mounts_under(self.base):
            shutil.rmtree(self.base, ignore_errors=True)
        return problems


def scope_of(cid):
    return f"libpod-{cid}.scope"


def units_named(ids):
    """Loaded units (any state) whose name holds one of the container ids."""
    r = subprocess.run(["systemctl", "list-units", "--all", "--no-legend", "--plain",
                        "libpod-*"], capture_output=True, text=True, timeout=60)
    units = [line.split()[0] for line in r.stdout.splitlines() if line.strip()]
    return [u for u in units if any(i in u for i in ids)]


def cgroups_named(ids):
    found = []
    for dirpath, dirnames, _ in os.walk(CG):
        found += [os.path.join(dirpath, d) for d in dirnames if any(i in d for i in ids)]
    return found


def leftovers(ids):
    """What the containers ids left: units, cgroups, runtimes' state."""
    ids = [i for i in ids if i]
    if not ids:
        return []
    out = [f"unit {u}" for u in units_named(ids)]
    out += [f"cgroup {c}" for c in cgroups_named(ids)]
    out += [f"runtime state {root}/{i}" for root in STATE_ROOTS.values() for i in ids
            if os.path.exists(f"{root}/{i}")]
    return out


@pytest.fixture(scope="session")
def vm_podman():
    """podman with its default (systemd) cgroup manager, storage in the
    guest's /run, the busybox image imported, `--runtime ociruntime`
    (`.using("runc")` for runc).  Fails the session's last test (a
    teardown error) if a unit, cgroup or runtime state of its containers
    is left behind."""
    missing = [b for b in ("podman", "conmon") if not shutil.which(b)]
    if missing:
        pytest.skip(f"needs {', '.join(missing)}")
    pm = VmPodman.make()
    try:
        yield pm
    finally:
        problems = pm.close()
    if problems:
        pytest.fail(f"podman in the VM left behind: {problems}")
