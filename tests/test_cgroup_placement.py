"""cgroup placement: the init is in <hierarchy>/<cgroupsPath> on every v1
hierarchy and the unified one, before it execs; delete removes what
create made (and nothing else)."""
import os
import time

import pytest

from ocihelpers import Running, cgroup_dir, config, host_cgroups, wait_gone
from ociruntime.cgroups import host_hierarchies


def mountpoints():
    """{controllers field of /proc/PID/cgroup: hierarchy mountpoint}."""
    return {key: mnt for _name, _fstype, key, mnt, _root, _own in host_hierarchies()}


def expected_paths(cgroups_path, cid):
    own = host_cgroups()   # the runtime runs in our cgroups
    # every hierarchy we are in (v1 ones, name=systemd, the unified one)
    assert set(own) == set(mountpoints()), (own, mountpoints())
    out = {}
    for key in own:
        if cgroups_path and cgroups_path.startswith("/"):
            out[key] = cgroups_path
        else:
            out[key] = os.path.normpath(os.path.join(own[key], cgroups_path or cid))
    return out


def check_placement(c, want):
    got = host_cgroups(c.pid)
    mnts = mountpoints()
    assert set(mnts) >= {"", "memory", "pids", "freezer", "devices"} or set(mnts) == {""}
    for key, path in want.items():
        assert got[key] == path, (key, got[key], path)
        with open(os.path.join(mnts[key] + path, "cgroup.procs")) as f:
            assert str(c.pid) in f.read().split(), key
    return [mnts[k] + p for k, p in want.items()]


def test_default_path_is_named_after_the_id_under_our_own_cgroup(oci):
    cfg = config(["sleep", "1000"])
    cfg["linux"].pop("cgroupsPath", None)
    with Running(oci, cfg, start=False) as c:   # placed before exec
        dirs = check_placement(c, expected_paths(None, c.cid))
        oci.ok("start", c.cid)
        check_placement(c, expected_paths(None, c.cid))
        oci.ok("delete", "--force", c.cid)
        assert wait_gone(c.pid)
        for d in dirs:
            assert not os.path.exists(d), d


def test_relative_path_is_under_our_own_cgroup(oci):
    cfg = config(["sleep", "1000"])
    cid_part = oci.new_id()
    cfg["linux"]["cgroupsPath"] = f"{cid_part}/nested/leaf"
    with Running(oci, cfg) as c:
        dirs = check_placement(c, expected_paths(cfg["linux"]["cgroupsPath"], c.cid))
        oci.ok("delete", "--force", c.cid)
        for d in dirs:
            # the whole chain create made is gone, our own cgroup stays
            assert not os.path.exists(d)
            assert not os.path.exists(os.path.dirname(os.path.dirname(d)))
            assert os.path.isdir(os.path.dirname(os.path.dirname(os.path.dirname(d))))


def test_absolute_path_is_from_each_hierarchy_root(oci):
    cfg = config(["sleep", "1000"])
    top = "/" + oci.new_id()
    cfg["linux"]["cgroupsPath"] = top + "/c"
    with Running(oci, cfg) as c:
        dirs = check_placement(c, expected_paths(top + "/c", c.cid))
        oci.ok("delete", "--force", c.cid)
        for d in dirs:
            assert not os.path.exists(d) and not os.path.exists(os.path.dirname(d))


def test_existing_parent_is_kept(oci):
    """A parent cgroup that existed before create is not create's to remove."""
    top = "/" + oci.new_id()
    made = [mnt + top for mnt in mountpoints().values()]
    for d in made:
        os.mkdir(d)
        if d.startswith("/sys/fs/cgroup/cpuset/"):
            for f in ("cpuset.cpus", "cpuset.mems"):
                with open(os.path.join(os.path.dirname(d), f)) as src, open(os.path.join(d, f), "w") as dst:
                    dst.write(src.read())
    try:
        cfg = config(["sleep", "1000"])
        cfg["linux"]["cgroupsPath"] = top + "/c"
        with Running(oci, cfg) as c:
            check_placement(c, expected_paths(top + "/c", c.cid))
            oci.ok("delete", "--force", c.cid)
            for d in made:
                assert os.path.isdir(d) and not os.path.exists(d + "/c")
    finally:
        for d in made:
            if os.path.isdir(d):
                os.rmdir(d)


