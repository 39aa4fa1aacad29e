"""The state directory: one directory per container under --root.

<root>/<id>/state.json   what we know (written atomically: temp + rename)
<root>/<id>/exec.fifo    exists from create until start (the init blocks
                         reading it; `start` writes one byte)
<root>/<id>/fast         what the C front end (csrc/frontend.c) needs to
                         answer state, start, kill and delete without
                         Python: written once, at the end of create, only
                         for what it can do alone (see write_fast)

A flock on the container directory serialises the commands that change a
container (create, start, delete).  The status is not stored: it is read
from the live process (pid plus its start time, so that a reused pid is
not mistaken for the container) and the fifo.
"""
import errno
import os

from ociruntime import SPEC_VERSION, jsonlite
from ociruntime.errors import ContainerNotFound, OciError, PermissionDenied

DEFAULT_ROOT = "/run/ociruntime"
_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+-.")


def check_id(cid):
    # runc's rule; it also keeps ids from naming paths outside the root.
    if not cid or cid in (".", "..") or not _ID_CHARS.issuperset(cid) or len(cid) > 1024:
        raise OciError(f"invalid container id {cid!r}: use letters, digits and _ + - . only")
    return cid


def proc_stat(pid):
    """(state letter, start time) of a process, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    rest = data[data.rindex(b")") + 2:].split()
    return rest[0].decode(), int(rest[19])


def process_alive(pid, start_time):
    st = proc_stat(pid) if pid > 0 else None
    return st is not None and st[1] == start_time and st[0] not in ("Z", "X")


def lock_dir(path):
    """Take the container's lock; None if the container is gone."""
    import fcntl
    try:
        # O_NOFOLLOW: an entry of the state root that is a symlink is not a
        # container, and nothing may be done through it.
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except PermissionError:
        raise PermissionDenied(path) from None
    except OSError as e:
        if e.errno == errno.ELOOP:
            return None
        raise
    fcntl.flock(fd, fcntl.LOCK_EX)
    if os.fstat(fd).st_nlink == 0:   # deleted while we waited
        os.close(fd)
        return None
    return fd


