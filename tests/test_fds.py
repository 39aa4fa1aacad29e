"""Which file descriptors reach the container's process: stdio, fds the
caller passes with --preserve-fds N or LISTEN_FDS (socket activation),
and nothing of the runtime's own."""
import os
import subprocess

from conftest import RUNTIME, busybox_config

# The shell's own fds (listed by a child while the shell only waits), and
# where its cwd is.
SHOW = 'echo cwd: $(readlink /proc/$$/cwd); echo fds:; ls -1 /proc/$$/fd; echo end:'


def run_with_fds(oci, argv, fds, env=None, stdin=subprocess.DEVNULL):
    """Run the runtime with each {number: fd} open at that number (and
    nothing else beyond stdio); (exit code, stdout, stderr)."""
    def place():
        for num, fd in fds.items():
            os.dup2(fd, num)   # dup2 clears close-on-exec
    r = subprocess.run(argv, preexec_fn=place, pass_fds=tuple(fds), stdin=stdin,
                       capture_output=True, text=True, timeout=60, env=env)
    return r.returncode, r.stdout, r.stderr


def fd_lines(out):
    lines = out.splitlines()
    fds = lines[lines.index("fds:") + 1:lines.index("end:")]
    cwd = [l for l in lines if l.startswith("cwd: ")][0].split()[1]
    return sorted(int(f) for f in fds), cwd


def test_only_stdio_reaches_the_container(oci):
    """The runtime's own fds (lock, fifo, sync pipes) and fds the caller
    did not preserve stay out; the cwd is the container's root."""
    b = oci.bundle(args=["sh", "-c", SHOW])
    cid = oci.new_id()
    stray = os.open("/etc/hostname", os.O_RDONLY)
    try:
        code, out, err = run_with_fds(oci, [RUNTIME, "--root", oci.root, "run", "-b", b, cid],
                                      {3: stray, 4: stray, 7: stray})
    finally:
        os.close(stray)
    assert code == 0, err
    assert fd_lines(out) == ([0, 1, 2], "/")


def test_preserve_fds_passes_a_pipe(oci):
    r, w = os.pipe()
    os.write(w, b"through fd 3\n")
    os.close(w)
    extra = os.open("/etc/hostname", os.O_RDONLY)
    b = oci.bundle(args=["sh", "-c", SHOW + "; read line <&3; echo got: $line"])
    cid = oci.new_id()
    try:
        code, out, err = run_with_fds(oci, [RUNTIME, "--root", oci.root, "run", "--preserve-fds", "1",
                                            "-b", b, cid], {3: r, 4: extra})
    finally:
        os.close(r)
        os.close(extra)
    assert code == 0, err
    assert fd_lines(out) == ([0, 1, 2, 3], "/")
    assert "got: through fd 3" in out.splitlines()


def test_preserve_fds_must_be_open(oci):
    b = oci.bundle(args=["true"])
    cid = oci.new_id()
    code, out, err = run_with_fds(oci, [RUNTIME, "--root", oci.root, "run", "--preserve-fds", "2",
                                        "-b", b, cid], {})
    assert code == 1
    assert "unable to stat preserved-fd 0 (of 2): bad file descriptor" in err
    assert not os.path.exists(f"{oci.root}/{cid}")


def test_listen_fds_socket_activation(oci):
    """LISTEN_FDS=N meant for the runtime (LISTEN_PID is its pid): fds
    3..3+N-1 pass, and the process sees LISTEN_FDS=N LISTEN_PID=1; a
    --preserve-fds comes after them."""
    r1, w1 = os.pipe()
    r2, w2 = os.pipe()
    os.write(w1, b"listen\n")
    os.write(w2, b"preserved\n")
    os.close(w1)
    os.close(w2)
    b = oci.bundle(args=["sh", "-c", SHOW + "; echo env: $LISTEN_FDS $LISTEN_PID; "
                         "read a <&3; read p <&4; echo read: $a $p"])
    cid = oci.new_id()
    # exec keeps the pid: LISTEN_PID names the runtime itself
    argv = ["sh", "-c", 'LISTEN_PID=$$ LISTEN_FDS=1 exec "$@"', "sh",
            RUNTIME, "--root", oci.root, "run", "--preserve-fds", "1", "-b", b, cid]
    try:
        code, out, err = run_with_fds(oci, argv, {3: r1, 4: r2})
    finally:
        os.close(r1)
        os.close(r2)
    assert code == 0, err
    lines = out.splitlines()
    assert fd_lines(out) == ([0, 1, 2, 3, 4], "/")
    assert "env: 1 1" in lines and "read: listen preserved" in lines
    # LISTEN_PID of another process: not ours, nothing passes
    b = oci.bundle(args=["sh", "-c", SHOW + "; echo env: ${LISTEN_FDS:-none}"])
    cid = oci.new_id()
    env = dict(os.environ, LISTEN_FDS="1", LISTEN_PID="1")
    stray = os.open("/etc/hostname", os.O_RDONLY)
    try:
        code, out, err = run_with_fds(oci, [RUNTIME, "--root", oci.root, "run", "-b", b, cid],
                                      {3: stray}, env=env)
    finally:
        os.close(stray)
    assert code == 0, err
    assert fd_lines(out) == ([0, 1, 2], "/") and "env: none" in out.splitlines()


def test_exec_fds(oci):
    b = oci.bundle(busybox_config(["sleep", "1000"]))
    cid = oci.new_id()
    with open(oci.tmp / "err", "w") as err:
        assert oci.cmd("run", "-d", "-b", b, cid, capture_output=False, stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=err).returncode == 0
    stray = os.open("/etc/hostname", os.O_RDONLY)
    r, w = os.pipe()
    os.write(w, b"exec fd\n")
    os.close(w)
    try:
        code, out, err = run_with_fds(oci, [RUNTIME, "--root", oci.root, "exec", "--cwd", "/tmp", cid,
                                            "sh", "-c", SHOW], {3: stray, 5: stray})
        assert code == 0, err
        assert fd_lines(out) == ([0, 1, 2], "/tmp")
        code, out, err = run_with_fds(oci, [RUNTIME, "--root", oci.root, "exec", "--preserve-fds", "1",
                                            cid, "sh", "-c", SHOW + "; read l <&3; echo got: $l"],
                                      {3: r, 4: stray})
        assert code == 0, err
        assert fd_lines(out) == ([0, 1, 2, 3], "/")
        assert "got: exec fd" in out.splitlines()
    finally:
        os.close(stray)
        os.close(r)
