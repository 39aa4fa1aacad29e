"""cgroup logic without the kernel: conversions, the device program (run by
a small interpreter), and the exact v2 files written into a cgroup2-like
tree in a temporary directory (this host's real cgroup2 has only hugetlb)."""
import os

import pytest

from ociruntime import cgroups
from ociruntime.cgroups import commands, devices, resources, systemd
from ociruntime.errors import OciError

V2_FILES = ("memory.max", "memory.swap.max", "memory.low", "memory.current", "cpu.weight", "cpu.max",
            "cpu.max.burst", "cpu.idle", "cpuset.cpus", "cpuset.mems", "pids.max", "io.weight", "io.max",
            "hugetlb.2MB.max", "hugetlb.2MB.rsvd.max", "rdma.max", "cgroup.procs", "cgroup.freeze",
            "cgroup.events", "memory.high")


@pytest.fixture
def v2tree(tmp_path):
    """A cgroup2-like tree: root offers controllers, the container's
    directory has the files a kernel would give it."""
    root = tmp_path / "cg2"
    (root / "parent" / "ctr").mkdir(parents=True)
    for d in (root, root / "parent"):
        (d / "cgroup.controllers").write_text("cpuset cpu io memory hugetlb pids rdma\n")
        (d / "cgroup.subtree_control").write_text("")
    for name in V2_FILES:
        (root / "parent" / "ctr" / name).write_text("")
    (root / "parent" / "ctr" / "cpu.max").write_text("max 100000\n")
    (root / "parent" / "ctr" / "memory.current").write_text("1000000\n")
    mgr = cgroups.Manager({str(root): str(root / "parent" / "ctr")},
                          layout=cgroups.Layout(v2=str(root)))
    return root, root / "parent" / "ctr", mgr


def _read(d, name):
    return (d / name).read_text()


def test_conversions():
    assert resources.shares_to_weight(2) == 1
    assert resources.shares_to_weight(1024) == 39
    assert resources.shares_to_weight(262144) == 10000
    assert resources.blkio_weight_to_io_weight(10) == 1
    assert resources.blkio_weight_to_io_weight(500) == 4950
    assert resources.blkio_weight_to_io_weight(1000) == 10000
    assert resources.swap_to_v2(None, 100, "m") is None
    assert resources.swap_to_v2(None, -1, "m") == -1
    assert resources.swap_to_v2(-1, 100, "m") == -1
    assert resources.swap_to_v2(300, 100, "m") == 200
    with pytest.raises(OciError, match="swap limit needs a memory limit"):
        resources.swap_to_v2(300, None, "m")
    with pytest.raises(OciError, match="at least the memory limit"):
        resources.swap_to_v2(50, 100, "m")


def test_v2_files_exact(v2tree):
    root, ctr, mgr = v2tree
    res = {
        "memory": {"limit": 1 << 20, "swap": 3 << 20, "reservation": 1 << 19},
        "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "burst": 1000, "idle": 1,
                "cpus": "0", "mems": "0"},
        "pids": {"limit": 9},
        "blockIO": {"weight": 500, "weightDevice": [{"major": 8, "minor": 0, "weight": 100}],
                    "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}],
                    "throttleWriteIOPSDevice": [{"major": 8, "minor": 16, "rate": 10}]},
        "hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}],
        "rdma": {"mlx5_1": {"hcaHandles": 3}},
        "unified": {"memory.high": "2097152"},
    }
    writes = resources.plan(mgr, res)
    got = [(name, value) for _d, name, value, _f in writes]
    assert got == [
        ("memory.swap.max", str(2 << 20)), ("memory.max", str(1 << 20)), ("memory.low", str(1 << 19)),
        ("cpuset.cpus", "0"), ("cpuset.mems", "0"),
        ("cpu.weight", "39"), ("cpu.max", "50000 100000"), ("cpu.max.burst", "1000"), ("cpu.idle", "1"),
        ("pids.max", "9"),
        ("io.weight", "default 4950"), ("io.weight", "8:0 910"), ("io.max", "8:0 rbps=1048576"),
        ("io.max", "8:16 wiops=10"),
        ("hugetlb.2MB.max", "4194304"), ("hugetlb.2MB.rsvd.max", "4194304"),
        ("rdma.max", "mlx5_1 hca_handle=3 hca_object=max"),
        ("memory.high", "2097152"),
    ]
    resources.write_all(writes)
    assert _read(ctr, "memory.max") == str(1 << 20)
    assert _read(ctr, "cpu.max") == "50000 100000"
    assert _read(ctr, "pids.max") == "9"
    assert _read(ctr, "io.max") == "8:16 wiops=10"   # one write per line, as the kernel wants
    # the controllers were enabled in the ancestors, not in the container's directory
    assert "+" in _read(root, "cgroup.subtree_control")
    assert "+" in _read(root / "parent", "cgroup.subtree_control")
    assert "cgroup.subtree_control" not in os.listdir(ctr)


