"""Rootless: an ordinary user (made by the fixture: useradd, /etc/subuid
and /etc/subgid, its own XDG_RUNTIME_DIR) runs containers directly, and
every permission problem is one clear line.  Each test checks from
outside (state, files, processes) and from inside (the container's
output), and that nothing is left: no state directory, no process."""
import json
import os
import shutil
import subprocess
import uuid

import pytest

from conftest import ROOTFS, RUNTIME
from rootless_user import RootlessUser


def _skip_reason():
    for tool in ("useradd", "userdel", "setpriv"):
        if not shutil.which(tool):
            return f"{tool} is missing"
    try:
        with open("/proc/sys/user/max_user_namespaces") as f:
            if int(f.read()) == 0:
                return "user namespaces are disabled (user.max_user_namespaces = 0)"
    except OSError:
        pass
    try:
        with open("/proc/sys/kernel/unprivileged_userns_clone") as f:
            if f.read().strip() == "0":
                return "unprivileged user namespaces are disabled"
    except OSError:
        pass
    for path in (RUNTIME, str(ROOTFS)):
        p = os.path.dirname(path)
        while p != "/":
            if not os.stat(p).st_mode & 0o001:
                return f"{p} is not traversable by other users: the test user cannot run {RUNTIME}"
            p = os.path.dirname(p)
    return None


pytestmark = pytest.mark.skipif(_skip_reason() is not None, reason=str(_skip_reason()))


@pytest.fixture(scope="module")
def user():
    u = RootlessUser.make()
    try:
        yield u
    finally:
        u.remove()


class Rootless:
    """ociruntime as the test user; every container made is force-deleted
    at the end, and the test fails if its state or a process is left."""

    def __init__(self, user):
        self.user = user
        self.ids = []
        self.n = 0
        self.roots = set()

    def new_id(self):
        cid = f"rl-{uuid.uuid4().hex[:8]}"
        self.ids.append(cid)
        return cid

    def spec(self, args, **changes):
        """`ociruntime spec --rootless`, as the user writes it, changed."""
        r = self.user.run([RUNTIME, "spec", "--rootless", "-b", self.user.home + "/spec.tmp"],
                          cwd="/")
        if r.returncode != 0 and "exists" not in r.stderr:
            os.makedirs(self.user.home + "/spec.tmp", exist_ok=True)
            shutil.chown(self.user.home + "/spec.tmp", self.user.uid, self.user.gid)
            r = self.user.run([RUNTIME, "spec", "--rootless", "-b", self.user.home + "/spec.tmp"])
        assert r.returncode == 0, r.stderr
        path = self.user.home + "/spec.tmp/config.json"
        with open(path) as f:
            cfg = json.load(f)
        os.unlink(path)
        cfg["process"]["terminal"] = False
        cfg["process"]["args"] = list(args)
        for key, value in changes.items():
            cfg[key] = value
        return cfg

    def bundle(self, cfg):
        self.n += 1
        return self.user.bundle(f"bundle{self.n}-{uuid.uuid4().hex[:6]}", cfg, ROOTFS)

    def cmd(self, *args, root=None, env=None, user=None, **kw):
        glob = ["--root", root] if root else []
        if root:
            self.roots.add(root)
        return self.user.run([RUNTIME, *glob, *args], env=env, user=user, **kw)

    def ok(self, *args, **kw):
        r = self.cmd(*args, **kw)
        assert r.returncode == 0, f"{args}: {r.returncode}: {r.stderr}"
        return r

    def create(self, *args, **kw):
        # stdout/stderr on files: the init inherits them (see conftest.Oci.create)
        self.n += 1
        out = os.path.join(self.user.home, f"create{self.n}.out")
        with open(out, "w+") as f:
            r = self.cmd("create", *args, stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT,
                         capture_output=False, **kw)
            f.seek(0)
            r.stdout = r.stderr = f.read()
        return r

    @property
    def default_root(self):
        return os.path.join(self.user.xdg, "ociruntime")

    def cleanup(self):
        left = []
        for cid in self.ids:
            for root in [None, *self.roots]:
                self.cmd("delete", "--force", cid, root=root)
        for root in [self.default_root, f"/tmp/ociruntime-{self.user.uid}", *self.roots]:
            if os.path.isdir(root):
                left += [f"state {root}/{n}" for n in os.listdir(root) if n in self.ids]
        for pid in self.user.processes():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            left.append(f"process {pid}: {cmd}")
            try:
                os.kill(pid, 9)
            except OSError:
                pass
        return left


