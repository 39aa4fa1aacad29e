"""Time namespace (config-linux.md linux.timeOffsets): the container's
process sees CLOCK_MONOTONIC and CLOCK_BOOTTIME shifted by the offsets.

The init unshares CLONE_NEWTIME before its hello (the runtime writes
timens_offsets then) and only its exec moves it into the new namespace
(time_for_children), so the check is what the *process* sees.  A small
static program (built here with the host's gcc) prints both clocks."""
import os
import shutil
import subprocess

import pytest

from conftest import busybox_config

CLOCK_C = r"""
#include <stdio.h>
#include <time.h>
int main(void) {
    struct timespec m, b;
    clock_gettime(CLOCK_MONOTONIC, &m);
    clock_gettime(CLOCK_BOOTTIME, &b);
    printf("%lld %lld\n", (long long)m.tv_sec, (long long)b.tv_sec);
    return 0;
}
"""
MONO, BOOT = 1_000_000, 2_000_000   # seconds: days, far beyond any drift


@pytest.fixture(scope="module")
def clock_bin(tmp_path_factory):
    if not shutil.which("gcc"):
        pytest.skip("needs gcc to build the clock probe")
    d = tmp_path_factory.mktemp("clock")
    (d / "clock.c").write_text(CLOCK_C)
    r = subprocess.run(["gcc", "-static", "-O2", "-o", str(d / "clock"), str(d / "clock.c")],
                       capture_output=True, text=True)
    if r.returncode:
        pytest.skip(f"cannot build a static probe: {r.stderr[:200]}")
    return d / "clock"


def _host_clocks():
    import time
    return int(time.clock_gettime(time.CLOCK_MONOTONIC)), int(time.clock_gettime(time.CLOCK_BOOTTIME))


def _timens_cfg(args, offsets):
    cfg = busybox_config(args)
    cfg["linux"]["namespaces"].append({"type": "time"})
    cfg["linux"]["timeOffsets"] = offsets
    return cfg


def _run_probe(oci, cfg, clock_bin):
    b = oci.bundle(cfg)
    shutil.copy(clock_bin, b / "rootfs" / "clock")
    before = _host_clocks()
    r = oci.cmd("run", "-b", b, oci.new_id())
    after = _host_clocks()
    assert r.returncode == 0, r.stderr
    return before, [int(x) for x in r.stdout.split()], after


def test_process_sees_monotonic_and_boottime_offsets(oci, clock_bin):
    """config-linux.md timeOffsets: "offset for monotonic/boottime"; the
    process's clocks are the host's plus the offsets."""
    cfg = _timens_cfg(["/clock"], {"monotonic": {"secs": MONO}, "boottime": {"secs": BOOT}})
    before, (mono, boot), after = _run_probe(oci, cfg, clock_bin)
    assert before[0] + MONO <= mono <= after[0] + MONO
    assert before[1] + BOOT <= boot <= after[1] + BOOT


def test_one_clock_only(oci, clock_bin):
    """An offset for one clock leaves the other as the host's."""
    cfg = _timens_cfg(["/clock"], {"boottime": {"secs": BOOT, "nanosecs": 500}})
    before, (mono, boot), after = _run_probe(oci, cfg, clock_bin)
    assert before[0] <= mono <= after[0]
    assert before[1] + BOOT <= boot <= after[1] + BOOT + 1


def test_negative_offset(oci, clock_bin):
    """Offsets may be negative (as long as the clock stays positive)."""
    up = _host_clocks()[0]
    cfg = _timens_cfg(["/clock"], {"monotonic": {"secs": -(up // 2)}})
    before, (mono, boot), after = _run_probe(oci, cfg, clock_bin)
    assert before[0] - up // 2 <= mono <= after[0] - up // 2


def test_uptime_and_offsets_file_inside(oci):
    """/proc/uptime (boottime) and /proc/self/timens_offsets inside show the
    offsets; the process is in a time namespace of its own."""
    cfg = _timens_cfg(["sh", "-c", "cut -d. -f1 /proc/uptime; cat /proc/self/timens_offsets; "
                       "readlink /proc/self/ns/time"],
                      {"monotonic": {"secs": MONO}, "boottime": {"secs": BOOT}})
    code, out, err = oci.run_output(cfg=cfg)
    assert code == 0, err
    lines = out.splitlines()
    assert int(lines[0]) >= BOOT
    offsets = {l.split()[0]: int(l.split()[1]) for l in lines[1:3]}
    assert offsets == {"monotonic": MONO, "boottime": BOOT}
    assert lines[3] != os.readlink("/proc/self/ns/time")


def test_time_namespace_without_offsets(oci):
    """A new time namespace without offsets: the clocks are the host's."""
    cfg = busybox_config(["sh", "-c", "readlink /proc/self/ns/time; cat /proc/self/timens_offsets"])
    cfg["linux"]["namespaces"].append({"type": "time"})
    code, out, err = oci.run_output(cfg=cfg)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] != os.readlink("/proc/self/ns/time")
    assert {l.split()[0]: int(l.split()[1]) for l in lines[1:3]} == {"monotonic": 0, "boottime": 0}


def test_offsets_in_a_user_namespace(oci, clock_bin):
    from ocihelpers import add_userns
    cfg = add_userns(_timens_cfg(["/clock"], {"monotonic": {"secs": MONO}}), oci=oci)
    before, (mono, boot), after = _run_probe(oci, cfg, clock_bin)
    assert before[0] + MONO <= mono <= after[0] + MONO


def test_offsets_need_a_time_namespace(oci):
    """config-linux.md: timeOffsets go with a new time namespace."""
    cfg = busybox_config(["true"])
    cfg["linux"]["timeOffsets"] = {"monotonic": {"secs": 5}}
    code, out, err = oci.run_output(cfg=cfg)
    assert code == 1
    assert "timeOffsets" in err
    assert oci.ok("list", "-q").stdout == ""
