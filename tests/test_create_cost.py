"""What one `create` costs the kernel, counted rather than timed: the
state file written once, each v1 device file opened once, and no set-up
round trip with the init when the runtime has nothing to set up.  Each
check runs a real create under strace (the runtime's own process, not
the init) or with --debug's phase trace, and checks the container works."""
import json
import os
import shutil
import subprocess

import pytest

from conftest import RUNTIME, busybox_config

needs_strace = pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace")


def _v1_devices():
    """The v1 devices hierarchy's mountpoint, or None."""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fstype, _, opts = right.split(" ", 2)
            if fstype == "cgroup" and "devices" in opts.strip().split(","):
                return left.split(" ")[4]
    return None


def _traced_create(oci, cid, bundle, trace="%file"):
    """create under strace (no -f: the runtime's process only); the
    syscall lines."""
    out = oci.tmp / f"strace-{cid}.txt"
    with open(oci.tmp / f"{cid}.err", "w+") as err:
        r = subprocess.run(["strace", "-o", str(out), "-s", "256", "-e", f"trace={trace}",
                            RUNTIME, "--root", oci.root, "create", "-b", str(bundle), cid],
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                           timeout=60)
        err.seek(0)
        assert r.returncode == 0, err.read()
    return out.read_text().splitlines()


