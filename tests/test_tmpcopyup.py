"""The tmpcopyup mount option (podman --read-only puts it on /tmp, /run...):
a tmpfs that starts with what the image held at its destination."""
import os

from conftest import busybox_config


def test_tmpcopyup_copies_the_image_tree(oci):
    cfg = busybox_config(["sh", "-c", "grep ' /data ' /proc/mounts; cd /data && "
                          "stat -c '%n %a %u:%g %F' d d/f l && cat d/f && readlink l && "
                          "touch new && echo writable"])
    cfg["mounts"].append({"destination": "/data", "type": "tmpfs", "source": "tmpfs",
                          "options": ["rw", "nosuid", "nodev", "tmpcopyup"]})
    b = oci.bundle(cfg)
    data = b / "rootfs" / "data"
    (data / "d").mkdir(parents=True)
    (data / "d" / "f").write_text("content\n")
    os.chmod(data / "d", 0o751)
    os.chmod(data / "d" / "f", 0o644)
    os.chown(data / "d" / "f", 1000, 1000)
    os.symlink("d/f", data / "l")
    cid = oci.new_id()
    r = oci.cmd("run", "-b", b, cid)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("tmpfs /data tmpfs ")
    assert lines[1:] == ["d 751 0:0 directory", "d/f 644 1000:1000 regular file",
                         "l 777 0:0 symbolic link", "content", "d/f", "writable"]
    assert not (data / "new").exists()   # the writes went to the tmpfs


def test_without_tmpcopyup_the_tmpfs_is_empty(oci):
    cfg = busybox_config(["ls", "-A", "/data"])
    cfg["mounts"].append({"destination": "/data", "type": "tmpfs", "source": "tmpfs"})
    b = oci.bundle(cfg)
    (b / "rootfs" / "data").mkdir()
    (b / "rootfs" / "data" / "f").write_text("x")
    r = oci.cmd("run", "-b", b, oci.new_id())
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""


def test_tmpcopyup_read_only(oci):
    """Filled first, then made read-only."""
    cfg = busybox_config(["sh", "-c", "cat /data/f; grep ' /data ' /proc/mounts; touch /data/g || echo ro-ok"])
    cfg["mounts"].append({"destination": "/data", "type": "tmpfs", "source": "tmpfs",
                          "options": ["ro", "tmpcopyup", "mode=755"]})
    b = oci.bundle(cfg)
    (b / "rootfs" / "data").mkdir()
    (b / "rootfs" / "data" / "f").write_text("copied\n")
    r = oci.cmd("run", "-b", b, oci.new_id())
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "copied"
    assert "ro" in lines[1].split()[3].split(",")
    assert lines[2] == "ro-ok"
