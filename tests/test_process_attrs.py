"""Process attributes of runtime-spec 1.1+, in real containers, checked
from the host (/proc/PID/..., chrt, ionice, taskset) and from inside:
process.scheduler, process.ioPriority, process.execCPUAffinity (exec),
linux.personality, linux.memoryPolicy, domainname, and the clear errors
for linux.intelRdt and linux.resources.rdma on a host without them."""
import os
import subprocess

import pytest

import hostfeatures
from conftest import busybox_config


def _created(oci, cfg, args=("sleep", "30")):
    cfg["process"]["args"] = list(args)
    b = oci.bundle(cfg)
    cid = oci.new_id()
    r = oci.create("-b", b, cid)
    return cid, r


def _sched(pid):
    """{field: value} of /proc/PID/sched (policy, prio)."""
    out = {}
    with open(f"/proc/{pid}/sched") as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k.strip()] = v.strip()
    return out


def _started(oci, cfg, args=("sleep", "30")):
    cid, r = _created(oci, cfg, args)
    assert r.returncode == 0, r.stderr
    oci.ok("start", cid)
    return cid, oci.state(cid)["pid"]


@pytest.mark.parametrize("sched,policy,prio", [
    ({"policy": "SCHED_OTHER", "nice": 7}, 0, 127),
    ({"policy": "SCHED_BATCH", "nice": -3}, 3, 117),
    ({"policy": "SCHED_IDLE"}, 5, 120),
])
def test_scheduler_policy_and_nice(oci, sched, policy, prio):
    """config.md process.scheduler: policy and nice, through sched_setattr."""
    cfg = busybox_config()
    cfg["process"]["scheduler"] = sched
    cid, pid = _started(oci, cfg)
    s = _sched(pid)
    assert int(s["policy"]) == policy and int(s["prio"]) == prio
    oci.ok("delete", "--force", cid)


@pytest.mark.parametrize("policy,number", [("SCHED_FIFO", 1), ("SCHED_RR", 2)])
def test_realtime_scheduler_with_priority(oci, policy, number):
    """SCHED_FIFO/SCHED_RR with a priority; with real-time group scheduling
    (this host) the cgroup needs real-time time (realtimeRuntime)."""
    cfg = busybox_config()
    cfg["process"]["scheduler"] = {"policy": policy, "priority": 10}
    if hostfeatures.has_cgroup_file("cpu", "cpu.rt_runtime_us"):
        cfg["linux"]["resources"]["cpu"] = {"realtimePeriod": 1000000, "realtimeRuntime": 10000}
    cid, pid = _started(oci, cfg)
    s = _sched(pid)
    assert int(s["policy"]) == number and int(s["prio"]) == 99 - 10
    oci.ok("delete", "--force", cid)


def test_realtime_without_cgroup_time_is_a_clear_error(oci):
    if not hostfeatures.has_cgroup_file("cpu", "cpu.rt_runtime_us"):
        pytest.skip("no real-time group scheduling here (no cpu.rt_runtime_us)")
    cfg = busybox_config()
    cfg["process"]["scheduler"] = {"policy": "SCHED_FIFO", "priority": 10}
    cid, r = _created(oci, cfg)
    assert r.returncode == 1
    assert "process.scheduler" in r.stderr and "realtimeRuntime" in r.stderr
    assert oci.ok("list", "-q").stdout == ""


def test_scheduler_deadline(oci):
    """SCHED_DEADLINE with runtime, deadline and period (ns); a deadline
    task may not fork unless reset-on-fork."""
    cfg = busybox_config()
    cfg["process"]["scheduler"] = {"policy": "SCHED_DEADLINE", "runtime": 10_000_000,
                                   "deadline": 30_000_000, "period": 30_000_000,
                                   "flags": ["SCHED_FLAG_RESET_ON_FORK"]}
    cid, pid = _started(oci, cfg)
    assert int(_sched(pid)["policy"]) == 6
    out = subprocess.run(["chrt", "-p", str(pid)], capture_output=True, text=True).stdout
    assert "SCHED_DEADLINE" in out and "10000000/30000000/30000000" in out
    oci.ok("delete", "--force", cid)


