"""Helpers for the tests that drive real engines (test_podman.py,
test_containerd.py): a terminal for `-t` without one of our own (CI has
none), polling, the busybox rootfs, and finding what was left behind."""
import fcntl
import os
import select
import subprocess
import termios
import time
from pathlib import Path

from ocihelpers import wait_for  # noqa: F401  (the engine tests take it from here)

REPO = Path(__file__).resolve().parents[1]


def make_rootfs(path):
    """The busybox rootfs of bundles/make-rootfs.sh (users root, user=1000)."""
    subprocess.run([str(REPO / "bundles" / "make-rootfs.sh"), str(path)], check=True,
                   capture_output=True, timeout=60)
    return Path(path)


def _controlling_tty():
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def run_in_pty(argv, timeout=60, env=None):
    """Run argv with a new pseudo-terminal as its controlling terminal and
    stdio, as `script` would; (exit status, output with \\r removed)."""
    master, slave = os.openpty()
    try:
        p = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env,
                             start_new_session=True, preexec_fn=_controlling_tty)
    finally:
        os.close(slave)
    out = b""
    deadline = time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                p.kill()
                raise TimeoutError(f"{argv}: no end after {timeout}s; output so far: {out!r}")
            ready, _, _ = select.select([master], [], [], left)
            if not ready:
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:   # EIO: every slave fd is closed
                break
            if not chunk:
                break
            out += chunk
        rc = p.wait(timeout=max(1, deadline - time.monotonic()))
    finally:
        os.close(master)
        if p.poll() is None:
            p.kill()
            p.wait()
    return rc, out.decode(errors="replace").replace("\r", "")


class CliClient:
    """An engine's command line (podman, ctr): argv() in the subclass."""
    program = "?"

    def argv(self, *args):
        raise NotImplementedError

    def cmd(self, *args, timeout=60, **kw):
        kw.setdefault("capture_output", True)
        kw.setdefault("text", True)
        return subprocess.run(self.argv(*args), timeout=timeout, **kw)

    def ok(self, *args, **kw):
        r = self.cmd(*args, **kw)
        assert r.returncode == 0, f"{self.program} {' '.join(map(str, args))}: {r.returncode}: {r.stderr}"
        return r.stdout


def mounts_under(path):
    path = str(path).rstrip("/") + "/"
    with open("/proc/self/mountinfo") as f:
        targets = [line.split()[4] for line in f]
    return [t for t in targets if (t + "/").startswith(path)]


def unmount_all_under(path):
    for t in sorted(mounts_under(path), key=len, reverse=True):
        subprocess.run(["umount", "-l", t], capture_output=True)


def cgroups_named(names):
    """Cgroup directories (any hierarchy, any depth) whose name contains
    one of names."""
    found = []
    names = [n for n in names if n]
    if not names:
        return found
    for h in Path("/sys/fs/cgroup").iterdir():
        if not h.is_dir():
            continue
        for dirpath, dirnames, _ in os.walk(h):
            for d in dirnames:
                if any(n in d for n in names):
                    found.append(os.path.join(dirpath, d))
    return found


def remove_cgroups(paths):
    for p in sorted(paths, key=len, reverse=True):
        try:
            os.rmdir(p)
        except OSError:
            pass
