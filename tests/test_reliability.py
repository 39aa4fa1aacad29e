"""Reliability: fuzzed configs, parallel load, crashes, corrupt state, races.

Sizes: the default run is short; the full runs of the issue are
  OCIRUNTIME_FUZZ_EXAMPLES=1000 OCIRUNTIME_LOAD_CYCLES=200 \\
      .venv/bin/python -m pytest -q -m slow tests/test_reliability.py
(the `slow` marker is on the tests whose size those variables set).
"""
import concurrent.futures
import copy
import json
import os
import random
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import RUNTIME, ROOTFS, busybox_config

FUZZ_EXAMPLES = int(os.environ.get("OCIRUNTIME_FUZZ_EXAMPLES", "100"))
LOAD_CYCLES = int(os.environ.get("OCIRUNTIME_LOAD_CYCLES", "40"))
CGROUP_ROOT = Path("/sys/fs/cgroup")


# -- leak checks ---------------------------------------------------------------

def processes_mentioning(word):
    """Pids whose command line names word (until exec the init is
    ociruntime-init, whose argv has the state root and container id)."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == os.getpid():
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                if word.encode() in f.read():
                    out.append(int(d))
        except OSError:
            pass
    return out


def cgroups_named(word):
    # os.walk, not rglob: other runs remove cgroups while we look.
    return [os.path.join(top, d) for top, dirs, _ in os.walk(CGROUP_ROOT) for d in dirs if word in d]


def mounts_under(path):
    with open("/proc/self/mountinfo") as f:
        return [l.split()[4] for l in f if str(path) in l]


def leftovers(root, tag, tmp):
    """Everything a run tagged `tag` may have left: state dirs, processes,
    cgroups, mounts."""
    out = []
    if os.path.isdir(root):
        out += [f"state {n}" for n in os.listdir(root)]
    out += [f"process {p}" for p in processes_mentioning(tag)]
    out += [f"cgroup {c}" for c in cgroups_named(tag)]
    out += [f"mount {m}" for m in mounts_under(tmp)]
    return out


def wait_no_leftovers(root, tag, tmp, timeout=10):
    """Processes killed by delete may take a moment to be reaped by pid 1."""
    deadline = time.monotonic() + timeout
    while True:
        left = leftovers(root, tag, tmp)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


class Env:
    """A private state root and one shared bundle (rootfs copied once)."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.tag = "ocirel" + uuid.uuid4().hex[:8]
        self.root = f"/run/ociruntime-test-{self.tag}"
        self.bundle = tmp / "bundle"
        self.bundle.mkdir()
        shutil.copytree(ROOTFS, self.bundle / "rootfs", symlinks=True)

    def new_id(self):
        return f"{self.tag}-{uuid.uuid4().hex[:8]}"

    def write_config(self, cfg, bundle=None):
        (bundle or self.bundle).joinpath("config.json").write_text(json.dumps(cfg))

    def cmd(self, *args, timeout=60, **kw):
        kw.setdefault("stdin", subprocess.DEVNULL)
        if "stdout" not in kw:
            kw["capture_output"] = True
        return subprocess.run([RUNTIME, "--root", self.root, *map(str, args)], text=True,
                              timeout=timeout, **kw)

    def create(self, cid, bundle=None, timeout=60):
        """create with stdio on files: the init inherits them."""
        out = self.tmp / f"{cid}-{uuid.uuid4().hex[:6]}.out"
        with open(out, "w+") as f:
            r = self.cmd("create", "-b", bundle or self.bundle, cid, stdout=f, stderr=f, timeout=timeout)
            f.seek(0)
            r.stderr = f.read()
        os.unlink(out)
        return r

    def cleanup(self):
        if os.path.isdir(self.root):
            for cid in os.listdir(self.root):
                self.cmd("delete", "--force", cid)
        for p in processes_mentioning(self.tag):
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(self.root, ignore_errors=True)
        for c in sorted(cgroups_named(self.tag), key=len, reverse=True):
            try:
                os.rmdir(c)
            except OSError:
                pass


@pytest.fixture
def env(tmp_path):
    e = Env(tmp_path)
    yield e
    left = leftovers(e.root, e.tag, tmp_path)
    e.cleanup()
    assert not left, f"left behind: {left}"


def assert_clean_error(r, what):
    err = r.stderr.strip()
    lines = err.splitlines()
    assert "Traceback" not in err, f"{what}: traceback\n{err}"
    assert "internal error" not in err, f"{what}: {err}"
    assert len(lines) == 1, f"{what}: not one line: {err!r}"
    assert lines[0].startswith("ociruntime"), f"{what}: {err!r}"


# -- fuzzed configs ------------------------------------------------------------

