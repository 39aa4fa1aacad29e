"""The container's filesystem: rootfs, config mounts, /dev, pivot_root,
masked and read-only paths, as plan steps."""
import os

from ociruntime import mount_attrs
from ociruntime.errors import ConfigError
from ociruntime.plan import MOUNT_COPYUP, MOUNT_DIR, MOUNT_FILE

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_SYNCHRONOUS = 16
MS_REMOUNT = 32
MS_MANDLOCK = 64
MS_DIRSYNC = 128
MS_NOSYMFOLLOW = 256
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_REC = 16384
MS_SILENT = 32768
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_I_VERSION = 1 << 23
MS_STRICTATIME = 1 << 24
MS_LAZYTIME = 1 << 25

# mount(8) option -> (sets the flag?, flag), as runc reads them.
FLAGS = {
    "async": (False, MS_SYNCHRONOUS), "atime": (False, MS_NOATIME),
    "bind": (True, MS_BIND), "defaults": (True, 0), "dev": (False, MS_NODEV),
    "diratime": (False, MS_NODIRATIME), "dirsync": (True, MS_DIRSYNC),
    "exec": (False, MS_NOEXEC), "iversion": (True, MS_I_VERSION),
    "lazytime": (True, MS_LAZYTIME), "loud": (False, MS_SILENT),
    "mand": (True, MS_MANDLOCK), "noatime": (True, MS_NOATIME),
    "nodev": (True, MS_NODEV), "nodiratime": (True, MS_NODIRATIME),
    "noexec": (True, MS_NOEXEC), "noiversion": (False, MS_I_VERSION),
    "nolazytime": (False, MS_LAZYTIME), "nomand": (False, MS_MANDLOCK),
    "norelatime": (False, MS_RELATIME), "nostrictatime": (False, MS_STRICTATIME),
    "nosuid": (True, MS_NOSUID), "nosymfollow": (True, MS_NOSYMFOLLOW),
    "rbind": (True, MS_BIND | MS_REC), "relatime": (True, MS_RELATIME),
    "remount": (True, MS_REMOUNT), "ro": (True, MS_RDONLY), "rw": (False, MS_RDONLY),
    "silent": (True, MS_SILENT), "strictatime": (True, MS_STRICTATIME),
    "suid": (False, MS_NOSUID), "symfollow": (False, MS_NOSYMFOLLOW),
    "sync": (True, MS_SYNCHRONOUS),
}
PROPAGATION = {
    "private": MS_PRIVATE, "rprivate": MS_PRIVATE | MS_REC,
    "shared": MS_SHARED, "rshared": MS_SHARED | MS_REC,
    "slave": MS_SLAVE, "rslave": MS_SLAVE | MS_REC,
    "unbindable": MS_UNBINDABLE, "runbindable": MS_UNBINDABLE | MS_REC,
}
_AFTER_PIVOT = MS_SHARED | MS_UNBINDABLE   # rootfsPropagation applied to the new root
# Options that are not mount flags: plan_mounts looks for them itself.
EXTENSIONS = {"tmpcopyup"}

# runc's default devices, made when /dev is not bound from the host.
DEFAULT_DEVICES = (  # path, major, minor
    ("/dev/null", 1, 3), ("/dev/zero", 1, 5), ("/dev/full", 1, 7),
    ("/dev/random", 1, 8), ("/dev/urandom", 1, 9), ("/dev/tty", 5, 0),
)
DEFAULT_SYMLINKS = (  # target, link
    ("/proc/self/fd", "/dev/fd"), ("/proc/self/fd/0", "/dev/stdin"),
    ("/proc/self/fd/1", "/dev/stdout"), ("/proc/self/fd/2", "/dev/stderr"),
    ("pts/ptmx", "/dev/ptmx"),
)
S_IFIFO, S_IFCHR, S_IFBLK = 0o010000, 0o020000, 0o060000
DEVICE_TYPES = {"c": S_IFCHR, "u": S_IFCHR, "b": S_IFBLK, "p": S_IFIFO}


def parse_options(options, where):
    """(flags, propagation, data) of a mount's options list."""
    flags = prop = 0
    data = []
    for opt in options or ():
        if opt in FLAGS:
            sets, flag = FLAGS[opt]
            flags = flags | flag if sets else flags & ~flag
        elif opt in PROPAGATION:
            prop |= PROPAGATION[opt]
        elif opt in EXTENSIONS or opt in mount_attrs.OPTIONS:
            pass   # tmpcopyup; recursive attributes and idmap (mount_attrs)
        else:
            data.append(opt)   # filesystem-specific, e.g. mode=755, size=64k
    return flags, prop, ",".join(data)


def _clean(dest):
    return "/" + os.path.normpath("/" + dest).lstrip("/")


