"""Real Docker (Debian's docker.io 20.10) driving ociruntime through
`docker run --runtime ociruntime`.

The module starts a private dockerd: its own data root, exec root, pidfile,
socket, daemon.json (`runtimes`, `default-runtime`), its own managed
containerd (state under the exec root), and its own bridge (`ocirt-dk*`, a
10.213.N.0/24 no route here uses) with iptables, IP forwarding and
masquerading off, so that no host-wide rule or bridge of another engine is
touched (a published port on 127.0.0.1 goes through docker-proxy).  It
imports a busybox image made offline from busybox-static (`docker import`).
Each test removes its containers with `docker rm -f` and fails if any of
them left a process, a mount, a cgroup, a shim or runtime state.  At the end
the daemon is stopped by its pid and its bridge, cgroups and mounts removed.
Skipped when docker.io, containerd or bridges are missing.
"""
import concurrent.futures
import ipaddress
import json
import os
import shutil
import signal
import socket
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

DOCKER, DOCKERD = "/usr/bin/docker", "/usr/sbin/dockerd"   # not the static docker in /usr/local/bin
IMAGE = "ocirt-test/busybox:latest"
# Debian's binaries for dockerd (containerd, docker-proxy, docker-init, runc).
DAEMON_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
# Docker's default capability set (moby's oci/caps/defaults.go) as a CapEff mask.
DEFAULT_CAPS = 0xa80425fb

missing = [p for p in (DOCKER, DOCKERD, "/usr/bin/containerd", "/usr/bin/containerd-shim-runc-v2")
           if not os.access(p, os.X_OK)]
if os.geteuid() != 0:
    missing.append("root")
pytestmark = pytest.mark.skipif(bool(missing), reason=f"needs {', '.join(missing)} (apt-get install docker.io)")


class Docker(CliClient):
    program = "docker"

    def __init__(self, work):
        self.work = Path(work)
        tag = self.work.name.rsplit("-", 1)[-1][:6]
        self.sock = self.work / "docker.sock"
        self.data, self.exec_root = self.work / "data", self.work / "exec"
        self.bridge = f"ocirt-dk{tag}"          # at most 15 characters
        self.cgroup_parent = f"ocirt-dk-{tag}"
        self.subnet = None
        self.proc = None
        self.env = dict(os.environ, DOCKER_CONFIG=str(self.work / "cli"))

    def argv(self, *args):
        return [DOCKER, "-H", f"unix://{self.sock}", *map(str, args)]

    def cmd(self, *args, timeout=60, **kw):
        kw.setdefault("env", self.env)
        return super().cmd(*args, timeout=timeout, **kw)

    def run(self, *args, **kw):
        """docker run --rm --runtime ociruntime ARGS (a CompletedProcess)."""
        return self.cmd("run", "--rm", "--runtime", "ociruntime", *args, **kw)

    def out(self, *args, **kw):
        """stdout of `docker run --rm --runtime ociruntime ARGS`, which must exit 0."""
        r = self.run(*args, **kw)
        assert r.returncode == 0, f"docker run {args}: {r.returncode}: {r.stderr}"
        return r.stdout

    def start(self, *args):
        """A detached container (`run -d --runtime ociruntime`); its full id."""
        cid = self.ok("run", "-d", "--runtime", "ociruntime", *args).strip().splitlines()[-1]
        assert len(cid) == 64, cid
        return cid

    def inspect(self, cid, fmt):
        return self.ok("inspect", "-f", fmt, cid).strip()

    def pid(self, cid):
        return int(self.inspect(cid, "{{.State.Pid}}"))

    def cgroup_file(self, controller, cid, name):
        return Path("/sys/fs/cgroup") / controller / self.cgroup_parent / cid / name

    def state_dirs(self, cid):
        """The runtime's state directory of cid (the shim's runtime root is
        under the exec root: runtime-<name>/moby/<id>)."""
        return sorted(self.exec_root.glob(f"runtime-*/moby/{cid}"))

    def shims(self, cid=None):
        """Pids of containerd shims of this daemon (of container cid)."""
        found = []
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
            except OSError:
                continue
            if (argv[0].endswith("containerd-shim-runc-v2") and any(str(self.exec_root) in a for a in argv)
                    and (cid is None or cid in argv)):
                found.append(int(pid))
        return found


