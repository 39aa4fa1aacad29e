"""`validate` is as strict as `create` (issue 15, item 4): it runs the
schema and every semantic check create runs, reports every error at once,
one line each with the JSON path, the message and the spec section, exits
1 if any, and makes nothing; create's error names the same section."""
import json
import os
import re
import uuid

import pytest

from conftest import busybox_config
from ocihelpers import assert_one_line_error, json_log_errors

# The six configs the issue names, which `validate` called valid and
# `create` refused: (change, JSON path, spec section).
SIX = {
    "relative hook path": (
        lambda c: c.__setitem__("hooks", {"prestart": [{"path": "bin/true"}]}),
        "$.hooks.prestart[0].path", "config.md#posix-platform-hooks"),
    "unknown capability": (
        lambda c: c["process"]["capabilities"]["bounding"].append("CAP_BOGUS"),
        "$.process.capabilities.bounding[3]", "config.md#linux-process"),
    "unknown rlimit": (
        lambda c: c["process"]["rlimits"].append({"type": "RLIMIT_BOGUS", "soft": 1, "hard": 1}),
        "$.process.rlimits[1].type", "config.md#posix-process"),
    "uidMappings without a user namespace": (
        lambda c: c["linux"].__setitem__("uidMappings", [{"containerID": 0, "hostID": 1000, "size": 1}]),
        "$.linux.uidMappings", "config-linux.md#user-namespace-mappings"),
    "relative cwd": (
        lambda c: c["process"].__setitem__("cwd", "tmp"),
        "$.process.cwd", "config.md#process"),
    "process without args": (
        lambda c: c["process"].pop("args"),
        "$.process.args", "config.md#process"),
}


def _config(change):
    cfg = busybox_config()
    change(cfg)
    return cfg


def _error_lines(r):
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr, r.stderr
    return r.stderr.splitlines()


@pytest.mark.parametrize("name", SIX)
def test_validate_refuses_what_create_refuses(oci, name):
    change, path, section = SIX[name]
    b = oci.bundle(_config(change))
    r = oci.cmd("validate", "-b", b)
    assert r.returncode == 1, (r.stdout, r.stderr)
    lines = _error_lines(r)
    assert len(lines) == 1, lines
    assert f"config.json: {path}: " in lines[0] and lines[0].endswith(f"({section})"), lines[0]
    # create refuses it with the same line: same path, message and section
    cid = oci.new_id()
    c = oci.create("-b", b, cid)
    assert_one_line_error(c, f"{path}: ", f"({section})")
    assert c.stderr.strip() == lines[0]
    assert oci.cmd("state", cid).returncode == 1   # nothing left (the fixture checks the rest)


def test_three_errors_three_lines(oci):
    cfg = busybox_config()
    cfg["process"]["cwd"] = "tmp"
    cfg["process"]["capabilities"]["effective"].append("CAP_NOPE")
    cfg["hooks"] = {"poststop": [{"path": "x"}]}
    b = oci.bundle(cfg)
    log = oci.tmp / "log.json"
    r = oci.cmd("validate", "-b", b, global_args=("--log", log, "--log-format", "json"))
    assert r.returncode == 1
    lines = _error_lines(r)
    assert len(lines) == 3, lines
    want = [("$.hooks.poststop[0].path", "config.md#posix-platform-hooks"),
            ("$.process.capabilities.effective[3]", "config.md#linux-process"),
            ("$.process.cwd", "config.md#process")]
    for line, (path, section) in zip(lines, want):
        assert f": {path}: " in line and line.endswith(f"({section})"), line
    msgs = [e["msg"] for e in json_log_errors(log)]
    assert len(msgs) == 3 and all(f": {p}: " in m for m, (p, _) in zip(msgs, want)), msgs
    # create stops at its first, and names its section
    c = oci.create("-b", b, oci.new_id())
    assert_one_line_error(c, "$.hooks.poststop[0].path", "(config.md#posix-platform-hooks)")


def test_schema_and_semantic_errors_together(oci):
    """The schema's errors (all of them) and the semantic checks' in one run."""
    cfg = busybox_config()
    cfg["process"]["user"]["uid"] = "root"          # schema: not an integer
    cfg["linux"]["namespaces"].append({"type": "bogus"})   # schema: not one of...
    cfg["hooks"] = {"createRuntime": [{"path": "rel"}]}    # semantic
    r = oci.cmd("validate", "-b", oci.bundle(cfg))
    assert r.returncode == 1
    lines = _error_lines(r)
    assert len(lines) == 3, lines
    assert any("$.process.user.uid: " in l and l.endswith("(config.md#user)") for l in lines), lines
    assert any("$.linux.namespaces[" in l and l.endswith("(config-linux.md#namespaces)") for l in lines), lines
    assert any("$.hooks.createRuntime[0].path: " in l for l in lines), lines


