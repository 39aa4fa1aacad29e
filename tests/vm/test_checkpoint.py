"""checkpoint and restore through criu 3.17, inside the VM (Debian's 6.1
kernel, where criu works; on the development host's 6.18 criu cannot
start: tests/test_checkpoint.py checks that failure there).

The container is a counter: a shell loop that draws a random token once,
then writes "TOKEN N" for N = 1, 2, 3... to its stdout (a pipe of ours,
as engines give) and to /dev/shm/count (a tmpfs of the container).  A
restored process that kept its memory goes on with the same token and
the next N; one that had restarted would draw a new token and start at 1.
The first test and the pre-dump test run runc 1.1.5 the same way, with
the same flags, to compare."""
import json
import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

from conftest import REPO, RUNTIME
from engines import unmount_all_under
from vmhelpers import CG, IN_VM_ONLY, alive, busybox_config, cg_path, read, wait_until

CRIU = shutil.which("criu") or ("/usr/sbin/criu" if os.path.exists("/usr/sbin/criu") else None)
RUNC = shutil.which("runc")

pytestmark = [IN_VM_ONLY, pytest.mark.skipif(CRIU is None, reason="criu is not installed")]

COUNTER = ('t=$RANDOM$RANDOM; i=0; while [ ! -e /dev/shm/stop ]; do i=$((i+1)); '
           'echo "$t $i" > /dev/shm/count; [ -d /data ] && echo "$t $i" > /data/count; '
           'echo "$t $i"; sleep 0.1; done; exit 7')


class Pipe:
    """A pipe whose write end the container gets as stdout/stderr (or whose
    read end it gets as stdin); we read what it wrote, without blocking."""

    def __init__(self):
        self.r, self.w = os.pipe()
        os.set_blocking(self.r, False)
        self.data = b""

    def lines(self):
        while True:
            try:
                chunk = os.read(self.r, 65536)
            except BlockingIOError:
                break
            if not chunk:
                break
            self.data += chunk
        return self.data.decode(errors="replace").splitlines()

    def counts(self):
        """[(token, n)] of the counter's lines."""
        out = []
        for line in self.lines():
            parts = line.split()
            if len(parts) == 2 and all(p.isdigit() for p in parts):
                out.append((parts[0], int(parts[1])))
        return out

    def close(self):
        for fd in (self.r, self.w):
            try:
                os.close(fd)
            except OSError:
                pass


class Runtime:
    """ociruntime (under the oci fixture's root) or runc (its own root),
    called the same way."""

    def __init__(self, name, binary, root):
        self.name, self.binary, self.root = name, binary, root
        self.ids = []

    def __call__(self, *args, **kw):
        kw.setdefault("timeout", 120)
        if "stdout" not in kw:
            kw.setdefault("capture_output", True)
        kw.setdefault("text", True)
        return subprocess.run([self.binary, "--root", self.root, *map(str, args)], **kw)

    def ok(self, *args, **kw):
        r = self(*args, **kw)
        assert r.returncode == 0, f"{self.name} {' '.join(map(str, args))}: {r.stderr}"
        return r

    def state(self, cid):
        return json.loads(self.ok("state", cid).stdout)


@pytest.fixture
def pipes():
    made = []

    def make():
        p = Pipe()
        made.append(p)
        return p
    yield make
    for p in made:
        p.close()


def _runtime(oci, name):
    if name == "runc":
        if RUNC is None:
            pytest.skip("runc is not installed")
        return Runtime("runc", RUNC, f"{oci.root}-runc")
    return Runtime("ociruntime", RUNTIME, oci.root)


@pytest.fixture(params=["ociruntime", "runc"])
def runtime(request, oci):
    rt = _runtime(oci, request.param)
    yield rt
    if rt.name == "runc":   # before oci's own check for leftovers
        for cid in oci.ids:
            rt("delete", "--force", cid)
        shutil.rmtree(rt.root, ignore_errors=True)


@pytest.fixture
def ours(oci):
    return _runtime(oci, "ociruntime")


def counter_bundle(oci, cid, mounts=()):
    cfg = busybox_config(["sh", "-c", COUNTER], cid)
    cfg["mounts"] += list(mounts)
    return oci.bundle(cfg)