def _free_subnet():
    """A 10.213.N.0/24 that overlaps no address or route of this host."""
    used = []
    for what in (["ip", "-4", "-o", "addr"], ["ip", "-4", "route", "show", "table", "all"]):
        for word in subprocess.run(what, capture_output=True, text=True).stdout.split():
            try:
                used.append(ipaddress.ip_network(word, strict=False))
            except ValueError:
                pass
    used = [n for n in used if n.prefixlen > 0]   # not the default route
    for n in range(200, 256):
        net = ipaddress.ip_network(f"10.213.{n}.0/24")
        if not any(net.overlaps(u) for u in used):
            return net
    pytest.skip("no free 10.213.N.0/24 subnet for the private bridge")


def _alive(pid):
    return pid > 0 and os.path.exists(f"/proc/{pid}")


@pytest.fixture(scope="module")
def docker():
    work = Path(tempfile.mkdtemp(prefix="ocirt-dk-", dir="/tmp"))
    d = Docker(work)
    try:
        net = _free_subnet()
        r = subprocess.run(["ip", "link", "add", d.bridge, "type", "bridge"], capture_output=True, text=True)
        if r.returncode != 0:
            pytest.skip(f"cannot make a bridge: {r.stderr.strip()}")
        d.subnet = net
        gateway = next(net.hosts())
        subprocess.run(["ip", "addr", "add", f"{gateway}/{net.prefixlen}", "dev", d.bridge], check=True)
        subprocess.run(["ip", "link", "set", d.bridge, "up"], check=True)
        (work / "daemon.json").write_text(json.dumps({
            "runtimes": {"ociruntime": {"path": RUNTIME}},
            "default-runtime": "ociruntime",
            "bridge": d.bridge,               # ours: never `none`, which deletes docker0
            "iptables": False, "ip-forward": False, "ip-masq": False,
            # absolute: a relative parent is under the caller's own cgroup (as in runc)
            "cgroup-parent": "/" + d.cgroup_parent,
            "exec-opts": ["native.cgroupdriver=cgroupfs"],
            "deprecated-key-path": str(work / "key.json"),   # not /etc/docker/key.json
            "log-level": "warn",
        }))
        with open(work / "dockerd.log", "wb") as log:
            d.proc = subprocess.Popen(
                [DOCKERD, "--config-file", str(work / "daemon.json"), "--data-root", str(d.data),
                 "--exec-root", str(d.exec_root), "--pidfile", str(work / "dockerd.pid"),
                 "-H", f"unix://{d.sock}"],
                stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True,
                env=dict(os.environ, PATH=DAEMON_PATH))
        wait_for(lambda: d.proc.poll() is not None or d.cmd("version").returncode == 0,
                 timeout=60, what="dockerd to answer")
        assert d.proc.poll() is None, (work / "dockerd.log").read_text()[-3000:]
        rootfs = make_rootfs(work / "rootfs")
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        r = d.cmd("import", "-", IMAGE, stdin=tar.stdout, timeout=120)
        tar.stdout.close()
        assert tar.wait() == 0 and r.returncode == 0, r.stderr
        yield d
    finally:
        problems = _teardown(d)
    if problems:
        pytest.fail(f"the docker session left behind: {problems}")


def _teardown(d):
    problems = []
    if d.proc is not None and d.proc.poll() is None:
        ids = d.cmd("ps", "-aq", "--no-trunc").stdout.split()
        if ids:
            d.cmd("rm", "-f", "-v", *ids, timeout=120)
        d.proc.send_signal(signal.SIGTERM)
        try:
            d.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            problems.append("dockerd ignored SIGTERM")
            d.proc.kill()
            d.proc.wait()
    # what outlived it: its managed containerd, shims (found by our paths)
    pidfile = d.exec_root / "containerd" / "containerd.pid"
    try:
        ctrd = int(pidfile.read_text())
        if _alive(ctrd) and str(d.exec_root).encode() in Path(f"/proc/{ctrd}/cmdline").read_bytes():
            problems.append(f"containerd {ctrd}")
            os.kill(ctrd, signal.SIGKILL)
    except (OSError, ValueError):
        pass
    for pid in d.shims():
        problems.append(f"shim {pid}")
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    # dockerd leaves the parent cgroup it made (ours to remove); a child
    # (a container's) left in it is the runtime's leftover
    parents = cgroups_named([d.cgroup_parent])
    children = [os.path.join(p, c) for p in parents for c in os.listdir(p)
                if os.path.isdir(os.path.join(p, c))]
    problems += [f"cgroup {c}" for c in children]
    remove_cgroups(children + parents)
    unmount_all_under(d.work)
    problems += [f"mount {m}" for m in mounts_under(d.work)]
    if d.subnet is not None:
        subprocess.run(["ip", "link", "del", d.bridge], capture_output=True)
    if not mounts_under(d.work):
        shutil.rmtree(d.work, ignore_errors=True)
    return problems


