"""Compiled seccomp filters are kept between creates (csrc/seccomp_cache.c).

libseccomp takes ~9 ms here to compile Docker's or podman's profile, and
an engine gives all its containers the same one.  The process that clones
the init looks the compiled filter up in the cache directory (0700:
/run/ociruntime-seccomp for root; each test here its own, through
OCIRUNTIME_SECCOMP_CACHE) and saves what it had to build.  What shows a
build from outside: libseccomp's export into a memfd named "seccomp-bpf"
(strace -f).  Each test checks the filter still works."""
import json
import os
import shutil
import stat
import subprocess

import pytest

from conftest import RUNTIME, busybox_config

pytestmark = pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace")
MKDIR = ["sh", "-c", "mkdir /made-here 2>&1; true"]


def _cfg(errno_ret=1):
    cfg = busybox_config(MKDIR)
    cfg["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat", "no_such_syscall"], "action": "SCMP_ACT_ERRNO",
                      "errnoRet": errno_ret}],
    }
    return cfg


def _cache(oci):
    return str(oci.tmp / "seccomp-cache")


def _env(oci):
    return {**os.environ, "OCIRUNTIME_SECCOMP_CACHE": _cache(oci)}


def _run(oci, cfg, env=None):
    """`run` under strace -f: (its output, whether libseccomp built a filter)."""
    cid = oci.new_id()
    out = oci.tmp / f"strace-{cid}.txt"
    r = subprocess.run(["strace", "-f", "-o", str(out), "-e", "trace=memfd_create", RUNTIME,
                        "--root", oci.root, "run", "-b", str(oci.bundle(cfg)), cid],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
                       env=env or _env(oci))
    assert r.returncode == 0, r.stderr
    return r.stdout, '"seccomp-bpf"' in out.read_text()


def _entries(oci):
    d = _cache(oci)
    return [os.path.join(d, n) for n in sorted(os.listdir(d))]


def test_the_second_create_with_a_profile_takes_the_compiled_filter_from_the_cache(oci):
    out, built = _run(oci, _cfg())
    assert "Operation not permitted" in out and built
    st = os.stat(_cache(oci))
    assert stat.S_IMODE(st.st_mode) == 0o700 and st.st_uid == os.geteuid()
    [entry] = _entries(oci)
    assert stat.S_IMODE(os.stat(entry).st_mode) == 0o600
    out, built = _run(oci, _cfg())
    assert "Operation not permitted" in out and not built
    # Another profile is another entry, never the first one's filter.
    out, built = _run(oci, _cfg(errno_ret=13))
    assert "Permission denied" in out and built
    assert len(_entries(oci)) == 2
    out, built = _run(oci, _cfg(errno_ret=13))
    assert "Permission denied" in out and not built


def test_an_entry_others_may_write_or_of_another_key_is_not_used(oci):
    _run(oci, _cfg())
    [entry] = _entries(oci)
    os.chmod(entry, 0o666)
    out, built = _run(oci, _cfg())
    assert "Operation not permitted" in out and built, "an entry others may write was used"
    # Rebuilt and saved again, with our mode; then damaged: a miss again.
    [entry] = _entries(oci)
    assert stat.S_IMODE(os.stat(entry).st_mode) == 0o600
    data = bytearray(open(entry, "rb").read())
    data[20] ^= 0xFF   # inside the key: the entry of another build
    with open(entry, "wb") as f:
        f.write(bytes(data))
    out, built = _run(oci, _cfg())
    assert "Operation not permitted" in out and built, "an entry whose key differs was used"
    with open(entry, "wb") as f:
        f.write(b"short")
    out, built = _run(oci, _cfg())
    assert "Operation not permitted" in out and built


def test_a_cache_directory_others_may_write_is_not_used(oci):
    _run(oci, _cfg())
    os.chmod(_cache(oci), 0o777)
    out, built = _run(oci, _cfg())
    assert "Operation not permitted" in out and built


def test_the_cache_is_not_in_the_state_root(oci):
    """Callers expect the state root empty once its containers are deleted
    (containerd's cleanup removes it with rmdir): the default cache is
    /run/ociruntime-seccomp, outside it.  The entry this test made goes."""
    cache = "/run/ociruntime-seccomp"
    before = set(os.listdir(cache)) if os.path.isdir(cache) else set()
    env = {k: v for k, v in os.environ.items() if k != "OCIRUNTIME_SECCOMP_CACHE"}
    cfg = _cfg()
    cfg["linux"]["seccomp"]["syscalls"][0]["names"].append(f"no_such_syscall_{os.getpid()}_{id(cfg)}")
    try:
        out, built = _run(oci, cfg, env)
        assert "Operation not permitted" in out and built
        assert os.listdir(oci.root) == []
        out, built = _run(oci, cfg, env)
        assert "Operation not permitted" in out and not built
    finally:
        for name in set(os.listdir(cache)) - before if os.path.isdir(cache) else ():
            os.unlink(os.path.join(cache, name))


def test_debug_trace_says_where_the_filter_came_from(oci):
    """--debug's phase trace: "built" for the first create with a profile,
    "from the cache" for the next."""
    b = oci.bundle(_cfg())
    names = []
    for n in range(2):
        cid, log = oci.new_id(), oci.tmp / f"debug{n}.json"
        r = oci.create("-b", b, cid, global_args=["--debug", "--log", log, "--log-format", "json"], env=_env(oci))
        assert r.returncode == 0, r.stderr
        names.append([json.loads(l)["msg"] for l in log.read_text().splitlines()
                      if "phase init: seccomp filter" in l])
        oci.ok("delete", "--force", cid)
    assert any("seccomp filter built, before the clone" in m for m in names[0]), names
    assert any("seccomp filter from the cache, before the clone" in m for m in names[1]), names


def test_a_full_cache_lets_its_oldest_entry_go(oci):
    """At 256 entries, saving a new one removes the one written longest ago."""
    d = _cache(oci)
    os.makedirs(d, 0o700)
    for i in range(256):
        p = os.path.join(d, f"old{i:03d}")
        with open(p, "w") as f:
            f.write("x")
        os.utime(p, (1000 + i, 1000 + i))
    out, built = _run(oci, _cfg())
    assert "Operation not permitted" in out and built
    names = os.listdir(d)
    assert len(names) == 256 and "old000" not in names and "old001" in names
    out, built = _run(oci, _cfg())
    assert not built
