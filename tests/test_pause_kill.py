"""pause, resume, kill and state of a paused container, as runc 1.1.5 does
them (checked on this host):

  pause of a created container     state says paused; start and delete refuse;
                                   resume makes it created again
  pause of a paused container      "container not running", exit 1
  resume of a running one          "container not paused", exit 1
  kill ID KILL of a paused one     kills it (the v1 freezer is thawed after the
                                   signal, or the frozen init never dies)
  kill ID TERM of a paused one     delivered; it stays paused
  kill --all of a paused one       freeze, signal every process, thaw: it
                                   runs again (KILL: it is stopped)
  delete of a paused one           "cannot delete container ID that is not
                                   stopped: paused"; --force removes it

Each lifecycle runs through the C front end and through Python
(OCIRUNTIME_NO_FAST=1): both must give the same answers.  A v1 freezer
with child cgroups (systemd or docker inside) pauses and resumes whole.
"""
import json
import os

import pytest

from conftest import busybox_config
from ocihelpers import assert_one_line_error, pid_alive, wait_for, wait_gone, wait_status
from ociruntime import cgroups

LAYOUT = cgroups.Layout.probe()
pytestmark = pytest.mark.skipif("freezer" not in LAYOUT.v1 and not LAYOUT.v2, reason="no freezer")

PATHS = ["fast", "python"]


def env_for(path):
    return dict(os.environ, OCIRUNTIME_NO_FAST="1" if path == "python" else "0")


def make(oci, args=("sleep", "1000"), start=True, cfg=None):
    cfg = cfg or busybox_config(list(args))
    cid = oci.new_id()
    r = oci.create("-b", oci.bundle(cfg), cid)
    assert r.returncode == 0, r.stderr
    if start:
        oci.ok("start", cid)
    return cid, oci.state(cid)["pid"]


def status(oci, cid, path):
    r = oci.cmd("state", cid, env=env_for(path))
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["status"]


def freezer_state(oci, cid):
    with open(os.path.join(oci.root, cid, "state.json")) as f:
        paths = json.load(f)["cgroups"]
    if "freezer" in LAYOUT.v1:
        with open(paths[LAYOUT.v1["freezer"]] + "/freezer.state") as f:
            return f.read().strip()
    with open(paths[LAYOUT.v2] + "/cgroup.freeze") as f:
        return {"1": "FROZEN", "0": "THAWED"}[f.read().strip()]


@pytest.mark.parametrize("path", PATHS)
def test_pause_of_a_created_container(oci, path):
    cid, pid = make(oci, start=False)
    env = env_for(path)
    oci.ok("pause", cid)
    assert status(oci, cid, path) == "paused"
    assert_one_line_error(oci.cmd("start", cid, env=env), "cannot start a container in the paused state")
    assert_one_line_error(oci.cmd("delete", cid, env=env),
                          f"cannot delete container {cid} that is not stopped: paused")
    assert pid_alive(pid)
    oci.ok("resume", cid)
    assert status(oci, cid, path) == "created"
    assert freezer_state(oci, cid) == "THAWED"
    r = oci.cmd("start", cid, env=env)
    assert r.returncode == 0, r.stderr
    assert status(oci, cid, path) == "running"
    def cmdline():
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    assert wait_for(lambda: cmdline() == b"sleep\x001000\x00")   # the process did start
    oci.ok("delete", "--force", cid)


def test_pause_twice_and_resume_twice_are_errors(oci):
    cid, pid = make(oci)
    assert_one_line_error(oci.cmd("resume", cid), "container not paused")
    oci.ok("pause", cid)
    assert_one_line_error(oci.cmd("pause", cid), "container not running")
    assert oci.state(cid)["status"] == "paused" and freezer_state(oci, cid) == "FROZEN"
    oci.ok("resume", cid)
    assert_one_line_error(oci.cmd("resume", cid), "container not paused")
    assert oci.state(cid)["status"] == "running"
    oci.ok("delete", "--force", cid)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("started", [True, False], ids=["running", "created"])
def test_kill_9_of_a_paused_container_kills_it(oci, path, started):
    cid, pid = make(oci, start=started)
    oci.ok("pause", cid)
    r = oci.cmd("kill", cid, "KILL", env=env_for(path))
    assert r.returncode == 0, r.stderr
    assert wait_gone(pid), "the paused init survived SIGKILL"
    assert status(oci, cid, path) == "stopped"
    r = oci.cmd("delete", cid, env=env_for(path))   # no --force needed: it is stopped
    assert r.returncode == 0, r.stderr
    assert not os.path.exists(os.path.join(oci.root, cid))


