"""Mount options beyond mount(2): the recursive attributes (rro, rnosuid,
..., through mount_setattr(AT_RECURSIVE)) and idmapped mounts (idmap,
ridmap, with the mount's uidMappings/gidMappings).

Idmapped mounts are made by the runtime, as runc does: setting
MOUNT_ATTR_IDMAP needs CAP_SYS_ADMIN over the filesystem's user namespace
(the host's), which an init in a user namespace lacks.  The runtime makes a
user namespace with the mapping (a short-lived child's), clones the source
with open_tree(OPEN_TREE_CLONE), idmaps the detached copy, and the init
moves it into place with move_mount (OP_MOVE_MOUNT; it inherits the fd).
"""
from ociruntime.errors import ConfigError

MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
MOUNT_ATTR_NOEXEC = 0x8
MOUNT_ATTR__ATIME = 0x70
MOUNT_ATTR_RELATIME = 0x0
MOUNT_ATTR_NOATIME = 0x10
MOUNT_ATTR_STRICTATIME = 0x20
MOUNT_ATTR_NODIRATIME = 0x80
MOUNT_ATTR_IDMAP = 0x100000
MOUNT_ATTR_NOSYMFOLLOW = 0x200000

# option -> (attr_set, attr_clr).  The atime settings are one field, not
# bits: choosing one clears the whole field (mount_setattr(2)); those that
# only say "not X" fall back to the kernel's default, relatime.
RECURSIVE = {
    "rro": (MOUNT_ATTR_RDONLY, 0), "rrw": (0, MOUNT_ATTR_RDONLY),
    "rnosuid": (MOUNT_ATTR_NOSUID, 0), "rsuid": (0, MOUNT_ATTR_NOSUID),
    "rnodev": (MOUNT_ATTR_NODEV, 0), "rdev": (0, MOUNT_ATTR_NODEV),
    "rnoexec": (MOUNT_ATTR_NOEXEC, 0), "rexec": (0, MOUNT_ATTR_NOEXEC),
    "rnodiratime": (MOUNT_ATTR_NODIRATIME, 0), "rdiratime": (0, MOUNT_ATTR_NODIRATIME),
    "rnosymfollow": (MOUNT_ATTR_NOSYMFOLLOW, 0), "rsymfollow": (0, MOUNT_ATTR_NOSYMFOLLOW),
    "rrelatime": (MOUNT_ATTR_RELATIME, MOUNT_ATTR__ATIME),
    "rnorelatime": (MOUNT_ATTR_STRICTATIME, MOUNT_ATTR__ATIME),
    "rnoatime": (MOUNT_ATTR_NOATIME, MOUNT_ATTR__ATIME),
    "ratime": (MOUNT_ATTR_RELATIME, MOUNT_ATTR__ATIME),
    "rstrictatime": (MOUNT_ATTR_STRICTATIME, MOUNT_ATTR__ATIME),
    "rnostrictatime": (MOUNT_ATTR_RELATIME, MOUNT_ATTR__ATIME),
}
IDMAP = ("idmap", "ridmap")
OPTIONS = frozenset(RECURSIVE) | frozenset(IDMAP)

# mount(2) flags -> mount_setattr attributes, for an idmapped bind's own
# options (it never goes through mount(2)).
_MS_TO_ATTR = ((1, MOUNT_ATTR_RDONLY), (2, MOUNT_ATTR_NOSUID), (4, MOUNT_ATTR_NODEV),
               (8, MOUNT_ATTR_NOEXEC), (256, MOUNT_ATTR_NOSYMFOLLOW), (2048, MOUNT_ATTR_NODIRATIME))
MS_NOATIME, MS_STRICTATIME, MS_RELATIME = 1024, 1 << 24, 1 << 21


# A plain option after an r* one of the same attribute has the last word
# (mount(8) reads left to right): it takes that attribute out of the
# recursive change, which would otherwise be applied after it.
_PLAIN = {MOUNT_ATTR_RDONLY: ("ro", "rw"), MOUNT_ATTR_NOSUID: ("nosuid", "suid"),
          MOUNT_ATTR_NODEV: ("nodev", "dev"), MOUNT_ATTR_NOEXEC: ("noexec", "exec"),
          MOUNT_ATTR_NODIRATIME: ("nodiratime", "diratime"),
          MOUNT_ATTR_NOSYMFOLLOW: ("nosymfollow", "symfollow"),
          MOUNT_ATTR__ATIME: ("atime", "noatime", "relatime", "norelatime", "strictatime", "nostrictatime")}
