"""cgroups for real on this host: limits, devices, update, pause/resume,
events, ps, kill --all, delete; the 512 KiB memory floor; and cgroup v2
for real on the cgroup2 mount (hugetlb, the eBPF device filter,
cgroup.freeze, cgroup.kill, cgroup.procs).

The host is hybrid: v1 cpu, cpuacct, cpuset, memory, devices, freezer,
blkio, pids; cgroup2 at /sys/fs/cgroup/unified with only hugetlb.  Tests
skip what a host lacks.  The `oci` fixture fails a test that leaves a
cgroup named after its container ids; v2 tests clean up their own.
"""
import json
import os
import select
import signal
import subprocess
import time

from ocihelpers import wait_for
import uuid

import pytest

import hostfeatures
from conftest import busybox_config
from ociruntime import cgroups
from ociruntime.cgroups import devices

LAYOUT = cgroups.Layout.probe()
V2 = LAYOUT.v2


def need_v1(*ctrls):
    missing = [c for c in ctrls if c not in LAYOUT.v1]
    return pytest.mark.skipif(bool(missing), reason=f"no v1 {missing} hierarchy on this host")


def cgdir(oci_state_root, cid, controller):
    """The container's directory for a controller, from its state."""
    with open(os.path.join(oci_state_root, cid, "state.json")) as f:
        paths = json.load(f)["cgroups"]
    ver, mnt = LAYOUT.locate(controller)
    return paths[mnt]


def read(path):
    with open(path) as f:
        return f.read().strip()


def sleeper(oci, resources=None, args=("sleep", "1000"), **linux):
    cfg = busybox_config(list(args))
    if resources is not None:
        cfg["linux"]["resources"] = resources
    cfg["linux"].update(linux)
    b = oci.bundle(cfg)
    cid = oci.new_id()
    start(oci, b, cid)
    return cid


def start(oci, bundle, cid):
    r = oci.create("-b", bundle, cid)   # stdio on files: the init keeps them
    assert r.returncode == 0, r.stderr
    oci.ok("start", cid)




# -- the memory floor -------------------------------------------------------------

@need_v1("memory")
def test_runs_with_512k_memory_limit(oci):
    cfg = busybox_config(["echo", "it works"])
    cfg["linux"]["resources"] = {"memory": {"limit": 524288}}
    code, out, err = oci.run_output(cfg=cfg)
    assert (code, out) == (0, "it works\n"), err


