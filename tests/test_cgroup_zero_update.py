"""Zero means unset (as runc), and `update` is all or nothing.

Docker writes `"blockIO": {"weight": 0}` and `"cpu": {"shares": 0}` into
every config.json, and its update payload sends 0 for each field the user
did not change.  runc treats 0 as "not set" for blockIO.weight and
leafWeight, memory.limit, reservation, swap, kernel and kernelTCP,
cpu.shares, quota, period (and the real-time pair), pids.limit.  A
zero must leave the container's cgroup file as the kernel made it (the
parent's default), at create and at update.

An update that fails on its last field leaves every file as it was and
says which field failed.  All checked from outside, in the container's
cgroup directories.
"""
import json
import os

import pytest

import hostfeatures
from conftest import busybox_config
from ocihelpers import read, state_cgroup_dir as cgdir
from ociruntime import cgroups

LAYOUT = cgroups.Layout.probe()

ZEROS = {
    "memory": {"limit": 0, "reservation": 0, "swap": 0, "kernel": 0, "kernelTCP": 0},
    "cpu": {"shares": 0, "quota": 0, "period": 0, "realtimeRuntime": 0, "realtimePeriod": 0},
    "pids": {"limit": 0},
    "blockIO": {"weight": 0, "leafWeight": 0},
}
DOCKER_UPDATE = {"memory": {"limit": 0, "reservation": 0, "kernel": 0}, "cpu": {"shares": 256},
                 "pids": {"limit": 30}, "blockIO": {"weight": 0}}


def need_v1(*ctrls):
    missing = [c for c in ctrls if c not in LAYOUT.v1]
    return pytest.mark.skipif(bool(missing), reason=f"no v1 {missing} hierarchy on this host")


def sleeper(oci, resources=None):
    cfg = busybox_config(["sleep", "1000"])
    if resources is not None:
        cfg["linux"]["resources"] = resources
    cid = oci.new_id()
    r = oci.create("-b", oci.bundle(cfg), cid)
    assert r.returncode == 0, r.stderr
    oci.ok("start", cid)
    return cid


# The v1 files a zero must not touch, and what a new cgroup has in them.
def _defaults(oci, cid):
    files = {"memory": ("memory.limit_in_bytes", "memory.soft_limit_in_bytes",
                        "memory.memsw.limit_in_bytes", "memory.kmem.limit_in_bytes",
                        "memory.kmem.tcp.limit_in_bytes"),
             "cpu": ("cpu.shares", "cpu.cfs_quota_us", "cpu.cfs_period_us",
                     "cpu.rt_runtime_us", "cpu.rt_period_us"),
             "pids": ("pids.max",),
             "blkio": ("blkio.weight", "blkio.bfq.weight", "blkio.leaf_weight")}
    out = {}
    for ctrl, names in files.items():
        d = cgdir(oci, cid, ctrl)
        for name in names:
            if os.path.exists(os.path.join(d, name)):
                out[name] = read(os.path.join(d, name))
    return out


def snapshot(oci, cid, names):
    """{file: content} of the container's v1 files named (controller, file)."""
    return {f"{c}/{n}": read(os.path.join(cgdir(oci, cid, c), n)) for c, n in names}


@need_v1("memory", "cpu", "pids", "blkio")
def test_create_with_zero_fields_leaves_the_defaults(oci):
    plain = sleeper(oci)
    cid = sleeper(oci, ZEROS)
    assert oci.state(cid)["status"] == "running"
    want = _defaults(oci, plain)
    assert _defaults(oci, cid) == want
    assert want["pids.max"] == "max" and want["cpu.cfs_quota_us"] == "-1"


@need_v1("memory", "cpu", "pids", "blkio")
def test_create_with_dockers_resources(oci):
    """What `docker run busybox` puts in config.json (no limits asked)."""
    res = {"memory": {"limit": 0, "reservation": 0, "swap": 0, "kernel": 0, "kernelTCP": 0,
                      "disableOOMKiller": False},
           "cpu": {"shares": 0, "quota": 0, "period": 0, "realtimeRuntime": 0, "realtimePeriod": 0},
           "pids": {"limit": 0}, "blockIO": {"weight": 0},
           "devices": [{"allow": False, "access": "rwm"}]}
    plain = sleeper(oci)
    cid = sleeper(oci, res)
    assert _defaults(oci, cid) == _defaults(oci, plain)


# -- update: zeros, Docker's payload ------------------------------------------------

LIMITED = {"memory": {"limit": 64 << 20, "reservation": 32 << 20},
           "cpu": {"shares": 512, "quota": 20000, "period": 100000},
           "pids": {"limit": 50}}
