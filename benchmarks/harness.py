"""What the scenarios measure with: one runtime call timed from spawn to
reaping, the machine's facts, the bundle, and the host set-up (a child
subreaper; cgroup2 hidden for crun on a hybrid host).

Times are wall clock around posix_spawn and wait4 of the runtime's CLI, so
they include its start-up, as a caller (an engine, a shim) pays it; CPU
time is wait4's user+sys of the call and what it waited for.  Peak RSS is
GNU time's: a child of this (big) Python process would inherit its memory
high-water mark across exec, and the small `time` process does not pass on
a large one.
"""
import ctypes
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time

PR_SET_CHILD_SUBREAPER = 36
CLONE_NEWNS = 0x00020000
MS_REC, MS_PRIVATE, MNT_DETACH = 0x4000, 1 << 18, 2
CGROUP2_HYBRID = "/sys/fs/cgroup/unified"
GNU_TIME = "/usr/bin/time"


def log_line(msg):
    """Progress and failures: stderr, so that stdout is the table."""
    print(msg, file=sys.stderr, flush=True)


class CallFailed(Exception):
    """A runtime call that exited non-zero or timed out."""


class Call:
    """One finished call: wall ms, CPU ms, exit status, captured output."""

    def __init__(self, argv, wall_ms, cpu_ms, status, out, err):
        self.argv, self.wall_ms, self.cpu_ms = argv, wall_ms, cpu_ms
        self.status, self.out, self.err = status, out, err

    def check(self, what):
        if self.status != 0:
            raise CallFailed(f"{what}: `{' '.join(self.argv)}` exited {self.status}: "
                             f"{self.err.strip()[-300:]}")
        return self


def call(argv, workdir, timeout=60):
    """Run argv with stdin from /dev/null and stdout/stderr on files (a
    container's init inherits them: a pipe would not see EOF until the
    container exits); wait for it with wait4, killing it past timeout."""
    out_path = os.path.join(workdir, f"out.{os.getpid()}.{id(argv)}")
    err_path = out_path + ".err"
    with open(os.devnull, "rb") as null, open(out_path, "w+b") as out, open(err_path, "w+b") as err:
        acts = [(os.POSIX_SPAWN_DUP2, null.fileno(), 0), (os.POSIX_SPAWN_DUP2, out.fileno(), 1),
                (os.POSIX_SPAWN_DUP2, err.fileno(), 2)]
        t0 = time.perf_counter_ns()
        try:
            pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=acts, setpgroup=0)
        except OSError as e:
            raise CallFailed(f"cannot run {argv[0]}: {e.strerror}") from None
        status, ru = _wait(pid, timeout)
        wall = (time.perf_counter_ns() - t0) / 1e6
        out.seek(0)
        err.seek(0)
        text = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    os.unlink(out_path)
    os.unlink(err_path)
    return Call(argv, wall, (ru.ru_utime + ru.ru_stime) * 1e3, status, *text)


def _wait(pid, timeout):
    deadline = time.monotonic() + timeout
    while True:
        got, status, ru = os.wait4(pid, os.WNOHANG)
        if got == pid:
            return os.waitstatus_to_exitcode(status), ru
        if time.monotonic() > deadline:
            try:
                os.killpg(pid, 9)
            except ProcessLookupError:
                pass
            _, status, ru = os.wait4(pid, 0)
            return -9, ru
        # A short sleep costs the measurement its length at most; the
        # calls take milliseconds.
        time.sleep(0.0002)


def peak_rss_kib(argv, workdir, timeout=60):
    """GNU time's maximum resident set size of argv, in KiB."""
    fmt = os.path.join(workdir, "rss")
    c = call([GNU_TIME, "-f", "%M", "-o", fmt, *argv], workdir, timeout).check("create under time")
    with open(fmt) as f:
        rss = int(f.read().split()[-1])
    os.unlink(fmt)
    return c, rss


def idle_seconds():
    """The machine's idle (and iowait) CPU time so far, summed over CPUs."""
    with open("/proc/stat") as f:
        fields = f.readline().split()
    return (int(fields[4]) + int(fields[5])) / os.sysconf("SC_CLK_TCK")


def reap():
    """Reap the containers' processes re-parented to us (the subreaper):
    waitpid(-1) only between measurements, never while a call runs."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def become_subreaper():
    """Orphaned container processes come to us, as to a shim."""
    if _libc().prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


def hybrid_cgroup2():
    """Whether this is a v1 host with a cgroup2 mount beside (crun 1.8
    refuses such a host: it sees cgroup2 controllers it cannot use)."""
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == CGROUP2_HYBRID for line in f)


def hide_cgroup2():
    """A private mount namespace for this process and its children, with
    the hybrid cgroup2 mount detached: what `crun` needs here.  The host
    keeps its mounts."""
    libc = _libc()
    for what, rc in (("unshare(CLONE_NEWNS)", lambda: libc.unshare(CLONE_NEWNS)),
                     ("make / rprivate", lambda: libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None)),
                     (f"umount {CGROUP2_HYBRID}", lambda: libc.umount2(CGROUP2_HYBRID.encode(), MNT_DETACH))):
        if rc() != 0:
            raise SystemExit(f"--hide-cgroup2: {what}: {os.strerror(ctypes.get_errno())}")


def make_bundle(path, repo, runc=None):
    """A busybox bundle running /bin/true: the rootfs from
    bundles/make-rootfs.sh (Debian's busybox-static), the config from
    `runc spec` when runc is there, else ociruntime's own default spec
    (without a terminal, so that no call needs one)."""
    rootfs = os.path.join(path, "rootfs")
    if subprocess.run([os.path.join(repo, "bundles", "make-rootfs.sh"), rootfs],
                      stdout=subprocess.DEVNULL).returncode != 0:
        raise SystemExit("bundle: bundles/make-rootfs.sh failed (above)")
    if runc:
        if subprocess.run([runc, "spec", "--bundle", path]).returncode != 0:
            raise SystemExit(f"bundle: `{runc} spec` failed (above)")
        import json
        with open(os.path.join(path, "config.json")) as f:
            cfg = json.load(f)
        source = f"`{runc} spec`"
    else:
        from ociruntime.spec import default_spec
        cfg, source = default_spec(), "`ociruntime spec`"
    cfg["process"]["terminal"] = False
    cfg["process"]["args"] = ["/bin/true"]
    return cfg, source


def _os_name():
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return platform.system()


def _field(path, key):
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(key):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "?"


def machine():
    return {"os": _os_name(), "kernel": platform.release(), "cpus": os.cpu_count(),
            "cpu_model": _field("/proc/cpuinfo", "model name"),
            "mem_total": _field("/proc/meminfo", "MemTotal"),
            "python": platform.python_version(), "loadavg": list(os.getloadavg())}


def version_of(path):
    try:
        r = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10)
        return r.stdout.strip().splitlines()[0] if r.stdout.strip() else "?"
    except (OSError, subprocess.SubprocessError):
        return "?"


def stats(xs):
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return None
    k = (len(xs) - 1) * 0.9
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return {"n": len(xs), "median": statistics.median(xs), "p90": xs[lo] + (xs[hi] - xs[lo]) * (k - lo),
            "min": xs[0], "max": xs[-1]}


def which(name, *fallbacks):
    for p in (shutil.which(name), *fallbacks):
        if p and os.access(p, os.X_OK):
            return p
    return None