@pytest.fixture
def rl(user):
    r = Rootless(user)
    yield r
    left = r.cleanup()
    assert not left, f"left behind: {left}"


def _one_line_error(r, *needles):
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "internal error" not in r.stderr and "Traceback" not in r.stderr, r.stderr
    for n in needles:
        assert n in r.stderr, r.stderr


# -- run, as runc does ---------------------------------------------------------------

def test_spec_rootless_then_run_without_root_flag(rl):
    """The issue's first row: `spec --rootless && run x`, no --root."""
    b = rl.bundle(rl.spec(["sh", "-c", "id -u; id -g; cat /proc/self/uid_map"]))
    cid = rl.new_id()
    r = rl.cmd("run", "-b", b, cid)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split("\n")
    assert lines[0] == "0" and lines[1] == "0", r.stdout
    assert lines[2].split() == ["0", str(rl.user.uid), "1"], r.stdout
    st = os.stat(rl.default_root)
    assert st.st_uid == rl.user.uid and st.st_mode & 0o777 == 0o700
    assert not os.path.exists(os.path.join(rl.default_root, cid))


def test_without_xdg_runtime_dir_the_root_is_private_in_tmp(rl):
    b = rl.bundle(rl.spec(["true"]))
    cid = rl.new_id()
    env = rl.user.env(XDG_RUNTIME_DIR=None)
    r = rl.create("-b", b, cid, env=env)
    assert r.returncode == 0, r.stdout
    root = f"/tmp/ociruntime-{rl.user.uid}"
    st = os.lstat(root)
    assert st.st_uid == rl.user.uid and st.st_mode & 0o777 == 0o700
    assert os.path.isdir(os.path.join(root, cid))
    assert json.loads(rl.ok("state", cid, env=env).stdout)["status"] == "created"
    rl.ok("delete", "--force", cid, env=env)
    assert not os.path.exists(os.path.join(root, cid))


def test_a_tmp_root_made_by_someone_else_is_refused(rl):
    """Another user (here root) made /tmp/ociruntime-UID first: it would
    see our state; refused, naming the directory."""
    root = f"/tmp/ociruntime-{rl.user.uid}"
    shutil.rmtree(root, ignore_errors=True)
    os.mkdir(root, 0o777)
    os.chmod(root, 0o777)
    try:
        b = rl.bundle(rl.spec(["true"]))
        r = rl.cmd("run", "-b", b, rl.new_id(), env=rl.user.env(XDG_RUNTIME_DIR=None))
        _one_line_error(r, root, "--root")
        assert os.listdir(root) == []
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_explicit_root(rl):
    """The issue's second row: --root ~/state, on a v1 host (no cgroups of ours)."""
    root = os.path.join(rl.user.home, "state")
    b = rl.bundle(rl.spec(["sh", "-c", "echo hello; ls /dev"]))
    cid = rl.new_id()
    r = rl.cmd("run", "-b", b, cid, root=root)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("hello\n")
    for dev in ("null", "zero", "full", "random", "urandom", "tty", "pts", "shm"):
        assert dev in r.stdout.split(), r.stdout
    assert os.listdir(root) == []


def test_devices_are_the_hosts_bound_in(rl):
    """mknod is impossible in a user namespace: the default devices are
    the host's, bound (they work: /dev/null swallows, /dev/zero reads)."""
    b = rl.bundle(rl.spec(["sh", "-c", "echo x > /dev/null && head -c 4 /dev/zero | wc -c && "
                                       "stat -c '%t:%T' /dev/null /dev/urandom"]))
    r = rl.cmd("run", "-b", b, rl.new_id())
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["4", "1:3", "1:9"], r.stdout


