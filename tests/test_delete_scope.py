"""delete touches only what is the container's, and is quick about it.

Containers A and B live under one parent cgroup that A's create made
(linux.cgroupsPath /<parent>/<id>, as Docker's --cgroup-parent and CRI pods
place them).  Deleting A -- created, stopped, or running or paused with
--force -- removes A's cgroups and state and leaves B running, unfrozen,
in its cgroups; the parent stays while B uses it (runc never removes it;
we remove it once it is empty, if A's create made it).  Nothing is
written into the parent: on cgroup2 a cgroup.kill there would kill B.

Child cgroups that the container's processes made (systemd or dockerd
inside) go with the container, with the processes in them.
"""
import json
import os
import signal
import subprocess
import uuid

import pytest

from conftest import busybox_config
from ocihelpers import pid_alive, wait_for, wait_gone
from ociruntime import cgroups
from ociruntime.errors import OciError

LAYOUT = cgroups.Layout.probe()
HIERARCHIES = [mnt for _n, _t, _k, mnt, _r, _o in cgroups.host_hierarchies()]


def cgroup_paths(oci, cid):
    with open(os.path.join(oci.root, cid, "state.json")) as f:
        return json.load(f)["cgroups"]


def procs(d):
    with open(d + "/cgroup.procs") as f:
        return [int(p) for p in f.read().split()]


def container(oci, cgroups_path, args=("sleep", "1000"), start=True, pidns=True):
    cfg = busybox_config(list(args))
    cid = oci.new_id()
    cfg["linux"]["cgroupsPath"] = cgroups_path.format(id=cid)
    if not pidns:
        cfg["linux"]["namespaces"] = [n for n in cfg["linux"]["namespaces"] if n["type"] != "pid"]
    r = oci.create("-b", oci.bundle(cfg), cid)
    assert r.returncode == 0, r.stderr
    if start:
        oci.ok("start", cid)
    return cid, oci.state(cid)["pid"]


@pytest.fixture
def parent(oci):
    """/<parent> in every hierarchy: the test's containers go under it;
    whatever is left of it is removed after the test (containers first)."""
    top = "/ocitest-parent-" + uuid.uuid4().hex[:8]
    yield top
    for cid in oci.ids:
        oci.cmd("delete", "--force", cid)
    for mnt in HIERARCHIES:
        d = mnt + top
        for sub, _dirs, _files in sorted(os.walk(d), key=lambda w: len(w[0]), reverse=True):
            try:
                os.rmdir(sub)
            except OSError:
                pass


def assert_untouched(oci, cid, pid):
    """B: running, not frozen, its init alive in each of its cgroups."""
    st = oci.state(cid)
    assert st["status"] == "running" and st["pid"] == pid and pid_alive(pid), st
    for mnt, d in cgroup_paths(oci, cid).items():
        assert pid in procs(d), f"{pid} is no longer in {d}"
        if os.path.exists(d + "/freezer.state"):
            with open(d + "/freezer.state") as f:
                assert f.read().strip() == "THAWED"
        if os.path.exists(d + "/cgroup.freeze"):
            with open(d + "/cgroup.freeze") as f:
                assert f.read().strip() == "0"


@pytest.mark.parametrize("how", ["created", "stopped", "running-force", "paused-force"])
def test_delete_leaves_the_sibling_alone(oci, parent, how):
    a, apid = container(oci, parent + "/{id}", start=how != "created")
    adirs = list(cgroup_paths(oci, a).values())
    assert all(os.path.isdir(d) for d in adirs)
    b, bpid = container(oci, parent + "/{id}")
    if how == "stopped":
        oci.ok("kill", a, "KILL")
        assert wait_gone(apid)
    if how == "paused-force":
        if "freezer" not in LAYOUT.v1 and not LAYOUT.v2:
            pytest.skip("no freezer")
        oci.ok("pause", a)
    r = oci.cmd("delete", *(["--force"] if how.endswith("force") else []), a)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    assert not os.path.exists(os.path.join(oci.root, a))
    assert wait_gone(apid)
    assert not [d for d in adirs if os.path.exists(d)]
    assert_untouched(oci, b, bpid)
    for mnt in HIERARCHIES:
        assert os.path.isdir(mnt + parent)   # B is in it
    oci.ok("delete", "--force", b)
    assert wait_gone(bpid)


