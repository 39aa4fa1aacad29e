"""podman inside the VM with its default cgroup manager (systemd) on a
pure cgroup v2 host, with ociruntime as its runtime (tests/vm/vmpodman.py):
each container in a transient scope libpod-ID.scope under machine.slice
that ociruntime's systemd driver starts, checked from outside (systemctl
show, the cgroup files) and inside (/proc/self/cgroup, /sys/fs/cgroup);
limits, exec, pause, stop/rm and run --rm; the same with `--runtime runc`
(1.1.5) where the two could differ; and the shared client script
(../shared/clients/podman-e2e.sh beside the project) run against ociruntime with the
systemd cgroup manager."""
import os
import re
import subprocess
import uuid
from pathlib import Path

import pytest

from vmhelpers import CG, IN_VM_ONLY, kv, read, systemctl, unit_props, wait_until
from vmpodman import IMAGE, OCIRUNTIME, cgroups_named, leftovers, scope_of, units_named, vm_podman  # noqa: F401

pytestmark = IN_VM_ONLY

HERE = Path(__file__).resolve().parent
# The shared client scripts live beside the project (../shared/clients);
# OCIRUNTIME_CLIENTS names another folder.
CLIENT = Path(os.environ.get("OCIRUNTIME_CLIENTS") or HERE.parents[2] / "shared" / "clients") / "podman-e2e.sh"
HAVE_RUNC = any(os.access(p, os.X_OK) for p in ("/usr/sbin/runc", "/usr/bin/runc"))
RUNTIMES = ["ociruntime", pytest.param("runc", marks=pytest.mark.skipif(
    not HAVE_RUNC, reason="runc is not installed"))]
LIMITS = ("--memory", "64m", "--cpus", "0.5", "--pids-limit", "42")
# What the limits above make, in the unit (systemctl show) and in the files.
LIMIT_PROPS = {"MemoryMax": str(64 << 20), "CPUQuotaPerSecUSec": "500ms", "TasksMax": "42"}
LIMIT_FILES = {"memory.max": str(64 << 20), "cpu.max": "50000 100000", "pids.max": "42"}
# The unit properties compared with runc's (names and paths aside).
COMPARED = ("MemoryMax", "CPUQuotaPerSecUSec", "TasksMax", "MemoryAccounting", "CPUAccounting",
            "TasksAccounting", "IOAccounting", "Delegate", "DefaultDependencies", "DevicePolicy",
            "DeviceAllow", "Slice", "ActiveState", "SubState", "CPUWeight", "IOWeight",
            "MemoryLow", "MemoryHigh", "MemorySwapMax", "AllowedCPUs", "AllowedMemoryNodes",
            "CollectMode", "KillMode", "TimeoutStopUSec")


@pytest.fixture(params=RUNTIMES)
def pm(request, vm_podman):
    """vm_podman with one runtime; fails the test if one of the
    containers it made left a unit, cgroup or runtime state."""
    p = vm_podman.using(request.param)
    first = len(p.names)
    yield p
    mine = p.names[first:]
    ids = []
    for n in mine:
        r = p.cmd("inspect", "-f", "{{.Id}}", n)
        if r.returncode == 0:
            ids.append(r.stdout.strip())
        p.cmd("rm", "-f", "-t", "0", n)
    ids += getattr(p, "seen_ids", [])
    left = leftovers(ids)
    assert not left, f"left behind: {left}"


def started(pm, *args):
    """A detached container running sleep; (name, full id, scope, its dir)."""
    name = pm.run_d(*args, IMAGE, "sleep", "1000")
    cid = pm.full_id(name)
    pm.seen_ids = getattr(pm, "seen_ids", []) + [cid]
    unit = scope_of(cid)
    return name, cid, unit, CG + unit_props(unit, "ControlGroup")["ControlGroup"]


def test_podman_uses_systemd_by_default(vm_podman):
    info = vm_podman.ok("info", "--format",
                        "{{.Host.CgroupManager}} {{.Host.CgroupsVersion}} {{.Host.OCIRuntime.Path}}")
    assert info.split() == ["systemd", "v2", OCIRUNTIME]


def test_container_in_a_libpod_scope_under_machine_slice(pm):
    name, cid, unit, d = started(pm)
    p = unit_props(unit, "ActiveState", "Slice", "ControlGroup", "Delegate", "Description")
    assert (p["ActiveState"], p["Slice"], p["Delegate"]) == ("active", "machine.slice", "yes"), p
    assert p["ControlGroup"] == f"/machine.slice/{unit}"
    pid = pm.inspect(name, "{{.State.Pid}}")
    # From outside: the init in the scope, alone there (conmon is in a
    # scope of its own); inside: the cgroup namespace's root.
    assert read(f"/proc/{pid}/cgroup") == f"0::/machine.slice/{unit}"
    assert read(f"{d}/cgroup.procs").split() == [pid]
    conmon = pm.inspect(name, "{{.State.ConmonPid}}")
    assert read(f"/proc/{conmon}/cgroup") != f"0::/machine.slice/{unit}"
    assert pm.ok("exec", name, "cat", "/proc/self/cgroup") == "0::/\n"


