"""Real containerd (1.6, shim io.containerd.runc.v2) driving ociruntime
through `ctr run --runc-binary OURS`.

The session starts a private daemon (own root, state, socket and config;
`runc` on its PATH is ours too), imports an OCI image built here from the
busybox rootfs, and at the end kills and deletes every task and container,
stops the daemon (by its pid), and removes the shims' runtime state, the
cgroups and mounts it made.  What the runtime left behind fails the session
(as a teardown error).  Skipped only if containerd/ctr/the shim are missing.
"""
import hashlib
import io
import json
import os
import platform
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from conftest import RUNTIME
from engines import (CliClient, cgroups_named, make_rootfs, mounts_under, remove_cgroups, run_in_pty,
                     unmount_all_under, wait_for)

IMAGE = "localhost/ociruntime-test/busybox:latest"
LONG = ('sleep 1000 & trap "echo got-usr1" USR1; trap "echo got-term; kill %1; exit 5" TERM; '
        'echo started; while :; do sleep 0.1; done')

missing = [b for b in ("containerd", "ctr", "containerd-shim-runc-v2") if not shutil.which(b)]
if os.geteuid() != 0:
    missing.append("root")
pytestmark = pytest.mark.skipif(bool(missing), reason=f"needs {', '.join(missing)}")


class Containerd(CliClient):
    program = "ctr"

    def __init__(self, work):
        self.work = Path(work)
        self.sock = self.work / "containerd.sock"
        self.ns = f"ociruntime-test-{uuid.uuid4().hex[:8]}"
        self.proc = None
        self.ids = []

    def argv(self, *args):
        return ["ctr", "--address", str(self.sock), "-n", self.ns, *map(str, args)]

    def new_id(self):
        cid = f"ociruntime-test-{uuid.uuid4().hex[:8]}"
        self.ids.append(cid)
        return cid

    def run_args(self, *opts):
        return ["run", "--fifo-dir", self.work / "fifo", "--runc-binary", RUNTIME, *opts]

    def run(self, *opts_image_cmd, retries=2):
        """ctr run --rm ...; retried (like the shared e2e script) when it
        succeeds with no output: a rare ctr FIFO race, not the runtime's."""
        for _ in range(retries + 1):
            r = self.cmd(*self.run_args("--rm", *opts_image_cmd))
            if r.returncode != 0 or r.stdout:
                break
        return r

    def run_d(self, *opts, args=("sleep", "1000")):
        cid = self.new_id()
        self.ok(*self.run_args("-d", *opts, IMAGE, cid, *args))
        return cid

    def task(self, cid):
        """(pid, status) from `ctr task ls`, or None."""
        for line in self.ok("task", "ls").splitlines()[1:]:
            f = line.split()
            if f and f[0] == cid:
                return int(f[1]), f[2]
        return None

    def status(self, cid):
        t = self.task(cid)
        return t[1] if t else None

    def exec(self, cid, *args, opts=()):
        return self.cmd("task", "exec", "--fifo-dir", self.work / "fifo",
                        "--exec-id", f"e{uuid.uuid4().hex[:6]}", *opts, cid, *args)

    def remove(self, cid):
        self.cmd("task", "kill", "-a", "-s", "SIGKILL", cid)
        for _ in range(20):
            r = self.cmd("task", "delete", "-f", cid)
            if r.returncode == 0 or "not found" in r.stderr:
                break
            time.sleep(0.1)
        self.cmd("containers", "delete", cid)


def _oci_archive(rootfs, out):
    """An OCI image layout tar of rootfs, named IMAGE."""
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as t:
        for p in sorted(Path(rootfs).rglob("*")):
            info = t.gettarinfo(str(p), arcname=str(p.relative_to(rootfs)))
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if info.isreg():
                with open(p, "rb") as f:
                    t.addfile(info, f)
            else:
                t.addfile(info)
    blobs = {}

    def blob(data):
        d = hashlib.sha256(data).hexdigest()
        blobs[d] = data
        return {"digest": f"sha256:{d}", "size": len(data)}

    layer_desc = blob(layer.getvalue())
    cfg_desc = blob(json.dumps({
        "architecture": arch, "os": "linux",
        "config": {"Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": [layer_desc["digest"]]}}).encode())
    manifest_desc = blob(json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": dict(cfg_desc, mediaType="application/vnd.oci.image.config.v1+json"),
        "layers": [dict(layer_desc, mediaType="application/vnd.oci.image.layer.v1.tar")]}).encode())
    index = {"schemaVersion": 2, "manifests": [dict(
        manifest_desc, mediaType="application/vnd.oci.image.manifest.v1+json",
        platform={"architecture": arch, "os": "linux"},
        annotations={"org.opencontainers.image.ref.name": IMAGE})]}
    with tarfile.open(out, "w") as t:
        for name, data in [("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'),
                           ("index.json", json.dumps(index).encode())] + \
                          [(f"blobs/sha256/{d}", b) for d, b in blobs.items()]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))