def _big_seccomp_profile():
    """A podman-sized profile: every syscall of this architecture allowed
    by name, the rest refused (libseccomp needs over 1 MiB to build it)."""
    import re
    names = []
    for header in ("/usr/include/x86_64-linux-gnu/asm/unistd_64.h", "/usr/include/asm/unistd_64.h"):
        if os.path.exists(header):
            with open(header) as f:
                names = re.findall(r"#define __NR_(\w+) ", f.read())
            break
    if not names:
        pytest.skip("no asm/unistd_64.h to take syscall names from")
    return {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [{"names": names, "action": "SCMP_ACT_ALLOW"},
                         {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                          "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]}]}


@need_v1("memory")
def test_512k_with_a_big_seccomp_profile(oci):
    """The filter is built before the init joins its cgroup: libseccomp's
    memory is the runtime's, not the container's (podman --memory 512k)."""
    cfg = busybox_config(["echo", "it works"])
    cfg["linux"]["resources"] = {"memory": {"limit": 524288}}
    if hostfeatures.swap_accounting():
        cfg["linux"]["resources"]["memory"]["swap"] = 1048576   # podman --memory 512k
    cfg["linux"]["seccomp"] = _big_seccomp_profile()
    code, out, err = oci.run_output(cfg=cfg)
    assert (code, out) == (0, "it works\n"), err


@need_v1("memory")
def test_too_low_memory_limit_says_oom(oci):
    cfg = busybox_config(["echo", "it works"])
    cfg["linux"]["resources"] = {"memory": {"limit": 8192}}
    r = oci.create("-b", oci.bundle(cfg), oci.new_id())
    assert r.returncode == 1 and "OOM killer" in r.stderr and "memory.limit" in r.stderr, r.stderr


@need_v1("memory")
def test_init_is_limited_before_it_execs(oci):
    """The limit is on the cgroup before the init joins: the init's own
    usage (counted since it joined) stays below it."""
    cid = sleeper(oci, {"memory": {"limit": 524288}})
    d = cgdir(oci.root, cid, "memory")
    assert read(d + "/memory.limit_in_bytes") == "524288"
    assert 0 < int(read(d + "/memory.max_usage_in_bytes")) <= 524288
    assert read(d + "/memory.failcnt") == "0"


# -- v1 resources ----------------------------------------------------------------------

@need_v1("memory", "cpu", "cpuset", "pids", "devices", "blkio")
def test_v1_resources_written(oci):
    blk = sorted(n for n in os.listdir("/sys/block") if not n.startswith(("loop", "zram")))
    mj, mn = read(f"/sys/block/{blk[0]}/dev").split(":") if blk else ("7", "0")
    res = {
        "memory": {"limit": 64 << 20, "reservation": 32 << 20, "swappiness": 10,
                   "disableOOMKiller": False},
        "cpu": {"shares": 512, "quota": 20000, "period": 100000, "cpus": "0", "mems": "0", "idle": 0},
        "pids": {"limit": 1},
        "blockIO": {"throttleReadBpsDevice": [{"major": int(mj), "minor": int(mn), "rate": 1048576}],
                    "throttleWriteIOPSDevice": [{"major": int(mj), "minor": int(mn), "rate": 100}]},
        "devices": [{"allow": False, "access": "rwm"},
                    {"allow": True, "type": "c", "major": 10, "minor": 229, "access": "rwm"}],
    }
    # swap and kernelTCP where this host has their files (probed)
    swap = hostfeatures.swap_accounting()
    tcp = hostfeatures.has_cgroup_file("memory", "memory.kmem.tcp.limit_in_bytes")
    if swap:
        res["memory"]["swap"] = 64 << 20
    if tcp:
        res["memory"]["kernelTCP"] = 16 << 20
    cid = sleeper(oci, res)
    mem = cgdir(oci.root, cid, "memory")
    assert read(mem + "/memory.limit_in_bytes") == str(64 << 20)
    assert read(mem + "/memory.soft_limit_in_bytes") == str(32 << 20)
    assert not swap or read(mem + "/memory.memsw.limit_in_bytes") == str(64 << 20)
    assert read(mem + "/memory.swappiness") == "10"
    assert not tcp or read(mem + "/memory.kmem.tcp.limit_in_bytes") == str(16 << 20)
    cpu = cgdir(oci.root, cid, "cpu")
    assert read(cpu + "/cpu.shares") == "512"
    assert read(cpu + "/cpu.cfs_quota_us") == "20000"
    assert read(cpu + "/cpu.cfs_period_us") == "100000"
    assert read(cgdir(oci.root, cid, "cpuset") + "/cpuset.cpus") == "0"
    assert read(cgdir(oci.root, cid, "pids") + "/pids.max") == "1"   # 0 would be unset (runc)
    blkio = cgdir(oci.root, cid, "blkio")
    assert f"{mj}:{mn} 1048576" in read(blkio + "/blkio.throttle.read_bps_device")
    assert f"{mj}:{mn} 100" in read(blkio + "/blkio.throttle.write_iops_device")
    listing = read(cgdir(oci.root, cid, "devices") + "/devices.list").splitlines()
    assert "c 10:229 rwm" in listing and "c 1:3 rwm" in listing and "a *:* rwm" not in listing
    assert oci.state(cid)["status"] == "running"   # pids.max 1 and yet it runs: it joined first


@need_v1("devices")
def test_v1_devices_enforced(oci):
    cfg = busybox_config(["sh", "-c", "head -c1 /dev/zero | wc -c; mknod /dev/k c 1 11 && head -c1 /dev/k; echo rc=$?"])
    cfg["linux"]["resources"] = {"devices": [{"allow": False, "access": "rwm"}]}
    for k in ("bounding", "effective", "permitted"):
        caps = cfg["process"]["capabilities"].setdefault(k, [])
        if "CAP_MKNOD" not in caps:
            caps.append("CAP_MKNOD")
    code, out, err = oci.run_output(cfg=cfg)
    assert out.splitlines()[0] == "1"            # /dev/zero: a default device
    assert "rc=1" in out and "not permitted" in err.lower()   # /dev/kmsg: denied


@pytest.mark.parametrize("res, field", [
    ({"network": {"classID": 1}}, "linux.resources.network.classID"),
    ({"rdma": {"mlx5_1": {"hcaHandles": 1}}}, "linux.resources.rdma.mlx5_1"),
    ({"unified": {"memory.high": "1000000"}}, "linux.resources.unified.memory.high"),
    ({"hugepageLimits": [{"pageSize": "3MB", "limit": 0}]}, r"linux.resources.hugepageLimits\[0\]"),
    ({"memory": {"swappiness": 200}}, "linux.resources.memory.swappiness"),
])
def test_cannot_apply_is_a_clear_error(oci, res, field):
    if "network" in res and ("net_cls" in LAYOUT.v1 or "net_cls" in LAYOUT.v2_controllers):
        pytest.skip("this host has net_cls")
    if "rdma" in res and LAYOUT.locate("rdma"):
        pytest.skip("this host has rdma")
    if "unified" in res and LAYOUT.mode == "v2":
        pytest.skip("memory.high exists on a v2 host")
    cfg = busybox_config(["true"])
    cfg["linux"]["resources"] = res
    b = oci.bundle(cfg)
    cid = oci.new_id()
    r = oci.create("-b", b, cid)
    assert r.returncode == 1
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    import re
    assert re.search(field, r.stderr), r.stderr
    assert oci.cmd("state", cid).returncode != 0   # nothing left (the fixture checks cgroups)


@need_v1("blkio")
@hostfeatures.need_blkio_weight
def test_blkio_weight(oci):
    """The weight goes to blkio.weight (CFQ), or blkio.bfq.weight where the
    kernel has only BFQ."""
    cid = sleeper(oci, {"blockIO": {"weight": 300}})
    d = cgdir(oci.root, cid, "blkio")
    assert read(d + "/" + hostfeatures.blkio_weight_file()).split()[-1] == "300"


@need_v1("blkio")
@pytest.mark.skipif(hostfeatures.has_cgroup_file("blkio", "blkio.leaf_weight"),
                    reason="this host has blkio.leaf_weight (CFQ)")
def test_blkio_leaf_weight_on_a_kernel_without_it(oci):
    """Leaf weights went with CFQ: asking for one is an error naming it,
    not a silent skip."""
    cfg = busybox_config(["true"])
    cfg["linux"]["resources"] = {"blockIO": {"leafWeight": 500}}
    r = oci.create("-b", oci.bundle(cfg), oci.new_id())
    assert r.returncode == 1 and "linux.resources.blockIO.leafWeight" in r.stderr
    assert "no such cgroup file" in r.stderr


@pytest.mark.skipif(not LAYOUT.locate("hugetlb"), reason="no hugetlb controller")
@pytest.mark.skipif(not hostfeatures.hugepage_size("2MB"), reason="no 2MB huge pages on this host")
def test_hugetlb_limit(oci):
    cid = sleeper(oci, {"hugepageLimits": [{"pageSize": "2MB", "limit": 4 << 21}]})
    ver, _mnt = LAYOUT.locate("hugetlb")
    d = cgdir(oci.root, cid, "hugetlb")
    assert read(d + ("/hugetlb.2MB.max" if ver == 2 else "/hugetlb.2MB.limit_in_bytes")) == str(4 << 21)


# -- update ------------------------------------------------------------------------------

@need_v1("memory", "cpu", "pids", "cpuset")
def test_update_flags_and_resources_file(oci):
    cid = sleeper(oci, {"memory": {"limit": 64 << 20}})
    swap = hostfeatures.swap_accounting()   # --memory-swap where the host accounts swap
    oci.ok("update", "--memory", "128m", *(["--memory-swap", "256m"] if swap else []), "--cpu-shares", "256",
           "--cpu-quota", "30000", "--cpu-period", "60000", "--pids-limit", "20",
           "--cpuset-cpus", "0", "--memory-reservation", "16m", cid)
    mem = cgdir(oci.root, cid, "memory")
    assert read(mem + "/memory.limit_in_bytes") == str(128 << 20)
    assert not swap or read(mem + "/memory.memsw.limit_in_bytes") == str(256 << 20)
    assert read(mem + "/memory.soft_limit_in_bytes") == str(16 << 20)
    cpu = cgdir(oci.root, cid, "cpu")
    assert (read(cpu + "/cpu.shares"), read(cpu + "/cpu.cfs_quota_us"), read(cpu + "/cpu.cfs_period_us")) \
        == ("256", "30000", "60000")
    assert read(cgdir(oci.root, cid, "pids") + "/pids.max") == "20"
    # --resources - (containerd sends JSON on stdin), then a file (podman)
    oci.ok("update", "--resources=-", cid, input=json.dumps({"pids": {"limit": 7}, "memory": {"limit": -1}}))
    assert read(cgdir(oci.root, cid, "pids") + "/pids.max") == "7"
    assert int(read(mem + "/memory.limit_in_bytes")) > 1 << 60
    f = oci.tmp / "res.json"
    f.write_text(json.dumps({"pids": {"limit": -1}}))
    oci.ok("update", "--resources", f, cid)
    assert read(cgdir(oci.root, cid, "pids") + "/pids.max") == "max"
    # below current usage with checkBeforeUpdate: refused
    r = oci.cmd("update", "--resources=-", cid,
                input=json.dumps({"memory": {"limit": 4096, "checkBeforeUpdate": True}}))
    assert r.returncode == 1 and "checkBeforeUpdate" in r.stderr
    r = oci.cmd("update", "--memory", "lots", cid)
    assert r.returncode == 1 and "--memory" in r.stderr


def test_update_stopped_or_missing(oci):
    r = oci.cmd("update", "--pids-limit", "5", "no-such-ociruntime-test")
    assert r.returncode == 1 and "does not exist" in r.stderr
    cid = sleeper(oci, args=("true",))
    assert wait_for(lambda: oci.state(cid)["status"] == "stopped")
    r = oci.cmd("update", "--pids-limit", "5", cid)
    assert r.returncode == 1 and "not running" in r.stderr


# -- pause / resume ----------------------------------------------------------------------

@pytest.mark.skipif("freezer" not in LAYOUT.v1 and not V2, reason="no freezer")
def test_pause_resume(oci):
    cid = sleeper(oci)
    pid = oci.state(cid)["pid"]
    oci.ok("pause", cid)
    assert oci.state(cid)["status"] == "paused"
    if "freezer" in LAYOUT.v1:
        assert read(cgdir(oci.root, cid, "freezer") + "/freezer.state") == "FROZEN"
    r = oci.cmd("pause", cid)   # already paused: an error, as in runc
    assert r.returncode == 1 and "container not running" in r.stderr, r.stderr
    oci.ok("resume", cid)
    assert oci.state(cid)["status"] == "running"
    r = oci.cmd("resume", cid)
    assert r.returncode == 1 and "not paused" in r.stderr
    # delete --force of a paused container kills and removes everything
    oci.ok("pause", cid)
    oci.ok("delete", "--force", cid)
    assert wait_for(lambda: not os.path.exists(f"/proc/{pid}"))


# -- ps ----------------------------------------------------------------------------------------

def test_ps(oci):
    cid = sleeper(oci, args=("sh", "-c", "sleep 1000 & sleep 1000 & wait"))
    pid = oci.state(cid)["pid"]
    assert wait_for(lambda: len(json.loads(oci.ok("ps", "--format", "json", cid).stdout)) == 3)
    pids = json.loads(oci.ok("ps", "--format", "json", cid).stdout)
    assert pid in pids
    table = oci.ok("ps", cid).stdout.splitlines()
    assert table[0].split()[:2] == ["UID", "PID"] and len(table) == 4
    table = oci.ok("ps", cid, "-o", "pid,comm").stdout.splitlines()
    assert table[0].split() == ["PID", "COMMAND"] and sorted(l.split()[1] for l in table[1:]) == ["sh", "sleep", "sleep"]


# -- kill --all, delete --------------------------------------------------------------------------

def test_kill_all_and_delete_kill_every_process(oci):
    # no pid namespace: the children outlive the init unless the cgroup is killed
    cfg = busybox_config(["sh", "-c", "trap '' TERM; sleep 1000 & sleep 1000 & sleep 1000 & wait"])
    cfg["linux"]["namespaces"] = [n for n in cfg["linux"]["namespaces"] if n["type"] != "pid"]
    cid = oci.new_id()
    start(oci, oci.bundle(cfg), cid)
    assert wait_for(lambda: len(json.loads(oci.ok("ps", "--format", "json", cid).stdout)) == 4)
    pids = json.loads(oci.ok("ps", "--format", "json", cid).stdout)
    oci.ok("kill", "--all", cid, "KILL")
    assert wait_for(lambda: not any(os.path.exists(f"/proc/{p}") for p in pids))
    assert oci.state(cid)["status"] == "stopped"
    oci.ok("delete", cid)

    cid = oci.new_id()
    start(oci, oci.bundle(cfg), cid)
    assert wait_for(lambda: len(json.loads(oci.ok("ps", "--format", "json", cid).stdout)) == 4)
    pids = json.loads(oci.ok("ps", "--format", "json", cid).stdout)
    oci.ok("delete", "--force", cid)
    assert not any(os.path.exists(f"/proc/{p}") and read(f"/proc/{p}/stat").split()[2] != "Z" for p in pids)


# -- events ----------------------------------------------------------------------------------------

def test_events_stats_shape(oci):
    cid = sleeper(oci, {"pids": {"limit": 50}})
    ev = json.loads(oci.ok("events", "--stats", cid).stdout)
    assert ev["type"] == "stats" and ev["id"] == cid
    data = ev["data"]
    for key in ("cpu", "memory", "pids", "blkio", "hugetlb"):
        assert key in data
    assert data["pids"] == {"current": 1, "limit": 50}
    assert data["memory"]["usage"]["usage"] > 0 and "limit" in data["memory"]["usage"]
    assert data["cpu"]["usage"]["total"] > 0


@need_v1("memory")
@hostfeatures.need_swap_accounting   # else the memory could go to swap: no OOM
def test_events_stream_and_oom(oci):
    res = {"memory": {"limit": 16 << 20, "swap": 16 << 20}}
    cid = sleeper(oci, res, args=("sh", "-c", "sleep 1; head -c 64m /dev/zero | sort >/dev/null; sleep 1000"))
    p = subprocess.Popen([*__import__("conftest").RUNTIME.split(), "--root", oci.root, "events",
                          "--interval", "200ms", cid], stdout=subprocess.PIPE, text=True)
    try:
        seen = set()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and seen != {"stats", "oom"}:
            r, _, _ = select.select([p.stdout], [], [], 1)
            if r:
                line = p.stdout.readline()
                if not line:
                    break
                ev = json.loads(line)
                assert ev["id"] == cid
                seen.add(ev["type"])
        assert seen == {"stats", "oom"}
    finally:
        p.kill()
        p.wait()


# -- cgroup namespace view ---------------------------------------------------------------------------

def test_cgroup_namespace_view(oci):
    code, out, err = oci.run_output(["cat", "/proc/self/cgroup"])
    assert code == 0, err
    lines = out.splitlines()
    assert lines and all(l.endswith(":/") for l in lines), out
    if V2:
        assert "0::/" in lines


# -- cgroup v2 for real (the cgroup2 mount) ---------------------------------------------------------

@pytest.fixture
def v2mgr():
    """A manager that sees only this host's cgroup2 hierarchy, with a
    directory of its own; everything in it is killed and removed after."""
    if not V2:
        pytest.skip("no cgroup2 mount")
    path = os.path.join(V2, f"ociruntime-test-{uuid.uuid4().hex[:8]}")
    mgr = cgroups.Manager({V2: path}, layout=cgroups.Layout(v2=V2))
    mgr.create()
    procs = []
    yield mgr, procs
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait()
    if os.path.isdir(path):
        if os.path.exists(path + "/cgroup.freeze"):
            with open(path + "/cgroup.freeze", "w") as f:
                f.write("0")
        mgr.kill_all(signal.SIGKILL)
        mgr.destroy()
    assert not os.path.exists(path)


def _start_in(mgr, procs, script):
    p = subprocess.Popen(["sh", "-c", "read x; " + script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    procs.append(p)
    mgr.join(p.pid)
    return p


def test_v2_procs_freeze_kill(v2mgr):
    mgr, procs = v2mgr
    p = _start_in(mgr, procs, "sleep 1000")
    assert mgr.pids() == [p.pid]
    mgr.freeze()
    assert mgr.frozen() and "frozen 1" in read(mgr.v2_dir + "/cgroup.events")
    mgr.thaw()
    assert not mgr.frozen()
    p.stdin.write("go\n")
    p.stdin.flush()
    assert wait_for(lambda: len(mgr.pids()) == 2)   # sh and sleep
    mgr.kill_all(signal.SIGKILL)                     # cgroup.kill
    assert p.wait(10) == -signal.SIGKILL
    assert mgr.wait_empty(10)


def test_v2_ebpf_device_filter(v2mgr):
    mgr, procs = v2mgr
    rules = devices.rules_for([{"allow": False, "access": "rwm"}], None)
    devices.attach_v2(mgr.v2_dir, rules)
    devices.attach_v2(mgr.v2_dir, rules)             # replaces, does not stack
    assert devices.attached(mgr.v2_dir) == 1
    p = _start_in(mgr, procs, "head -c1 /dev/zero | wc -c; head -c1 /dev/kmsg; echo rc=$?")
    out, err = p.communicate("go\n", timeout=30)
    assert out.split() == ["1", "rc=1"] and "not permitted" in err.lower()


@pytest.mark.skipif(not V2 or "hugetlb" not in LAYOUT.v2_controllers, reason="no hugetlb in cgroup2")
@pytest.mark.skipif(not hostfeatures.hugepage_size("2MB"), reason="no 2MB huge pages on this host")
def test_v2_hugetlb_for_real(v2mgr):
    mgr, _procs = v2mgr
    mgr.update({"hugepageLimits": [{"pageSize": "2MB", "limit": 2 << 21}]})
    assert read(mgr.v2_dir + "/hugetlb.2MB.max") == str(2 << 21)
    assert "hugetlb" in read(os.path.dirname(mgr.v2_dir) + "/cgroup.subtree_control").split()