def start_counter(rt, cid, bundle, stdin, out):
    """run -d, its stdin and stdout/stderr our pipes; (pid, token) once it counts."""
    r = rt("run", "-d", "-b", bundle, cid, stdin=stdin.r, stdout=out.w, stderr=out.w)
    assert r.returncode == 0, out.lines()
    pid = rt.state(cid)["pid"]
    wait_until(lambda: len(out.counts()) >= 3, "the counter to count to 3")
    return pid, out.counts()[0][0]


def assert_continues(token, before, after, what):
    """The restored counter kept its memory: the same token, and every N
    from 1 on written once across both pipes (no restart, no gap)."""
    wait_until(lambda: len(after.counts()) >= 3, f"{what}: the restored counter to write 3 lines")
    tokens = {t for t, _ in before.counts() + after.counts()}
    assert tokens == {token}, f"{what}: another token: the process restarted ({tokens})"
    seen = {n for _, n in before.counts()} | {n for _, n in after.counts()}
    top = max(n for _, n in after.counts())
    assert top > max(n for _, n in before.counts())
    assert seen == set(range(1, top + 1)), f"{what}: counts missing or restarted: {sorted(seen)}"


def gone(rt, cid, pid):
    r = rt("state", cid)
    return r.returncode != 0 and "does not exist" in r.stderr and not alive(pid)


def test_counter_checkpointed_and_restored_with_memory_intact(oci, runtime, pipes, tmp_path):
    """checkpoint stops and deletes the container (as runc); restore -d
    brings it back under the same id, in its cgroup, still counting."""
    rt, cid = runtime, oci.new_id("ck")
    bundle = counter_bundle(oci, cid)
    stdin, out1 = pipes(), pipes()
    pid, token = start_counter(rt, cid, bundle, stdin, out1)
    img = tmp_path / "image"
    rt.ok("checkpoint", "--image-path", img, cid)
    assert os.path.isfile(img / "inventory.img") and os.path.isfile(img / "descriptors.json")
    wait_until(lambda: gone(rt, cid, pid), "the checkpointed container to be gone")
    assert not os.path.exists(CG + cg_path(cid)), "its cgroup is left"
    assert rt("list", "-q").stdout.split() == []

    out2 = pipes()
    r = rt("restore", "-d", "--image-path", img, "-b", bundle, cid,
           stdin=stdin.r, stdout=out2.w, stderr=out2.w)
    assert r.returncode == 0, out2.lines()
    st = rt.state(cid)
    assert st["status"] == "running" and st["pid"] != 0
    assert_continues(token, out1, out2, rt.name)
    pid2 = st["pid"]
    assert read(f"/proc/{pid2}/cgroup") == "0::" + cg_path(cid)
    # the container's own view: pid 1 in its pid namespace, its tmpfs kept
    nspid = [l.split()[1:] for l in read(f"/proc/{pid2}/status").splitlines() if l.startswith("NSpid:")]
    assert nspid == [[str(pid2), "1"]]
    assert read(f"/proc/{pid2}/root/dev/shm/count").split()[0] == token
    listed = rt("list", "--format", "json").stdout
    assert [(s["id"], s["pid"], s["status"]) for s in json.loads(listed)] == [(cid, pid2, "running")]
    # root.readonly holds after our restore; criu given the rootfs mount
    # itself restores it writable, as runc 1.1.5's restored root is (the
    # difference README.md names: this fails once runc keeps it read-only)
    r = rt("exec", cid, "touch", "/restored-rw")
    if rt.name == "ociruntime":
        assert r.returncode != 0 and "Read-only file system" in r.stderr, r.stderr
    else:
        assert r.returncode == 0, f"runc's restored root is read-only now: {r.stderr}"
    rt.ok("delete", "--force", cid)
    assert not alive(pid2) and not os.path.exists(CG + cg_path(cid))


