"""Python face of the C core: starting ociruntime-init, and its messages.

The container init is the small C program ociruntime-init (csrc/spawn.c),
built into this package's directory.  spawn() starts it with the plan,
from a sealed memfd copy (never from the file: a container could rewrite
that through /proc/self/exe, CVE-2019-5736); it
clones the init (or the intermediate that joins namespaces first) as our
child, reports that child's pid and exits.  The init then talks to us in
fixed-size struct oci_msg messages (csrc/core.h) over two pipes: the sync
channel.  Pipes, not a socket pair: `_socket` alone would add a third of a
MiB to create's peak RSS.  Nor does any of this import cffi.  The cffi
module (ociruntime._core) is for what the runtime itself does in C: hooks,
idmapped mounts, cgroup2 device programs, the subreaper of `run`.
"""
import os
import sys
from errno import EINVAL, EIO, EPROTO
from fcntl import (F_ADD_SEALS, F_DUPFD_CLOEXEC, F_SEAL_GROW, F_SEAL_SEAL, F_SEAL_SHRINK,
                   F_SEAL_WRITE, fcntl)

from ociruntime import log
from ociruntime.errors import OciError

# enum oci_msg_type and struct oci_msg of csrc/core.h (tests/test_init_exe.py
# checks): int32 type, int32 err, int64 value, char text[496], in our byte
# order.  Plain int.to_bytes: the struct module is a tenth of a MiB of RSS.
MSG_ERROR, MSG_HELLO, MSG_GO, MSG_READY, MSG_PID, MSG_HOOKS = range(1, 7)
MSG_SIZE = 512

INIT_EXE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ociruntime-init")

# The init runs from a sealed memfd copy of INIT_EXE, never from the file
# (CVE-2019-5736: csrc/sealed_exe.c, which checks the seals).  MFD_EXEC and
# F_SEAL_EXEC are Linux 6.3's, not in Python 3.11's os and fcntl.
_MFD_EXEC = 0x10
_F_SEAL_EXEC = 0x20
_SEALS = F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE


def strerror(err):
    # Go's (and so runc's) spelling, which engines match: "no such file..."
    s = os.strerror(err)
    return s[:1].lower() + s[1:]


def channel():
    """The sync channel: (ours, theirs), each a pair (fd read from, fd
    written to) of two pipes, all close-on-exec.  A message (512 bytes,
    at most PIPE_BUF) is written whole and alone, and read so."""
    up_r, up_w = os.pipe()
    down_r, down_w = os.pipe()
    return (up_r, down_w), (down_r, up_w)


def recv(sync):
    """(type, err, value, text) of the next message on our end of the
    sync channel, None at EOF (no writer left)."""
    return _read_msg(sync[0], "read from the container init")


def send(sync, msg_type, value=0):
    try:
        os.write(sync[1], _int(msg_type, 4) + bytes(4) + _int(value, 8) + bytes(MSG_SIZE - 16))
    except OSError as e:
        raise OSError(e.errno, f"write to the container init: {strerror(e.errno)}") from None


def _read_msg(fd, what):
    try:
        data = os.read(fd, MSG_SIZE)
    except OSError as e:
        raise OSError(e.errno, f"{what}: {strerror(e.errno)}") from None
    if not data:
        return None
    if len(data) != MSG_SIZE:
        raise OSError(EPROTO, f"{what}: a message of {len(data)} bytes")
    text = data[16:].split(b"\0", 1)[0].decode(errors="replace")
    return _from(data[0:4]), _from(data[4:8]), _from(data[8:16]), text


def _int(n, size):
    return n.to_bytes(size, sys.byteorder, signed=True)


def _from(b):
    return int.from_bytes(b, sys.byteorder, signed=True)


def move_fd_above(fd, minimum):
    """fd, or a close-on-exec copy of it numbered >= minimum (fd closed)."""
    if fd >= minimum:
        return fd
    new = fcntl(fd, F_DUPFD_CLOEXEC, minimum)
    os.close(fd)
    return new


def spawn(plan_bytes, sync, fds=(), name=(), cwd="/"):
    """Run the plan: start ociruntime-init, which clones the plan's first
    child as ours.  sync (the init's end of the channel) and the fds the
    plan names reach it with their numbers; nothing else of ours does (all
    else is close-on-exec).  name: words for its command line, so that ps
    tells whose init it is.  cwd: where it works until the plan's own
    chdir (the bundle for create, as runc: never the caller's directory,
    which a `/proc/self/cwd` mount source would otherwise bind).  Returns
    the first child's pid (the init, or the intermediate)."""
    plan_r, plan_w = os.pipe()
    report_r, report_w = os.pipe()
    try:
        helper = _start([plan_r, *sync, report_w], fds, (cwd, *name))
    except BaseException:
        os.close(plan_w)
        os.close(report_r)
        raise
    finally:
        os.close(plan_r)
        os.close(report_w)
    try:
        _send_plan(plan_w, plan_bytes)
        report = _read_msg(report_r, "read the report of ociruntime-init")
    finally:
        os.close(report_r)
        os.waitpid(helper, 0)   # it exits once it has reported
    pid = _first_child(report)
    # --debug's trace: when it started, and cloned
    cached = report[3].endswith(" cached")   # the seccomp filter: from the cache
    times = report[3].removesuffix(" cached")
    log.mark_times(("spawn of the init", "init: seal, read the plan",
                    "init: seccomp filter " + ("from the cache" if cached else "built") + ", before the clone"),
                   times)
    return pid