FILES = (("memory", "memory.limit_in_bytes"), ("memory", "memory.soft_limit_in_bytes"),
         ("memory", "memory.memsw.limit_in_bytes"), ("memory", "memory.kmem.limit_in_bytes"),
         ("cpu", "cpu.shares"), ("cpu", "cpu.cfs_quota_us"), ("cpu", "cpu.cfs_period_us"),
         ("cpuset", "cpuset.cpus"), ("cpuset", "cpuset.mems"), ("pids", "pids.max"),
         ("blkio", "blkio.throttle.read_bps_device"), ("blkio", "blkio.throttle.write_iops_device"))


def files(oci, cid):
    return snapshot(oci, cid, [(c, n) for c, n in FILES
                               if os.path.exists(os.path.join(cgdir(oci, cid, c), n))])


@need_v1("memory", "cpu", "cpuset", "pids", "blkio")
def test_update_with_dockers_payload(oci):
    """`docker update --cpu-shares 256 --pids-limit 30`: the rest stays."""
    cid = sleeper(oci, LIMITED)
    before = files(oci, cid)
    oci.ok("update", "--resources", "-", cid, input=json.dumps(DOCKER_UPDATE))
    after = files(oci, cid)
    assert (after.pop("cpu/cpu.shares"), after.pop("pids/pids.max")) == ("256", "30")
    del before["cpu/cpu.shares"], before["pids/pids.max"]
    assert after == before
    assert before["memory/memory.limit_in_bytes"] == str(64 << 20)


@need_v1("memory", "cpu", "cpuset", "pids", "blkio")
def test_update_zero_flags_change_nothing(oci):
    cid = sleeper(oci, LIMITED)
    before = files(oci, cid)
    oci.ok("update", "--memory", "0", "--memory-reservation", "0", "--memory-swap", "0",
           "--kernel-memory", "0", "--cpu-shares", "0", "--cpu-quota", "0", "--cpu-period", "0",
           "--pids-limit", "0", "--blkio-weight", "0", cid)
    oci.ok("update", "--resources", "-", cid, input=json.dumps(ZEROS))
    assert files(oci, cid) == before


# -- update: all or nothing -------------------------------------------------------

def _missing_block_device():
    """A block device number this host does not have (the kernel refuses a
    throttle rule for it with ENODEV)."""
    for minor in range(4095, 0, -1):
        if not os.path.exists(f"/sys/dev/block/251:{minor}"):
            return 251, minor
    pytest.skip("every block device number 251:* exists")


CHANGES = {"memory": {"limit": 128 << 20, "reservation": 16 << 20},
           "cpu": {"shares": 300, "quota": 30000, "period": 50000, "cpus": "0", "mems": "0"},
           "pids": {"limit": 40}}
if hostfeatures.swap_accounting():
    CHANGES["memory"]["swap"] = 256 << 20   # memsw grows before the limit


def _refused(r, field):
    assert r.returncode == 1, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and field in lines[0], r.stderr
    assert "Traceback" not in r.stderr


@need_v1("memory", "cpu", "cpuset", "pids", "blkio")
def test_update_whose_last_write_fails_changes_nothing(oci):
    """Every write is made but the last, which the kernel refuses: the
    ones before it are put back, and the error names the field."""
    cid = sleeper(oci, LIMITED)
    before = files(oci, cid)
    mj, mn = _missing_block_device()
    res = dict(CHANGES, blockIO={"throttleReadBpsDevice": [{"major": mj, "minor": mn, "rate": 1 << 20}]})
    log = oci.tmp / "update.log"
    r = oci.cmd("--log", log, "--log-format", "json", "update", "--resources", "-", cid,
                input=json.dumps(res))
    _refused(r, "linux.resources.blockIO.throttleReadBpsDevice[0]")
    assert files(oci, cid) == before
    entry = json.loads(log.read_text().strip().splitlines()[-1])
    assert entry["level"] == "error" and "throttleReadBpsDevice[0]" in entry["msg"]
    # and the same update without the bad rule goes through whole
    oci.ok("update", "--resources", "-", cid, input=json.dumps(CHANGES))
    after = files(oci, cid)
    assert after["memory/memory.limit_in_bytes"] == str(128 << 20)
    assert after.get("memory/memory.memsw.limit_in_bytes", str(256 << 20)) == str(256 << 20)
    assert (after["cpu/cpu.cfs_quota_us"], after["cpu/cpu.cfs_period_us"]) == ("30000", "50000")
    assert after["pids/pids.max"] == "40"
    assert oci.state(cid)["status"] == "running"


