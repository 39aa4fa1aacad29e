"""The state directory: one directory per container under --root.

<root>/<id>/state.json   what we know (written atomically: temp + rename;
                         replaced by moving the old one aside first, see
                         Container.save)
<root>/<id>/exec.fifo    exists from create until start (the init blocks
                         reading it; `start` writes one byte)
<root>/<id>/fast         what the C front end (csrc/frontend.c) needs to
                         answer state, start, kill and delete without
                         Python: written once, at the end of create, only
                         for what it can do alone (see write_fast)
<root>/<id>/cgroups.json the cgroups (and bundle) again, written before the
                         cgroups are made: with `fast`, what `delete
                         --force` reads when state.json is damaged
                         (salvage.py)

The root and the container directories are 0700, as runc's root.  Every
field of state.json is checked on load (FIELDS): a damaged one is one
line naming it, for every command but `delete --force`.

A flock on the container directory serialises the commands that change a
container (create, start, delete).  The status is not stored: it is read
from the live process (pid plus its start time, so that a reused pid is
not mistaken for the container) and the fifo.
"""
import errno
import os

from ociruntime import SPEC_VERSION, jsonlite
from ociruntime.errors import ContainerNotFound, OciError

DEFAULT_ROOT = "/run/ociruntime"
_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+-.")


# The longest id every name made from it fits: the state directory and
# the default cgroup (a path component: 255), and with --systemd-cgroup
# the unit "ociruntime-<id>.scope" (systemd's names: 255).
MAX_ID_LENGTH = 255 - len("ociruntime-.scope")


def check_id(cid):
    # runc's rule; it also keeps ids from naming paths outside the root.
    if not cid or cid in (".", "..") or not _ID_CHARS.issuperset(cid):
        raise OciError(f"invalid container id {cid!r}: use letters, digits and _ + - . only")
    if len(cid) > MAX_ID_LENGTH:
        raise OciError(f"invalid container id {cid[:32] + '...'!r} ({len(cid)} characters): "
                       f"at most {MAX_ID_LENGTH}, so that ociruntime-<id>.scope fits systemd's 255")
    return cid


def check_pid_file(path):
    """--pid-file's absolute path, its directory checked before anything
    is made (it is written only once the process runs)."""
    path = os.path.abspath(path)
    if not os.path.isdir(os.path.dirname(path)):
        raise OciError(f"--pid-file {path}: {os.path.dirname(path)} is not a directory")
    return path


def make_container_dir(root, cid):
    """<root>/<id>, and the root if it is missing; a clean error naming
    --root when it cannot be made: a file or a dangling symlink there,
    a read-only or full filesystem."""
    try:
        # 0700, as runc's root: only root may look at the containers' state.
        os.makedirs(root, 0o700, exist_ok=True)
    except FileExistsError:   # a file, or a symlink to nothing
        what = f"a symbolic link to {os.readlink(root)}, which does not exist" \
            if os.path.islink(root) and not os.path.exists(root) else "not a directory"
        raise OciError(f"--root {root}: {what}") from None
    except PermissionError:
        raise denied(root) from None
    except OSError as e:
        raise OciError(f"--root {root}: {os.strerror(e.errno).lower()}") from None
    cdir = os.path.join(root, cid)
    try:
        os.mkdir(cdir, 0o700)
    except FileExistsError:
        raise OciError(f'container with id "{cid}" already exists') from None
    except PermissionError:
        raise denied(root) from None
    except OSError as e:
        raise OciError(f"--root {root}: make the container's directory: {os.strerror(e.errno).lower()}") from None
    return cdir


def write_pid_file(path, pid):
    try:
        write_atomic(path, str(pid))
    except OSError as e:
        raise OciError(f"--pid-file {path}: {os.strerror(e.errno).lower()}") from None


