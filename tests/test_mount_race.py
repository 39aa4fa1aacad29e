"""CVE-2021-30465 class, the race form: a read-only mount that ends up
writable because the runtime resolved its destination twice.

Container A shares a volume with container B and flips `vol/ro` between a
directory and a symlink to a mount point of B (`/w`), as fast as it can
(here: a host process exchanging the two names with renameat2).  B binds
the volume at /vol and then a read-only mount at /vol/ro.  The runtime
must resolve /vol/ro once, make the mount on what it resolved, and apply
every later attribute to that same mount: never to whatever the path names
a moment later.  Otherwise the read-only attribute lands on /w, and the
new mount stays writable.

After each create (the swapper paused) the test checks, from outside
(/proc/PID/mountinfo: flags) and from inside (the container's process
tries to write into each of those mounts), that
  * every mount the read-only step made is read-only, and
  * the config's writable mounts (/w, /vol) are still writable;
and that the host directory bound read-only got no file.  A create may
also fail (the destination changed under it): then with one clean line
and nothing left behind.

OCIRUNTIME_RACE_CREATES sets the number of creates per test (default 100;
the old code lost within a few).  How many of them win the race depends on
the machine's load, so the test goes on past that number (up to five
times) until a tenth of it has been made: a pass always checked made
mounts, never only refusals.
"""
import ctypes
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import busybox_config
from ocihelpers import add_userns, assert_one_line_error, wait_for

CREATES = int(os.environ.get("OCIRUNTIME_RACE_CREATES", "100"))

SWAPPER = r"""
import ctypes, sys
libc = ctypes.CDLL(None, use_errno=True)
a, b = sys.argv[1].encode(), sys.argv[2].encode()
f = libc.renameat2
while True:
    f(-100, a, -100, b, 2)   # RENAME_EXCHANGE: vol/ro <-> vol/ro_alt
"""

# Inside: every mount after the first /vol line (the config's last mount),
# outside /proc, /dev and /sys, is one the read-only step made: try to
# write into each.
INSIDE = r"""
awk 'seen && $5 !~ /^\/(proc|dev|sys)(\/|$)/ {print $5} $5 == "/vol" {seen = 1}' /proc/self/mountinfo |
while read -r mp; do
    if touch "$mp/.probe-in" 2>/dev/null; then echo "WROTE $mp"; fi
done
echo done
"""


