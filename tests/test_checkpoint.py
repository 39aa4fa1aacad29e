"""checkpoint and restore on this host: what does not need a working criu.

Where criu cannot run (this machine's kernel 6.18: criu 3.17's "vdso:
Unexpected rt vDSO area bounds"), `checkpoint` fails with criu's own
reason in one line, and the container runs on as before.  The rest of
checkpoint/restore runs in the VM (tests/vm/test_checkpoint.py), where
criu works."""
import json
import os
import subprocess

import pytest

from conftest import RUNTIME
from ocihelpers import Running, assert_one_line_error, config, json_log_errors, leftover_processes
from ociruntime import criu

CRIU = criu.find()
needs_criu = pytest.mark.skipif(CRIU is None, reason="criu is not installed")


def criu_works():
    r = subprocess.run([CRIU, "check"], capture_output=True, text=True, timeout=60)
    return r.returncode == 0


@needs_criu
def test_checkpoint_where_criu_fails_says_criu_s_reason_and_leaves_it_running(oci, tmp_path):
    """Failed before: `checkpoint` was an unknown command."""
    if criu_works():
        pytest.skip("criu works on this host: the failure path needs a host where it does not")
    with Running(oci, config(["sleep", "1000"])) as c:
        log = tmp_path / "log.json"
        img = tmp_path / "img"
        r = oci.cmd("--log", log, "--log-format", "json", "checkpoint", "--image-path", img, c.cid)
        line = assert_one_line_error(r, f"checkpoint {c.cid}: criu dump failed: ", str(img / "dump.log"))
        # criu's own reason: the first Error line of its log
        with open(img / "dump.log") as f:
            first = next(l for l in f if "Error (" in l).split("): ", 1)[1].strip()
        assert first in line
        errs = json_log_errors(log)
        assert len(errs) == 1 and errs[0]["msg"] in line
        st = oci.state(c.cid)
        assert st["status"] == "running" and st["pid"] == c.pid
        assert not [p for p in leftover_processes(oci) if "criu" in p[1]]


@needs_criu
def test_checkpoint_refuses_a_container_that_does_not_run(oci, tmp_path):
    with Running(oci, config(["sleep", "1000"]), start=False) as c:
        r = oci.cmd("checkpoint", "--image-path", tmp_path / "img", c.cid)
        assert_one_line_error(r, "container cannot be checkpointed in created state")
        assert not (tmp_path / "img").exists()
    r = oci.cmd("checkpoint", "--image-path", tmp_path / "img", "no-such-container")
    assert_one_line_error(r, 'container "no-such-container" does not exist')


@pytest.mark.parametrize("flags,needle", [
    (["--manage-cgroups-mode", "sometimes"], "--manage-cgroups-mode: 'sometimes'"),
    (["--empty-ns", "pid"], "--empty-ns: namespace 'pid'"),
    (["--page-server", "nowhere"], "--page-server 'nowhere': want ADDRESS:PORT"),
    (["--status-fd", "99"], "--status-fd '99': not an open file descriptor"),
])
def test_checkpoint_flag_errors_name_the_flag(oci, tmp_path, flags, needle):
    with Running(oci, config(["sleep", "1000"])) as c:
        r = oci.cmd("checkpoint", *flags, "--image-path", tmp_path / "img", c.cid)
        assert_one_line_error(r, needle)
        assert oci.state(c.cid)["status"] == "running"


def test_without_criu_one_line_names_it(oci, tmp_path):
    with Running(oci, config(["sleep", "1000"])) as c:
        r = oci.cmd("--criu", tmp_path / "no-criu", "checkpoint", "--image-path", tmp_path / "img", c.cid)
        assert_one_line_error(r, "criu not found", "--criu")
        assert oci.state(c.cid)["status"] == "running"


@needs_criu
def test_restore_without_an_image_makes_nothing(oci, tmp_path):
    cid = oci.new_id()
    bundle = oci.bundle(config(["sleep", "1000"]))
    r = oci.cmd("restore", "-d", "--image-path", tmp_path / "none", "-b", bundle, cid)
    assert_one_line_error(r, f"--image-path {tmp_path / 'none'}: no checkpoint there")
    assert not os.path.exists(os.path.join(oci.root, cid))


