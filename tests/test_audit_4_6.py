"""Gaps an audit of issues 4, 5 and 6 found in the other test files:
every v1 resource file (also against a tree in a temporary directory),
the update flags not checked elsewhere, events --stats keys, placement
with a seccomp filter (the init is then not born in its cgroup2
directory), pause of busy processes, delete/kill --all of a container
that keeps forking, delete of a paused container without --force,
rnorelatime, and SECCOMP_FILTER_FLAG_LOG seen in the kernel's log."""
import json
import os
import subprocess
from ocihelpers import wait_for

import pytest

import hostfeatures
from conftest import busybox_config
from ocihelpers import read, state_cgroup_dir as cgdir
from ociruntime import cgroups
from ociruntime.cgroups import resources

LAYOUT = cgroups.Layout.probe()


def started(oci, cfg):
    cid = oci.new_id()
    r = oci.create("-b", oci.bundle(cfg), cid)
    assert r.returncode == 0, r.stderr
    oci.ok("start", cid)
    return cid


def need_v1(*ctrls):
    missing = [c for c in ctrls if c not in LAYOUT.v1]
    return pytest.mark.skipif(bool(missing), reason=f"no v1 {missing} hierarchy on this host")


# -- issue 4: every v1 file, exactly (a v1-like tree in a temporary dir) ------------

V1_FILES = {
    "memory": ("memory.limit_in_bytes", "memory.memsw.limit_in_bytes", "memory.soft_limit_in_bytes",
               "memory.kmem.limit_in_bytes", "memory.kmem.tcp.limit_in_bytes", "memory.swappiness",
               "memory.oom_control", "memory.use_hierarchy", "memory.usage_in_bytes"),
    "cpu": ("cpu.shares", "cpu.cfs_period_us", "cpu.cfs_quota_us", "cpu.cfs_burst_us", "cpu.rt_period_us",
            "cpu.rt_runtime_us", "cpu.idle"),
    "cpuset": ("cpuset.cpus", "cpuset.mems"),
    "pids": ("pids.max",),
    "blkio": ("blkio.weight", "blkio.leaf_weight", "blkio.weight_device", "blkio.leaf_weight_device",
              "blkio.throttle.read_bps_device", "blkio.throttle.write_bps_device",
              "blkio.throttle.read_iops_device", "blkio.throttle.write_iops_device"),
    "hugetlb": ("hugetlb.2MB.limit_in_bytes",),
    "net_cls": ("net_cls.classid",),
    "net_prio": ("net_prio.ifpriomap",),
}


@pytest.fixture
def v1tree(tmp_path):
    paths, v1 = {}, {}
    for ctrl, files in V1_FILES.items():
        mnt = tmp_path / ctrl
        d = mnt / "ctr"
        d.mkdir(parents=True)
        for name in files:
            (d / name).write_text("9223372036854771712\n" if name == "memory.limit_in_bytes" else "")
        paths[str(mnt)] = str(d)
        v1[ctrl] = str(mnt)
    return cgroups.Manager(paths, layout=cgroups.Layout(v1=v1)), paths