def test_sysfs_is_bound_without_a_network_namespace(rl):
    """runc's rootless spec binds /sys (sysfs cannot be mounted without a
    network namespace of our own); a `sysfs` mount there is bound too."""
    cfg = rl.spec(["sh", "-c", "ls /sys/kernel >/dev/null && grep ' /sys ' /proc/self/mountinfo"])
    for m in cfg["mounts"]:
        if m["destination"] == "/sys":
            m.update(type="sysfs", source="sysfs", options=["nosuid", "noexec", "nodev", "ro"])
    r = rl.cmd("run", "-b", rl.bundle(cfg), rl.new_id())
    assert r.returncode == 0, r.stderr
    assert " ro," in r.stdout or " ro " in r.stdout, r.stdout


def test_sysfs_is_mounted_with_a_network_namespace(rl):
    cfg = rl.spec(["sh", "-c", "grep ' /sys ' /proc/self/mountinfo; ip link 2>/dev/null | grep -c lo"])
    cfg["linux"]["namespaces"].append({"type": "network"})
    for m in cfg["mounts"]:
        if m["destination"] == "/sys":
            m.update(type="sysfs", source="sysfs", options=["nosuid", "noexec", "nodev", "ro"])
    r = rl.cmd("run", "-b", rl.bundle(cfg), rl.new_id())
    assert r.returncode == 0, r.stderr
    assert " - sysfs " in r.stdout, r.stdout


# -- cgroups: best effort --------------------------------------------------------------

@pytest.mark.parametrize("resources,field", [
    ({"memory": {"limit": 64 << 20}}, "linux.resources.memory: cannot set the memory limit"),
    ({"pids": {"limit": 50}}, "linux.resources.pids: cannot set the pids limit"),
    ({"cpu": {"shares": 512}}, "linux.resources.cpu: cannot set the cpu limit"),
])
def test_a_limit_without_delegated_cgroups_is_refused(rl, resources, field):
    """On this v1 host nothing is delegated: a limit cannot be kept, and is
    refused naming it (runc: "cannot set memory limit: container could
    not join or create cgroup")."""
    cfg = rl.spec(["true"])
    cfg["linux"]["resources"] = resources
    cid = rl.new_id()
    r = rl.cmd("run", "-b", rl.bundle(cfg), cid)
    _one_line_error(r, field, "rootless", "not writable")
    assert not os.path.exists(os.path.join(rl.default_root, cid))


def test_device_rules_alone_do_not_need_cgroups(rl):
    """runc's rootless ignores device rules (runc spec writes deny-all for root)."""
    cfg = rl.spec(["true"])
    cfg["linux"]["resources"] = {"devices": [{"allow": False, "access": "rwm"}]}
    r = rl.cmd("run", "-b", rl.bundle(cfg), rl.new_id())
    assert r.returncode == 0, r.stderr


def test_systemd_cgroup_is_refused_clearly(rl):
    r = rl.cmd("--systemd-cgroup", "run", "-b", rl.bundle(rl.spec(["true"])), rl.new_id())
    _one_line_error(r)
    assert "systemd" in r.stderr


# -- user namespace --------------------------------------------------------------------

def _subid_maps(u):
    return ([{"containerID": 0, "hostID": u.uid, "size": 1},
             {"containerID": 1, "hostID": u.subid, "size": 65536}],
            [{"containerID": 0, "hostID": u.gid, "size": 1},
             {"containerID": 1, "hostID": u.subid, "size": 65536}])


