"""Bind mounts into a user-namespaced container whose root cannot reach
the source (issue 12, item 7): ociruntime-init opens the sources before
the clone, with the runtime's credentials, as runc does; the init mounts
those copies.  The copies are made slave (the rootfs's propagation), so
that a mount the container makes in them never reaches the host."""
import os
import subprocess

import pytest

from conftest import busybox_config
from ocihelpers import add_userns, open_tmp, sh


def _private_source(oci):
    """open_tmp/private (0700, host root's) / data (a dir with a file) and
    secret.txt: uid 100000 cannot get past `private`."""
    top = open_tmp(oci) / "private"
    top.mkdir(mode=0o700)
    os.chmod(top, 0o700)
    (top / "data").mkdir()
    (top / "data" / "f").write_text("from the host\n")
    (top / "secret.txt").write_text("a file\n")
    return top


def _bundle(oci, cfg, dirs=(), files=()):
    """A bundle with its mount points made (the mapped root cannot make
    them in the host root's rootfs)."""
    b = oci.bundle(cfg)
    for d in dirs:
        (b / "rootfs" / d).mkdir()
    for f in files:
        (b / "rootfs" / f).write_text("")
    return b


def _run(oci, cfg, dirs=(), files=()):
    r = oci.cmd("run", "-b", _bundle(oci, cfg, dirs, files), oci.new_id())
    return r.returncode, r.stdout, r.stderr


def test_bind_from_a_private_host_directory_into_a_user_namespace(oci):
    top = _private_source(oci)
    cfg = add_userns(busybox_config(sh("cat /data/f /secret.txt; ls /rdata")), oci=oci)
    cfg["mounts"] += [
        {"destination": "/data", "type": "bind", "source": str(top / "data"), "options": ["bind", "ro"]},
        {"destination": "/secret.txt", "type": "bind", "source": str(top / "secret.txt"), "options": ["bind"]},
        {"destination": "/rdata", "type": "bind", "source": str(top / "data"), "options": ["rbind", "rro"]},
    ]
    code, out, err = _run(oci, cfg, dirs=("data", "rdata"), files=("secret.txt",))
    assert code == 0, err
    assert out.splitlines() == ["from the host", "a file", "f"], out


def test_a_missing_source_in_a_user_namespace_is_a_clean_error(oci):
    top = _private_source(oci)
    cfg = add_userns(busybox_config(["true"]), oci=oci)
    cfg["mounts"].append({"destination": "/data", "type": "bind", "source": str(top / "nope"),
                          "options": ["bind"]})
    code, out, err = _run(oci, cfg, dirs=("data",))
    assert code == 1 and "Traceback" not in err
    assert len(err.splitlines()) == 1 and "mounts[" in err and "nope" in err, err


