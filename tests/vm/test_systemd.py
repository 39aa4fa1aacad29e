"""--systemd-cgroup against the real systemd (PID 1 in the VM), compared
with runc 1.1.5 there: a transient scope in the named slice with runc's
properties, the parent slices systemd makes, org.systemd.property.*
annotations, update through SetUnitProperties (systemctl show agrees with
the cgroup files), pause/kill/delete, and no unit left behind."""
import json
import os
import shutil
import subprocess
import uuid

import pytest

from vmhelpers import (CG, IN_VM_ONLY, busybox_config, kv, procs, read, systemctl, unit_props,
                       wait_until)

pytestmark = IN_VM_ONLY

SD = ["--systemd-cgroup"]
RES = {"memory": {"limit": 64 << 20, "reservation": 8 << 20},
       "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "cpus": "0"},
       "pids": {"limit": 33},
       "blockIO": {"weight": 500}}
PROPS = ("MemoryMax", "MemoryLow", "CPUQuotaPerSecUSec", "CPUWeight", "TasksMax", "AllowedCPUs",
         "IOWeight", "Delegate", "DevicePolicy", "DeviceAllow", "Slice", "ControlGroup",
         "ActiveState")


@pytest.fixture
def slice_name(oci):
    """A slice of our own, two levels deep (ocivmNNN.slice/ocivmNNN-t.slice),
    stopped afterwards (after `oci` deleted the containers): runc, too,
    leaves the slices it made."""
    stem = f"ocivm{uuid.uuid4().hex[:6]}"
    yield f"{stem}-t.slice"
    systemctl("stop", "--no-block", f"{stem}-t.slice", f"{stem}.slice")


def sd_start(oci, slc, cid, resources=RES, args=("sleep", "1000"), annotations=None):
    cfg = busybox_config(list(args))
    cfg["linux"]["cgroupsPath"] = f"{slc}:ocitest:{cid}"
    cfg["linux"]["resources"] = resources
    if annotations:
        cfg["annotations"] = annotations
    r = oci.create("-b", oci.bundle(cfg), cid, global_args=SD)
    assert r.returncode == 0, r.stderr
    oci.ok("start", cid, global_args=SD)
    return f"ocitest-{cid}.scope"


def unit_gone(unit):
    r = systemctl("list-units", "--all", "--no-legend", unit)
    return r.stdout.strip() == ""


