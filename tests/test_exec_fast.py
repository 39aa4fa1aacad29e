"""`exec` answered by the C front end (csrc/exec_fast.c, exec_json.c), from
the exec template create leaves (ociruntime/exec_template.py).

`isolated` is the front end in a directory whose `python3` only says it
was called (exit 99): an exec that stays in C shows it, and so does one
that must go to Python.  Every case that stays in C is compared with
Python's exec (OCIRUNTIME_NO_FAST=1) from inside the process.  The
process.json parser is fuzzed, built with ASan and UBSan, against
Python's reading of the same bytes."""
import copy
import json
import os
import random
import shutil
import subprocess

import pytest

from conftest import busybox_config
from ocihelpers import FELL_BACK, front_end_alone, wait_for, wait_gone

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
NO_FAST = dict(os.environ, OCIRUNTIME_NO_FAST="1")

# What the process sees of itself: ids, capabilities, no_new_privs,
# seccomp, limits, cgroups, namespaces, cwd, umask, env, its fds, session.
PROBE = ("id; grep -E '^(Cap|NoNewPrivs|Seccomp)' /proc/self/status; cat /proc/self/cgroup; "
         "grep -E 'open files|processes' /proc/self/limits; ls -l /proc/self/ns | sed 1d | awk '{print $9,$11}'; "
         "pwd; umask; env | sort; ls /proc/self/fd; cat /proc/self/oom_score_adj; "
         "[ \"$(cut -d' ' -f6 /proc/self/stat)\" = $$ ] && echo session leader")


@pytest.fixture
def isolated(oci):
    front = front_end_alone(oci.tmp / "front")

    def run(*args, **kw):
        kw.setdefault("capture_output", True)
        kw.setdefault("text", True)
        return subprocess.run([str(front), "--root", oci.root, *map(str, args)], timeout=60, **kw)
    return run


def running(oci, cfg=None, passwd=""):
    cfg = cfg or busybox_config(["sleep", "1000"])
    b = oci.bundle(cfg)
    if passwd:
        with open(b / "rootfs/etc/passwd", "a") as f:
            f.write(passwd)
    cid = oci.new_id()
    with open(oci.tmp / "run.err", "w+") as err:
        r = oci.cmd("run", "-d", "-b", b, cid, capture_output=False, stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL, stderr=err)
        err.seek(0)
        assert r.returncode == 0, err.read()
    return cid


def in_c(isolated, *args, **kw):
    """exec through the front end alone: it must not fall back."""
    r = isolated("exec", *args, **kw)
    assert r.returncode != FELL_BACK, f"exec {args} fell back to Python: {r.stderr}"
    return r


def in_python(isolated, *args):
    r = isolated("exec", *args)
    assert r.returncode == FELL_BACK and "fell back to python" in r.stderr, (r.returncode, r.stderr)


def same(oci, isolated, *args):
    """The same output and status in C and in Python."""
    fast = in_c(isolated, *args)
    slow = oci.cmd("exec", *args, env=NO_FAST)
    assert (fast.returncode, fast.stdout, fast.stderr) == (slow.returncode, slow.stdout, slow.stderr)
    return fast


def processes(oci, cid):
    with open(f"/proc/{oci.state(cid)['pid']}/task/{oci.state(cid)['pid']}/children") as f:
        return f.read().split()


@pytest.mark.parametrize("flags", [
    (),
    ("-e", "FOO=bar", "-e", "PATH=/bin", "-e", "FOO=again", "--cwd", "/tmp"),
    ("-u", "1000:1000", "-g", "10", "-g", "20"),
    ("-u", "1000", "--cap", "CAP_SYS_ADMIN", "--cap", "CAP_NET_RAW"),
    ("--no-new-privs", "-e", "HOME=/custom", "--ignore-paused"),
], ids=["plain", "env-cwd", "user-groups", "caps", "nnp-home"])
def test_exec_flags_in_c_as_in_python(oci, isolated, flags):
    cfg = busybox_config(["sleep", "1000"])
    cfg["process"]["noNewPrivileges"] = False
    cfg["process"]["oomScoreAdj"] = 100
    cfg["process"]["user"]["additionalGids"] = [5]
    cid = running(oci, cfg)
    r = same(oci, isolated, *flags, cid, "sh", "-c", PROBE)
    assert r.returncode == 0, r.stderr
    assert processes(oci, cid) == []   # the exec'd process is gone, nothing else is left