def test_scheduler_flags(oci):
    """Scheduler flags reach sched_setattr: reset-on-fork shows in chrt;
    keep-policy/keep-params keep what the process had (SCHED_OTHER, nice 0)."""
    cfg = busybox_config()
    cfg["process"]["scheduler"] = {"policy": "SCHED_BATCH", "nice": 2,
                                   "flags": ["SCHED_FLAG_RESET_ON_FORK"]}
    cid, pid = _started(oci, cfg)
    out = subprocess.run(["chrt", "-p", str(pid)], capture_output=True, text=True).stdout
    assert "SCHED_BATCH|SCHED_RESET_ON_FORK" in out
    oci.ok("delete", "--force", cid)
    cfg = busybox_config()
    cfg["process"]["scheduler"] = {"policy": "SCHED_BATCH", "nice": 5,
                                   "flags": ["SCHED_FLAG_KEEP_POLICY", "SCHED_FLAG_KEEP_PARAMS"]}
    cid, pid = _started(oci, cfg)
    s = _sched(pid)
    assert int(s["policy"]) == 0 and int(s["prio"]) == 120
    oci.ok("delete", "--force", cid)


def test_scheduler_flags_the_kernel_lacks_fail_clearly(oci):
    """Every flag is passed on; one the kernel does not support is an error
    naming process.scheduler, not a silent no-op."""
    cfg = busybox_config()
    cfg["process"]["scheduler"] = {"policy": "SCHED_OTHER",
                                   "flags": ["SCHED_FLAG_UTIL_CLAMP_MIN", "SCHED_FLAG_UTIL_CLAMP_MAX"]}
    cid, r = _created(oci, cfg)
    if hostfeatures.uclamp():   # a kernel with CONFIG_UCLAMP_TASK takes them
        assert r.returncode == 0, r.stderr
        oci.ok("delete", "--force", cid)
        return
    assert r.returncode == 1 and "process.scheduler" in r.stderr
    assert oci.ok("list", "-q").stdout == ""


@pytest.mark.parametrize("bad,field", [
    ({"policy": "SCHED_ISO"}, "policy"),
    ({"policy": "SCHED_FIFO", "priority": 0}, "priority"),
    ({"policy": "SCHED_OTHER", "priority": 5}, "priority"),
    ({"policy": "SCHED_OTHER", "nice": 30}, "nice"),
    ({"policy": "SCHED_OTHER", "runtime": 5}, "SCHED_DEADLINE"),
])
def test_scheduler_errors_name_the_field(oci, bad, field):
    cfg = busybox_config()
    cfg["process"]["scheduler"] = bad
    cid, r = _created(oci, cfg)
    assert r.returncode == 1
    assert "process.scheduler" in r.stderr and field in r.stderr
    assert oci.ok("list", "-q").stdout == ""


@pytest.mark.parametrize("cls,prio,word", [
    ("IOPRIO_CLASS_IDLE", 4, "idle"),
    ("IOPRIO_CLASS_BE", 6, "best-effort: prio 6"),
    ("IOPRIO_CLASS_RT", 2, "realtime: prio 2"),
])
def test_io_priority(oci, cls, prio, word):
    """config.md process.ioPriority: class and priority (ioprio_set)."""
    cfg = busybox_config()
    cfg["process"]["ioPriority"] = {"class": cls, "priority": prio}
    cid, pid = _started(oci, cfg)
    out = subprocess.run(["ionice", "-p", str(pid)], capture_output=True, text=True).stdout
    assert word in out
    oci.ok("delete", "--force", cid)


def test_io_priority_out_of_range(oci):
    cfg = busybox_config()
    cfg["process"]["ioPriority"] = {"class": "IOPRIO_CLASS_BE", "priority": 9}
    cid, r = _created(oci, cfg)
    assert r.returncode == 1 and "process.ioPriority.priority" in r.stderr