# Not mutated: what would make the fuzzer act on the host beyond the
# container (hooks run host programs, cgroupsPath places it in any host
# cgroup) or stop telling a runtime error from the process's own output.
FROZEN = {("hooks",), ("linux", "cgroupsPath"), ("process", "args"), ("process", "terminal")}

json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-2**64, max_value=2**64),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=12),
    st.sampled_from(["", "/", "..", "/proc", "/dev/null", "rw", "bind", "tmpfs", "proc",
                     "CAP_SYS_ADMIN", "SCMP_ACT_ERRNO", "host", "private", "\u00e9\u00e8", "a" * 300,
                     "/proc/self/fd/3", "../../..", "user", "pid", "network", "mount"]),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=8,
)


def _paths(node, prefix=()):
    """Every JSON path of the config (dict keys and list indexes)."""
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, prefix + (i,))
    return out


def _frozen(path):
    return any(path[:len(f)] == f for f in FROZEN)


@st.composite
def mutated_configs(draw):
    cfg = busybox_config(["true"])
    cfg.pop("hooks", None)
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        paths = [p for p in _paths(cfg) if not _frozen(p)]
        path = draw(st.sampled_from(paths))
        parent = cfg
        for k in path[:-1]:
            parent = parent[k]
        op = draw(st.sampled_from(["replace", "delete", "add", "swap_type"]))
        last = path[-1]
        if op == "delete":
            del parent[last]
        elif op == "add" and isinstance(parent[last], (dict, list)):
            target = parent[last]
            if isinstance(target, dict):
                target[draw(st.text(min_size=1, max_size=10))] = draw(json_values)
            else:
                target.append(draw(json_values) if not target else copy.deepcopy(draw(st.sampled_from(target))))
        elif op == "swap_type":
            v = parent[last]
            parent[last] = (str(v) if not isinstance(v, str) else
                            (int(v) if v.isdigit() else [v]))
        else:
            parent[last] = draw(json_values)
    return cfg


def fuzz_once(env, cfg):
    env.write_config(cfg)
    cid = env.new_id()
    try:
        r = env.cmd("run", "-b", env.bundle, cid, timeout=60)
    except subprocess.TimeoutExpired:
        env.cmd("delete", "--force", cid)
        raise AssertionError(f"hang on config: {json.dumps(cfg)[:2000]}")
    what = f"config {json.dumps(cfg)[:3000]}"
    if r.returncode != 0 and not (r.returncode >= 128 and not r.stderr.strip()):
        # Not the process's code (`true`), nor killed by a signal (rlimits):
        # the runtime's own error, one clean line.
        assert_clean_error(r, what)
    left = wait_no_leftovers(env.root, cid, env.tmp)
    assert not left, f"{what}: left behind {left}"


@pytest.mark.slow
def test_fuzzed_configs_give_a_container_or_one_clean_line(env):
    @settings(max_examples=FUZZ_EXAMPLES, deadline=None, derandomize=False,
              suppress_health_check=list(HealthCheck), database=None)
    @given(mutated_configs())
    def check(cfg):
        fuzz_once(env, cfg)
    check()