@pytest.mark.parametrize("path", PATHS)
def test_kill_term_of_a_paused_container_keeps_it_paused(oci, path):
    cid, pid = make(oci, args=("sh", "-c", "trap 'exit 3' TERM; while :; do sleep 0.1; done"))
    oci.ok("pause", cid)
    r = oci.cmd("kill", cid, "TERM", env=env_for(path))
    assert r.returncode == 0, r.stderr
    assert status(oci, cid, path) == "paused" and pid_alive(pid)
    oci.ok("resume", cid)   # the pending TERM is handled now
    assert wait_gone(pid)
    assert status(oci, cid, path) == "stopped"
    oci.ok("delete", cid)


def test_kill_all_of_a_paused_container(oci):
    # No pid namespace: every process must be signalled, not only the init.
    cfg = busybox_config(["sh", "-c", "trap '' TERM; sleep 1000 & sleep 1000 & wait"])
    cfg["linux"]["namespaces"] = [n for n in cfg["linux"]["namespaces"] if n["type"] != "pid"]
    cid, pid = make(oci, cfg=cfg)
    assert wait_for(lambda: len(json.loads(oci.ok("ps", "--format", "json", cid).stdout)) == 3)
    pids = json.loads(oci.ok("ps", "--format", "json", cid).stdout)
    oci.ok("pause", cid)
    # TERM (ignored by all three): runc freezes, signals, thaws -- running again
    oci.ok("kill", "--all", cid, "TERM")
    assert oci.state(cid)["status"] == "running" and all(pid_alive(p) for p in pids)
    oci.ok("pause", cid)
    oci.ok("kill", "--all", cid, "KILL")
    for p in pids:
        assert wait_gone(p), f"{p} survived kill --all KILL of the paused container"
    assert wait_status(oci, cid, "stopped")["status"] == "stopped"
    oci.ok("delete", cid)


@pytest.mark.parametrize("path", PATHS)
def test_delete_force_of_a_paused_container(oci, path):
    cid, pid = make(oci)
    oci.ok("pause", cid)
    r = oci.cmd("delete", "--force", cid, env=env_for(path))
    assert r.returncode == 0, r.stderr
    assert wait_gone(pid)
    assert not os.path.exists(os.path.join(oci.root, cid))


# -- a v1 freezer with child cgroups ----------------------------------------------------

def child_cgroups(oci, cid, pid, made, name="inner"):
    """Make <container cgroup>/<name> in every hierarchy (as systemd or
    dockerd inside would) and move pid into it; adds the new directories
    to made (remove_children removes them if delete did not)."""
    with open(os.path.join(oci.root, cid, "state.json")) as f:
        paths = json.load(f)["cgroups"]
    for mnt, d in paths.items():
        child = os.path.join(d, name)
        os.mkdir(child)
        made.append(child)
        if mnt == LAYOUT.v1.get("cpuset"):
            for f in ("cpuset.cpus", "cpuset.mems"):
                with open(os.path.join(d, f)) as src, open(os.path.join(child, f), "w") as dst:
                    dst.write(src.read())
        with open(child + "/cgroup.procs", "w") as f:
            f.write(str(pid))


def remove_children(oci, cid, made):
    """After a failed test: the container gone, then the child cgroups
    (deepest first), so that the fixture can remove the rest."""
    oci.cmd("delete", "--force", cid)
    for d in sorted(made, key=len, reverse=True):
        try:
            os.rmdir(d)
        except OSError:
            pass


@pytest.mark.skipif("freezer" not in LAYOUT.v1, reason="no v1 freezer")
def test_pause_resume_with_child_cgroups_on_the_v1_freezer(oci):
    cid, pid = make(oci, args=("sh", "-c", "sleep 1000 & wait"))
    assert wait_for(lambda: len(json.loads(oci.ok("ps", "--format", "json", cid).stdout)) == 2)
    kid = [p for p in json.loads(oci.ok("ps", "--format", "json", cid).stdout) if p != pid][0]
    made = []
    try:
        _pause_resume_kill_with_children(oci, cid, pid, kid, made)
    finally:
        remove_children(oci, cid, made)


def _pause_resume_kill_with_children(oci, cid, pid, kid, made):
    child_cgroups(oci, cid, kid, made)
    child_freezer = next(d for d in made if d.startswith(LAYOUT.v1["freezer"] + "/"))
    # ps sees the process in the child cgroup too (runc's GetAllPids walks the tree)
    assert sorted(json.loads(oci.ok("ps", "--format", "json", cid).stdout)) == sorted([pid, kid])
    oci.ok("pause", cid)
    assert oci.state(cid)["status"] == "paused"
    with open(child_freezer + "/freezer.state") as f:
        assert f.read().strip() == "FROZEN"
    oci.ok("resume", cid)
    assert oci.state(cid)["status"] == "running"
    with open(child_freezer + "/freezer.state") as f:
        assert f.read().strip() == "THAWED"
    oci.ok("pause", cid)
    oci.ok("kill", cid, "KILL")
    assert wait_gone(pid) and wait_gone(kid)
    r = oci.cmd("delete", cid)
    assert r.returncode == 0, r.stderr
    assert not any(os.path.exists(d) for d in made)