class Container:
    """One container's record in the state directory."""

    def __init__(self, root, cid, data):
        self.root, self.id, self.data = root, cid, data
        self.dir = os.path.join(root, cid)

    # -- lookup ----------------------------------------------------------
    @classmethod
    def load(cls, root, cid):
        check_id(cid)
        path = os.path.join(root, cid, "state.json")
        try:
            with open(path, "rb") as f:
                raw = f.read()
        except FileNotFoundError:
            raise ContainerNotFound(cid) from None
        except PermissionError:
            raise PermissionDenied(path) from None
        except OSError as e:
            raise OciError(f"{path}: {e.strerror.lower()}") from None
        try:
            data = jsonlite.loads(raw)
            if not isinstance(data, dict) or data.get("id") != cid:
                raise ValueError("not a container state")
        except ValueError as e:
            raise OciError(f"{path}: corrupt state ({e}); `delete --force {cid}` removes it") from None
        return cls(root, cid, data)

    @classmethod
    def ids(cls, root):
        try:
            return sorted(n for n in os.listdir(root) if os.path.isdir(os.path.join(root, n)))
        except FileNotFoundError:
            return []
        except PermissionError:
            raise PermissionDenied(root) from None

    # -- fields ----------------------------------------------------------
    @property
    def pid(self):
        return self.data.get("pid", 0)

    @property
    def fifo(self):
        return os.path.join(self.dir, "exec.fifo")

    def status(self):
        d = self.data
        if d.get("status") == "creating":
            return "creating"
        if not process_alive(d.get("pid", 0), d.get("pid_start")):
            return "stopped"
        if os.path.exists(self.fifo):
            return "created"
        if self._frozen():
            return "paused"
        return "running"

    def _frozen(self):
        # The v1 freezer where the host has one (cgroups.Manager.freeze
        # uses it then), else cgroup2's cgroup.freeze.
        freezer, freeze2 = _freeze_files(self.data.get("cgroups") or {})
        try:
            for p in freezer:
                with open(p) as f:
                    return f.read().strip() in ("FROZEN", "FREEZING")
            for p in freeze2:
                if os.path.exists(p):
                    with open(p) as f:
                        return f.read().strip() == "1"
        except OSError:
            return False
        return False

    def oci_state(self):
        """The state of runtime.md, with runc's extras (rootfs, created)."""
        d = self.data
        status = self.status()
        out = {
            "ociVersion": SPEC_VERSION,
            "id": self.id,
            "pid": d.get("pid", 0) if status not in ("stopped", "creating") else 0,
            "status": status,
            "bundle": d.get("bundle", ""),
            "rootfs": d.get("rootfs", ""),
            "created": d.get("created", ""),
            "owner": "",
        }
        if d.get("annotations"):
            out["annotations"] = d["annotations"]
        return out

    # -- changes ---------------------------------------------------------
    def save(self):
        # 0600: it holds the process's environment (exec's defaults).
        tmp = os.path.join(self.dir, ".state.json.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        self.saved = jsonlite.dumps(self.data).encode()
        try:
            os.write(fd, self.saved)
        finally:
            os.close(fd)
        os.rename(tmp, os.path.join(self.dir, "state.json"))


FAST_MAGIC = b"ociruntime-fast 1\n"


def write_fast(c):
    """The front end's view of a created container, as plain lines.

    The state JSON is rendered here, around its two live fields: `head`
    ends before the pid, `mid` runs from after the pid to the status
    value, `tail` follows the status.  A copy of state.json as saved
    lets the front end tell that nothing has changed it since: if
    anything has, Python reads it (and reports it corrupt).  start_ok and delete_ok say whether
    those commands are only what the front end does (no hook to run, no
    systemd unit to stop); anything else, and every error, goes to Python.
    Not written at all if a path cannot be one line."""
    from ociruntime.jsonlite import dumps_pretty
    d = c.data
    hooks = d.get("hooks") or {}
    lines = [FAST_MAGIC, b"pid %d\n" % d["pid"], b"start %d\n" % d["pid_start"],
             b"start_ok %d\n" % bool(d.get("has_process") and not hooks.get("startContainer")
                                     and not hooks.get("poststart")),
             b"delete_ok %d\n" % (not hooks.get("poststop") and not d.get("cgroups_systemd"))]
    freezer, freeze2 = _freeze_files(d.get("cgroups") or {})
    paths = [(b"freezer", p) for p in freezer] + [(b"freeze2", p) for p in freeze2]
    paths += [(b"rmdir", p) for p in sorted(d.get("cgroups_created") or (), key=len, reverse=True)]
    if any("\n" in p for _, p in paths):
        return
    lines += [b"%s %s\n" % (k, os.fsencode(p)) for k, p in paths]
    text = dumps_pretty(dict(c.oci_state(), pid=0, status="")) + "\n"
    i = text.index('"pid": 0,') + len('"pid": ')
    j = text.index('"status": ""', i) + len('"status": "')
    blobs = [(b"head", text[:i].encode()), (b"mid", text[i + 1:j].encode()),
             (b"tail", text[j:].encode()), (b"state.json", c.saved)]
    lines += [b"%s %d\n%s\n" % (name, len(blob), blob) for name, blob in blobs]
    tmp = os.path.join(c.dir, ".fast.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, b"".join(lines))
    finally:
        os.close(fd)
    os.rename(tmp, os.path.join(c.dir, "fast"))


def _freeze_files(cg):
    """([v1 freezer.state], [cgroup.freeze candidates]), as _frozen reads them."""
    path = next((p for m, p in cg.items() if "freezer" in os.path.basename(m)), None)
    if path:
        return [path + "/freezer.state"], []
    return [], [p + "/cgroup.freeze" for p in cg.values()]


def remove_tree(path):
    """shutil.rmtree(path, ignore_errors=True), without importing shutil
    (and with it fnmatch, re, bz2, lzma...) on delete's path.  Never
    follows a symlink, not even at the top: a link is removed, not its target."""
    if os.path.islink(path):
        try:
            os.unlink(path)
        except OSError:
            pass
        return
    try:
        entries = list(os.scandir(path))
    except OSError:
        entries = []
    for e in entries:
        try:
            if e.is_dir(follow_symlinks=False):
                remove_tree(e.path)
            else:
                os.unlink(e.path)
        except OSError:
            pass
    try:
        os.rmdir(path)
    except OSError:
        pass


def write_atomic(path, text):
    """Write a file whole or not at all (pid files are read by engines)."""
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, path)