@pytest.mark.parametrize("options", [["rbind"], ["rbind", "idmap"]])
def test_mounts_inside_a_user_namespaced_bind_stay_in_the_container(oci, options):
    """The source is on a shared host mount: the container's copy is its
    slave (an idmapped one too).  A tmpfs the container mounts inside does
    not reach the host; a tmpfs the host mounts later does reach the
    container."""
    top = _private_source(oci)
    data = top / "data"
    (data / "in").mkdir()
    (data / "later").mkdir()
    subprocess.run(["mount", "--bind", str(data), str(data)], check=True)
    try:
        subprocess.run(["mount", "--make-shared", str(data)], check=True)
        script = ("mount -t tmpfs inside /data/in && echo mounted; "
                  "while [ ! -e /data/later/ready ]; do sleep 0.05; done; echo saw-host-mount")
        cfg = add_userns(busybox_config(sh(script)), oci=oci)
        for caps in cfg["process"]["capabilities"].values():
            caps.append("CAP_SYS_ADMIN")
        cfg["process"]["noNewPrivileges"] = True
        cfg["mounts"].append({"destination": "/data", "type": "bind", "source": str(data),
                              "options": options})
        b = _bundle(oci, cfg, dirs=("data",))
        cid = oci.new_id()
        proc = subprocess.Popen([oci_runtime(), "--root", oci.root, "run", "-b", str(b), cid],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert proc.stdout.readline() == "mounted\n", proc.stderr.read() if proc.poll() else ""
            with open("/proc/self/mountinfo") as f:
                assert not any(str(data / "in") in line for line in f), "the container's mount reached the host"
            subprocess.run(["mount", "-t", "tmpfs", "host-later", str(data / "later")], check=True)
            (data / "later" / "ready").write_text("")
            out, err = proc.communicate(timeout=60)
            assert out == "saw-host-mount\n", err
            assert proc.returncode == 0, err
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            subprocess.run(["umount", "-l", str(data / "later")], stderr=subprocess.DEVNULL)
    finally:
        subprocess.run(["umount", "-l", str(data)])


def oci_runtime():
    from conftest import RUNTIME
    return RUNTIME


def test_host_mount_flags_stay_locked_in_a_user_namespaced_bind(oci):
    """Under the source, the host has a read-only bind.  In the container
    (root with CAP_SYS_ADMIN in its user namespace) that submount keeps the
    kernel's locks, as in a copy of the host's mount namespace: it can be
    neither remounted writable nor unmounted (which would show what the
    host covered)."""
    top = _private_source(oci)
    data = top / "data"
    (data / "sub").mkdir()
    cover = top / "cover"
    cover.mkdir()
    (data / "sub" / "hidden").write_text("under the host's mount\n")
    subprocess.run(["mount", "--bind", str(cover), str(data / "sub")], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(data / "sub")], check=True)
        script = ("mount -o remount,bind,rw /data/sub 2>/dev/null && echo REMOUNTED; "
                  "umount /data/sub 2>/dev/null && echo UNMOUNTED; "
                  "grep ' /data/sub ' /proc/self/mountinfo | cut -d' ' -f6; cat /data/sub/hidden 2>/dev/null; true")
        cfg = add_userns(busybox_config(sh(script)), oci=oci)
        for caps in cfg["process"]["capabilities"].values():
            caps.append("CAP_SYS_ADMIN")
        cfg["mounts"].append({"destination": "/data", "type": "bind", "source": str(data),
                              "options": ["rbind"]})
        code, out, err = _run(oci, cfg, dirs=("data",))
        assert code == 0, err
        assert out.splitlines() == ["ro,relatime"], out
    finally:
        subprocess.run(["umount", "-l", str(data / "sub")])


def test_bind_ro_keeps_the_locked_host_flags_in_a_user_namespace(oci):
    """`bind,ro` asks for ro and, as mount(2) reads it, no nosuid/nodev;
    the source's nosuid and nodev are locked in the container's namespace,
    so they stay (as the remount did with the locked flags added)."""
    src = open_tmp(oci) / "nosuid-src"
    src.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "nosuid,nodev,mode=755", "ociruntime-test-ns", str(src)],
                   check=True)
    try:
        script = "grep ' /data ' /proc/self/mountinfo | cut -d' ' -f6; touch /data/x 2>/dev/null || echo refused"
        cfg = add_userns(busybox_config(sh(script)), oci=oci)
        cfg["mounts"].append({"destination": "/data", "type": "bind", "source": str(src),
                              "options": ["bind", "ro"]})
        code, out, err = _run(oci, cfg, dirs=("data",))
        assert code == 0, err
        assert out.splitlines() == ["ro,nosuid,nodev,relatime", "refused"], out
    finally:
        subprocess.run(["umount", "-l", str(src)])


def test_many_binds_into_a_user_namespace(oci):
    """Sources travel to the init in messages of 64: 150 binds take three,
    and every one arrives where its mount asks for it."""
    top = _private_source(oci)
    for k in range(150):
        (top / f"s{k}").mkdir()
        (top / f"s{k}" / "n").write_text(f"{k}\n")
    cfg = add_userns(busybox_config(sh("cat /m/0/n /m/64/n /m/149/n; cat /m/*/n | wc -l")), oci=oci)
    cfg["mounts"] += [{"destination": f"/m/{k}", "type": "bind", "source": str(top / f"s{k}"),
                       "options": ["bind", "ro"]} for k in range(150)]
    code, out, err = _run(oci, cfg, dirs=["m"] + [f"m/{k}" for k in range(150)])
    assert code == 0, err
    assert out.split() == ["0", "64", "149", "150"], out