def test_pre_dump_then_dump_with_parent_path(oci, runtime, pipes, tmp_path):
    """--pre-dump leaves it running; the dump with --parent-path (relative
    to --image-path, as criu takes it) links the parent; restore from it."""
    rt, cid = runtime, oci.new_id("ckpre")
    bundle = counter_bundle(oci, cid)
    stdin, out1 = pipes(), pipes()
    pid, token = start_counter(rt, cid, bundle, stdin, out1)
    rt.ok("checkpoint", "--pre-dump", "--image-path", tmp_path / "pre", cid)
    assert rt.state(cid)["status"] == "running" and alive(pid)
    n = len(out1.counts())
    wait_until(lambda: len(out1.counts()) > n + 2, "the counter to go on after the pre-dump")
    rt.ok("checkpoint", "--parent-path", "../pre", "--image-path", tmp_path / "final", cid)
    assert os.readlink(tmp_path / "final" / "parent") == "../pre"
    wait_until(lambda: gone(rt, cid, pid), "the checkpointed container to be gone")
    out2 = pipes()
    r = rt("restore", "-d", "--image-path", tmp_path / "final", "-b", bundle, cid,
           stdin=stdin.r, stdout=out2.w, stderr=out2.w)
    assert r.returncode == 0, out2.lines()
    assert_continues(token, out1, out2, rt.name)
    rt.ok("delete", "--force", cid)


def test_checkpoint_of_a_paused_container(oci, runtime, pipes, tmp_path):
    """As runc: a paused container can be checkpointed; with --leave-running
    it stays paused, and it counts on once resumed; restored, it runs."""
    rt, cid = runtime, oci.new_id("ckpause")
    bundle = counter_bundle(oci, cid)
    stdin, out1 = pipes(), pipes()
    pid, token = start_counter(rt, cid, bundle, stdin, out1)
    rt.ok("pause", cid)
    rt.ok("checkpoint", "--leave-running", "--image-path", tmp_path / "img1", cid)
    assert rt.state(cid)["status"] == "paused"
    rt.ok("resume", cid)
    n = len(out1.counts())
    wait_until(lambda: len(out1.counts()) > n + 2, "the resumed container to count on")
    rt.ok("pause", cid)
    rt.ok("checkpoint", "--image-path", tmp_path / "img2", cid)
    wait_until(lambda: gone(rt, cid, pid), "the checkpointed container to be gone")
    out2 = pipes()
    r = rt("restore", "-d", "--image-path", tmp_path / "img2", "-b", bundle, cid,
           stdin=stdin.r, stdout=out2.w, stderr=out2.w)
    assert r.returncode == 0, out2.lines()
    assert rt.state(cid)["status"] == "running"
    assert_continues(token, out1, out2, rt.name)
    rt.ok("delete", "--force", cid)


def lazy_pages_supported():
    r = subprocess.run([CRIU, "check", "--feature", "uffd-noncoop"], capture_output=True, text=True,
                       timeout=60)
    return r.returncode == 0