def _leftovers(d, gone):
    """What containers removed with `docker rm -f` left behind: gone maps
    an id to (its pids, its rootfs mount)."""
    problems = []
    with open("/proc/self/mountinfo") as f:
        mountinfo = f.read()
    for cid, (pids, merged) in gone.items():
        for pid in pids:
            try:
                if cid in Path(f"/proc/{pid}/cgroup").read_text():
                    problems.append(f"{cid[:12]}: process {pid}")
            except OSError:
                pass
        if cid in mountinfo or (merged and f" {merged} " in mountinfo):
            problems.append(f"{cid[:12]}: mount")
        problems += [f"{cid[:12]}: state {p}" for p in d.state_dirs(cid)]
        problems += [f"{cid[:12]}: shim {p}" for p in d.shims(cid)]
    problems += [f"cgroup {p}" for p in cgroups_named(list(gone))]
    return problems


def remove_all(d, extra_pids=()):
    """docker rm -f every container; {id: (pids, rootfs mount)} of them."""
    ids = d.cmd("ps", "-aq", "--no-trunc").stdout.split()
    gone = {}
    for cid in ids:
        info = json.loads(d.cmd("inspect", cid).stdout or "[{}]")[0]
        pid = (info.get("State") or {}).get("Pid") or 0
        merged = ((info.get("GraphDriver") or {}).get("Data") or {}).get("MergedDir")
        gone[cid] = ([pid] + list(extra_pids) if pid else list(extra_pids), merged)
    if ids:
        r = d.cmd("rm", "-f", "-v", *ids, timeout=120)
        assert r.returncode == 0, r.stderr
    return gone


@pytest.fixture
def dk(docker):
    """The daemon, for one test: afterwards every container is removed
    with `docker rm -f`, and what any of them left behind fails the test."""
    yield docker
    gone = remove_all(docker)
    docker.cmd("volume", "prune", "-f")
    if not wait_for(lambda: not _leftovers(docker, gone), timeout=20):
        pytest.fail(f"docker rm -f left behind: {_leftovers(docker, gone)}")


def status(dk, cid):
    return dk.inspect(cid, "{{.State.Status}}")


def exited(dk, cid):
    """Wait until cid has exited; its exit code."""
    wait_for(lambda: status(dk, cid) == "exited", what=f"{cid[:12]} to exit", timeout=60)
    return int(dk.inspect(cid, "{{.State.ExitCode}}"))


def cap_eff(text):
    return next(int(line.split()[1], 16) for line in text.splitlines() if line.startswith("CapEff:"))


# -- the daemon ----------------------------------------------------------------

def test_info_lists_the_runtime(dk):
    runtimes = json.loads(dk.ok("info", "--format", "{{json .Runtimes}}"))
    assert runtimes["ociruntime"]["path"] == RUNTIME
    assert dk.ok("info", "--format", "{{.DefaultRuntime}}").strip() == "ociruntime"


def test_default_runtime_is_ours(dk):
    """Without --runtime the daemon's default-runtime runs it, and the shim
    keeps our state (runc's state.json is another format)."""
    cid = dk.ok("run", "-d", IMAGE, "sleep", "1000").strip()
    assert dk.inspect(cid, "{{.HostConfig.Runtime}}") == "ociruntime"
    (state_dir,) = dk.state_dirs(cid)
    state = json.loads(subprocess.run([RUNTIME, "--root", str(state_dir.parent), "state", cid],
                                      capture_output=True, text=True, check=True).stdout)
    assert state["status"] == "running" and state["pid"] == dk.pid(cid)


# -- run, exit codes, stdin, terminal -------------------------------------------

def test_run_and_exit_codes(dk):
    """Docker writes blockIO.weight 0 and cpu.shares 0 (unset) into every
    config: create must not write them to the cgroup."""
    assert dk.out(IMAGE, "echo", "hello") == "hello\n"
    assert dk.run(IMAGE, "sh", "-c", "exit 3").returncode == 3
    r = dk.run(IMAGE, "/nonexistent")
    assert r.returncode == 127 and "/nonexistent" in r.stderr
    r = dk.run(IMAGE, "/etc/passwd")
    assert r.returncode == 126 and "permission denied" in r.stderr


def test_interactive_stdin(dk):
    r = dk.run("-i", IMAGE, "sh", "-c", "read x; echo got-$x; cat; exit 4", input="line\nrest\n")
    assert r.returncode == 4 and r.stdout == "got-line\nrest\n", r