def test_several_ranges_go_through_newuidmap(rl):
    if not shutil.which("newuidmap") or not shutil.which("newgidmap"):
        pytest.skip("newuidmap/newgidmap (package uidmap) are not installed")
    cfg = rl.spec(["sh", "-c", "cat /proc/self/uid_map /proc/self/gid_map; id -u; id -G; "
                               "cat /proc/self/setgroups"])
    cfg["linux"]["uidMappings"], cfg["linux"]["gidMappings"] = _subid_maps(rl.user)
    cfg["process"]["user"] = {"uid": 1000, "gid": 1000, "additionalGids": [1001, 1002]}
    r = rl.cmd("run", "-b", rl.bundle(cfg), rl.new_id())
    assert r.returncode == 0, r.stderr
    lines = [l.split() for l in r.stdout.strip().splitlines()]
    sub = str(rl.user.subid)
    assert lines[0] == ["0", str(rl.user.uid), "1"] and lines[1] == ["1", sub, "65536"], r.stdout
    assert lines[2] == ["0", str(rl.user.gid), "1"] and lines[3] == ["1", sub, "65536"], r.stdout
    assert lines[4] == ["1000"] and lines[5] == ["1000", "1001", "1002"], r.stdout
    assert lines[6] == ["allow"], r.stdout


def test_ranges_outside_subuid_are_refused_by_newuidmap(rl):
    cfg = rl.spec(["true"])
    cfg["linux"]["uidMappings"] = [{"containerID": 0, "hostID": rl.user.uid, "size": 1},
                                   {"containerID": 1, "hostID": 1, "size": 100}]
    cid = rl.new_id()
    r = rl.cmd("run", "-b", rl.bundle(cfg), cid)
    _one_line_error(r, "linux.uidMappings", "newuidmap", "/etc/subuid")
    assert not os.path.exists(os.path.join(rl.default_root, cid))


def test_additional_gids_need_more_than_the_own_gid(rl):
    cfg = rl.spec(["true"])
    cfg["process"]["user"] = {"uid": 0, "gid": 0, "additionalGids": [5]}
    r = rl.cmd("run", "-b", rl.bundle(cfg), rl.new_id())
    _one_line_error(r, "process.user.additionalGids", "setgroups")


def test_no_user_namespace_is_refused(rl):
    cfg = rl.spec(["true"])
    cfg["linux"]["namespaces"] = [n for n in cfg["linux"]["namespaces"] if n["type"] != "user"]
    del cfg["linux"]["uidMappings"], cfg["linux"]["gidMappings"]
    r = rl.cmd("run", "-b", rl.bundle(cfg), rl.new_id())
    _one_line_error(r, "linux.namespaces", "user namespace")


# -- the other commands, for the owner and for others ---------------------------------------

def test_lifecycle_for_the_owner(rl):
    cfg = rl.spec(["sleep", "300"])
    cid = rl.new_id()
    r = rl.create("-b", rl.bundle(cfg), cid)
    assert r.returncode == 0, r.stdout
    assert json.loads(rl.ok("state", cid).stdout)["status"] == "created"
    rl.ok("start", cid)
    st = json.loads(rl.ok("state", cid).stdout)
    assert st["status"] == "running"
    assert os.stat(f"/proc/{st['pid']}").st_uid == rl.user.uid
    assert rl.ok("exec", cid, "sh", "-c", "echo in; id -u").stdout == "in\n0\n"
    ps = rl.ok("ps", "--format", "json", cid).stdout
    assert st["pid"] in json.loads(ps), ps
    assert "sleep" in rl.ok("ps", cid).stdout
    stats = json.loads(rl.ok("events", "--stats", cid).stdout)
    assert stats["type"] == "stats"
    listed = rl.ok("list", "-q").stdout.split()
    assert cid in listed
    row = next(l for l in rl.ok("list").stdout.splitlines() if l.startswith(cid + " "))
    assert row.split()[-1] == rl.user.name   # OWNER, as runc shows it
    r = rl.cmd("update", "--memory", "1000000", cid)
    _one_line_error(r, "linux.resources.memory", "rootless", "not delegated")
    r = rl.cmd("pause", cid)   # the test user's cgroups are root's: no freezer of its own
    _one_line_error(r, "pause", "freezer")
    assert json.loads(rl.ok("state", cid).stdout)["status"] == "running"
    _one_line_error(rl.cmd("resume", cid), "not paused")
    rl.ok("kill", cid, "KILL")
    for _ in range(200):
        if json.loads(rl.ok("state", cid).stdout)["status"] == "stopped":
            break
        import time
        time.sleep(0.02)
    rl.ok("delete", cid)
    assert not os.path.exists(os.path.join(rl.default_root, cid))