def test_exit_status_and_signals(oci, isolated):
    cid = running(oci)
    assert in_c(isolated, cid, "sh", "-c", "exit 7").returncode == 7
    assert in_c(isolated, cid, "sh", "-c", "kill -9 $$").returncode == 128 + 9
    # a signal to exec reaches the process (runc's forwarding)
    p = subprocess.Popen([str(oci.tmp / "front" / "ociruntime"), "--root", oci.root, "exec", cid,
                          "sh", "-c", "trap 'echo got TERM; exit 3' TERM; echo ready; "
                          "while :; do sleep 0.1; done"], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline() == "ready\n"
        p.terminate()
        assert p.wait(30) == 3 and p.stdout.read() == "got TERM\n"
    finally:
        p.kill()
        p.wait()


def test_detached_with_pid_file(oci, isolated):
    cid = running(oci)
    pid_file = oci.tmp / "exec.pid"
    r = in_c(isolated, "-d", "--pid-file", pid_file, cid, "sleep", "1000", stdin=subprocess.DEVNULL,
             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, capture_output=False)
    assert r.returncode == 0
    pid = int(pid_file.read_text())
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        assert f.read() == b"sleep\x001000\x00"
    init = oci.state(cid)["pid"]
    for name in ("pid", "mnt", "net", "cgroup"):
        assert os.readlink(f"/proc/{pid}/ns/{name}") == os.readlink(f"/proc/{init}/ns/{name}")
    with open(f"/proc/{pid}/cgroup") as a, open(f"/proc/{init}/cgroup") as b:
        assert a.read() == b.read()   # the container's cgroups, every hierarchy
    assert [p for p in os.listdir(oci.tmp) if p.startswith("exec.pid.")] == []
    os.kill(pid, 9)
    assert wait_gone(pid)


def test_preserve_fds(oci, isolated):
    cid = running(oci)
    r, w = os.pipe()
    try:
        # fd 3 of the caller: a shell puts the pipe there
        out = subprocess.run(["bash", "-c", f'exec 3>&{w} {w}>&-; exec "$0" "$@"',
                              str(oci.tmp / "front" / "ociruntime"), "--root", oci.root, "exec",
                              "--preserve-fds", "1", cid, "sh", "-c", "echo through >&3; ls /proc/self/fd"],
                             capture_output=True, text=True, timeout=60, pass_fds=(w,))
        assert out.returncode == 0, out.stderr
        assert out.stdout.split() == ["0", "1", "2", "3", "4"]   # 4: ls's own directory
        os.close(w)
        w = -1
        assert os.read(r, 100) == b"through\n"
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)


def test_process_json_in_c_as_in_python(oci, isolated):
    cid = running(oci)
    proc = {"args": ["sh", "-c", PROBE], "env": ["A=1", "PATH=/bin:/usr/bin", "A=2"], "cwd": "/etc",
            "user": {"uid": 1234, "gid": 1234, "umask": 0o077, "additionalGids": [7, 8]},
            "capabilities": {"bounding": ["CAP_KILL", "CAP_CHOWN"], "effective": ["CAP_KILL"],
                             "permitted": ["CAP_KILL"], "ambient": ["CAP_KILL"],
                             "inheritable": ["CAP_KILL"]},
            "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 100, "hard": 200}],
            "noNewPrivileges": True, "oomScoreAdj": 50, "terminal": False}
    pf = oci.tmp / "process.json"
    pf.write_text(json.dumps(proc))
    assert same(oci, isolated, "-p", pf, cid).returncode == 0
    pf.write_text(json.dumps(dict(proc, user={}, capabilities={}, noNewPrivileges=False)))
    assert same(oci, isolated, "--process", pf, cid).returncode == 0