def test_tty(dk):
    rc, out = run_in_pty(dk.argv("run", "--rm", "-t", "--runtime", "ociruntime", IMAGE, "sh", "-c",
                                 "tty; [ -t 0 ] && [ -t 1 ] && echo both-tty; exit 2"), env=dk.env)
    assert rc == 2 and "/dev/pts/0\n" in out and "both-tty" in out, out


# -- exec ------------------------------------------------------------------------

def test_exec_user_cwd_env_status(dk):
    cid = dk.start(IMAGE, "sleep", "1000")
    out = dk.ok("exec", "-u", "1000:1000", "-w", "/tmp", "-e", "FOO=bar", cid,
                "sh", "-c", "id -u; id -g; pwd; echo $FOO")
    assert out == "1000\n1000\n/tmp\nbar\n"
    assert dk.cmd("exec", cid, "sh", "-c", "exit 5").returncode == 5
    r = dk.cmd("exec", cid, "/nonexistent")
    assert r.returncode == 126 and "/nonexistent" in r.stdout + r.stderr


def test_exec_tty_and_detached(dk):
    cid = dk.start(IMAGE, "sleep", "1000")
    rc, out = run_in_pty(dk.argv("exec", "-t", cid, "sh", "-c", "tty; [ -t 0 ] && echo is-tty"), env=dk.env)
    assert rc == 0 and "/dev/pts/" in out and "is-tty" in out, out
    dk.ok("exec", "-d", cid, "sleep", "777")
    wait_for(lambda: "sleep 777" in dk.ok("top", cid), what="the detached exec in docker top")


# -- signals, stop, kill, restart, pause -------------------------------------------

TRAPS = ('trap "echo got-usr1" USR1; trap "echo got-term; exit 7" TERM; echo up; '
         'while :; do sleep 0.1; done')


def test_stop_sends_term(dk):
    cid = dk.start(IMAGE, "sh", "-c", TRAPS)
    wait_for(lambda: "up" in dk.ok("logs", cid), what="the container to start its loop")
    dk.ok("stop", "-t", "30", cid)
    assert exited(dk, cid) == 7
    assert "got-term" in dk.ok("logs", cid)


def test_stop_kills_after_the_timeout(dk):
    cid = dk.start(IMAGE, "sh", "-c", 'trap "" TERM; echo up; while :; do sleep 0.1; done')
    wait_for(lambda: "up" in dk.ok("logs", cid), what="the container to start its loop")
    dk.ok("stop", "-t", "1", cid)
    assert exited(dk, cid) == 137


def test_kill(dk):
    cid = dk.start(IMAGE, "sh", "-c", TRAPS)
    wait_for(lambda: "up" in dk.ok("logs", cid), what="the container to start its loop")
    dk.ok("kill", "-s", "USR1", cid)
    wait_for(lambda: "got-usr1" in dk.ok("logs", cid), what="the USR1 trap")
    assert status(dk, cid) == "running"
    dk.ok("kill", cid)
    assert exited(dk, cid) == 137


def test_restart_policies(dk):
    failing = dk.start("--restart", "on-failure:2", IMAGE, "sh", "-c", "exit 4")
    always = dk.start("--restart", "always", IMAGE, "sh", "-c", "sleep 0.2")
    wait_for(lambda: dk.inspect(failing, "{{.RestartCount}} {{.State.Status}}") == "2 exited",
             what="on-failure:2 to give up after two restarts", timeout=60)
    assert dk.inspect(failing, "{{.State.ExitCode}}") == "4"
    wait_for(lambda: int(dk.inspect(always, "{{.RestartCount}}")) >= 2, what="restart always", timeout=60)
    cid = dk.start(IMAGE, "sleep", "1000")
    pid = dk.pid(cid)
    dk.ok("restart", "-t", "1", cid)
    assert status(dk, cid) == "running" and dk.pid(cid) != pid
    assert not _alive(pid)


def test_pause_unpause(dk):
    cid = dk.start(IMAGE, "sleep", "1000")
    freezer = dk.cgroup_file("freezer", cid, "freezer.state")
    dk.ok("pause", cid)
    assert status(dk, cid) == "paused"
    assert freezer.read_text().strip() == "FROZEN"
    dk.ok("unpause", cid)
    assert status(dk, cid) == "running"
    assert freezer.read_text().strip() == "THAWED"
    assert dk.ok("exec", cid, "echo", "thawed") == "thawed\n"


# -- resources ---------------------------------------------------------------------

