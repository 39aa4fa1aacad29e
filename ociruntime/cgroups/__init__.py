"""cgroups: where a container's processes live, and what limits them.

One manager for the three kinds of host, told apart by probing
/proc/self/mountinfo (and cgroup.controllers):

  v1      a cgroup v1 hierarchy per controller (or group of them)
  v2      /sys/fs/cgroup is cgroup2: one hierarchy for every controller
  hybrid  v1 hierarchies plus a cgroup2 mount (here /sys/fs/cgroup/unified)

The container gets a directory in every hierarchy the runtime is in (like
runc), at linux.cgroupsPath: absolute from each hierarchy's root, relative
under the runtime's own cgroup, or by default a directory named after the
container id under the runtime's own cgroup.  On a pure cgroup v2 host a
relative or default path is beside the runtime's own cgroup (under its
parent), as runc's fs2 manager does.

Each controller is served where the host has it: the v1 hierarchy that
carries it, else the cgroup2 hierarchy if cgroup.controllers lists it
(on this kind of hybrid host, hugetlb).  What is written where is decided
by resources.py (v1 and v2 file names, conversions); v1.py and v2.py do
the version-specific work (freezing, killing, events); devices.py makes
the device rules (v1 files or a v2 eBPF program).  A resource the host
cannot apply is an OciError naming it, never skipped.

`Manager(paths, created)` rebuilds a manager from state.json: paths are
{hierarchy mountpoint: container directory}; `load(state data)` does it
for any container, a --systemd-cgroup one too (systemd.py: a transient
scope unit over D-Bus, the same cgroupfs code for the rest).
"""
import os
import time

from ociruntime.errors import OciError
from ociruntime.state import read_bytes   # small control files: os calls, no io object

# What `features` reports (ociruntime/features.py reads it).
FEATURES = {"v1": True, "v2": True, "systemd": True, "systemdUser": False, "rdma": True}

CGROUP2 = "cgroup2"


def _own_cgroups(pid="self"):
    """{controllers field: path} from /proc/PID/cgroup ('' is cgroup2)."""
    own = {}
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            own[ctrls] = path
    return own


_hierarchies = None


def host_hierarchies():
    """[(name, fstype, controllers field, mountpoint, mount root, own path)]
    for every hierarchy the runtime is in, in mountinfo order.  Read once
    per command (create places the cgroups and plans their mounts from
    it): neither the mounts nor our own cgroups change meanwhile."""
    global _hierarchies
    if _hierarchies is None:
        _hierarchies = _read_hierarchies()
    return list(_hierarchies)


def _read_hierarchies():
    own = _own_cgroups()
    found, seen = [], set()
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fstype, _, superopts = right.split(" ", 2)
            if fstype not in ("cgroup", "cgroup2"):
                continue
            fields = left.split(" ")
            root, mountpoint = fields[3], fields[4].replace("\\040", " ")
            if fstype == "cgroup2":
                key = ""
            else:
                opts = set(superopts.strip().split(","))
                key = next((k for k in own if k and set(k.split(",")) <= opts), None)
            if key is None or key in seen or key not in own:
                continue
            seen.add(key)
            found.append((os.path.basename(mountpoint), fstype, key, mountpoint, root, own[key]))
    return found


class Layout:
    """Which hierarchy carries each controller.  v1: {controller: mount},
    v2: the cgroup2 mountpoint or None, v2_controllers: what it offers."""

    def __init__(self, v1=None, v2=None, v2_controllers=None):
        self.v1 = dict(v1 or {})
        self.v2 = v2
        if v2_controllers is None and v2:
            v2_controllers = read_words(os.path.join(v2, "cgroup.controllers"))
        self.v2_controllers = set(v2_controllers or ())

    @classmethod
    def probe(cls, hierarchies=None):
        v1, v2 = {}, None
        for _name, fstype, key, mnt, _root, _own in hierarchies or host_hierarchies():
            if fstype == CGROUP2:
                v2 = mnt
            else:
                for ctrl in key.split(","):
                    v1[ctrl] = mnt
        return cls(v1, v2)

    @property
    def mode(self):
        real_v1 = [c for c in self.v1 if not c.startswith("name=")]
        if self.v2 and not real_v1:
            return "v2"
        return "hybrid" if self.v2 else "v1"

    def locate(self, controller):
        """(1, mountpoint) or (2, mountpoint) or None.  v1 names: blkio is
        v2's io, cpuacct's v2 counters live in cpu."""
        if controller in self.v1:
            return 1, self.v1[controller]
        v2name = {"blkio": "io", "cpuacct": "cpu"}.get(controller, controller)
        if self.v2 and v2name in self.v2_controllers:
            return 2, self.v2
        return None


