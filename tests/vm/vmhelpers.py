"""Helpers of the VM suite, which runs inside tests/vm/run's guest
(systemd as PID 1, pure cgroup v2), where guest-run sets OCIRUNTIME_VM=1.
Elsewhere each module's `pytestmark = IN_VM_ONLY` skips it with that
reason (./tests/run leaves this folder to tests/vm/run); inside, a guest
that is not that host fails loudly (test_boot.py).

Containers go under the test service's delegated cgroup
(/system.slice/ociruntime-vm.service, Delegate=yes), beside the leaf that
pytest itself runs in, as an engine places its containers.
"""
import json
import os
import subprocess
import time

import pytest

IN_VM = os.environ.get("OCIRUNTIME_VM") == "1"
CG = "/sys/fs/cgroup"


IN_VM_ONLY = pytest.mark.skipif(not IN_VM, reason="runs inside the test VM: use tests/vm/run")
BASE_CONFIG = os.path.join(os.path.dirname(__file__), "..", "..", "bundles", "busybox", "config.json")


def busybox_config(args=None, cid=None):
    """The busybox bundle's config; with cid, in the delegated cgroup."""
    with open(BASE_CONFIG) as f:
        cfg = json.load(f)
    if args is not None:
        cfg["process"]["args"] = list(args)
    if cid is not None:
        cfg["linux"]["cgroupsPath"] = cg_path(cid)
    return cfg


def own_cgroup():
    with open("/proc/self/cgroup") as f:
        for line in f:
            if line.startswith("0::"):
                return line[3:].strip()
    raise AssertionError("no cgroup2 line in /proc/self/cgroup: not a pure cgroup v2 host")


def delegated():
    """The delegated cgroup (the test service's), relative to the root."""
    return os.path.dirname(own_cgroup())


def cg_path(cid):
    """An absolute linux.cgroupsPath for container cid in the delegated cgroup."""
    return f"{delegated()}/{cid}"


def read(path):
    with open(path) as f:
        return f.read().strip()


def kv(path):
    """A flat-keyed cgroup file (memory.events, cpu.stat...) as a dict."""
    out = {}
    for line in read(path).splitlines():
        k, _, v = line.partition(" ")
        out[k] = v
    return out


def state_of(oci, cid):
    with open(os.path.join(oci.root, cid, "state.json")) as f:
        return json.load(f)


def container_dir(oci, cid):
    """The container's cgroup2 directory, from its state."""
    return state_of(oci, cid)["cgroups"][CG]


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def systemctl(*args):
    return subprocess.run(["systemctl", *args], capture_output=True, text=True, timeout=60)


def unit_props(unit, *names):
    r = systemctl("show", unit, *(f"-p{n}" for n in names))
    assert r.returncode == 0, r.stderr
    out = {}
    for line in r.stdout.splitlines():   # a list property is one line per item
        k, _, v = line.partition("=")
        out[k] = f"{out[k]}; {v}" if k in out else v
    return out


def wait_until(cond, what, timeout=60):
    """Poll cond() until true; fail naming what did not happen."""
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def procs(d, n):
    """The pids in cgroup d once there are n of them (a shell forks them)."""
    wait_until(lambda: len(read(f"{d}/cgroup.procs").split()) >= n, f"{n} processes in {d}")
    return read(f"{d}/cgroup.procs").split()