def read_bytes(path):
    """A small file whole: open, read to the end, close.  (open() adds a
    stat, an ioctl and two seeks to each file: `list` reads three per
    container.)"""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def proc_stat(pid):
    """(state letter, start time) of a process, or None if it is gone."""
    try:
        data = read_bytes(f"/proc/{pid}/stat")
    except OSError:
        return None
    rest = data[data.rindex(b")") + 2:].split()
    return rest[0].decode(), int(rest[19])


def process_alive(pid, start_time):
    st = proc_stat(pid) if pid > 0 else None
    return st is not None and st[1] == start_time and st[0] not in ("Z", "X")


class CorruptState(OciError):
    """state.json is unreadable as what create wrote: `delete --force`
    still removes the container (ociruntime/salvage.py)."""


def denied(path):
    """The error of a caller who may not read the state (not root)."""
    return OciError(f"permission denied: {path}: run as root or use --root")


# -- what create writes into state.json, and nothing else --------------------
# Every command trusts these types; a state damaged on disk (by hand, a
# full disk, a bad restore) must give one clear line, never a traceback,
# and must not make delete act on the wrong thing (a pid of another type,
# a cgroup at a hierarchy's root).

PID_MAX = 1 << 22   # the kernel's highest pid_max


def _str(v):
    return isinstance(v, str)


def _strs(v):
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


def _cgroup_dirs(v):
    # A hierarchy's own directory (its root) is never a container's.
    return _strs(v) and all(x.startswith("/") and os.path.normpath(x) == x for x in v)


def _cgroups(v):
    return (isinstance(v, dict) and _cgroup_dirs(list(v))
            and all(isinstance(d, str) and d.startswith(m.rstrip("/") + "/")
                    and os.path.normpath(d) == d for m, d in v.items()))


def _hooks(v):
    return isinstance(v, dict) and all(
        isinstance(hs, list) and all(
            isinstance(h, dict) and isinstance(h.get("path"), str)
            and _strs(h.get("args", [])) and _strs(h.get("env", []))
            and (h.get("timeout") is None or type(h.get("timeout")) is int) for h in hs)
        for hs in v.values())


def _process(v):
    # What exec merges its flags into before it validates the result.
    return (isinstance(v, dict) and _strs(v.get("env", [])) and isinstance(v.get("user", {}), dict)
            and isinstance(v.get("capabilities", {}), dict)
            and all(_strs(x) for x in v.get("capabilities", {}).values()))


FIELDS = {
    "status": ("creating or created", lambda v: v in ("creating", "created")),
    "pid": ("a pid", lambda v: type(v) is int and 0 < v <= PID_MAX),
    "pid_start": ("a start time", lambda v: type(v) is int and 0 <= v < 1 << 63),
    "bundle": ("a path", _str), "rootfs": ("a path", _str), "created": ("a time", _str),
    "annotations": ("an object of strings", lambda v: isinstance(v, dict) and all(
        isinstance(x, str) for x in v.values())),
    "has_process": ("true or false", lambda v: type(v) is bool),
    "no_new_keyring": ("true or false", lambda v: type(v) is bool),
    "hooks": ("an object of hook lists", _hooks),
    "namespaces": ("a list of names", _strs),
    "seccomp": ("an object or null", lambda v: v is None or isinstance(v, dict)),
    "process": ("a process", _process),
    "cgroups": ("{hierarchy: directory below it}", _cgroups),
    "cgroups_created": ("a list of directories", _cgroup_dirs),
    "cgroups_systemd": ("{unit, slice}", lambda v: isinstance(v, dict) and _str(v.get("unit"))
                        and _str(v.get("slice"))),
}
# Once created, a container has these for certain.
REQUIRED_CREATED = ("pid", "pid_start", "cgroups")


def field_ok(data, name):
    """Is data's field name absent or of the type create writes?"""
    return name not in data or FIELDS[name][1](data[name])


