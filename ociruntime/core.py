"""Python face of the C core (ociruntime._core, built from csrc/)."""
import os

from ociruntime._core import ffi, lib

MSG_ERROR, MSG_HELLO, MSG_GO = lib.MSG_ERROR, lib.MSG_HELLO, lib.MSG_GO
MSG_READY, MSG_PID = lib.MSG_READY, lib.MSG_PID
MSG_HOOKS = lib.MSG_HOOKS


def strerror(err):
    # Go's (and so runc's) spelling, which engines match: "no such file..."
    s = os.strerror(err)
    return s[:1].lower() + s[1:]


def _check(r, what):
    if r < 0:
        raise OSError(-r, f"{what}: {strerror(-r)}")
    return r


def socketpair():
    fds = ffi.new("int[2]")
    _check(lib.oci_socketpair(fds), "socketpair")
    return fds[0], fds[1]


def spawn(plan_bytes, sync_fd):
    """Clone the init and run the plan in it; the first child's pid."""
    return _check(lib.oci_spawn(plan_bytes, len(plan_bytes), sync_fd), "clone the container init")


def recv(fd):
    """(type, err, value, text) of the next message, None at EOF."""
    m = ffi.new("struct oci_msg *")
    if _check(lib.oci_recv(fd, m), "read from the container init") == 0:
        return None
    return m.type, m.err, m.value, ffi.string(m.text).decode(errors="replace")


def send(fd, msg_type, value=0):
    _check(lib.oci_send(fd, msg_type, value), "write to the container init")


def move_fd_above(fd, minimum):
    return _check(lib.oci_move_fd_above(fd, minimum), "dup")


def set_child_subreaper():
    _check(lib.oci_set_child_subreaper(), "prctl(PR_SET_CHILD_SUBREAPER)")