def test_v2_unlimited_and_update_merge(v2tree):
    _root, ctr, mgr = v2tree
    got = [(n, v) for _d, n, v, _f in resources.plan(mgr, {"memory": {"limit": -1}, "pids": {"limit": -1}})]
    assert got == [("memory.swap.max", "max"), ("memory.max", "max"), ("pids.max", "max")]
    (ctr / "cpu.max").write_text("20000 100000\n")
    got = [(n, v) for _d, n, v, _f in resources.plan(mgr, {"cpu": {"period": 50000}}, update=True)]
    assert got == [("cpu.max", "20000 50000")]   # the quota is kept
    got = [(n, v) for _d, n, v, _f in resources.plan(mgr, {"cpu": {"quota": -1}})]
    assert got == [("cpu.max", "max")]


@pytest.mark.parametrize("res, field", [
    ({"memory": {"swappiness": 10}}, "linux.resources.memory.swappiness"),
    ({"memory": {"kernelTCP": 1 << 20}}, "linux.resources.memory.kernelTCP"),
    ({"memory": {"disableOOMKiller": True}}, "linux.resources.memory.disableOOMKiller"),
    ({"cpu": {"realtimeRuntime": 1000}}, "linux.resources.cpu.realtimeRuntime"),
    ({"blockIO": {"leafWeight": 100}}, "linux.resources.blockIO.leafWeight"),
    ({"network": {"classID": 1}}, "linux.resources.network.classID"),
    ({"hugepageLimits": [{"pageSize": "1GB", "limit": 0}]}, r"linux.resources.hugepageLimits\[0\]"),
    ({"unified": {"misc.max": "1"}}, "linux.resources.unified.misc.max"),
    ({"unified": {"../x": "1"}}, "linux.resources.unified"),
])
def test_v2_cannot_apply_is_an_error(v2tree, res, field):
    _root, _ctr, mgr = v2tree
    with pytest.raises(OciError, match=field):
        resources.write_all(resources.plan(mgr, res))


def test_v2_missing_kernel_file_names_the_field(v2tree):
    _root, ctr, mgr = v2tree
    (ctr / "io.weight").unlink()
    with pytest.raises(OciError, match=r"linux.resources.blockIO.weight: .*io.weight: this host's kernel has no"):
        resources.write_all(resources.plan(mgr, {"blockIO": {"weight": 500}}))


def test_v2_check_before_update(v2tree):
    _root, _ctr, mgr = v2tree
    with pytest.raises(OciError, match="checkBeforeUpdate"):
        resources.plan(mgr, {"memory": {"limit": 500000, "checkBeforeUpdate": True}}, update=True)
    resources.plan(mgr, {"memory": {"limit": 2000000, "checkBeforeUpdate": True}}, update=True)


def test_v1_only_host_refuses_unified(tmp_path):
    mgr = cgroups.Manager({str(tmp_path): str(tmp_path / "c")},
                          layout=cgroups.Layout(v1={"memory": str(tmp_path)}))
    with pytest.raises(OciError, match="linux.resources.unified: this host has no cgroup v2"):
        resources.plan(mgr, {"unified": {"memory.high": "1"}})
    with pytest.raises(OciError, match="linux.resources.pids: the pids cgroup controller is not available"):
        resources.plan(mgr, {"pids": {"limit": 5}})


def test_layout_modes():
    assert cgroups.Layout(v1={"cpu": "/a"}).mode == "v1"
    assert cgroups.Layout(v1={"name=systemd": "/s"}, v2="/u", v2_controllers=["memory"]).mode == "v2"
    lay = cgroups.Layout(v1={"memory": "/m", "blkio": "/b"}, v2="/u", v2_controllers=["hugetlb", "io"])
    assert lay.mode == "hybrid"
    assert lay.locate("memory") == (1, "/m")
    assert lay.locate("blkio") == (1, "/b")
    assert lay.locate("hugetlb") == (2, "/u")
    assert lay.locate("pids") is None


