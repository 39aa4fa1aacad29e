"""The container's filesystem: config mounts in order, binds and their
propagation, the read-only root, masked and read-only paths, /dev,
linux.devices, sysctl."""
import json
import os
import stat
import subprocess

import pytest

from ocihelpers import Running, add_userns, config, drop_ns, sh


def run_ok(oci, cfg):
    code, out, err = oci.run_output(cfg=cfg)
    assert code == 0, (code, out, err)
    return out


def mountinfo(pid, mountpoint):
    """(optional fields, mount options, super options) of a mount point
    as process pid sees it (the last mount there wins)."""
    found = None
    with open(f"/proc/{pid}/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fields = left.split()
            if fields[4] == mountpoint:
                found = (fields[6:], set(fields[5].split(",")), set(right.split()[2].split(",")))
    return found


def bind(source, dest, *options):
    return {"destination": dest, "type": "bind", "source": str(source), "options": ["rbind", *options]}


def test_bind_mount_from_the_host(oci, tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "from-host").write_text("hello\n")
    cfg = config(sh("cat /mnt/shared/from-host; echo inside > /mnt/shared/from-container"))
    cfg["mounts"].append(bind(shared, "/mnt/shared"))
    assert run_ok(oci, cfg) == "hello\n"
    assert (shared / "from-container").read_text() == "inside\n"


def test_read_only_bind(oci, tmp_path):
    shared = tmp_path / "ro"
    shared.mkdir()
    (shared / "f").write_text("x")
    cfg = config(sh("cat /ro/f; echo; touch /ro/new 2>&1; grep ' /ro ' /proc/self/mounts"))
    cfg["mounts"].append(bind(shared, "/ro", "ro", "nosuid", "nodev"))
    out = run_ok(oci, cfg).split("\n")
    assert out[0] == "x"
    assert "Read-only file system" in out[1]
    opts = out[2].split()[3].split(",")
    assert {"ro", "nosuid", "nodev"} <= set(opts)
    assert not (shared / "new").exists()


def test_bind_of_a_file_makes_the_mount_point(oci, tmp_path):
    f = tmp_path / "hostfile"
    f.write_text("file content\n")
    cfg = config(sh("cat /etc/deep/new/file.txt; stat -c %F /etc/deep/new/file.txt"))
    cfg["root"]["readonly"] = False
    cfg["mounts"].append({"destination": "/etc/deep/new/file.txt", "type": "bind",
                          "source": str(f), "options": ["bind", "ro"]})
    assert run_ok(oci, cfg) == "file content\nregular file\n"


def test_relative_bind_source_is_from_the_bundle(oci):
    cfg = config(["cat", "/data/x"])
    cfg["mounts"].append(bind("data", "/data"))
    b = oci.bundle(cfg)
    (b / "data").mkdir()
    (b / "data" / "x").write_text("from bundle")
    cid = oci.new_id()
    r = oci.cmd("run", "-b", b, cid)
    assert (r.returncode, r.stdout) == (0, "from bundle"), r.stderr


def test_tmpfs_with_options(oci):
    cfg = config(sh("grep ' /scratch ' /proc/self/mounts; stat -c %a /scratch; "
                    "cp /bin/busybox /scratch/bb && /scratch/bb true 2>&1 || echo noexec"))
    cfg["mounts"].append({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
                          "options": ["nosuid", "nodev", "noexec", "size=1m", "mode=1770"]})
    out = run_ok(oci, cfg).split("\n")
    fields = out[0].split()
    assert fields[2] == "tmpfs"
    opts = set(fields[3].split(","))
    assert {"rw", "nosuid", "nodev", "noexec", "size=1024k", "mode=1770"} <= opts
    assert out[1] == "1770"
    assert out[-2].endswith("noexec") or "Permission denied" in out[-2]


def test_mounts_are_made_in_order(oci, tmp_path):
    src = tmp_path / "inner"
    src.mkdir()
    (src / "mark").write_text("inner\n")
    cfg = config(sh("cat /outer/inner/mark; grep -c ' /outer' /proc/self/mounts"))
    cfg["mounts"] += [{"destination": "/outer", "type": "tmpfs", "source": "tmpfs"},
                      bind(src, "/outer/inner")]
    assert run_ok(oci, cfg).split() == ["inner", "2"]


def test_mount_through_a_symlink_stays_in_the_rootfs(oci, tmp_path):
    """Symlinks in the image that point at a host path, or up and out of
    the rootfs, are resolved inside the rootfs: the mounts land there
    (made as runc makes them), never on the host."""
    host_dir = tmp_path / "host-target"
    host_dir.mkdir()
    cfg = config(sh(f"grep -c ' {host_dir} tmpfs' /proc/self/mounts; "
                    "grep -c ' /escape2 tmpfs' /proc/self/mounts; ls -d /escape2"))
    cfg["mounts"] += [{"destination": "/escape", "type": "tmpfs", "source": "tmpfs"},
                      {"destination": "/up/escape2", "type": "tmpfs", "source": "tmpfs"}]
    cfg["root"]["readonly"] = False
    b = oci.bundle(cfg)
    os.symlink(str(host_dir), b / "rootfs" / "escape")
    os.symlink("../../../../../../../../..", b / "rootfs" / "up")
    cid = oci.new_id()
    r = oci.cmd("run", "-b", b, cid)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["1", "1", "/escape2"]
    assert (b / "rootfs" / str(host_dir).lstrip("/")).is_dir()
    assert (b / "rootfs" / "escape2").is_dir()
    assert not (tmp_path.parent / "escape2").exists() and not os.path.exists("/escape2")
    with open("/proc/self/mountinfo") as f:
        assert str(host_dir) not in f.read()


def test_bind_propagation_slave_and_private(oci, tmp_path):
    """From outside: a mount made on the host under a bind source shows
    in the container when the bind is rslave, not when it is rprivate."""
    src = tmp_path / "prop"
    src.mkdir()
    (src / "sub").mkdir()
    # the source must be a shared mount for anything to propagate
    subprocess.run(["mount", "--bind", str(src), str(src)], check=True)
    try:
        subprocess.run(["mount", "--make-shared", str(src)], check=True)
        cfg = config(["sleep", "1000"])
        cfg["mounts"] += [bind(src, "/slave", "rslave"), bind(src, "/private", "rprivate")]
        with Running(oci, cfg) as c:
            assert "master:" in " ".join(mountinfo(c.pid, "/slave")[0])
            assert mountinfo(c.pid, "/private")[0] == []
            subprocess.run(["mount", "-t", "tmpfs", "late", str(src / "sub")], check=True)
            try:
                assert mountinfo(c.pid, "/slave/sub") is not None
                assert mountinfo(c.pid, "/private/sub") is None
            finally:
                subprocess.run(["umount", str(src / "sub")], check=True)
    finally:
        subprocess.run(["umount", "-l", str(src)], check=True)


@pytest.fixture
def shared_tmp(oci):
    """Make the test's tmp dir (where bundles go) a shared mount, as / is
    on systemd hosts, so that propagation has something to act on."""
    subprocess.run(["mount", "--bind", str(oci.tmp), str(oci.tmp)], check=True)
    try:
        subprocess.run(["mount", "--make-shared", str(oci.tmp)], check=True)
        yield oci.tmp
    finally:
        subprocess.run(["umount", "-R", "-l", str(oci.tmp)], check=True)


@pytest.mark.parametrize("propagation", [None, "rslave", "private", "rprivate", "rshared"])
def test_rootfs_propagation(oci, shared_tmp, propagation):
    cfg = config(["sleep", "1000"])
    if propagation:
        cfg["linux"]["rootfsPropagation"] = propagation
    with Running(oci, cfg) as c:
        optional = " ".join(mountinfo(c.pid, "/")[0])
        kind = (propagation or "rslave").lstrip("r")
        if kind == "slave":
            assert "master:" in optional and "shared:" not in optional
        elif kind == "private":
            assert optional == ""
        else:
            assert "shared:" in optional
        # a mount made on the host under the rootfs reaches only a slave
        late = c.bundle / "rootfs" / "mnt"
        late.mkdir(exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "late", str(late)], check=True)
        try:
            seen = mountinfo(c.pid, "/mnt") is not None
            assert seen == (kind in ("slave", "shared"))
        finally:
            subprocess.run(["umount", str(late)], check=True)
        # and nothing the container mounted came back to the host
        with open("/proc/self/mountinfo") as f:
            assert str(c.bundle / "rootfs" / "proc") not in f.read()


