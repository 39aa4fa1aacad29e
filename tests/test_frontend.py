"""The C front end (csrc/frontend.c): state, start, kill and delete answered
without Python where the container allows it, and the same answers as
Python's (OCIRUNTIME_NO_FAST=1) in every case.

`isolated` is a copy of the front end in a directory whose `python3` only
says it was called (exit 99): a command that reaches Python there shows it,
so these tests see which calls stay in C, not only that they work."""
import json
import os
import shutil
import subprocess
import threading

import pytest

from conftest import RUNTIME
from ocihelpers import (FELL_BACK, assert_one_line_error, config, front_end_alone, json_log_errors,
                        wait_for, wait_gone, wait_status)



@pytest.fixture
def isolated(oci):
    front = front_end_alone(oci.tmp / "front")

    def run(*args, global_args=()):
        return subprocess.run([str(front), "--root", oci.root, *global_args, *map(str, args)],
                              capture_output=True, text=True, timeout=60)
    return run


def python_cmd(oci, *args):
    return oci.cmd(*args, env=dict(os.environ, OCIRUNTIME_NO_FAST="1"))


def created(oci, args=("sleep", "1000"), cfg=None):
    b = oci.bundle(cfg, args=list(args))
    cid = oci.new_id()
    r = oci.create("-b", b, cid)
    assert r.returncode == 0, r.stderr
    return cid


def assert_same_state(oci, isolated, cid, want):
    fast = isolated("state", cid)
    assert fast.returncode == 0, fast.stderr
    slow = python_cmd(oci, "state", cid)
    assert slow.returncode == 0, slow.stderr
    assert fast.stdout == slow.stdout   # byte for byte: engines parse it
    assert json.loads(fast.stdout)["status"] == want


def test_whole_lifecycle_stays_in_c(oci, isolated):
    cid = created(oci)
    assert_same_state(oci, isolated, cid, "created")
    r = isolated("start", cid)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    st = json.loads(isolated("state", cid).stdout)
    pid = st["pid"]
    # start really started it (it returns before the init's exec, as runc's)
    wait_for(lambda: open(f"/proc/{pid}/cmdline", "rb").read() == b"sleep\x001000\x00",
             "the init to exec the process")
    assert_same_state(oci, isolated, cid, "running")
    oci.ok("pause", cid)
    assert_same_state(oci, isolated, cid, "paused")
    oci.ok("resume", cid)
    assert_same_state(oci, isolated, cid, "running")
    assert isolated("kill", cid, "KILL").returncode == 0
    assert wait_gone(pid)
    assert_same_state(oci, isolated, cid, "stopped")
    assert json.loads(isolated("state", cid).stdout)["pid"] == 0
    r = isolated("delete", cid)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert not os.path.exists(os.path.join(oci.root, cid))
    # the fixture fails the test if a cgroup named after cid is left


@pytest.mark.parametrize("sig", ["USR1", "usr1", "SIGUSR1", "sigusr1", "10"])
def test_kill_signal_names(oci, isolated, sig):
    # The process exits when USR1 arrives: proof the signal was the one asked.
    # (A pid 1 ignores what it has no handler for: wait for the trap.)
    cfg = config(["sh", "-c", "trap 'exit 0' USR1; touch /ready; while true; do sleep 0.05; done"])
    cfg["root"]["readonly"] = False
    b = oci.bundle(cfg)
    cid = oci.new_id()
    assert oci.create("-b", b, cid).returncode == 0
    oci.ok("start", cid)
    wait_for(lambda: (b / "rootfs" / "ready").exists(), "the trap")
    r = isolated("kill", cid, sig)
    assert r.returncode == 0, r.stderr
    assert wait_status(oci, cid, "stopped")["status"] == "stopped"
    oci.ok("delete", cid)


def test_global_flags_the_front_end_knows(oci, isolated):
    cid = created(oci)
    log = oci.tmp / "log.json"
    for flags in (["--log", log, "--log-format", "json"], ["--log-format=text"],
                  ["--systemd-cgroup"], ["-log", log], ["--criu", "criu"]):
        r = isolated("state", cid, global_args=[str(f) for f in flags])
        assert r.returncode == 0, (flags, r.stderr)
    r = subprocess.run([str(oci.tmp / "front" / "ociruntime"), f"--root={oci.root}", "state", cid],
                       capture_output=True, text=True)
    assert r.returncode == 0 and json.loads(r.stdout)["id"] == cid
    assert log.read_text() == ""   # opened (made, as runc does: it must open), nothing logged
    oci.ok("delete", "-f", cid)