def test_memory_oom_kill(dk):
    cid = dk.start("--memory", "24m", "--memory-swap", "24m", IMAGE,
                   "sh", "-c", "x=a; while :; do x=$x$x; done")
    assert exited(dk, cid) == 137
    assert dk.inspect(cid, "{{.State.OOMKilled}}") == "true"


def test_limits_in_the_cgroup(dk):
    cid = dk.start("--memory", "64m", "--pids-limit", "50", "--cpus", "0.5", "--cpu-shares", "512",
                   IMAGE, "sleep", "1000")
    outside = {name: dk.cgroup_file(ctl, cid, name).read_text().strip() for ctl, name in (
        ("memory", "memory.limit_in_bytes"), ("pids", "pids.max"), ("cpu", "cpu.cfs_quota_us"),
        ("cpu", "cpu.cfs_period_us"), ("cpu", "cpu.shares"))}
    assert outside == {"memory.limit_in_bytes": str(64 << 20), "pids.max": "50",
                       "cpu.cfs_quota_us": "50000", "cpu.cfs_period_us": "100000", "cpu.shares": "512"}
    inside = dk.ok("exec", cid, "cat", "/sys/fs/cgroup/pids/pids.max", "/sys/fs/cgroup/cpu/cpu.shares")
    assert inside.split() == ["50", "512"]
    # the pid limit holds: 60 more processes cannot all start (the shell
    # stops at the first fork that fails)
    r = dk.cmd("exec", cid, "sh", "-c", "for i in $(seq 60); do sleep 1000 & done; echo all-started")
    assert "all-started" not in r.stdout and "fork" in r.stderr, r
    assert int(dk.cgroup_file("pids", cid, "pids.current").read_text()) <= 50
    assert int(dk.cgroup_file("pids", cid, "pids.events").read_text().split()[1]) > 0   # "max N": refused forks


def test_update(dk):
    cid = dk.start("--memory", "64m", "--memory-swap", "128m", IMAGE, "sleep", "1000")
    dk.ok("update", "--memory", "96m", "--memory-swap", "192m", "--cpu-shares", "300",
          "--pids-limit", "40", "--cpus", "0.25", cid)
    assert dk.cgroup_file("memory", cid, "memory.limit_in_bytes").read_text().strip() == str(96 << 20)
    assert dk.cgroup_file("memory", cid, "memory.memsw.limit_in_bytes").read_text().strip() == str(192 << 20) \
        or not dk.cgroup_file("memory", cid, "memory.memsw.limit_in_bytes").exists()
    assert dk.cgroup_file("cpu", cid, "cpu.shares").read_text().strip() == "300"
    assert dk.cgroup_file("cpu", cid, "cpu.cfs_quota_us").read_text().strip() == "25000"
    assert dk.cgroup_file("pids", cid, "pids.max").read_text().strip() == "40"
    assert dk.inspect(cid, "{{.HostConfig.Memory}}") == str(96 << 20)


# -- filesystem ---------------------------------------------------------------------

def test_read_only_and_tmpfs(dk):
    out = dk.out("--read-only", "--tmpfs", "/scratch:size=1m", IMAGE, "sh", "-c",
                 "touch /x 2>/dev/null && echo root-writable; touch /scratch/y && echo scratch-ok; "
                 "grep ' /scratch ' /proc/mounts")
    assert "root-writable" not in out and "scratch-ok" in out
    assert "tmpfs /scratch tmpfs" in out and "size=1024k" in out


def test_bind_and_named_volumes(dk, tmp_path):
    host = tmp_path / "shared"
    host.mkdir()
    (host / "in").write_text("from-host\n")
    vol = f"ocirt-vol-{uuid.uuid4().hex[:8]}"
    out = dk.out("-v", f"{host}:/shared", "-v", f"{vol}:/vol", IMAGE, "sh", "-c",
                 "cat /shared/in; echo from-container > /shared/out; echo kept > /vol/f")
    assert out == "from-host\n"
    assert (host / "out").read_text() == "from-container\n"
    assert dk.out("-v", f"{vol}:/vol", IMAGE, "cat", "/vol/f") == "kept\n"
    r = dk.run("-v", f"{host}:/shared:ro", IMAGE, "sh", "-c", "echo x > /shared/no")
    assert r.returncode != 0 and not (host / "no").exists()
    dk.ok("volume", "rm", vol)