def _traced_run(oci, cid, bundle, trace):
    """`run` under strace (no -f: the runtime's process only): the
    completed process and the syscall lines."""
    out = oci.tmp / f"strace-run-{cid}.txt"
    r = subprocess.run(["strace", "-o", str(out), "-s", "256", "-e", f"trace={trace}",
                        RUNTIME, "--root", oci.root, "run", "-b", str(bundle), cid],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    return r, out.read_text().splitlines()


@needs_strace
def test_state_json_is_written_once(oci):
    """A plain create writes state.json once, when the init is ready:
    the cgroups.json written before the cgroups are made is what a
    `delete --force` after a create killed half-way reads (salvage.py,
    tests/test_reliability.py), and each rename over an existing file
    costs ext4 a flush of its data."""
    b = oci.bundle(args=["true"])
    cid = oci.new_id()
    lines = _traced_create(oci, cid, b)
    renames = [l for l in lines if l.startswith("rename") and '/state.json"' in l]
    assert len(renames) == 1, renames
    st = oci.state(cid)
    assert st["status"] == "created" and st["pid"] > 0
    with open(os.path.join(oci.root, cid, "state.json")) as f:
        saved = json.load(f)
    # what delete needs of the cgroups, the directories create made among them
    assert saved["cgroups"] and set(saved["cgroups_created"]) >= set(saved["cgroups"].values())
    oci.ok("start", cid)
    oci.ok("delete", "--force", cid)


def test_create_hooks_still_see_a_creating_state(oci):
    """With create-time hooks the state is saved before the init starts,
    so a hook that asks `ociruntime state` sees "creating", as before."""
    out = oci.tmp / "seen"
    cfg = busybox_config(["true"])
    cid = oci.new_id()
    cfg["hooks"] = {"createRuntime": [{"path": "/bin/sh", "args": [
        "sh", "-c", f"{RUNTIME} --root {oci.root} state {cid} > {out}"]}]}
    b = oci.bundle(cfg)
    r = oci.create("-b", b, cid)
    assert r.returncode == 0, r.stderr
    assert json.loads(out.read_text())["status"] == "creating"
    oci.ok("delete", "--force", cid)


@needs_strace
@pytest.mark.skipif(_v1_devices() is None, reason="needs a cgroup v1 devices hierarchy")
def test_v1_device_rules_open_each_file_once(oci):
    """The device rules go through one open devices.allow and one open
    devices.deny (each write is one rule to the kernel), and devices.list
    holds exactly the rules, as when each had its own open."""
    cfg = busybox_config(["true"])
    cfg["linux"]["resources"]["devices"] = [
        {"allow": False, "access": "rwm"},
        {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "r"},
        {"allow": False, "type": "c", "major": 1, "minor": 3, "access": "r"},
        {"allow": True, "type": "c", "major": 10, "minor": 200, "access": "rw"}]
    b = oci.bundle(cfg)
    cid = oci.new_id()
    lines = _traced_create(oci, cid, b)
    opens = [l for l in lines if l.startswith("openat") and "/devices." in l]
    assert sum("/devices.allow" in l for l in opens) == 1, opens
    assert sum("/devices.deny" in l for l in opens) == 1, opens
    with open(os.path.join(oci.root, cid, "state.json")) as f:
        d = json.load(f)["cgroups"][_v1_devices()]
    with open(os.path.join(d, "devices.list")) as f:
        rules = f.read().split("\n")
    # c 1:3 r was allowed then denied: gone; the defaults and 10:200 rw are there
    assert "c 10:200 rw" in rules and "c 1:3 rwm" in rules and "c 136:* rwm" in rules, rules
    assert "a *:* rwm" not in rules
    oci.ok("delete", "--force", cid)


def _phases(oci, cfg):
    b = oci.bundle(cfg)
    cid = oci.new_id()
    log = oci.tmp / f"{cid}.log"
    r = oci.create("-b", b, cid, global_args=("--debug", "--log", log, "--log-format", "json"))
    assert r.returncode == 0, r.stderr
    phases = [json.loads(l)["msg"].split(": phase ", 1)[1].rsplit(":", 1)[0]
              for l in log.read_text().splitlines() if ": phase " in l]
    oci.ok("start", cid)
    return cid, phases


def test_no_set_up_round_trip_when_the_runtime_has_nothing_to_do(oci):
    """The init waits for the runtime after its hello only when the
    runtime has something to do for it (ids to map, a cgroup to join,
    time offsets, oomScoreAdj, network devices, a seccomp agent): a
    plain container runs without that round trip; one with oomScoreAdj
    still gets it, and its value."""
    cid, phases = _phases(oci, busybox_config(["true"]))
    assert "set-up handshake" not in phases, phases
    assert "ready: state saved" in phases, phases
    oci.ok("delete", "--force", cid)
    cfg = busybox_config(["sleep", "100"])
    cfg["process"]["oomScoreAdj"] = 123   # raising needs no CAP_SYS_RESOURCE
    cid, phases = _phases(oci, cfg)
    assert "set-up handshake" in phases, phases
    pid = oci.state(cid)["pid"]
    with open(f"/proc/{pid}/oom_score_adj") as f:
        assert f.read().strip() == "123"
    oci.ok("delete", "--force", cid)


@needs_strace
def test_run_removes_its_cgroups_without_listing_them(oci):
    """`run` ends with delete: each of the container's cgroup directories
    is removed with one rmdir when nothing is under it, not listed first
    (a cgroupfs directory lists every control file).  A container whose
    processes made child cgroups is still removed whole (fallback:
    deepest first, tests/test_cgroups_real.py)."""
    b = oci.bundle(args=["true"])
    cid = oci.new_id()
    r, lines = _traced_run(oci, cid, b, "openat,rmdir")
    assert r.returncode == 0, r.stderr
    listed = [l for l in lines if l.startswith("openat") and "O_DIRECTORY" in l
              and "O_PATH" not in l   # CLONE_INTO_CGROUP's fd: not a listing
              and f"/{cid}" in l and "/sys/fs/cgroup" in l]
    assert not listed, listed
    removed = [l for l in lines if l.startswith("rmdir") and "/sys/fs/cgroup" in l and l.endswith("= 0")]
    assert removed, lines[-20:]


@needs_strace
def test_each_cgroup_directory_is_looked_at_once(oci):
    """create looks for each of the container's cgroup directories once
    (what is missing, recorded in cgroups.json before anything is made),
    then makes what it found missing without looking again; and reads and
    writes the v1 cpuset files with plain syscalls (one open, reads, one
    close: no io object's fstat, ioctl and lseeks)."""
    b = oci.bundle(args=["true"])
    cid = oci.new_id()
    lines = _traced_create(oci, cid, b, trace="newfstatat,statx,stat,mkdir,openat,ioctl,lseek,close")
    with open(os.path.join(oci.root, cid, "state.json")) as f:
        dirs = set(json.load(f)["cgroups"].values())
    looks = {}
    for l in lines:
        if l.startswith(("newfstatat(", "statx(", "stat(")):
            path = l.split('"')[1] if '"' in l else ""
            if path in dirs:
                looks[path] = looks.get(path, 0) + 1
    assert looks and all(n == 1 for n in looks.values()), looks
    made = [l.split('"')[1] for l in lines if l.startswith("mkdir(") and l.endswith("= 0")]
    assert dirs <= set(made), (dirs, made)
    # after each open of a cpuset file, its fd is closed with nothing but reads/writes between
    for i, l in enumerate(lines):
        if l.startswith("openat(") and "/cpuset." in l and "= " in l:
            fd = l.rsplit("= ", 1)[1].split()[0]
            rest = lines[i + 1:]
            upto = next(j for j, m in enumerate(rest) if m.startswith(f"close({fd})"))
            io_calls = [m for m in rest[:upto] if m.startswith((f"ioctl({fd},", f"lseek({fd},",
                                                                f"newfstatat({fd},"))]
            assert not io_calls, (l, io_calls)
    oci.ok("start", cid)
    oci.ok("delete", "--force", cid)


@needs_strace
def test_run_reads_no_state_json_of_its_own_container(oci):
    """`run` starts and deletes the container it has just created from
    what it holds in memory: state.json is written once and never read
    back (each read is a parse and a check of every field).  The
    container runs, its exit code comes back, and nothing is left."""
    b = oci.bundle(args=["sh", "-c", "exit 7"])
    cid = oci.new_id()
    r, lines = _traced_run(oci, cid, b, "openat")
    assert r.returncode == 7, r.stderr
    reads = [l for l in lines
             if "/state.json" in l and "O_RDONLY" in l and "= -1" not in l]
    assert not reads, reads
    assert not os.path.exists(os.path.join(oci.root, cid))


@needs_strace
def test_a_seccomp_filter_is_built_before_the_clone_and_the_init_joins_alone(oci):
    """With linux.seccomp the filter is built by the process that clones
    the init (csrc/spawn.c), so the init is born in its cgroup2 directory
    and joins its v1 cgroups itself.  Before, the init built it after the
    clone, outside its cgroup2 directory, and the runtime moved it in by
    writing its pid into cgroup.procs: a wait for an RCU grace period
    (~5 ms here) and a set-up round trip on every create with a filter."""
    cfg = busybox_config(["true"])
    cfg["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW",
                               "syscalls": [{"names": ["kexec_load"], "action": "SCMP_ACT_ERRNO"}]}
    cid, phases = _phases(oci, cfg)
    assert "init: seccomp filter built, before the clone" in phases, phases
    assert "set-up handshake" not in phases, phases
    oci.ok("delete", "--force", cid)
    cid = oci.new_id()
    lines = _traced_create(oci, cid, oci.bundle(cfg), trace="openat")
    moved = [l for l in lines if "cgroup.procs" in l and "O_WRONLY" in l]
    assert not moved, f"the runtime moved the init into a cgroup: {moved}"
    oci.ok("delete", "--force", cid)


@needs_strace
def test_ready_files_are_written_while_the_init_sets_itself_up(oci):
    """state.json, the exec template and `fast` are rendered and written
    under their temporary names while the init works (our CPU was idle
    then); once it says ready, only the renames are left, `fast` last."""
    from ociruntime import core
    cid = oci.new_id()
    lines = _traced_create(oci, cid, oci.bundle(busybox_config(["sleep", "100"])),
                           trace="openat,read,rename")
    ready = "\\%o\\0\\0\\0" % core.MSG_READY   # strace's rendering of the message's type
    at_ready = max(i for i, l in enumerate(lines) if l.startswith("read(") and f'"{ready}' in l)
    opened = [i for i, l in enumerate(lines) if "openat(" in l and any(
        f"/{cid}/.{n}.tmp" in l for n in ("state.json", "exec", "fast"))]
    renamed = [l.split('"')[3].rsplit("/", 1)[1] for l in lines if l.startswith("rename(")
               and f"/{cid}/" in l]
    assert len(opened) == 3 and max(opened) < at_ready, lines
    assert renamed == ["state.json", "exec", "fast"], renamed
    assert oci.state(cid)["status"] == "created"
    oci.ok("delete", "--force", cid)


@needs_strace
def test_a_mount_point_under_an_existing_directory_is_looked_up_from_its_parent(oci):
    """The init makes a missing mount point under a directory that exists
    by looking the parent up once, not by walking every component from
    the root again; and a new filesystem, checked once when its fd is
    taken again after mount(2), is not looked up a third time.  Before:
    /o/a/b/d was looked up five times and /o and /o/a once more each
    (ten hierarchies under /sys/fs/cgroup on a v1 host paid the same).
    Both mounts still work, and a symlink among the components is still
    followed inside the root (tests/test_mount_race.py has the races)."""
    cfg = busybox_config(["sh", "-c", "grep -c ' /o/a/b/[cd] ' /proc/self/mountinfo"])
    cfg["mounts"] += [
        {"destination": "/o/a/b/c", "type": "tmpfs", "source": "tmpfs", "options": ["size=1k"]},
        {"destination": "/o/a/b/d", "type": "tmpfs", "source": "tmpfs", "options": ["size=2k"]},
    ]
    cid = oci.new_id()
    out = oci.tmp / "strace-mounts.txt"
    r = subprocess.run(["strace", "-f", "-o", str(out), "-s", "256", "-e", "trace=openat2,mount",
                        RUNTIME, "--root", oci.root, "run", "-b", str(oci.bundle(cfg)), cid],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "2", (r.stdout, r.stderr)
    lines = out.read_text().splitlines()
    mount_c = next(i for i, l in enumerate(lines) if "mount(" in l and '"size=1k"' in l)
    mount_d = next(i for i, l in enumerate(lines) if "mount(" in l and '"size=2k"' in l)

    def looked_up(path, part):
        return [l for l in part if "openat2(" in l and f', "{path}",' in l]

    between = lines[mount_c + 1:mount_d]
    assert not looked_up("/o", between) and not looked_up("/o/a", between), between
    assert len(looked_up("/o/a/b/d", lines)) <= 3, looked_up("/o/a/b/d", lines)
    assert not os.path.exists(os.path.join(oci.root, cid))