def load(data):
    """The manager of a container from its state.json data: a systemd
    unit's (--systemd-cgroup) or plain cgroupfs directories."""
    paths, created = data.get("cgroups") or {}, data.get("cgroups_created") or ()
    sd = data.get("cgroups_systemd")
    if sd:
        from ociruntime.cgroups import systemd
        return systemd.SystemdManager(paths, created, unit=sd["unit"], slice=sd["slice"])
    mgr = Manager(paths, created)
    if data.get("rootless"):
        mgr.rootless = True
        if not paths:   # no cgroup: the init's process tree
            mgr.init = (data.get("pid", 0), data.get("pid_start"))
    return mgr


def read_words(path):
    try:
        with open(path) as f:
            return f.read().split()
    except OSError:
        return []


def read_text(path):
    with open(path) as f:
        return f.read()


def write_file(path, value, field=None):
    """Write a cgroup file the way the kernel wants it (one write, no
    O_CREAT: a file the kernel does not have is an error, not created)."""
    fd = open_file(path, field)
    try:
        write_value(fd, path, value, field)
    finally:
        os.close(fd)


def open_file(path, field=None):
    """A cgroup file open for writing; each write(2) to it is one value
    to the kernel (devices.allow takes one rule per write)."""
    try:
        return os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
    except FileNotFoundError:
        what = f"{field}: " if field else ""
        raise OciError(f"{what}{path}: this host's kernel has no such cgroup file") from None
    except OSError as e:
        raise OciError(f"{field + ': ' if field else ''}open {path}: {_strerror(e)}") from None


def write_value(fd, path, value, field=None):
    try:
        os.write(fd, str(value).encode())
    except OSError as e:
        what = f"{field}: " if field else ""
        raise OciError(f"{what}write {str(value)!r} to {path}: {_strerror(e)}") from None


def _strerror(e):
    s = os.strerror(e.errno) if e.errno else str(e)
    return s[:1].lower() + s[1:]


def oom_kill_count(path):
    """The `oom_kill N` line of memory.oom_control (v1) or memory.events
    (v2); 0 if there is none."""
    try:
        for line in read_text(path).splitlines():
            k, _, v = line.partition(" ")
            if k == "oom_kill":
                return int(v)
    except (OSError, ValueError):
        pass
    return 0


