"""CVE-2019-5736 for real: the image overwrites the runtime's own binary.

The image's /bin/victim is `#!/proc/self/exe`.  When a binary of ours (the
init, exec's process, the init's hook runner) execs it, the kernel runs
/proc/self/exe -- whatever that binary was executed from -- with the
image's /lib64/ld-linux-x86-64.so.2 as its interpreter, and that exec makes
the process dumpable again.  The image's ld.so (exe_overwrite_ldso.c, a
static program of ours) keeps an O_PATH fd on /proc/self/exe, stops
executing the file, and reopens it for writing as soon as nothing executes
it any more.  Had the binary been the host's file in site-packages, the next
create or exec would run the image's bytes as host root.

Each case attacks a private copy of the installed runtime (a successful
attack must not break the shared one) and checks from the host that no file
of that copy changed, and from inside what /proc/self/exe was: a sealed
memfd (`/memfd:ociruntime-init`), whose writes fail.
"""
import hashlib
import json
import os
import platform
import shutil
import subprocess
import time

import pytest

from conftest import REPO, busybox_config
from ocihelpers import front_end_alone

pytestmark = pytest.mark.skipif(platform.machine() != "x86_64",
                                reason="the attacker's ld.so is x86-64 code")

ATTACKER_SRC = REPO / "tests" / "exe_overwrite_ldso.c"
PYTHON = REPO / ".venv" / "bin" / "python"
MARKER = "PWNED-BY-CONTAINER"


