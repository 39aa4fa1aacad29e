"""Concurrent calls: what the runtime itself makes them wait for.

Parallel `run`s share the state root's filesystem and the kernel's
cgroup and mount locks; the runtime must not add waits of its own: no
global lock, no fsync, and no more rewrites of state.json than its two
statuses (creating, created).  On ext4 (where /run is no tmpfs, as on
this host) a rename over an existing file flushes the new one to disk
(auto_da_alloc), and delete then frees blocks that were written, with a
discard on a `discard` mount: each extra rewrite is disk I/O that
concurrent containers queue behind (benchmarks/README.md, "parallel")."""
import concurrent.futures
import os
import re
import shutil
import subprocess

import pytest

from conftest import RUNTIME, busybox_config

SYNCS = ("fsync", "fdatasync", "sync_file_range", "syncfs", "sync")


def traced_run(oci, tmp_path, bundle, cid):
    """`run` of a /bin/true container under strace: the renames onto
    state.json and every sync call, from the runtime and its children."""
    if not shutil.which("strace"):
        pytest.skip("needs strace")
    out = tmp_path / f"{cid}.strace"
    r = subprocess.run(["strace", "-f", "-qq", "-o", str(out),
                        "-e", "trace=rename,renameat,renameat2," + ",".join(SYNCS),
                        RUNTIME, "--root", oci.root, "run", "-b", str(bundle), cid],
                       capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    lines = out.read_text().splitlines()
    renames = [l for l in lines if re.search(r"rename\w*\(.*/state\.json\"", l) and " = 0" in l]
    syncs = [l for l in lines if re.search(r"\b(%s)\(" % "|".join(SYNCS), l)]
    return renames, syncs


def test_create_writes_state_json_once_per_status(oci, tmp_path):
    """One write of state.json in create, when the init is ready (the
    record before that is cgroups.json: tests/test_create_cost.py), and
    no sync anywhere in create, start or delete."""
    bundle = oci.bundle(args=["true"])
    renames, syncs = traced_run(oci, tmp_path, bundle, oci.new_id())
    onto = [l for l in renames if re.search(r'/state\.json", ', l) is None]
    assert len(onto) == 1, "\n".join(renames)
    assert syncs == [], "\n".join(syncs)


def test_state_json_is_never_renamed_over(oci, tmp_path):
    """Each new state.json is renamed into a free name: the old one is
    moved aside first.  A rename over it would make ext4 flush the new
    file to disk, and delete wait for the discard of its blocks."""
    bundle = oci.bundle(args=["true"])
    renames, _ = traced_run(oci, tmp_path, bundle, oci.new_id())
    exists = False
    for line in renames:
        src, dst = re.search(r'rename\w*\((?:\w+, )?"([^"]*)", (?:\w+, )?"([^"]*)"', line).groups()
        if src.endswith("/state.json"):
            exists = False
        if dst.endswith("/state.json"):
            assert not exists, f"renamed over an existing state.json:\n" + "\n".join(renames)
            exists = True
    assert exists


def test_a_state_json_moved_aside_is_still_read(oci):
    """Between a save's two renames state.json is aside: commands read it
    there, not "does not exist"."""
    cid = oci.new_id()
    r = oci.create("-b", oci.bundle(args=["sleep", "30"]), cid)
    assert r.returncode == 0, r.stderr
    sdir = os.path.join(oci.root, cid)
    os.rename(os.path.join(sdir, "state.json"), os.path.join(sdir, ".state.json.old"))
    try:
        r = oci.cmd("state", cid)   # the front end sees state.json changed: Python answers
        assert r.returncode == 0, r.stderr
        assert '"status": "created"' in r.stdout
    finally:
        os.rename(os.path.join(sdir, ".state.json.old"), os.path.join(sdir, "state.json"))
    oci.ok("delete", "--force", cid)


def test_parallel_runs_in_one_root_all_succeed_and_leave_nothing(oci):
    """Eight `run`s at once in one state root (the benchmark's parallel
    scenario): each exits 0 with its process's status, and no state
    directory is left (the fixture checks cgroups and mounts)."""
    bundle = oci.bundle(busybox_config(["sh", "-c", "exit 3"]))
    ids = [oci.new_id() for _ in range(16)]

    def run(cid):
        return oci.cmd("run", "-b", bundle, cid, stdin=subprocess.DEVNULL, timeout=120)

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(run, ids))
    assert [r.returncode for r in results] == [3] * len(ids), [r.stderr for r in results if r.returncode != 3]
    assert not any(r.stderr.strip() for r in results), [r.stderr for r in results]
    left = os.listdir(oci.root) if os.path.isdir(oci.root) else []
    assert left == [], left


def _run_imports(oci, cfg):
    env = dict(os.environ, PYTHONPROFILEIMPORTTIME="1")
    r = oci.cmd("run", "-b", oci.bundle(cfg), oci.new_id(), env=env, stdin=subprocess.DEVNULL)
    mods = {line.rsplit("|", 1)[1].strip() for line in r.stderr.splitlines()
            if line.startswith("import time:") and "|" in line}
    assert mods, r.stderr[-500:]
    return r.returncode, mods


def test_run_loads_the_c_core_only_when_it_must_be_a_subreaper(oci):
    """The init is run's own child (CLONE_PARENT) and its pid namespace
    reaps its orphans: `run` of such a container makes no subreaper and
    so does not load the C core's cffi module (about 1 ms of every
    parallel `run`).  Without a pid namespace of its own the container's
    orphans come to `run`, which then is a subreaper, as runc's."""
    code, mods = _run_imports(oci, busybox_config(["sh", "-c", "exit 3"]))
    assert code == 3
    assert "_cffi_backend" not in mods

    cfg = busybox_config(["sh", "-c", "exit 4"])
    cfg["linux"]["namespaces"] = [n for n in cfg["linux"]["namespaces"] if n["type"] != "pid"]
    code, mods = _run_imports(oci, cfg)
    assert code == 4
    assert "_cffi_backend" in mods