class Swapper:
    """A host process exchanging vol/ro (a directory) and vol/ro_alt (a
    symlink to /w) in a loop; paused while the test looks."""

    def __init__(self, vol):
        (vol / "ro").mkdir()
        os.symlink("/w", vol / "ro_alt")
        self.proc = subprocess.Popen([sys.executable, "-c", SWAPPER, str(vol / "ro"), str(vol / "ro_alt")])

    def _state(self):
        with open(f"/proc/{self.proc.pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]

    def pause(self):
        os.kill(self.proc.pid, signal.SIGSTOP)
        wait_for(lambda: self._state() == "T", "the swapper to stop")

    def resume(self):
        os.kill(self.proc.pid, signal.SIGCONT)

    def stop(self):
        self.proc.kill()
        self.proc.wait()


def _mountinfo(pid):
    with open(f"/proc/{pid}/mountinfo") as f:
        return [line.split() for line in f]


def _check_outside(pid):
    """(problems) of the container's mount table."""
    lines = _mountinfo(pid)
    problems = []
    firsts = {}
    for fields in lines:
        firsts.setdefault(fields[4], fields)
    for mp in ("/w", "/vol"):
        if mp not in firsts:
            problems.append(f"no mount at {mp}")
        elif "rw" not in firsts[mp][5].split(","):
            problems.append(f"the config's writable mount at {mp} got {firsts[mp][5]}")
    after = False
    for fields in lines:
        mp = fields[4]
        if after and not mp.startswith(("/proc", "/dev", "/sys")):
            if "ro" not in fields[5].split(","):
                problems.append(f"writable mount at {mp} (root {fields[3]}): {fields[5]}")
        if mp == "/vol":
            after = True
    return problems


def _race(oci, tmp_path, mounts_after, linux_extra=None, host_ro=None, submount=False):
    """Runs CREATES creates against the swapper; asserts the invariants."""
    w, vol = tmp_path / "w", tmp_path / "vol"
    w.mkdir()
    vol.mkdir()
    cfg = busybox_config(["sh", "-c", INSIDE])
    cfg["mounts"] += [
        {"destination": "/w", "type": "bind", "source": str(w), "options": ["rbind", "rw"]},
        {"destination": "/vol", "type": "bind", "source": str(vol), "options": ["rbind", "rw"]},
    ] + mounts_after
    cfg["linux"].update(linux_extra or {})
    bundle = oci.bundle(cfg)
    swapper = Swapper(vol)
    made = failed = 0
    wanted = CREATES // 10 + 1
    try:
        for i in range(CREATES * 5):
            if i >= CREATES and made >= wanted:
                break
            cid = oci.new_id("ociruntime-race")
            r = oci.create("-b", bundle, cid)
            swapper.pause()
            try:
                if r.returncode != 0:
                    failed += 1
                    assert_one_line_error(r, "possibly malicious path")
                    assert not os.path.isdir(os.path.join(oci.root, cid)), f"create {i} left its state"
                    continue
                made += 1
                pid = oci.state(cid)["pid"]
                problems = _check_outside(pid)
                assert not problems, f"create {i}: {problems}"
                oci.ok("start", cid)
                wait_for(lambda: oci.state(cid)["status"] == "stopped", "the container to exit")
                with open(oci.tmp / f"create{oci._n}.out") as f:
                    out = f.read()
                assert "done" in out and "WROTE" not in out, f"create {i}: inside: {out}"
                oci.ok("delete", cid)
                if host_ro is not None:
                    assert sorted(p.name for p in host_ro.rglob("*")) == (["sub"] if submount else []), \
                        f"create {i}: the read-only host directory was written"
            finally:
                swapper.resume()
    finally:
        swapper.stop()
    print(f"{made} made, {failed} refused of {made + failed}")
    assert made >= wanted, f"only {made} of {made + failed} creates succeeded (last error: {r.stderr})"


def test_bind_ro_holds_against_a_swapped_destination(oci, tmp_path):
    host = tmp_path / "host-ro"
    host.mkdir()
    _race(oci, tmp_path, [{"destination": "/vol/ro", "type": "bind", "source": str(host),
                           "options": ["bind", "ro"]}], host_ro=host)


def test_rbind_rro_holds_against_a_swapped_destination(oci, tmp_path):
    """rro applies to the mount and its submounts: a tmpfs under the host
    directory is read-only in the container too."""
    host = tmp_path / "host-rro"
    (host / "sub").mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "race-sub", str(host / "sub")], check=True)
    try:
        _race(oci, tmp_path, [{"destination": "/vol/ro", "type": "bind", "source": str(host),
                               "options": ["rbind", "rro"]}], host_ro=host, submount=True)
        assert list((host / "sub").iterdir()) == []
    finally:
        subprocess.run(["umount", "-l", str(host / "sub")])


def test_rro_of_a_tmpfs_holds_against_a_swapped_destination(oci, tmp_path):
    """Not a bind: mount(2) onto the resolved fd, then the recursive
    attributes go to the mount made, found again and checked."""
    _race(oci, tmp_path, [{"destination": "/vol/ro", "type": "tmpfs", "source": "tmpfs",
                           "options": ["rro"]}])


def test_readonly_paths_hold_against_a_swapped_destination(oci, tmp_path):
    """linux.readonlyPaths inside a shared volume (runc loses this one
    too): the bind it makes is read-only, wherever /vol/ro led."""
    cfg_ro = busybox_config()["linux"]["readonlyPaths"] + ["/vol/ro"]
    _race(oci, tmp_path, [], {"readonlyPaths": cfg_ro})