def test_personality_linux32(oci):
    """config-linux.md personality: "LINUX32 will set the uname system call
    to show a 32 bit CPU type"."""
    cfg = busybox_config(["uname", "-m"])
    cfg["linux"]["personality"] = {"domain": "LINUX32"}
    code, out, err = oci.run_output(cfg=cfg)
    assert code == 0, err
    assert out.strip() in ("i686", "i386", "armv7l", "armv8l")
    cfg["linux"]["personality"] = {"domain": "LINUX"}
    code, out, err = oci.run_output(cfg=cfg)
    assert out.strip() == os.uname().machine


def test_personality_flags(oci):
    """personality flags are OR'ed into the persona (ADDR_NO_RANDOMIZE)."""
    cfg = busybox_config(["cat", "/proc/self/personality"])
    cfg["linux"]["personality"] = {"domain": "LINUX32", "flags": ["ADDR_NO_RANDOMIZE"]}
    code, out, err = oci.run_output(cfg=cfg)
    assert code == 0, err
    assert int(out, 16) == 0x0040008
    cfg["linux"]["personality"] = {"domain": "LINUX", "flags": ["NO_SUCH_FLAG"]}
    code, out, err = oci.run_output(cfg=cfg)
    assert code == 1 and "linux.personality.flags[0]" in err


def _numa_policy(pid):
    with open(f"/proc/{pid}/numa_maps") as f:
        return f.readline().split()[1]


@pytest.mark.skipif(not os.path.exists("/proc/self/numa_maps"), reason="no NUMA support")
@pytest.mark.parametrize("mp,want", [
    ({"mode": "MPOL_BIND", "nodes": "0"}, "bind:0"),
    ({"mode": "MPOL_INTERLEAVE", "nodes": "0"}, "interleave:0"),
    ({"mode": "MPOL_PREFERRED", "nodes": "0"}, "prefer:0"),
    ({"mode": "MPOL_BIND", "nodes": "0", "flags": ["MPOL_F_STATIC_NODES"]}, "bind=static:0"),
    ({"mode": "MPOL_LOCAL"}, "local"),
    ({"mode": "MPOL_DEFAULT"}, "default"),
])
def test_memory_policy(oci, mp, want):
    """config-linux.md linux.memoryPolicy: mode, nodes, flags (set_mempolicy)."""
    cfg = busybox_config()
    cfg["linux"]["memoryPolicy"] = mp
    cid, pid = _started(oci, cfg)
    assert _numa_policy(pid) == want
    oci.ok("delete", "--force", cid)


@pytest.mark.parametrize("mp,field", [
    ({"mode": "MPOL_BIND"}, "nodes"),
    ({"mode": "MPOL_LOCAL", "nodes": "0"}, "nodes"),
    ({"mode": "MPOL_BIND", "nodes": "0-x"}, "nodes"),
    ({"mode": "MPOL_BIND", "nodes": "63"}, "memoryPolicy"),   # no such node: set_mempolicy says
])
def test_memory_policy_errors(oci, mp, field):
    cfg = busybox_config()
    cfg["linux"]["memoryPolicy"] = mp
    cid, r = _created(oci, cfg)
    assert r.returncode == 1
    assert "memoryPolicy" in r.stderr and field in r.stderr
    assert oci.ok("list", "-q").stdout == ""


def test_domainname(oci):
    """config.md domainname: "the container's domainname as seen by processes
    running inside the container" (needs a uts namespace)."""
    cfg = busybox_config(["cat", "/proc/sys/kernel/domainname", "/proc/sys/kernel/hostname"])
    cfg["domainname"] = "example.org"
    code, out, err = oci.run_output(cfg=cfg)
    assert code == 0, err
    assert out.split() == ["example.org", "busybox"]
    with open("/proc/sys/kernel/domainname") as f:
        assert f.read().strip() != "example.org"