# A few the fuzzer found or that are worth keeping (regressions).
KNOWN = [
    lambda c: c["linux"].__setitem__("sysctl", {"kernel.core_pattern": "|/tmp/x"}),
    lambda c: c["linux"].__setitem__("seccomp", {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": []}]}),
    lambda c: c["linux"].__setitem__("namespaces", [{"type": "pid", "path": "/nonexistent"}]),
    lambda c: c["process"].__setitem__("rlimits", [{"type": "RLIMIT_NOFILE", "soft": 2**64 - 1, "hard": 1}]),
    lambda c: c["mounts"].append({"destination": "", "type": "tmpfs"}),
    lambda c: c.__setitem__("root", {"path": "/nonexistent"}),
    lambda c: c["process"].__setitem__("user", {"uid": 2**40, "gid": -1}),
    lambda c: c["linux"].__setitem__("devices", [{"path": "/dev/x", "type": "z"}]),
    lambda c: c["process"].__setitem__("cwd", "relative"),
    lambda c: c["linux"].__setitem__("uidMappings", [{"containerID": 0, "hostID": 0, "size": 0}]),
]


@pytest.mark.parametrize("mutate", KNOWN, ids=range(len(KNOWN)))
def test_known_bad_configs(env, mutate):
    cfg = busybox_config(["true"])
    mutate(cfg)
    fuzz_once(env, cfg)


# -- parallel load -------------------------------------------------------------

@pytest.mark.slow
def test_parallel_create_start_delete_leaks_nothing(env):
    env.write_config(busybox_config(["true"]))
    fds_before = len(os.listdir("/proc/self/fd"))

    def cycle(i):
        cid = env.new_id()
        r = env.create(cid)
        if r.returncode != 0:
            return f"create {cid}: {r.stderr}"
        r = env.cmd("start", cid)
        if r.returncode != 0:
            return f"start {cid}: {r.stderr}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            s = env.cmd("state", cid)
            if s.returncode == 0 and json.loads(s.stdout)["status"] == "stopped":
                break
            time.sleep(0.02)
        r = env.cmd("delete", cid)
        if r.returncode != 0:
            return f"delete {cid}: {r.stderr}"
        return None

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        errors = [e for e in pool.map(cycle, range(LOAD_CYCLES)) if e]
    assert not errors, errors[:5]
    assert wait_no_leftovers(env.root, env.tag, env.tmp) == []
    assert len(os.listdir("/proc/self/fd")) == fds_before


# -- crash recovery ----------------------------------------------------------------

def test_kill_9_during_create_then_delete_force_cleans_everything(env):
    env.write_config(busybox_config(["sleep", "1000"]))
    rnd = random.Random(int(os.environ.get("OCIRUNTIME_CRASH_SEED", "0")) or None)
    # How long a whole create takes here (~20 ms): the kills are spread
    # over that, so that most land inside it, not after it.
    cid = env.new_id()
    t0 = time.monotonic()
    assert env.create(cid).returncode == 0
    span = time.monotonic() - t0
    assert env.cmd("delete", "--force", cid).returncode == 0
    outcomes = {}
    for i in range(20):
        cid = env.new_id()
        p = subprocess.Popen([RUNTIME, "--root", env.root, "create", "-b", str(env.bundle), cid],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rnd.uniform(0.0, span * 1.2))   # somewhere in create (or just after it)
        mid_create = p.poll() is None
        p.send_signal(signal.SIGKILL)
        p.wait()
        outcomes[cid] = (mid_create, os.path.exists(os.path.join(env.root, cid)))
        r = env.cmd("delete", "--force", cid)
        assert r.returncode == 0, r.stderr
        assert "Traceback" not in r.stderr
        left = wait_no_leftovers(env.root, cid, env.tmp)
        assert not left, f"kill -9 #{i}: left behind {left}"
    # Some kills really hit a create in progress, with its state dir made.
    assert any(mid and made for mid, made in outcomes.values()), outcomes


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty", "wrong id", "not an object"])
def test_corrupt_state_json_clear_error_and_delete_force_works(env, damage):
    env.write_config(busybox_config(["sleep", "1000"]))
    cid = env.new_id()
    r = env.create(cid)
    assert r.returncode == 0, r.stderr
    path = Path(env.root) / cid / "state.json"
    text = path.read_text()
    path.write_text({"truncated": text[:len(text) // 2], "garbage": "\x00\xff{{{not json",
                     "empty": "", "wrong id": json.dumps({"id": "someone-else"}),
                     "not an object": "[1, 2, 3]"}[damage])
    for args in (("state", cid), ("start", cid), ("kill", cid, "KILL"), ("delete", cid)):
        r = env.cmd(*args)
        assert r.returncode != 0, args
        assert_clean_error(r, f"{args} on {damage} state")
        assert "state" in r.stderr or "does not exist" in r.stderr, r.stderr
    r = env.cmd("list")
    assert r.returncode == 0 and "Traceback" not in r.stderr
    r = env.cmd("delete", "--force", cid)
    assert r.returncode == 0, r.stderr
    assert wait_no_leftovers(env.root, cid, env.tmp) == []


# -- races -------------------------------------------------------------------------

def test_two_creates_racing_on_one_id_never_both_succeed(env):
    env.write_config(busybox_config(["sleep", "1000"]))
    for _ in range(8):
        cid = env.new_id()
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            results = list(pool.map(lambda _: env.create(cid), range(2)))
        ok = [r for r in results if r.returncode == 0]
        assert len(ok) == 1, [r.stderr for r in results]
        bad = [r for r in results if r.returncode != 0][0]
        assert_clean_error(bad, "the loser")
        assert "already exists" in bad.stderr
        st = json.loads(env.cmd("state", cid).stdout)
        assert st["status"] == "created"
        assert env.cmd("delete", "--force", cid).returncode == 0


def test_racing_deletes_and_starts(env):
    """start and delete --force at once on one container: each either
    works or fails cleanly, and nothing is left."""
    env.write_config(busybox_config(["sleep", "1000"]))
    for _ in range(6):
        cid = env.new_id()
        assert env.create(cid).returncode == 0
        with concurrent.futures.ThreadPoolExecutor(3) as pool:
            futs = [pool.submit(env.cmd, "start", cid), pool.submit(env.cmd, "delete", "--force", cid),
                    pool.submit(env.cmd, "delete", "--force", cid)]
            results = [f.result() for f in futs]
        for r in results:
            if r.returncode != 0:
                assert_clean_error(r, "race")
        env.cmd("delete", "--force", cid)
        assert wait_no_leftovers(env.root, cid, env.tmp) == []
