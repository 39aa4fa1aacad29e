"""Hostile or broken input (issue 11.4): each case gets exit status 1, one
line naming the field, flag or file, a JSON error line in --log, and
leaves nothing behind (state dir, process, cgroup, mount) -- never an
`internal error` or a traceback."""
import contextlib
import json
import os
import subprocess

import pytest

from conftest import RUNTIME
from ocihelpers import Running, assert_one_line_error, config, json_log_errors
from test_errors import bundle_with, check_failed, create_fails
from test_frontend import FELL_BACK, isolated  # noqa: F401 (a fixture)

NO_FAST = dict(os.environ, OCIRUNTIME_NO_FAST="1")


def exec_error(r, *needles):
    """exec's errors are runc's: "exec failed: ...", status 255."""
    assert r.returncode == 255, (r.returncode, r.stderr)
    r.returncode = 1
    line = assert_one_line_error(r, "exec failed", *needles)
    assert "internal error" not in line
    return line


# -- NUL bytes and lone surrogates in config strings ---------------------------------

def _mount(**m):
    base = {"destination": "/x", "type": "tmpfs", "source": "tmpfs"}
    base.update(m)
    return lambda c: c["mounts"].append(base)


NUL_CASES = [
    ("$.process.args[0]", lambda c: c["process"].update(args=["tr\0ue"])),
    ("$.process.args[1]", lambda c: c["process"].update(args=["true", "a\0"])),
    ("$.process.env[0]", lambda c: c["process"].update(env=["A=\0b"])),
    ("$.process.cwd", lambda c: c["process"].update(cwd="/\0")),
    ("$.hostname", lambda c: c.update(hostname="a\0b")),
    ("$.mounts[", _mount(destination="/x\0y")),
    ("$.mounts[", _mount(source="tmp\0fs")),
    ("$.mounts[", _mount(type="tmp\0fs")),
    ("$.mounts[", _mount(options=["rw", "size=1\0"])),
    ("$.linux.maskedPaths[0]", lambda c: c["linux"].update(maskedPaths=["/proc/\0kcore"])),
    ("$.linux.readonlyPaths[0]", lambda c: c["linux"].update(readonlyPaths=["/proc/\0sys"])),
    ("$.annotations", lambda c: c.update(annotations={"k": "v\0"})),
    # a key with a line break: the path spells it with repr(), one line
    ("$.annotations['a\\nb']", lambda c: c.update(annotations={"a\nb": "v\0"})),
]


@pytest.mark.parametrize("where,mutate", NUL_CASES, ids=[f"{i}-{w}" for i, (w, _) in enumerate(NUL_CASES)])
def test_nul_byte_in_a_config_string(oci, where, mutate):
    line = create_fails(oci, bundle_with(oci, mutate), where, "NUL")
    assert "internal error" not in line


@pytest.mark.parametrize("escape", ["\\ud800", "\\udc00", "a\\uDBFFb"])
@pytest.mark.parametrize("field", ["args", "annotation"])
def test_lone_surrogate_escape(oci, escape, field):
    cfg = config(["true", "@@"]) if field == "args" else config(["true"])
    if field == "annotation":
        cfg["annotations"] = {"k": "@@"}
    raw = json.dumps(cfg).replace("@@", escape)
    where = "$.process.args[1]" if field == "args" else "$.annotations"
    create_fails(oci, bundle_with(oci, raw=raw), where, "surrogate")


def test_surrogate_as_raw_bytes_and_nul_in_utf16(oci):
    """json lets surrogates encoded as UTF-8 bytes through (surrogatepass),
    and reads UTF-16, where a \\u0000 escape is not the bytes b"\\u"."""
    cfg = config(["true", "@@"])
    raw = json.dumps(cfg).encode().replace(b"@@", b"\xed\xa0\x80")
    b = bundle_with(oci, rootfs=False)
    (b / "config.json").write_bytes(raw)
    create_fails(oci, b, "$.process.args[1]", "surrogate")
    b = bundle_with(oci, rootfs=False)
    (b / "config.json").write_bytes(json.dumps(cfg).replace("@@", "\\u0000").encode("utf-16"))
    create_fails(oci, b, "$.process.args[1]", "NUL")