@pytest.mark.parametrize("nnp", [True, False])
def test_seccomp_applies_to_exec_in_c(oci, isolated, nnp):
    """The container's filter, loaded after the identity change (no_new_privs)
    or before it (without: seccomp(2) needs CAP_SYS_ADMIN then).  The first
    exec compiles it (in a process that joins nothing) into exec.bpf in the
    state directory; the next ones load that; a damaged one is not used."""
    cfg = busybox_config(["sleep", "1000"])
    cfg["process"]["noNewPrivileges"] = nnp
    cfg["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW",
                               "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                                             "errnoRet": 28}]}
    cid = running(oci, cfg)
    cache = os.path.join(oci.root, cid, "exec.bpf")
    assert not os.path.exists(cache)
    for damage in (None, None, b"\0" * 7, b"\0" * 8):
        if damage is not None:
            with open(cache, "wb") as f:
                f.write(damage)
        r = same(oci, isolated, cid, "sh", "-c", "mkdir /tmp/x; echo $?; " + PROBE)
        assert r.stdout.startswith("1\n") and "Seccomp:\t2" in r.stdout, r.stdout
        assert "No space left on device" in r.stderr   # errnoRet 28: this filter's
        if damage is None:   # compiled by the first exec: flags, then instructions
            assert os.path.getsize(cache) > 8 and os.path.getsize(cache) % 8 == 0
    assert not [n for n in os.listdir(os.path.join(oci.root, cid)) if n.endswith(".tmp")]


def test_home_from_the_image_passwd(oci, isolated):
    cid = running(oci, passwd="u:x:4321:4321::/home/u:/bin/sh\nv:x:4322:4322:::/bin/sh\n")
    for user, home in (("4321", "/home/u"), ("4322", "/"), ("4323", "/"), ("0", "/root")):
        r = same(oci, isolated, "-u", user, cid, "sh", "-c", "echo $HOME")
        assert r.stdout == home + "\n"


def test_a_missing_command_is_pythons_error_and_leaves_nothing(oci, isolated):
    """The C path starts the process, which fails before exec: it kills it
    and hands the command to Python, which says why."""
    cid = running(oci)
    in_python(isolated, cid, "no-such-command")
    assert processes(oci, cid) == []
    r = oci.cmd("exec", cid, "no-such-command")
    assert r.returncode == 255 and "executable file not found" in r.stderr
    assert "Traceback" not in r.stderr and processes(oci, cid) == []


def test_what_the_front_end_leaves_to_python(oci, isolated):
    cid = running(oci)
    pf = oci.tmp / "p.json"
    for args in ((cid,),                                   # no command: Python's error
                 ("--cgroup", "sub", cid, "true"),          # a sub-cgroup
                 ("-t", cid, "true"),                       # the terminal proxy
                 ("--console-socket", oci.tmp / "s", cid, "true"),   # without -t -d
                 ("--cap", "CAP_NOPE", cid, "true"),
                 ("-u", "x", cid, "true"), ("-u", "1:", cid, "true"),
                 ("--cwd", "rel", cid, "true"),
                 ("-t=false", cid, "true"),
                 ("--apparmor", "p", cid, "true"),
                 ("-p", pf, cid),                           # missing
                 ("--no-such-flag", cid, "true"),
                 ("no-such-container", "true")):
        in_python(isolated, *args)
    for proc in ({"args": ["true"], "cwd": "/", "apparmorProfile": "x"},
                 {"args": ["true"], "cwd": "/", "scheduler": {"policy": "SCHED_OTHER"}},
                 {"args": ["true"], "cwd": "rel"}, {"args": [], "cwd": "/"},
                 {"args": ["true"], "cwd": "/", "user": {"uid": 1.0}},
                 {"args": ["true"], "cwd": "/", "env": ["A=\u00e9"]},
                 {"args": ["true"], "cwd": "/", "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 1, "hard": 1}] * 2}):
        pf.write_text(json.dumps(proc))
        in_python(isolated, "-p", pf, cid)
    oci.ok("pause", cid)
    in_python(isolated, cid, "true")
    oci.ok("resume", cid)
    in_c(isolated, cid, "true")
    oci.ok("kill", cid, "KILL")
    wait_for(lambda: oci.state(cid)["status"] == "stopped", "the container to stop")
    in_python(isolated, cid, "true")


def test_no_template_without_what_exec_needs(oci, isolated):
    """A process with a scheduler: the template is not written, every exec
    is Python's (which applies it)."""
    cfg = busybox_config(["sleep", "1000"])
    cfg["process"]["scheduler"] = {"policy": "SCHED_OTHER", "nice": 1}
    cid = running(oci, cfg)
    assert not os.path.exists(os.path.join(oci.root, cid, "exec"))
    in_python(isolated, cid, "true")
    assert oci.ok("exec", cid, "sh", "-c", "cut -d' ' -f19 /proc/self/stat").stdout == "1\n"


def test_a_template_of_another_container_is_not_used(oci, isolated):
    a, b = running(oci), running(oci)
    shutil.copy(os.path.join(oci.root, a, "exec"), os.path.join(oci.root, b, "exec"))
    in_python(isolated, b, "true")
    with open(os.path.join(oci.root, a, "exec"), "ab") as f:
        f.write(b"unknown line\n")
    in_python(isolated, a, "true")


# -- the process.json parser, fuzzed ---------------------------------------

SEEDS = [
    {"args": ["sh", "-c", "true"], "cwd": "/"},
    {"args": ["a", "b"], "env": ["A=1", "B"], "cwd": "/x", "terminal": False,
     "user": {"uid": 1, "gid": 2, "umask": 18, "additionalGids": [3, 4]},
     "capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_CHOWN", "CAP_KILL"], "permitted": [],
                      "inheritable": ["CAP_SYS_ADMIN"], "ambient": ["CAP_BPF"]},
     "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 2**63 + 5},
                 {"type": "RLIMIT_CORE", "soft": 0, "hard": 0}],
     "noNewPrivileges": True, "oomScoreAdj": -5, "consoleSize": {"height": 24, "width": 80}},
    {"args": ["x"], "cwd": "/", "terminal": True, "consoleSize": {"height": 0, "width": 4294967296}},
    {"args": ["x"], "cwd": "/", "apparmorProfile": "", "selinuxLabel": "", "commandLine": "x",
     "user": {"username": "u"}},   # what engines send, and Python ignores
]
VALUES = [-1, 0, 1, 7, 1000, 1001, -1000, -1001, 2**31, 2**32 - 1, 2**32, 2**63 - 1, 2**63, 2**64 - 1,
          2**64, 1.0, 0.5, -0.0, "", "x", "/", "/tmp", "rel", "A=1", None, True, False, [], {}, ["a"], [1],
          [None], ["CAP_KILL"], ["CAP_NOPE"], {"a": 1}, "CAP_KILL", "RLIMIT_NOFILE", "RLIMIT_FOO",
          {"type": "RLIMIT_NOFILE", "soft": 1, "hard": 2}, {"type": "RLIMIT_NOFILE", "soft": 1},
          {"height": 1, "width": 2}, {"uid": 1}, {"effective": ["CAP_KILL"]}]