def damage(data):
    """What is wrong with state data ("pid: not a pid"), or None."""
    for name in FIELDS:
        if not field_ok(data, name):
            return f"{name}: not {FIELDS[name][0]}"
    if "status" not in data:
        return "status: missing"
    if data["status"] == "created":
        for name in REQUIRED_CREATED:
            if name not in data:
                return f"{name}: missing"
    return None


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
        raise denied(path) from None
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
        self.on_disk = False   # a state.json of it exists (loaded or saved)

    # -- lookup ----------------------------------------------------------
    @classmethod
    def load(cls, root, cid):
        check_id(cid)
        path = os.path.join(root, cid, "state.json")
        raw = _read_state(path, os.path.join(root, cid, ASIDE), cid)
        try:
            data = jsonlite.loads(raw)
            if not isinstance(data, dict) or data.get("id") != cid:
                raise ValueError("not a container state")
            why = damage(data)
            if why:
                raise ValueError(why)
        except ValueError as e:
            raise CorruptState(f"{path}: corrupt state ({e}); `delete --force {cid}` removes it") from None
        c = cls(root, cid, data)
        c.on_disk = True
        return c

    @classmethod
    def ids(cls, root):
        try:
            return sorted(n for n in os.listdir(root) if os.path.isdir(os.path.join(root, n)))
        except FileNotFoundError:
            return []
        except PermissionError:
            raise denied(root) from None
        except OSError as e:   # a file...: one line naming it
            raise OciError(f"--root {root}: {os.strerror(e.errno).lower()}") from None

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
        if self._frozen():   # before the fifo: a created container can be paused (runc)
            return "paused"
        if os.path.exists(self.fifo):
            return "created"
        return "running"

    def _frozen(self):
        # The v1 freezer where the host has one (cgroups.Manager.freeze
        # uses it then), else cgroup2's cgroup.freeze.
        freezer, freeze2 = _freeze_files(self.data.get("cgroups") or {})
        try:
            for p in freezer:
                return read_bytes(p).strip() in (b"FROZEN", b"FREEZING")
            for p in freeze2:
                if os.path.exists(p):
                    return read_bytes(p).strip() == b"1"
        except OSError:
            return False
        return False

    def oci_state(self, status=None):
        """The state of runtime.md, with runc's extras (rootfs, created);
        status: the one to show, instead of reading it from the process."""
        d = self.data
        if status is None:
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
        # Never a rename over the old state.json: ext4 flushes the new file
        # to disk then (auto_da_alloc), and delete's unlink of a file with
        # blocks on disk waits for their discard (a `discard` mount): disk
        # I/O on create's and delete's path that parallel containers queue
        # behind.  The old one is moved aside, the new one renamed into the
        # free name, the old one removed; a reader in between finds the
        # old one aside (_read_state).
        self.saved = jsonlite.dumps(self.data).encode()
        # (create's first save has nothing to move aside.)
        replace_file(self.dir, "state.json", self.saved, aside=ASIDE if self.on_disk else None)
        self.on_disk = True

    def save_cgroups(self):
        """What delete needs to find the container's cgroups, kept apart
        from state.json (see salvage.py): written once, before they are
        made."""
        record = {k: self.data[k] for k in RECORD if k in self.data}
        # Once, into a new directory: no temp file and rename (a torn
        # write is only one more record salvage.py skips).  The first file
        # create writes: a full or read-only --root fails here, named.
        path = os.path.join(self.dir, "cgroups.json")
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            try:
                view = memoryview(jsonlite.dumps(record).encode())
                while view:
                    view = view[os.write(fd, view):]
            finally:
                os.close(fd)
        except OSError as e:
            raise OciError(f"write {path}: {os.strerror(e.errno).lower()}") from None


# What cgroups.json repeats of state.json.
RECORD = ("id", "bundle", "cgroups", "cgroups_created", "cgroups_systemd")


FAST_MAGIC = b"ociruntime-fast 1\n"


