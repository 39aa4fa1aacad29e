"""State and lifecycle robustness (issue 11.4, 12.8): a corrupt state.json,
a caller that is not root, a --log that cannot be opened, a huge argv,
the state directories' modes and the init's cwd while it is set up.

Each case ends in one clean line (exit 1, no traceback, nothing left
behind), or, for `delete --force`, in nothing at all of the container:
no process, no cgroup directory, no state directory, no mount."""
import json
import os
import shutil
import signal
import stat
import subprocess
import uuid
from pathlib import Path

import pytest

from conftest import RUNTIME
from test_cgroups_systemd import _slice, _test_slice_dirs, fake_systemd  # noqa: F401 (a fixture)
from ocihelpers import (assert_one_line_error, cmd_files, config, host_cgroups, json_log_errors,
                        pid_alive, sh, wait_gone)

NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def cgroup_mounts():
    """{controllers field: mountpoint} of the hierarchies we are in."""
    from ociruntime.cgroups import host_hierarchies
    return {key: mnt for _n, _t, key, mnt, _r, _o in host_hierarchies()}


def cgroup_dirs_of(pid):
    """The host directories of every cgroup pid is in."""
    mnts = cgroup_mounts()
    return sorted(mnts[k] + p for k, p in host_cgroups(pid).items() if k in mnts)


def existing(paths):
    return [p for p in paths if os.path.isdir(p)]


def scrub(pid, dirs):
    """Whatever a failing test left: kill the cgroups' processes and the
    pid, remove the directories (deepest first)."""
    for d in dirs:
        try:
            with open(os.path.join(d, "cgroup.procs")) as f:
                for p in f.read().split():
                    try:
                        os.kill(int(p), signal.SIGKILL)
                    except ProcessLookupError:
                        pass
        except OSError:
            pass
    if pid and pid_alive(pid):
        os.kill(pid, signal.SIGKILL)
        wait_gone(pid)
    for d in sorted(dirs, key=len, reverse=True):
        for _ in range(200):
            try:
                os.rmdir(d)
                break
            except FileNotFoundError:
                break
            except OSError:
                import time
                time.sleep(0.02)


def make(oci, cfg=None, args=("sleep", "1000"), start=False):
    """A created (or running) container: (cid, bundle, init pid, its cgroup dirs)."""
    b = oci.bundle(cfg, args=list(args))
    cid = oci.new_id()
    r = oci.create("-b", b, cid)
    assert r.returncode == 0, r.stderr
    if start:
        oci.ok("start", cid)
    pid = oci.state(cid)["pid"]
    return cid, b, pid, cgroup_dirs_of(pid)


# -- a corrupt state.json ----------------------------------------------------

HUGE = 2 ** 70
DAMAGE = [
    ("pid", "123"), ("pid", [1]), ("pid", None), ("pid", HUGE), ("pid", -1), ("pid", True),
    ("pid_start", "x"), ("pid_start", None), ("pid_start", HUGE),
    ("cgroups", "x"), ("cgroups", [1]), ("cgroups", None), ("cgroups", {"a": 1}),
    ("cgroups_created", "x"), ("cgroups_created", [1]),
    ("status", 5), ("status", "bogus"), ("bundle", 5), ("rootfs", [1]), ("created", None),
    ("hooks", "x"), ("hooks", {"poststop": [1]}), ("annotations", [1]),
    ("namespaces", 5), ("process", "x"), ("process", {"args": ["true"], "user": "root"}),
    ("process", {"args": ["true"], "env": "x"}), ("has_process", "yes"), ("seccomp", 5),
    ("no_new_keyring", "no"), ("cgroups_systemd", 5),
]


def damage_state(root, cid, field, value):
    path = Path(root) / cid / "state.json"
    data = json.loads(path.read_text())
    if value is KeyError:
        del data[field]
    else:
        data[field] = value
    path.write_text(json.dumps(data))


COMMANDS = [("state",), ("start",), ("kill",), ("kill", "--all"), ("delete",), ("pause",),
            ("resume",), ("ps",), ("events", "--stats"), ("update", "--pids-limit", "10"),
            ("exec",)]


def command_line(args, cid):
    if args == ("exec",):
        return ("exec", cid, "true")
    if args == ("kill", "--all"):
        return ("kill", "--all", cid, "KILL")
    return (*args, cid)


