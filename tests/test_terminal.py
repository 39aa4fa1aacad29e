"""process.terminal and exec --tty: the pty from the container's devpts,
its master over --console-socket (this test is the socket's server, as
conmon and containerd's shim are), or proxied by a foreground run/exec
(this test gives it a pty from Python's `pty` module as its stdio)."""
import array
import fcntl
import json
import os
import pty
import select
import socket
import struct
import subprocess
import termios
import time

from conftest import RUNTIME, busybox_config


def tty_config(args=("sh",), size=None, **process):
    cfg = busybox_config(list(args))
    cfg["process"]["terminal"] = True
    if size:
        cfg["process"]["consoleSize"] = {"height": size[0], "width": size[1]}
    cfg["process"].update(process)
    return cfg


class ConsoleSocket:
    """A --console-socket server: the runtime connects and sends the master."""

    def __init__(self, path):
        self.path = str(path)
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(self.path)
        self.srv.listen(4)
        self.srv.settimeout(30)

    def receive(self):
        """(name sent, master fd) of the next connection."""
        conn, _ = self.srv.accept()
        with conn:
            fds = array.array("i")
            msg, anc, _, _ = conn.recvmsg(4096, socket.CMSG_SPACE(fds.itemsize * 4))
            for level, kind, data in anc:
                assert (level, kind) == (socket.SOL_SOCKET, socket.SCM_RIGHTS)
                fds.frombytes(data)
        assert len(fds) == 1
        return msg.decode(), fds[0]

    def close(self):
        self.srv.close()


def read_until(fd, marker, timeout=30):
    """What fd gives until marker (bytes) has appeared; fails on timeout."""
    out = b""
    deadline = time.monotonic() + timeout
    while marker not in out:
        left = deadline - time.monotonic()
        assert left > 0, f"no {marker!r} in {out!r}"
        r, _, _ = select.select([fd], [], [], left)
        if r:
            try:
                data = os.read(fd, 4096)
            except OSError:   # EIO: the other side is gone
                break
            if not data:
                break
            out += data
    assert marker in out, f"no {marker!r} in {out!r}"
    return out.decode(errors="replace")


def ask(master, script):
    """Type a line into the shell on the pty; its output between markers
    that the terminal's echo of the typed line cannot contain."""
    os.write(master, b"echo BEGIN-$((1+1)); " + script.encode() + b"; echo MARK-$((6*7))\n")
    out = read_until(master, b"MARK-42\r\n")
    return out[out.index("BEGIN-2\r\n") + 9:out.index("MARK-42")].replace("\r\n", "\n")


def quiet(oci, *args):
    """Run the runtime with stdio that the container may keep."""
    with open(oci.tmp / "err", "w+") as err:
        r = oci.cmd(*args, capture_output=False, stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL, stderr=err)
        err.seek(0)
        return r.returncode, err.read()


def test_create_with_console_socket(oci):
    cs = ConsoleSocket(oci.tmp / "console.sock")
    b = oci.bundle(tty_config(size=(30, 100)))
    cid = oci.new_id()
    code, err = quiet(oci, "create", "-b", b, "--console-socket", cs.path, cid)
    assert code == 0, err
    name, master = cs.receive()
    try:
        assert name == "/dev/ptmx"
        oci.ok("start", cid)
        out = ask(master, "tty; stty size; [ /dev/console -ef \"$(tty)\" ] && echo console-is-tty; "
                          "ls /proc/$$/fd")
        lines = out.split("\n")
        assert lines[0].startswith("/dev/pts/")
        assert "30 100" in lines
        assert "console-is-tty" in lines
        # only the pty (and the shell's own copy of it) reach the process
        fds = set(lines[lines.index("console-is-tty") + 1].split())
        assert {"0", "1", "2"} <= fds and all(os.path.exists(f"/proc/{oci.state(cid)['pid']}/fd/{f}")
                                               for f in fds)
        assert len(fds - {"0", "1", "2"}) <= 1   # busybox ash keeps a dup of its tty (fd 10)
        os.write(master, b"exit 3\n")
        deadline = time.monotonic() + 30
        while oci.state(cid)["status"] != "stopped":
            assert time.monotonic() < deadline
            time.sleep(0.02)
    finally:
        os.close(master)
        cs.close()


def test_exec_tty_with_console_socket_like_conmon(oci):
    """conmon: exec --pid-file P --process F --detach --tty --console-socket S ID."""
    b = oci.bundle(busybox_config(["sleep", "1000"]))
    cid = oci.new_id()
    assert quiet(oci, "run", "-d", "-b", b, cid)[0] == 0
    cs = ConsoleSocket(oci.tmp / "console.sock")
    proc = dict(busybox_config()["process"], args=["sh"], terminal=True,
                consoleSize={"height": 25, "width": 90}, user={"uid": 1000, "gid": 1000},
                capabilities={}, env=["PATH=/bin:/usr/bin", "TERM=xterm"])
    pf = oci.tmp / "process.json"
    pf.write_text(json.dumps(proc))
    code, err = quiet(oci, "exec", "--pid-file", oci.tmp / "exec.pid", "--process", pf, "--detach",
                      "--tty", "--console-socket", cs.path, cid)
    assert code == 0, err
    _, master = cs.receive()
    try:
        assert (oci.tmp / "exec.pid").read_text().isdigit()
        out = ask(master, "tty; stty size; id -u; stat -c %u \"$(tty)\"; [ -e /dev/console ] || echo no-console")
        lines = out.split("\n")
        assert lines[0].startswith("/dev/pts/")
        assert lines[1:5] == ["25 90", "1000", "1000", "no-console"]
        os.write(master, b"exit\n")
    finally:
        os.close(master)
        cs.close()


