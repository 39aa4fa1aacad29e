"""One regression test per runc CVE class, each attacking ociruntime for
real: the attack is set up in the image or the config, and the test checks
from the host that nothing escaped (and from inside what the container saw).
"""
import json
import os
import re
import socket
import subprocess
import threading
import uuid

import pytest

from conftest import busybox_config


def _one_line_error(r):
    lines = r.stderr.strip().splitlines()
    assert r.returncode != 0
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    return lines[0]


def _mounted_at(path):
    path = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        return [l for l in f if l.split()[4] == path or l.split()[4].startswith(path + "/")]


# -- CVE-2019-5736: /proc/PID/exe of the runtime ---------------------------

def test_init_exe_not_openable_from_the_container_during_create(oci):
    """Until exec, the init is the runtime's own program (ociruntime-init,
    a file of the host).  A process of another container sharing its pid
    namespace tries to open /proc/1/exe (for reading, and for writing as
    the CVE did): it must be refused because the init is not dumpable."""
    a = oci.bundle(busybox_config(["sleep", "1000"]))
    aid = oci.new_id()
    r = oci.create("-b", a, aid)
    assert r.returncode == 0, r.stderr
    apid = oci.state(aid)["pid"]
    exe = os.readlink(f"/proc/{apid}/exe")
    # Still the runtime's program (a sealed copy: test_cve_exe_overwrite.py),
    # the interesting moment.
    assert exe.startswith("/memfd:ociruntime-init")
    cfg = busybox_config(["sh", "-c",
                          "readlink /proc/1/exe; echo r=$?; cat /proc/1/exe >/dev/null; echo c=$?; "
                          "(exec 3>>/proc/1/exe) && echo WRITABLE; (exec 3</proc/1/mem) && echo MEM"])
    cfg["process"]["capabilities"] = {s: ["CAP_KILL", "CAP_DAC_OVERRIDE", "CAP_SETUID"]
                                      for s in ("bounding", "effective", "permitted")}
    for ns in cfg["linux"]["namespaces"]:
        if ns["type"] == "pid":
            ns["path"] = f"/proc/{apid}/ns/pid"
    code, out, err = oci.run_output(cfg=cfg)
    assert "WRITABLE" not in out and "MEM" not in out
    assert "r=1" in out and "c=1" in out, (out, err)
    assert "Permission denied" in err
    # The host binary is untouched, and A still starts fine.
    oci.ok("start", aid)
    oci.ok("delete", "--force", aid)