KEYS = ["args", "env", "cwd", "terminal", "user", "uid", "gid", "umask", "additionalGids",
        "capabilities", "bounding", "effective", "ambient", "rlimits", "type", "soft", "hard",
        "noNewPrivileges", "oomScoreAdj", "consoleSize", "height", "width", "apparmorProfile",
        "scheduler", "username", "commandLine", "x"]
SNIPPETS = [b"\\u0000", b"\\ud800", b"\\u0026", b"\\u003c", b"\\u007f", b"\\u0080", b"\\u00e9",
            b"\\u12", b"\xc3\xa9", b"\xff", b"\x00", b",", b"]", b"}", b"{", b"[", b'"',
            b"NaN", b"Infinity", b"1e3", b"-", b"//", b"/*", b"\t", b"\n", b"'", b"\\", b"true", b"null",
            b'"cwd":"/",', b'"args":["y"],', b'"cwd":"rel",']


def _containers(doc, path=()):
    yield path, doc
    items = doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else ()
    for k, v in items:
        yield from _containers(v, path + (k,))


def mutate(rng, seed):
    doc = copy.deepcopy(seed)
    for _ in range(rng.randint(1, 3)):
        spots = [(p, v) for p, v in _containers(doc) if isinstance(v, (dict, list))]
        path, obj = rng.choice(spots)
        if isinstance(obj, dict):
            key = rng.choice(list(obj) + KEYS) if obj else rng.choice(KEYS)
            if rng.random() < 0.2 and key in obj:
                del obj[key]
            else:
                obj[key] = copy.deepcopy(rng.choice(VALUES + SEEDS))
        elif obj:
            obj[rng.randrange(len(obj))] = copy.deepcopy(rng.choice(VALUES))
        else:
            obj.append(copy.deepcopy(rng.choice(VALUES)))
    raw = json.dumps(doc).encode()
    if rng.random() < 0.4:   # bytes: splices that may break the syntax
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(len(raw) + 1)
            choice = rng.random()
            if choice < 0.5:
                raw = raw[:i] + rng.choice(SNIPPETS) + raw[i:]
            elif choice < 0.8:
                raw = raw[:i] + raw[i + rng.randint(1, 4):]
            else:
                raw = raw[:i] + bytes([rng.randrange(256)]) + raw[i + 1:]
    return raw


