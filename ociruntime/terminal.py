"""process.terminal: the console socket, and the foreground proxy.

The init (csrc/terminal.c, OP_SETUP_TERMINAL) makes the pty in the
container's devpts and sends the master over a connected unix socket that
the runtime hands it: the caller's --console-socket, or, for a foreground
`run`/`exec` without one, our own end of a socketpair, after which this
process stays as the proxy between its stdio and the master (like runc).
Imported only when a terminal is asked for.
"""
import array
import os
import signal
import socket

from ociruntime.errors import OciError


def check(terminal, console_socket, detach):
    """runc's rules for which combinations make sense."""
    if detach and terminal and not console_socket:
        raise OciError("cannot allocate tty if ociruntime will detach without setting console socket")
    if (not detach or not terminal) and console_socket:
        raise OciError("cannot use console socket if ociruntime will not detach or allocate tty")


def connect(path):
    """A connected fd to the caller's --console-socket."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
    except OSError as e:
        s.close()
        raise OciError(f"--console-socket {path}: connect: {os.strerror(e.errno).lower()}") from None
    return s.detach()


def pair():
    """(ours, the init's) for a foreground terminal."""
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    return a.detach(), b.detach()


def plan_terminal(plan, proc, sock_fd, mount_console, proxied=False):
    """The pty step.  proxied (we copy between our stdio and the master):
    when our stdin is a terminal, the pty starts with its size, as the
    process may ask for it before the proxy runs."""
    size = proc.get("consoleSize") or {}
    rows, cols = size.get("height", 0), size.get("width", 0)
    if proxied and os.isatty(0):
        import fcntl
        import struct
        import termios
        try:
            rows, cols = struct.unpack("HHHH", fcntl.ioctl(0, termios.TIOCGWINSZ, b"\0" * 8))[:2]
        except OSError:
            pass
    uid = (proc.get("user") or {}).get("uid", 0)
    plan.add("SETUP_TERMINAL", sock_fd, rows, cols, uid, 1 if mount_console else 0)


def recv_master(sock_fd):
    """The pty master the init sent over our end of the pair; closes it."""
    s = socket.socket(fileno=sock_fd)
    try:
        fds = array.array("i")
        msg, anc, _flags, _addr = s.recvmsg(4096, socket.CMSG_SPACE(fds.itemsize))
        for level, kind, data in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(data[:len(data) - len(data) % fds.itemsize])
        if not fds:
            raise OciError("terminal: the container init sent no pty master")
        for extra in fds[1:]:
            os.close(extra)
        os.set_inheritable(fds[0], False)
        return fds[0]
    finally:
        s.close()


def _copy_size(src, dst):
    import fcntl
    import termios
    try:
        fcntl.ioctl(dst, termios.TIOCSWINSZ, fcntl.ioctl(src, termios.TIOCGWINSZ, b"\0" * 8))
    except OSError:
        pass


def _write_all(fd, data):
    while data:
        n = os.write(fd, data)
        data = data[n:]


def proxy(master, pid, signals, reap):
    """Copy our stdin to the master and the master to our stdout until the
    process `pid` has exited and its output is drained; forward signals
    (SIGWINCH resizes the pty from our terminal).  `reap()` returns the exit
    code once pid is gone, else None.  The caller has `signals` blocked."""
    import select
    import termios
    import tty
    stdin_tty = os.isatty(0)
    saved = None
    if stdin_tty:
        saved = termios.tcgetattr(0)
        tty.setraw(0, termios.TCSANOW)
        _copy_size(0, master)
    rfd, wfd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    old_wakeup = signal.set_wakeup_fd(wfd, warn_on_full_buffer=False)
    old_handlers = {s: signal.signal(s, lambda *_: None) for s in signals}
    signal.pthread_sigmask(signal.SIG_UNBLOCK, signals)
    code = None
    stdin_open = True
    try:
        poller = select.poll()
        poller.register(master, select.POLLIN)
        poller.register(rfd, select.POLLIN)
        poller.register(0, select.POLLIN)
        master_open = True
        while True:
            code = reap() if code is None else code
            if code is not None and not master_open:
                return code
            timeout = None if code is None else 200   # drain what is left
            events = poller.poll(timeout)
            if not events and code is not None:
                return code
            for fd, ev in events:
                if fd == rfd:
                    for signo in os.read(rfd, 512):
                        if signo == signal.SIGCHLD:
                            continue
                        if signo == signal.SIGWINCH and stdin_tty:
                            _copy_size(0, master)
                            continue
                        try:
                            os.kill(pid, signo)
                        except ProcessLookupError:
                            pass
                elif fd == master:
                    try:
                        data = os.read(master, 65536)
                    except OSError:   # EIO: every slave fd is closed
                        data = b""
                    if data:
                        _write_all(1, data)
                    else:
                        poller.unregister(master)
                        master_open = False
                elif fd == 0 and stdin_open:
                    data = os.read(0, 65536) if ev & (select.POLLIN | select.POLLHUP) else b""
                    if data:
                        _write_all(master, data)
                    else:   # EOF: nothing more to type
                        poller.unregister(0)
                        stdin_open = False
    finally:
        signal.pthread_sigmask(signal.SIG_BLOCK, signals)
        for s, h in old_handlers.items():
            signal.signal(s, h)
        signal.set_wakeup_fd(old_wakeup)
        os.close(rfd)
        os.close(wfd)
        if saved is not None:
            termios.tcsetattr(0, termios.TCSADRAIN, saved)