@needs_criu
@pytest.mark.parametrize("flags,needle", [
    (["--lsm-profile", "apparmor:x"], "--lsm-profile 'apparmor:x': apparmor is not enabled"),
    (["--lsm-profile", "smack"], "--lsm-profile 'smack': want apparmor:NAME or selinux:LABEL"),
    (["--lsm-mount-context", "system_u:object_r:x:s0"], "--lsm-mount-context: SELinux is not enabled"),
    (["--manage-cgroups-mode", "never"], "--manage-cgroups-mode: 'never'"),
])
def test_restore_flag_errors_name_the_flag(oci, tmp_path, flags, needle):
    img = tmp_path / "img"
    img.mkdir()
    (img / "inventory.img").write_bytes(b"")
    cid = oci.new_id()
    r = oci.cmd("restore", "-d", *flags, "--image-path", img, "-b", oci.bundle(config(["true"])), cid)
    assert_one_line_error(r, needle)
    assert not os.path.exists(os.path.join(oci.root, cid))


@needs_criu
def test_restore_where_criu_fails_leaves_nothing(oci, tmp_path):
    """An image that criu cannot restore (here: criu fails at start on this
    kernel, or refuses a damaged image): one line, no state, no cgroup."""
    img = tmp_path / "img"
    img.mkdir()
    (img / "inventory.img").write_bytes(b"\0not an image")
    cid = oci.new_id()
    bundle = oci.bundle(config(["sleep", "1000"]))
    log = tmp_path / "log.json"
    r = oci.cmd("--log", log, "--log-format", "json", "restore", "-d", "--image-path", img,
                "-b", bundle, cid)
    assert_one_line_error(r, f"restore {cid}: criu restore failed: ", str(img / "restore.log"))
    assert len(json_log_errors(log)) == 1
    assert not os.path.exists(os.path.join(oci.root, cid))
    assert not os.path.exists(bundle / "rootfs" / "criu-root")
    with open("/proc/self/mountinfo") as f:
        assert "criu-root" not in f.read()
    # oci's own check: no cgroup named after cid is left


def test_features_says_checkpoint_where_criu_is(oci):
    r = subprocess.run([RUNTIME, "features"], capture_output=True, text=True, timeout=30)
    ann = json.loads(r.stdout)["annotations"]
    assert ann["org.ociruntime.checkpoint.enabled"] == ("true" if CRIU else "false")


def test_restore_mountpoints_never_leave_the_rootfs(tmp_path):
    """restore makes the config's mountpoints in a fresh rootfs (criu needs
    them); a malicious image's symlink must not make it create them on the
    host: a symlink component is not followed."""
    from ociruntime.checkpoint import make_mountpoints
    rootfs, outside = tmp_path / "rootfs", tmp_path / "outside"
    rootfs.mkdir()
    outside.mkdir()
    (rootfs / "evil").symlink_to(outside)            # absolute: the host's path
    (rootfs / "rel").symlink_to("../outside")         # relative: out of the root
    (tmp_path / "file").write_text("x")
    cfg = {"mounts": [
        {"destination": "/evil/made", "type": "bind", "source": str(tmp_path)},
        {"destination": "/rel/made", "type": "bind", "source": str(tmp_path)},
        {"destination": "/data/sub", "type": "bind", "source": str(tmp_path)},
        {"destination": "/etc/hosts", "type": "bind", "source": str(tmp_path / "file")},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs"},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts"},
    ]}
    make_mountpoints(str(rootfs), cfg, str(tmp_path))
    assert list(outside.iterdir()) == []
    assert (rootfs / "data" / "sub").is_dir()
    assert (rootfs / "etc" / "hosts").is_file()
    assert (rootfs / "dev").is_dir() and not (rootfs / "dev" / "pts").exists()


def test_stdio_on_the_host_dev_null_becomes_the_container_s(oci):
    """As runc's reOpenDevNull: conmon's /dev/null stdin is a file of the
    host's /dev, which criu cannot dump; the init reopens it on the
    container's own null device.  Failed before: fd 0 was the host's."""
    b = oci.bundle(config(["sleep", "1000"]))
    cid = oci.new_id()
    with open("/dev/null") as null, open(oci.tmp / "out", "w") as out:
        r = oci.cmd("run", "-d", "-b", b, cid, stdin=null, stdout=out, stderr=out, capture_output=False)
    assert r.returncode == 0, (oci.tmp / "out").read_text()
    pid = oci.state(cid)["pid"]
    st = os.stat(f"/proc/{pid}/fd/0")
    host = os.stat("/dev/null")
    assert st.st_rdev == host.st_rdev                      # still the null device
    assert st.st_dev != host.st_dev, "fd 0 is still the host's /dev/null"
    assert os.stat(f"/proc/{pid}/fd/1").st_dev != st.st_dev   # a file: left as it was
    oci.ok("delete", "--force", cid)