def test_cp_and_export(dk, tmp_path):
    cid = dk.start(IMAGE, "sleep", "1000")
    (tmp_path / "to").write_text("copied-in\n")
    dk.ok("cp", tmp_path / "to", f"{cid}:/tmp/to")
    assert dk.ok("exec", cid, "cat", "/tmp/to") == "copied-in\n"
    dk.ok("cp", f"{cid}:/etc/passwd", tmp_path / "passwd")
    assert (tmp_path / "passwd").read_text().startswith("root:")
    dk.ok("export", "-o", tmp_path / "fs.tar", cid)
    with tarfile.open(tmp_path / "fs.tar") as t:
        names = set(t.getnames())
    assert {"bin/busybox", "tmp/to", ".dockerenv"} <= names


# -- security ------------------------------------------------------------------------

def test_capabilities(dk):
    assert cap_eff(dk.out(IMAGE, "cat", "/proc/self/status")) == DEFAULT_CAPS
    assert cap_eff(dk.out("--cap-drop", "ALL", "--cap-add", "NET_RAW", IMAGE,
                          "cat", "/proc/self/status")) == 1 << 13
    r = dk.run("--cap-drop", "CHOWN", IMAGE, "chown", "1000", "/tmp")
    assert r.returncode != 0 and "Operation not permitted" in r.stderr


def test_no_new_privileges(dk):
    assert "NoNewPrivs:\t0" in dk.out(IMAGE, "cat", "/proc/self/status")
    assert "NoNewPrivs:\t1" in dk.out("--security-opt", "no-new-privileges", IMAGE, "cat", "/proc/self/status")


def test_default_seccomp_profile(dk):
    """Docker's default profile is loaded: unshare() without CAP_SYS_ADMIN
    is refused by it, and allowed when the profile is off."""
    status_text = dk.out(IMAGE, "cat", "/proc/self/status")
    assert "Seccomp:\t2" in status_text
    r = dk.run(IMAGE, "unshare", "-U", "true")
    assert r.returncode != 0 and "Operation not permitted" in r.stderr
    assert dk.run("--security-opt", "seccomp=unconfined", IMAGE, "unshare", "-U", "true").returncode == 0


def test_user(dk):
    assert dk.out("--user", "1000:1000", IMAGE, "id") == "uid=1000(user) gid=1000(user) groups=1000(user)\n"
    assert dk.out("--user", "user", "--group-add", "10", IMAGE, "sh", "-c", "id -u; id -G") == "1000\n1000 10\n"


def test_ulimit(dk):
    assert dk.out("--ulimit", "nofile=512:1024", "--ulimit", "nproc=300:400", IMAGE, "sh", "-c",
                  "ulimit -n; ulimit -Hn; ulimit -u") == "512\n1024\n300\n"


def test_sysctl(dk):
    host = Path("/proc/sys/kernel/msgmax").read_text()
    out = dk.out("--sysctl", "kernel.msgmax=12345", "--sysctl", "net.ipv4.ip_local_port_range=40000 40100",
                 IMAGE, "cat", "/proc/sys/kernel/msgmax", "/proc/sys/net/ipv4/ip_local_port_range")
    assert out.split() == ["12345", "40000", "40100"]
    assert Path("/proc/sys/kernel/msgmax").read_text() == host


# -- namespaces and network ----------------------------------------------------------

def test_network_none(dk):
    out = dk.out("--network", "none", IMAGE, "ip", "-o", "link")
    assert [line.split(":")[1].strip() for line in out.splitlines()] == ["lo"]


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_bridge_and_published_port(dk):
    port = _free_port()
    cid = dk.start("-p", f"127.0.0.1:{port}:80", IMAGE, "sh", "-c",
                   "echo hello-from-ociruntime > /tmp/r; while :; do nc -l -p 80 < /tmp/r; done")
    addr = dk.inspect(cid, "{{.NetworkSettings.IPAddress}}")
    assert ipaddress.ip_address(addr) in dk.subnet

    def fetch():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.sendall(b"\n")
                return s.recv(100)
        except OSError:
            return b""
    assert wait_for(lambda: b"hello-from-ociruntime" in fetch(), what=f"an answer on 127.0.0.1:{port}")
    assert f"inet {addr}/" in dk.ok("exec", cid, "ip", "addr", "show", "eth0")


def test_pid_and_ipc_host(dk):
    out = dk.out("--pid", "host", "--ipc", "host", IMAGE, "sh", "-c",
                 "readlink /proc/self/ns/pid; readlink /proc/self/ns/ipc; echo $$")
    pidns, ipcns, pid = out.split()
    assert pidns == os.readlink("/proc/self/ns/pid") and ipcns == os.readlink("/proc/self/ns/ipc")
    assert int(pid) != 1
    own = dk.out(IMAGE, "sh", "-c", "readlink /proc/self/ns/pid; readlink /proc/self/ns/ipc").split()
    assert own[0] != pidns and own[1] != ipcns