def test_exec_arguments_that_are_not_utf8_pass_through(oci):
    """The command line is bytes: runc hands them over as they are."""
    cfg = config(["sleep", "60"])
    with Running(oci, cfg) as c:
        r = subprocess.run([RUNTIME, "--root", oci.root, "exec", "-e", b"V=\xfe", c.cid, "sh", "-c",
                            'printf "%s|%s" "$1" "$V"', "zero", b"a\xffb"],
                           capture_output=True, timeout=60)
        assert r.returncode == 0, r.stderr
        assert r.stdout == b"a\xffb|\xfe"


@pytest.mark.parametrize("depth", [1000, 10000])
def test_deeply_nested_json(oci, depth):
    cfg = config(["true"])
    raw = json.dumps(cfg)[:-1] + ', "x-deep": ' + "[" * depth + "]" * depth + "}"
    create_fails(oci, bundle_with(oci, raw=raw), "config.json", "nested")


def test_deep_and_nul_process_json_for_exec(oci):
    cfg = config(["sleep", "60"])
    with Running(oci, cfg) as c:
        proc = config(["true"])["process"]
        cases = {"deep": json.dumps(proc)[:-1] + ', "x": ' + "[" * 5000 + "]" * 5000 + "}",
                 "nul": json.dumps(dict(proc, args=["tr\0ue"])),
                 "surrogate": json.dumps(dict(proc, args=["@@"])).replace("@@", "\\ud800")}
        for name, text in cases.items():
            p = oci.tmp / f"process-{name}.json"
            p.write_text(text)
            log = oci.tmp / f"exec-{name}.json"
            r = oci.cmd("exec", "-p", p, c.cid, global_args=("--log", log, "--log-format", "json"))
            line = exec_error(r, str(p))
            assert json_log_errors(log)[0]["msg"] in line
        assert oci.state(c.cid)["status"] == "running"


# -- kill: signal numbers the kernel does not have ------------------------------------

@pytest.mark.parametrize("sig", ["65", "99", "128", "12345678901234567890"])
def test_kill_bad_signal_number(oci, sig):
    b = oci.bundle(args=["sleep", "60"])
    cid = oci.new_id()
    assert oci.create("-b", b, cid).returncode == 0
    oci.ok("start", cid)
    lines = set()
    for env in (None, NO_FAST):   # the C front end, and Python alone
        log = oci.tmp / f"kill-{bool(env)}.json"
        r = oci.cmd("kill", cid, sig, global_args=("--log", log, "--log-format", "json"), env=env)
        line = assert_one_line_error(r, sig)
        assert "internal error" not in line and "signal" in line
        assert json_log_errors(log)[0]["msg"] in line
        lines.add(line)
    assert len(lines) == 1, lines   # the same answer either way
    assert oci.state(cid)["status"] == "running"
    oci.ok("delete", "-f", cid)


@pytest.mark.parametrize("sig", ["65", "99", "999", "0065", "12345678901234567890"])
def test_front_end_hands_bad_signal_numbers_to_python(oci, isolated, sig):  # noqa: F811
    """The C front end acts only on numbers the kernel has; anything else
    goes to Python untouched (whose answer the test above checks)."""
    b = oci.bundle(args=["sleep", "60"])
    cid = oci.new_id()
    assert oci.create("-b", b, cid).returncode == 0
    r = isolated("kill", cid, sig)
    assert r.returncode == FELL_BACK, (r.returncode, r.stderr)
    assert oci.state(cid)["status"] == "created"
    oci.ok("delete", "-f", cid)


# -- --pid-file in a missing directory -------------------------------------------------