def test_exec_is_not_dumpable_before_joining(oci, tmp_path):
    """`exec`: the process that enters the container's namespaces is made
    non-dumpable before the first setns (strace shows the order)."""
    b = oci.bundle(busybox_config(["sleep", "1000"]))
    cid = oci.new_id()
    assert oci.create("-b", b, cid).returncode == 0
    oci.ok("start", cid)
    trace = tmp_path / "strace.out"
    from conftest import RUNTIME
    r = subprocess.run(["strace", "-f", "-o", str(trace), "-e", "trace=prctl,setns,execve",
                        RUNTIME, "--root", oci.root, "exec", cid, "true"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    lines = trace.read_text().splitlines()
    first_setns = next(i for i, l in enumerate(lines) if "setns(" in l)
    dumpable = [i for i, l in enumerate(lines) if "PR_SET_DUMPABLE" in l and ("SUID_DUMP_DISABLE" in l or ", 0" in l)]
    assert dumpable and dumpable[0] < first_setns, "\n".join(lines[:40])
    oci.ok("delete", "--force", cid)


# -- CVE-2021-30465: mount destinations through symlinks ------------------

@pytest.mark.parametrize("kind", ["absolute", "relative"])
def test_symlinked_mount_destination_stays_in_rootfs(oci, tmp_path, kind):
    host = tmp_path / f"host-target-{uuid.uuid4().hex[:6]}"
    host.mkdir()
    cfg = busybox_config(["sh", "-c", "echo inside > /evil/file && cat /evil/file"])
    cfg["mounts"].append({"destination": "/evil", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid"]})
    b = oci.bundle(cfg)
    target = str(host) if kind == "absolute" else "../../../../../../../../../.." + str(host)
    os.symlink(target, b / "rootfs" / "evil")
    cid = oci.new_id()
    r = oci.cmd("run", "-b", b, cid)
    # Either it works inside the rootfs, or it fails cleanly: never on the host.
    assert "Traceback" not in r.stderr
    assert not _mounted_at(host), _mounted_at(host)
    assert list(host.iterdir()) == []
    if r.returncode == 0:
        assert "inside" in r.stdout


def test_symlink_appearing_during_setup_is_resolved_in_root(oci, tmp_path):
    """The symlink is not in the image: an earlier mount of the config
    brings it in (what the CVE's racing volume did), and a later mount
    goes through it."""
    host = tmp_path / "host-victim"
    host.mkdir()
    vol = tmp_path / "volume"
    vol.mkdir()
    os.symlink(str(host), vol / "esc")             # absolute, to the host dir
    os.symlink("../../../../../../.." + str(host), vol / "esc2")   # relative
    cfg = busybox_config(["sh", "-c", "echo x > /vol/esc/f; echo x > /vol/esc2/g; ls /vol/esc /vol/esc2"])
    cfg["root"]["readonly"] = False
    cfg["mounts"] += [
        {"destination": "/vol", "type": "bind", "source": str(vol), "options": ["rbind"]},
        {"destination": "/vol/esc", "type": "tmpfs", "source": "tmpfs"},
        {"destination": "/vol/esc2", "type": "tmpfs", "source": "tmpfs"},
    ]
    b = oci.bundle(cfg)
    cid = oci.new_id()
    r = oci.cmd("run", "-b", b, cid)
    assert "Traceback" not in r.stderr
    assert not _mounted_at(host)
    assert list(host.iterdir()) == []


# -- CVE-2024-21626: leaked fds and cwd ---------------------------------------

def test_no_host_fd_reaches_the_container(oci):
    """The caller leaks an fd of the host's / into the runtime: the
    container's process sees only 0, 1, 2."""
    leak = os.open("/", os.O_RDONLY | os.O_DIRECTORY)
    try:
        b = oci.bundle(busybox_config(["sh", "-c", "ls /proc/self/fd; ls -l /proc/self/fd"]))
        r = oci.cmd("run", "-b", b, oci.new_id(), pass_fds=(leak,))
    finally:
        os.close(leak)
    assert r.returncode == 0, r.stderr
    fds = r.stdout.split("\n\n")[0].split() if "\n\n" in r.stdout else r.stdout.split()
    listed = [int(x) for x in r.stdout.splitlines() if x.strip().isdigit()]
    assert listed and set(listed) <= {0, 1, 2, 3}, r.stdout   # 3: ls's own dir fd
    assert " -> /\n" not in r.stdout and "-> /proc" not in r.stdout


def test_cwd_through_a_leaked_fd_is_refused(oci):
    """runc's attack: process.cwd = /proc/self/fd/N of an fd the runtime
    holds to a host directory.  The cwd is resolved in the root without
    magic links: refused, with a clean error."""
    leak = os.open("/", os.O_RDONLY | os.O_DIRECTORY)
    try:
        cfg = busybox_config(["sh", "-c", "pwd; ls"])
        results = []
        for n in (leak, 3, 4, 5, 6, 7, 8):
            cfg["process"]["cwd"] = f"/proc/self/fd/{n}"
            b = oci.bundle(cfg)
            r = oci.cmd("run", "-b", b, oci.new_id(), pass_fds=(leak,))
            results.append(r)
    finally:
        os.close(leak)
    for r in results:
        assert r.returncode != 0, r.stdout
        assert "Traceback" not in r.stderr
        assert "cwd" in r.stderr or "/proc/self/fd/" in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1
        assert "usr" not in r.stdout.split() and "work" not in r.stdout.split()


def test_cwd_is_inside_the_container(oci):
    cfg = busybox_config(["sh", "-c", "readlink /proc/self/cwd; cd ../../..; pwd; ls /proc/self/cwd/"])
    cfg["process"]["cwd"] = "/tmp"
    code, out, err = oci.run_output(cfg=cfg)
    assert code == 0, err
    lines = out.split()
    assert lines[0] == "/tmp" and lines[1] == "/"
    assert "bin" in lines and "work" not in lines


# -- CVE-2025-31133: maskedPaths bind only the real /dev/null ------------------

def test_masking_refuses_a_fake_dev_null_device(oci):
    """A devices entry makes /dev/null the zero device: masking refuses."""
    cfg = busybox_config(["true"])
    cfg["linux"]["devices"] = [{"path": "/dev/null", "type": "c", "major": 1, "minor": 5, "fileMode": 0o666}]
    b = oci.bundle(cfg)
    r = oci.create("-b", b, oci.new_id())
    line = _one_line_error(r)
    assert "null device" in line and "maskedPaths" not in line or "null" in line


@pytest.mark.parametrize("fake", ["symlink", "file"])
def test_masking_refuses_a_dev_null_from_a_bound_dev(oci, tmp_path, fake):
    """/dev is bound from a directory where null is a symlink to a procfs
    file (the CVE: the mask would expose core_pattern) or a plain file."""
    dev = tmp_path / "fakedev"
    dev.mkdir()
    if fake == "symlink":
        os.symlink("/proc/sys/kernel/core_pattern", dev / "null")
    else:
        (dev / "null").write_text("not a device\n")
    cfg = busybox_config(["sh", "-c", "cat /proc/kcore | head -c 10; echo done"])
    cfg["mounts"] = [m for m in cfg["mounts"] if m["destination"] not in ("/dev", "/dev/pts", "/dev/shm", "/dev/mqueue")]
    cfg["mounts"].append({"destination": "/dev", "type": "bind", "source": str(dev), "options": ["rbind"]})
    b = oci.bundle(cfg)
    r = oci.create("-b", b, oci.new_id())
    line = _one_line_error(r)
    assert "/dev/null is not the null device" in line, line


# -- CVE-2025-52565: /dev/console ------------------------------------------------

def _console_receiver(path, got):
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)
    srv.settimeout(30)

    def serve():
        try:
            conn, _ = srv.accept()
            _, fds, _, _ = socket.recv_fds(conn, 4096, 1)
            got.extend(fds)
            conn.close()
        except OSError:
            pass
        finally:
            srv.close()
    t = threading.Thread(target=serve, daemon=True)
    t.start()
    return t


def test_dev_console_symlink_is_not_followed(oci, tmp_path):
    """The image's /dev/console is a symlink to a procfs file; with a
    terminal the runtime binds the pty on /dev/console: never through the
    link (the mount would cover, and expose, the link's target)."""
    sock = str(tmp_path / "console.sock")
    got = []
    t = _console_receiver(sock, got)
    cfg = busybox_config(["sleep", "1000"])
    cfg["process"]["terminal"] = True
    # /dev from the image (not a tmpfs): the attacker's /dev/console stays.
    cfg["mounts"] = [m for m in cfg["mounts"] if m["destination"] != "/dev"]
    b = oci.bundle(cfg)
    console = b / "rootfs" / "dev" / "console"
    if console.exists() or console.is_symlink():
        console.unlink()
    os.symlink("/proc/sys/kernel/core_pattern", console)
    cid = oci.new_id()
    r = oci.create("-b", b, cid, "--console-socket", sock)
    t.join(30)
    for fd in got:
        os.close(fd)
    if r.returncode == 0:
        pid = oci.state(cid)["pid"]
        with open(f"/proc/{pid}/mountinfo") as f:
            mounts = [l.split()[4] for l in f]
        assert "/proc/sys/kernel/core_pattern" not in mounts
        oci.ok("delete", "--force", cid)
    else:
        assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert "console" in r.stderr


# -- CVE-2025-52881: procfs writes ----------------------------------------------

def test_sysctl_write_cannot_be_redirected_by_a_bind_mount(oci, tmp_path):
    """A config mount binds a host file over the sysctl's procfs file: the
    write must not land in the host file (it goes through a handle that
    refuses crossing mounts) and create fails cleanly."""
    victim = tmp_path / "victim"
    victim.write_text("untouched\n")
    cfg = busybox_config(["true"])
    cfg["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1"}
    cfg["mounts"].append({"destination": "/proc/sys/net/ipv4/ip_forward", "type": "bind",
                          "source": str(victim), "options": ["bind"]})
    b = oci.bundle(cfg)
    r = oci.create("-b", b, oci.new_id())
    line = _one_line_error(r)
    assert "ip_forward" in line and "refused" in line, line
    assert victim.read_text() == "untouched\n"


def test_sysctl_write_refuses_a_tmpfs_over_proc_sys(oci, tmp_path):
    cfg = busybox_config(["true"])
    cfg["linux"]["sysctl"] = {"kernel.shm_rmid_forced": "1"}
    cfg["mounts"].append({"destination": "/proc/sys", "type": "tmpfs", "source": "tmpfs"})
    b = oci.bundle(cfg)
    line = _one_line_error(oci.create("-b", b, oci.new_id()))
    assert "shm_rmid_forced" in line and "refused" in line, line


def test_sysctl_write_refuses_a_fake_proc(oci):
    """/proc itself is not a procfs (a tmpfs over it): refused."""
    cfg = busybox_config(["true"])
    cfg["linux"]["sysctl"] = {"kernel.shm_rmid_forced": "1"}
    cfg["mounts"].append({"destination": "/proc", "type": "tmpfs", "source": "tmpfs"})
    b = oci.bundle(cfg)
    line = _one_line_error(oci.create("-b", b, oci.new_id()))
    assert "not the root of a procfs" in line, line


def test_sysctl_still_works(oci):
    cfg = busybox_config(["cat", "/proc/sys/kernel/shm_rmid_forced"])
    cfg["linux"]["sysctl"] = {"kernel.shm_rmid_forced": "1"}
    code, out, err = oci.run_output(cfg=cfg)
    assert code == 0, err
    assert out.strip() == "1"


def test_oom_score_adj_is_written_from_outside(oci, tmp_path):
    """oom_score_adj goes through the host's /proc/<pid>, which no
    container mount can touch: a mount over /proc/self in the container
    changes nothing."""
    cfg = busybox_config(["cat", "/proc/1/oom_score_adj"])
    cfg["process"]["oomScoreAdj"] = 123
    code, out, err = oci.run_output(cfg=cfg)
    assert code == 0, err
    assert out.strip() == "123"


# -- ids and bundles cannot escape the state root ---------------------------

BAD_IDS = ["..", ".", "../escape", "a/b", "/abs", "", "x" * 1025, "ok/../../escape", " spaced"]


@pytest.mark.parametrize("cid", BAD_IDS, ids=range(len(BAD_IDS)))
def test_bad_ids_are_refused_everywhere(oci, tmp_path, cid):
    victim = tmp_path / "escape"
    victim.mkdir()
    (victim / "state.json").write_text(json.dumps({"id": cid}))
    b = oci.bundle(busybox_config(["true"]))
    os.makedirs(oci.root, exist_ok=True)
    for args in (("create", "-b", b, cid), ("run", "-b", b, cid), ("state", cid), ("start", cid),
                 ("kill", cid, "KILL"), ("delete", "--force", cid), ("delete", cid)):
        r = oci.cmd(*args)
        assert r.returncode != 0, args
        assert "Traceback" not in r.stderr
    assert victim.is_dir() and (victim / "state.json").exists()
    assert os.listdir(oci.root) == []


def test_root_with_symlinked_container_dir_is_not_followed_by_delete(oci, tmp_path):
    """A state dir entry that is a symlink to a host directory: delete
    --force must not remove the host directory's contents."""
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious").write_text("keep me\n")
    os.makedirs(oci.root, exist_ok=True)
    cid = oci.new_id()
    os.symlink(victim, os.path.join(oci.root, cid))
    r = oci.cmd("delete", "--force", cid)
    assert "Traceback" not in r.stderr
    assert (victim / "precious").read_text() == "keep me\n"
    if os.path.islink(os.path.join(oci.root, cid)):
        os.unlink(os.path.join(oci.root, cid))


def test_bundle_path_is_stored_resolved(oci, tmp_path):
    """A relative or symlinked bundle is stored as its real path, and the
    rootfs must be a directory: a bundle cannot smuggle a path into state."""
    b = oci.bundle(busybox_config(["sleep", "100"]))
    link = tmp_path / "link-to-bundle"
    os.symlink(b, link)
    cid = oci.new_id()
    assert oci.create("-b", link, cid).returncode == 0
    st = oci.state(cid)
    assert st["bundle"] == os.path.realpath(b)
    oci.ok("delete", "--force", cid)