def write_fast(c):
    """Write the front end's view of c (render_fast), if it has one."""
    data = render_fast(c)
    if data is not None:
        replace_file(c.dir, "fast", data)


def render_fast(c):
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
    # rmdir: the container's own directories, which must go; rmparent: the
    # parents create made, removed if empty (a sibling may be in one).
    leaves = set((d.get("cgroups") or {}).values())
    made = sorted(d.get("cgroups_created") or (), key=len, reverse=True)
    paths += [(b"rmdir", p) for p in made if p in leaves]
    paths += [(b"rmparent", p) for p in made if p not in leaves]
    if any("\n" in p for _, p in paths):
        return None
    lines += [b"%s %s\n" % (k, os.fsencode(p)) for k, p in paths]
    text = dumps_pretty(dict(c.oci_state(status=""), pid=0)) + "\n"
    i = text.index('"pid": 0,') + len('"pid": ')
    j = text.index('"status": ""', i) + len('"status": "')
    blobs = [(b"head", text[:i].encode()), (b"mid", text[i + 1:j].encode()),
             (b"tail", text[j:].encode()), (b"state.json", c.saved)]
    lines += [b"%s %d\n%s\n" % (name, len(blob), blob) for name, blob in blobs]
    return b"".join(lines)


# Where Container.save moves the old state.json while it renames the new
# one into place.
ASIDE = ".state.json.old"


def _read_state(path, aside, cid):
    """state.json's bytes; while a save moves the old one aside, the old
    one (then state.json again: the save may have finished meanwhile)."""
    for p in (path, aside, path):
        try:
            return read_bytes(p)
        except FileNotFoundError:
            continue
        except PermissionError:
            raise denied(p) from None
        except OSError as e:
            raise OciError(f"{p}: {e.strerror.lower()}") from None
    raise ContainerNotFound(cid)


def _write_whole(path, data):
    """A new file at path holding data (0600); OSError as the calls raise it."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


def _write_error(path, e):
    return OciError(f"write {path}: {os.strerror(e.errno).lower()}")


def stage_file(dirpath, name, data):
    """replace_file's first half, for a new file: data in dirpath/.name.tmp,
    which commit_staged renames into place.  create writes the files of a
    ready container this way while the init sets itself up (issue 16)."""
    try:
        _write_whole(os.path.join(dirpath, f".{name}.tmp"), data)
    except OSError as e:
        raise _write_error(os.path.join(dirpath, name), e) from None


def commit_staged(dirpath, name):
    """stage_file's file renamed into place."""
    try:
        os.rename(os.path.join(dirpath, f".{name}.tmp"), os.path.join(dirpath, name))
    except OSError as e:
        raise _write_error(os.path.join(dirpath, name), e) from None


def replace_file(dirpath, name, data, aside=None):
    """dirpath/name replaced whole by data, through a temporary file: a
    full disk (blocks or inodes) or a read-only root is one clear error
    naming the file, and leaves no temporary file.  aside: a name to move
    the old file to first (and remove after), so that the new one is not
    renamed over it; readers look there while name is missing."""
    tmp = os.path.join(dirpath, f".{name}.tmp")
    path = os.path.join(dirpath, name)
    moved = None
    try:
        _write_whole(tmp, data)
        if aside:
            try:
                os.rename(path, os.path.join(dirpath, aside))
                moved = os.path.join(dirpath, aside)
            except FileNotFoundError:
                pass   # the first one
        os.rename(tmp, path)
    except OSError as e:
        if moved:   # the old one back where it was
            try:
                os.rename(moved, path)
            except OSError:
                pass
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise _write_error(path, e) from None
    if moved:
        try:
            os.unlink(moved)
        except OSError:
            pass   # a reader may still find it: harmless, delete removes the directory


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
    """Write a file whole or not at all (pid files are read by engines);
    on a failure (a full disk, a directory in the way) no temporary file
    is left."""
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        with open(tmp, "w") as f:
            f.write(text)
        os.rename(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