FALLBACKS = [
    # (what, arguments): each needs Python (an error, a flag, a hook...)
    ("missing container", ["state", "no-such-container"]),
    ("bad id", ["state", "../etc"]),
    ("debug", ["--debug", "state", "{cid}"]),
    ("version", ["--version"]),
    ("bad log format", ["--log-format", "xml", "state", "{cid}"]),
    ("other command", ["list"]),
    ("state help", ["state", "--help"]),
    ("start twice", ["start", "{cid}"]),
    ("kill --all", ["kill", "--all", "{cid}", "KILL"]),
    ("unknown signal", ["kill", "{cid}", "NOPE"]),
    ("delete running", ["delete", "{cid}"]),
    ("delete -f running", ["delete", "-f", "{cid}"]),
    ("extra argument", ["state", "{cid}", "more"]),
]


@pytest.mark.parametrize("what,args", FALLBACKS, ids=[w for w, _ in FALLBACKS])
def test_what_goes_to_python(oci, isolated, what, args):
    cid = created(oci)
    oci.ok("start", cid)
    args = [a.replace("{cid}", cid) for a in args]
    r = isolated(*args)
    assert r.returncode == FELL_BACK and "fell back to python" in r.stderr, (r.returncode, r.stderr)
    # ... with nothing done first: the container is as it was
    assert oci.state(cid)["status"] == "running"
    oci.ok("delete", "-f", cid)


def test_python_still_says_what_is_wrong(oci):
    """Through the real front end, the fallbacks give Python's errors."""
    cid = created(oci)
    oci.ok("start", cid)
    assert_one_line_error(oci.cmd("start", cid), "cannot start an already running container")
    assert_one_line_error(oci.cmd("delete", cid), "cannot delete container", "not stopped: running")
    assert_one_line_error(oci.cmd("kill", cid, "NOPE"), "unknown signal")
    assert_one_line_error(oci.cmd("state", "nothing-here"), 'container "nothing-here" does not exist')
    log = oci.tmp / "log.json"
    r = oci.cmd("state", "nothing-here", global_args=["--log", log, "--log-format", "json"])
    assert r.returncode == 1
    assert any("does not exist" in e["msg"] for e in json_log_errors(log))
    oci.ok("kill", cid, "KILL")
    wait_status(oci, cid, "stopped")
    assert_one_line_error(oci.cmd("kill", cid), "container not running")
    assert_one_line_error(oci.cmd("start", cid), "cannot start a container that has stopped")
    oci.ok("delete", cid)


def test_hooks_keep_start_and_delete_in_python(oci, isolated):
    marker = oci.tmp / "poststop"
    cfg = config(["true"])
    hook = {"path": "/bin/sh", "args": ["sh", "-c", f"echo ran > {marker}"]}
    cfg["hooks"] = {"poststart": [hook], "poststop": [hook]}
    cid = created(oci, ["true"], cfg)
    r = isolated("start", cid)
    assert r.returncode == FELL_BACK, r.stderr
    oci.ok("start", cid)
    wait_status(oci, cid, "stopped")
    marker.unlink()
    assert isolated("delete", cid).returncode == FELL_BACK
    oci.ok("delete", cid)
    assert marker.read_text() == "ran\n"   # Python ran the poststop hook


def test_paused_container_in_the_front_end(oci, isolated):
    """A created container can be paused; SIGKILL to a paused container
    goes to Python (the freezer is thawed after the signal), with nothing
    done first; other signals stay in C and leave it paused."""
    cid = created(oci)
    pid = oci.state(cid)["pid"]
    oci.ok("pause", cid)
    assert_same_state(oci, isolated, cid, "paused")
    assert isolated("start", cid).returncode == FELL_BACK
    oci.ok("resume", cid)
    assert_same_state(oci, isolated, cid, "created")
    oci.ok("start", cid)
    oci.ok("pause", cid)
    assert isolated("kill", cid, "CONT").returncode == 0
    assert_same_state(oci, isolated, cid, "paused")
    r = isolated("kill", cid, "KILL")
    assert r.returncode == FELL_BACK, r.stderr
    assert_same_state(oci, isolated, cid, "paused")
    oci.ok("kill", cid, "KILL")
    assert wait_gone(pid)
    assert_same_state(oci, isolated, cid, "stopped")
    r = isolated("delete", cid)
    assert r.returncode == 0, r.stderr