def test_create_pid_file_in_a_missing_directory(oci):
    missing = oci.tmp / "no-such-dir" / "pid"
    cid = oci.new_id()
    log = oci.tmp / "log.json"
    r = oci.create("-b", bundle_with(oci), "--pid-file", missing, cid,
                   global_args=("--log", log, "--log-format", "json"))
    check_failed(oci, r, cid, log, "--pid-file", str(missing))


def test_exec_pid_file_in_a_missing_directory(oci):
    cfg = config(["sleep", "60"])
    cfg["root"]["readonly"] = False
    with Running(oci, cfg) as c:
        missing = oci.tmp / "no-such-dir" / "pid"
        log = oci.tmp / "log.json"
        r = oci.cmd("exec", "--pid-file", missing, c.cid, "touch", "/ran",
                    global_args=("--log", log, "--log-format", "json"))
        line = exec_error(r, "--pid-file", str(missing))
        assert json_log_errors(log)[0]["msg"] in line
        assert not (c.bundle / "rootfs" / "ran").exists()   # refused before it ran
        assert oci.state(c.cid)["status"] == "running"


def test_pid_file_that_is_a_directory(oci):
    """The rename fails: one line, no container, no temporary file left."""
    d = oci.tmp / "piddir"
    d.mkdir()
    cid = oci.new_id()
    log = oci.tmp / "log.json"
    r = oci.create("-b", bundle_with(oci, rootfs=True), "--pid-file", d, cid,
                   global_args=("--log", log, "--log-format", "json"))
    check_failed(oci, r, cid, log, "--pid-file", str(d))
    assert sorted(p.name for p in oci.tmp.iterdir() if p.name.startswith("piddir")) == ["piddir"]
    assert os.listdir(d) == []


# -- ids too long for the paths made from them -----------------------------------------

MAX_ID = 238   # "ociruntime-<id>.scope" fits systemd's 255


@pytest.mark.parametrize("length", [MAX_ID + 1, 256, 300, 1024, 1025])
def test_too_long_id_is_refused_before_anything_is_made(oci, length):
    cid = "a" * length
    line = create_fails(oci, bundle_with(oci), "invalid container id", f"at most {MAX_ID}", cid=cid)
    assert len(line) < 500   # not the whole id
    assert not os.path.isdir(oci.root) or os.listdir(oci.root) == []


@pytest.mark.parametrize("command", ["state", "start", "kill", "delete", "exec"])
def test_too_long_id_in_other_commands(oci, command):
    args = [command, "c" * 300] + (["true"] if command == "exec" else [])
    for env in (None, NO_FAST):
        r = oci.cmd(*args, env=env)
        if command == "exec":
            exec_error(r, "invalid container id", f"at most {MAX_ID}")
        else:
            assert_one_line_error(r, "invalid container id", f"at most {MAX_ID}")


def test_longest_id_works(oci):
    cid = "b" * (MAX_ID - 8) + oci.new_id("")[-8:]
    oci.ids.append(cid)
    b = oci.bundle(args=["true"])
    assert len(cid) == MAX_ID
    r = oci.create("-b", b, cid)
    assert r.returncode == 0, r.stderr
    oci.ok("start", cid)
    oci.ok("delete", "-f", cid)


# -- --root that cannot hold a container ------------------------------------------------

def create_in_root(oci, root, *needles):
    """create with --root ROOT fails cleanly and leaves nothing in it."""
    saved = oci.root
    oci.root = str(root)
    try:
        cid = oci.new_id()
        log = oci.tmp / f"log-{cid}.json"
        r = oci.create("-b", bundle_with(oci), cid, global_args=("--log", log, "--log-format", "json"))
        line = check_failed(oci, r, cid, log, *needles)
        assert "internal error" not in line
        oci.cmd("delete", "-f", cid)
        return line
    finally:
        oci.root = saved


def test_root_is_a_dangling_symlink(oci):
    root = oci.tmp / "root-link"
    os.symlink(oci.tmp / "nowhere" / "root", root)
    create_in_root(oci, root, "--root", str(root))
    assert not (oci.tmp / "nowhere").exists()