def test_parent_cpuset_another_create_left_empty(oci):
    """A v1 cpuset parent that exists but is still empty (another create
    made it a moment ago and has not filled it yet: Docker's restarts race
    so) is filled from its own parent, as runc does; else the init cannot
    join below it (ENOSPC)."""
    cpuset = mountpoints().get("cpuset")
    if cpuset is None:
        pytest.skip("no v1 cpuset hierarchy on this host")
    top = "/" + oci.new_id()
    parent = cpuset + top
    os.mkdir(parent)   # cpuset.cpus and cpuset.mems empty, as the kernel makes it
    try:
        with open(os.path.join(parent, "cpuset.cpus")) as f:
            assert f.read().strip() == ""
        cfg = config(["sleep", "1000"])
        cfg["linux"]["cgroupsPath"] = top + "/c"
        with Running(oci, cfg) as c:
            check_placement(c, expected_paths(top + "/c", c.cid))
            oci.ok("delete", "--force", c.cid)
    finally:
        for d in [mnt + top for mnt in mountpoints().values()]:
            if os.path.isdir(d):
                os.rmdir(d)


def test_process_and_children_stay_in_the_cgroup(oci):
    cfg = config(["sh", "-c", "sleep 1000 & exec sleep 1001"])
    with Running(oci, cfg) as c:
        path = cgroup_dir(c.pid)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with open(path + "/cgroup.procs") as f:
                procs = f.read().split()
            if len(procs) == 2:
                break
            time.sleep(0.02)
        assert len(procs) == 2 and str(c.pid) in procs
        oci.ok("delete", "--force", c.cid)
        for p in procs:
            assert wait_gone(int(p))
        assert not os.path.exists(path)


def test_stopped_container_cgroups_removed_by_delete(oci):
    b = oci.bundle(args=["true"])
    cid = oci.new_id()
    r = oci.cmd("run", "--keep", "-b", b, cid)
    assert r.returncode == 0, r.stderr
    dirs = [mountpoints()[k] + p for k, p in expected_paths(None, cid).items()]
    assert all(os.path.isdir(d) for d in dirs)
    oci.ok("delete", cid)
    assert not any(os.path.exists(d) for d in dirs)


@pytest.mark.parametrize("path", ["../../../../../../{}", "/../../{}"])
def test_path_outside_the_hierarchy_is_refused(oci, path):
    cfg = config(["true"])
    cid = oci.new_id()
    cfg["linux"]["cgroupsPath"] = path.format(cid)
    b = oci.bundle(cfg)
    r = oci.create("-b", b, cid)
    if path.startswith("/") and r.returncode == 0:
        # "/../../x" is "/x" from each hierarchy's root, as runc reads it
        for mnt in mountpoints().values():
            assert os.path.isdir(f"{mnt}/{cid}")
        oci.ok("delete", cid)
    else:
        assert r.returncode == 1 and "cgroupsPath" in r.stderr, r.stderr
    for mnt in mountpoints().values():
        assert not os.path.exists(f"{mnt}/{cid}")
        assert not os.path.exists(f"{os.path.dirname(mnt)}/{cid}")


def test_parent_removed_between_plan_and_create_is_made_again(oci):
    """create makes what planned() found missing without looking again;
    a parent that was there then and is gone now (another container's
    delete removed it, empty) is made again in every hierarchy, filled
    (cpuset), recorded as ours, and removed by destroy."""
    from ociruntime import cgroups
    top = "/" + oci.new_id()
    parents = [mnt + top for mnt in mountpoints().values()]
    for d in parents:
        os.mkdir(d)
    m = None
    try:
        m = cgroups.Manager.for_config(top + "/c", "unused")
        planned = m.planned()
        assert sorted(planned) == sorted(d + "/c" for d in parents)   # the parents are there
        for d in parents:
            os.rmdir(d)
        m.create()
        for d in parents:
            assert os.path.isdir(d + "/c") and d in m.created and d + "/c" in m.created, d
        cpuset = mountpoints().get("cpuset")
        if cpuset:
            for name in ("cpuset.cpus", "cpuset.mems"):
                with open(f"{cpuset}{top}/c/{name}") as f:
                    assert f.read().strip(), name
        m.destroy()
        assert not any(os.path.exists(d) for d in parents)
    finally:
        for d in parents:
            for p in (d + "/c", d):
                if os.path.isdir(p):
                    os.rmdir(p)