def test_delete_under_a_shared_parent_stays_in_c(oci, isolated):
    """The parent cgroup create made is removed only if empty: with a
    sibling in it, delete of the stopped container is still the front
    end's, and the sibling keeps running."""
    import uuid
    from ociruntime.cgroups import host_hierarchies
    top = "/ocitest-parent-" + uuid.uuid4().hex[:8]
    ids = []
    try:
        for _ in range(2):
            cfg = config(["sleep", "1000"])
            ids.append(oci.new_id())
            cfg["linux"]["cgroupsPath"] = f"{top}/{ids[-1]}"
            assert oci.create("-b", oci.bundle(cfg), ids[-1]).returncode == 0
        a, b = ids
        pid = oci.state(a)["pid"]
        oci.ok("kill", a, "KILL")
        assert wait_gone(pid)
        r = isolated("delete", a)
        assert r.returncode == 0, r.stderr
        assert oci.state(b)["status"] == "created"
        oci.ok("delete", "--force", b)
    finally:
        for cid in ids:
            oci.cmd("delete", "--force", cid)
        for _n, _t, _k, mnt, _r, _o in host_hierarchies():
            if os.path.isdir(mnt + top):
                os.rmdir(mnt + top)


def test_state_text_with_odd_annotations_and_paths(oci, isolated):
    cfg = config(["sleep", "1000"])
    cfg["annotations"] = {"q\"uote": "back\\slash", "ünï": "c\u00f6de \u2603", "nl": "a\nb",
                          "empty": ""}
    b = oci.tmp / "a bundle with spaces"
    b.mkdir()
    src = oci.bundle(cfg)
    os.rename(src / "rootfs", b / "rootfs")
    shutil.copy(src / "config.json", b / "config.json")
    cid = oci.new_id()
    assert oci.create("-b", b, cid).returncode == 0
    assert_same_state(oci, isolated, cid, "created")
    oci.ok("delete", "-f", cid)


def test_a_died_init_is_stopped_and_start_says_so(oci, isolated):
    cid = created(oci)
    pid = oci.state(cid)["pid"]
    os.kill(pid, 9)
    assert wait_gone(pid)
    assert_same_state(oci, isolated, cid, "stopped")
    assert isolated("start", cid).returncode == FELL_BACK
    assert_one_line_error(oci.cmd("start", cid), "cannot start a container that has stopped")
    r = isolated("delete", cid)
    assert r.returncode == 0, r.stderr


def race(oci, *args, n=4):
    """n copies of one command at once: exactly one succeeds; the results."""
    results = []
    threads = [threading.Thread(target=lambda: results.append(oci.cmd(*args))) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.returncode for r in results) == [0] + [1] * (n - 1), [r.stderr for r in results]
    return results


def test_racing_deletes_one_wins(oci):
    cid = created(oci, ["true"])
    oci.ok("start", cid)
    wait_status(oci, cid, "stopped")
    for r in race(oci, "delete", cid):
        if r.returncode:
            assert_one_line_error(r, f'container "{cid}" does not exist')


def test_racing_starts_start_once(oci):
    cid = created(oci)
    race(oci, "start", cid)
    assert oci.state(cid)["status"] == "running"
    oci.ok("delete", "-f", cid)


def test_front_end_runs_the_cached_launcher_bytecode():
    """bin/ociruntime-py caches its bytecode beside itself; the front end
    runs it while its header matches the script (mtime, size) and the
    interpreter (its inode, in the flags word), and the script again once
    it changed, which caches it anew."""
    import importlib._bootstrap_external as ext
    bindir = os.path.dirname(RUNTIME)
    script = os.path.join(bindir, "ociruntime-py")
    pyc = os.path.join(bindir, "__pycache__", "ociruntime-py.pyc")
    subprocess.run([RUNTIME, "--version"], check=True, capture_output=True)
    st = os.stat(script)
    with open(pyc, "rb") as f:
        header = f.read(16)
    assert header[8:16] == ext._pack_uint32(int(st.st_mtime)) + ext._pack_uint32(st.st_size)
    try:
        # A fresh-looking pyc of other code: what runs is the pyc.
        import marshal
        code = compile("print('from the cached bytecode')", script, "exec")
        ino = os.stat(os.path.join(bindir, "python3")).st_ino & 0xFFFFFFFF
        with open(pyc, "wb") as f:
            f.write(ext.MAGIC_NUMBER + ext._pack_uint32(ino) + header[8:16] + marshal.dumps(code))
        r = subprocess.run([RUNTIME, "--version"], capture_output=True, text=True)
        assert r.stdout == "from the cached bytecode\n"
        # The script changed (its mtime): the script runs, and caches itself.
        os.utime(script, (st.st_atime, st.st_mtime + 1))
        r = subprocess.run([RUNTIME, "--version"], capture_output=True, text=True)
        assert r.stdout.startswith("ociruntime version")
        with open(pyc, "rb") as f:
            assert f.read(16)[8:12] == ext._pack_uint32(int(st.st_mtime) + 1)
    finally:
        os.utime(script, (st.st_atime, st.st_mtime))
        os.unlink(pyc)   # the next call writes it again
    r = subprocess.run([RUNTIME, "--version"], capture_output=True, text=True)
    assert r.stdout.startswith("ociruntime version") and os.path.exists(pyc)