def plan_mounts(plan, cfg, ctx):
    """Steps from the rootfs bind to the last config mount and /dev.

    ctx: .rootfs, .bundle, .userns (mknod is not possible), .cgroupns,
    .cgroup_mounts (see cgroups.Manager.mount_plan), .source (file name)."""
    linux = cfg.get("linux") or {}
    prop = _setup_propagation(linux)
    if prop is None:
        raise ConfigError(f"{ctx.source}: $.linux.rootfsPropagation: unknown propagation "
                          f"{linux['rootfsPropagation']!r}")
    # Shared propagation of / would leak our mounts to the host and break
    # pivot_root, and an unbindable / cannot be bound as the rootfs: those
    # two are given to the root only after pivot (REMOUNT_ROOT).
    setup_prop = MS_SLAVE | MS_REC if prop & _AFTER_PIVOT else prop
    plan.add("ROOTFS", ctx.rootfs, setup_prop)
    ctx.setup_prop = setup_prop   # for the trees the runtime copies (mount_attrs)
    sources = getattr(ctx, "source_index", {})
    dev_bound = False
    for i, m in enumerate(cfg.get("mounts") or ()):
        where = f"{ctx.source}: $.mounts[{i}]"
        dest = m.get("destination") or ""
        if not dest:
            raise ConfigError(f"{where}.destination: must not be empty")
        dest = _clean(dest)
        flags, mprop, data = parse_options(m.get("options"), f"{where}.options")
        mtype = m.get("type") or ""
        source = m.get("source") or ""
        if mtype == "bind":
            flags |= MS_BIND
        if flags & MS_BIND:
            if not os.path.isabs(source):
                source = os.path.join(ctx.bundle, source)
            try:
                kind = MOUNT_DIR if os.path.isdir(source) else MOUNT_FILE
                os.stat(source)
            except OSError as e:
                raise ConfigError(f"{where}.source: {source}: {e.strerror.lower()}") from None
            if dest == "/dev":
                dev_bound = True
            if mount_attrs.wants_idmap(m):
                mount_attrs.plan_idmapped(plan, m, source, dest, flags, kind, cfg, ctx, where)
            else:
                plan.add("MOUNT", source, dest, "", flags, "", mprop, kind, sources.get(i, -1))
        elif mtype in ("cgroup", "cgroup2"):
            _plan_cgroup_mount(plan, dest, flags, ctx)
        elif mtype == "sysfs" and getattr(ctx, "rootless", False) and not getattr(ctx, "netns_new", True):
            # Rootless without a network namespace of its own: the kernel
            # refuses a new sysfs, so the host's is bound, as runc does
            # (and kept read-only and nosuid/nodev/noexec as asked).
            plan.add("MOUNT", "/sys", dest, "", flags | MS_BIND | MS_REC, "", mprop, MOUNT_DIR)
        else:
            if not mtype:
                raise ConfigError(f"{where}.type: a mount that is not a bind needs a type")
            # tmpcopyup: the tmpfs starts with what the image has there
            # (as in runc, other types ignore it).
            kind = MOUNT_DIR | (MOUNT_COPYUP if mtype == "tmpfs" and "tmpcopyup" in (m.get("options") or ()) else 0)
            plan.add("MOUNT", source or mtype, dest, mtype, flags, data, mprop, kind)
        mount_attrs.plan_after(plan, dest, m, flags, where)
    if not dev_bound:
        _plan_devices(plan, linux.get("devices") or (), ctx)
    cwd = (cfg.get("process") or {}).get("cwd") or "/"
    if cwd.startswith("/") and _clean(cwd) != "/":
        plan.add("MKDIR", _clean(cwd), -1)   # like runc: make a missing cwd (mode -1: keep modes)


def _setup_propagation(linux):
    """The propagation of / while the mounts are made, or None.  Shared
    would leak our mounts to the host and break pivot_root: the root
    becomes shared only after pivot (REMOUNT_ROOT)."""
    prop = PROPAGATION.get(linux.get("rootfsPropagation") or "rslave")
    return prop if prop is None or not prop & MS_SHARED else MS_SLAVE | MS_REC


def plan_sources(plan, cfg, ctx, ns):
    """First in the plan: with a new user and mount namespace, the sources
    of bind mounts are opened by ociruntime-init with the runtime's
    credentials, in the container's mount namespace, and sent to the init
    (the container's root may not reach them: a 0700 host directory), as
    runc does.  ctx.source_index: mount index -> source index."""
    ctx.source_index = sources = {}
    if "user" not in ns.new or "mount" not in ns.new or ns.joined:
        return   # joined namespaces: the intermediate would have to send them
    if getattr(ctx, "rootless", False) and os.geteuid() != 0:
        # An unprivileged runtime may not enter the new mount namespace
        # (setns needs CAP_SYS_ADMIN in its own user namespace), and has
        # no more access than the container's root, which it maps: the
        # init opens the sources itself.
        return
    for i, m in enumerate(cfg.get("mounts") or ()):
        flags = parse_options(m.get("options"), "")[0]
        if m.get("type") == "bind":
            flags |= MS_BIND
        if not flags & MS_BIND or mount_attrs.wants_idmap(m):
            continue
        source = m.get("source") or ""
        if not os.path.isabs(source):
            source = os.path.join(ctx.bundle, source)
        sources[i] = len(sources)
        plan.add("OPEN_SOURCE", source)