def assert_deleted_whole(oci, cid, pid, dirs):
    r = oci.cmd("delete", "--force", cid)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    assert wait_gone(pid), f"the init {pid} survived delete --force"
    assert existing(dirs) == [], "cgroups left"
    assert not os.path.lexists(os.path.join(oci.root, cid)), "state dir left"
    with open("/proc/self/mountinfo") as f:
        assert [l for l in f if cid in l] == []


@pytest.mark.parametrize("running", [False, True], ids=["created", "running"])
@pytest.mark.parametrize("field,value", DAMAGE, ids=[f"{f}={json.dumps(v)[:12]}" for f, v in DAMAGE])
def test_wrong_types_in_state_json(oci, running, field, value):
    cid, _b, pid, dirs = make(oci, start=running)
    try:
        damage_state(oci.root, cid, field, value)
        for args in COMMANDS:
            r = oci.cmd(*command_line(args, cid))
            want = 255 if args == ("exec",) else 1
            assert r.returncode == want and "Traceback" not in r.stderr, (args, r.stderr)
            lines = r.stderr.splitlines()
            assert len(lines) == 1 and "internal error" not in lines[0], (args, lines)
            assert "state.json" in lines[0] and field in lines[0], (args, lines)
        r = oci.cmd("list")
        assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
        assert pid_alive(pid), "a command other than delete --force ended the container"
        assert_deleted_whole(oci, cid, pid, dirs)
    finally:
        scrub(pid, dirs)


@pytest.mark.parametrize("field", ["pid", "pid_start", "cgroups", "status"])
def test_missing_fields_in_state_json(oci, field):
    cid, _b, pid, dirs = make(oci, start=True)
    try:
        damage_state(oci.root, cid, field, KeyError)
        log = oci.tmp / "log.json"
        r = oci.cmd("kill", cid, "KILL", global_args=("--log", log, "--log-format", "json"))
        line = assert_one_line_error(r, "state.json", f"{field}: missing")
        assert [e["msg"] for e in json_log_errors(log)] == [line.removeprefix("ociruntime: ")]
        assert pid_alive(pid)
        assert_deleted_whole(oci, cid, pid, dirs)
    finally:
        scrub(pid, dirs)


@pytest.mark.parametrize("lost", ["state.json garbage", "state.json and fast garbage",
                                  "state.json empty, fast gone", "cgroups damaged, records gone"])
def test_state_json_unreadable_custom_cgroups_path(oci, lost):
    """A custom linux.cgroupsPath: found from the fast file's record, from
    cgroups.json, or from the bundle's config."""
    tag = uuid.uuid4().hex[:8]
    cfg = config(["sleep", "1000"])
    # Absolute, with a parent create makes, where the fast file has the
    # record; relative (under our own cgroup), where only the config tells.
    cfg["linux"]["cgroupsPath"] = (f"/ocisr-{tag}/c" if lost == "state.json garbage"
                                   else f"ocisr-{tag}")
    cid, b, pid, dirs = make(oci, cfg=cfg, start=True)
    if lost == "state.json garbage":
        dirs = dirs + [os.path.dirname(d) for d in dirs]   # the parents it made, too
    assert all(f"ocisr-{tag}" in d for d in dirs), dirs
    try:
        sdir = Path(oci.root) / cid
        if lost == "state.json empty, fast gone":
            (sdir / "state.json").write_text("")
            (sdir / "fast").unlink()
        elif lost == "cgroups damaged, records gone":   # the bundle's config tells
            damage_state(oci.root, cid, "cgroups", "x")
            damage_state(oci.root, cid, "cgroups_created", "x")
            (sdir / "fast").unlink()
            (sdir / "cgroups.json").unlink()
        else:
            (sdir / "state.json").write_text("\x00\xff{{{not json")
            if lost == "state.json and fast garbage":
                (sdir / "fast").write_text("garbage\n")
        r = oci.cmd("state", cid)
        assert_one_line_error(r, "state.json")
        assert_deleted_whole(oci, cid, pid, dirs)
    finally:
        scrub(pid, dirs)