def test_exec_tty_flag_with_console_socket(oci):
    b = oci.bundle(busybox_config(["sleep", "1000"]))
    cid = oci.new_id()
    assert quiet(oci, "run", "-d", "-b", b, cid)[0] == 0
    cs = ConsoleSocket(oci.tmp / "console.sock")
    code, err = quiet(oci, "exec", "-t", "-d", "--console-socket", cs.path, cid, "sh")
    assert code == 0, err
    _, master = cs.receive()
    try:
        assert ask(master, "echo $((1+2)) in $(tty)").split("\n")[0].startswith("3 in /dev/pts/")
    finally:
        os.close(master)
        cs.close()


def _foreground(argv, stdin_text=None, rows=40, cols=120):
    """Run argv with a fresh pty as its stdio; (exit code, what it wrote)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    p = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
    os.close(slave)
    out = b""
    try:
        if stdin_text is not None:
            out += read_until(master, b"READY").encode()
            os.write(master, stdin_text)
        while True:
            r, _, _ = select.select([master], [], [], 60)
            assert r, f"no end of output: {out!r}"
            try:
                data = os.read(master, 4096)
            except OSError:
                break
            if not data:
                break
            out += data
        return p.wait(timeout=60), out.decode(errors="replace").replace("\r\n", "\n")
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        os.close(master)


def test_run_foreground_terminal_proxies(oci):
    script = ("tty; stty size; [ /dev/console -ef \"$(tty)\" ] && echo console-is-tty; "
              "echo READY; read line; echo got-$line; exit 5")
    b = oci.bundle(tty_config(["sh", "-c", script], size=(30, 100)))
    cid = oci.new_id()
    code, out = _foreground([RUNTIME, "--root", oci.root, "run", "-b", b, cid], b"hello\n")
    assert code == 5, out
    lines = out.split("\n")
    assert lines[0].startswith("/dev/pts/")
    assert "40 120" in lines      # the size of the terminal we run on
    assert "console-is-tty" in lines
    assert "got-hello" in lines
    assert not os.path.exists(f"{oci.root}/{cid}")   # run deleted it


def test_exec_foreground_tty_proxies(oci):
    b = oci.bundle(busybox_config(["sleep", "1000"]))
    cid = oci.new_id()
    assert quiet(oci, "run", "-d", "-b", b, cid)[0] == 0
    code, out = _foreground([RUNTIME, "--root", oci.root, "exec", "-t", cid, "sh", "-c",
                             "tty; stty size; echo READY; read x; echo got-$x; exit 4"],
                            b"typed\n", rows=33, cols=77)
    assert code == 4, out
    lines = out.split("\n")
    assert lines[0].startswith("/dev/pts/") and "33 77" in lines and "got-typed" in lines
    # without -t our stdio passes straight through: no pty made inside
    code, out = _foreground([RUNTIME, "--root", oci.root, "exec", cid, "sh", "-c",
                             "ls /dev/pts; [ -t 0 ] && echo stdin-is-a-tty"])
    assert code == 0
    assert out.split() == ["ptmx", "stdin-is-a-tty"]


def test_terminal_errors_like_runc(oci):
    b = oci.bundle(tty_config())
    cid = oci.new_id()
    r = oci.cmd("create", "-b", b, cid)
    assert r.returncode == 1
    assert "cannot allocate tty if ociruntime will detach without setting console socket" in r.stderr
    r = oci.cmd("run", "-d", "-b", b, cid)
    assert "cannot allocate tty if ociruntime will detach without setting console socket" in r.stderr
    r = oci.cmd("create", "-b", b, "--console-socket", oci.tmp / "missing.sock", cid)
    assert r.returncode == 1 and "missing.sock: connect: no such file or directory" in r.stderr
    b2 = oci.bundle(busybox_config(["sleep", "1000"]))
    cs = ConsoleSocket(oci.tmp / "console.sock")
    try:
        r = oci.cmd("create", "-b", b2, "--console-socket", cs.path, cid)
        assert "cannot use console socket if ociruntime will not detach or allocate tty" in r.stderr
        assert not os.path.exists(f"{oci.root}/{cid}")
        assert quiet(oci, "run", "-d", "-b", b2, cid)[0] == 0
        r = oci.cmd("exec", "-t", "-d", cid, "true")
        assert r.returncode == 255 and "cannot allocate tty" in r.stderr, r.stderr
        r = oci.cmd("exec", "--console-socket", cs.path, cid, "true")
        assert r.returncode == 255 and "cannot use console socket" in r.stderr, r.stderr
        assert "Traceback" not in r.stderr
    finally:
        cs.close()