def test_cgroups_path_semantics():
    hier = [("cpu", "cgroup", "cpu", "/sys/fs/cgroup/cpu", "/", "/user/me"),
            ("memory", "cgroup", "memory", "/sys/fs/cgroup/memory", "/", "/"),
            ("unified", "cgroup2", "", "/sys/fs/cgroup/unified", "/", "/x")]
    m = cgroups.Manager.for_config("/abs/path", "id1", hierarchies=hier)
    assert m.paths["/sys/fs/cgroup/cpu"] == "/sys/fs/cgroup/cpu/abs/path"
    assert m.paths["/sys/fs/cgroup/unified"] == "/sys/fs/cgroup/unified/abs/path"
    m = cgroups.Manager.for_config("rel/p", "id1", hierarchies=hier)
    assert m.paths["/sys/fs/cgroup/cpu"] == "/sys/fs/cgroup/cpu/user/me/rel/p"
    assert m.paths["/sys/fs/cgroup/memory"] == "/sys/fs/cgroup/memory/rel/p"
    m = cgroups.Manager.for_config(None, "id1", hierarchies=hier)
    assert m.paths["/sys/fs/cgroup/unified"] == "/sys/fs/cgroup/unified/x/id1"
    for bad in ("../../etc", "/", "/a/../.."):
        with pytest.raises(OciError, match="leaves the cgroup hierarchy"):
            cgroups.Manager.for_config(bad, "id1", hierarchies=hier)


def test_cgroups_path_on_a_pure_v2_host_is_beside_our_own_cgroup():
    """As runc's fs2: a relative or default path goes under the parent of
    the runtime's own cgroup (which has processes: v2 would enable no
    controller below it).  Absolute paths are as they are."""
    hier = [("unified", "cgroup2", "", "/sys/fs/cgroup/unified", "/", "/svc/leaf")]
    m = cgroups.Manager.for_config(None, "id1", hierarchies=hier)
    assert m.paths == {"/sys/fs/cgroup/unified": "/sys/fs/cgroup/unified/svc/id1"}
    m = cgroups.Manager.for_config("rel/p", "id1", hierarchies=hier)
    assert m.paths == {"/sys/fs/cgroup/unified": "/sys/fs/cgroup/unified/svc/rel/p"}
    m = cgroups.Manager.for_config("/abs", "id1", hierarchies=hier)
    assert m.paths == {"/sys/fs/cgroup/unified": "/sys/fs/cgroup/unified/abs"}
    top = [("unified", "cgroup2", "", "/sys/fs/cgroup/unified", "/", "/")]
    assert cgroups.Manager.for_config(None, "id1", hierarchies=top).paths == {
        "/sys/fs/cgroup/unified": "/sys/fs/cgroup/unified/id1"}


# -- devices -------------------------------------------------------------------

def test_device_rules_v1_lines_and_order():
    rules = devices.rules_for([{"allow": False, "access": "rwm"},
                               {"allow": True, "type": "c", "major": 10, "minor": 229, "access": "rwm"},
                               {"allow": True, "type": "a", "major": 8, "access": "r"}],
                              [{"type": "c", "path": "/dev/fuse", "major": 10, "minor": 229},
                               {"type": "p", "path": "/dev/fifo"}])
    lines = [("allow " if r.allow else "deny ") + r.v1_line() for r in rules]
    assert lines[:4] == ["deny a", "allow c 10:229 rwm", "allow c 8:* r", "allow b 8:* r"]
    assert "allow c 1:3 rwm" in lines and "allow c 136:* rwm" in lines
    assert lines[-1] == "allow c 10:229 rwm"   # linux.devices are allowed
    assert not any("fifo" in l for l in lines)


def _ask(rules, *req):
    return devices.run(devices.program(rules), *req)