def test_plan_time_checks_and_rootfs(oci):
    """What create finds only as it builds the plan (a mount, masked
    paths, a sysctl) and a missing rootfs are errors of validate too."""
    cfg = busybox_config()
    cfg["mounts"].append({"destination": "/x", "type": "bind", "source": "/nonexistent-" + uuid.uuid4().hex})
    cfg["mounts"].append({"destination": "/y", "source": "none"})   # no type, not a bind
    cfg["linux"]["sysctl"] = {"kernel.bogus": "1"}
    cfg["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_BOGUS"}
    b = oci.bundle(cfg)
    r = oci.cmd("validate", "-b", b)
    assert r.returncode == 1
    lines = _error_lines(r)
    n = len(cfg["mounts"])
    assert any(f"$.mounts[{n - 2}].source: " in l and l.endswith("(config.md#mounts)") for l in lines), lines
    assert any(f"$.mounts[{n - 1}].type: " in l and l.endswith("(config.md#mounts)") for l in lines), lines
    assert any("$.linux.sysctl['kernel.bogus']" in l and l.endswith("(config-linux.md#sysctl)") for l in lines), lines
    assert any("$.linux.seccomp" in l and l.endswith("(config-linux.md#seccomp)") for l in lines), lines
    os.rename(b / "rootfs", b / "elsewhere")
    r = oci.cmd("validate", "-b", b)
    assert any("$.root.path: " in l and l.endswith("(config.md#root)") for l in _error_lines(r)), r.stderr


def test_valid_config_and_nothing_made(oci):
    """A good config is valid (exit 0); checking its cgroups makes none."""
    name = "ociruntime-test-validate-" + uuid.uuid4().hex[:8]
    oci.ids.append(name)   # the fixture fails the test on a cgroup of this name
    cfg = busybox_config()
    cfg["linux"]["cgroupsPath"] = "/" + name
    cfg["linux"]["resources"] = {"pids": {"limit": 10}, "memory": {"limit": 64 << 20}}
    b = oci.bundle(cfg)
    r = oci.cmd("validate", "-b", b)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().endswith("config.json: valid") and not r.stderr
    cfg["linux"]["resources"]["devices"] = [{"allow": True, "type": "x"}]
    (b / "config.json").write_text(json.dumps(cfg))
    r = oci.cmd("validate", "-b", b)
    assert r.returncode == 1
    assert any("$.linux.resources.devices[0]" in l for l in _error_lines(r)), r.stderr


def test_validate_config_api(oci):
    from ociruntime import validate_config
    b = oci.bundle()
    assert validate_config(busybox_config(), bundle=str(b)) == []
    cfg = _config(SIX["relative cwd"][0])
    cfg["process"]["rlimits"].append({"type": "RLIMIT_X", "soft": 1, "hard": 1})
    problems = validate_config(cfg, bundle=str(b))
    assert [(p.path, p.section) for p in problems] == [
        ("$.process.rlimits[1].type", "config.md#posix-process"),
        ("$.process.cwd", "config.md#process")]
    assert str(problems[1]) == "$.process.cwd: must be an absolute path, not 'tmp' (config.md#process)"


BROKEN = {
    "capabilities a list": lambda c: c["process"].__setitem__("capabilities", ["CAP_X"]),
    "linux a list": lambda c: c.__setitem__("linux", []),
    "hooks a list": lambda c: c.__setitem__("hooks", []),
    "a mount not an object": lambda c: c["mounts"].append(5),
    "an rlimit not an object": lambda c: c["process"]["rlimits"].append("x"),
    "sysctl a list": lambda c: c["linux"].__setitem__("sysctl", ["x"]),
    "resources.memory a number": lambda c: c["linux"].__setitem__("resources", {"memory": 5}),
    "cgroupsPath out of the hierarchy": lambda c: c["linux"].__setitem__("cgroupsPath", "../../../../x"),
}


@pytest.mark.parametrize("name", BROKEN)
def test_broken_types_are_lines_not_tracebacks(oci, name):
    """Where the schema fails, the semantic checks meet values of the wrong
    type: still one line per error, each with a path and a section."""
    r = oci.cmd("validate", "-b", oci.bundle(_config(BROKEN[name])))
    assert r.returncode == 1, r.stdout
    lines = _error_lines(r)
    assert lines and all(": $" in l and re.search(r"\((config|config-linux)\.md(#[a-z-]+)?\)$", l)
                         for l in lines), lines
