"""The seccomp filter is loaded last, and after it the init makes only the
calls runc makes after its own filter (issue 12.3): capset, setgroups,
setresuid/setresgid, prctl, chdir, the classic fd calls and execve.

A classic allow-list (defaultAction ERRNO) that has what busybox needs
plus those calls must run, with noNewPrivileges true and false, with and
without CAP_SYS_ADMIN, through create+start, run and exec; so must the
default profiles of Docker and podman (containerd's: test_containerd.py).
The list has no getcwd, openat2, close_range, stat or umask.
"""
import json
import os
import platform
import subprocess
from pathlib import Path

import pytest

from conftest import busybox_config
from ocihelpers import proc_status, wait_status

DATA = Path(__file__).parent / "data" / "seccomp"

# strace of the rootfs's static busybox running `echo` and `sleep`.
BUSYBOX = {"arch_prctl", "brk", "execve", "exit_group", "exit", "getrandom", "getuid", "mprotect",
           "prctl", "prlimit64", "readlink", "rseq", "set_robust_list", "set_tid_address", "write",
           "clock_nanosleep", "nanosleep"}
# What runc itself calls after its filter (identity, chdir, fds, exec).
RUNC_AFTER = {"capget", "capset", "setgroups", "setresuid", "setresgid", "prctl", "chdir",
              "fchdir", "close", "read", "write", "fcntl", "dup2", "dup3", "execve"}
MINIMAL = sorted(BUSYBOX | RUNC_AFTER)
ARCHES = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
BASE_CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
# Docker's (and runc spec's) default capabilities.
DOCKER_CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
               "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
               "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"]

pytestmark = pytest.mark.skipif(platform.machine() != "x86_64", reason="the profiles here are for x86_64")


def minimal_profile():
    return {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1, "architectures": ARCHES,
            "syscalls": [{"names": MINIMAL, "action": "SCMP_ACT_ALLOW"}]}


def caps_of(names):
    return {k: list(names) for k in ("bounding", "effective", "permitted")}


def config(args, sc, nnp, caps, uid=1000, cwd="/tmp"):
    cfg = busybox_config(args)
    cfg["linux"]["seccomp"] = sc
    p = cfg["process"]
    p.update(noNewPrivileges=nnp, capabilities=caps_of(caps), cwd=cwd,
             user={"uid": uid, "gid": uid, "additionalGids": [uid + 1]})
    return cfg


def run_through(oci, mode, cfg, words):
    """Runs `echo WORDS` (create+start, run, or exec in a sleeping
    container) under cfg; (exit code, stdout, stderr)."""
    if mode == "run":
        cfg["process"]["args"] = ["echo", *words]
        return oci.run_output(cfg=cfg)
    cid = oci.new_id()
    if mode == "exec":
        cfg["process"]["args"] = ["sleep", "1000"]
        b = oci.bundle(cfg)
        r = oci.create("-b", b, cid)
        assert r.returncode == 0, r.stderr
        oci.ok("start", cid)
        pid = oci.state(cid)["pid"]
        r = oci.cmd("exec", cid, "echo", *words)
        # the container's own process runs under the filter too
        assert proc_status(pid)["Seccomp"] == "2"
        oci.ok("delete", "--force", cid)
        return r.returncode, r.stdout, r.stderr
    cfg["process"]["args"] = ["echo", *words]
    b = oci.bundle(cfg)
    out, err = oci.tmp / f"{cid}.out", oci.tmp / f"{cid}.err"
    with open(out, "w") as o, open(err, "w") as e:
        r = oci.cmd("create", "-b", b, cid, capture_output=False, stdin=subprocess.DEVNULL,
                    stdout=o, stderr=e)
    if r.returncode != 0:
        return r.returncode, out.read_text(), err.read_text()
    r = oci.cmd("start", cid)
    assert r.returncode == 0, r.stderr
    st = wait_status(oci, cid, "stopped")
    assert st["status"] == "stopped", st
    oci.ok("delete", cid)
    return 0, out.read_text(), err.read_text()


@pytest.mark.parametrize("mode", ["create+start", "run", "exec"])
@pytest.mark.parametrize("sys_admin", [False, True], ids=["no-sys-admin", "sys-admin"])
@pytest.mark.parametrize("nnp", [False, True], ids=["nnp-false", "nnp-true"])
def test_minimal_allow_list_runs(oci, nnp, sys_admin, mode):
    """No getcwd, openat2, close_range, stat or umask in the list: the
    init does those before the filter."""
    caps = BASE_CAPS + (["CAP_SYS_ADMIN"] if sys_admin else [])
    code, out, err = run_through(oci, mode, config(None, minimal_profile(), nnp, caps), ["hello", "filter"])
    assert "Traceback" not in err
    assert (code, out) == (0, "hello filter\n"), err


def test_minimal_allow_list_as_root(oci):
    code, out, err = run_through(oci, "run", config(None, minimal_profile(), False, BASE_CAPS, uid=0),
                                 ["as", "root"])
    assert (code, out) == (0, "as root\n"), err


def test_cwd_is_entered_when_getcwd_is_denied(oci):
    """getcwd fails inside (EPERM), yet the cwd was entered and checked
    (before the filter): a relative path lands in it."""
    sc = {"defaultAction": "SCMP_ACT_ALLOW",
          "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_ERRNO"}]}
    cfg = config(["sh", "-c", "echo x > rel && cat /tmp/rel; readlink /proc/self/cwd; grep Seccomp: /proc/self/status"],
                 sc, False, BASE_CAPS, uid=0)
    cfg["root"]["readonly"] = False
    code, out, err = oci.run_output(cfg=cfg)
    assert code == 0, err
    assert out.splitlines() == ["x", "/tmp", "Seccomp:\t2"], (out, err)


