"""`--debug` traces where the time of create, run and exec goes: one log
line per phase with its duration, from the front end's start to the end
of the command, across the runtime and the init (log.py: the phase trace).
No timing is asserted: only that each phase is there, in order, with a
duration that is a number, and that the trace stays out of the container."""
import json
import re

from conftest import busybox_config

PHASE = re.compile(r"^(\S+ \S+): phase (.+): (\d+\.\d\d) ms$")
TOTAL = re.compile(r"^(\S+ \S+): (\d+\.\d\d) ms in all, (\d+) phases$")

# No "set-up handshake": a plain container's init does not wait for the
# runtime after its hello (tests/test_create_cost.py).
CREATE = ["interpreter start", "imports", "read+validate", "state dir+cgroups", "plan",
          "spawn of the init", "init: seal, read the plan", "init: clone",
          "init: mounts", "ready: state saved"]
EXEC = ["interpreter start", "imports", "read state+process", "namespace and cgroup fds", "plan", "spawn of the init",
        "init: seal, read the plan", "init: clone", "set-up handshake",
        "init: set-up until exec", "the process ran"]


def _trace(log_path, what):
    """[(phase, ms)] of the trace of `what` ("create ID") in a JSON log,
    and the total its last line gives."""
    phases, total = [], None
    with open(log_path) as f:
        for line in f:
            entry = json.loads(line)   # every line is runc's JSON, phases too
            assert set(entry) == {"level", "msg", "time"}, entry
            m = PHASE.match(entry["msg"])
            if m and m.group(1) == what:
                assert entry["level"] == "debug"
                phases.append((m.group(2), float(m.group(3))))
            m = TOTAL.match(entry["msg"])
            if m and m.group(1) == what:
                total = float(m.group(2))
                assert int(m.group(3)) == len(phases)
    assert phases, f"no trace of {what} in {open(log_path).read()[-2000:]}"
    assert total is not None
    assert abs(sum(ms for _, ms in phases) - total) < 0.01 * len(phases) + 0.01
    return [p for p, _ in phases], total


def _in_order(want, got):
    """want is a subsequence of got: each phase, in this order."""
    it = iter(got)
    missing = [p for p in want if p not in it]
    assert not missing, f"phases {missing} missing or out of order in {got}"


def test_create_and_exec_log_each_phase(oci, tmp_path):
    log = tmp_path / "log.json"
    hook_env = tmp_path / "hook.env"
    cfg = busybox_config(["/bin/sleep", "30"])
    # A hook with no env of its own gets the runtime's: OCIRUNTIME_T0
    # (the front end's start time) must not be in it.
    cfg["hooks"] = {"createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", f"env > {hook_env}"]}]}
    cid = oci.new_id()
    flags = ("--debug", "--log", log, "--log-format", "json")
    r = oci.create("-b", oci.bundle(cfg), cid, global_args=flags)
    assert r.returncode == 0, r.stderr
    got, _ = _trace(log, f"create {cid}")
    _in_order(CREATE, got)
    _in_order(["init: mounts", "init: hooks", "ready: state saved"], got)
    assert "OCIRUNTIME_T0" not in hook_env.read_text()

    oci.ok("start", cid)
    r = oci.cmd("exec", cid, "/bin/sh", "-c", "env", global_args=flags)
    assert r.returncode == 0, r.stderr
    assert "OCIRUNTIME_T0" not in r.stdout
    got, _ = _trace(log, f"exec {cid}")
    _in_order(EXEC, got)


def test_run_logs_create_start_and_delete(oci, tmp_path):
    log = tmp_path / "log.json"
    cid = oci.new_id()
    r = oci.cmd("run", "-b", oci.bundle(args=["/bin/true"]), cid,
                global_args=("--debug", "--log", log, "--log-format", "json"))
    assert r.returncode == 0, r.stderr
    got, _ = _trace(log, f"run {cid}")
    _in_order(CREATE + ["start", "the process ran", "delete"], got)


def test_text_log_and_stderr(oci, tmp_path):
    """Without --log the trace goes to stderr with the other debug lines;
    a command that fails still says where its time went, after its error."""
    cid = oci.new_id()
    b = oci.bundle(args=["/bin/true"])
    cfg = json.loads((b / "config.json").read_text())
    cfg["process"]["args"] = "not a list"
    (b / "config.json").write_text(json.dumps(cfg))
    r = oci.cmd("--debug", "run", "-b", b, cid)
    assert r.returncode == 1
    lines = r.stderr.splitlines()
    errors = [l for l in lines if not l.startswith("ociruntime: debug: ")]
    assert len(errors) == 1 and "process.args" in errors[0], r.stderr
    phases = [m.group(2) for l in lines
              if (m := PHASE.match(l[len("ociruntime: debug: "):]))]
    _in_order(["interpreter start", "imports", "rest of the command"], phases)
    assert "read+validate" not in phases


def test_no_trace_without_debug(oci, tmp_path):
    log = tmp_path / "log.json"
    cid = oci.new_id()
    r = oci.cmd("run", "-b", oci.bundle(args=["/bin/true"]), cid,
                global_args=("--log", log, "--log-format", "json"))
    assert r.returncode == 0, r.stderr
    assert " phase " not in r.stderr
    assert not log.exists() or " phase " not in log.read_text()