_PLAIN_ATTR = {name: attr for attr, names in _PLAIN.items() for name in names}


def recursive_attrs(options):
    """(attr_set, attr_clr) of the r* options, in order: later ones win."""
    aset = aclr = 0
    for opt in options or ():
        if opt in _PLAIN_ATTR:
            attr = _PLAIN_ATTR[opt]
            aset, aclr = aset & ~attr, aclr & ~attr
        elif opt in RECURSIVE:
            s, c = RECURSIVE[opt]
            if c & MOUNT_ATTR__ATIME:
                aset &= ~MOUNT_ATTR__ATIME
            aset = (aset & ~c) | s
            aclr = (aclr & ~s) | c
    return aset, aclr


def plan_after(plan, dest, m, flags, where):
    """After a config mount's own steps: its recursive attributes."""
    if not flags & 4096 and wants_idmap(m):   # MS_BIND
        raise ConfigError(f"{where}.options: idmap and ridmap are for bind mounts only")
    aset, aclr = recursive_attrs(m.get("options"))
    if aset or aclr:
        plan.add("MOUNT_SETATTR", dest, aset, aclr, 1)


def _map_text(entries):
    return "".join(f"{m['containerID']} {m['hostID']} {m['size']}\n" for m in entries)


def wants_idmap(m):
    opts = m.get("options") or ()
    return any(o in IDMAP for o in opts) or bool(m.get("uidMappings") or m.get("gidMappings"))


def plan_idmapped(plan, m, source, dest, flags, kind, cfg, ctx, where):
    """An idmapped bind: the runtime makes the tree now (the fd is passed
    to the init and closed after spawn: ctx.spawn_fds)."""
    from ociruntime import core
    from ociruntime._core import lib
    opts = m.get("options") or ()
    uids, gids = m.get("uidMappings"), m.get("gidMappings")
    if bool(uids) != bool(gids):
        raise ConfigError(f"{where}: uidMappings and gidMappings go together")
    if not uids:
        linux = cfg.get("linux") or {}
        if not ctx.userns or not linux.get("uidMappings"):
            raise ConfigError(f"{where}.options: an idmapped mount needs uidMappings and gidMappings, "
                              "or a user namespace whose mappings it takes")
        uids, gids = linux["uidMappings"], linux.get("gidMappings") or []
    if not flags & 4096:   # MS_BIND
        raise ConfigError(f"{where}.options: idmap and ridmap are for bind mounts only")
    aset = 0
    for ms, attr in _MS_TO_ATTR:
        if flags & ms:
            aset |= attr
    aclr = 0
    for ms, attr in ((MS_NOATIME, MOUNT_ATTR_NOATIME), (MS_STRICTATIME, MOUNT_ATTR_STRICTATIME)):
        if flags & ms:
            aset, aclr = aset | attr, MOUNT_ATTR__ATIME
    ridmap = "ridmap" in opts
    if getattr(ctx, "dry", False):   # `validate`: checked, nothing made
        plan.add("MOVE_MOUNT", -1, dest, kind)
        return
    userns = lib.oci_userns_fd(_map_text(uids).encode(), _map_text(gids).encode())
    if userns < 0:
        raise ConfigError(f"{where}: make the user namespace of its mapping: {core.strerror(-userns)}")
    import os
    try:   # rbind clones the submounts too; ridmap maps them as well
        tree = lib.oci_open_tree(source.encode(), 1 if flags & 16384 else 0, 1 if ridmap else 0,
                                 aset, aclr, userns)
    finally:
        os.close(userns)
    if tree < 0:
        raise ConfigError(f"{where}: idmapped mount of {source}: {core.strerror(-tree)}")
    ctx.spawn_fds.append(tree)
    plan.add("MOVE_MOUNT", tree, dest, kind, ctx.setup_prop)   # slave like the init's mounts