def test_limits_in_the_scope_properties_and_files(pm):
    name, cid, unit, d = started(pm, *LIMITS)
    p = unit_props(unit, *LIMIT_PROPS)
    assert p == LIMIT_PROPS
    assert {f: read(f"{d}/{f}") for f in LIMIT_FILES} == LIMIT_FILES
    inside = pm.ok("exec", name, "sh", "-c",
                   "cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/cpu.max /sys/fs/cgroup/pids.max")
    assert inside.splitlines() == list(LIMIT_FILES.values())


# podman flags whose unit properties and files are compared with runc's.
FLAG_SETS = {
    "limits": LIMITS,
    "unlimited": ("--pids-limit", "-1", "--memory", "64m", "--memory-swap", "-1"),
    "more": ("--cpu-shares", "512", "--cpuset-cpus", "0", "--memory-reservation", "8m",
             "--memory-swap", "128m", "--memory", "64m"),
    "cgroup-conf": ("--cgroup-conf", "memory.high=50331648", "--cgroup-conf", "pids.max=77"),
}
COMPARED_FILES = ("memory.max", "memory.low", "memory.high", "memory.swap.max", "cpu.max",
                  "cpu.weight", "pids.max", "io.weight", "cpuset.cpus")


def unit_and_files(pm, flags, made):
    name, cid, unit, d = started(pm, *flags)
    made.append((pm, name, cid))
    props = unit_props(unit, *COMPARED)
    props["DeviceAllow"] = sorted(props["DeviceAllow"].replace("char-136 ", "char-pts ")
                                  .split("; "))
    files = {f: read(f"{d}/{f}") for f in COMPARED_FILES if os.path.exists(f"{d}/{f}")}
    return props, files


@pytest.mark.skipif(not HAVE_RUNC, reason="runc is not installed")
@pytest.mark.parametrize("flags", FLAG_SETS.values(), ids=FLAG_SETS.keys())
def test_scope_same_as_runcs(vm_podman, flags):
    """The same podman run with --runtime runc: the same unit properties
    and cgroup files (runc 1.1.5 is what podman users had before)."""
    seen = {}
    made = []
    try:
        for rt in ("ociruntime", "runc"):
            pm = vm_podman.using(rt)
            seen[rt] = unit_and_files(pm, flags, made)
        assert seen["ociruntime"] == seen["runc"]
    finally:
        for pm, name, _ in made:
            pm.cmd("rm", "-f", "-t", "0", name)
    left = leftovers([cid for _, _, cid in made])
    assert not left, f"left behind: {left}"


def test_update_through_the_scope(pm):
    """podman update (4.3 has no --pids-limit there): the runtime's
    update, through SetUnitProperties; the files agree."""
    name, cid, unit, d = started(pm, *LIMITS)
    pm.ok("update", "--memory", "96m", "--memory-reservation", "8m", "--cpus", "0.25", name)
    want = {"MemoryMax": str(96 << 20), "MemoryLow": str(8 << 20), "TasksMax": "42",
            "CPUQuotaPerSecUSec": "250ms"}
    assert unit_props(unit, *want) == want
    assert (read(f"{d}/memory.max"), read(f"{d}/memory.low"), read(f"{d}/pids.max"),
            read(f"{d}/cpu.max")) == (str(96 << 20), str(8 << 20), "42", "25000 100000")


def test_cgroup_parent_slice(pm):
    """--cgroup-parent NAME.slice: the scope in that slice, which systemd
    makes (with its parents) and the runtime leaves to systemd."""
    stem = f"ocivm{uuid.uuid4().hex[:6]}"
    slc = f"{stem}-p.slice"
    try:
        name, cid, unit, d = started(pm, "--cgroup-parent", slc)
        p = unit_props(unit, "Slice", "ControlGroup")
        assert p == {"Slice": slc, "ControlGroup": f"/{stem}.slice/{slc}/{unit}"}
        assert unit_props(slc, "ActiveState")["ActiveState"] == "active"
        pm.ok("rm", "-f", "-t", "0", name)
        assert leftovers([cid]) == []
    finally:
        systemctl("stop", f"{slc}", f"{stem}.slice")


def test_exec_joins_the_scope(pm):
    name, cid, unit, d = started(pm)
    assert pm.cmd("exec", name, "sh", "-c", "exit 4").returncode == 4
    pm.ok("exec", "-d", name, "sleep", "999")
    wait_until(lambda: len(read(f"{d}/cgroup.procs").split()) == 2, "the exec'd process in the scope")
    assert unit_props(unit, "TasksCurrent")["TasksCurrent"] == "2"


