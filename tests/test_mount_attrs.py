"""Mount options of config.md beyond mount(2): recursive attributes
(mount_setattr with AT_RECURSIVE), nosymfollow, idmapped mounts (idmap,
ridmap with per-mount uidMappings/gidMappings).  tmpcopyup has its own
file (tests/test_tmpcopyup.py).

Each test binds a host tree with a submount (a tmpfs) into a container and
looks at it from inside: /proc/self/mountinfo, and what writing does."""
import os
import subprocess

import pytest

from conftest import busybox_config


@pytest.fixture
def tree():
    """A tree with files of uid 0 and 5, and tree/sub, a tmpfs; in a
    directory a user namespace's root can reach (pytest's are 0700)."""
    import shutil
    import tempfile
    from pathlib import Path
    top = Path(tempfile.mkdtemp(prefix="ociruntime-test-tree-", dir="/tmp"))
    os.chmod(top, 0o755)
    t = top / "tree"
    (t / "sub").mkdir(parents=True)
    (t / "f0").write_text("zero")
    (t / "f5").write_text("five")
    os.chown(t / "f5", 5, 5)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=755", "tmpfs", str(t / "sub")], check=True)
    (t / "sub" / "x").write_text("x")
    yield t
    subprocess.run(["umount", "-l", str(t / "sub")], check=False)
    shutil.rmtree(top, ignore_errors=True)


def _run(oci, mounts, script, cfg=None):
    cfg = cfg or busybox_config()
    cfg["process"]["args"] = ["sh", "-c", script]
    cfg["mounts"].extend(mounts)
    b = oci.bundle(cfg)
    for m in mounts:   # (a mapped root may not mkdir in the image)
        (b / "rootfs" / m["destination"].lstrip("/")).mkdir(exist_ok=True)
    r = oci.cmd("run", "-b", b, oci.new_id())
    return r.returncode, r.stdout, r.stderr


def _mount_opts(out, dest):
    """{mount point: per-mount options} from a mountinfo dump."""
    found = {}
    for line in out.splitlines():
        f = line.split()
        if len(f) > 5 and f[4] in dest:
            found[f[4]] = set(f[5].split(","))
    return found


def _bind(src, dest, *options, **extra):
    m = {"destination": dest, "type": "bind", "source": str(src), "options": ["rbind", *options]}
    m.update(extra)
    return m


def test_rro_makes_submounts_read_only(oci, tree):
    """config.md: `rro` "Recursive `ro`" (mount_setattr AT_RECURSIVE); plain
    `ro` only makes the top read-only."""
    code, out, err = _run(oci, [_bind(tree, "/rro", "rro"), _bind(tree, "/ro", "ro")],
                          "touch /rro/sub/y 2>&1; touch /rro/y 2>&1; touch /ro/y 2>&1;"
                          "touch /ro/sub/y && echo sub-writable; cat /proc/self/mountinfo")
    assert code == 0, err
    assert out.count("Read-only file system") == 3
    assert "sub-writable" in out
    opts = _mount_opts(out, ("/rro", "/rro/sub", "/ro", "/ro/sub"))
    assert "ro" in opts["/rro"] and "ro" in opts["/rro/sub"]
    assert "ro" in opts["/ro"] and "rw" in opts["/ro/sub"]


def test_read_only_submount_stays_read_only(oci, tree):
    """A submount that is read-only on the host stays read-only in a bind
    of its parent (rbind copies it with its flags), even with `rw` on the
    bind; `rrw` is what clears it, recursively."""
    subprocess.run(["mount", "-o", "remount,bind,ro", str(tree / "sub")], check=True)
    code, out, err = _run(oci, [_bind(tree, "/t", "rw"), _bind(tree, "/w", "rrw")],
                          "touch /t/sub/y 2>&1; touch /w/sub/y && echo rrw-writable; cat /proc/self/mountinfo")
    assert code == 0, err
    assert "Read-only file system" in out
    assert "rrw-writable" in out
    opts = _mount_opts(out, ("/t/sub", "/w/sub"))
    assert "ro" in opts["/t/sub"] and "rw" in opts["/w/sub"]
    # The host's mount is unchanged.
    with open("/proc/self/mountinfo") as f:
        host = [l.split() for l in f if f" {tree}/sub " in l]
    assert host and "ro" in host[0][5].split(",")


