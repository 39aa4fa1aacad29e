"""The OCI lifecycle: create, start, kill, delete, state, list, run;
exit codes and signal forwarding of `run`; concurrent commands on one id."""
import calendar
import json
import os
import re
import signal
import subprocess
import time

import pytest

from conftest import RUNTIME
from ocihelpers import (Running, cmd_files, config, leftover_processes, pid_alive, proc_status,
                        sh, wait_for, wait_gone, wait_status)
from ociruntime.validate import validate_state

RFC3339 = re.compile(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$")


def assert_gone(oci, cid):
    r = oci.cmd("state", cid)
    assert r.returncode == 1 and f'container "{cid}" does not exist' in r.stderr, r.stderr
    assert not os.path.exists(os.path.join(oci.root, cid))


def test_lifecycle_states(oci):
    b = oci.bundle(args=["sleep", "1000"])
    cid = oci.new_id()
    pid_file = oci.tmp / "init.pid"
    r = oci.create("--bundle", b, "--pid-file", pid_file, cid)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "" and r.stderr == ""
    st = oci.state(cid)
    assert st["status"] == "created"
    pid = st["pid"]
    assert pid > 0 and pid_alive(pid)
    text = pid_file.read_text()
    assert re.fullmatch(r"[0-9]+", text) and int(text) == pid   # digits only, no newline
    # the waiting init has not exec'ed the process yet
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        assert not f.read().startswith(b"sleep")

    oci.ok("start", cid)
    st = oci.state(cid)
    assert (st["status"], st["pid"]) == ("running", pid)
    # start returns once the init has its byte, before it execs (runc's too)
    wait_for(lambda: open(f"/proc/{pid}/cmdline", "rb").read() == b"sleep\x001000\x00",
             "the init to exec the process")

    oci.ok("kill", cid, "KILL")
    assert wait_gone(pid)
    st = wait_status(oci, cid, "stopped")
    assert (st["status"], st["pid"]) == ("stopped", 0)

    oci.ok("delete", cid)
    assert_gone(oci, cid)


def test_state_json(oci):
    cfg = config(["sleep", "1000"])
    cfg["annotations"] = {"org.example.key": "value", "other": ""}
    before = int(time.time())
    with Running(oci, cfg, start=False) as c:
        after = int(time.time()) + 1
        r = oci.ok("state", c.cid)
        st = json.loads(r.stdout)
        validate_state(st)
        assert st["ociVersion"].startswith("1.")
        assert st["id"] == c.cid
        assert st["status"] == "created"
        assert st["pid"] == c.pid
        assert st["bundle"] == os.path.realpath(c.bundle)
        assert st["annotations"] == cfg["annotations"]
        m = RFC3339.match(st["created"])
        assert m, st["created"]
        created = calendar.timegm(tuple(int(x) for x in m.groups()[:6]))
        assert before <= created <= after
    # without annotations the key may be absent or empty, never wrong
    with Running(oci, config(["sleep", "1000"])) as c:
        st = oci.state(c.cid)
        assert st.get("annotations", {}) == {}
        assert st["status"] == "running"


def test_list(oci):
    with Running(oci, config(["sleep", "1000"]), start=False) as a, \
            Running(oci, config(["sleep", "1000"])) as b:
        table = oci.ok("list").stdout.splitlines()
        assert table[0].split() == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
        rows = {l.split()[0]: l.split() for l in table[1:]}
        assert set(rows) == {a.cid, b.cid}
        assert rows[a.cid][1:4] == [str(a.pid), "created", str(a.bundle)]
        assert rows[b.cid][1:4] == [str(b.pid), "running", str(b.bundle)]

        for args in (("--format", "json"), ("--format=json",), ("-f", "json")):
            listed = json.loads(oci.ok("list", *args).stdout)
            by_id = {s["id"]: s for s in listed}
            assert set(by_id) == {a.cid, b.cid}
            assert by_id[a.cid]["status"] == "created" and by_id[b.cid]["status"] == "running"
            assert by_id[b.cid]["pid"] == b.pid and by_id[b.cid]["bundle"] == str(b.bundle)

        for q in ("-q", "--quiet"):
            assert sorted(oci.ok("list", q).stdout.split("\n")) == sorted(["", a.cid, b.cid])
    # an empty (or missing) root lists nothing
    assert oci.ok("list", "-q").stdout == ""
    assert json.loads(oci.ok("list", "--format", "json").stdout) in ([], None)


def test_start_twice_is_an_error(oci):
    with Running(oci, config(["sleep", "1000"])) as c:
        r = oci.cmd("start", c.cid)
        assert r.returncode == 1 and "running" in r.stderr
        assert oci.state(c.cid)["status"] == "running"


def test_start_of_a_stopped_container_is_an_error(oci):
    b = oci.bundle(args=["true"])
    cid = oci.new_id()
    r = cmd_files(oci, "run", "-d", "-b", b, cid)
    assert r.returncode == 0, r.stderr
    wait_status(oci, cid, "stopped")
    r = oci.cmd("start", cid)
    assert r.returncode == 1 and "stopped" in r.stderr
    oci.ok("delete", cid)


def test_start_after_the_waiting_init_was_killed(oci):
    with Running(oci, config(["sleep", "1000"]), start=False) as c:
        os.kill(c.pid, signal.SIGKILL)
        assert wait_gone(c.pid)
        assert oci.state(c.cid)["status"] == "stopped"
        r = oci.cmd("start", c.cid)
        assert r.returncode == 1 and "stopped" in r.stderr and "Traceback" not in r.stderr


def test_signal_spellings():
    from ociruntime.container import parse_signal
    for text in ("KILL", "SIGKILL", "9", "kill", "sigkill"):
        assert parse_signal(text) == signal.SIGKILL
    assert parse_signal("USR1") == signal.SIGUSR1 and parse_signal("SIGRTMIN") == signal.SIGRTMIN
    with pytest.raises(Exception):
        parse_signal("NOPE")


def test_kill_with_a_signal_name(oci):
    with Running(oci, config(["sleep", "1000"])) as c:
        oci.ok("kill", c.cid, "SIGKILL")
        assert wait_gone(c.pid)
        assert wait_status(oci, c.cid, "stopped")["status"] == "stopped"


def test_kill_default_is_sigterm(oci):
    cfg = config(sh("trap 'exit 0' TERM; while :; do sleep 0.05; done"))
    with Running(oci, cfg) as c:
        # pid 1 of its namespace ignores a TERM it has no handler for yet
        wait_for(lambda: int(proc_status(c.pid)["SigCgt"], 16) & (1 << (signal.SIGTERM - 1)),
                 "the container's TERM trap")
        oci.ok("kill", c.cid)
        assert wait_gone(c.pid)


def test_kill_of_a_created_container(oci):
    with Running(oci, config(["sleep", "1000"]), start=False) as c:
        oci.ok("kill", c.cid, "KILL")
        assert wait_gone(c.pid)
        assert wait_status(oci, c.cid, "stopped")["status"] == "stopped"
        oci.ok("delete", c.cid)


def test_kill_all(oci):
    cfg = config(sh("sleep 1000 & sleep 1000 & wait"))
    cfg["linux"]["namespaces"] = [n for n in cfg["linux"]["namespaces"] if n["type"] != "pid"]
    with Running(oci, cfg) as c:
        procs = cgroup_procs(c)
        deadline = time.monotonic() + 20
        while len(procs) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
            procs = cgroup_procs(c)
        assert len(procs) == 3
        oci.ok("kill", "--all", c.cid, "KILL")
        for p in procs:
            assert wait_gone(p)


def cgroup_procs(c):
    from ocihelpers import cgroup_dir
    with open(cgroup_dir(c.pid) + "/cgroup.procs") as f:
        return [int(x) for x in f.read().split()]


def test_kill_of_a_stopped_container_is_an_error(oci):
    with Running(oci, config(["sleep", "1000"])) as c:
        oci.ok("kill", c.cid, "KILL")
        wait_gone(c.pid)
        r = oci.cmd("kill", c.cid, "KILL")
        assert r.returncode == 1 and "container not running" in r.stderr


def test_kill_of_a_missing_container(oci):
    r = oci.cmd("kill", oci.new_id(), "KILL")
    assert r.returncode == 1 and "does not exist" in r.stderr


def test_delete_of_a_running_container_needs_force(oci):
    with Running(oci, config(["sleep", "1000"])) as c:
        r = oci.cmd("delete", c.cid)
        assert r.returncode == 1 and "Traceback" not in r.stderr
        assert "running" in r.stderr
        assert pid_alive(c.pid)
        assert oci.state(c.cid)["status"] == "running"
        oci.ok("delete", "--force", c.cid)
        assert wait_gone(c.pid)
        assert_gone(oci, c.cid)


def test_delete_of_a_created_container_kills_the_waiting_init(oci):
    with Running(oci, config(["sleep", "1000"]), start=False) as c:
        oci.ok("delete", c.cid)
        assert wait_gone(c.pid)
        assert_gone(oci, c.cid)
        assert not leftover_processes(oci)


def test_delete_of_a_missing_container(oci):
    cid = oci.new_id()
    r = oci.cmd("delete", cid)
    assert r.returncode == 1 and f'container "{cid}" does not exist' in r.stderr
    # runc: --force on a missing container succeeds (podman relies on it)
    r = oci.cmd("delete", "--force", cid)
    assert (r.returncode, r.stderr) == (0, ""), r.stderr


def test_delete_does_not_kill_a_process_that_reused_the_pid(oci):
    """The state remembers the init's start time: a live process with the
    same pid but another start time is not the container."""
    other = subprocess.Popen(["sleep", "1000"])
    try:
        with Running(oci, config(["sleep", "1000"])) as c:
            oci.ok("kill", c.cid, "KILL")
            wait_gone(c.pid)
            path = os.path.join(oci.root, c.cid, "state.json")
            with open(path) as f:
                data = json.load(f)
            data["pid"] = other.pid     # as if the pid had been reused
            with open(path, "w") as f:
                json.dump(data, f)
            assert oci.state(c.cid)["status"] == "stopped"
            r = oci.cmd("kill", c.cid, "KILL")
            assert r.returncode == 1 and "not running" in r.stderr
            oci.ok("delete", c.cid)
            oci.cmd("delete", "--force", c.cid)
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()


def test_run_exit_code(oci):
    for code in (0, 7, 255):
        rc, out, err = oci.run_output(sh(f"echo out; echo err >&2; exit {code}"))
        assert (rc, out, err) == (code, "out\n", "err\n")


def test_run_removes_the_container(oci):
    b = oci.bundle(args=["true"])
    cid = oci.new_id()
    assert oci.cmd("run", "-b", b, cid).returncode == 0
    assert_gone(oci, cid)


def test_run_passes_stdin(oci):
    b = oci.bundle(args=["sh", "-c", "read x; echo got $x"])
    r = oci.cmd("run", "-b", b, oci.new_id(), input="hello\n")
    assert (r.returncode, r.stdout) == (0, "got hello\n"), r.stderr


def start_run(oci, script):
    """A foreground `run` whose container prints "ready" and then waits."""
    b = oci.bundle(args=sh(script))
    cid = oci.new_id()
    p = subprocess.Popen([RUNTIME, "--root", oci.root, "run", "-b", str(b), cid],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    try:
        assert p.stdout.readline() == "ready\n"
    except BaseException:
        p.kill()
        raise
    return p, cid


def test_run_killed_from_outside_exits_137(oci):
    p, cid = start_run(oci, "echo ready; exec sleep 1000")
    try:
        pid = oci.state(cid)["pid"]
        os.kill(pid, signal.SIGKILL)
        assert p.wait(timeout=30) == 137
        assert "Traceback" not in p.stderr.read()
        assert_gone(oci, cid)
    finally:
        p.kill()
        p.wait()


@pytest.mark.parametrize("sig,code", [(signal.SIGTERM, 42), (signal.SIGINT, 43), (signal.SIGUSR1, 45)])
def test_run_forwards_signals(oci, sig, code):
    p, cid = start_run(oci, "trap 'exit 42' TERM; trap 'exit 43' INT; trap 'exit 44' HUP; "
                            "trap 'exit 45' USR1; echo ready; while :; do sleep 0.05; done")
    try:
        p.send_signal(sig)
        assert p.wait(timeout=30) == code
        assert "Traceback" not in p.stderr.read()
        assert_gone(oci, cid)
    finally:
        p.kill()
        p.wait()


def test_run_uncaught_sigterm_is_128_plus_15(oci):
    # pid 1 ignores signals it has no handler for: share the host pid ns
    cfg = config(sh("echo ready; exec sleep 1000"))
    cfg["linux"]["namespaces"] = [n for n in cfg["linux"]["namespaces"] if n["type"] != "pid"]
    b = oci.bundle(cfg)
    cid = oci.new_id()
    p = subprocess.Popen([RUNTIME, "--root", oci.root, "run", "-b", str(b), cid],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline() == "ready\n"
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=30) == 128 + signal.SIGTERM
    finally:
        p.kill()
        p.wait()


def test_run_keep(oci):
    b = oci.bundle(args=sh("exit 3"))
    cid = oci.new_id()
    r = oci.cmd("run", "--keep", "-b", b, cid)
    assert r.returncode == 3, r.stderr
    st = oci.state(cid)
    assert (st["status"], st["pid"]) == ("stopped", 0)
    oci.ok("delete", cid)
    assert_gone(oci, cid)


def test_run_detached(oci):
    b = oci.bundle(args=["sleep", "1000"])
    cid = oci.new_id()
    pid_file = oci.tmp / "pid"
    r = cmd_files(oci, "run", "-d", "--pid-file", pid_file, "-b", b, cid)
    assert r.returncode == 0, r.stderr
    st = oci.state(cid)
    assert st["status"] == "running"
    assert pid_file.read_text() == str(st["pid"])
    oci.ok("delete", "--force", cid)
    assert wait_gone(st["pid"])
    assert_gone(oci, cid)


def test_run_detached_short_lived(oci):
    b = oci.bundle(args=["true"])
    cid = oci.new_id()
    r = cmd_files(oci, "run", "--detach", "-b", b, cid)
    assert r.returncode == 0, r.stderr
    assert wait_status(oci, cid, "stopped")["status"] == "stopped"
    oci.ok("delete", cid)


def test_concurrent_deletes_of_one_id(oci):
    for force in (True, False):
        with Running(oci, config(["sleep", "1000"])) as c:
            if not force:
                oci.ok("kill", c.cid, "KILL")
                wait_gone(c.pid)
            flags = ["--force"] if force else []
            procs = [subprocess.Popen([RUNTIME, "--root", oci.root, "delete", *flags, c.cid],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                     for _ in range(3)]
            results = [(p.wait(timeout=60), p.stderr.read()) for p in procs]
            assert any(rc == 0 for rc, _ in results), results
            for rc, err in results:
                assert "Traceback" not in err
                assert rc == 0 or (rc == 1 and "does not exist" in err), results
            assert wait_gone(c.pid)
            assert_gone(oci, c.cid)
            assert not leftover_processes(oci)


def test_concurrent_creates_of_one_id(oci):
    bundles = [oci.bundle(args=["sleep", "1000"]) for _ in range(3)]
    cid = oci.new_id()
    outs = [open(oci.tmp / f"cc{i}.err", "w+") for i in range(3)]
    try:
        procs = [subprocess.Popen([RUNTIME, "--root", oci.root, "create", "-b", str(b), cid],
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=o)
                 for b, o in zip(bundles, outs)]
        codes = [p.wait(timeout=60) for p in procs]
        errs = []
        for o in outs:
            o.seek(0)
            errs.append(o.read())
    finally:
        for o in outs:
            o.close()
    assert sorted(codes) == [0, 1, 1], (codes, errs)
    winner = codes.index(0)
    for i, err in enumerate(errs):
        if i != winner:
            assert "already exists" in err and "Traceback" not in err, err
    st = oci.state(cid)
    assert st["status"] == "created" and st["bundle"] == str(bundles[winner])
    assert [p for p, _ in leftover_processes(oci)] == [st["pid"]]
    oci.ok("delete", cid)
    assert wait_gone(st["pid"])


def test_config_without_a_process(oci):
    """runc creates such a container (a holder of namespaces); start has
    nothing to run and says so; delete works."""
    cfg = config()
    del cfg["process"]
    b = oci.bundle(cfg)
    cid = oci.new_id()
    r = oci.create("-b", b, cid)
    assert r.returncode == 0, r.stderr
    st = oci.state(cid)
    assert st["status"] == "created"
    r = oci.cmd("start", cid)
    assert r.returncode == 1 and "process" in r.stderr and "Traceback" not in r.stderr
    oci.ok("delete", cid)
    assert wait_gone(st["pid"])
    assert_gone(oci, cid)
