"""Namespaces: the one table from config types to CLONE_* flags, and the
plan steps that create or join them."""
from ociruntime.errors import ConfigError

CLONE_NEWTIME = 0x00000080
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

# config type -> (CLONE_NEW* flag, name under /proc/PID/ns)
NAMESPACES = {
    "pid": (CLONE_NEWPID, "pid"),
    "network": (CLONE_NEWNET, "net"),
    "mount": (CLONE_NEWNS, "mnt"),
    "ipc": (CLONE_NEWIPC, "ipc"),
    "uts": (CLONE_NEWUTS, "uts"),
    "user": (CLONE_NEWUSER, "user"),
    "cgroup": (CLONE_NEWCGROUP, "cgroup"),
    "time": (CLONE_NEWTIME, "time"),
}

# Join order: the user namespace first, so that we hold capabilities over
# the namespaces it owns; mount last, since it changes what paths mean.
_JOIN_ORDER = ("user", "pid", "network", "ipc", "uts", "cgroup", "time", "mount")


class Namespaces:
    """Which namespaces a container gets: new ones and ones joined by path."""

    def __init__(self, entries, source="config.json"):
        self.new = set()
        self.joined = {}
        for i, ns in enumerate(entries or ()):
            where = f"{source}: $.linux.namespaces[{i}]"
            kind = ns.get("type")
            if kind not in NAMESPACES:
                raise ConfigError(f"{where}.type: unknown namespace type {kind!r}")
            if kind in self.new or kind in self.joined:
                raise ConfigError(f"{where}.type: namespace {kind!r} is listed twice")
            path = ns.get("path")
            if path and not path.startswith("/"):   # config-linux.md: MUST be absolute
                raise ConfigError(f"{where}.path: must be an absolute path, not {path!r}")
            if path:
                self.joined[kind] = path
            else:
                self.new.add(kind)

    def has(self, kind):
        return kind in self.new or kind in self.joined

    def clone_flags(self):
        """Flags for the clone of the init.  Time and cgroup namespaces are
        unshared later: time because clone() has no room for its flag and
        the offsets must be written before anything enters it, cgroup so
        that its root is the container's cgroup, joined after clone."""
        flags = 0
        for kind in self.new - {"time", "cgroup"}:
            flags |= NAMESPACES[kind][0]
        return flags

    def add_joins(self, plan):
        for kind in _JOIN_ORDER:
            if kind in self.joined:
                plan.add("SETNS", self.joined[kind], NAMESPACES[kind][0])