def test_device_program_semantics():
    rules = devices.rules_for([{"allow": False, "access": "rwm"},
                               {"allow": True, "type": "c", "major": 10, "minor": 229, "access": "rw"},
                               {"allow": True, "type": "b", "major": 8, "minor": 0, "access": "r"}], None)
    assert _ask(rules, "c", "rw", 10, 229) == 1
    assert _ask(rules, "c", "r", 1, 3) == 1          # a default device
    assert _ask(rules, "c", "m", 4, 4) == 1          # mknod of anything
    assert _ask(rules, "c", "rw", 4, 4) == 0
    assert _ask(rules, "b", "r", 8, 0) == 1
    assert _ask(rules, "b", "rw", 8, 0) == 0         # w not allowed
    assert _ask(rules, "b", "r", 8, 1) == 0
    assert _ask(rules, "c", "r", 136, 7) == 1        # pts/*
    # last rule wins, and a deny of one access denies a request that has it
    rules = devices.parse_rules([{"allow": True, "access": "rwm"},
                                 {"allow": False, "type": "c", "major": 1, "minor": 3, "access": "w"}])
    assert _ask(rules, "c", "r", 1, 3) == 1
    assert _ask(rules, "c", "rw", 1, 3) == 0
    assert _ask(rules, "b", "rw", 1, 3) == 1
    # an allow-everything rule ends the program: what came before is dead
    prog = devices.program(devices.parse_rules([{"allow": False, "access": "rwm"}, {"allow": True}]))
    assert len(prog) == 8 and devices.run(prog, "c", "rwm", 1, 1) == 1
    assert len(devices.encode(prog)) == 8 * len(prog)


def test_device_rules_reject_bad_entries():
    with pytest.raises(OciError, match=r"linux.resources.devices\[0\]"):
        devices.parse_rules([{"allow": True, "type": "x"}])
    with pytest.raises(OciError, match=r"linux.resources.devices\[0\]"):
        devices.parse_rules([{"allow": True, "access": "rx"}])


# -- command-line helpers --------------------------------------------------------

def test_update_flags():
    res = commands.resources_from_flags({"memory": "512k", "memory-swap": "-1", "cpu-shares": "512",
                                         "cpu-quota": "-1", "cpuset-cpus": "0-1", "pids-limit": "0",
                                         "blkio-weight": "300", "memory-reservation": "1.5m"})
    assert res == {"memory": {"limit": 524288, "swap": -1, "reservation": 1572864},
                   "cpu": {"shares": 512, "quota": -1, "cpus": "0-1"},
                   "pids": {"limit": 0}, "blockIO": {"weight": 300}}
    for text, n in (("1g", 1 << 30), ("64MiB", 64 << 20), ("100", 100), ("2KB", 2048)):
        assert commands.parse_bytes(text, "memory") == n
    with pytest.raises(OciError, match="--memory"):
        commands.parse_bytes("lots", "memory")


def test_durations():
    assert commands.parse_duration("5s") == 5
    assert commands.parse_duration("100ms") == pytest.approx(0.1)
    assert commands.parse_duration("1m30s") == 90
    assert commands.parse_duration("2") == 2
    with pytest.raises(OciError, match="--interval"):
        commands.parse_duration("soon")


def test_systemd_paths():
    assert systemd.parse_path("machine.slice:libpod:abc", "x") == ("machine.slice", "libpod-abc.scope")
    assert systemd.parse_path(":runc:abc", "x") == ("system.slice", "runc-abc.scope")
    assert systemd.parse_path("", "x") == ("system.slice", "ociruntime-x.scope")
    with pytest.raises(OciError, match="slice:prefix:name"):
        systemd.parse_path("/a/b", "x")
    if not systemd.systemd_running():
        with pytest.raises(OciError, match="systemd is not running"):
            systemd.check_available()


def test_v2_zero_means_unset(v2tree):
    """Docker's zeros write nothing on v2 either (runc's numToStr); an
    unlimited memory limit with swap 0 makes swap unlimited too."""
    _root, _ctr, mgr = v2tree
    zeros = {"memory": {"limit": 0, "reservation": 0, "swap": 0, "kernel": 0, "kernelTCP": 0},
             "cpu": {"shares": 0, "quota": 0, "period": 0, "realtimeRuntime": 0, "realtimePeriod": 0},
             "pids": {"limit": 0}, "blockIO": {"weight": 0, "leafWeight": 0,
                                              "weightDevice": [{"major": 8, "minor": 0, "weight": 0}]}}
    assert resources.plan(mgr, zeros) == []
    got = [(n, v) for _d, n, v, _f in resources.plan(mgr, {"memory": {"limit": -1, "swap": 0}})]
    assert got == [("memory.swap.max", "max"), ("memory.max", "max")]


