"""Files of the image that the runtime itself reads (issue 11.3, 12.8).

The only one is /etc/passwd, for HOME when the process's env has none
(runc's rule).  The image is hostile: /etc/passwd may be a terminal, a
device that blocks, a FIFO (made by the running container before an
exec), a multi-GB file, or a symlink meant to reach the host.  The
lookup resolves it inside the container's root, reads only a regular
file of a real filesystem, a bounded amount, and never blocks: HOME is
then "/", as for a missing file.  Every call here has a timeout: a hang
is a failure, not a stuck test run.
"""
import os
import pty
import subprocess

import pytest

from ocihelpers import Running, config, sh, wait_for

TIMEOUT = 20


def home_config(env=("PATH=/bin",), uid=0):
    cfg = config(sh("echo $HOME"))
    cfg["process"]["env"] = list(env)
    cfg["process"]["user"] = {"uid": uid, "gid": 0}
    return cfg


def run_home(oci, b, **kw):
    """`run` of bundle b (its process echoes $HOME): HOME, or the failure."""
    cid = oci.new_id()
    r = oci.cmd("run", "-b", b, cid, timeout=TIMEOUT, **kw)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def replace_passwd(b):
    p = b / "rootfs" / "etc" / "passwd"
    p.unlink()
    return p


def test_home_from_a_regular_passwd(oci):
    assert run_home(oci, oci.bundle(home_config())) == "/root"
    assert run_home(oci, oci.bundle(home_config(uid=1000))) == "/home/user"


def test_kmsg_like_device_is_not_opened(oci):
    """c 1 11 (/dev/kmsg): read whole, it hangs for ever once the kernel
    log is consumed, and would hand the log to the container as HOME."""
    b = oci.bundle(home_config())
    os.mknod(replace_passwd(b), 0o644 | 0o020000, os.makedev(1, 11))
    assert run_home(oci, b) == "/"


def test_terminal_device_is_not_read(oci):
    """c 5 0 (/dev/tty) is the runtime's controlling terminal: whatever
    was typed there must not become the container's HOME.  The runtime
    gets a pty as its controlling terminal with a passwd line waiting in
    its input."""
    b = oci.bundle(home_config())
    os.mknod(replace_passwd(b), 0o644 | 0o020000, os.makedev(5, 0))
    master, slave = pty.openpty()
    try:
        os.write(master, b"root:x:0:0:root:/typed-on-the-tty:/bin/sh\n")
        slave_name = os.ttyname(slave)

        def take_the_tty():
            os.setsid()
            os.close(os.open(slave_name, os.O_RDWR))   # no O_NOCTTY: our ctty

        home = run_home(oci, b, preexec_fn=take_the_tty, stdin=subprocess.DEVNULL)
        assert home == "/"
        # The line is still there: nobody read it.
        os.set_blocking(slave, False)
        assert os.read(slave, 100).startswith(b"root:x:0:0:root:/typed")
    finally:
        os.close(master)
        os.close(slave)


def test_fifo_passwd_does_not_hang_create(oci):
    b = oci.bundle(home_config())
    os.mkfifo(replace_passwd(b))
    assert run_home(oci, b) == "/"


def test_fifo_made_by_the_container_does_not_hang_exec(oci):
    """A running container needs no capability to replace its own
    /etc/passwd by a FIFO; every later `exec` used to hang on it."""
    cfg = home_config()
    cfg["root"]["readonly"] = False
    cfg["process"]["args"] = sh("rm /etc/passwd && mkfifo /etc/passwd && touch /tmp/ready && sleep 60")
    with Running(oci, cfg) as c:
        ready = c.bundle / "rootfs" / "tmp" / "ready"
        wait_for(ready.exists, "the container to make its FIFO")
        r = oci.cmd("exec", c.cid, "sh", "-c", "echo $HOME", timeout=TIMEOUT)
        assert r.returncode == 0, r.stderr
        assert r.stdout == "/\n"