def test_other_users_are_refused(rl):
    """nobody runs every command against the owner's root: refused with a
    line naming the path, and the container is untouched."""
    root = rl.default_root
    cid = rl.new_id()
    assert rl.create("-b", rl.bundle(rl.spec(["sleep", "300"])), cid).returncode == 0
    nobody = dict(rl.user.env(XDG_RUNTIME_DIR=None), HOME="/")
    for args in (["state", cid], ["start", cid], ["kill", cid], ["delete", "-f", cid],
                 ["exec", cid, "true"], ["ps", cid], ["pause", cid], ["resume", cid],
                 ["events", "--stats", cid], ["update", "--pids-limit", "5", cid], ["list"]):
        r = rl.cmd(*args, root=root, env=nobody, user="nobody", cwd="/")
        assert r.returncode in (1, 255), (args, r.returncode, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1, (args, r.stderr)
        assert "permission denied" in r.stderr and root in r.stderr, (args, r.stderr)
        assert "internal error" not in r.stderr, (args, r.stderr)
    rl.roots.discard(root)
    assert json.loads(rl.ok("state", cid).stdout)["status"] == "created"
    rl.ok("delete", "-f", cid)


def test_every_command_against_a_root_owned_state_dir(rl, oci):
    """The issue's item 3: a user runs every command against root's state
    (a container root made): one line naming the path and what to do."""
    cid = oci.new_id()
    b = oci.bundle(args=["sleep", "300"])
    assert oci.create("-b", b, cid).returncode == 0
    os.chmod(oci.root, 0o700)
    ucid = "rl-" + uuid.uuid4().hex[:8]
    ub = rl.bundle(rl.spec(["true"]))
    for args in (["state", cid], ["start", cid], ["kill", cid], ["kill", "--all", cid, "9"],
                 ["delete", cid], ["delete", "-f", cid], ["exec", cid, "true"], ["ps", cid],
                 ["pause", cid], ["resume", cid], ["events", "--stats", cid],
                 ["update", "--pids-limit", "5", cid], ["list"],
                 ["create", "-b", ub, ucid], ["run", "-b", ub, ucid]):
        r = rl.cmd(*args, root=oci.root, cwd="/")
        assert r.returncode in (1, 255), (args, r.returncode, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1, (args, r.stderr)
        assert "permission denied" in r.stderr and oci.root in r.stderr, (args, r.stderr)
        assert "--root" in r.stderr, (args, r.stderr)
        assert "internal error" not in r.stderr and "Traceback" not in r.stderr, (args, r.stderr)
    log = os.path.join(rl.user.home, "log.json")
    r = rl.cmd("--log", log, "--log-format", "json", "state", cid, root=oci.root, cwd="/")
    assert r.returncode == 1
    with open(log) as f:
        entry = json.loads(f.read().splitlines()[-1])
    assert entry["level"] == "error" and "permission denied" in entry["msg"], entry
    rl.roots.discard(oci.root)
    assert oci.state(cid)["status"] == "created"


def test_rootless_false_as_a_user_fails_clearly(rl):
    """--rootless false: the root's defaults, which a user may not use."""
    r = rl.cmd("--rootless", "false", "run", "-b", rl.bundle(rl.spec(["true"])), rl.new_id())
    _one_line_error(r, "permission denied", "/run/ociruntime")


def test_bad_rootless_value(rl):
    r = rl.cmd("--rootless", "maybe", "list")
    _one_line_error(r, "--rootless", "maybe")


def test_terminal_through_the_foreground_proxy(rl):
    cfg = rl.spec(["sh", "-c", "tty; test -t 0 && echo isatty"])
    cfg["process"]["terminal"] = True
    r = rl.cmd("run", "-b", rl.bundle(cfg), rl.new_id(), stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    assert "/dev/pts/0" in r.stdout and "isatty" in r.stdout, r.stdout


def test_the_front_end_finds_the_rootless_root(rl):
    """state/start/kill/delete without --root are answered in C
    (csrc/frontend.c) from the same default root as Python's: a copy of
    the front end whose python3 only says it was called must not be."""
    d = os.path.join(rl.user.home, "front")
    os.mkdir(d)
    shutil.copy(RUNTIME, os.path.join(d, "ociruntime"))
    with open(os.path.join(d, "python3"), "w") as f:
        f.write("#!/bin/sh\necho fell back to python >&2\nexit 99\n")
    os.chmod(os.path.join(d, "python3"), 0o755)
    subprocess.run(["chown", "-R", f"{rl.user.uid}:{rl.user.gid}", d], check=True)
    front = os.path.join(d, "ociruntime")
    cid = rl.new_id()
    assert rl.create("-b", rl.bundle(rl.spec(["sleep", "300"])), cid).returncode == 0
    fast = rl.user.run([front, "state", cid])
    assert fast.returncode == 0, fast.stderr
    assert fast.stdout == rl.ok("state", cid, env=rl.user.env(OCIRUNTIME_NO_FAST="1")).stdout
    for args in (["start", cid], ["kill", cid, "KILL"]):
        r = rl.user.run([front, *args])
        assert r.returncode == 0, (args, r.stderr)
    for _ in range(200):
        if json.loads(rl.user.run([front, "state", cid]).stdout)["status"] == "stopped":
            break
        import time
        time.sleep(0.02)
    r = rl.user.run([front, "delete", cid])
    assert r.returncode == 0, r.stderr
    assert not os.path.exists(os.path.join(rl.default_root, cid))
    # Without XDG_RUNTIME_DIR and no /tmp root yet: Python's to make.
    shutil.rmtree(f"/tmp/ociruntime-{rl.user.uid}", ignore_errors=True)
    r = rl.user.run([front, "state", cid], env=rl.user.env(XDG_RUNTIME_DIR=None))
    assert r.returncode == 99 and "fell back" in r.stderr


# -- delegated cgroups: limits are applied ------------------------------------------------

@pytest.fixture
def delegated(user):
    """Cgroups of our own (at the top of the memory and freezer v1
    hierarchies, and of cgroup2 where it is mounted) given to the user,
    as systemd's user@.service delegation gives one; removed at the end."""
    made = []
    for top in ("/sys/fs/cgroup/memory", "/sys/fs/cgroup/freezer", "/sys/fs/cgroup/unified",
                "/sys/fs/cgroup"):
        if not os.path.isdir(top) or (top == "/sys/fs/cgroup" and made):
            continue
        if top == "/sys/fs/cgroup" and not os.path.exists(top + "/cgroup.controllers"):
            continue   # not a pure v2 host
        d = f"{top}/ocirl-{uuid.uuid4().hex[:8]}"
        os.mkdir(d)
        made.append(d)
        subprocess.run(["chown", "-R", f"{user.uid}:{user.gid}", d], check=True)
    if not any("memory" in d or os.path.exists(d + "/cgroup.controllers") for d in made):
        pytest.skip("no memory cgroup to delegate")
    yield made
    import time
    for d in made:
        subdirs = sorted((t for t, _, _ in os.walk(d)), key=len, reverse=True)
        for _ in range(100):   # a failed test may have left processes in them
            for sub in subdirs:
                try:
                    with open(sub + "/cgroup.procs") as f:
                        for pid in f.read().split():
                            os.kill(int(pid), 9)
                except OSError:
                    pass
                try:
                    os.rmdir(sub)
                except OSError:
                    pass
            if not os.path.exists(d):
                break
            time.sleep(0.05)
        assert not os.path.exists(d), f"cannot remove {d}"


def _in_cgroups(rl, dirs, args, **kw):
    """Run args as the user from inside dirs: the process waits on stdin
    until root has moved it (a user cannot move itself out of root's cgroup)."""
    env = [f"{k}={v}" for k, v in rl.user.env().items()]
    # stdout and stderr on a file: a detached container inherits them
    with open(os.path.join(rl.user.home, "in_cgroups.out"), "w+") as out:
        p = subprocess.Popen(rl.user.argv(["env", "-i", *env, "sh", "-c", 'read x; exec "$@"', "sh",
                                           RUNTIME, *args]),
                             stdin=subprocess.PIPE, stdout=out, stderr=out,
                             text=True, cwd=rl.user.home, **kw)
        for d in dirs:
            with open(d + "/cgroup.procs", "w") as f:
                f.write(str(p.pid))
        p.communicate("\n", timeout=120)
        out.seek(0)
        text = out.read()
    return subprocess.CompletedProcess(p.args, p.returncode, text, text)


def test_delegated_cgroups_get_the_limits(rl, delegated):
    """Where a cgroup is the user's (v1 memory here, or v2's subtree), the
    container's cgroup is made below it and the limit is applied; the
    hierarchies that are not delegated are left out.  The freezer, once
    delegated, pauses."""
    cfg = rl.spec(["sh", "-c", "cat /proc/self/cgroup; sleep 300"])
    cfg["linux"]["resources"] = {"memory": {"limit": 48 << 20}}
    cid = rl.new_id()
    r = _in_cgroups(rl, delegated, ["run", "-d", "-b", rl.bundle(cfg), cid])
    assert r.returncode == 0, r.stderr
    mem = next(d for d in delegated if "/memory/" in d or os.path.exists(d + "/memory.max"))
    inner = os.path.join(mem, cid)
    limit = "memory.limit_in_bytes" if "/memory/" in mem else "memory.max"
    with open(os.path.join(inner, limit)) as f:
        assert int(f.read()) == 48 << 20
    pid = json.loads(rl.ok("state", cid).stdout)["pid"]
    with open(os.path.join(inner, "cgroup.procs")) as f:
        assert str(pid) in f.read().split()
    assert pid in json.loads(rl.ok("ps", "--format", "json", cid).stdout)
    if any("/freezer/" in d for d in delegated):
        rl.ok("pause", cid)
        assert json.loads(rl.ok("state", cid).stdout)["status"] == "paused"
        rl.ok("resume", cid)
        assert json.loads(rl.ok("state", cid).stdout)["status"] == "running"
    rl.ok("delete", "--force", cid)
    for d in delegated:
        assert not os.path.exists(os.path.join(d, cid)), d


def test_features_report_rootless(rl):
    """`features` says rootless works, and a user gets the same answer."""
    r = rl.ok("features")
    ann = json.loads(r.stdout)["annotations"]
    assert ann["org.ociruntime.rootless.enabled"] == "true"
    assert ann["org.ociruntime.rootless.cgroups"] == "delegated-only"
    assert json.loads(subprocess.run([RUNTIME, "features"], capture_output=True, text=True,
                                     check=True).stdout)["annotations"] == ann


def test_bind_mount_of_the_users_private_directory(rl):
    """A volume from a 0700 directory of the user: written from inside as
    the container's root, it is the user's file on the host."""
    vol = os.path.join(rl.user.home, f"vol-{uuid.uuid4().hex[:6]}")
    os.mkdir(vol, 0o700)
    with open(os.path.join(vol, "in"), "w") as f:
        f.write("from-host\n")
    subprocess.run(["chown", "-R", f"{rl.user.uid}:{rl.user.gid}", vol], check=True)
    cfg = rl.spec(["sh", "-c", "cat /vol/in; echo from-container > /vol/out"])
    cfg["mounts"].append({"destination": "/vol", "type": "bind", "source": vol,
                          "options": ["rbind", "rw"]})
    r = rl.cmd("run", "-b", rl.bundle(cfg), rl.new_id())
    assert r.returncode == 0, r.stderr
    assert r.stdout == "from-host\n"
    assert os.stat(os.path.join(vol, "out")).st_uid == rl.user.uid
