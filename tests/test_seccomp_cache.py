"""Compiled seccomp filters are kept between creates (csrc/seccomp_cache.c).

libseccomp takes ~9 ms here to compile Docker's or podman's profile, and
an engine gives all its containers the same one.  The process that clones
the init looks the compiled filter up in the state root's @seccomp-cache
(0700; '@' is never in a container id) and saves what it had to build.
What shows a build from outside: libseccomp's export into a memfd named
"seccomp-bpf" (strace -f).  Each test checks the filter still works."""
import json
import os
import shutil
import stat
import subprocess

import pytest

from conftest import RUNTIME, busybox_config

pytestmark = pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace")
CACHE = "@seccomp-cache"
MKDIR = ["sh", "-c", "mkdir /made-here 2>&1; true"]


def _cfg(errno_ret=1):
    cfg = busybox_config(MKDIR)
    cfg["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat", "no_such_syscall"], "action": "SCMP_ACT_ERRNO",
                      "errnoRet": errno_ret}],
    }
    return cfg


def _run(oci, cfg):
    """`run` under strace -f: (its output, whether libseccomp built a filter)."""
    cid = oci.new_id()
    out = oci.tmp / f"strace-{cid}.txt"
    r = subprocess.run(["strace", "-f", "-o", str(out), "-e", "trace=memfd_create", RUNTIME,
                        "--root", oci.root, "run", "-b", str(oci.bundle(cfg)), cid],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout, '"seccomp-bpf"' in out.read_text()


def _entries(oci):
    d = os.path.join(oci.root, CACHE)
    return [os.path.join(d, n) for n in sorted(os.listdir(d))]


def test_the_second_create_with_a_profile_takes_the_compiled_filter_from_the_cache(oci):
    out, built = _run(oci, _cfg())
    assert "Operation not permitted" in out and built
    st = os.stat(os.path.join(oci.root, CACHE))
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
    os.chmod(os.path.join(oci.root, CACHE), 0o777)
    try:
        out, built = _run(oci, _cfg())
        assert "Operation not permitted" in out and built
    finally:
        os.chmod(os.path.join(oci.root, CACHE), 0o700)


def test_list_and_state_do_not_take_the_cache_for_a_container(oci):
    _run(oci, _cfg())
    r = oci.ok("list", "--format", "json")
    assert json.loads(r.stdout or "null") in (None, [])
    r = oci.cmd("state", CACHE)
    assert r.returncode == 1 and "invalid container id" in r.stderr


def test_debug_trace_says_where_the_filter_came_from(oci):
    """--debug's phase trace: "built" for the first create with a profile,
    "from the cache" for the next."""
    b = oci.bundle(_cfg())
    names = []
    for n in range(2):
        cid, log = oci.new_id(), oci.tmp / f"debug{n}.json"
        r = oci.create("-b", b, cid, global_args=["--debug", "--log", log, "--log-format", "json"])
        assert r.returncode == 0, r.stderr
        names.append([json.loads(l)["msg"] for l in log.read_text().splitlines()
                      if "phase init: seccomp filter" in l])
        oci.ok("delete", "--force", cid)
    assert any("seccomp filter built, before the clone" in m for m in names[0]), names
    assert any("seccomp filter from the cache, before the clone" in m for m in names[1]), names