def test_scope_in_named_slice_with_runc_properties(oci, slice_name):
    cid = oci.new_id()
    unit = sd_start(oci, slice_name, cid)
    p = unit_props(unit, *PROPS)
    stem = slice_name.split("-")[0]
    assert p["ActiveState"] == "active"
    assert p["Slice"] == slice_name
    assert p["ControlGroup"] == f"/{stem}.slice/{slice_name}/{unit}"
    assert p["Delegate"] == "yes"
    assert p["MemoryMax"] == str(64 << 20)
    assert p["MemoryLow"] == str(8 << 20)
    assert p["CPUQuotaPerSecUSec"] == "500ms"
    assert p["CPUWeight"] == str(1 + (1024 - 2) * 9999 // 262142)
    assert p["TasksMax"] == "33"
    assert p["AllowedCPUs"] == "0"
    assert p["IOWeight"] == str(1 + (500 - 10) * 9999 // 990)
    assert p["DevicePolicy"] == "strict"
    assert "/dev/char/1:3 rwm" in p["DeviceAllow"], p["DeviceAllow"]   # /dev/null
    # The parent slices are systemd's, active, and the cgroup files agree.
    assert unit_props(f"{stem}.slice", "ActiveState")["ActiveState"] == "active"
    d = CG + p["ControlGroup"]
    assert read(f"{d}/memory.max") == str(64 << 20)
    assert read(f"{d}/cpu.max") == "50000 100000"
    assert read(f"{d}/pids.max") == "33"
    assert read(f"{d}/cpuset.cpus") == "0"
    pid = oci.state(cid)["pid"]
    assert read(f"/proc/{pid}/cgroup") == f"0::{p['ControlGroup']}"


def test_update_through_set_unit_properties(oci, slice_name):
    cid = oci.new_id()
    unit = sd_start(oci, slice_name, cid)
    oci.ok("update", "--memory", "96m", "--pids-limit", "44", "--cpu-quota", "20000",
           "--cpu-share", "2048", cid, global_args=SD)
    p = unit_props(unit, *PROPS)
    d = CG + p["ControlGroup"]
    assert p["MemoryMax"] == str(96 << 20) == read(f"{d}/memory.max")
    assert p["TasksMax"] == "44" == read(f"{d}/pids.max")
    assert p["CPUQuotaPerSecUSec"] == "200ms" and read(f"{d}/cpu.max") == "20000 100000"
    assert p["CPUWeight"] == str(1 + (2048 - 2) * 9999 // 262142) == read(f"{d}/cpu.weight")
    # systemd itself rewrites the files from its properties (daemon-reload
    # re-applies them): they must still be ours afterwards.
    systemctl("daemon-reload")
    assert read(f"{d}/memory.max") == str(96 << 20)
    assert read(f"{d}/pids.max") == "44"


def test_pause_kill_delete_stop_and_remove_the_unit(oci, slice_name):
    cid = oci.new_id()
    unit = sd_start(oci, slice_name, cid, args=("sh", "-c", "sleep 1000 & exec sleep 1000"))
    d = CG + unit_props(unit, "ControlGroup")["ControlGroup"]
    procs(d, 2)
    oci.ok("pause", cid, global_args=SD)
    assert oci.state(cid)["status"] == "paused"
    assert kv(f"{d}/cgroup.events")["frozen"] == "1"
    oci.ok("resume", cid, global_args=SD)
    assert oci.state(cid)["status"] == "running"
    oci.ok("kill", "--all", cid, "KILL", global_args=SD)
    wait_until(lambda: oci.state(cid)["status"] == "stopped", "the container to stop")
    oci.ok("delete", cid, global_args=SD)
    assert unit_gone(unit), systemctl("list-units", "--all", unit).stdout
    assert not os.path.exists(d)


def test_delete_force_of_a_running_container_leaves_no_unit(oci, slice_name):
    cid = oci.new_id()
    unit = sd_start(oci, slice_name, cid)
    oci.ok("delete", "--force", cid, global_args=SD)
    assert unit_gone(unit)
    leftovers = systemctl("list-units", "--all", "--no-legend", "ocitest-*").stdout
    assert cid not in leftovers


def test_systemd_property_annotations(oci, slice_name):
    cid = oci.new_id()
    unit = sd_start(oci, slice_name, cid, annotations={
        "org.systemd.property.TimeoutStopSec": "uint64 7",          # Sec -> USec, as runc
        "org.systemd.property.CollectMode": "'inactive-or-failed'",
        "org.systemd.property.CPUAccounting": "true",
        "org.systemd.property.MemoryHigh": "uint64 50331648",
    })
    p = unit_props(unit, "TimeoutStopUSec", "CollectMode", "CPUAccounting", "MemoryHigh",
                   "ControlGroup")
    assert p["TimeoutStopUSec"] == "7s"
    assert p["CollectMode"] == "inactive-or-failed"
    assert p["CPUAccounting"] == "yes"
    assert p["MemoryHigh"] == "50331648"
    assert read(CG + p["ControlGroup"] + "/memory.high") == "50331648"


def test_bad_annotation_is_a_clear_error(oci, slice_name):
    cid = oci.new_id()
    cfg = busybox_config(["true"])
    cfg["linux"]["cgroupsPath"] = f"{slice_name}:ocitest:{cid}"
    cfg["annotations"] = {"org.systemd.property.Bad_Name": "true"}
    r = oci.cmd("run", "-b", oci.bundle(cfg), cid, global_args=SD)
    assert r.returncode == 1, r.stderr
    assert "org.systemd.property.Bad_Name" in r.stderr and "Traceback" not in r.stderr
    assert unit_gone(f"ocitest-{cid}.scope")


@pytest.mark.skipif(not shutil.which("runc"), reason="runc is not installed")
def test_same_unit_as_runc(oci, slice_name, tmp_path):
    """runc 1.1.5 with the same config: the same unit properties and files."""
    ours = oci.new_id()
    unit = sd_start(oci, slice_name, ours)
    theirs = f"ocivm-runc-{uuid.uuid4().hex[:8]}"
    cfg = busybox_config(["sleep", "1000"])
    cfg["linux"]["cgroupsPath"] = f"{slice_name}:runc:{theirs}"
    cfg["linux"]["resources"] = RES
    bundle = oci.bundle(cfg)
    root = str(tmp_path / "runc-root")
    runc = ["runc", "--root", root, "--systemd-cgroup"]
    # stdio on a file, not a pipe: the container keeps it open.
    with open(tmp_path / "runc.err", "w+") as err:
        r = subprocess.run(runc + ["run", "-d", "-b", str(bundle), theirs], stdout=err, stderr=err,
                           stdin=subprocess.DEVNULL, timeout=120)
        err.seek(0)
        why = err.read()
    try:
        assert r.returncode == 0, why
        names = [n for n in PROPS if n not in ("ControlGroup", "Slice")] + [
            "MemoryAccounting", "CPUAccounting", "TasksAccounting", "IOAccounting",
            "DefaultDependencies"]
        mine = unit_props(unit, *names)
        runcs = unit_props(f"runc-{theirs}.scope", *names)
        # runc 1.1.5 sets no IOWeight on v2 (we do: systemd then agrees
        # with io.weight), and names major 136 by its /proc/devices group.
        assert mine.pop("IOWeight") == str(1 + (500 - 10) * 9999 // 990)
        assert runcs.pop("IOWeight") == "[not set]"
        for p in (mine, runcs):
            p["DeviceAllow"] = sorted(p["DeviceAllow"].replace("char-136 ", "char-pts ").split("; "))
        assert mine == runcs
        d1 = CG + unit_props(unit, "ControlGroup")["ControlGroup"]
        d2 = CG + unit_props(f"runc-{theirs}.scope", "ControlGroup")["ControlGroup"]
        for f in ("memory.max", "memory.low", "cpu.max", "cpu.weight", "pids.max", "cpuset.cpus",
                  "memory.swap.max"):
            assert (f, read(f"{d1}/{f}")) == (f, read(f"{d2}/{f}"))
    finally:
        subprocess.run(runc + ["delete", "-f", theirs], capture_output=True, timeout=120)
    assert unit_gone(f"runc-{theirs}.scope")