def test_readonly_root(oci):
    out = run_ok(oci, config(sh("touch /x 2>&1; touch /tmp/y 2>&1; echo done")))
    assert "Read-only file system" in out.split("\n")[0]
    assert "Read-only file system" in out.split("\n")[1]
    cfg = config(sh("touch /x && echo writable"))
    cfg["root"]["readonly"] = False
    assert run_ok(oci, cfg) == "writable\n"


def test_masked_paths(oci):
    cfg = config(sh("stat -c '%F %t:%T' /proc/timer_list; wc -c < /proc/timer_list; "
                    "ls -A /secret | wc -l; stat -c %F /secret; { echo x > /secret/f; } 2>&1; "
                    "ls /sys/firmware | wc -l"))
    cfg["linux"]["maskedPaths"] += ["/secret", "/does/not/exist"]
    b = oci.bundle(cfg)
    (b / "rootfs" / "secret").mkdir()
    (b / "rootfs" / "secret" / "key").write_text("hidden")
    r = oci.cmd("run", "-b", b, oci.new_id())
    assert r.returncode == 0, r.stderr
    out = r.stdout.split("\n")
    assert out[0] == "character special file 1:3"   # bound to /dev/null
    assert out[1].strip() == "0"
    assert out[2].strip() == "0"                     # an empty tmpfs over the dir
    assert out[3] == "directory"
    assert "Read-only file system" in out[4]
    assert out[5].strip() == "0"
    assert (b / "rootfs" / "secret" / "key").read_text() == "hidden"