@pytest.fixture(scope="module")
def attacker(tmp_path_factory):
    out = tmp_path_factory.mktemp("attacker") / "ld.so"
    r = subprocess.run(["gcc", "-static", "-nostdlib", "-fno-pie", "-no-pie", "-fno-stack-protector",
                        "-fno-builtin", "-O1", "-o", str(out), str(ATTACKER_SRC)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot build the attacker's static ld.so: {r.stderr.strip()[:200]}")
    return out


class PrivateRuntime:
    """A copy of the installed package (its ociruntime-init, _core and
    Python), run as `python -m ociruntime` with the copy first on the path."""

    def __init__(self, oci, tmp):
        self.oci = oci
        self.pkg = tmp / "private-runtime"
        shutil.copytree(REPO / "ociruntime", self.pkg / "ociruntime", symlinks=True,
                        ignore=shutil.ignore_patterns("__pycache__"))
        # -S and a cwd of its own: neither the editable install's .pth nor
        # the current directory may bring in the worktree's package.
        site = subprocess.run([PYTHON, "-c", "import cffi, os; print(os.path.dirname(cffi.__path__[0]))"],
                              capture_output=True, text=True, check=True).stdout.strip()
        self.env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": f"{self.pkg}:{site}"}
        r = subprocess.run([PYTHON, "-S", "-c", "import ociruntime.core as c; print(c.INIT_EXE)"],
                           env=self.env, cwd=self.pkg, capture_output=True, text=True, timeout=60)
        assert r.stdout.strip() == str(self.pkg / "ociruntime" / "ociruntime-init"), r
        self.before = self.hashes()

    def hashes(self):
        out = {}
        for top, _, files in os.walk(self.pkg):
            for name in files:
                path = os.path.join(top, name)
                if "__pycache__" not in path:
                    with open(path, "rb") as f:
                        out[path] = hashlib.sha256(f.read()).hexdigest()
        return out

    def cmd(self, *args, **kw):
        kw.setdefault("capture_output", True)
        kw.setdefault("text", True)
        kw.setdefault("timeout", 60)
        return subprocess.run([PYTHON, "-S", "-m", "ociruntime", "--root", self.oci.root,
                               *map(str, args)], env=self.env, cwd=self.pkg, **kw)

    def ok(self, *args, **kw):
        r = self.cmd(*args, **kw)
        assert r.returncode == 0, f"ociruntime {' '.join(map(str, args))}: {r.stderr}"
        return r

    def create(self, *args):
        """stdio on a file: the init keeps it."""
        with open(self.oci.tmp / "create.log", "a+") as log:
            r = self.cmd("create", *args, capture_output=False, stdin=subprocess.DEVNULL,
                         stdout=log, stderr=log)
            log.seek(0)
            assert r.returncode == 0, log.read()


def _bundle(oci, attacker, args, report_dir):
    cfg = busybox_config(args)
    cfg["mounts"].append({"destination": "/report", "type": "bind", "source": str(report_dir),
                          "options": ["rbind", "rw"]})
    b = oci.bundle(cfg)
    rootfs = b / "rootfs"
    (rootfs / "lib64").mkdir(exist_ok=True)
    shutil.copy(attacker, rootfs / "lib64" / "ld-linux-x86-64.so.2")
    (rootfs / "bin" / "victim").unlink(missing_ok=True)
    (rootfs / "bin" / "victim").write_text("#!/proc/self/exe\n")
    os.chmod(rootfs / "bin" / "victim", 0o755)
    (rootfs / "report").mkdir(exist_ok=True)
    return b, cfg


def _set_config(b, cfg):
    (b / "config.json").write_text(json.dumps(cfg, indent=1))


def _wait_report(path):
    """The attacker's lines once it is done (it gives up after 10 s)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if path.exists():
            lines = path.read_text().splitlines()
            if any(l.startswith("done") for l in lines):
                return lines
        time.sleep(0.05)
    raise AssertionError(f"the attacker never finished: {path.read_text() if path.exists() else 'no report'}")


VICTIM = ["/bin/victim", "/report/out", "wait"]


@pytest.mark.parametrize("how", ["run", "create", "exec", "exec-p", "exec-c", "exec-p-c",
                                 "startContainer-hook"])
def test_container_cannot_overwrite_the_runtime_binary(oci, attacker, tmp_path, how):
    priv = PrivateRuntime(oci, tmp_path)
    report_dir = tmp_path / "report"
    report_dir.mkdir()
    report = report_dir / "out"
    cid = oci.new_id()
    sleeper = ["sleep", "1000"]
    b, cfg = _bundle(oci, attacker, VICTIM if how in ("run", "create") else sleeper, report_dir)
    if how == "startContainer-hook":
        # The init's hook runner execs it in the container, right before
        # the process: the init still executes our binary meanwhile.
        cfg["hooks"] = {"startContainer": [{"path": "/bin/victim",
                                            "args": ["victim", "/report/out", "detach"]}]}
        _set_config(b, cfg)
    if how == "run":
        r = priv.cmd("run", "-b", b, cid)
        assert r.returncode == 0, r.stderr
    else:
        priv.create("-b", b, cid)
        pid = json.loads(priv.ok("state", cid).stdout)["pid"]
        # The waiting init, visible in the container as pid 1 (checked last).
        waiting_exe = os.readlink(f"/proc/{pid}/exe")
        priv.ok("start", cid)
        proc = {"args": VICTIM, "cwd": "/", "user": {"uid": 0, "gid": 0},
                "env": ["PATH=/bin"], "terminal": False}
        (tmp_path / "process.json").write_text(json.dumps(proc))
        if how == "exec":
            r = priv.cmd("exec", cid, *VICTIM)
            assert r.returncode == 0, r.stderr
        elif how == "exec-p":
            r = priv.cmd("exec", "-p", tmp_path / "process.json", cid)
            assert r.returncode == 0, r.stderr
        elif how in ("exec-c", "exec-p-c"):
            # The C front end (csrc/exec_fast.c) runs the init create
            # used: the private copy's, from the exec template.
            args = [cid, *VICTIM] if how == "exec-c" else ["-p", tmp_path / "process.json", cid]
            # (front_end_alone: a python3 that only fails, so it ran in C)
            r = subprocess.run([front_end_alone(tmp_path / "front"), "--root", oci.root, "exec", *args],
                               capture_output=True, text=True, timeout=60)
            assert r.returncode == 0, r.stderr
    lines = _wait_report(report)
    if how != "run":
        priv.ok("delete", "--force", cid)
    changed = [p for p, h in priv.hashes().items() if priv.before.get(p) != h]
    assert not changed, f"the container rewrote {changed}: {lines}"
    # What /proc/self/exe was inside: the sealed copy, never a host file.
    # Opening it for writing may succeed once no one executes it; writing
    # and truncating fail (EPERM: F_SEAL_WRITE, F_SEAL_SHRINK).
    exe = next(l for l in lines if l.startswith("exe "))
    assert exe.startswith("exe /memfd:ociruntime-init"), lines
    result = dict(l.split(" ", 1) for l in lines if l.startswith(("write ", "truncate ")))
    assert result in ({}, {"write": "-1", "truncate": "-1"}), lines
    if how != "run":
        assert waiting_exe.startswith("/memfd:ociruntime-init"), waiting_exe


# -- the sealed copy itself ------------------------------------------------

F_SEAL_EXEC = 0x20
SEALS = 0xf   # F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE


def _seals(pid):
    """The seals of /proc/PID/exe, and its bytes."""
    import fcntl
    fd = os.open(f"/proc/{pid}/exe", os.O_RDONLY | os.O_CLOEXEC)
    try:
        with open(fd, "rb", closefd=False) as f:
            data = f.read()
        return fcntl.fcntl(fd, fcntl.F_GET_SEALS), os.fstat(fd), data
    finally:
        os.close(fd)


def _kernel_has_seal_exec():
    import fcntl
    fd = os.memfd_create("probe", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    try:
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, F_SEAL_EXEC)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def test_init_runs_from_a_sealed_copy(oci):
    """The waiting init's /proc/PID/exe: a memfd with ociruntime-init's
    bytes, sealed for good (and against chmod where the kernel can)."""
    import fcntl
    from ociruntime import core
    from ocihelpers import Running
    with Running(oci, busybox_config(["sleep", "1000"]), start=False) as c:
        seals, st, data = _seals(c.pid)
        want = SEALS | (F_SEAL_EXEC if _kernel_has_seal_exec() else 0)
        assert seals & want == want and seals & fcntl.F_SEAL_SEAL, hex(seals)
        with open(core.INIT_EXE, "rb") as f:
            assert data == f.read()
        assert not os.path.samefile(f"/proc/{c.pid}/exe", core.INIT_EXE)


def _spawn_from(exe, sync_theirs):
    """core.spawn, but exec'ing exe (a path) as a caller other than our
    runtime might: a plan that clones a child that says hello and waits."""
    from ociruntime import core
    from ociruntime.plan import Plan
    plan = Plan().add("CLONE", 0).add("SYNC_HELLO").encode()
    plan_r, plan_w = os.pipe()
    report_r, report_w = os.pipe()
    args = [plan_r, *sync_theirs, report_w]
    helper = os.posix_spawn(exe, [exe, *map(str, args)], {},
                            file_actions=[(os.POSIX_SPAWN_DUP2, fd, fd) for fd in args])
    os.close(plan_r)
    os.close(report_w)
    try:
        core._send_plan(plan_w, plan)
        return core._first_child(core._read_msg(report_r, "report"))
    finally:
        os.close(report_r)
        os.waitpid(helper, 0)


@pytest.mark.parametrize("source", ["host-file", "unsealed-memfd", "half-sealed-memfd"])
def test_init_started_otherwise_makes_its_own_sealed_copy(source):
    """Started from the package's file, or from a memfd that is not sealed
    for good (a fake copy), ociruntime-init execs a sealed copy of itself
    before it reads its plan: its child runs from that."""
    import fcntl
    from ociruntime import core
    mfd = None
    if source == "host-file":
        exe = core.INIT_EXE
    else:
        mfd = os.memfd_create("ociruntime-init", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
        with open(core.INIT_EXE, "rb") as f:
            os.write(mfd, f.read())
        if source == "half-sealed-memfd":   # writable still: no F_SEAL_WRITE
            fcntl.fcntl(mfd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SEAL)
        exe = f"/proc/self/fd/{mfd}"
    sync, theirs = core.channel()
    pid = None
    try:
        pid = _spawn_from(exe, theirs)
        for fd in theirs:
            os.close(fd)
        theirs = ()
        assert core.recv(sync)[0] == core.MSG_HELLO
        assert os.readlink(f"/proc/{pid}/exe").startswith("/memfd:ociruntime-init")
        seals, st, _ = _seals(pid)
        assert seals & SEALS == SEALS, hex(seals)
        if mfd is not None:
            assert st.st_ino != os.fstat(mfd).st_ino
    finally:
        if pid is not None:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        for fd in (*sync, *theirs):
            os.close(fd)
        if mfd is not None:
            os.close(mfd)


def test_runtime_copy_needs_no_second_exec(oci, tmp_path):
    """The runtime's copy, sealed by the runtime, is the one the init runs:
    run and exec each execute ociruntime-init once (no execveat of a copy
    of its own, which would cost an exec)."""
    for trace in _trace_run_and_exec(oci, tmp_path, "execve,execveat"):
        calls = [l for l in trace.read_text().splitlines() if "exec" in l and "= 0" in l]
        assert len([l for l in calls if "/proc/self/fd/" in l]) == 1, calls
        assert not any("execveat(" in l for l in calls), calls


def _trace_run_and_exec(oci, tmp_path, calls):
    """strace -f files of a `run` and of an `exec` (the C front end's)
    into a running container, tracing those calls."""
    from conftest import RUNTIME
    traced = ["strace", "-f", "-e", f"trace={calls}", "-o"]
    run_trace, exec_trace = tmp_path / "run.strace", tmp_path / "exec.strace"
    r = subprocess.run([*traced, str(run_trace), RUNTIME, "--root", oci.root, "run", "-b",
                        oci.bundle(busybox_config(["true"])), oci.new_id()],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    b = oci.bundle(busybox_config(["sleep", "1000"]))
    cid = oci.new_id()
    assert oci.create("-b", b, cid).returncode == 0
    try:
        oci.ok("start", cid)
        r = subprocess.run([*traced, str(exec_trace), RUNTIME, "--root", oci.root, "exec", cid, "true"],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
    finally:
        oci.ok("delete", "--force", cid)
    return run_trace, exec_trace


def _sealing(trace):
    """From an `strace -f -e trace=fcntl,execve,execveat` file: (pid, fd)
    of each successful F_ADD_SEALS that adds F_SEAL_WRITE, and (pid, N) of
    each successful exec of /proc/self/fd/N, in the order they were made."""
    import re
    seals, execs = [], []
    for line in trace.read_text().splitlines():
        pid = int(line.split()[0])
        m = re.search(r"fcntl\((\d+), F_ADD_SEALS, ([^)]+)\) = 0", line)
        if m and "F_SEAL_WRITE" in m.group(2):
            seals.append((pid, int(m.group(1))))
        m = re.search(r'execve(?:at)?\("/proc/self/fd/(\d+)".* = 0', line)
        if m:
            execs.append((pid, int(m.group(1)), len(seals)))
    return seals, execs


@pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace")
def test_copy_is_sealed_by_its_writer_before_the_init_runs(oci, tmp_path):
    """The runtime seals the memfd copy of ociruntime-init itself, right
    after writing it and before starting the init from it: no code of
    the init ever runs from a writable copy, and the seal is added on the
    CPU that wrote the pages (the kernel's wait for page pins then finds
    them in its local LRU batch instead of draining every CPU's).  Both
    writers: Python (`run`) and the C front end (`exec`)."""
    for trace in _trace_run_and_exec(oci, tmp_path, "fcntl,execve,execveat"):
        runtime = int(trace.read_text().split(None, 1)[0])   # the first pid traced
        seals, execs = _sealing(trace)
        assert len(execs) == 1, execs
        exec_pid, exe_fd, seals_before = execs[0]
        # one seal, by the runtime, of the fd the init is then started from
        assert seals == [(runtime, exe_fd)] and seals_before == 1, (trace.name, seals, execs)
        assert exec_pid != runtime


def test_no_init_binary_is_a_one_line_error(oci, tmp_path):
    """Without the file to copy: one line naming it, exit 1, nothing left."""
    priv = PrivateRuntime(oci, tmp_path)
    (priv.pkg / "ociruntime" / "ociruntime-init").unlink()
    b = oci.bundle(busybox_config(["true"]))
    cid = oci.new_id()
    r = priv.cmd("run", "-b", b, cid)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 1 and len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert "ociruntime-init: no such file or directory" in lines[0], lines
    assert not os.path.exists(os.path.join(oci.root, cid))