@pytest.mark.parametrize("sysctl", ["example.org", "other.example"])
def test_domainname_sysctl_is_accepted_as_runc(oci, sysctl):
    """runc 1.1.5 and crun take a kernel.domainname sysctl beside the
    domainname field (it is the uts namespace's); the sysctl is written
    last, so it wins where they differ (runc here: "busybox e")."""
    cfg = busybox_config(["cat", "/proc/sys/kernel/domainname", "/proc/sys/kernel/hostname"])
    cfg["domainname"] = "example.org"
    cfg["linux"]["sysctl"] = {"kernel.domainname": sysctl}
    code, out, err = oci.run_output(cfg=cfg)
    assert code == 0, err
    assert out.split() == [sysctl, "busybox"]


def test_intel_rdt_is_a_clear_error_here(oci):
    """config-linux.md intelRdt: the runtime MUST write the pid into resctrl;
    without resctrl that cannot be done: an error, nothing left behind."""
    if os.path.isdir("/sys/fs/resctrl/info"):
        pytest.skip("this host has resctrl")
    cfg = busybox_config()
    cfg["linux"]["intelRdt"] = {"closID": "guaranteed_group", "l3CacheSchema": "L3:0=7f0"}
    cid, r = _created(oci, cfg)
    assert r.returncode == 1
    assert "linux.intelRdt" in r.stderr and "not available" in r.stderr
    assert oci.ok("list", "-q").stdout == ""


def test_rdma_is_a_clear_error_here(oci):
    """linux.resources.rdma without the rdma cgroup controller."""
    with open("/proc/cgroups") as f:
        if any(l.split()[0] == "rdma" and l.split()[3] == "1" for l in f if not l.startswith("#")):
            pytest.skip("this host has the rdma controller")
    cfg = busybox_config()
    cfg["linux"]["resources"]["rdma"] = {"mlx5_1": {"hcaHandles": 3, "hcaObjects": 10000}}
    cid, r = _created(oci, cfg)
    assert r.returncode == 1
    assert "rdma" in r.stderr and "not available" in r.stderr
    assert oci.ok("list", "-q").stdout == ""


def _exec_affinity(oci, aff):
    cid, pid = _started(oci, busybox_config())
    proc = {"args": ["sh", "-c", "grep Cpus_allowed_list /proc/self/status"], "cwd": "/",
            "env": ["PATH=/bin:/usr/bin"], "user": {"uid": 0, "gid": 0}, "execCPUAffinity": aff}
    import json
    pf = oci.tmp / "process.json"
    pf.write_text(json.dumps(proc))
    r = oci.cmd("exec", "--process", pf, cid)
    oci.ok("delete", "--force", cid)
    return r


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs two CPUs")
def test_exec_cpu_affinity_final(oci):
    """config.md execCPUAffinity.final: "a list of CPUs the process will be
    run on after the transition to container's cgroup"."""
    r = _exec_affinity(oci, {"initial": "0", "final": "1"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[-1] == "1"


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs two CPUs")
def test_exec_cpu_affinity_initial_only(oci):
    """Without final the kernel decides after the cgroup move (a v1 cpuset
    join resets the mask to the cpuset's); initial alone is accepted."""
    r = _exec_affinity(oci, {"initial": "1"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[-1] in ("1", f"0-{os.cpu_count() - 1}")


def test_exec_cpu_affinity_is_not_the_inits(oci):
    """config.md: execCPUAffinity "is not applicable to the container's init
    process"."""
    cfg = busybox_config(["grep", "Cpus_allowed_list", "/proc/self/status"])
    cfg["process"]["execCPUAffinity"] = {"final": "0"}
    code, out, err = oci.run_output(cfg=cfg)
    assert code == 0, err
    with open("/proc/self/status") as f:
        mine = [l for l in f if l.startswith("Cpus_allowed_list")][0].split()[-1]
    assert out.split()[-1] == mine


def test_exec_cpu_affinity_bad_list(oci):
    r = _exec_affinity(oci, {"final": "0-"})
    assert r.returncode != 0 and "execCPUAffinity.final" in r.stderr