def test_a_state_of_another_container_is_not_acted_on(oci):
    """state.json copied from another container: delete --force of this
    one leaves the other alone (and still removes this one)."""
    other, _b, other_pid, other_dirs = make(oci, start=True)
    cid, _b2, pid, dirs = make(oci, start=True)
    try:
        for name in ("state.json", "fast", "cgroups.json"):
            shutil.copy(Path(oci.root, other, name), Path(oci.root, cid, name))
        assert_one_line_error(oci.cmd("state", cid), "state.json")
        assert_deleted_whole(oci, cid, pid, dirs)
        assert pid_alive(other_pid) and existing(other_dirs) == other_dirs
        assert oci.state(other)["status"] == "running"
    finally:
        scrub(pid, dirs)
        scrub(other_pid, other_dirs)


def test_corrupt_state_of_a_container_killed_during_create(oci):
    """A directory with only a damaged state.json whose pid is not a
    number: delete --force removes it (nothing else to find)."""
    os.makedirs(oci.root, exist_ok=True)
    cid = oci.new_id()
    os.mkdir(os.path.join(oci.root, cid))
    Path(oci.root, cid, "state.json").write_text(json.dumps({"id": cid, "status": "creating",
                                                              "pid": "x"}))
    assert_one_line_error(oci.cmd("state", cid), "state.json", "pid")
    assert oci.cmd("delete", "--force", cid).returncode == 0
    assert not os.path.lexists(os.path.join(oci.root, cid))


# -- not root ----------------------------------------------------------------------

def as_nobody(oci, *args):
    return subprocess.run([*NOBODY, RUNTIME, "--root", oci.root, *args], capture_output=True,
                          text=True, timeout=60)


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv (util-linux)")
def test_commands_as_a_user_that_is_not_root(oci):
    cid, _b, pid, dirs = make(oci, start=True)
    for args in (("list",), ("list", "-q"), ("delete", "-f", cid), ("delete", cid),
                 ("state", cid), ("kill", cid, "KILL"), ("ps", cid)):
        r = as_nobody(oci, *args)
        line = assert_one_line_error(r, "permission denied", oci.root)
        assert "run as root or use --root" in line, line
    assert pid_alive(pid) and existing(dirs) == dirs
    assert oci.state(cid)["status"] == "running"


# -- --log that cannot be opened -------------------------------------------------

@pytest.mark.parametrize("fmt", ["text", "json"])
def test_log_that_cannot_be_opened_fails_at_once(oci, fmt):
    cid, b, pid, dirs = make(oci)
    bad = str(oci.tmp / "no-such-dir" / "log")
    g = ("--log", bad, "--log-format", fmt)
    for args in (("state", cid), ("kill", cid, "0"), ("list",), ("start", cid),
                 ("delete", cid), ("features",)):
        r = oci.cmd(*args, global_args=g)
        assert_one_line_error(r, bad)
    assert oci.state(cid)["status"] == "created" and pid_alive(pid)
    cid2 = oci.new_id()
    r = cmd_files(oci, "create", "-b", b, cid2, global_args=g)
    assert_one_line_error(r, bad)
    assert not os.path.lexists(os.path.join(oci.root, cid2))
    # A log that can be opened still gets the error as a JSON line.
    good = oci.tmp / "log.json"
    r = oci.cmd("state", "nonexistent", global_args=("--log", good, "--log-format", "json"))
    assert r.returncode == 1
    assert "does not exist" in json_log_errors(good)[0]["msg"]


# -- argv and env past 4094 entries -------------------------------------------------

def test_twenty_thousand_args_and_env(oci):
    n = 20000
    cfg = config(sh('echo "argc=$#"; env | grep -c "^V[0-9]*=" ') + ["sh"]
                 + [f"a{i}" for i in range(n)])
    cfg["process"]["env"] = cfg["process"]["env"] + [f"V{i}=x" for i in range(n)]
    code, out, err = oci.run_output(cfg=cfg)
    assert code == 0, err
    assert out.split() == [f"argc={n}", str(n)], out[:200]


def test_exec_with_twenty_thousand_args(oci):
    n = 20000
    cid, _b, pid, _d = make(oci, start=True)
    r = oci.cmd("exec", cid, "sh", "-c", 'echo "argc=$#"', "sh", *[f"a{i}" for i in range(n)])
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [f"argc={n}"]


# -- the state directories, the init's cwd ----------------------------------------------

