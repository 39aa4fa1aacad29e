"""cgroup v2 for real: a pure cgroup2 hierarchy with every controller, as
Debian 12, Ubuntu 22.04+, Fedora and RHEL 9 have.  Every linux.resources
field lands in its v2 file; update; pause/resume (cgroup.freeze); kill
--all and delete (cgroup.kill); events, stats and OOM; the eBPF device
filter; containers that make sub-cgroups; ociruntime inside a container;
and delete touching nothing outside the container's own cgroup."""
import json
import os
import shutil
import subprocess
import time

import pytest

from conftest import RUNTIME
from vmhelpers import (CG, IN_VM_ONLY, alive, busybox_config, cg_path, container_dir, delegated,
                       kv, own_cgroup, procs, read)

pytestmark = IN_VM_ONLY


def start(oci, cfg):
    cid = oci.new_id()
    cfg["linux"]["cgroupsPath"] = cg_path(cid)
    r = oci.create("-b", oci.bundle(cfg), cid)
    assert r.returncode == 0, r.stderr
    oci.ok("start", cid)
    return cid


def sleeper(oci, resources=None, args=("sleep", "1000")):
    cfg = busybox_config(list(args))
    if resources is not None:
        cfg["linux"]["resources"] = resources
    return start(oci, cfg)


@pytest.fixture(scope="module")
def loopdev():
    """A loop device (7:N) for the per-device I/O limits: the VM has no disk."""
    img = "/tmp/ocivm-loop.img"
    with open(img, "wb") as f:
        f.truncate(16 << 20)
    dev = subprocess.run(["losetup", "-f", "--show", img], capture_output=True, text=True,
                         check=True).stdout.strip()
    st = os.stat(dev)
    yield os.major(st.st_rdev), os.minor(st.st_rdev)
    subprocess.run(["losetup", "-d", dev], check=True)
    os.unlink(img)