def test_huge_sparse_passwd_is_not_read_whole(oci):
    """8 GiB (sparse): the first MiB is read, the rest never."""
    b = oci.bundle(home_config())
    p = replace_passwd(b)
    with open(p, "wb") as f:
        f.write(b"root:x:0:0:root:/first-line:/bin/sh\n")
        f.truncate(8 << 30)
        f.seek((8 << 30) - 100)
        f.write(b"\nuser:x:1000:1000:user:/at-the-end:/bin/sh\n")
    assert run_home(oci, b) == "/first-line"
    b2 = oci.bundle(home_config(uid=1000))
    os.rename(p, replace_passwd(b2))
    assert run_home(oci, b2) == "/"


def test_symlinked_passwd_is_resolved_in_the_rootfs(oci):
    """Issue 12.8: an absolute link means that path inside the rootfs, a
    relative one is followed from where it is; HOME comes from the file."""
    for target in ("/usr/lib/passwd", "../usr/lib/passwd", "/../../../../usr/lib/passwd"):
        b = oci.bundle(home_config())
        (b / "rootfs" / "usr" / "lib").mkdir(parents=True, exist_ok=True)
        (b / "rootfs" / "usr" / "lib" / "passwd").write_text("root:x:0:0:root:/linked:/bin/sh\n")
        os.symlink(target, replace_passwd(b))
        assert run_home(oci, b) == "/linked", target


def test_symlinked_etc_dir_is_resolved_in_the_rootfs(oci):
    b = oci.bundle(home_config())
    root = b / "rootfs"
    os.rename(root / "etc", root / "etc.real")
    (root / "etc.real" / "passwd").write_text("root:x:0:0:root:/via-etc-link:/bin/sh\n")
    os.symlink("/etc.real", root / "etc")
    assert run_home(oci, b) == "/via-etc-link"


def test_symlink_to_a_host_file_is_not_followed_out(oci, tmp_path):
    """A link to a host path that the rootfs lacks finds nothing."""
    host = tmp_path / "host-passwd"
    host.write_text("root:x:0:0:root:/HOST-LEAK:/bin/sh\n")
    b = oci.bundle(home_config())
    os.symlink(str(host), replace_passwd(b))
    assert run_home(oci, b) == "/"


def test_symlink_loop_gives_slash(oci):
    b = oci.bundle(home_config())
    os.symlink("/etc/passwd", replace_passwd(b))
    assert run_home(oci, b) == "/"


def test_exec_reads_the_passwd_the_container_sees(oci):
    """exec looks the file up inside the running container (its mounts,
    its changes), as runc does, not in the bundle's rootfs directory."""
    cfg = home_config()
    cfg["mounts"].append({"destination": "/etc", "type": "tmpfs", "source": "tmpfs",
                          "options": ["mode=755"]})
    cfg["process"]["args"] = sh("echo root:x:0:0:root:/inside:/bin/sh > /etc/passwd && "
                                "ln -s /etc/passwd /etc/link && touch /tmp/ready && sleep 60")
    cfg["root"]["readonly"] = False
    with Running(oci, cfg) as c:
        wait_for((c.bundle / "rootfs" / "tmp" / "ready").exists, "the container's passwd")
        r = oci.cmd("exec", c.cid, "sh", "-c", "echo $HOME", timeout=TIMEOUT)
        assert r.returncode == 0, r.stderr
        assert r.stdout == "/inside\n"


def test_exec_with_a_proc_passwd_is_not_read(oci):
    """Following links inside the container must not make the runtime, as
    host root, read a pseudo-file of the container's /proc (kmsg, kcore,
    or here the init's command line, which holds a passwd line)."""
    cfg = home_config()
    cfg["root"]["readonly"] = False
    cfg["process"]["args"] = sh("rm /etc/passwd && ln -s /proc/1/cmdline /etc/passwd && "
                                "touch /tmp/ready && sleep 60\n"
                                "#root:x:0:0:root:/from-proc:/bin/sh\n")
    with Running(oci, cfg) as c:
        wait_for((c.bundle / "rootfs" / "tmp" / "ready").exists, "the container's link")
        r = oci.cmd("exec", c.cid, "sh", "-c", "echo $HOME", timeout=TIMEOUT)
        assert r.returncode == 0, r.stderr
        assert r.stdout == "/\n"