def test_empty_parent_made_by_the_container_goes_with_it(oci, parent):
    a, _ = container(oci, parent + "/{id}")   # A's create makes the parent
    b, _ = container(oci, parent + "/{id}")
    oci.ok("delete", "--force", b)             # not B's: B leaves it
    assert all(os.path.isdir(mnt + parent) for mnt in HIERARCHIES)
    oci.ok("delete", "--force", a)             # A's, and empty now
    assert not [mnt for mnt in HIERARCHIES if os.path.exists(mnt + parent)]


# -- child cgroups made inside the container's -------------------------------------------

def child_cgroups(oci, cid, pid, made, name="inner/deeper"):
    """Make <container cgroup>/<name> in every hierarchy (as systemd or
    dockerd inside would) and, if pid, move it there; the new directories
    go into made, deepest first, for the test's clean-up."""
    for mnt, d in cgroup_paths(oci, cid).items():
        child = d
        for part in name.split("/"):
            child = os.path.join(child, part)
            os.mkdir(child)
            made.insert(0, child)
            if mnt == LAYOUT.v1.get("cpuset"):
                for f in ("cpuset.cpus", "cpuset.mems"):
                    with open(os.path.join(os.path.dirname(child), f)) as src, \
                            open(os.path.join(child, f), "w") as dst:
                        dst.write(src.read())
        if pid:
            with open(child + "/cgroup.procs", "w") as f:
                f.write(str(pid))


@pytest.fixture
def made(oci):
    """The child cgroups a test makes; after it, whatever is left of them
    is thawed, emptied (their processes are the test's) and removed."""
    dirs = []
    yield dirs
    for cid in oci.ids:
        oci.cmd("delete", "--force", cid)
    for d in sorted(dirs, key=len):
        if os.path.exists(d + "/freezer.state"):
            with open(d + "/freezer.state", "w") as f:
                f.write("THAWED")
    for d in dirs:
        for p in procs(d) if os.path.isdir(d) else ():
            os.kill(p, signal.SIGKILL)
            wait_gone(p)
    for d in sorted(dirs, key=len, reverse=True):
        try:
            os.rmdir(d)
        except OSError:
            pass


@pytest.mark.parametrize("pidns", [True, False], ids=["pidns", "no-pidns"])
def test_delete_force_removes_child_cgroups_and_their_processes(oci, made, pidns):
    cid, pid = container(oci, "{id}", args=("sh", "-c", "sleep 1000 & wait"), pidns=pidns)
    assert wait_for(lambda: len(json.loads(oci.ok("ps", "--format", "json", cid).stdout)) == 2)
    kid = [p for p in json.loads(oci.ok("ps", "--format", "json", cid).stdout) if p != pid][0]
    child_cgroups(oci, cid, kid, made)
    r = oci.cmd("delete", "--force", cid)
    assert r.returncode == 0, r.stderr
    assert wait_gone(pid) and wait_gone(kid)
    assert not [d for d in made if os.path.exists(d)]
    assert not os.path.exists(os.path.join(oci.root, cid))


def test_kill_all_reaches_processes_in_child_cgroups(oci, made):
    cid, pid = container(oci, "{id}", args=("sh", "-c", "sleep 1000 & wait"), pidns=False)
    assert wait_for(lambda: len(json.loads(oci.ok("ps", "--format", "json", cid).stdout)) == 2)
    kid = [p for p in json.loads(oci.ok("ps", "--format", "json", cid).stdout) if p != pid][0]
    child_cgroups(oci, cid, kid, made)
    assert sorted(json.loads(oci.ok("ps", "--format", "json", cid).stdout)) == sorted([pid, kid])
    oci.ok("kill", "--all", cid, "KILL")
    assert wait_gone(pid) and wait_gone(kid)
    r = oci.cmd("delete", cid)
    assert r.returncode == 0, r.stderr
    assert not [d for d in made if os.path.exists(d)]