def python_reading(raw, path):
    """What Python's exec makes of a process.json: None if it refuses it
    (the file's checks, or the capabilities and rlimits plan_identity maps)."""
    from ociruntime import capabilities, execute, process
    from ociruntime.errors import OciError
    path.write_bytes(raw)
    try:
        proc = execute._load_process_file(str(path))
        caps = capabilities.masks(proc.get("capabilities"), "x")
        rlimits = []
        for r in proc.get("rlimits") or ():
            res = process.rlimit_number(r, "x")
            if res in [x[0] for x in rlimits]:
                return None
            rlimits.append([res, r["soft"], r["hard"]])
    except (OciError, RecursionError):
        return None
    user, size = proc.get("user") or {}, proc.get("consoleSize") or {}
    return {"args": proc["args"], "env": proc.get("env") or [], "cwd": [proc["cwd"]],
            "uid": user.get("uid", 0), "gid": user.get("gid", 0), "umask": user.get("umask", 0o022),
            "gids": user.get("additionalGids") or [], "caps": [caps[s] for s in capabilities.SETS],
            "nnp": int(bool(proc.get("noNewPrivileges"))), "terminal": int(bool(proc.get("terminal"))),
            "rows": size.get("height", 0), "cols": size.get("width", 0), "rlimits": rlimits,
            "oom": proc.get("oomScoreAdj")}


@pytest.fixture(scope="module")
def fuzz_target(tmp_path_factory):
    if not shutil.which("gcc"):
        pytest.skip("no gcc to build the fuzz target")
    exe = tmp_path_factory.mktemp("fuzz") / "fuzz_exec_json"
    r = subprocess.run(["gcc", "-O1", "-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
                        "-I", os.path.join(ROOT, "csrc"), os.path.join(HERE, "fuzz_exec_json.c"),
                        os.path.join(ROOT, "csrc", "exec_json.c"), "-ljson-c", "-o", str(exe)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return exe


def run_target(exe, inputs, tmp):
    from ociruntime.capabilities import CAPABILITIES
    names = tmp / "caps"
    names.write_text("".join(n + "\n" for n in CAPABILITIES))
    data = b"".join(b"%d\n%s" % (len(raw), raw) for raw in inputs)
    r = subprocess.run([str(exe), str(names)], input=data, capture_output=True, timeout=120,
                       env=dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=0"))
    assert r.returncode == 0, r.stderr.decode(errors="replace")[-3000:]
    lines = r.stdout.decode().splitlines()
    fds = lines.pop().split()
    assert fds[0] == "fds" and fds[1] == fds[2], f"the parser leaked fds: {fds}"
    assert len(lines) == len(inputs)
    return [None if line == "reject" else json.loads(line) for line in lines]


def test_fuzz_process_json_parser(fuzz_target, tmp_path):
    """Seeded mutations of process.json: the parser never crashes or leaks
    (ASan, UBSan, LeakSanitizer, the fds), accepts nothing Python refuses,
    and what it accepts it reads as Python does."""
    rng = random.Random(16)
    inputs = [json.dumps(s).encode() for s in SEEDS]
    # Go's encoding (podman, containerd, docker): &, <, > escaped
    inputs.append(b'{"args":["sh","-c","a \\u0026\\u0026 b \\u003c c \\u003e d"],"cwd":"/"}')
    inputs += [mutate(rng, rng.choice(SEEDS)) for _ in range(3000)]
    got = run_target(fuzz_target, inputs, tmp_path)
    for seed, reading in zip(inputs[:len(SEEDS) + 1], got):   # the plain cases stay in C
        assert reading is not None, seed
    assert got[len(SEEDS)]["args"][2] == "a && b < c > d"
    accepted = 0
    for raw, reading in zip(inputs, got):
        if reading is None:
            continue
        accepted += 1
        assert reading == python_reading(raw, tmp_path / "p.json"), raw
    assert accepted > len(SEEDS) * 10   # the mutations keep many valid inputs: the check bites