def test_root_is_a_regular_file(oci):
    root = oci.tmp / "root-file"
    root.write_text("not a directory\n")
    create_in_root(oci, root, "--root", str(root), "not a directory")
    assert root.read_text() == "not a directory\n"


@pytest.mark.parametrize("command", [["list"], ["state", "x"], ["delete", "x"], ["kill", "x"]])
def test_other_commands_with_a_root_that_is_a_file(oci, command):
    root = oci.tmp / "root-file"
    root.write_text("")
    r = subprocess.run([RUNTIME, "--root", str(root), *command], capture_output=True, text=True, timeout=60)
    line = assert_one_line_error(r, str(root))
    assert "internal error" not in line


@contextlib.contextmanager
def tmpfs(oci, options):
    d = oci.tmp / f"tmpfs-{len(oci.ids)}"
    d.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(d)], capture_output=True, text=True)
    if r.returncode:
        pytest.skip(f"cannot mount a tmpfs: {r.stderr.strip()}")
    try:
        yield d
    finally:
        subprocess.run(["umount", "-l", str(d)], check=True)


def test_root_is_read_only(oci):
    with tmpfs(oci, "ro,size=1m") as root:
        create_in_root(oci, root, "--root", str(root), "read-only")


def test_root_out_of_space(oci):
    with tmpfs(oci, "size=4k") as d:
        with open(d / "filler", "wb") as f:   # the one page it has
            f.write(b"x" * 4096)
        root = d / "root"
        root.mkdir()
        line = create_in_root(oci, root, "no space left on device")
        assert str(root) in line
        assert os.listdir(root) == []


def test_root_out_of_inodes(oci):
    with tmpfs(oci, "size=1m,nr_inodes=16") as d:
        root = d / "root"
        root.mkdir()
        n = 0
        with pytest.raises(OSError):
            while True:
                (d / f"f{n}").write_text("")
                n += 1
        line = create_in_root(oci, root, "no space left on device")
        assert str(root) in line
        assert os.listdir(root) == []


# -- update --resources: the same rules as config.json ----------------------------------

def test_update_resources_with_nul_surrogate_or_deep_json(oci):
    b = oci.bundle(args=["sleep", "60"])
    cid = oci.new_id()
    assert oci.create("-b", b, cid).returncode == 0
    cases = {"nul": ('{"cpu": {"cpus": "0\\u0000"}}', "$.cpu.cpus"),
             "surrogate": ('{"cpu": {"cpus": "\\ud800"}}', "$.cpu.cpus"),
             "deep": ('{"x": ' + "[" * 5000 + "]" * 5000 + "}", "not JSON")}
    for name, (text, needle) in cases.items():
        p = oci.tmp / f"resources-{name}.json"
        p.write_text(text)
        line = assert_one_line_error(oci.cmd("update", "--resources", p, cid), f"--resources {p}", needle)
        assert "internal error" not in line
    assert oci.state(cid)["status"] == "created"
    oci.ok("delete", "-f", cid)


def test_delete_in_a_root_made_read_only_says_so(oci):
    """delete must not report success while the state stays behind."""
    with tmpfs(oci, "size=1m") as root:
        saved, oci.root = oci.root, str(root)
        try:
            cid = oci.new_id()
            assert oci.create("-b", oci.bundle(args=["sleep", "60"]), cid).returncode == 0
            oci.ok("kill", cid, "KILL")
            from ocihelpers import wait_status
            assert wait_status(oci, cid, "stopped")["status"] == "stopped"
            subprocess.run(["mount", "-o", "remount,ro", str(root)], check=True)
            for env in (None, NO_FAST):
                line = assert_one_line_error(oci.cmd("delete", cid, env=env), "read-only", str(root))
                assert "internal error" not in line
            subprocess.run(["mount", "-o", "remount,rw", str(root)], check=True)
            oci.ok("delete", cid)
            assert os.listdir(root) == []
        finally:
            oci.root = saved