def test_exec_does_not_block_on_a_fuse_mount_that_never_answers(oci):
    """A container can mount FUSE (in its user namespace) and stop
    answering: any lookup there blocks for ever.  The walk sees the mount
    from /proc/self/fdinfo and stops before asking the filesystem.  Here
    the FUSE mount is a bind mount of the host's fuse-overlayfs at /etc,
    and its daemon is stopped before the exec."""
    import shutil
    import signal
    if not shutil.which("fuse-overlayfs") or not os.path.exists("/dev/fuse"):
        pytest.skip("needs fuse-overlayfs and /dev/fuse")
    d = oci.tmp / "fuse"
    for sub in ("l", "u", "w", "m"):
        (d / sub).mkdir(parents=True)
    (d / "l" / "passwd").write_text("root:x:0:0:root:/from-fuse:/bin/sh\n")
    daemon = subprocess.Popen(["fuse-overlayfs", "-f", "-o",
                               f"lowerdir={d / 'l'},upperdir={d / 'u'},workdir={d / 'w'}", str(d / "m")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def mounted():
            with open("/proc/self/mountinfo") as f:
                return any(f" {d / 'm'} " in line for line in f)
        wait_for(mounted, "the fuse-overlayfs mount")
        cfg = home_config()
        cfg["process"]["args"] = ["sleep", "60"]
        cfg["mounts"].append({"destination": "/etc", "type": "bind", "source": str(d / "m"),
                              "options": ["rbind", "ro"]})
        with Running(oci, cfg) as c:
            os.kill(daemon.pid, signal.SIGSTOP)
            try:
                r = oci.cmd("exec", c.cid, "sh", "-c", "echo $HOME", timeout=TIMEOUT)
            finally:
                os.kill(daemon.pid, signal.SIGCONT)
            assert r.returncode == 0, r.stderr
            assert r.stdout == "/\n"
    finally:
        subprocess.run(["umount", str(d / "m")], capture_output=True)
        try:
            daemon.wait(timeout=20)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()


# -- the walk itself, on real directory trees ----------------------------------------

def test_walk_stays_in_the_root(tmp_path):
    from ociruntime import imagefile
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "a" / "b").mkdir(parents=True)
    outside.mkdir()
    (outside / "secret").write_text("host")
    (root / "secret").write_text("in-root")
    (root / "a" / "b" / "up").symlink_to("../../../../outside/secret")   # relative, past the root
    (root / "a" / "abs").symlink_to(str(outside / "secret"))             # a host path
    (root / "a" / "dir").symlink_to("/a/b")
    (root / "a" / "b" / "f").write_text("f")
    (root / "loop").symlink_to("loop2")
    (root / "loop2").symlink_to("/loop")
    read = lambda p: imagefile.read(str(root), p, 100)   # noqa: E731
    assert read("/../../secret") == b"in-root"
    assert read("a/b/../../../secret") == b"in-root"
    assert read("/a/dir/f") == b"f"
    assert read("/a/dir/../b/f") == b"f"
    for p, err in (("/a/b/up", 2), ("/a/abs", 2), ("/loop", 40), ("/a/b/f/x", 20), ("/a", 22)):
        with pytest.raises(OSError) as e:
            read(p)
        assert e.value.errno == err, (p, e.value)


def test_walk_reads_at_most_the_limit(tmp_path):
    from ociruntime import imagefile
    (tmp_path / "f").write_bytes(b"x" * 5000)
    assert imagefile.read(str(tmp_path), "f", 1234) == b"x" * 1234