def test_delete_of_a_stopped_container_removes_empty_child_cgroups(oci, made):
    cid, pid = container(oci, "{id}")
    child_cgroups(oci, cid, None, made)
    oci.ok("kill", cid, "KILL")
    assert wait_gone(pid)
    r = oci.cmd("delete", cid)
    assert r.returncode == 0, r.stderr
    assert not [d for d in made if os.path.exists(d)]
    assert not os.path.exists(os.path.join(oci.root, cid))


# -- cgroup2 on its own: cgroup.kill and cgroup.freeze stay in the container's cgroup -----

@pytest.fixture
def v2_parent():
    if not LAYOUT.v2:
        pytest.skip("no cgroup2 mount")
    top = os.path.join(LAYOUT.v2, "ocitest-parent-" + uuid.uuid4().hex[:8])
    procs_ = []
    yield top, procs_
    for p in procs_:
        if p.poll() is None:
            p.kill()
        p.wait()
    for sub, _dirs, _files in sorted(os.walk(top), key=lambda w: len(w[0]), reverse=True):
        try:
            os.rmdir(sub)
        except OSError:
            pass


def test_v2_kill_freeze_and_destroy_spare_the_sibling(v2_parent):
    top, started = v2_parent
    layout = cgroups.Layout(v2=LAYOUT.v2)
    a = cgroups.Manager({LAYOUT.v2: top + "/a"}, layout=layout)
    b = cgroups.Manager({LAYOUT.v2: top + "/b"}, layout=layout)
    a.create()
    b.create()
    assert a.created == [top, top + "/a"] and b.created == [top + "/b"]
    for mgr in (a, b):
        p = subprocess.Popen(["sleep", "1000"])
        started.append(p)
        mgr.join(p.pid)
    pa, pb = started
    if os.path.exists(top + "/a/cgroup.freeze"):
        a.freeze()
        assert not b.frozen()
        with open(top + "/cgroup.freeze") as f:
            assert f.read().strip() == "0"
    a.kill_all(signal.SIGKILL)
    assert pa.wait(10) == -signal.SIGKILL
    try:
        a.destroy()
        err = None
    except OciError as e:
        err = e
    assert pb.poll() is None, "a's delete killed its sibling"
    assert err is None, err
    assert not os.path.exists(top + "/a")
    assert procs(top + "/b") == [pb.pid]
    assert os.path.isdir(top)   # b is in it
    b.kill_all(signal.SIGKILL)
    assert pb.wait(10) == -signal.SIGKILL
    b.destroy()
    assert not os.path.exists(top + "/b") and os.path.isdir(top)   # not b's to remove


@pytest.mark.skipif("freezer" not in LAYOUT.v1, reason="no v1 freezer")
@pytest.mark.parametrize("how", ["delete-force", "kill-all"])
def test_a_child_cgroup_frozen_on_its_own_does_not_keep_its_processes(oci, made, how):
    """A paused container of a docker inside: its child freezer cgroup is
    FROZEN by itself, and thawing the container's does not thaw it.
    SIGKILL must still end what is in it."""
    cid, pid = container(oci, "{id}", args=("sh", "-c", "sleep 1000 & wait"), pidns=False)
    assert wait_for(lambda: len(json.loads(oci.ok("ps", "--format", "json", cid).stdout)) == 2)
    kid = [p for p in json.loads(oci.ok("ps", "--format", "json", cid).stdout) if p != pid][0]
    child_cgroups(oci, cid, kid, made)
    child = next(d for d in made if d.startswith(LAYOUT.v1["freezer"] + "/") and d.endswith("deeper"))
    with open(child + "/freezer.state", "w") as f:
        f.write("FROZEN")
    if how == "kill-all":
        oci.ok("kill", "--all", cid, "KILL")
        assert wait_gone(pid) and wait_gone(kid)
        r = oci.cmd("delete", cid)
    else:
        r = oci.cmd("delete", "--force", cid)
    assert r.returncode == 0, r.stderr
    assert wait_gone(pid) and wait_gone(kid)
    assert not [d for d in made if os.path.exists(d)]