def test_v1_files_exact(v1tree):
    mgr, _paths = v1tree
    res = {
        "memory": {"limit": 1 << 20, "swap": 2 << 20, "reservation": 1 << 19, "kernel": 1 << 21,
                   "kernelTCP": 1 << 22, "swappiness": 30, "disableOOMKiller": True, "useHierarchy": True},
        "cpu": {"shares": 512, "quota": 20000, "burst": 1000, "period": 100000, "realtimeRuntime": 500,
                "realtimePeriod": 1000, "cpus": "0", "mems": "0", "idle": 1},
        "pids": {"limit": 5},
        "blockIO": {"weight": 300, "leafWeight": 200,
                    "weightDevice": [{"major": 8, "minor": 0, "weight": 100, "leafWeight": 50}],
                    "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1}],
                    "throttleWriteBpsDevice": [{"major": 8, "minor": 0, "rate": 2}],
                    "throttleReadIOPSDevice": [{"major": 8, "minor": 0, "rate": 3}],
                    "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 4}]},
        "hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}],
        "network": {"classID": 1048577, "priorities": [{"name": "eth0", "priority": 5}]},
    }
    got = [(name, value, field) for _d, name, value, field in resources.plan(mgr, res)]
    r = "linux.resources."
    assert got == [
        # shrinking from the unlimited default: the limit first, then memsw
        ("memory.limit_in_bytes", str(1 << 20), r + "memory.limit"),
        ("memory.memsw.limit_in_bytes", str(2 << 20), r + "memory.swap"),
        ("memory.soft_limit_in_bytes", str(1 << 19), r + "memory.reservation"),
        ("memory.kmem.limit_in_bytes", str(1 << 21), r + "memory.kernel"),
        ("memory.kmem.tcp.limit_in_bytes", str(1 << 22), r + "memory.kernelTCP"),
        ("memory.swappiness", "30", r + "memory.swappiness"),
        ("memory.oom_control", "1", r + "memory.disableOOMKiller"),
        ("memory.use_hierarchy", "1", r + "memory.useHierarchy"),
        ("cpuset.cpus", "0", r + "cpu.cpus"), ("cpuset.mems", "0", r + "cpu.mems"),
        ("cpu.shares", "512", r + "cpu.shares"), ("cpu.cfs_period_us", "100000", r + "cpu.period"),
        ("cpu.cfs_quota_us", "20000", r + "cpu.quota"), ("cpu.cfs_burst_us", "1000", r + "cpu.burst"),
        ("cpu.rt_period_us", "1000", r + "cpu.realtimePeriod"),
        ("cpu.rt_runtime_us", "500", r + "cpu.realtimeRuntime"), ("cpu.idle", "1", r + "cpu.idle"),
        ("pids.max", "5", r + "pids.limit"),
        ("blkio.weight", "300", r + "blockIO.weight"), ("blkio.leaf_weight", "200", r + "blockIO.leafWeight"),
        ("blkio.weight_device", "8:0 100", r + "blockIO.weightDevice[0].weight"),
        ("blkio.leaf_weight_device", "8:0 50", r + "blockIO.weightDevice[0].leafWeight"),
        ("blkio.throttle.read_bps_device", "8:0 1", r + "blockIO.throttleReadBpsDevice[0]"),
        ("blkio.throttle.write_bps_device", "8:0 2", r + "blockIO.throttleWriteBpsDevice[0]"),
        ("blkio.throttle.read_iops_device", "8:0 3", r + "blockIO.throttleReadIOPSDevice[0]"),
        ("blkio.throttle.write_iops_device", "8:0 4", r + "blockIO.throttleWriteIOPSDevice[0]"),
        ("hugetlb.2MB.limit_in_bytes", "4194304", r + "hugepageLimits[0].limit"),
        ("net_cls.classid", "1048577", r + "network.classID"),
        ("net_prio.ifpriomap", "eth0 5", r + "network.priorities[0]"),
    ]


def test_v1_memsw_before_limit_when_growing(v1tree):
    """v1 memory.memsw may never be below memory.limit: growing both, memsw
    goes first; shrinking, the limit does."""
    mgr, paths = v1tree
    mem = next(d for m, d in paths.items() if m.endswith("/memory"))
    with open(mem + "/memory.limit_in_bytes", "w") as f:
        f.write(str(1 << 20))
    got = [n for _d, n, _v, _f in resources.plan(mgr, {"memory": {"limit": 4 << 20, "swap": 8 << 20}})]
    assert got == ["memory.memsw.limit_in_bytes", "memory.limit_in_bytes"]


# -- issue 4: v1 files on this host, for real ------------------------------------------

@need_v1("memory", "cpu", "cpuset")
@hostfeatures.need_cgroup_file("cpu", "cpu.cfs_burst_us", "CFS burst")
@hostfeatures.need_cgroup_file("cpu", "cpu.idle", "SCHED_IDLE cgroups")
def test_v1_more_resources_for_real(oci):
    cfg = busybox_config(["sleep", "1000"])
    res = {"memory": {"limit": 64 << 20, "disableOOMKiller": True, "useHierarchy": True},
           "cpu": {"burst": 1000, "quota": 20000, "period": 100000, "idle": 1, "mems": "0"}}
    cfg["linux"]["resources"] = res
    cid = started(oci, cfg)
    mem = cgdir(oci, cid, "memory")
    assert "oom_kill_disable 1" in read(mem + "/memory.oom_control").splitlines()
    assert read(mem + "/memory.use_hierarchy") == "1"
    cpu = cgdir(oci, cid, "cpu")
    assert read(cpu + "/cpu.cfs_burst_us") == "1000"
    assert read(cpu + "/cpu.idle") == "1"
    assert read(cgdir(oci, cid, "cpuset") + "/cpuset.mems") == "0"
    oci.ok("delete", "--force", cid)


@need_v1("cpuset")
def test_update_cpuset_mems(oci):
    cid = started(oci, busybox_config(["sleep", "1000"]))
    oci.ok("update", "--cpuset-mems", "0", cid)
    assert read(cgdir(oci, cid, "cpuset") + "/cpuset.mems") == "0"
    oci.ok("delete", "--force", cid)


@need_v1("blkio")
@hostfeatures.need_blkio_weight
def test_update_blkio_weight(oci):
    cid = started(oci, busybox_config(["sleep", "1000"]))
    oci.ok("update", "--blkio-weight", "321", cid)
    d = cgdir(oci, cid, "blkio")
    assert read(d + "/" + hostfeatures.blkio_weight_file()).split()[-1] == "321"
    oci.ok("delete", "--force", cid)


# -- issue 4: events --stats, runc's keys ------------------------------------------------

def test_events_stats_keys_are_runcs(oci):
    cfg = busybox_config(["sleep", "1000"])
    cfg["linux"]["resources"] = {"pids": {"limit": 50}}
    cid = started(oci, cfg)
    ev = json.loads(oci.ok("events", "--stats", cid).stdout)
    assert set(ev) == {"type", "id", "data"}
    data = ev["data"]
    want = {"cpu", "memory", "pids", "blkio", "hugetlb", "intel_rdt", "network_interfaces"}
    if "cpuset" in LAYOUT.v1:
        want.add("cpuset")   # runc reports the v1 cpuset too
        cs = data["cpuset"]
        assert cs["cpus"] and all(isinstance(c, int) for c in cs["cpus"] + cs["mems"]) and cs["mems"]
        assert set(cs) == {"cpus", "cpu_exclusive", "mems", "mem_hardwall", "mem_exclusive",
                           "memory_migrate", "memory_spread_page", "memory_spread_slab",
                           "memory_pressure", "sched_load_balance", "sched_relax_domain_level"}
    assert set(data) == want
    assert set(data["cpu"]) == {"usage", "throttling"}
    assert {"total", "kernel", "user"} <= set(data["cpu"]["usage"])
    if "memory" in LAYOUT.v1:
        assert {"usage", "swap", "kernel", "kernelTCP", "raw"} <= set(data["memory"])
        assert set(data["memory"]["usage"]) >= {"limit", "usage", "max", "failcnt"}
    assert data["pids"] == {"current": 1, "limit": 50}
    oci.ok("delete", "--force", cid)


# -- issue 4: placement when the init builds a seccomp filter first ---------------------

@pytest.mark.parametrize("with_seccomp", [False, True], ids=["clone-into-cgroup", "seccomp-then-join"])
def test_init_is_in_every_cgroup_before_start(oci, with_seccomp):
    """Without seccomp the init is born in its cgroup2 directory (clone3
    CLONE_INTO_CGROUP) and writes its v1 `tasks` itself; with a filter to
    build it is not born there, and the runtime places it in cgroup2.
    Either way, before start, it is in the container's directory of every
    hierarchy."""
    cfg = busybox_config(["sleep", "1000"])
    if with_seccomp:
        cfg["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW",
                                   "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}
    cid = oci.new_id()
    r = oci.create("-b", oci.bundle(cfg), cid)
    assert r.returncode == 0, r.stderr
    pid = oci.state(cid)["pid"]
    with open(os.path.join(oci.root, cid, "state.json")) as f:
        paths = json.load(f)["cgroups"]
    assert paths
    if LAYOUT.v2:
        assert LAYOUT.v2 in paths
    for mnt, d in paths.items():
        assert str(pid) in read(d + "/cgroup.procs").split(), (mnt, d)
    oci.ok("delete", "--force", cid)


# -- issue 4: pause waits for FROZEN; kill --all / delete of a forking container ---------

# Four spinners, a loop of short-lived processes, a loop that keeps adding
# sleepers; the init is a sleep.
FORKER = ("for i in 1 2 3 4; do sh -c 'while :; do :; done' & done; "
          "sh -c 'while :; do /bin/true; done' & "
          "sh -c 'while :; do sleep 1000 & sleep 0.05; done' & exec sleep 1000")


def _forker(oci):
    cfg = busybox_config(["sh", "-c", FORKER])
    cfg["linux"]["namespaces"] = [n for n in cfg["linux"]["namespaces"] if n["type"] != "pid"]
    cid = started(oci, cfg)
    ps = lambda: json.loads(oci.ok("ps", "--format", "json", cid).stdout)   # noqa: E731
    assert wait_for(lambda: len(ps()) >= 10)
    return cid, ps


@pytest.mark.skipif("freezer" not in LAYOUT.v1, reason="no v1 freezer")
def test_pause_of_busy_processes_returns_frozen(oci):
    cid, ps = _forker(oci)
    oci.ok("pause", cid)
    assert read(cgdir(oci, cid, "freezer") + "/freezer.state") == "FROZEN"
    before = sorted(ps())
    assert sorted(ps()) == before   # nothing forks while frozen
    oci.ok("resume", cid)
    oci.ok("delete", "--force", cid)


def test_kill_all_and_delete_of_a_forking_container(oci):
    """Processes that keep forking (and a fork loop that outlives the
    init, no pid namespace): kill --all leaves the cgroup empty, delete
    --force removes it."""
    cid, ps = _forker(oci)
    paths = json.load(open(os.path.join(oci.root, cid, "state.json")))["cgroups"]
    oci.ok("kill", "--all", cid, "KILL")
    assert wait_for(lambda: all(read(d + "/cgroup.procs") == "" for d in paths.values()))
    cid2, ps2 = _forker(oci)
    dirs = list(json.load(open(os.path.join(oci.root, cid2, "state.json")))["cgroups"].values())
    pids = ps2()
    oci.ok("delete", "--force", cid2)
    assert not any(os.path.exists(d) for d in dirs)
    assert not any(os.path.exists(f"/proc/{p}") and read(f"/proc/{p}/stat").split(") ")[1][0] != "Z"
                   for p in pids)
    oci.ok("delete", cid)


# -- issue 6: delete of a paused container without --force --------------------------------

@pytest.mark.skipif("freezer" not in LAYOUT.v1 and not LAYOUT.v2, reason="no freezer")
def test_delete_of_a_paused_container_fails_without_force(oci):
    cid = started(oci, busybox_config(["sleep", "1000"]))
    pid = oci.state(cid)["pid"]
    oci.ok("pause", cid)
    r = oci.cmd("delete", cid)
    assert r.returncode == 1 and "not stopped" in r.stderr and "paused" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    st = oci.state(cid)
    assert st["status"] == "paused" and st["pid"] == pid
    oci.ok("resume", cid)
    assert oci.state(cid)["status"] == "running"
    oci.ok("delete", "--force", cid)


# -- issue 6: rnorelatime -------------------------------------------------------------------

def test_rnorelatime_reaches_the_submount(oci, tmp_path):
    top = tmp_path / "tree"
    (top / "sub").mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "relatime", "tmpfs", str(top / "sub")], check=True)
    try:
        cfg = busybox_config(["cat", "/proc/self/mountinfo"])
        cfg["mounts"].append({"destination": "/t", "type": "bind", "source": str(top),
                              "options": ["rbind", "rnorelatime"]})
        code, out, err = oci.run_output(cfg=cfg)
    finally:
        subprocess.run(["umount", "-l", str(top / "sub")], check=False)
    assert code == 0, err
    opts = {l.split()[4]: set(l.split()[5].split(",")) for l in out.splitlines() if len(l.split()) > 5}
    for m in ("/t", "/t/sub"):
        assert not opts[m] & {"relatime", "noatime"}, (m, opts[m])