def test_pause_and_unpause_through_the_scope(pm):
    name, cid, unit, d = started(pm)
    pm.ok("pause", name)
    assert pm.inspect(name, "{{.State.Status}}") == "paused"
    assert kv(f"{d}/cgroup.events")["frozen"] == "1"
    assert unit_props(unit, "ActiveState")["ActiveState"] == "active"
    pm.ok("unpause", name)
    assert pm.inspect(name, "{{.State.Status}}") == "running"
    assert kv(f"{d}/cgroup.events")["frozen"] == "0"
    assert pm.ok("exec", name, "echo", "thawed") == "thawed\n"


def test_stop_and_rm_leave_no_unit_nor_cgroup(pm):
    name, cid, unit, d = started(pm, *LIMITS)
    pm.ok("stop", "-t", "0", name)
    assert pm.inspect(name, "{{.State.Status}}") == "exited"
    # The scope ends with its last process; podman's cleanup deletes the
    # container in the runtime.
    wait_until(lambda: not units_named([cid]), f"{unit} to go")
    pm.ok("rm", name)
    assert not os.path.exists(d)
    assert leftovers([cid]) == []


def test_run_rm_leaves_nothing(pm, tmp_path):
    cidfile = tmp_path / "cid"
    r = pm.run("--cidfile", cidfile, *LIMITS, IMAGE, "sh", "-c",
               "cat /proc/self/cgroup /sys/fs/cgroup/pids.max")
    assert (r.returncode, r.stdout) == (0, "0::/\n42\n"), r.stderr
    cid = cidfile.read_text().strip()
    assert pm.cmd("container", "exists", cid).returncode == 1
    assert leftovers([cid]) == []


# -- the shared client script -------------------------------------------------------------------

def client_podman_args(base):
    """The client script's global podman flags (podman-e2e.sh's PGLOBAL)."""
    return ["--root", f"{base}/podman-root", "--runroot", f"{base}/podman-runroot",
            "--tmpdir", f"{base}/podman-tmp", "--network-config-dir", f"{base}/podman-net",
            "--events-backend", "file"]


def checkpoint_supported():
    """podman asks `RUNTIME checkpoint --help`, as here."""
    return subprocess.run([OCIRUNTIME, "checkpoint", "--help"], capture_output=True,
                          timeout=60).returncode == 0


@pytest.mark.skipif(not CLIENT.exists(), reason=f"{CLIENT} is absent (outside the repository)")
def test_client_script_with_systemd_cgroup_manager(vm_podman):
    """podman-e2e.sh against ociruntime, every TAP line passing, with two
    shims first in PATH (tests/vm/client-shims/): `podman` turns the
    script's `--cgroup-manager cgroupfs` into systemd (this host's
    default), `timeout` keeps `podman run -t` in the terminal's foreground
    process group (else it hangs here with runc too).  Until ociruntime
    has `checkpoint` (podman then says "configured runtime does not support
    checkpoint/restore"), the script's checkpoint line may fail: criu works
    in the VM."""
    base = vm_podman.base / "e2e"
    env = dict(vm_podman.env, PATH=f"{HERE / 'client-shims'}:{os.environ['PATH']}",
               CLI_E2E_BASE=str(base), E2E_CMD_TIMEOUT="300")
    ids = []
    try:
        r = subprocess.run(["bash", str(CLIENT), OCIRUNTIME], capture_output=True, text=True,
                           env=env, timeout=3600)
        print(r.stdout)
        lines = r.stdout.splitlines()
        plan = [l for l in lines if re.fullmatch(r"1\.\.\d+", l)]
        tap = [l for l in lines if re.match(r"(not )?ok \d+ ", l)]
        assert plan and len(tap) == int(plan[0][3:]), r.stdout + r.stderr[-2000:]
        failed = [l for l in tap if l.startswith("not ok")]
        if not checkpoint_supported():
            failed = [l for l in failed if not l.endswith(" - checkpoint/restore")]
        assert not failed, r.stdout + r.stderr[-2000:]
    finally:
        glob = client_podman_args(base)
        ev = subprocess.run(["podman", *glob, "events", "--stream=false", "--filter",
                             "type=container", "--format", "{{.ID}}"], capture_output=True,
                            text=True, env=vm_podman.env, timeout=300)
        ids += [i for i in ev.stdout.split() if len(i) == 64]
        subprocess.run(["podman", *glob, "rm", "-a", "-f", "-t", "0"], capture_output=True,
                       env=vm_podman.env, timeout=300)
        subprocess.run(["podman", *glob, "system", "reset", "--force"], capture_output=True,
                       env=vm_podman.env, timeout=300)
    assert ids, "no container events from the client script"
    left = leftovers(ids)
    assert not left, f"left behind: {left}"