def test_cwd_through_the_inits_fds_is_still_refused_under_a_filter(oci):
    """The CVE-2024-21626 check (test_cve.py's) happens before the filter,
    whatever the filter lets through."""
    leak = os.open("/", os.O_RDONLY | os.O_DIRECTORY)
    results = []
    try:
        for n in (leak, 3, 4, 5, 6, 7, 8):
            cfg = config(["echo", "escaped"], minimal_profile(), False, BASE_CAPS, cwd=f"/proc/self/fd/{n}")
            b = oci.bundle(cfg)
            results.append(oci.cmd("run", "-b", b, oci.new_id(), pass_fds=(leak,)))
    finally:
        os.close(leak)
    for r in results:
        assert r.returncode != 0 and "escaped" not in r.stdout
        assert "Traceback" not in r.stderr
        assert "cwd" in r.stderr or "/proc/self/fd/" in r.stderr, r.stderr


# -- the engines' default profiles --------------------------------------------

def resolve_template(profile, caps, arch="SCMP_ARCH_X86_64", goarch="amd64"):
    """linux.seccomp from a Docker/podman profile template, as the engine
    makes it: archMap for this machine, rules kept or dropped by their
    includes/excludes (capabilities, architectures, minimum kernel)."""
    kernel = tuple(int(x) for x in os.uname().release.split("-")[0].split(".")[:2])
    out = {k: v for k, v in profile.items() if k not in ("archMap", "syscalls", "defaultErrnoRet")}
    if "defaultErrnoRet" in profile:
        out["defaultErrnoRet"] = profile["defaultErrnoRet"]
    for m in profile.get("archMap") or ():
        if m["architecture"] == arch:
            out["architectures"] = [arch, *(m.get("subArchitectures") or ())]

    def matches(cond):
        if not cond:
            return None
        hits = []
        if cond.get("caps"):
            hits.append(all(c in caps for c in cond["caps"]))
        if cond.get("arches"):
            hits.append(goarch in cond["arches"])
        if cond.get("minKernel"):
            hits.append(kernel >= tuple(int(x) for x in cond["minKernel"].split(".")[:2]))
        return hits

    rules = []
    for rule in profile["syscalls"]:
        inc = matches(rule.get("includes"))
        if inc is not None and not all(inc):
            continue
        exc = rule.get("excludes") or {}
        if any(c in caps for c in exc.get("caps") or ()) or goarch in (exc.get("arches") or ()):
            continue
        rules.append({k: v for k, v in rule.items()
                      if k not in ("includes", "excludes", "comment") and v is not None})
    out["syscalls"] = rules
    return out


def engine_profiles():
    yield "docker", DATA / "docker-default.json"
    yield "podman", Path("/usr/share/containers/seccomp.json")


@pytest.mark.parametrize("mode", ["create+start", "exec"])
@pytest.mark.parametrize("uid", [0, 1000], ids=["root", "user"])
@pytest.mark.parametrize("engine,path", list(engine_profiles()), ids=["docker", "podman"])
def test_engine_default_profile(oci, engine, path, uid, mode):
    """The engine's default capabilities, noNewPrivileges false (their
    default): the early load, under the profile as the engine resolves it."""
    if not path.exists():
        pytest.skip(f"no {path} here")
    sc = resolve_template(json.loads(path.read_text()), DOCKER_CAPS)
    code, out, err = run_through(oci, mode, config(None, sc, False, DOCKER_CAPS, uid=uid), [engine, "ok"])
    assert (code, out) == (0, f"{engine} ok\n"), err


def test_docker_profile_still_filters(oci):
    """Resolved as Docker does, the profile refuses unshare without CAP_SYS_ADMIN."""
    sc = resolve_template(json.loads((DATA / "docker-default.json").read_text()), DOCKER_CAPS)
    cfg = config(["sh", "-c", "unshare -U true; echo rc=$?"], sc, False, DOCKER_CAPS, uid=0)
    code, out, err = oci.run_output(cfg=cfg)
    assert code == 0, err
    assert "rc=1" in out and "Operation not permitted" in err


# -- close_range refused around the runtime -------------------------------------

UNDER_FILTER = r"""
import ctypes, os, sys
lib = ctypes.CDLL("libseccomp.so.2")
lib.seccomp_init.restype = ctypes.c_void_p
lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
ctx = lib.seccomp_init(ctypes.c_uint32(0x7FFF0000))               # SCMP_ACT_ALLOW
nr = lib.seccomp_syscall_resolve_name(b"close_range")
assert lib.seccomp_rule_add(ctypes.c_void_p(ctx), ctypes.c_uint32(0x00050000 | 38), nr, 0) == 0  # ENOSYS
assert lib.seccomp_load(ctypes.c_void_p(ctx)) == 0
os.execv(sys.argv[1], sys.argv[1:])
"""


def test_close_range_refused_falls_back_to_fcntl(oci):
    """A kernel before 5.11, or a filter around the runtime (it runs in a
    container itself) that refuses close_range: the init marks its fds
    close-on-exec one by one, and the process still gets only 0, 1, 2."""
    import sys
    from conftest import RUNTIME
    cfg = config(["ls", "/proc/self/fd"], None, True, BASE_CAPS, uid=0)
    del cfg["linux"]["seccomp"]
    b = oci.bundle(cfg)
    r = subprocess.run([sys.executable, "-c", UNDER_FILTER, RUNTIME, "--root", oci.root, "run", "-b", str(b),
                        oci.new_id()], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert sorted(r.stdout.split()) == ["0", "1", "2", "3"], r.stdout   # 3: ls's own directory fd