@pytest.fixture(scope="session")
def ctrd():
    work = Path(tempfile.mkdtemp(prefix="ociruntime-test-ctrd-", dir="/tmp"))
    c = Containerd(work)
    problems = []
    try:
        (work / "bin").mkdir()
        (work / "fifo").mkdir()
        os.symlink(RUNTIME, work / "bin" / "runc")
        (work / "config.toml").write_text(f"""version = 2
root = "{work}/root"
state = "{work}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs"]
[grpc]
  address = "{c.sock}"
[ttrpc]
  address = ""
[debug]
  address = ""
[metrics]
  address = ""
[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = "{work}/opt"
""")
        env = dict(os.environ, PATH=f"{work}/bin:{os.environ.get('PATH', '/usr/sbin:/usr/bin:/sbin:/bin')}")
        with open(work / "containerd.log", "wb") as log:
            c.proc = subprocess.Popen(["containerd", "--config", str(work / "config.toml"),
                                       "--log-level", "info"], stdout=log, stderr=log,
                                      stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        wait_for(lambda: c.proc.poll() is not None or subprocess.run(
            ["ctr", "--address", str(c.sock), "version"], capture_output=True).returncode == 0,
            timeout=30, what="containerd to answer")
        assert c.proc.poll() is None, (work / "containerd.log").read_text()[-2000:]
        _oci_archive(make_rootfs(work / "rootfs"), work / "image.tar")
        c.ok("images", "import", work / "image.tar", timeout=120)
        yield c
    finally:
        problems = _teardown(c)
    if problems:
        pytest.fail(f"containerd session left behind: {problems}")


def _teardown(c):
    problems = []
    if c.proc is not None and c.proc.poll() is None:
        for cid in c.cmd("task", "ls", "-q").stdout.split():
            c.cmd("task", "kill", "-a", "-s", "SIGKILL", cid)
        for cid in c.cmd("task", "ls", "-q").stdout.split():
            for _ in range(20):
                if c.cmd("task", "delete", "-f", cid).returncode == 0:
                    break
                time.sleep(0.1)
        for cid in c.cmd("containers", "ls", "-q").stdout.split():
            c.cmd("containers", "delete", cid)
        c.proc.send_signal(signal.SIGTERM)
        try:
            c.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            c.proc.kill()
            c.proc.wait()
    # shims of this daemon that outlived it (found by our private socket path)
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"-namespace" in cmdline and str(c.sock).encode() in cmdline:
                problems.append(f"shim {pid}")
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
    runtime_root = Path("/run/containerd/runc") / c.ns
    if runtime_root.is_dir():
        for cid in os.listdir(runtime_root):
            problems.append(f"runtime state {runtime_root / cid}")
            subprocess.run([RUNTIME, "--root", str(runtime_root), "delete", "--force", cid],
                           capture_output=True, timeout=60)
        shutil.rmtree(runtime_root, ignore_errors=True)
    cgs = cgroups_named(c.ids)
    problems += [f"cgroup {p}" for p in cgs]
    remove_cgroups(cgs)
    # the per-namespace parents (/<namespace>) the shim asked for
    remove_cgroups(cgroups_named([c.ns]))
    unmount_all_under(c.work / "state")
    problems += [f"mount {m}" for m in mounts_under(c.work / "state")]
    unmount_all_under(c.work)
    if not mounts_under(c.work):
        shutil.rmtree(c.work, ignore_errors=True)
    return problems


# -- run ----------------------------------------------------------------------

def test_run_echo(ctrd):
    r = ctrd.run(IMAGE, ctrd.new_id(), "echo", "hello")
    assert (r.returncode, r.stdout) == (0, "hello\n"), r.stderr


def test_exit_code(ctrd):
    assert ctrd.run(IMAGE, ctrd.new_id(), "sh", "-c", "exit 3").returncode == 3


def test_env_and_cwd(ctrd):
    r = ctrd.run("--env", "FOO=bar", "--cwd", "/tmp", IMAGE, ctrd.new_id(), "sh", "-c", 'echo "$FOO $(pwd)"')
    assert (r.returncode, r.stdout) == (0, "bar /tmp\n"), r.stderr


def test_run_with_tty(ctrd):
    rc, out = run_in_pty(ctrd.argv(*ctrd.run_args("--rm", "-t", IMAGE, ctrd.new_id(), "sh", "-c",
                                                  "[ -t 0 ] && [ -t 1 ] && echo is-a-tty; tty")))
    assert rc == 0, out
    assert "is-a-tty" in out and "/dev/pts/" in out, out


def test_read_only_root(ctrd):
    r = ctrd.run("--read-only", IMAGE, ctrd.new_id(), "sh", "-c",
                 "if touch /x 2>/dev/null; then echo rootfs-writable; else echo ro-ok; fi")
    assert (r.returncode, r.stdout) == (0, "ro-ok\n"), r.stderr


def test_cap_drop(ctrd):
    r = ctrd.run("--cap-drop", "CAP_CHOWN", IMAGE, ctrd.new_id(), "sh", "-c",
                 "touch /tmp/f; if chown 1000 /tmp/f 2>/dev/null; then echo allowed; else echo denied; fi")
    assert (r.returncode, r.stdout) == (0, "denied\n"), r.stderr


def test_default_seccomp_profile(ctrd):
    """Issue 12.3: containerd's default profile (`ctr run --seccomp`), its
    capabilities and noNewPrivileges false: run, and exec as root and as
    a user."""
    probe = ("sh", "-c", "echo $(id -u) $(grep Seccomp: /proc/self/status)")
    r = ctrd.run("--seccomp", IMAGE, ctrd.new_id(), *probe)
    assert (r.returncode, r.stdout) == (0, "0 Seccomp: 2\n"), r.stderr
    cid = ctrd.run_d("--seccomp")
    r = ctrd.exec(cid, *probe)
    assert (r.returncode, r.stdout) == (0, "0 Seccomp: 2\n"), r.stderr
    r = ctrd.exec(cid, *probe, opts=("--user", "1000"))
    assert (r.returncode, r.stdout) == (0, "1000 Seccomp: 2\n"), r.stderr
    ctrd.remove(cid)


def test_memory_limit(ctrd):
    cid = ctrd.run_d("--memory-limit", "67108864")
    pid, status = ctrd.task(cid)
    assert status == "RUNNING"
    with open(f"/proc/{pid}/cgroup") as f:
        rel = next(l.rstrip("\n").split(":", 2)[2] for l in f if "memory" in l.split(":")[1].split(","))
    assert Path(f"/sys/fs/cgroup/memory{rel}/memory.limit_in_bytes").read_text() == "67108864\n"
    ctrd.remove(cid)


# -- a detached task ----------------------------------------------------------

@pytest.fixture
def task(ctrd):
    log = ctrd.work / f"{uuid.uuid4().hex[:8]}.log"
    cid = ctrd.run_d("--log-uri", f"file://{log}", args=("sh", "-c", LONG))
    wait_for(lambda: log.exists() and "started" in log.read_text(), what="the task to start")
    yield cid, log
    ctrd.remove(cid)


def test_detached_run_and_exec(ctrd, task):
    cid, _ = task
    assert ctrd.status(cid) == "RUNNING"
    r = ctrd.exec(cid, "sh", "-c", "echo exec-ok")
    assert (r.returncode, r.stdout) == (0, "exec-ok\n"), r.stderr
    assert ctrd.exec(cid, "sh", "-c", "exit 7").returncode == 7
    r = ctrd.exec(cid, "id", "-u", opts=("--user", "1000"))
    assert (r.returncode, r.stdout) == (0, "1000\n"), r.stderr


def test_exec_with_tty(ctrd, task):
    cid, _ = task
    rc, out = run_in_pty(ctrd.argv("task", "exec", "-t", "--fifo-dir", ctrd.work / "fifo",
                                   "--exec-id", "tty1", cid, "sh", "-c", "[ -t 1 ] && echo exec-tty; tty"))
    assert rc == 0, out
    assert "exec-tty" in out and "/dev/pts/" in out, out


def test_ps(ctrd, task):
    cid, _ = task
    lines = ctrd.ok("task", "ps", cid).splitlines()[1:]
    assert len(lines) >= 2, lines   # sh and its sleep
    pids = {int(l.split()[0]) for l in lines}
    assert ctrd.task(cid)[0] in pids


def test_pause_and_resume(ctrd, task):
    cid, _ = task
    ctrd.ok("task", "pause", cid)
    assert ctrd.status(cid) == "PAUSED"
    ctrd.ok("task", "resume", cid)
    assert ctrd.status(cid) == "RUNNING"
    assert ctrd.exec(cid, "echo", "alive").stdout == "alive\n"


def test_kill_signal_and_stop(ctrd, task):
    cid, log = task
    ctrd.ok("task", "kill", "-s", "SIGUSR1", cid)
    wait_for(lambda: "got-usr1" in log.read_text(), what="the USR1 trap")
    ctrd.ok("task", "kill", cid)   # SIGTERM: the trap exits 5
    wait_for(lambda: ctrd.status(cid) == "STOPPED", what="STOPPED")
    assert "got-term" in log.read_text()
    r = ctrd.cmd("task", "delete", cid)
    assert r.returncode == 0, r.stderr
    assert "exit code 5" in r.stdout + r.stderr, (r.stdout, r.stderr)


def test_kill_all(ctrd):
    cid = ctrd.run_d(args=("sh", "-c", "sleep 1000 & sleep 1000 & wait"))
    wait_for(lambda: len(ctrd.ok("task", "ps", cid).splitlines()) >= 4, what="3 processes")
    ctrd.ok("task", "kill", "-a", "-s", "SIGKILL", cid)
    wait_for(lambda: ctrd.status(cid) == "STOPPED", what="STOPPED")
    ctrd.remove(cid)


def test_delete_force_running(ctrd):
    cid = ctrd.run_d()
    assert ctrd.status(cid) == "RUNNING"
    ctrd.ok("task", "delete", "-f", cid)
    assert ctrd.task(cid) is None
    ctrd.ok("containers", "delete", cid)