def test_lazy_pages_through_a_page_server(oci, ours, pipes, tmp_path):
    """runc's lazy migration: checkpoint --lazy-pages --page-server keeps
    criu serving the memory (--status-fd says when it is ready); criu's
    lazy-pages daemon fetches it for restore --lazy-pages (loopback only)."""
    if not lazy_pages_supported():
        pytest.skip("criu: this kernel has no non-cooperative userfaultfd")
    cid = oci.new_id("cklazy")
    bundle = counter_bundle(oci, cid)
    stdin, out1 = pipes(), pipes()
    pid, token = start_counter(ours, cid, bundle, stdin, out1)
    img, port = tmp_path / "img", "27277"
    ready_r, ready_w = os.pipe()
    ck = subprocess.Popen([RUNTIME, "--root", oci.root, "checkpoint", "--lazy-pages",
                           "--page-server", f"127.0.0.1:{port}", "--status-fd", str(ready_w),
                           "--image-path", str(img), cid], pass_fds=(ready_w,),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    os.close(ready_w)
    daemon = None
    try:
        assert os.read(ready_r, 1) == b"\0", ck.communicate(timeout=60)[0]
        # the checkpoint ends (and deletes cid) once the pages are served:
        # restore under another id meanwhile, as runc's own test does
        cid2 = oci.new_id("cklazy2")
        bundle2 = counter_bundle(oci, cid2)
        daemon = subprocess.Popen([CRIU, "lazy-pages", "--page-server", "--address", "127.0.0.1",
                                   "--port", port, "-D", str(img), "-o", "lazy-pages.log"])
        wait_until(lambda: (img / "lazy-pages.socket").exists(), "criu lazy-pages to listen")
        out2 = pipes()
        r = ours("restore", "-d", "--lazy-pages", "--image-path", img, "-b", bundle2, cid2,
                 stdin=stdin.r, stdout=out2.w, stderr=out2.w)
        assert r.returncode == 0, out2.lines()
        assert_continues(token, out1, out2, "lazy pages")
        assert ck.wait(timeout=120) == 0, ck.stdout.read()
        assert daemon.wait(timeout=120) == 0
        assert not alive(pid) and ours("state", cid).returncode != 0
    finally:
        os.close(ready_r)
        for p in (ck, daemon):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
    ours.ok("delete", "--force", cid2)


def test_leave_running_and_restore_into_a_new_id(oci, ours, pipes, tmp_path):
    """--leave-running: the container goes on; its image restored as a
    second container, under another id, in a cgroup of its own."""
    cid, cid2 = oci.new_id("ckleave"), oci.new_id("ckcopy")
    bundle = counter_bundle(oci, cid)
    stdin, out1 = pipes(), pipes()
    pid, token = start_counter(ours, cid, bundle, stdin, out1)
    ours.ok("checkpoint", "--leave-running", "--image-path", tmp_path / "img", cid)
    assert ours.state(cid)["status"] == "running" and ours.state(cid)["pid"] == pid
    n = len(out1.counts())
    wait_until(lambda: len(out1.counts()) > n + 2, "the original to go on counting")

    bundle2 = counter_bundle(oci, cid2)
    out2 = pipes()
    r = ours("restore", "-d", "--image-path", tmp_path / "img", "-b", bundle2, cid2,
             stdin=stdin.r, stdout=out2.w, stderr=out2.w)
    assert r.returncode == 0, out2.lines()
    wait_until(lambda: len(out2.counts()) >= 3, "the copy to count")
    assert {t for t, _ in out2.counts()} == {token}
    first = out2.counts()[0][1]
    assert 3 <= first <= n + 1, "the copy starts where the checkpoint was"
    pid2 = ours.state(cid2)["pid"]
    assert pid2 != pid and read(f"/proc/{pid2}/cgroup") == "0::" + cg_path(cid2)
    ids = sorted(ours("list", "-q").stdout.split())
    assert ids == sorted([cid, cid2])
    for c in (cid, cid2):
        ours.ok("delete", "--force", c)


def test_restore_detach_pid_file_and_bind_mount(oci, ours, pipes, tmp_path):
    """A bind mount of a host directory is an external mount for criu: the
    restored container gets the source its new config names."""
    cid = oci.new_id("ckbind")
    data1, data2 = tmp_path / "data1", tmp_path / "data2"
    data1.mkdir()
    data2.mkdir()
    bind = {"destination": "/data", "type": "bind", "source": str(data1), "options": ["rbind", "rw"]}
    bundle = counter_bundle(oci, cid, [bind])
    stdin, out1 = pipes(), pipes()
    pid, token = start_counter(ours, cid, bundle, stdin, out1)
    wait_until(lambda: (data1 / "count").exists(), "the counter to write into the bind mount")
    ours.ok("checkpoint", "--image-path", tmp_path / "img", cid)
    wait_until(lambda: gone(ours, cid, pid), "the checkpointed container to be gone")

    bundle2 = counter_bundle(oci, cid, [dict(bind, source=str(data2))])
    out2 = pipes()
    r = ours("restore", "--detach", "--pid-file", tmp_path / "pid", "--image-path",
             tmp_path / "img", "-b", bundle2, cid, stdin=stdin.r, stdout=out2.w, stderr=out2.w)
    assert r.returncode == 0, out2.lines()
    pid2 = ours.state(cid)["pid"]
    assert int((tmp_path / "pid").read_text()) == pid2
    assert_continues(token, out1, out2, "bind mount")
    wait_until(lambda: (data2 / "count").exists(), "the restored counter to write into data2")
    assert (data2 / "count").read_text().split()[0] == token
    ours.ok("delete", "--force", cid)


def test_restore_in_the_foreground_returns_the_exit_code(oci, ours, pipes, tmp_path):
    """Without --detach, restore waits for the process as `run` does, exits
    with its code, and deletes the container."""
    cid = oci.new_id("ckfg")
    bundle = counter_bundle(oci, cid)
    stdin, out1 = pipes(), pipes()
    pid, token = start_counter(ours, cid, bundle, stdin, out1)
    ours.ok("checkpoint", "--image-path", tmp_path / "img", cid)
    wait_until(lambda: gone(ours, cid, pid), "the checkpointed container to be gone")
    out2 = pipes()
    p = subprocess.Popen([RUNTIME, "--root", oci.root, "restore", "--image-path",
                          str(tmp_path / "img"), "-b", str(bundle), cid],
                         stdin=stdin.r, stdout=out2.w, stderr=out2.w)
    try:
        assert_continues(token, out1, out2, "foreground")
        pid2 = ours.state(cid)["pid"]
        with open(f"/proc/{pid2}/root/dev/shm/stop", "w"):
            pass
        assert p.wait(timeout=60) == 7
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert ours("state", cid).returncode != 0


def test_restore_errors_leave_nothing(oci, ours, pipes, tmp_path):
    """An id in use, and an image criu refuses: one line, nothing made."""
    cid = oci.new_id("ckerr")
    bundle = counter_bundle(oci, cid)
    stdin, out1 = pipes(), pipes()
    pid, _ = start_counter(ours, cid, bundle, stdin, out1)
    ours.ok("checkpoint", "--leave-running", "--image-path", tmp_path / "img", cid)
    r = ours("restore", "-d", "--image-path", tmp_path / "img", "-b", bundle, cid,
             stdin=subprocess.DEVNULL)
    assert r.returncode == 1 and "already exists" in r.stderr and len(r.stderr.splitlines()) == 1
    assert ours.state(cid)["pid"] == pid
    # a damaged image: criu's reason, one line, no state, no cgroup
    cid2 = oci.new_id("ckbad")
    (tmp_path / "img" / "pstree.img").write_bytes(b"\0garbage")
    r = ours("restore", "-d", "--image-path", tmp_path / "img", "-b", counter_bundle(oci, cid2),
             cid2, stdin=subprocess.DEVNULL)
    assert r.returncode == 1 and len(r.stderr.splitlines()) == 1, r.stderr
    assert "criu restore failed" in r.stderr and "Traceback" not in r.stderr
    assert not os.path.exists(os.path.join(oci.root, cid2))
    assert not os.path.exists(CG + cg_path(cid2))
    ours.ok("delete", "--force", cid)


def test_stdin_the_host_dev_null_as_conmon_gives(oci, runtime, pipes, tmp_path):
    """conmon gives a container without -i the host's /dev/null as stdin:
    a file on a mount outside the container's namespace."""
    rt, cid = runtime, oci.new_id("cknull")
    bundle = counter_bundle(oci, cid)
    out1 = pipes()
    with open("/dev/null") as null:
        r = rt("run", "-d", "-b", bundle, cid, stdin=null, stdout=out1.w, stderr=out1.w)
        assert r.returncode == 0, out1.lines()
        wait_until(lambda: len(out1.counts()) >= 3, "the counter to count to 3")
        token = out1.counts()[0][0]
        r = rt("checkpoint", "--image-path", tmp_path / "img", cid)
        assert r.returncode == 0, r.stderr
        out2 = pipes()
        r = rt("restore", "-d", "--image-path", tmp_path / "img", "-b", bundle, cid,
               stdin=null, stdout=out2.w, stderr=out2.w)
        assert r.returncode == 0, out2.lines()
    assert_continues(token, out1, out2, rt.name)
    rt.ok("delete", "--force", cid)


# -- podman container checkpoint / restore --runtime ociruntime -------------
# A private podman (its own --root, --runroot, --tmpdir; vfs storage: the
# guest's root is itself an overlay), the image imported offline from the
# busybox rootfs, no network; podman drives our checkpoint, and conmon our
# restore, as they drive runc's.  The counter's output is `podman logs`.

IMAGE = "localhost/ociruntime-test/busybox:latest"
NO_PODMAN = [b for b in ("podman", "conmon") if not shutil.which(b)]


class Podman:
    def __init__(self, base):
        self.base = Path(base)
        self.global_args = [
            "--root", str(self.base / "root"), "--runroot", str(self.base / "runroot"),
            "--tmpdir", str(self.base / "tmp"), "--network-config-dir", str(self.base / "net"),
            "--storage-driver", "vfs", "--cgroup-manager", "cgroupfs",
            "--events-backend", "file", "--runtime", RUNTIME,
        ]

    def cmd(self, *args, timeout=600, **kw):   # podman under TCG on a busy machine: minutes
        kw.setdefault("capture_output", True)
        kw.setdefault("text", True)
        return subprocess.run(["podman", *self.global_args, *map(str, args)], timeout=timeout,
                              stdin=kw.pop("stdin", subprocess.DEVNULL), **kw)

    def ok(self, *args, **kw):
        r = self.cmd(*args, **kw)
        assert r.returncode == 0, f"podman {' '.join(map(str, args))}: {r.stderr}"
        return r.stdout

    def counts(self, name):
        out = []
        for line in self.cmd("logs", name).stdout.splitlines():
            parts = line.split()
            if len(parts) == 2 and all(p.isdigit() for p in parts):
                out.append((parts[0], int(parts[1])))
        return out

    def status(self, name):
        return self.ok("inspect", "-f", "{{.State.Status}}", name).strip()


@pytest.fixture(scope="module")
def podman():
    if NO_PODMAN:
        pytest.skip(f"needs {', '.join(NO_PODMAN)}")
    base = tempfile.mkdtemp(prefix="ocipm-", dir="/run")   # podman: a runroot of at most 50 characters
    pm = Podman(base)
    try:
        # the busybox rootfs tools/setup.sh built (make-rootfs.sh again takes
        # minutes under TCG on a busy machine)
        rootfs = REPO / "bundles" / "busybox" / "rootfs"
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "--numeric-owner", "-c", "."],
                               stdout=subprocess.PIPE)
        pm.ok("import", "--change", 'CMD ["/bin/sh"]', "-", IMAGE, stdin=tar.stdout)
        tar.wait()
        yield pm
    finally:
        pm.cmd("rm", "-a", "-f", "-t", "0")
        pm.cmd("system", "reset", "--force")
        unmount_all_under(pm.base)
        shutil.rmtree(pm.base, ignore_errors=True)