def test_readonly_paths(oci):
    cfg = config(sh("{ echo 1 > /proc/sys/net/ipv4/ip_forward; } 2>&1; "
                    "grep ' /proc/sys ' /proc/self/mounts; { echo > /rw/ro/x; } 2>&1; echo > /rw/x && echo ok"))
    cfg["root"]["readonly"] = False
    cfg["linux"]["readonlyPaths"] += ["/rw/ro", "/not/there"]
    b = oci.bundle(cfg)
    os.makedirs(b / "rootfs" / "rw" / "ro")
    r = oci.cmd("run", "-b", b, oci.new_id())
    assert r.returncode == 0, r.stderr
    out = r.stdout.split("\n")
    assert "Read-only file system" in out[0]
    assert "ro" in out[1].split()[3].split(",")
    assert "Read-only file system" in out[2]
    assert out[3] == "ok"


def test_default_dev(oci):
    script = ("for d in null zero full random urandom tty; do stat -c '%n %F %t:%T %a' /dev/$d; done; "
              "for l in ptmx fd stdin stdout stderr; do echo /dev/$l $(readlink /dev/$l); done; "
              "stat -c %F /dev/pts/ptmx; grep -E ' /dev(/pts|/shm|/mqueue)? ' /proc/self/mounts | cut -d' ' -f2,3; "
              "head -c 4 /dev/zero | wc -c; { echo x > /dev/full; } 2>&1; true")
    out = run_ok(oci, config(sh(script))).split("\n")
    assert out[:6] == [
        "/dev/null character special file 1:3 666", "/dev/zero character special file 1:5 666",
        "/dev/full character special file 1:7 666", "/dev/random character special file 1:8 666",
        "/dev/urandom character special file 1:9 666", "/dev/tty character special file 5:0 666"]
    assert out[6:11] == ["/dev/ptmx pts/ptmx", "/dev/fd /proc/self/fd", "/dev/stdin /proc/self/fd/0",
                         "/dev/stdout /proc/self/fd/1", "/dev/stderr /proc/self/fd/2"]
    assert out[11] == "character special file"
    assert out[12:16] == ["/dev tmpfs", "/dev/pts devpts", "/dev/shm tmpfs", "/dev/mqueue mqueue"]
    assert out[16].strip() == "4"
    assert "No space left on device" in out[17]