def _start(args, fds, name):
    # dup2 of an fd onto itself clears close-on-exec, in the child only.
    # An empty environment, as runc's init has: the process gets the
    # config's env, and hooks run in the init get their own (or none).
    # The sealed copy is executed through /proc/self/fd: the kernel opens
    # it before the exec closes the fd (close-on-exec), so the init holds
    # no fd of its own file.  argv[0] stays the package's path, for ps.
    exe = _exe_copy()
    passed = dict.fromkeys((*args, *fds))
    try:
        return os.posix_spawn(f"/proc/self/fd/{exe}", [INIT_EXE, *map(str, args), *name],
                              {}, file_actions=[(os.POSIX_SPAWN_DUP2, fd, fd) for fd in passed])
    except OSError as e:
        raise OciError(f"run {INIT_EXE} (memfd copy): {strerror(e.errno)}") from None
    finally:
        os.close(exe)


def _exe_copy():
    """A close-on-exec memfd holding INIT_EXE, sealed: about 50 kB copied
    in the kernel, and a few syscalls.  A new copy each time: one kept
    across calls would have to live in a mount or a process of its own."""
    try:
        src = os.open(INIT_EXE, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        raise OciError(f"open {INIT_EXE}: {strerror(e.errno)}") from None
    fd = -1
    try:
        flags = os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING
        try:
            fd = os.memfd_create("ociruntime-init", flags | _MFD_EXEC)
        except OSError as e:   # before Linux 6.3: no MFD_EXEC
            if e.errno != EINVAL:
                raise
            fd = os.memfd_create("ociruntime-init", flags)
        size, off = os.fstat(src).st_size, 0
        while off < size:
            n = os.sendfile(fd, src, off, size - off)
            if n == 0:
                raise OSError(EIO, f"{INIT_EXE} ended at {off} of {size} bytes")
            off += n
        _seal(fd)
        return fd
    except OSError as e:
        if fd >= 0:
            os.close(fd)
        raise OciError(f"memfd copy of {INIT_EXE}: {strerror(e.errno)}") from None
    finally:
        os.close(src)


def _seal(fd):
    """Seal the copy for good, here and now: the process (and the CPU)
    that wrote its pages.  F_SEAL_WRITE waits until no page of the file is
    pinned; pages still in this CPU's LRU batch count as pinned, and the
    kernel drains its local batch first.  Sealed by another process on
    another CPU, it found them pinned and drained every CPU's batch
    (lru_add_drain_all), waiting for the other CPU.  Kernels before 6.3
    have no F_SEAL_EXEC (EINVAL): the others suffice."""
    try:
        fcntl(fd, F_ADD_SEALS, _SEALS | _F_SEAL_EXEC)
    except OSError as e:
        if e.errno != EINVAL:
            raise
        fcntl(fd, F_ADD_SEALS, _SEALS)


def _send_plan(fd, plan):
    """Its length, then the plan; it reads while we write, so any size
    goes.  A pipe, not a memfd: every other kind of call made on the way
    (each touches more of the interpreter) adds to create's peak RSS."""
    try:
        _write_all(fd, len(plan).to_bytes(8, sys.byteorder))
        _write_all(fd, plan)
    except BrokenPipeError:
        pass   # it is gone: its report, or the lack of one, says why
    finally:
        os.close(fd)


def _first_child(msg):
    """The pid in ociruntime-init's report, or why there is none."""
    if msg is not None and msg[0] == MSG_PID:
        return msg[2]
    if msg is not None and msg[0] == MSG_ERROR:
        kind, err, value, text = msg
        raise OciError(f"{text}: {strerror(err)}" if err else text)
    raise OciError("ociruntime-init exited without starting the container init")


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def set_child_subreaper():
    """`run`: an init whose parent (an intermediate) exits stays ours."""
    from ociruntime._core import lib
    r = lib.oci_set_child_subreaper()
    if r < 0:
        raise OSError(-r, f"prctl(PR_SET_CHILD_SUBREAPER): {strerror(-r)}")