def test_init(dk):
    out = dk.out("--init", IMAGE, "ps", "-o", "pid,args")
    assert "1 /sbin/docker-init -- ps" in out
    # docker-init hands stop's TERM to sleep (which, as pid 1, would ignore it)
    cid = dk.start("--init", IMAGE, "sleep", "1000")
    wait_for(lambda: "sleep 1000" in dk.ok("top", cid), what="sleep under docker-init")
    dk.ok("stop", "-t", "60", cid)
    assert exited(dk, cid) == 143


# -- observing -------------------------------------------------------------------------

def test_healthcheck(dk):
    good = dk.start("--health-cmd", "test -d /tmp", "--health-interval", "1s", IMAGE, "sleep", "1000")
    bad = dk.start("--health-cmd", "false", "--health-interval", "1s", "--health-retries", "1",
                   IMAGE, "sleep", "1000")
    wait_for(lambda: dk.inspect(good, "{{.State.Health.Status}}") == "healthy", what="healthy", timeout=60)
    wait_for(lambda: dk.inspect(bad, "{{.State.Health.Status}}") == "unhealthy", what="unhealthy", timeout=60)


def test_top_stats_logs(dk):
    cid = dk.start(IMAGE, "sh", "-c", "echo line-one; echo line-two >&2; exec sleep 1000")
    wait_for(lambda: "sleep 1000" in dk.ok("top", cid), what="docker top to list the process")
    mem, pids = dk.ok("stats", "--no-stream", "--format", "{{.MemUsage}}|{{.PIDs}}", cid).strip().split("|")
    assert int(pids) == 1 and not mem.startswith("0B"), (mem, pids)
    r = dk.cmd("logs", cid)
    assert r.stdout == "line-one\n" and r.stderr == "line-two\n"


def test_events(dk):
    since = f"{time.time():.6f}"
    cid = dk.start(IMAGE, "sleep", "1000")
    dk.ok("pause", cid)
    dk.ok("unpause", cid)
    dk.ok("stop", "-t", "1", cid)
    dk.ok("rm", cid)
    want = ["create", "start", "pause", "unpause", "kill", "die", "stop", "destroy"]

    def actions():
        return dk.ok("events", "--since", since, "--until", f"{time.time():.6f}", "--filter",
                     f"container={cid}", "--format", "{{.Action}}").split()
    got = wait_for(lambda: (lambda a: a if "destroy" in a else None)(actions()), what="the events")
    seen = [a for a in got if a in want]
    assert [a for i, a in enumerate(seen) if i == 0 or a != seen[i - 1]] == want, got   # stop: TERM, KILL


# -- removal and many containers ----------------------------------------------------------

def test_rm_f_leaves_nothing(dk, tmp_path):
    """rm -f of a running container with an exec'd process, a tmpfs and a
    bind mount: no process, mount, cgroup, shim or state is left."""
    cid = dk.start("--tmpfs", "/scratch", "-v", f"{tmp_path}:/bind", IMAGE, "sleep", "1000")
    dk.ok("exec", "-d", cid, "sleep", "999")
    wait_for(lambda: "sleep 999" in dk.ok("top", cid), what="the exec'd process")
    pids = [int(line.split()[1]) for line in dk.ok("top", cid).splitlines()[1:]]
    assert len(pids) == 2 and all(_alive(p) for p in pids)
    assert cgroups_named([cid]) and dk.state_dirs(cid)
    gone = remove_all(dk, extra_pids=pids)
    assert list(gone) == [cid]
    wait_for(lambda: not _leftovers(dk, gone), timeout=20)
    assert _leftovers(dk, gone) == []
    assert not any(_alive(p) for p in pids)


def test_twenty_at_once(dk):
    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        ids = list(pool.map(lambda i: dk.start("--name", f"ocirt-many-{uuid.uuid4().hex[:6]}-{i}", IMAGE,
                                               "sleep", "1000"), range(20)))
    running = dk.ok("ps", "-q", "--no-trunc", "--filter", "status=running").split()
    assert set(ids) <= set(running)
    pids = {dk.pid(cid) for cid in ids}
    assert len(pids) == 20 and all(_alive(p) for p in pids)
    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        outs = list(pool.map(lambda cid: dk.ok("exec", cid, "hostname"), ids))
    assert sorted(o.strip() for o in outs) == sorted(cid[:12] for cid in ids)


