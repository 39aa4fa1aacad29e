"""Gaps found auditing issues 2 and 3: the installed package is complete,
the session keyring (--no-new-keyring), --debug, --no-pivot."""
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from conftest import REPO
from ocihelpers import Running, add_userns, config, sh


# -- pip install . ------------------------------------------------------------

def test_setup_py_installs_every_module_and_a_working_core(oci, tmp_path):
    """What `pip install .` copies: every module of the package (a sub-
    package left out of setup.py's `packages` broke `run` when installed),
    the schemas and the C core; that copy alone runs a container."""
    build = tmp_path / "build"
    r = subprocess.run([sys.executable, "setup.py", "-q", "build", "-b", build, "-t", tmp_path / "t"],
                       cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    (lib,) = build.glob("lib*")
    src = REPO / "ociruntime"
    wanted = {p.relative_to(src) for p in src.rglob("*.py") if "__pycache__" not in p.parts}
    wanted |= {p.relative_to(src) for p in (src / "schemas").glob("*.json")}
    have = {p.relative_to(lib / "ociruntime") for p in (lib / "ociruntime").rglob("*")}
    assert wanted - have == set()
    assert list((lib / "ociruntime").glob("_core*.so"))

    env = dict(os.environ, PYTHONPATH=str(lib))
    r = subprocess.run([sys.executable, "-c", "import ociruntime; print(ociruntime.__file__)"],
                       env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert r.stdout.startswith(str(lib)), r.stdout + r.stderr
    b = oci.bundle(config(sh("echo pid=$$; hostname")))
    r = subprocess.run([sys.executable, "-m", "ociruntime", "--root", oci.root, "run", "-b", b,
                        oci.new_id()], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    assert "pid=1" in r.stdout.split()


# -- session keyring ----------------------------------------------------------

def _keys_visible(cfg):
    # /proc/keys is masked by default
    cfg["linux"]["maskedPaths"] = [p for p in cfg["linux"].get("maskedPaths", []) if p != "/proc/keys"]
    return cfg


def _session_keyrings(text, cid):
    return [l.split()[0] for l in text.splitlines() if f" _ses.{cid}:" in l]


@pytest.mark.parametrize("userns", [False, True], ids=["plain", "userns"])
def test_init_and_exec_join_the_containers_session_keyring(oci, userns):
    """runc: unless --no-new-keyring, the process gets a new session
    keyring "_ses.<id>" (not the caller's), and exec joins the same one."""
    cfg = _keys_visible(config(["sleep", "1000"]))
    if userns:
        add_userns(cfg, oci=oci)
    with Running(oci, cfg) as c:
        first = oci.ok("exec", c.cid, "cat", "/proc/keys").stdout
        second = oci.ok("exec", c.cid, "cat", "/proc/keys").stdout
        serials = _session_keyrings(first, c.cid)
        assert len(serials) == 1, first
        assert _session_keyrings(second, c.cid) == serials
    code, out, err = oci.run_output(cfg=_keys_visible(config(["cat", "/proc/keys"])))
    assert code == 0, err
    assert " _ses.ociruntime-test-" in out


def test_no_new_keyring(oci):
    cfg = _keys_visible(config(["sleep", "1000"]))
    b = oci.bundle(cfg)
    cid = oci.new_id()
    r = oci.create("--no-new-keyring", "-b", b, cid)
    assert r.returncode == 0, r.stderr
    try:
        oci.ok("start", cid)
        out = oci.ok("exec", cid, "cat", "/proc/keys").stdout
        assert not _session_keyrings(out, cid), out
    finally:
        oci.cmd("delete", "-f", cid)
    b = oci.bundle(_keys_visible(config(["cat", "/proc/keys"])))
    cid = oci.new_id()
    r = oci.cmd("run", "--no-new-keyring", "-b", b, cid, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    assert not _session_keyrings(r.stdout, cid)


# -- --debug ------------------------------------------------------------------

def test_debug_logs_the_command_and_the_plan(oci):
    b = oci.bundle(config(["sleep", "1000"]))
    cid = oci.new_id()
    log = oci.tmp / "debug.json"
    r = oci.create("-b", b, cid, global_args=("--debug", "--log", log, "--log-format", "json"))
    assert r.returncode == 0, r.stderr
    try:
        records = [json.loads(l) for l in log.read_text().splitlines()]
        assert records and all(set(x) == {"level", "msg", "time"} for x in records)
        msgs = [x["msg"] for x in records if x["level"] == "debug"]
        assert any(m.startswith("create: root ") for m in msgs), msgs
        assert any(re.match(rf"create {cid}: step \d+: PIVOT_ROOT", m) for m in msgs), msgs
        assert any(re.match(rf"create {cid}: step \d+: EXEC .*sleep 1000", m) for m in msgs), msgs
        # without --log, debug lines go to stderr
        r = oci.cmd("--debug", "state", cid)
        assert r.returncode == 0 and "debug: state: root" in r.stderr
    finally:
        oci.cmd("delete", "-f", cid)
    # without --debug: no debug lines
    log2 = oci.tmp / "quiet.json"
    r = oci.cmd("state", cid, global_args=("--log", log2, "--log-format", "json"))
    assert r.returncode == 1
    assert [json.loads(l)["level"] for l in log2.read_text().splitlines()] == ["error"]


# -- --no-pivot ---------------------------------------------------------------

@pytest.mark.skipif(not shutil.which("strace"), reason="strace not installed")
@pytest.mark.parametrize("no_pivot", [False, True])
def test_no_pivot_uses_move_and_chroot(oci, no_pivot):
    b = oci.bundle(config(["true"]))
    trace = oci.tmp / "trace"
    cmd = ["strace", "-f", "-qq", "-e", "trace=pivot_root,chroot", "-o", str(trace),
           os.environ.get("OCIRUNTIME", str(REPO / ".venv" / "bin" / "ociruntime")),
           "--root", oci.root, "run", *(["--no-pivot"] if no_pivot else []), "-b", str(b), oci.new_id()]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    calls = trace.read_text()
    if no_pivot:
        assert "chroot(" in calls and "pivot_root(" not in calls, calls
    else:
        assert "pivot_root(" in calls and "chroot(" not in calls, calls


# -- exec: rlimits (issue 3: "applies the process's ... rlimits") ----------------

def test_exec_applies_rlimits(oci, tmp_path):
    cfg = config(["sleep", "1000"])
    cfg["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 777, "hard": 2048}]
    with Running(oci, cfg) as c:
        # the container's process (its rlimits) by default
        out = oci.ok("exec", c.cid, *sh("ulimit -n; ulimit -Hn")).stdout
        assert out.split() == ["777", "2048"]
        # a process.json's own rlimits
        proc = dict(cfg["process"], args=sh("ulimit -n; ulimit -Hn"),
                    rlimits=[{"type": "RLIMIT_NOFILE", "soft": 555, "hard": 666}])
        (tmp_path / "process.json").write_text(json.dumps(proc))
        out = oci.ok("exec", "--process", tmp_path / "process.json", c.cid).stdout
        assert out.split() == ["555", "666"]