def run_counter(pm):
    name = f"ocick-{uuid.uuid4().hex[:8]}"
    pm.ok("run", "-d", "--name", name, "--network", "none", IMAGE, "sh", "-c", COUNTER)
    wait_until(lambda: len(pm.counts(name)) >= 3, "the counter to count to 3")
    return name, pm.counts(name)[0][0]


def assert_went_on(pm, name, token, before):
    wait_until(lambda: len(pm.counts(name)) >= before + 3, f"{name} to count on after restore")
    counts = pm.counts(name)
    assert {t for t, _ in counts} == {token}, "another token: the process restarted"
    ns = [n for _, n in counts]
    assert ns == list(range(1, len(ns) + 1)), f"counts restarted or skipped: {ns}"


def test_podman_checkpoint_and_restore(podman):
    """podman checkpoint (runtime checkpoint; the container exits) and
    restore (conmon runs runtime restore): the same process counts on."""
    name, token = run_counter(podman)
    podman.ok("container", "checkpoint", name)
    assert podman.status(name) == "exited"
    before = len(podman.counts(name))
    podman.ok("container", "restore", name)
    assert podman.status(name) == "running"
    assert_went_on(podman, name, token, before)
    podman.ok("rm", "-f", "-t", "0", name)


def test_podman_checkpoint_export_and_restore_as_a_new_container(podman, tmp_path):
    """--leave-running --export, then restore --import under another name:
    the runtime restores into a new container id."""
    name, token = run_counter(podman)
    archive = tmp_path / "ck.tar.gz"
    podman.ok("container", "checkpoint", "--leave-running", "--export", archive, name)
    assert podman.status(name) == "running"
    copy = f"{name}-copy"
    podman.ok("container", "restore", "--import", archive, "--name", copy)
    assert podman.status(copy) == "running"
    wait_until(lambda: len(podman.counts(copy)) >= 3, "the copy to count")
    assert {t for t, _ in podman.counts(copy)} == {token}
    podman.ok("rm", "-f", "-t", "0", name, copy)