def test_rollback_undo_values(tmp_path):
    """What undoes a write: the whole old value, or the old line of the
    written key in a keyed file, or the value that removes the key."""
    from ociruntime.cgroups import rollback

    def undo(name, content, value):
        (tmp_path / name).write_text(content)
        return rollback.undo_value(str(tmp_path / name), value)

    assert undo("memory.limit_in_bytes", "9223372036854771712\n", "4096") == "9223372036854771712"
    assert undo("cpu.max", "max 100000\n", "20000 100000") == "max 100000"
    assert undo("memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n", "1") == "0"
    assert undo("blkio.throttle.read_bps_device", "8:0 100\n", "8:16 5") == "8:16 0"
    assert undo("blkio.throttle.read_bps_device", "8:0 100\n8:16 7\n", "8:16 5") == "8:16 7"
    io_max = "8:0 rbps=1 wbps=max riops=max wiops=max\n"
    assert undo("io.max", io_max, "8:0 wiops=3") == io_max.strip()
    assert undo("io.max", io_max, "8:16 rbps=3") == "8:16 rbps=max wbps=max riops=max wiops=max"
    assert undo("io.weight", "default 100\n8:0 200\n", "default 4950") == "default 100"
    assert undo("io.weight", "default 100\n8:0 200\n", "8:16 50") == "8:16 default"
    assert undo("io.bfq.weight", "default 100\n", "300") == "100"
    assert undo("net_prio.ifpriomap", "lo 0\neth0 3\n", "eth0 5") == "eth0 3"


def test_rollback_puts_back_what_was_written(v2tree):
    """A write the kernel refuses undoes the ones before it, last first."""
    _root, ctr, mgr = v2tree
    (ctr / "pids.max").write_text("max\n")
    (ctr / "memory.max").write_text("1048576\n")
    writes = resources.plan(mgr, {"memory": {"limit": 2 << 20}, "pids": {"limit": 5}}, update=True)
    writes.append((str(ctr), "io.max", "8:0 rbps=1", "linux.resources.blockIO.x"))
    os.unlink(ctr / "io.max")
    os.symlink("/proc/version", ctr / "io.max")   # readable; a write is refused (EIO)
    from ociruntime.cgroups import rollback
    j = rollback.Journal()
    with pytest.raises(OciError, match="linux.resources.blockIO.x"):
        resources.write_all(writes, j)
    assert j.roll_back() == []
    assert (_read(ctr, "memory.max"), _read(ctr, "pids.max")) == ("1048576", "max")


# -- org.systemd.property.* annotations (runc's initSystemdProps) ----------------

@pytest.mark.parametrize("text,want", [
    ("uint64 7", ("t", 7)), ("'inactive-or-failed'", ("s", "inactive-or-failed")),
    ("true", ("b", True)), ("5", ("i", 5)), ("1.5", ("d", 1.5)),
    ("['a', \"b\"]", ("as", ["a", "b"])), ("@as []", ("as", [])), ("uint32 0x10", ("u", 16)),
])
def test_gvariant_text(text, want):
    from ociruntime.cgroups import gvariant
    assert gvariant.parse(text) == want


@pytest.mark.parametrize("text", ["uint64 -1", "'open", "foo", "[]", "[1, 'a']", "true false",
                                  "byte 256", ""])
def test_gvariant_text_refused(text):
    from ociruntime.cgroups import gvariant
    with pytest.raises(ValueError):
        gvariant.parse(text)


def test_annotation_properties():
    props = systemd.annotation_properties({
        "org.systemd.property.TimeoutStopSec": "uint64 7",   # seconds -> USec, as runc
        "org.systemd.property.CollectMode": "'inactive-or-failed'",
        "org.systemd.property.RuntimeMaxUSec": "uint64 5",   # already USec: as is
        "org.opencontainers.other": "ignored",
    })
    assert [(n, tuple(v)) for n, v in props] == [
        ("CollectMode", ("s", "inactive-or-failed")), ("RuntimeMaxUSec", ("t", 5)),
        ("TimeoutStopUSec", ("t", 7000000))]


@pytest.mark.parametrize("key,value,msg", [
    ("org.systemd.property.Bad_Name", "true", "not a systemd property name"),
    ("org.systemd.property.lower", "true", "not a systemd property name"),
    ("org.systemd.property.CPUWeight", "uint64", "is not a number"),
    ("org.systemd.property.TimeoutStopSec", "'ten'", "not a number of seconds"),
])
def test_annotation_properties_refused(key, value, msg):
    with pytest.raises(OciError, match=msg) as e:
        systemd.annotation_properties({key: value})
    assert key in str(e.value)