def _plan_cgroup_mount(plan, dest, flags, ctx):
    """A `cgroup` mount shows the container its own cgroups: in a cgroup
    namespace a fresh cgroupfs per hierarchy, else binds of its cgroups."""
    ro = flags & MS_RDONLY
    sub = flags | MS_NOSUID | MS_NODEV | MS_NOEXEC
    layout = ctx.cgroup_mounts   # [(name, fstype, options, host path)]
    if len(layout) == 1 and layout[0][1] == "cgroup2":   # a pure v2 host
        _, fstype, options, host = layout[0]
        if ctx.cgroupns:
            plan.add("MOUNT", "cgroup2", dest, "cgroup2", sub, "", 0, MOUNT_DIR)
        else:
            plan.add("MOUNT", host, dest, "", sub | MS_BIND | MS_REC, "", 0, MOUNT_DIR)
        return
    plan.add("MOUNT", "tmpfs", dest, "tmpfs", (flags & ~MS_RDONLY) | MS_NOSUID | MS_NODEV | MS_NOEXEC,
             "mode=755", 0, MOUNT_DIR)
    for name, fstype, options, host in layout:
        target = f"{dest}/{name}"
        if ctx.cgroupns:
            plan.add("MOUNT", "cgroup", target, fstype, sub, options, 0, MOUNT_DIR)
        else:
            plan.add("MOUNT", host, target, "", sub | MS_BIND | MS_REC, "", 0, MOUNT_DIR)
        for ctrl in options.split(","):   # cpu,cpuacct -> links cpu, cpuacct
            if ctrl != name and "=" not in ctrl and ctrl in name.split(","):
                plan.add("SYMLINK", name, f"{dest}/{ctrl}")
    if ro:
        # As runc: the tmpfs itself becomes read-only once its hierarchies
        # are in. (A read-only recursive bind of dest would stack a copy of
        # the whole tree: every hierarchy twice in mountinfo.)
        plan.add("MOUNT", "tmpfs", dest, "tmpfs", flags | MS_REMOUNT | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                 "mode=755", 0, MOUNT_DIR)


def _plan_devices(plan, devices, ctx):
    listed = {_clean(d["path"]) for d in devices if d.get("path")}
    for path, major, minor in DEFAULT_DEVICES:
        if path not in listed:
            _plan_device(plan, path, S_IFCHR | 0o666, major, minor, 0, 0, ctx)
    for i, d in enumerate(devices):
        where = f"{ctx.source}: $.linux.devices[{i}]"
        kind = DEVICE_TYPES.get(d.get("type"))
        if kind is None:
            raise ConfigError(f"{where}.type: unknown device type {d.get('type')!r}")
        mode = d.get("fileMode")
        mode = 0o666 if mode is None else mode & 0o7777
        _plan_device(plan, _clean(d["path"]), kind | mode, d.get("major", 0), d.get("minor", 0),
                     d.get("uid", 0), d.get("gid", 0), ctx)
    for target, link in DEFAULT_SYMLINKS:
        plan.add("SYMLINK", target, link)
    if os.path.exists("/proc/kcore"):
        plan.add("SYMLINK", "/proc/kcore", "/dev/core")


def _plan_device(plan, path, mode, major, minor, uid, gid, ctx):
    if ctx.userns:   # mknod is EPERM in a user namespace: bind the host's
        plan.add("BIND_DEVICE", path, path, uid, gid)
    else:
        plan.add("MKNOD", path, mode, major, minor, uid, gid)


def plan_pivot(plan, ctx, no_pivot):
    plan.add("MOVE_ROOT" if no_pivot else "PIVOT_ROOT", ctx.rootfs)
    # stdio on the host's /dev/null -> the container's (runc's reOpenDevNull):
    # criu can checkpoint only files of the container's mounts
    plan.add("REOPEN_DEV_NULL")


def plan_sysctl(plan, cfg):
    for key, value in ((cfg.get("linux") or {}).get("sysctl") or {}).items():
        plan.add("WRITE_FILE", "/proc/sys/" + key.replace(".", "/"), str(value))


def plan_after_pivot(plan, cfg, ctx):
    """sysctl, then read-only and masked paths, then the root itself."""
    linux = cfg.get("linux") or {}
    plan_sysctl(plan, cfg)
    for key in ("readonlyPaths", "maskedPaths"):   # config-linux.md: MUST be absolute
        for i, path in enumerate(linux.get(key) or ()):
            if not path.startswith("/"):
                raise ConfigError(f"{ctx.source}: $.linux.{key}[{i}]: must be an absolute path, not {path!r}")
    for path in linux.get("readonlyPaths") or ():
        plan.add("READONLY_PATH", _clean(path))
    for path in linux.get("maskedPaths") or ():
        plan.add("MASK_PATH", _clean(path))
    flags = MS_RDONLY if (cfg.get("root") or {}).get("readonly") else 0
    prop = PROPAGATION.get(linux.get("rootfsPropagation") or "")
    if prop and prop & _AFTER_PIVOT:
        flags |= prop
    if flags:
        plan.add("REMOUNT_ROOT", flags)
