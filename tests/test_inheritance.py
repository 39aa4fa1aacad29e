"""config-linux.md's inheritance and propagation rules (issue 12.4):

* a namespace the config does not list is inherited from the runtime, the
  mount namespace included: the container then shares the host's mount
  table, so the init chroots into root.path and mounts nothing there
  (nothing may be left on the host);
* every rootfsPropagation value runs, and `/` inside has it;
* a new user namespace without uid/gid mappings runs, as in crun 1.8:
  the ids from 0 to the highest the config names map to the caller's.
"""
import os
import subprocess

import pytest

from ocihelpers import add_userns, config, drop_ns, open_tmp, set_ns, sh


def host_mounts(oci):
    """What the container could have changed in the host's mount table:
    mounts under the test's directories, and the host root's own entry
    (its propagation).  Other tests on this machine mount elsewhere."""
    with open("/proc/self/mountinfo") as f:
        rows = [line.split() for line in f]
    return sorted((r[4], r[3], r[6:r.index("-")]) for r in rows
                  if r[4] == "/" or r[4].startswith(str(oci.tmp)))


def test_no_mount_namespace_runs_in_the_hosts(oci):
    cfg = drop_ns(config(["sleep", "1000"]), "mount")
    before = host_mounts(oci)
    b = oci.bundle(cfg)
    cid = oci.new_id()
    r = oci.create("-b", b, cid)
    assert r.returncode == 0, r.stderr
    oci.ok("start", cid)
    pid = oci.state(cid)["pid"]
    # the host's mount namespace, rooted at the rootfs
    assert os.readlink(f"/proc/{pid}/ns/mnt") == os.readlink("/proc/self/ns/mnt")
    assert os.readlink(f"/proc/{pid}/root") == str(b / "rootfs")
    assert os.readlink(f"/proc/{pid}/ns/pid") != os.readlink("/proc/self/ns/pid")
    assert host_mounts(oci) == before   # no proc, /dev, masks or read-only binds on the host
    oci.ok("delete", "--force", cid)
    assert host_mounts(oci) == before


def test_no_mount_namespace_process_sees_the_rootfs(oci):
    cfg = drop_ns(config(sh("ls /; echo cwd=$(pwd)")), "mount")
    cfg["process"]["cwd"] = "/tmp"
    before = host_mounts(oci)
    code, out, err = oci.run_output(cfg=cfg)
    assert code == 0, err
    names = out.split()
    assert "bin" in names and "cwd=/tmp" in names
    assert "work" not in names and "boot" not in names   # not the host's /
    assert host_mounts(oci) == before


def test_no_mount_namespace_exec(oci):
    cfg = drop_ns(config(["sleep", "1000"]), "mount")
    b = oci.bundle(cfg)
    cid = oci.new_id()
    assert oci.create("-b", b, cid).returncode == 0
    oci.ok("start", cid)
    r = oci.cmd("exec", cid, "sh", "-c", "ls /")
    assert r.returncode == 0, r.stderr
    assert "bin" in r.stdout.split() and "work" not in r.stdout.split()
    oci.ok("delete", "--force", cid)


# rootfsPropagation -> what `/` shows in mountinfo's optional fields
PROPAGATION = {
    "shared": "shared:", "rshared": "shared:",
    "slave": "master:", "rslave": "master:",
    "private": None, "rprivate": None,
    "unbindable": "unbindable", "runbindable": "unbindable",
}


def host_mount_is_shared(path):
    """Whether the host's mount holding path is shared: only then can the
    container's root be its slave (a slave of a private mount is private)."""
    with open("/proc/self/mountinfo") as f:
        rows = [line.split() for line in f]
    path = os.path.realpath(path)
    best = max((r for r in rows if path == r[4] or path.startswith(r[4].rstrip("/") + "/")),
               key=lambda r: len(r[4]))
    return any(f.startswith("shared:") for f in best[6:best.index("-")])