class Manager:
    """The container's cgroup directories, one per hierarchy."""

    def __init__(self, paths, created=(), layout=None):
        self.paths = dict(paths)      # {hierarchy mountpoint: directory}
        self.created = list(created)  # directories we made, parents first
        self._layout = layout
        self._joined_by_init = set()  # hierarchies the init joins itself
        self.left_out = {}            # rootless: {mountpoint: why} (drop_unwritable)
        self.rootless = False
        self.init = None              # (pid, start time): pids() of a container without cgroups
        self._planned = None          # what planned() found missing, for create()

    # -- placement ---------------------------------------------------------
    @classmethod
    def for_config(cls, cgroups_path, cid, systemd=False, hierarchies=None):
        if systemd:
            from ociruntime.cgroups import systemd as sd
            return sd.manager_for(cgroups_path, cid)
        hierarchies = hierarchies or host_hierarchies()
        layout = Layout.probe(hierarchies)
        paths = {}
        for _name, fstype, _key, mnt, root, own in hierarchies:
            if cgroups_path and cgroups_path.startswith("/"):
                rel = cgroups_path
            else:
                base = own[len(root):] if root != "/" and own.startswith(root) else own
                if layout.mode == "v2" and fstype == CGROUP2:
                    # As runc's fs2: beside our own cgroup, not below it.
                    # Ours has processes (a shell's scope, rootless
                    # podman's), and v2 enables no controller below such
                    # a cgroup: a limit could never be applied there.
                    base = os.path.dirname(base.rstrip("/")) or "/"
                rel = os.path.join(base, cgroups_path or cid)
            paths[mnt] = os.path.normpath(mnt + "/" + rel.lstrip("/"))
            if paths[mnt] == mnt.rstrip("/") or not (paths[mnt] + "/").startswith(mnt.rstrip("/") + "/"):
                raise OciError(f"linux.cgroupsPath {cgroups_path!r} leaves the cgroup hierarchy")
        return cls(paths, layout=layout)

    def drop_unwritable(self):
        """Rootless: keep only the hierarchies where we may make the
        container's directory (a delegated subtree: systemd's user@.service
        on v2, or a cgroup given to the user).  As runc's rootless cgroupfs
        manager: the rest is left out, and a limit that needs it is refused
        (Writes.where); without limits the container runs without them."""
        self.rootless = True
        for mnt, path in list(self.paths.items()):
            p = path
            while p != mnt and not os.path.isdir(p):
                p = os.path.dirname(p)
            if p == path:   # there already: ours if we may place a process in it
                ok = os.access(os.path.join(p, "cgroup.procs"), os.W_OK)
            else:
                ok = os.access(p, os.W_OK | os.X_OK)
            if not ok:
                del self.paths[mnt]
                self.left_out[mnt] = (f"{p} is not writable by uid {os.geteuid()}"
                                      " (cgroups are not delegated to this user)")

    def why_missing(self, controller):
        """Why a rootless container has no directory for controller, or None."""
        where = self.layout.locate(controller)
        if not where or where[1] in self.paths:
            return None
        if where[1] in self.left_out:
            return self.left_out[where[1]]
        if self.rootless:   # rebuilt from the state (update)
            return "it has no such cgroup (cgroups were not delegated to this user at create)"
        return None

    @property
    def layout(self):
        if self._layout is None:
            self._layout = Layout.probe()
        return self._layout

    def dir_of(self, controller):
        """(version, container directory) serving controller, or None."""
        where = self.layout.locate(controller)
        if where is None or where[1] not in self.paths:
            return None
        return where[0], self.paths[where[1]]

    def _make(self, mnt, path):
        """Make path and its missing parents in one hierarchy, noting what
        we made (delete removes exactly that).  A parent that vanishes
        meanwhile (another container's delete removed it, empty) is made
        again."""
        for attempt in range(3):
            missing, p = [], path
            while p != mnt and not os.path.isdir(p):
                missing.append(p)
                p = os.path.dirname(p)
            try:
                for d in reversed(missing):
                    self._mkdir(mnt, d)
                if mnt == self.layout.v1.get("cpuset"):
                    _ensure_cpusets(mnt, path)
                return
            except FileNotFoundError:
                if attempt == 2:
                    raise OciError(f"create cgroup {path}: its parent keeps vanishing") from None

    def _mkdir(self, mnt, d):
        try:
            os.mkdir(d)
        except FileExistsError:
            return
        except FileNotFoundError:
            raise
        except OSError as e:
            raise OciError(f"create cgroup {d}: {_strerror(e)}") from None
        if d not in self.created:
            self.created.append(d)

    def planned(self):
        """The directories create() will make, parents first (what is
        missing now).  The state records them before they are made, so
        that `delete --force` after a create killed half-way removes
        them, and nothing that was there before."""
        out = []
        for mnt, path in self.paths.items():
            missing, p = [], path
            while p != mnt and not os.path.isdir(p):
                missing.append(p)
                p = os.path.dirname(p)
            out += reversed(missing)
        self._planned = out
        return list(out)

    @property
    def v2_dir(self):
        mnt = self.layout.v2
        return self.paths.get(mnt) if mnt else None

    def create(self):
        # What planned() just found missing is made without looking again
        # (a stat per hierarchy less); a parent that vanished meanwhile
        # (another container's delete) sends every hierarchy to _make.
        planned, self._planned = self._planned, None
        try:
            for d in planned or ():
                self._mkdir(None, d)
        except FileNotFoundError:
            planned = None
        cpuset = self.layout.v1.get("cpuset")
        for mnt, path in self.paths.items():
            if planned is None:
                self._make(mnt, path)
            elif mnt == cpuset:
                try:
                    _ensure_cpusets(mnt, path)
                except FileNotFoundError:   # a parent vanished: make it again
                    self._make(mnt, path)
        if self.layout.mode == "v2" and self.v2_dir:
            # Like runc: every controller the parent offers, so that the
            # container's directory has their files (limits and stats);
            # best effort, as runc: under a cgroup that has processes
            # (the default path, below a shell's own cgroup) none can be
            # enabled, and only a limit that needs one is then an error.
            self.enable_v2(self.layout.v2_controllers, strict=False)

    def enable_v2(self, controllers, strict=True):
        """Enable controllers in cgroup.subtree_control of every ancestor of
        the container's cgroup2 directory (not in the directory itself: a
        cgroup with processes cannot have domain controllers enabled).
        strict=False enables what the kernel lets us, one by one."""
        mnt, leaf = self.layout.v2, self.v2_dir
        if not controllers or not leaf:
            return
        chain, p = [], os.path.dirname(leaf)
        while len(p) >= len(mnt.rstrip("/")):
            chain.append(p)
            if p == mnt.rstrip("/"):
                break
            p = os.path.dirname(p)
        for d in reversed(chain):
            have = set(read_words(os.path.join(d, "cgroup.subtree_control")))
            offered = set(read_words(os.path.join(d, "cgroup.controllers")))
            want = [c for c in sorted(controllers) if c not in have and c in offered]
            missing = [c for c in sorted(controllers) if c not in offered]
            if missing and strict:
                raise OciError(f"cgroup v2 controller(s) {', '.join(missing)} not available in {d}")
            if not want:
                continue
            if d != mnt.rstrip("/") and read_words(os.path.join(d, "cgroup.procs")):
                # Processes here: domain controllers are refused (busy), and
                # a threaded one (pids, cpuset) would make d a thread root,
                # below which no process can be placed (EOPNOTSUPP).
                if not strict:
                    continue
                raise OciError(f"enable {' '.join(want)}: {d} has processes, and cgroup v2 enables "
                               "no controller below such a cgroup: give linux.cgroupsPath a place "
                               "outside it")
            if strict:
                write_file(os.path.join(d, "cgroup.subtree_control"),
                           " ".join("+" + c for c in want), f"enable {' '.join(want)}")
                continue
            for c in want:
                try:
                    write_file(os.path.join(d, "cgroup.subtree_control"), "+" + c)
                except OciError:
                    pass   # not delegated to us: a limit that needs it will say

    def apply_config(self, cfg, source="config.json"):
        """At create, before the init joins: linux.resources and the
        device rules (see resources.py)."""
        from ociruntime.cgroups import resources
        resources.apply_config(self, cfg, source)

    def update(self, res):
        """`update`: write what the resources object res names."""
        from ociruntime.cgroups import resources
        resources.apply_update(self, res)

    def open_for_init(self, into_v2=True):
        """fds with which the init places itself, so that join() has
        nothing left to do: the v1 `tasks` files, which a thread moving
        itself writes without waiting on cgroup_threadgroup_rwsem (the RCU
        grace period a move of another process waits for: ~9 ms here), and
        the cgroup2 directory for clone3(CLONE_INTO_CGROUP).  Returns
        ([(fd, path)], v2 fd or -1); the caller closes them after spawn."""
        tasks, v2_fd = [], -1
        try:
            for mnt, path in self.paths.items():
                if mnt == self.layout.v2:
                    if into_v2:
                        v2_fd = os.open(path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
                        self._joined_by_init.add(mnt)
                else:
                    tasks.append((os.open(path + "/tasks", os.O_WRONLY | os.O_CLOEXEC), path))
                    self._joined_by_init.add(mnt)
        except OSError as e:
            for fd, _ in tasks:
                os.close(fd)
            if v2_fd >= 0:
                os.close(v2_fd)
            self._joined_by_init.clear()
            raise OciError(f"open cgroup {path}: {_strerror(e)}") from None
        return tasks, v2_fd

    def init_joins_alone(self):
        """Whether the init joins every cgroup itself (open_for_init's
        fds): join() would have nothing left to do."""
        return all(mnt in self._joined_by_init for mnt in self.paths)

    def join(self, pid):
        for mnt, path in self.paths.items():
            if mnt in self._joined_by_init:
                continue
            try:
                with open(path + "/cgroup.procs", "w") as f:
                    f.write(str(pid))
            except OSError as e:
                raise OciError(f"join cgroup {path}: {_strerror(e)}") from None

    def pids(self):
        """Pids in the container's cgroups and the child cgroups its
        processes made (systemd or dockerd inside), as runc's GetAllPids:
        cgroup.procs lists a cgroup's own processes only, in v1 and v2.
        Every hierarchy is read, so that a process moved out of the
        container's subtree in one of them is still found in another.
        A rootless container without cgroups: the init and its descendants."""
        if not self.paths and self.init:
            return _process_tree(*self.init)
        out, seen = [], set()
        for path in self.paths.values():
            for d in _subtree(path):
                try:
                    with open(d + "/cgroup.procs") as f:
                        found = [int(x) for x in f.read().split()]
                except OSError:
                    continue
                for pid in found:
                    if pid not in seen:
                        seen.add(pid)
                        out.append(pid)
        return out

    # -- freezer -------------------------------------------------------------
    def _freezer(self):
        d = self.dir_of("freezer")
        if d:
            from ociruntime.cgroups import v1
            return v1, d[1]
        if self.v2_dir and os.path.exists(self.v2_dir + "/cgroup.freeze"):
            from ociruntime.cgroups import v2
            return v2, self.v2_dir
        return None, None

    def freeze(self):
        mod, d = self._freezer()
        if mod is None and self.rootless:
            raise OciError("pause: a rootless container has a freezer only where cgroups are "
                           "delegated to its user (cgroup v2 with systemd's user@.service)")
        if mod is None:
            raise OciError("pause: this host has no freezer cgroup (v1 freezer or cgroup2 cgroup.freeze)")
        mod.freeze(d)

    def thaw(self):
        mod, d = self._freezer()
        if mod is None:
            raise OciError("resume: this host has no freezer cgroup (v1 freezer or cgroup2 cgroup.freeze)")
        mod.thaw(d)

    def frozen(self):
        mod, d = self._freezer()
        return bool(mod and mod.frozen(d))

    # -- killing -------------------------------------------------------------
    def kill_all(self, sig):
        """Signal every process in the container's cgroups, child cgroups
        included.  SIGKILL goes through cgroup.kill where the container has
        a cgroup2 directory.  Otherwise, like runc: freeze (so that none
        forks away meanwhile), signal each pid, thaw -- a paused container
        runs again afterwards, as with runc.  Only the container's own
        directories are written: never a parent, which siblings share."""
        import _signal   # signal's C core: no enum import
        v2dir = self.v2_dir
        if sig == _signal.SIGKILL and v2dir and os.path.exists(v2dir + "/cgroup.kill"):
            try:
                write_file(v2dir + "/cgroup.kill", "1")
                self.thaw_after_kill()
                return
            except OciError:
                pass   # gone meanwhile, or an old kernel: by hand
        mod, fdir = self._freezer()
        if mod is not None:
            try:
                mod.freeze(fdir)
            except OciError:
                pass   # being removed: signal what is there anyway
        try:
            for pid in self.pids():
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
        finally:
            if mod is not None:
                try:
                    mod.thaw(fdir)
                except OciError:
                    pass
            if sig == _signal.SIGKILL:
                self.thaw_after_kill()

    def thaw_after_kill(self):
        """Thaw after SIGKILL, as runc does: a task frozen by the v1
        freezer dies only once it runs; with it, child cgroups that froze
        themselves (a paused container of a docker inside).  cgroup2's
        freezer lets SIGKILL through, but what survives runs again, as on v1."""
        d = self.dir_of("freezer")
        if d:
            from ociruntime.cgroups import v1
            v1.thaw_tree(d[1])
            return
        mod, fdir = self._freezer()
        if mod is not None and mod.frozen(fdir):
            try:
                mod.thaw(fdir)
            except OciError:
                pass

    def wait_empty(self, timeout):
        deadline = time.monotonic() + timeout
        delay = 0.001
        while self.pids():
            if time.monotonic() > deadline:
                return False
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
        return True

    def destroy(self, timeout=10.0):
        """Remove the container's cgroup directories that we made, with the
        child cgroups its processes made in them; then the parents we
        made, if they are empty now.  Processes still in the container's
        directories (killed, but slow to leave) are killed again while the
        kernel says busy.  A parent is only tried once, and nothing is
        ever written into it: it may hold another container (runc leaves
        parents alone altogether)."""
        deadline = time.monotonic() + timeout
        leaves = set(self.paths.values())
        ours = [d for d in self.created if d in leaves]
        delay = 0.001
        while True:
            busy = None
            for leaf in ours:
                try:
                    _remove_subtree(leaf)
                except OSError as e:
                    if e.errno != 16:   # EBUSY: processes still in it
                        raise OciError(f"remove cgroup {e.filename or leaf}: {_strerror(e)}") from None
                    busy = e
            if busy is None:
                break
            if time.monotonic() > deadline:
                raise OciError(f"remove cgroup {busy.filename}: {_strerror(busy)}")
            for leaf in leaves:   # every hierarchy: a v1 freezer holds them all
                _kill_subtree(leaf)
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
        for d in sorted(self.created, key=len, reverse=True):
            if d not in leaves:
                try:
                    os.rmdir(d)
                except OSError:
                    pass   # in use (a sibling's), or gone

    def mount_layout(self):
        """[(name, fstype, options, host directory)] for a `cgroup` mount."""
        out = []
        for name, fstype, key, mnt, _root, _own in host_hierarchies():
            if mnt in self.paths:
                out.append((name, fstype, key, self.paths[mnt]))
        return out

    def oom_kills(self):
        """How many processes the OOM killer took in the container's memory
        cgroup (v1 memory.oom_control or v2 memory.events)."""
        where = self.dir_of("memory")
        if not where:
            return 0
        name = "memory.oom_control" if where[0] == 1 else "memory.events"
        return oom_kill_count(os.path.join(where[1], name))

    def explain(self, err):
        """err, or a clearer error if the OOM killer is why it happened."""
        if self.oom_kills():
            return OciError(f"{err}: the OOM killer killed the container init during set-up: "
                            "linux.resources.memory.limit is too low for it")
        return err

    # -- stats -----------------------------------------------------------------
    def stats(self):
        from ociruntime.cgroups import stats
        return stats.collect(self)


def _process_tree(pid, start_time):
    """pid (if it is still the process that started at start_time) and
    its descendants, from /proc/PID/task/TID/children."""
    from ociruntime.state import process_alive
    if not pid or not process_alive(pid, start_time):
        return []
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            tasks = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for t in tasks:
            try:
                with open(f"/proc/{p}/task/{t}/children") as f:
                    todo += [int(x) for x in f.read().split()]
            except OSError:
                pass
    return out


def _subtree(top):
    """top and every cgroup directory under it, deepest first (cgroupfs
    has no symlinks; os.walk would not follow one anyway)."""
    return [dirpath for dirpath, _dirs, _files in os.walk(top, topdown=False)]


def _remove_subtree(top):
    """rmdir top and the cgroups under it, deepest first; OSError (EBUSY
    while processes are in one) for the caller to handle.  Usually nothing
    is under it: one rmdir, without listing the control files first."""
    try:
        os.rmdir(top)
        return
    except FileNotFoundError:
        return
    except OSError as e:
        if e.errno != 16:   # EBUSY: child cgroups (or processes) in it
            raise
    for d in _subtree(top):
        try:
            os.rmdir(d)
        except FileNotFoundError:
            pass


def _kill_subtree(top):
    """SIGKILL every process in top and the cgroups under it (cgroup.kill
    where there is one), thawing a v1 freezer so that they can die."""
    import _signal
    if os.path.exists(top + "/cgroup.kill"):
        try:
            write_file(top + "/cgroup.kill", "1")
            return
        except OciError:
            pass
    if os.path.exists(top + "/freezer.state"):
        from ociruntime.cgroups import v1
        v1.thaw_tree(top)
    for d in _subtree(top):
        try:
            with open(d + "/cgroup.procs") as f:
                pids = f.read().split()
        except OSError:
            continue
        for pid in pids:
            try:
                os.kill(int(pid), _signal.SIGKILL)
            except ProcessLookupError:
                pass


def _ensure_cpusets(mnt, path):
    """Every v1 cpuset from the hierarchy's root down to path gets its
    parent's cpus and mems where it has none: a new cpuset is empty, and a
    process cannot join an empty one (ENOSPC).  Every level, not only the
    ones we made: a parent another create made a moment ago may still be
    empty (runc's cpusetEnsureParent)."""
    levels, p = [], path
    while p != mnt:
        levels.append(p)
        p = os.path.dirname(p)
    for d in reversed(levels):
        for name in ("cpuset.cpus", "cpuset.mems"):
            if read_bytes(f"{d}/{name}").strip():
                continue
            value = read_bytes(f"{os.path.dirname(d)}/{name}").strip()
            fd = os.open(f"{d}/{name}", os.O_WRONLY | os.O_CLOEXEC)
            try:
                if value:
                    os.write(fd, value)
            finally:
                os.close(fd)
