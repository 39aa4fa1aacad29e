"""The container init is ociruntime-init, a small C program (csrc/spawn.c),
not a copy of the Python runtime: what waits between create and start has
no Python in it, gets exactly the fds its plan names, and still makes new
user namespaces, joins namespaces (through an intermediate) and is born in
its cgroup2 directory."""
import os
import re
import subprocess
from pathlib import Path

import pytest

from conftest import REPO, RUNTIME, busybox_config
from ocihelpers import Running, add_userns, host_cgroups, ns_link, proc_status, set_ns, wait_for
from ociruntime import core
from ociruntime.errors import OciError

CORE_H = REPO / "csrc" / "core.h"


def _maps(pid):
    return Path(f"/proc/{pid}/maps").read_text()


def test_waiting_init_is_the_small_c_program(oci):
    cfg = busybox_config(["sleep", "1000"])
    with Running(oci, cfg, start=False) as c:
        # ociruntime-init, from a sealed copy (see test_init_runs_from_a_sealed_copy).
        assert os.readlink(f"/proc/{c.pid}/exe").startswith("/memfd:ociruntime-init")
        maps = _maps(c.pid)
        for lib in ("python", "_cffi_backend", "_core", "libffi"):
            assert lib not in maps, f"{lib} is mapped in the waiting init"
        # Its command line names the container (ps, leak checks).
        argv = Path(f"/proc/{c.pid}/cmdline").read_bytes().split(b"\0")
        assert argv[-3:-1] == [oci.root.encode(), c.cid.encode()]
        # Little touched memory: C and libc, no interpreter heap (1.5 MiB
        # here, against 5 for the fork of Python it replaces).
        assert int(proc_status(c.pid)["VmRSS"].split()[0]) < 3 * 1024
        oci.ok("start", c.cid)
        wait_for(lambda: not os.readlink(f"/proc/{c.pid}/exe").startswith("/memfd:"), "the exec")
        # The exe link changes before the kernel lays out the new
        # arguments: cmdline reads empty for that moment.
        wait_for(lambda: Path(f"/proc/{c.pid}/cmdline").read_bytes() == b"sleep\x001000\x00",
                 "the process's command line")


def _create_with_fds(oci, args, fds):
    """`ociruntime create ARGS` with each {number: fd} open at that number;
    stdio on files (the init keeps them)."""
    def place():
        for num, fd in fds.items():
            os.dup2(fd, num)   # dup2 clears close-on-exec
    with open(oci.tmp / "create.out", "w") as out, open(oci.tmp / "create.err", "w+") as err:
        r = subprocess.run([RUNTIME, "--root", oci.root, "create", *map(str, args)],
                           preexec_fn=place, pass_fds=tuple(fds), stdin=subprocess.DEVNULL,
                           stdout=out, stderr=err, timeout=60)
        err.seek(0)
        assert r.returncode == 0, err.read()


def test_fds_reach_the_init_with_their_numbers(oci):
    """Preserved fds keep their numbers, the exec fifo is there; none of
    the runtime's own (lock, sync and plan pipes) is."""
    r, w = os.pipe()
    extra = os.open("/etc/hostname", os.O_RDONLY)
    b = oci.bundle(busybox_config(["sleep", "1000"]))
    cid = oci.new_id()
    try:
        _create_with_fds(oci, ["--preserve-fds", "2", "-b", b, cid], {3: r, 4: extra, 6: extra})
        pid = oci.state(cid)["pid"]
        fd_dir = f"/proc/{pid}/fd"
        links = {int(n): os.readlink(f"{fd_dir}/{n}") for n in os.listdir(fd_dir)}
        for num, fd in ((3, r), (4, extra)):
            theirs, ours = os.stat(f"{fd_dir}/{num}"), os.fstat(fd)
            assert (theirs.st_dev, theirs.st_ino) == (ours.st_dev, ours.st_ino)
        # Above the caller's (subprocess passes only these): the fifo and
        # the cgroup2 directory it was born in.  No sync pipe (closed once
        # created), no plan pipe, no lock.
        ours = {n: t for n, t in links.items() if n > 6}
        assert any(t.endswith(f"/{cid}/exec.fifo") for t in ours.values()), links
        assert all(t.endswith(f"/{cid}/exec.fifo") or t.startswith("/sys/fs/cgroup/")
                   for t in ours.values()), links
    finally:
        for fd in (r, w, extra):
            os.close(fd)
        oci.cmd("delete", "--force", cid)


def test_user_namespace_create_and_exec(oci):
    """ociruntime-init clones straight into the new user namespace: the
    process keeps its capabilities there (an exec after that clone would
    have dropped them all), for the init and for exec."""
    cfg = add_userns(busybox_config(["sleep", "1000"]), oci=oci)
    with Running(oci, cfg) as c:
        assert Path(f"/proc/{c.pid}/uid_map").read_text().split() == ["0", "100000", "65536"]
        assert int(proc_status(c.pid)["CapEff"], 16) != 0
        r = oci.ok("exec", c.cid, "sh", "-c", "id -u; grep CapEff /proc/self/status; "
                   "readlink /proc/self/ns/user")
        uid, capeff, userns = r.stdout.split("\n")[:3]
        assert uid == "0" and int(capeff.split()[1], 16) != 0
        assert userns == ns_link(c.pid, "user")