def test_state_directories_are_private(oci):
    cid, _b, _pid, _d = make(oci)
    for p in (oci.root, os.path.join(oci.root, cid)):
        assert stat.S_IMODE(os.stat(p).st_mode) == 0o700, p


def test_proc_self_cwd_bind_source_is_the_bundle_not_the_caller(oci):
    caller = oci.tmp / "caller-dir"
    caller.mkdir()
    (caller / "caller-secret").write_text("x")
    cfg = config(sh("ls /mnt/cwd"))
    cfg["mounts"].append({"destination": "/mnt/cwd", "type": "bind", "source": "/proc/self/cwd",
                          "options": ["rbind", "ro"]})
    b = oci.bundle(cfg)
    cid = oci.new_id()
    r = oci.cmd("run", "-b", b, cid, cwd=caller)
    assert r.returncode == 0, r.stderr
    names = r.stdout.split()
    assert "caller-secret" not in names
    assert "config.json" in names and "rootfs" in names, names


# -- a damaged fast file (the C front end's) ----------------------------------------

def edit_fast(root, cid, edit):
    path = Path(root) / cid / "fast"
    path.write_bytes(edit(path.read_bytes()))


def test_front_end_does_not_trust_a_damaged_pid_line(oci):
    cid, _b, pid, dirs = make(oci)
    try:
        edit_fast(oci.root, cid, lambda t: t.replace(b"pid %d\n" % pid, b"pid %d\n" % os.getpid()))
        fast = oci.cmd("state", cid)
        slow = oci.cmd("state", cid, env=dict(os.environ, OCIRUNTIME_NO_FAST="1"))
        assert fast.returncode == slow.returncode == 0, (fast.stderr, slow.stderr)
        assert fast.stdout == slow.stdout
        assert json.loads(fast.stdout)["pid"] == pid
        oci.ok("kill", cid, "KILL")   # the container's init, not the process the line names
        assert wait_gone(pid)
    finally:
        scrub(pid, dirs)


def test_front_end_does_not_remove_a_directory_a_damaged_fast_file_names(oci):
    decoy = oci.tmp / "decoy"
    decoy.mkdir()
    cid, _b, pid, dirs = make(oci, args=("true",))
    try:
        oci.ok("start", cid)
        assert wait_gone(pid)
        first = ("rmdir %s\n" % dirs[0]).encode()
        edit_fast(oci.root, cid, lambda t: t.replace(first, first + b"rmdir %s\n" % bytes(decoy)))
        oci.ok("delete", cid)
        assert decoy.is_dir()
        assert existing(dirs) == []
    finally:
        scrub(pid, dirs)


def test_state_json_garbage_of_a_systemd_container(fake_systemd, oci):
    """--systemd-cgroup (a fake systemd on a bus): the unit is found in the
    other records and stopped."""
    fake = fake_systemd
    slc = _slice()
    cfg = config(["sleep", "1000"])
    cid = oci.new_id()
    cfg["linux"]["cgroupsPath"] = f"{slc}:ociruntime:{cid}"
    r = oci.create("-b", oci.bundle(cfg), cid, global_args=["--systemd-cgroup"])
    assert r.returncode == 0, r.stderr
    pid = oci.state(cid)["pid"]
    dirs = cgroup_dirs_of(pid)
    try:
        Path(oci.root, cid, "state.json").write_text("{{{")
        assert_deleted_whole(oci, cid, pid, dirs)
        assert fake.called("StopUnit") == [[f"ociruntime-{cid}.scope", "replace"]]
        assert [d for d in _test_slice_dirs() if slc in d] == []
    finally:
        scrub(pid, dirs)


def test_poststop_hooks_run_when_state_json_is_damaged(oci):
    out = oci.tmp / "poststop.json"
    cfg = config(["sleep", "1000"])
    cfg["hooks"] = {"poststop": [{"path": "/bin/sh", "args": ["sh", "-c", f"cat > {out}"]}]}
    cid, b, pid, dirs = make(oci, cfg=cfg, start=True)
    try:
        damage_state(oci.root, cid, "pid", "x")
        assert_deleted_whole(oci, cid, pid, dirs)
        st = json.loads(out.read_text())
        assert (st["id"], st["status"], st["bundle"]) == (cid, "stopped", str(b))
    finally:
        scrub(pid, dirs)