def test_every_resource_lands_in_its_v2_file(oci, loopdev):
    major, minor = loopdev
    res = {
        "memory": {"limit": 64 << 20, "reservation": 16 << 20, "swap": 96 << 20},
        "cpu": {"shares": 2048, "quota": 50000, "period": 100000, "burst": 10000, "idle": 0,
                "cpus": "0", "mems": "0"},
        "pids": {"limit": 42},
        "blockIO": {"weight": 500,
                    "throttleReadBpsDevice": [{"major": major, "minor": minor, "rate": 1048576}],
                    "throttleWriteIOPSDevice": [{"major": major, "minor": minor, "rate": 300}]},
        "hugepageLimits": [{"pageSize": "2MB", "limit": 4 << 20}],
        "unified": {"memory.high": "50331648", "memory.oom.group": "1", "pids.max": "40"},
    }
    cid = sleeper(oci, res)
    d = container_dir(oci, cid)
    assert d == f"{CG}{cg_path(cid)}"
    assert read(f"{d}/memory.max") == str(64 << 20)
    assert read(f"{d}/memory.low") == str(16 << 20)
    assert read(f"{d}/memory.swap.max") == str(32 << 20)   # memory+swap - memory
    assert read(f"{d}/memory.high") == "50331648"
    assert read(f"{d}/memory.oom.group") == "1"
    assert read(f"{d}/cpu.weight") == str(1 + (2048 - 2) * 9999 // 262142)
    assert read(f"{d}/cpu.max") == "50000 100000"
    assert read(f"{d}/cpu.max.burst") == "10000"
    assert read(f"{d}/cpu.idle") == "0"
    assert read(f"{d}/cpuset.cpus") == "0"
    assert read(f"{d}/cpuset.mems") == "0"
    assert read(f"{d}/pids.max") == "40"   # unified comes last and wins, as in runc
    io_max = read(f"{d}/io.max")
    assert f"{major}:{minor} rbps=1048576 wbps=max riops=max wiops=300" in io_max
    if os.path.exists(f"{d}/io.bfq.weight"):
        assert read(f"{d}/io.bfq.weight").split()[:2] == ["default", "500"]
    else:
        assert read(f"{d}/io.weight").split()[:2] == ["default", str(1 + (500 - 10) * 9999 // 990)]
    assert read(f"{d}/hugetlb.2MB.max") == str(4 << 20)
    # And the init really is in that cgroup.
    pid = oci.state(cid)["pid"]
    assert read(f"/proc/{pid}/cgroup") == f"0::{cg_path(cid)}"


def test_cpu_idle_and_rdma(oci):
    cid = sleeper(oci, {"cpu": {"idle": 1}})
    assert read(f"{container_dir(oci, cid)}/cpu.idle") == "1"
    rdma_devs = os.listdir("/sys/class/infiniband") if os.path.isdir("/sys/class/infiniband") else []
    cfg = busybox_config(["true"])
    cfg["linux"]["resources"] = {"rdma": {"mlx-none0": {"hcaHandles": 3}}}
    if rdma_devs:
        pytest.skip("an RDMA device is present: not the case this test checks")
    # No RDMA device in the VM: the kernel refuses the line, and so do we, cleanly.
    cid2 = oci.new_id()
    cfg["linux"]["cgroupsPath"] = cg_path(cid2)
    r = oci.cmd("run", "-b", oci.bundle(cfg), cid2)
    assert r.returncode == 1 and "rdma" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert not os.path.exists(f"{CG}{cg_path(cid2)}")


def test_update_writes_v2_files(oci):
    cid = sleeper(oci, {"memory": {"limit": 64 << 20}, "pids": {"limit": 50}})
    d = container_dir(oci, cid)
    oci.ok("update", "--memory", "96m", "--memory-swap", "128m", "--pids-limit", "77",
           "--cpu-quota", "20000", "--cpu-period", "50000", "--cpu-share", "512", cid)
    assert read(f"{d}/memory.max") == str(96 << 20)
    assert read(f"{d}/memory.swap.max") == str(32 << 20)
    assert read(f"{d}/pids.max") == "77"
    assert read(f"{d}/cpu.max") == "20000 50000"
    assert read(f"{d}/cpu.weight") == str(1 + (512 - 2) * 9999 // 262142)
    res = {"unified": {"memory.high": "max", "cpu.weight": "300"}, "pids": {"limit": -1}}
    oci.ok("update", "--resources", "-", cid, input=json.dumps(res))
    assert read(f"{d}/memory.high") == "max"
    assert read(f"{d}/cpu.weight") == "300"
    assert read(f"{d}/pids.max") == "max"


def test_pause_resume_through_cgroup_freeze(oci):
    cid = sleeper(oci, args=("sh", "-c", "sleep 1000 & sleep 1000"))
    d = container_dir(oci, cid)
    procs(d, 2)
    oci.ok("pause", cid)
    assert oci.state(cid)["status"] == "paused"
    assert read(f"{d}/cgroup.freeze") == "1"
    assert kv(f"{d}/cgroup.events")["frozen"] == "1"
    for pid in read(f"{d}/cgroup.procs").split():
        assert read(f"/proc/{pid}/stat").split(") ")[1].split()[0] in ("S", "D", "T", "t")
    oci.ok("resume", cid)
    assert oci.state(cid)["status"] == "running"
    assert kv(f"{d}/cgroup.events")["frozen"] == "0"


def test_kill_all_and_delete_through_cgroup_kill(oci):
    cid = sleeper(oci, args=("sh", "-c", "sleep 1000 & sleep 1000 & exec sleep 1000"))
    d = container_dir(oci, cid)
    pids = procs(d, 3)
    oci.ok("kill", "--all", cid, "KILL")
    deadline = time.monotonic() + 30
    while read(f"{d}/cgroup.procs") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert read(f"{d}/cgroup.procs") == ""
    assert kv(f"{d}/cgroup.events")["populated"] == "0"
    assert oci.state(cid)["status"] == "stopped"
    oci.ok("delete", cid)
    assert not os.path.exists(d)


def test_delete_force_of_a_paused_container(oci):
    cid = sleeper(oci, args=("sh", "-c", "sleep 1000 & exec sleep 1000"))
    d = container_dir(oci, cid)
    pids = procs(d, 2)
    oci.ok("pause", cid)
    oci.ok("delete", "--force", cid)
    assert not os.path.exists(d)
    assert not any(alive(p) for p in pids)


def test_events_stats_read_v2_files(oci):
    cid = sleeper(oci, {"memory": {"limit": 64 << 20}, "pids": {"limit": 30}},
                  args=("sh", "-c", "sleep 1000 & sleep 1000"))
    procs(container_dir(oci, cid), 2)
    r = oci.ok("events", "--stats", cid)
    ev = json.loads(r.stdout)
    assert ev["type"] == "stats" and ev["id"] == cid
    data = ev["data"]
    assert data["pids"]["current"] == 2 and data["pids"]["limit"] == 30
    assert data["memory"]["usage"]["limit"] == 64 << 20
    assert data["memory"]["usage"]["usage"] > 0
    assert data["cpu"]["usage"]["total"] > 0


def test_oom_is_an_event_and_counted(oci):
    # tail buffers a line without end: /dev/zero grows it until the OOM
    # killer takes it, in the container's memory cgroup only.
    cid = sleeper(oci, {"memory": {"limit": 16 << 20, "swap": 16 << 20}},
                  args=("sh", "-c", "sleep 2; tail /dev/zero; sleep 1000"))
    d = container_dir(oci, cid)
    ev = subprocess.Popen([RUNTIME, "--root", oci.root, "events", "--interval", "1s", cid],
                          stdout=subprocess.PIPE, text=True)
    try:
        seen = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = ev.stdout.readline()
            if not line:
                break
            seen.append(json.loads(line)["type"])
            if "oom" in seen:
                break
        assert "oom" in seen, seen
    finally:
        ev.kill()
        ev.wait()
    assert int(kv(f"{d}/memory.events")["oom_kill"]) >= 1
    assert oci.state(cid)["status"] == "running"   # the shell lives on


def test_device_filter_denies_for_real(oci):
    # CAP_MKNOD and CAP_SYS_RAWIO, but the eBPF program allows only the
    # default devices (and mknod of any, as runc): a node of the VM's
    # loop device or of /dev/mem can be made, not opened; /dev/null can.
    cfg = busybox_config(["sh", "-c",
                          "mknod /dev/nul2 c 1 3 && echo ok > /dev/nul2 && echo null-ok; "
                          "mknod /dev/blk b 7 0 && (cat /dev/blk > /dev/null) 2>&1 || echo blk-denied; "
                          "mknod /dev/mem2 c 1 1 && (cat /dev/mem2 > /dev/null) 2>&1 || echo open-denied"])
    for k in ("bounding", "effective", "permitted"):
        cfg["process"]["capabilities"][k] += ["CAP_MKNOD", "CAP_SYS_RAWIO"]
    cfg["linux"]["resources"] = {"devices": [{"allow": False, "access": "rwm"},
                                             {"allow": True, "type": "c", "major": 1, "minor": 1,
                                              "access": "m"}]}
    cid = oci.new_id()
    cfg["linux"]["cgroupsPath"] = cg_path(cid)
    r = oci.cmd("run", "-b", oci.bundle(cfg), cid)
    assert "null-ok" in r.stdout, (r.stdout, r.stderr)
    assert "blk-denied" in r.stdout and "can't open '/dev/blk': Operation not permitted" in r.stdout
    assert "open-denied" in r.stdout, r.stdout
    assert r.returncode == 0


def _cgroup_rw(cfg):
    if not any(ns["type"] == "cgroup" for ns in cfg["linux"]["namespaces"]):
        cfg["linux"]["namespaces"].append({"type": "cgroup"})
    cfg["mounts"] = [m for m in cfg["mounts"] if m["destination"] != "/sys/fs/cgroup"]
    cfg["mounts"].append({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                          "options": ["nosuid", "noexec", "nodev", "rw"]})
    for k in ("bounding", "effective", "permitted"):
        cfg["process"]["capabilities"][k].append("CAP_SYS_ADMIN")
    return cfg


def test_container_makes_sub_cgroups_and_delete_removes_them(oci):
    # What systemd or an engine inside a container does: move itself into
    # a leaf, enable controllers, make children with processes in them.
    cfg = _cgroup_rw(busybox_config(["sh", "-c",
        "cd /sys/fs/cgroup && mkdir init a a/b && echo $$ > init/cgroup.procs && "
        "echo '+pids +memory' > cgroup.subtree_control && echo +pids > a/cgroup.subtree_control && "
        "{ sh -c 'echo 0 > a/b/cgroup.procs; exec sleep 1000' & exec sleep 1000; }"]))
    cid = start(oci, cfg)
    d = container_dir(oci, cid)
    deadline = time.monotonic() + 30
    while not (os.path.exists(f"{d}/a/b") and read(f"{d}/a/b/cgroup.procs")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert read(f"{d}/a/b/cgroup.procs"), "the container did not make its sub-cgroups"
    assert "memory" in read(f"{d}/cgroup.subtree_control")
    pids = read(f"{d}/init/cgroup.procs").split() + read(f"{d}/a/b/cgroup.procs").split()
    assert oci.state(cid)["status"] == "running"
    oci.ok("delete", "--force", cid)
    assert not os.path.exists(d)
    assert not any(alive(p) for p in pids)


def test_delete_touches_nothing_outside_its_cgroup(oci, tmp_path):
    # A parent cgroup with a bystander beside the container: delete
    # --force kills and removes the container's cgroup only; the parent
    # and the bystander's cgroup are never frozen or killed.
    parent = f"{CG}{delegated()}/ocivm-parent-{os.getpid()}"
    os.mkdir(parent)
    os.mkdir(f"{parent}/bystander")
    by = subprocess.Popen(["sleep", "1000"])
    try:
        with open(f"{parent}/bystander/cgroup.procs", "w") as f:
            f.write(str(by.pid))
        cfg = busybox_config(["sh", "-c", "sleep 1000 & exec sleep 1000"])
        cid = oci.new_id()
        cfg["linux"]["cgroupsPath"] = f"{delegated()}/ocivm-parent-{os.getpid()}/{cid}"
        r = oci.create("-b", oci.bundle(cfg), cid)
        assert r.returncode == 0, r.stderr
        oci.ok("start", cid)
        oci.ok("pause", cid)
        oci.ok("kill", "--all", cid, "KILL")
        oci.ok("delete", "--force", cid)
        assert not os.path.exists(f"{parent}/{cid}")
        assert by.poll() is None, "the bystander was killed"
        for d in (parent, f"{parent}/bystander"):
            assert read(f"{d}/cgroup.freeze") == "0"
            assert kv(f"{d}/cgroup.events")["frozen"] == "0"
        assert read(f"{parent}/bystander/cgroup.procs") == str(by.pid)
    finally:
        by.kill()
        by.wait()
        os.rmdir(f"{parent}/bystander")
        os.rmdir(parent)


def test_default_cgroups_path_beside_the_runtimes_busy_cgroup(oci):
    # No cgroupsPath: as runc's fs2, the container goes beside the
    # runtime's own cgroup (pytest's leaf), under its parent: below the
    # leaf, which has processes, no controller could be enabled and a
    # limit would fail (rootless podman with cgroupfs gives no path).
    cfg = busybox_config(["sh", "-c", "cat /sys/fs/cgroup/pids.max"])
    cfg["linux"].pop("cgroupsPath", None)
    cfg["linux"]["resources"] = {"pids": {"limit": 10}}
    cid = oci.new_id()
    r = oci.create("-b", oci.bundle(cfg), cid)
    assert r.returncode == 0, r.stderr
    assert container_dir(oci, cid) == f"{CG}{delegated()}/{cid}"
    assert read(f"{CG}{delegated()}/{cid}/pids.max") == "10"
    oci.ok("delete", "--force", cid)
    assert not os.path.exists(f"{CG}{delegated()}/{cid}")
    r = oci.cmd("run", "-b", oci.bundle(cfg), oci.new_id())
    assert (r.returncode, r.stdout) == (0, "10\n"), r.stderr
    # Nothing was enabled in pytest's own (busy) cgroup: a threaded
    # controller there would have made it a thread root.
    assert read(f"{CG}{own_cgroup()}/cgroup.subtree_control") == ""


ALL_CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
            "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_NET_ADMIN", "CAP_NET_RAW",
            "CAP_IPC_LOCK", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_ADMIN", "CAP_MKNOD",
            "CAP_AUDIT_WRITE", "CAP_SETFCAP", "CAP_SYS_RESOURCE", "CAP_NET_BIND_SERVICE"]


def test_ociruntime_inside_an_ociruntime_container(oci, tmp_path):
    # The outer container sees the VM's /usr and the worktree (read-only),
    # has its own cgroup namespace with cgroup2 mounted read-write, and no
    # masked /proc paths (they would forbid the inner proc mount); inside
    # it, ociruntime runs a container with a pids limit in a sub-cgroup.
    from conftest import ROOTFS
    repo = os.path.realpath(os.path.join(os.path.dirname(__file__), "..", ".."))
    inner = tmp_path / "inner"
    inner.mkdir()
    shutil.copytree(ROOTFS, inner / "rootfs", symlinks=True)
    icfg = busybox_config(["sh", "-c", "cat /proc/self/cgroup; cat /sys/fs/cgroup/pids.max"])
    icfg["linux"]["cgroupsPath"] = "/inner"
    icfg["linux"]["resources"] = {"pids": {"limit": 7}}
    # No cgroup namespace of its own: /proc/self/cgroup then shows where
    # the inner runtime put it, in the outer container's namespace.
    icfg["linux"]["namespaces"] = [n for n in icfg["linux"]["namespaces"] if n["type"] != "cgroup"]
    (inner / "config.json").write_text(json.dumps(icfg))

    cfg = _cgroup_rw(busybox_config(["sh", "-c",
        "mkdir /sys/fs/cgroup/outer && echo $$ > /sys/fs/cgroup/outer/cgroup.procs && "
        f"{RUNTIME} --root /run/inner run -b /inner ocivm-inner && "
        "{ test -e /sys/fs/cgroup/inner || echo inner-removed; }"]))
    cfg["root"] = {"path": "rootfs", "readonly": False}
    cfg["linux"]["maskedPaths"] = []
    cfg["linux"]["readonlyPaths"] = []
    for k in ("bounding", "effective", "permitted"):
        cfg["process"]["capabilities"][k] = ALL_CAPS
    cfg["process"]["capabilities"]["ambient"] = []
    cfg["process"]["env"].append("HOME=/")
    for name in ("bin", "lib", "lib64", "sbin"):   # usrmerged: symlinks into /usr
        if not os.path.islink("/" + name):
            pytest.skip(f"/{name} is not a symlink into /usr here")
    for dst in ("/run", "/tmp"):   # first: the worktree may be under /tmp
        cfg["mounts"].append({"destination": dst, "type": "tmpfs", "source": "tmpfs",
                              "options": ["nosuid", "nodev", "mode=755"]})
    binds = [("/usr", "ro"), ("/etc", "ro"), (repo, "ro"), (str(inner), "rw")]
    for src, mode in binds:
        dst = "/inner" if src == str(inner) else src
        cfg["mounts"].append({"destination": dst, "type": "bind", "source": src,
                              "options": ["rbind", mode]})
    cid = oci.new_id()
    cfg["linux"]["cgroupsPath"] = cg_path(cid)
    b = tmp_path / "outer"
    (b / "rootfs").mkdir(parents=True)
    for name in ("bin", "lib", "lib64", "sbin"):
        os.symlink("usr/" + name, b / "rootfs" / name)
    (b / "config.json").write_text(json.dumps(cfg))
    r = oci.cmd("run", "-b", b, cid, timeout=300)
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert r.stdout.splitlines() == ["0::/inner", "7", "inner-removed"], (r.stdout, r.stderr)
    assert not os.path.exists(f"{CG}{cg_path(cid)}")