# A createRuntime hook with no env of its own: it inherits the runtime's
# environment, and its ancestors include create's Python.
LOCALE_HOOK = r'''
import json, os, sys
pid, seen = os.getppid(), None
while pid > 1:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        argv = [a.decode() for a in f.read().split(b"\0") if a]
    if any(a.endswith(("ociruntime-py", "ociruntime-py.pyc")) for a in argv):
        with open(f"/proc/{pid}/maps") as f:
            maps = [l.split()[-1] for l in f if "/locale/" in l or "/gconv/" in l]
        seen = {"argv": argv, "locale_maps": maps}
        break
    with open(f"/proc/{pid}/stat") as f:
        pid = int(f.read().rsplit(")", 1)[1].split()[1])
env = {k: v for k, v in os.environ.items() if k in ("LC_ALL", "LANG", "OCIRUNTIME_LC_ALL")}
with open(sys.argv[1], "w") as f:
    json.dump({"python": seen, "env": env}, f)
'''


@pytest.mark.parametrize("lc_all", [None, "C.UTF-8"])
def test_python_starts_without_the_locale_and_hooks_get_the_callers(oci, tmp_path, lc_all):
    """Issue 16: the front end starts create's Python in UTF-8 mode with
    LC_ALL=C, so that no locale file is mapped (peak RSS), and the
    caller's LC_ALL (or its absence) is back in the environment hooks
    inherit, with nothing of ours left in it."""
    if not os.path.exists("/usr/lib/locale/C.utf8/LC_CTYPE"):
        pytest.skip("no C.UTF-8 locale on this host: nothing that Python would map")
    hook, out = tmp_path / "hook.py", tmp_path / "hook.json"
    hook.write_text(LOCALE_HOOK)
    cfg = config(["/bin/sleep", "30"])
    cfg["hooks"] = {"createRuntime": [{"path": "/usr/bin/python3", "args": ["python3", str(hook), str(out)]}]}
    env = {k: v for k, v in os.environ.items() if not k.startswith("LC_")}
    env["LANG"] = "C.UTF-8"   # a UTF-8 locale: Python would map its LC_CTYPE
    if lc_all is not None:
        env["LC_ALL"] = lc_all
    cid = oci.new_id()
    r = oci.create("-b", oci.bundle(cfg), cid, env=env)
    assert r.returncode == 0, r.stderr
    seen = json.loads(out.read_text())
    oci.ok("delete", "-f", cid)
    assert seen["python"], "create's Python is not among the hook's ancestors"
    argv = seen["python"]["argv"]
    assert argv[1:4] == ["-S", "-X", "utf8"], argv
    assert seen["python"]["locale_maps"] == [], "create's Python mapped locale files"
    want = {"LANG": "C.UTF-8", **({"LC_ALL": lc_all} if lc_all is not None else {})}
    assert seen["env"] == want


def _has_interpreter(path):
    """Whether the ELF file names a dynamic loader (a PT_INTERP header)."""
    import struct
    with open(path, "rb") as f:
        head = f.read(64)
        assert head[:4] == b"\x7fELF" and head[4] == 2, f"{path}: not a 64-bit ELF file"
        phoff, = struct.unpack_from("<Q", head, 32)
        phentsize, phnum = struct.unpack_from("<HH", head, 54)
        for i in range(phnum):
            f.seek(phoff + i * phentsize)
            if struct.unpack("<I", f.read(4))[0] == 3:   # PT_INTERP
                return True
    return False


def test_front_end_starts_without_the_dynamic_loader():
    """Where the static libraries are there, the front end is linked
    statically: each state/start/kill/delete/exec skips ld.so and the
    shared objects (about 0.3 ms of a ~1 ms call; csrc/build_exe.py)."""
    for lib in ("/usr/lib/x86_64-linux-gnu/libc.a", "/usr/lib/x86_64-linux-gnu/libjson-c.a"):
        if not os.path.exists(lib):
            pytest.skip(f"{lib} is missing: the front end is linked dynamically here")
    exe = os.path.realpath(shutil.which(RUNTIME) or RUNTIME)
    assert not _has_interpreter(exe), f"{exe} is linked dynamically"