@need_v1("memory", "cpu", "cpuset")
def test_update_cpuset_outside_the_host_changes_nothing(oci):
    """Flags: the memory limits are written, then the cpuset is refused."""
    cid = sleeper(oci, LIMITED)
    before = files(oci, cid)
    r = oci.cmd("update", "--memory", "32m", "--memory-reservation", "8m", "--cpu-shares", "100",
                "--cpuset-cpus", f"0-{os.cpu_count() + 4000}", cid)
    _refused(r, "cpus")
    assert files(oci, cid) == before


@need_v1("memory")
@hostfeatures.need_swap_accounting
def test_update_memory_below_usage_puts_memsw_back(oci):
    """Growing memsw goes first (it may not be below the limit), then a
    limit below what the container uses is refused (EBUSY): memsw is put
    back."""
    cid = sleeper(oci, {"memory": {"limit": 64 << 20}})
    before = files(oci, cid)
    r = oci.cmd("update", "--resources", "-", cid,
                input=json.dumps({"memory": {"limit": 4096, "swap": 128 << 20}}))
    _refused(r, "linux.resources.memory.limit")
    assert files(oci, cid) == before
    assert oci.state(cid)["status"] == "running"


@need_v1("memory", "cpu", "blkio")
@pytest.mark.skipif(hostfeatures.has_cgroup_file("blkio", "blkio.leaf_weight"),
                    reason="this host has blkio.leaf_weight (CFQ)")
def test_update_with_a_file_the_kernel_lacks_writes_nothing(oci):
    """blkio.leaf_weight went with CFQ: found missing before any write."""
    cid = sleeper(oci, LIMITED)
    before = files(oci, cid)
    res = dict(CHANGES, blockIO={"leafWeight": 500})
    r = oci.cmd("update", "--resources", "-", cid, input=json.dumps(res))
    _refused(r, "linux.resources.blockIO.leafWeight")
    assert "no such cgroup file" in r.stderr
    assert files(oci, cid) == before


@need_v1("memory", "cpu", "cpuset", "pids")
@pytest.mark.parametrize("res, field", [
    ({"memory": {"limit": "64m"}}, "linux.resources.memory.limit"),
    ({"cpu": []}, "linux.resources.cpu"),
    ({"pids": {"limit": 1.5}}, "linux.resources.pids.limit"),
    ({"blockIO": {"throttleReadBpsDevice": [{"major": 8}]}},
     "linux.resources.blockIO.throttleReadBpsDevice[0]"),
])
def test_update_with_a_wrong_type_names_the_field(oci, res, field):
    cid = sleeper(oci, LIMITED)
    before = files(oci, cid)
    r = oci.cmd("update", "--resources", "-", cid, input=json.dumps(dict(CHANGES, **res)))
    _refused(r, field)
    assert files(oci, cid) == before


@need_v1("devices", "pids")
def test_update_refused_device_rule_puts_the_rules_back(oci):
    """The parent cgroup denies c 10:200 rw: the update's rule allowing it is
    refused after the old rules were cleared (v1 rewrites them: deny all,
    then allow each): the old rules and the pids limit come back, and the
    container can still use /dev/null."""
    _, mnt = LAYOUT.locate("devices")
    parent = f"ocitest-devparent-{os.urandom(4).hex()}"
    cid = oci.new_id()
    os.mkdir(os.path.join(mnt, parent))
    try:
        with open(os.path.join(mnt, parent, "devices.deny"), "w") as f:
            f.write("c 10:200 rw")
        cfg = busybox_config(["sleep", "1000"])
        cfg["linux"]["resources"] = {"pids": {"limit": 50}}
        cfg["linux"]["cgroupsPath"] = f"/{parent}/{cid}"
        r = oci.create("-b", oci.bundle(cfg), cid)
        assert r.returncode == 0, r.stderr
        oci.ok("start", cid)
        d = cgdir(oci, cid, "devices")
        before = read(d + "/devices.list")
        res = {"pids": {"limit": 20},
               "devices": [{"allow": True, "type": "c", "major": 10, "minor": 200, "access": "rwm"}]}
        r = oci.cmd("update", "--resources", "-", cid, input=json.dumps(res))
        _refused(r, "linux.resources.devices")
        assert read(d + "/devices.list") == before
        assert read(cgdir(oci, cid, "pids") + "/pids.max") == "50"
        out = oci.ok("exec", cid, "sh", "-c", "echo x > /dev/null && echo ok").stdout
        assert out.strip() == "ok"
    finally:
        oci.cmd("delete", "--force", cid)   # its cgroup first, then the parent we made
        os.rmdir(os.path.join(mnt, parent))