@pytest.mark.parametrize("prop", list(PROPAGATION))
def test_rootfs_propagation(oci, prop):
    cfg = config(sh("awk '$5 == \"/\" {print}' /proc/self/mountinfo | tail -n 1"))
    cfg["linux"]["rootfsPropagation"] = prop
    b = oci.bundle(cfg)
    r = oci.cmd("run", "-b", b, oci.new_id())
    assert r.returncode == 0, r.stderr
    fields = r.stdout.split()
    optional = fields[6:fields.index("-")]
    want = PROPAGATION[prop]
    if want == "master:" and not host_mount_is_shared(b / "rootfs"):
        want = None
    if want is None:
        assert optional == [], r.stdout
    else:
        assert any(f.startswith(want) for f in optional), r.stdout
        others = {"shared:", "master:", "unbindable"} - {want}
        assert not any(f.startswith(o) for f in optional for o in others), r.stdout


def userns_without_mappings(args, **user):
    cfg = set_ns(config(args), "user")
    cfg["linux"].pop("uidMappings", None)
    cfg["linux"].pop("gidMappings", None)
    cfg["process"]["user"].update(user)
    return cfg


def test_user_namespace_without_mappings_runs(oci):
    """As crun 1.8 does: ids 0..the highest the config names (here devpts'
    gid=5) map to the caller's."""
    open_tmp(oci)
    cfg = userns_without_mappings(sh("id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map"))
    code, out, err = oci.run_output(cfg=cfg)
    assert code == 0, err
    assert out.split() == ["0", "0", "0", "0", "1", "0", "0", "6"], (out, err)


def test_user_namespace_without_mappings_as_a_user(oci):
    open_tmp(oci)
    cfg = userns_without_mappings(sh("id -u; id -G; cat /proc/self/uid_map /proc/self/gid_map"),
                                  uid=1000, gid=1000, additionalGids=[1002])
    code, out, err = oci.run_output(cfg=cfg)
    assert code == 0, err
    assert out.split() == ["1000", "1000", "1002", "0", "0", "1001", "0", "0", "1003"], (out, err)


def test_user_namespace_without_mappings_from_outside(oci):
    open_tmp(oci)
    cfg = userns_without_mappings(["sleep", "1000"])
    b = oci.bundle(cfg)
    cid = oci.new_id()
    r = oci.create("-b", b, cid)
    assert r.returncode == 0, r.stderr
    pid = oci.state(cid)["pid"]
    with open(f"/proc/{pid}/uid_map") as f:
        assert f.read().split() == ["0", "0", "1"]
    assert os.readlink(f"/proc/{pid}/ns/user") != os.readlink("/proc/self/ns/user")
    oci.ok("start", cid)
    r = oci.cmd("exec", cid, "id", "-u")
    assert (r.returncode, r.stdout) == (0, "0\n"), r.stderr
    oci.ok("delete", "--force", cid)


def test_only_one_kind_of_mapping_is_refused(oci):
    open_tmp(oci)
    cfg = userns_without_mappings(["true"])
    cfg["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 10}]
    r = oci.create("-b", oci.bundle(cfg), oci.new_id())
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "uidMappings" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_mappings_still_need_a_user_namespace(oci):
    cfg = add_userns(config(["true"]))
    drop_ns(cfg, "user")
    b = oci.bundle(cfg)
    r = oci.create("-b", b, oci.new_id())
    assert r.returncode == 1 and "uidMappings" in r.stderr


def test_no_mount_namespace_sysctl_reaches_the_containers_namespace(oci):
    """Written through the host's /proc before the chroot: /proc/sys/net
    shows the writer's network namespace, the container's."""
    cfg = drop_ns(config(["sleep", "1000"]), "mount")
    cfg["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1"}
    b = oci.bundle(cfg)
    cid = oci.new_id()
    r = oci.create("-b", b, cid)
    assert r.returncode == 0, r.stderr
    pid = oci.state(cid)["pid"]
    inside = subprocess.run(["nsenter", f"--net=/proc/{pid}/ns/net", "cat", "/proc/sys/net/ipv4/ip_forward"],
                            capture_output=True, text=True, timeout=30)
    assert inside.stdout == "1\n", inside.stderr
    oci.ok("delete", "--force", cid)
