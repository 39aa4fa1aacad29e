"""A throw-away unprivileged user for the rootless tests.

`RootlessUser.make()` adds a user `ocirl-<random>` with a home, a range
of subordinate uids and gids (/etc/subuid, /etc/subgid) that collides
with no other entry, and an XDG_RUNTIME_DIR of its own; `remove()` kills
what it left running, deletes the user and its home (userdel -r) and its
subuid/subgid lines.  Commands run as that user with setpriv and a clean
environment, as a login would give them.
"""
import json
import os
import pwd
import shutil
import subprocess
import uuid

SUBID_COUNT = 65536
SUBID_FILES = ("/etc/subuid", "/etc/subgid")


def _ranges(path):
    out = []
    try:
        with open(path) as f:
            for line in f:
                parts = line.strip().split(":")
                if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
                    out.append((int(parts[1]), int(parts[2])))
    except FileNotFoundError:
        pass
    return out


def free_subid_start():
    """A start of SUBID_COUNT ids no entry of either file touches (above
    the ranges useradd hands out, which start at 100000)."""
    taken = _ranges("/etc/subuid") + _ranges("/etc/subgid")
    start = 400_000_000 + (uuid.uuid4().int % 1000) * SUBID_COUNT
    while any(s < start + SUBID_COUNT and start < s + n for s, n in taken):
        start += SUBID_COUNT
    return start


def _edit_subid(remove_name=None, add_line=None):
    for path in SUBID_FILES:
        with open(path, "a+") as f:   # a+: made if missing
            import fcntl
            fcntl.flock(f, fcntl.LOCK_EX)
            f.seek(0)
            lines = [l for l in f.read().splitlines()
                     if not (remove_name and l.split(":")[0] == remove_name)]
            if add_line:
                lines.append(add_line)
            f.seek(0)
            f.truncate()
            f.write("".join(l + "\n" for l in lines))


class RootlessUser:
    def __init__(self, name):
        self.name = name
        pw = pwd.getpwnam(name)
        self.uid, self.gid, self.home = pw.pw_uid, pw.pw_gid, pw.pw_dir
        self.xdg = f"/tmp/{name}-xdg"
        self.subid = None

    @classmethod
    def make(cls, prefix="ocirl"):
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        # No subordinate ids from useradd: we choose a range ourselves.
        subprocess.run(["useradd", "-m", "-s", "/bin/sh", "-K", "SUB_UID_COUNT=0",
                        "-K", "SUB_GID_COUNT=0", name], check=True, capture_output=True)
        try:
            u = cls(name)
            u.subid = free_subid_start()
            _edit_subid(name, f"{name}:{u.subid}:{SUBID_COUNT}")
            os.mkdir(u.xdg, 0o700)
            os.chown(u.xdg, u.uid, u.gid)
            return u
        except BaseException:
            subprocess.run(["userdel", "-r", "-f", name], capture_output=True)
            _edit_subid(name)
            raise

    def env(self, **extra):
        env = {"HOME": self.home, "USER": self.name, "LOGNAME": self.name,
               "PATH": "/usr/local/bin:/usr/bin:/bin", "XDG_RUNTIME_DIR": self.xdg,
               "LANG": "C.UTF-8"}
        env.update(extra)
        return {k: v for k, v in env.items() if v is not None}

    def argv(self, args, user=None):
        return ["setpriv", f"--reuid={user or self.uid}",
                f"--regid={pwd.getpwnam(user).pw_gid if user else self.gid}",
                "--init-groups", "--reset-env", "--", *map(str, args)]

    def run(self, args, env=None, cwd=None, user=None, timeout=120, **kw):
        """Run args as the user (or as another `user`) with exactly env."""
        kw.setdefault("capture_output", True)
        kw.setdefault("text", True)
        assignments = [f"{k}={v}" for k, v in (env or self.env()).items()]
        # setpriv first (it needs root), then env -i sets exactly env.
        return subprocess.run(self.argv(["env", "-i", *assignments, *map(str, args)], user),
                              cwd=cwd or self.home, timeout=timeout, **kw)

    def bundle(self, name, cfg, rootfs):
        """A bundle owned by the user in its home: rootfs copied, cfg written."""
        b = os.path.join(self.home, name)
        shutil.copytree(rootfs, os.path.join(b, "rootfs"), symlinks=True)
        with open(os.path.join(b, "config.json"), "w") as f:
            json.dump(cfg, f, indent=1)
        subprocess.run(["chown", "-R", f"{self.uid}:{self.gid}", b], check=True)
        return b

    def processes(self):
        """Pids of processes running as the user (host uid or its subids)."""
        out = []
        for p in os.listdir("/proc"):
            if not p.isdigit():
                continue
            try:
                st = os.stat(f"/proc/{p}")
                with open(f"/proc/{p}/stat", "rb") as f:
                    if f.read().rsplit(b")", 1)[1].split()[0] == b"Z":
                        continue   # a zombie: its parent (not the user) reaps it
            except OSError:
                continue
            if st.st_uid == self.uid or (self.subid and self.subid <= st.st_uid < self.subid + SUBID_COUNT):
                out.append(int(p))
        return out

    def remove(self):
        for pid in self.processes():
            try:
                os.kill(pid, 9)
            except OSError:
                pass
        subprocess.run(["userdel", "-r", "-f", self.name], capture_output=True)
        _edit_subid(self.name)
        shutil.rmtree(self.xdg, ignore_errors=True)
        # What it left in /tmp (the /tmp root of rootless.py, conmon's
        # terminal sockets): the user is gone, nothing else owns its uid.
        for e in os.scandir("/tmp"):
            try:
                if e.stat(follow_symlinks=False).st_uid != self.uid:
                    continue
                if e.is_dir(follow_symlinks=False):
                    shutil.rmtree(e.path, ignore_errors=True)
                else:
                    os.unlink(e.path)
            except OSError:
                pass
