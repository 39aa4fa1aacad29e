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

from conftest import busybox_config
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


def read(path):
    with open(path) as f:
        return f.read().strip()


def cgdir(oci, cid, controller):
    with open(os.path.join(oci.root, cid, "state.json")) as f:
        paths = json.load(f)["cgroups"]
    return paths[LAYOUT.locate(controller)[1]]


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
