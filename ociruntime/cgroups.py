"""cgroups: where a container's processes live.

This host kind is what runc calls hybrid: v1 hierarchies per controller
plus a cgroup2 mount.  The container gets a directory in every hierarchy
its runtime is in (like runc), at linux.cgroupsPath: absolute from each
hierarchy's root, relative under the runtime's own cgroup, or by default
a directory named after the container id under the runtime's own cgroup.
"""
import os
import time

from ociruntime.errors import OciError


def _own_cgroups():
    """{controllers field: path} from /proc/self/cgroup ('' is cgroup2)."""
    own = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            own[ctrls] = path
    return own


def host_hierarchies():
    """[(name, fstype, controllers, mountpoint, mount root, own path)]."""
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


class Manager:
    """The container's cgroup directories, one per hierarchy."""

    def __init__(self, paths, created=()):
        self.paths = paths            # {hierarchy mountpoint: directory}
        self.created = list(created)  # directories we made, parents first

    @classmethod
    def for_config(cls, cgroups_path, cid):
        paths = {}
        for _name, _fstype, _key, mnt, root, own in host_hierarchies():
            if cgroups_path and cgroups_path.startswith("/"):
                rel = cgroups_path
            else:
                base = own[len(root):] if root != "/" and own.startswith(root) else own
                rel = os.path.join(base, cgroups_path or cid)
            paths[mnt] = os.path.normpath(mnt + "/" + rel.lstrip("/"))
            if not (paths[mnt] + "/").startswith(mnt.rstrip("/") + "/"):
                raise OciError(f"linux.cgroupsPath {cgroups_path!r} leaves the cgroup hierarchy")
        return cls(paths)

    def create(self):
        for mnt, path in self.paths.items():
            missing = []
            p = path
            while p != mnt and not os.path.isdir(p):
                missing.append(p)
                p = os.path.dirname(p)
            for d in reversed(missing):
                try:
                    os.mkdir(d)
                except FileExistsError:
                    continue
                except OSError as e:
                    raise OciError(f"create cgroup {d}: {e.strerror.lower()}") from None
                self.created.append(d)
                if mnt.endswith("/cpuset"):
                    _inherit_cpuset(d)

    def join(self, pid):
        for path in self.paths.values():
            try:
                with open(path + "/cgroup.procs", "w") as f:
                    f.write(str(pid))
            except OSError as e:
                raise OciError(f"join cgroup {path}: {e.strerror.lower()}") from None

    def pids(self):
        """Pids in the container's cgroup (from the first hierarchy)."""
        for path in self.paths.values():
            try:
                with open(path + "/cgroup.procs") as f:
                    return [int(x) for x in f.read().split()]
            except OSError:
                continue
        return []

    def destroy(self, timeout=5.0):
        """Remove the directories we made, deepest first.  Processes that
        were killed may take a moment to leave: retry while busy."""
        deadline = time.monotonic() + timeout
        for d in sorted(self.created, key=len, reverse=True):
            while True:
                try:
                    os.rmdir(d)
                    break
                except FileNotFoundError:
                    break
                except OSError as e:
                    if e.errno != 16 or time.monotonic() > deadline:   # EBUSY
                        raise OciError(f"remove cgroup {d}: {e.strerror.lower()}") from None
                    _kill_all(d)
                    time.sleep(0.01)

    def mount_layout(self):
        """[(name, fstype, options, host directory)] for a `cgroup` mount."""
        out = []
        for name, fstype, key, mnt, _root, _own in host_hierarchies():
            if mnt in self.paths:
                out.append((name, fstype, key, self.paths[mnt]))
        return out


def _kill_all(path):
    try:
        with open(path + "/cgroup.procs") as f:
            for pid in f.read().split():
                try:
                    os.kill(int(pid), 9)
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