def test_linux_devices(oci):
    cfg = config(sh("for d in /dev/fuse /dev/net/tun /dev/loop-test /dev/fifo-test /dev/null; do "
                    "stat -c '%n %F %t:%T %a %u:%g' $d; done"))
    cfg["linux"]["devices"] = [
        {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o640, "uid": 0, "gid": 0},
        {"path": "/dev/net/tun", "type": "c", "major": 10, "minor": 200, "fileMode": 0o600,
         "uid": 1000, "gid": 1001},
        {"path": "/dev/loop-test", "type": "b", "major": 7, "minor": 200, "fileMode": 0o660},
        {"path": "/dev/fifo-test", "type": "p", "fileMode": 0o620},
        # listed: the config wins over the default
        {"path": "/dev/null", "type": "c", "major": 1, "minor": 3, "fileMode": 0o600},
    ]
    out = run_ok(oci, cfg).split("\n")
    assert out[:5] == [
        "/dev/fuse character special file a:e5 640 0:0",
        "/dev/net/tun character special file a:c8 600 1000:1001",
        "/dev/loop-test block special file 7:c8 660 0:0",
        "/dev/fifo-test fifo 0:0 620 0:0",
        "/dev/null character special file 1:3 600 0:0",
    ]


def test_devices_in_a_user_namespace_are_bound_from_the_host(oci):
    cfg = add_userns(config(sh("stat -c '%n %t:%T' /dev/null /dev/zero; echo hi > /dev/null && echo ok")),
                     oci=oci)
    out = run_ok(oci, cfg).split("\n")
    assert out[:3] == ["/dev/null 1:3", "/dev/zero 1:5", "ok"]


def test_sysctl_in_the_network_namespace(oci):
    with open("/proc/sys/net/ipv4/ip_forward") as f:
        host = f.read()
    want = "0" if host.strip() == "1" else "1"
    cfg = config(sh("cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/msgmax"))
    cfg["linux"]["sysctl"] = {"net.ipv4.ip_forward": want, "kernel.msgmax": "12345"}
    assert run_ok(oci, cfg).split() == [want, "12345"]
    with open("/proc/sys/net/ipv4/ip_forward") as f:
        assert f.read() == host


def test_no_pivot(oci):
    b = oci.bundle(config(sh("ls /; cat /proc/self/mountinfo | wc -l")))
    r = oci.cmd("run", "--no-pivot", "-b", b, oci.new_id())
    assert r.returncode == 0, r.stderr
    assert "bin" in r.stdout.split() and "etc" in r.stdout.split()


def test_cgroup_mount(oci):
    cfg = config(sh("echo $(ls /sys/fs/cgroup); touch /sys/fs/cgroup/memory/x 2>&1; true"))
    out = run_ok(oci, cfg).split("\n")
    assert {"memory", "pids", "cpu", "cpuacct", "devices", "freezer"} <= set(out[0].split())
    assert "Read-only file system" in out[-2]
    # without a cgroup namespace the container's own cgroups are bound
    cfg = drop_ns(config(sh("ls /sys/fs/cgroup/pids | grep -c procs")), "cgroup")
    assert run_ok(oci, cfg).strip() == "1"


def test_config_without_user_ns_gets_no_stray_bind_devices(oci):
    """/dev is a fresh tmpfs: host devices that are not listed are absent."""
    out = run_ok(oci, config(sh("ls /dev | sort | tr '\\n' ' '")))
    names = set(out.split())
    assert not names & {"sda", "vda", "kmsg", "mem", "console"}
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)  # host untouched