SETTERS = [("rnosuid", "nosuid"), ("rnodev", "nodev"), ("rnoexec", "noexec"),
           ("rnoatime", "noatime"), ("rnodiratime", "nodiratime"),
           ("rnosymfollow", "nosymfollow"), ("rrelatime", "relatime")]


@pytest.mark.parametrize("option,flag", SETTERS)
def test_recursive_option_reaches_the_submount(oci, tree, option, flag):
    """config.md: the r* options are the recursive forms of the mount(8)
    flags: they apply to every mount under the destination."""
    code, out, err = _run(oci, [_bind(tree, "/t", option)], "cat /proc/self/mountinfo")
    assert code == 0, err
    opts = _mount_opts(out, ("/t", "/t/sub"))
    assert flag in opts["/t"] and flag in opts["/t/sub"], opts


def test_rstrictatime_and_ratime(oci, tree):
    """rstrictatime: neither relatime nor noatime; ratime undoes noatime."""
    subprocess.run(["mount", "-o", "remount,noatime", str(tree / "sub")], check=True)
    code, out, err = _run(oci, [_bind(tree, "/s", "rstrictatime"), _bind(tree, "/a", "ratime")],
                          "cat /proc/self/mountinfo")
    assert code == 0, err
    opts = _mount_opts(out, ("/s/sub", "/a/sub"))
    assert not opts["/s/sub"] & {"relatime", "noatime"}
    assert "noatime" not in opts["/a/sub"]


CLEARERS = [("rsuid", "nosuid"), ("rdev", "nodev"), ("rexec", "noexec"), ("rsymfollow", "nosymfollow"),
            ("rdiratime", "nodiratime")]


@pytest.mark.parametrize("option,flag", CLEARERS)
def test_recursive_clearing_option(oci, tree, option, flag):
    """rsuid, rdev, rexec, rsymfollow, rdiratime clear the flag on every
    mount under the destination."""
    subprocess.run(["mount", "-o", f"remount,{flag}", str(tree / "sub")], check=True)
    code, out, err = _run(oci, [_bind(tree, "/t", option)], "cat /proc/self/mountinfo")
    assert code == 0, err
    opts = _mount_opts(out, ("/t/sub",))
    assert flag not in opts["/t/sub"], opts


def test_later_option_wins(oci, tree):
    """Options apply in order, as mount(8) reads them: rro then rrw is rw."""
    code, out, err = _run(oci, [_bind(tree, "/t", "rro", "rrw")], "cat /proc/self/mountinfo")
    assert code == 0, err
    assert "rw" in _mount_opts(out, ("/t/sub",))["/t/sub"]


def test_rro_on_a_tmpfs(oci):
    """Recursive options work on any mount, not only binds."""
    code, out, err = _run(oci, [{"destination": "/tm", "type": "tmpfs", "source": "tmpfs",
                                 "options": ["rro"]}], "touch /tm/x 2>&1; true")
    assert code == 0, err
    assert "Read-only file system" in out


def test_nosymfollow(oci, tree):
    """config.md: `nosymfollow` (SHOULD): symlinks on the mount are not
    followed; `symfollow` is its opposite."""
    os.symlink("f0", tree / "link")
    code, out, err = _run(oci, [_bind(tree, "/n", "nosymfollow"), _bind(tree, "/y", "nosymfollow", "symfollow")],
                          "cat /n/link 2>&1; echo; cat /y/link")
    assert code == 0, err
    assert "zero" == out.splitlines()[-1]
    assert "zero" not in out.splitlines()[0]


# -- idmapped mounts ----------------------------------------------------------

MAP = {"uidMappings": [{"containerID": 0, "hostID": 1000, "size": 10}],
       "gidMappings": [{"containerID": 0, "hostID": 2000, "size": 10}]}


def _owners(out):
    """{name: (uid, gid)} from `ls -ln` lines."""
    found = {}
    for line in out.splitlines():
        f = line.split()
        if len(f) >= 9 and f[0][0] in "-d":
            found[f[-1]] = (int(f[2]), int(f[3]))
    return found