def test_rm_f_of_paused_and_host_pid_containers(dk):
    """rm -f thaws a paused container to kill it; with the host's pid
    namespace, the init's death does not take the exec'd process along:
    the runtime kills every process of the cgroup."""
    paused = dk.start(IMAGE, "sleep", "1000")
    dk.ok("exec", "-d", paused, "sleep", "998")
    shared = dk.start("--pid", "host", IMAGE, "sleep", "1000")
    dk.ok("exec", "-d", shared, "sleep", "997")
    for cid, cmd in ((paused, "sleep 998"), (shared, "sleep 997")):
        wait_for(lambda: cmd in dk.ok("top", cid), what=f"{cmd} in docker top")
    dk.ok("pause", paused)
    pids = [int(line.split()[1]) for cid in (paused, shared) for line in dk.ok("top", cid).splitlines()[1:]]
    assert len(pids) == 4 and all(_alive(p) for p in pids)
    gone = remove_all(dk, extra_pids=pids)
    assert wait_for(lambda: not _leftovers(dk, gone), timeout=20), _leftovers(dk, gone)
    assert not any(_alive(p) for p in pids)


def test_custom_seccomp_profile(dk, tmp_path):
    """--security-opt seccomp=FILE: Docker's own profile format, compiled
    by Docker into linux.seccomp; mkdir gets the errno it names."""
    profile = {"defaultAction": "SCMP_ACT_ALLOW",
               "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}
    (tmp_path / "p.json").write_text(json.dumps(profile))
    r = dk.run("--security-opt", f"seccomp={tmp_path / 'p.json'}", IMAGE, "sh", "-c",
               "mkdir /tmp/d; touch /tmp/f && echo touched")
    assert "Permission denied" in r.stderr and r.stdout == "touched\n", r


def test_hostname_hosts_shm_workdir_cpuset_oom_score(dk):
    out = dk.out("--hostname", "box1", "--add-host", "db.test:10.9.8.7", "--shm-size", "8m", "-w", "/new/dir",
                 "--cpuset-cpus", "0", "--oom-score-adj", "500", IMAGE, "sh", "-c",
                 "hostname; grep db.test /etc/hosts; df -k /dev/shm | tail -1; pwd; "
                 "cat /sys/fs/cgroup/cpuset/cpuset.cpus; grep Cpus_allowed_list /proc/self/status; "
                 "cat /proc/self/oom_score_adj")
    lines = out.splitlines()
    assert lines[0] == "box1" and lines[1].split() == ["10.9.8.7", "db.test"]
    assert lines[2].split()[1] == "8192" and lines[3] == "/new/dir"
    assert lines[4] == "0" and lines[5].split()[-1] == "0" and lines[6] == "500"


# What a container sees: its identity, capabilities, limits, mounts, /dev,
# the masked and read-only paths.  Compared line by line with runc's.
VIEW = r'''
id; umask; hostname; pwd; env | sort | grep -v HOSTNAME
grep -E "^(Cap|NoNewPrivs|Seccomp|Groups)" /proc/self/status
cat /proc/self/oom_score_adj; ulimit -a
sed -E 's/(lowerdir|upperdir|workdir)=[^,]*//g; s/size=[0-9]+k/size=N/' /proc/self/mounts | awk '{print $2, $3, $4}' | sort
ls -la /dev | awk '{print $1, $3, $4, $5, $NF}'; ls -la /dev/pts /dev/mqueue /dev/shm | awk '{print $1, $NF}'
head -c1 /proc/kcore 2>&1 | wc -c; head -1 /proc/timer_list; ls /proc/acpi /proc/scsi /sys/firmware 2>&1
touch /proc/sys/kernel/x 2>&1; echo 1 > /proc/sys/vm/drop_caches 2>&1
sed 's/[0-9a-f]\{64\}/ID/' /proc/self/cgroup; cat /proc/self/loginuid; echo
ls -la / | awk '{print $1, $3, $NF}'; stat -c '%a %U %n' /tmp /etc/hosts /etc/resolv.conf /etc/hostname
'''


def test_same_view_as_runc(dk):
    """Where we differ on purpose: the cgroup tmpfs is read-only as Docker
    asks (runc 1.1 leaves it writable), and on a hybrid host the container
    also sees its cgroup2 (unified) hierarchy."""
    def view(runtime):
        r = dk.cmd("run", "--rm", "--runtime", runtime, "--hostname", "h", IMAGE, "sh", "-c", VIEW)
        assert r.returncode == 0, r.stderr
        return [line for line in r.stdout.splitlines()
                if not line.startswith(("/sys/fs/cgroup tmpfs ", "/sys/fs/cgroup/unified "))]
    theirs, ours = view("runc"), view("ociruntime")
    assert len(ours) > 100
    assert ours == theirs