# -- issue 5: SECCOMP_FILTER_FLAG_LOG reaches the kernel --------------------------------------

def _audit_1326():
    r = subprocess.run(["dmesg"], capture_output=True, text=True)
    return [l for l in r.stdout.splitlines() if "type=1326" in l and 'comm="mkdir"' in l]


@pytest.mark.skipif(subprocess.run(["dmesg"], capture_output=True).returncode != 0, reason="no dmesg")
def test_seccomp_flag_log_logs_errno_actions(oci):
    """With SECCOMP_FILTER_FLAG_LOG the kernel logs the ERRNO action (audit
    type 1326); without it, it does not.  (Where auditd runs, the record
    goes to it: skipped.)"""
    if subprocess.run(["pgrep", "-x", "auditd"], capture_output=True).returncode == 0:
        pytest.skip("auditd takes the records")
    with open("/proc/sys/kernel/seccomp/actions_logged") as f:
        if "errno" not in f.read().split():
            pytest.skip("errno actions are not logged on this host")
    counts = []
    for flags in ([], ["SECCOMP_FILTER_FLAG_LOG"]):
        cfg = busybox_config(["sh", "-c", "mkdir /tmp/x; echo rc=$?"])
        cfg["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "flags": flags,
                                   "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}
        before = len(_audit_1326())
        code, out, err = oci.run_output(cfg=cfg)
        assert code == 0 and "rc=1" in out, err
        wait_for(lambda: len(_audit_1326()) > before, timeout=3 if flags else 1)
        counts.append(len(_audit_1326()) - before)
    assert counts[0] == 0 and counts[1] >= 1, counts


def test_planned_cgroups_are_what_create_makes(tmp_path):
    """create() saves planned() in the state before making anything: a
    runtime killed half-way leaves delete --force exactly that to remove
    (tests/test_reliability.py kills create at random points)."""
    mnt = tmp_path / "memory"
    (mnt / "there").mkdir(parents=True)
    mgr = cgroups.Manager({str(mnt): str(mnt / "there" / "a" / "b")},
                          layout=cgroups.Layout(v1={"memory": str(mnt)}))
    planned = mgr.planned()
    assert planned == [str(mnt / "there" / "a"), str(mnt / "there" / "a" / "b")]
    mgr.create()
    assert mgr.created == planned
    assert cgroups.Manager({str(mnt): str(mnt / "there" / "a" / "b")}).planned() == []