def test_idmap_shows_files_with_the_mapped_owner(oci, tree):
    """config.md `idmap`: "If uidMappings or gidMappings are specified for
    the mount, the runtime MUST use those values for the mount's mapping"
    (mount_setattr(MOUNT_ATTR_IDMAP)): on-disk 0 shows as 1000/2000, 5 as
    1005/2005; the submount of an rbind is not mapped without ridmap."""
    code, out, err = _run(oci, [_bind(tree, "/m", "idmap", **MAP)],
                          "ls -ln /m; ls -ln /m/sub; grep ' /m ' /proc/self/mountinfo")
    assert code == 0, err
    own = _owners(out)
    assert own["f0"] == (1000, 2000) and own["f5"] == (1005, 2005)
    assert own["x"] == (0, 0)   # the submount keeps its own ids
    assert "idmapped" in out
    # The host's view is unchanged.
    assert os.stat(tree / "f0").st_uid == 0 and os.stat(tree / "f5").st_uid == 5


def test_ridmap_maps_the_submounts_too(oci, tree):
    """config.md `ridmap`: "the mapping is applied recursively"."""
    code, out, err = _run(oci, [_bind(tree, "/m", "ridmap", **MAP)], "ls -ln /m/sub")
    assert code == 0, err
    assert _owners(out)["x"] == (1000, 2000)


def test_ids_outside_the_mapping_show_as_overflow(oci, tree):
    """An id the mount's mapping does not cover shows as the overflow id."""
    m = {"uidMappings": [{"containerID": 5, "hostID": 3000, "size": 1}],
         "gidMappings": [{"containerID": 5, "hostID": 3000, "size": 1}]}
    code, out, err = _run(oci, [_bind(tree, "/m", "idmap", **m)], "ls -ln /m")
    assert code == 0, err
    own = _owners(out)
    assert own["f5"] == (3000, 3000)
    assert own["f0"] == (65534, 65534)


def test_idmap_takes_the_containers_mapping_in_a_user_namespace(oci, tree):
    """config.md: without mount mappings "the runtime MAY use the
    container's user namespace mapping": host root's files are root's in a
    container whose root is host 100000 (a plain bind shows nobody)."""
    from ocihelpers import add_userns
    cfg = add_userns(busybox_config(), oci=oci)
    os.chmod(tree, 0o755)
    code, out, err = _run(oci, [_bind(tree, "/m", "idmap"), _bind(tree, "/p")],
                          "ls -ln /m; echo ---; ls -ln /p", cfg=cfg)
    assert code == 0, err
    mapped, plain = out.split("---")
    assert _owners(mapped)["f0"] == (0, 0) and _owners(mapped)["f5"] == (5, 5)
    assert _owners(plain)["f0"] == (65534, 65534)


def test_idmap_with_explicit_mappings_in_a_user_namespace(oci, tree):
    """Mount mappings are host-side: 0 -> 100000 shows on-disk 0 as the
    container's root when the container maps 0 -> 100000."""
    from ocihelpers import add_userns
    cfg = add_userns(busybox_config(), oci=oci)
    os.chmod(tree, 0o755)
    m = {"uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
         "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}]}
    code, out, err = _run(oci, [_bind(tree, "/m", "ridmap", **m)],
                          "ls -ln /m; touch /m/sub/new && ls -ln /m/sub", cfg=cfg)
    assert code == 0, err
    own = _owners(out)
    assert own["f0"] == (0, 0) and own["new"] == (0, 0)
    assert os.stat(tree / "sub" / "new").st_uid == 0   # written as on-disk 0


def test_idmap_without_any_mapping_is_an_error(oci, tree):
    """config.md: "If there are no uidMappings and gidMappings specified and
    the container isn't using user namespaces, an error MUST be returned"."""
    code, out, err = _run(oci, [_bind(tree, "/m", "idmap")], "true")
    assert code == 1
    assert "mounts[" in err and "idmap" in err
    assert oci.ok("list", "-q").stdout == ""


def test_uid_mappings_need_gid_mappings(oci, tree):
    """config.md: uidMappings "MUST be specified along with gidMappings"."""
    code, out, err = _run(oci, [_bind(tree, "/m", "idmap", uidMappings=MAP["uidMappings"])], "true")
    assert code == 1
    assert "gidMappings" in err


def test_idmap_is_for_bind_mounts(oci):
    code, out, err = _run(oci, [{"destination": "/tm", "type": "tmpfs", "source": "tmpfs",
                                 "options": ["idmap"], **MAP}], "true")
    assert code == 1
    assert "bind" in err