@pytest.mark.parametrize("mtype", ["bind", "none", None])
def test_bind_spellings(oci, tmp_path, mtype):
    """containerd writes type "bind", docker type "none" with a bind
    option; both (and no type) are binds."""
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    (src / "f").write_text("bound\n")
    m = {"destination": "/b", "source": str(src), "options": ["rbind", "ro"]}
    if mtype:
        m["type"] = mtype
    cfg = config(["cat", "/b/f"])
    cfg["mounts"].append(m)
    assert run_ok(oci, cfg) == "bound\n"


def test_absolute_root_path_and_relative_bundle(oci):
    """root.path may be absolute; -b may be relative to the cwd."""
    b = oci.bundle(args=["cat", "/marker"])
    elsewhere = oci.tmp / "elsewhere-rootfs"
    os.rename(b / "rootfs", elsewhere)
    (elsewhere / "marker").write_text("abs root\n")
    cfg = json.loads((b / "config.json").read_text())
    cfg["root"]["path"] = str(elsewhere)
    (b / "config.json").write_text(json.dumps(cfg))
    r = oci.cmd("run", "-b", b.name, oci.new_id(), cwd=b.parent)
    assert (r.returncode, r.stdout) == (0, "abs root\n"), r.stderr


def test_bind_over_a_dangling_symlink_in_the_image(oci, tmp_path):
    """Like an Ubuntu image's /etc/resolv.conf -> ../run/systemd/resolve/
    stub-resolv.conf (absent): the link is followed inside the rootfs and
    its target made, as runc does, so engines can bind their file there."""
    host = tmp_path / "resolv.conf"
    host.write_text("nameserver 192.0.2.1\n")
    cfg = config(["cat", "/etc/resolv.conf"])
    cfg["mounts"].append({"destination": "/etc/resolv.conf", "type": "bind", "source": str(host),
                          "options": ["rbind", "ro"]})
    b = oci.bundle(cfg)
    link = b / "rootfs" / "etc" / "resolv.conf"
    if link.exists() or link.is_symlink():
        link.unlink()
    os.symlink("../run/systemd/resolve/stub-resolv.conf", link)
    r = oci.cmd("run", "-b", b, oci.new_id())
    assert (r.returncode, r.stdout) == (0, "nameserver 192.0.2.1\n"), r.stderr
    assert (b / "rootfs" / "run" / "systemd" / "resolve" / "stub-resolv.conf").is_file()
    assert os.readlink(link) == "../run/systemd/resolve/stub-resolv.conf"


def test_symlink_loop_at_a_mount_point_is_a_clean_error(oci):
    cfg = config(["true"])
    cfg["mounts"].append({"destination": "/loop/x", "type": "tmpfs", "source": "tmpfs"})
    b = oci.bundle(cfg)
    os.symlink("loop2", b / "rootfs" / "loop")
    os.symlink("loop", b / "rootfs" / "loop2")
    r = oci.cmd("run", "-b", b, oci.new_id())
    assert r.returncode == 1 and "/loop/x" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.splitlines()) == 1


@pytest.mark.parametrize("cgroupns", [True, False])
def test_read_only_cgroup_mount_is_made_once(oci, cgroupns):
    """A read-only `cgroup` mount (Docker's) on a v1 host: the tmpfs at
    /sys/fs/cgroup is itself made read-only, not covered by a read-only
    recursive bind of the whole tree, which showed every hierarchy twice."""
    cfg = config(sh("awk '$5 ~ \"^/sys/fs/cgroup\" {print $5}' /proc/self/mountinfo | sort | uniq -c; "
                    "touch /sys/fs/cgroup/x 2>&1; mkdir /sys/fs/cgroup/y 2>&1; true"))
    if not cgroupns:
        cfg = drop_ns(cfg, "cgroup")
    out = run_ok(oci, cfg)
    counts = [line.split() for line in out.splitlines() if line.strip()[:1].isdigit()]
    assert counts and all(n == "1" for n, _ in counts), out
    assert out.count("Read-only file system") == 2, out
