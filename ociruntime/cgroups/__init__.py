"""cgroups: where a container's processes live, and what limits them.

One manager for the three kinds of host, told apart by probing
/proc/self/mountinfo (and cgroup.controllers):

  v1      a cgroup v1 hierarchy per controller (or group of them)
  v2      /sys/fs/cgroup is cgroup2: one hierarchy for every controller
  hybrid  v1 hierarchies plus a cgroup2 mount (here /sys/fs/cgroup/unified)

The container gets a directory in every hierarchy the runtime is in (like
runc), at linux.cgroupsPath: absolute from each hierarchy's root, relative
under the runtime's own cgroup, or by default a directory named after the
container id under the runtime's own cgroup.

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
    return Manager(paths, created)


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
    try:
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
    except FileNotFoundError:
        what = f"{field}: " if field else ""
        raise OciError(f"{what}{path}: this host's kernel has no such cgroup file") from None
    except OSError as e:
        raise OciError(f"{field + ': ' if field else ''}open {path}: {_strerror(e)}") from None
    try:
        os.write(fd, str(value).encode())
    except OSError as e:
        what = f"{field}: " if field else ""
        raise OciError(f"{what}write {str(value)!r} to {path}: {_strerror(e)}") from None
    finally:
        os.close(fd)


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

    # -- placement ---------------------------------------------------------
    @classmethod
    def for_config(cls, cgroups_path, cid, systemd=False, hierarchies=None):
        if systemd:
            from ociruntime.cgroups import systemd as sd
            return sd.manager_for(cgroups_path, cid)
        hierarchies = hierarchies or host_hierarchies()
        paths = {}
        for _name, _fstype, _key, mnt, root, own in hierarchies:
            if cgroups_path and cgroups_path.startswith("/"):
                rel = cgroups_path
            else:
                base = own[len(root):] if root != "/" and own.startswith(root) else own
                rel = os.path.join(base, cgroups_path or cid)
            paths[mnt] = os.path.normpath(mnt + "/" + rel.lstrip("/"))
            if paths[mnt] == mnt.rstrip("/") or not (paths[mnt] + "/").startswith(mnt.rstrip("/") + "/"):
                raise OciError(f"linux.cgroupsPath {cgroups_path!r} leaves the cgroup hierarchy")
        return cls(paths, layout=Layout.probe(hierarchies))

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
        we made (delete removes exactly that)."""
        missing, p = [], path
        while p != mnt and not os.path.isdir(p):
            missing.append(p)
            p = os.path.dirname(p)
        for d in reversed(missing):
            try:
                os.mkdir(d)
            except FileExistsError:
                continue
            except OSError as e:
                raise OciError(f"create cgroup {d}: {_strerror(e)}") from None
            self.created.append(d)
            if mnt == self.layout.v1.get("cpuset"):
                _inherit_cpuset(d)

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
        return out

    @property
    def v2_dir(self):
        mnt = self.layout.v2
        return self.paths.get(mnt) if mnt else None

    def create(self):
        for mnt, path in self.paths.items():
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
        """Pids in the container's cgroup (the cgroup2 directory if there is
        one, it holds them all; else the first hierarchy)."""
        paths = list(self.paths.values())
        for path in paths:
            if os.path.exists(path + "/cgroup.kill"):
                paths.remove(path)
                paths.insert(0, path)
                break
        for path in paths:
            try:
                with open(path + "/cgroup.procs") as f:
                    return [int(x) for x in f.read().split()]
            except OSError:
                continue
        return []

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
        """Signal every process in the cgroup: SIGKILL through cgroup.kill
        where the container has a cgroup2 directory; otherwise freeze,
        signal each pid, thaw (so none forks away meanwhile), like runc."""
        import _signal   # signal's C core: no enum import
        from ociruntime.cgroups import v2
        v2dir = self.v2_dir
        mod, fdir = self._freezer()
        if sig == _signal.SIGKILL and v2dir and os.path.exists(v2dir + "/cgroup.kill"):
            try:
                write_file(v2dir + "/cgroup.kill", "1")
                if mod is not None and mod is not v2 and mod.frozen(fdir):
                    mod.thaw(fdir)   # v1-frozen tasks die only once thawed
                return
            except OciError:
                pass   # gone meanwhile, or an old kernel: by hand
        thaw = False
        if mod is not None:
            try:
                # A killed task must run to die: thaw afterwards even if
                # the container was paused; other signals keep it paused.
                was = mod.frozen(fdir)
                if not was:
                    mod.freeze(fdir)
                thaw = not was or sig == _signal.SIGKILL
            except OciError:
                pass   # being removed: signal what is there anyway
        try:
            for pid in self.pids():
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
        finally:
            if thaw:
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
        """Remove the directories we made, deepest first.  Processes that
        were killed may take a moment to leave: kill again and retry while
        the kernel says busy."""
        deadline = time.monotonic() + timeout
        for d in sorted(self.created, key=len, reverse=True):
            # Sub-cgroups the container's processes made (a delegated
            # cgroup v2 tree, systemd in the container) go first, as runc.
            subs = [os.path.join(top, n) for top, dirs, _ in os.walk(d, topdown=False) for n in dirs]
            for sub in subs + [d]:
                self._rmdir(sub, deadline)

    def _rmdir(self, d, deadline):
        delay = 0.001
        while True:
            try:
                os.rmdir(d)
                return
            except FileNotFoundError:
                return
            except OSError as e:
                if e.errno != 16 or time.monotonic() > deadline:   # EBUSY
                    raise OciError(f"remove cgroup {d}: {_strerror(e)}") from None
                _kill_all_in(d)
                time.sleep(delay)
                delay = min(delay * 2, 0.05)

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


def _kill_all_in(path):
    import _signal
    if os.path.exists(path + "/cgroup.kill"):
        try:
            write_file(path + "/cgroup.kill", "1")
        except OciError:
            pass
    try:
        with open(path + "/cgroup.procs") as f:
            for pid in f.read().split():
                try:
                    os.kill(int(pid), _signal.SIGKILL)
                except ProcessLookupError:
                    pass
    except OSError:
        pass


def _inherit_cpuset(d):
    # A new v1 cpuset is empty, and a process cannot join an empty one.
    parent = os.path.dirname(d)
    for name in ("cpuset.cpus", "cpuset.mems"):
        with open(os.path.join(parent, name)) as f:
            value = f.read().strip()
        with open(os.path.join(d, name), "w") as f:
            f.write(value)
