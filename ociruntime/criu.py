"""Running criu (checkpoint/restore in userspace), as runc's checkpoint and
restore do: criu does the work; we find it, build its command line from
runc's flags and the container's config, and turn its failure into one
line with criu's own reason (the first "Error" of its log).

We drive criu's command line, not its RPC (`criu swrk`): Debian ships no
Python bindings of the RPC's protobuf, and the CLI takes every option
runc's RPC request sets.
"""
import os

from ociruntime.errors import OciError

# Where criu lives on Debian and Fedora: engines often run us with a PATH
# that lacks the sbin directories.
_SBIN = ("/usr/local/sbin", "/usr/sbin", "/sbin")


def find(name="criu"):
    """The path of criu (--criu, default "criu"), or None if it is not there."""
    if "/" in name:
        return name if os.access(name, os.X_OK) else None
    dirs = os.environ.get("PATH", "").split(os.pathsep) + list(_SBIN)
    for d in dirs:
        path = os.path.join(d or ".", name)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


def require(name="criu"):
    path = find(name)
    if path is None:
        raise OciError(f"--criu {name}: criu not found: install criu (3.17 or later) "
                       "to checkpoint and restore containers")
    return path


def reason(log_path):
    """criu's own reason for a failure: the first "Error" line of its log
    (the first is the cause; the rest follow from it), without the time
    and source position; None if the log has none."""
    try:
        with open(log_path, errors="replace") as f:
            for line in f:
                if "Error (" in line:
                    text = line.split("): ", 1)[1] if "): " in line else line
                    return text.strip()
    except OSError:
        return None
    return None


def run(argv, log_path, what, before_exec=None, fds=()):
    """Run criu (argv[0]) with our stdin, stdout and stderr, and the extra
    fds kept at their numbers; raise OciError with criu's reason if it
    fails.  before_exec(pid) runs in the parent while the child waits,
    before it execs criu: restore places it in the container's cgroups
    there, so that what criu restores is born in them."""
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:   # the child: wait for the parent's go, then become criu
        try:
            os.close(go_w)
            for fd in fds:
                os.set_inheritable(fd, True)
            # restore in the foreground blocks the signals it forwards; criu
            # must see its children's SIGCHLD
            import _signal
            _signal.pthread_sigmask(_signal.SIG_SETMASK, ())
            if os.read(go_r, 1) != b"g":
                os._exit(127)
            os.close(go_r)
            os.execv(argv[0], argv)
        except BaseException:
            pass
        os._exit(127)
    os.close(go_r)
    try:
        if before_exec is not None:
            before_exec(pid)
        os.write(go_w, b"g")
    except BaseException:
        os.close(go_w)
        _reap(pid)
        raise
    os.close(go_w)
    status = _reap(pid)
    if status != 0:
        why = reason(log_path) or f"criu exited with status {status}"
        raise OciError(f"{what}: {why} (criu's log: {log_path})")


def _reap(pid):
    while True:
        try:
            _, status = os.waitpid(pid, 0)
        except InterruptedError:
            continue
        return os.waitstatus_to_exitcode(status)
