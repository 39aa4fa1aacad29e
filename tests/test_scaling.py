"""Work that grows with the number of things in it (issue 16, item 5;
benchmarks/README.md, "Scaling"): what a command does per container must
stay a fixed, small amount.  Checked as behaviour, never as time: which
files `list` opens per container, under strace."""
import json
import os
import shutil
import subprocess

import pytest

from conftest import RUNTIME
from ocihelpers import wait_status

N = 8   # enough to tell "once per container" from "once" and "twice"

needs_strace = pytest.mark.skipif(not shutil.which("strace"), reason="strace not installed")


def opened(oci, tmp_path, *args):
    """(the command's stdout, every path it opened) of `ociruntime --root
    ROOT args...` under strace -f."""
    trace = tmp_path / "trace"
    r = subprocess.run(["strace", "-f", "-qq", "-e", "trace=open,openat,openat2", "-o", str(trace),
                        RUNTIME, "--root", oci.root, *args], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    paths = []
    for line in trace.read_text().splitlines():
        if '"' in line and "= -1" not in line:
            paths.append(line.split('"')[1])
    return r.stdout, paths


def make_containers(oci):
    """N containers of one bundle: the first half created, the rest
    started, the last of them stopped."""
    b = oci.bundle(args=["sleep", "1000"])
    ids = [oci.new_id() for _ in range(N)]
    for cid in ids:
        r = oci.create("--bundle", b, cid)
        assert r.returncode == 0, r.stderr
    for cid in ids[N // 2:]:
        oci.ok("start", cid)
    oci.ok("kill", ids[-1], "KILL")
    wait_status(oci, ids[-1], "stopped")
    want = {cid: "created" for cid in ids[:N // 2]}
    want.update({cid: "running" for cid in ids[N // 2:-1]})
    want[ids[-1]] = "stopped"
    return b, want


@needs_strace
def test_list_reads_each_container_once(oci, tmp_path):
    """`list` opens each container's state.json once (it parsed each twice:
    once to list it, once for its state) and looks its owner's name up
    once per owner, not once per container (getpwuid reads /etc/passwd)."""
    b, want = make_containers(oci)
    for args in ((), ("--format", "json"), ("-q",)):
        out, paths = opened(oci, tmp_path, "list", *args)
        for cid in want:
            n = paths.count(os.path.join(oci.root, cid, "state.json"))
            assert n == 1, f"list {' '.join(args)}: {cid}/state.json opened {n} times"
        n = paths.count("/etc/passwd")
        assert n <= 1, f"list {' '.join(args)}: /etc/passwd opened {n} times for {N} containers of one owner"
        if args == ("--format", "json"):
            got = {s["id"]: s for s in json.loads(out)}
            assert {cid: s["status"] for cid, s in got.items()} == want
            assert all(s["bundle"] == str(b) for s in got.values())
            assert all((s["pid"] > 0) == (s["status"] != "stopped") for s in got.values())
        elif args == ("-q",):
            assert sorted(out.split()) == sorted(want)
        else:
            rows = [line.split() for line in out.splitlines()]
            assert rows[0] == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
            assert {r[0]: r[2] for r in rows[1:]} == want
            assert all(r[3] == str(b) and r[5] == "root" for r in rows[1:])


def test_list_skips_a_container_deleted_or_damaged_meanwhile(oci):
    """A container whose state.json is gone or damaged is left out of
    `list` (as before), the others are all there."""
    _, want = make_containers(oci)
    ids = list(want)
    damaged, emptied = ids[0], ids[1]
    with open(os.path.join(oci.root, damaged, "state.json"), "w") as f:
        f.write("{not json")
    os.unlink(os.path.join(oci.root, emptied, "state.json"))   # a half-deleted directory
    listed = json.loads(oci.ok("list", "--format", "json").stdout)
    assert sorted(s["id"] for s in listed) == sorted(ids[2:])
    r = oci.ok("list")
    assert damaged not in r.stdout and emptied not in r.stdout and "Traceback" not in r.stderr