def test_joined_namespace_goes_through_an_intermediate(oci):
    """A plan that joins a namespace first: ociruntime-init's child (ours)
    joins it and clones the init, which reports back through it."""
    with Running(oci, busybox_config(["sleep", "1000"])) as a:
        cfg = set_ns(busybox_config(["sleep", "1000"]), "network", f"/proc/{a.pid}/ns/net")
        with Running(oci, cfg, start=False) as b:
            assert os.readlink(f"/proc/{b.pid}/exe").startswith("/memfd:ociruntime-init")
            assert ns_link(b.pid, "net") == ns_link(a.pid, "net")
            assert ns_link(b.pid, "uts") != ns_link(a.pid, "uts")
            assert proc_status(b.pid)["NSpid"].split()[-1] == "1"
            oci.ok("start", b.cid)
            r = oci.ok("exec", b.cid, "sh", "-c", "readlink /proc/self/ns/net; echo $$")
            net, pid = r.stdout.split()
            assert net == ns_link(a.pid, "net") and pid != "1"


def _clone3_calls(trace):
    return [l for l in trace.read_text().splitlines() if "clone3(" in l]


@pytest.mark.skipif(not os.path.isdir("/sys/fs/cgroup/unified") and
                    not os.path.exists("/sys/fs/cgroup/cgroup.controllers"),
                    reason="no cgroup2 hierarchy")
def test_init_is_born_in_its_cgroup2_directory(oci, tmp_path):
    """ociruntime-init clones with CLONE_INTO_CGROUP, for create and exec."""
    b = oci.bundle(busybox_config(["sleep", "1000"]))
    cid = oci.new_id()
    trace = tmp_path / "strace.out"
    with open(tmp_path / "out", "w") as out:
        # strace follows the waiting init too: stopped (it detaches) once
        # create has returned.
        p = subprocess.Popen(["strace", "-I", "1", "-f", "-o", str(trace), "-e", "trace=clone3", RUNTIME,
                              "--root", oci.root, "create", "-b", b, cid],
                             stdin=subprocess.DEVNULL, stdout=out, stderr=out)
        try:
            wait_for(lambda: os.path.exists(f"{oci.root}/{cid}/state.json")
                     and oci.state(cid)["status"] == "created", "create")
        finally:
            p.terminate()
            p.wait()
    calls = _clone3_calls(trace)
    assert any("CLONE_INTO_CGROUP" in l and "CLONE_PARENT" in l for l in calls), calls
    pid = oci.state(cid)["pid"]
    assert host_cgroups(pid)[""].endswith("/" + cid)
    oci.ok("start", cid)
    r = subprocess.run(["strace", "-f", "-o", str(trace), "-e", "trace=clone3", RUNTIME,
                        "--root", oci.root, "exec", cid, "cat", "/proc/self/cgroup"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert any("CLONE_INTO_CGROUP" in l for l in _clone3_calls(trace)), trace.read_text()
    assert "0::/\n" in r.stdout   # its cgroup namespace's root: the container's cgroup
    oci.ok("delete", "--force", cid)


def test_message_table_matches_core_h():
    text = CORE_H.read_text()
    body = re.search(r"enum oci_msg_type \{(.*?)\};", text, re.S).group(1)
    names = re.findall(r"^\s*MSG_(\w+)", body, re.M)
    assert {n: getattr(core, "MSG_" + n) for n in names} == {n: i for i, n in enumerate(names, 1)}
    struct = re.search(r"struct oci_msg \{(.*?)\};", text, re.S).group(1)
    assert re.findall(r"(\w+)\s+\w+(?:\[(\d+)\])?;", struct) == \
        [("int32_t", ""), ("int32_t", ""), ("int64_t", ""), ("char", "496")]
    assert core.MSG_SIZE == 512


def test_usage_without_its_fds():
    r = subprocess.run([core.INIT_EXE], capture_output=True, text=True, timeout=10)
    assert r.returncode == 2 and "usage: ociruntime-init" in r.stderr


def test_malformed_plan_is_reported_before_any_clone():
    sync, init_sync = core.channel()
    try:
        with pytest.raises(OciError, match=r"^plan: malformed \(5 bytes\): invalid argument$"):
            core.spawn(b"\1\0\0\0\0", init_sync)
        for fd in init_sync:
            os.close(fd)
        init_sync = ()
        assert core.recv(sync) is None   # nobody was cloned to hold the other end
    finally:
        for fd in (*sync, *init_sync):
            os.close(fd)
