"""Rootless mode: a user without root runs containers, as with runc.

`--rootless true|false|auto` (auto, the default: euid is not 0, or we
are in a user namespace that does not map the host's root).  In rootless
mode:

- the default --root is $XDG_RUNTIME_DIR/ociruntime, else a private
  /tmp/ociruntime-UID (0700, ours, not a link), as runc's $XDG_RUNTIME_DIR/runc;
- cgroups are best effort (cgroups.Manager.drop_unwritable): a hierarchy
  where we cannot make the container's directory is left out, and a limit
  that needs it is an error naming the limit (runc's "cannot set ... limit:
  container could not join or create cgroup");
- the id maps: one line mapping our own uid (gid) is written directly, with
  setgroups denied first (the kernel's rule for an unprivileged writer);
  anything more goes through the setuid helpers newuidmap/newgidmap, which
  check it against /etc/subuid and /etc/subgid (as crun does).

Imported only by the commands that need it; `enabled` costs a geteuid and,
for root, a read of /proc/self/uid_map.
"""
import os

from ociruntime.errors import ConfigError, OciError

HELPERS = {"uid_map": "newuidmap", "gid_map": "newgidmap"}


def enabled(flag=None):
    """What --rootless says: 'true', 'false', or 'auto'/None (detect)."""
    if flag in (None, "", "auto"):
        return os.geteuid() != 0 or not _maps_host_root()
    if flag in ("true", "1"):
        return True
    if flag in ("false", "0"):
        return False
    raise OciError(f"--rootless: {flag!r} is not true, false or auto")


def _maps_host_root():
    """Whether uid 0 here is the host's root: the initial user namespace
    maps all of 0..2^32-2 to itself; a user namespace maps less.  (A
    nested namespace's map names its parent's ids, so a map of 0 to 0 is
    taken to be root's.)"""
    try:
        with open("/proc/self/uid_map") as f:
            lines = [line.split() for line in f]
    except OSError:
        return True
    return any(len(w) == 3 and w[0] == "0" and w[1] == "0" for w in lines)


def default_root():
    """$XDG_RUNTIME_DIR/ociruntime, or /tmp/ociruntime-UID where that is not
    set; made 0700 if missing.  An existing one must be ours and not a
    link: another user could otherwise pre-make it and read our state."""
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg and os.path.isabs(xdg):
        root = os.path.join(xdg, "ociruntime")
    else:
        root = f"/tmp/ociruntime-{os.geteuid()}"
    try:
        os.mkdir(root, 0o700)
    except FileExistsError:
        pass
    except FileNotFoundError:
        raise OciError(f"{os.path.dirname(root)}: no such directory "
                       "(set XDG_RUNTIME_DIR to a directory of yours, or use --root)") from None
    except PermissionError:
        raise OciError(f"permission denied: {root}: set XDG_RUNTIME_DIR to a directory "
                       "of yours, or use --root") from None
    st = os.lstat(root)
    if not os.path.isdir(root) or os.path.islink(root) or st.st_uid != os.geteuid():
        raise OciError(f"{root}: not a directory owned by uid {os.geteuid()}: use --root")
    return root


# -- id maps -------------------------------------------------------------------

def _own_only(maps, own):
    return len(maps) == 1 and maps[0]["hostID"] == own and maps[0]["size"] == 1


def check_config(cfg, ns, source):
    """What a rootless create cannot do, refused before anything is made."""
    linux = cfg.get("linux") or {}
    if os.geteuid() == 0:
        return   # root of a user namespace (rootless podman's): it may map its ids
    if "user" not in ns.new:
        if "user" in ns.joined:
            return   # a namespace we own already: its maps are set
        raise ConfigError(f"{source}: $.linux.namespaces: a rootless container needs a new "
                          "user namespace (ociruntime spec --rootless writes one)")
    for key, name in (("uidMappings", "uid_map"), ("gidMappings", "gid_map")):
        own = os.geteuid() if name == "uid_map" else os.getegid()
        if not _own_only(linux.get(key) or (), own) and not _helper(name):
            raise ConfigError(f"{source}: $.linux.{key}: mapping more than your own id "
                              f"({own}) needs {HELPERS[name]} (package uidmap) and "
                              f"entries in /etc/sub{name[:3]}")
    gids = ((cfg.get("process") or {}).get("user") or {}).get("additionalGids")
    if gids and setgroups_denied(cfg):
        raise ConfigError(f"{source}: $.process.user.additionalGids: a rootless container whose "
                          "gid mapping is only your own gid cannot set groups (the kernel denies "
                          "setgroups; map more gids through /etc/subgid and newgidmap)")


def setgroups_denied(cfg):
    """True when the gid map is written by us, without newgidmap: the
    kernel then wants setgroups denied in the namespace."""
    if os.geteuid() == 0:
        return False
    maps = (cfg.get("linux") or {}).get("gidMappings") or ()
    return _own_only(maps, os.getegid()) or not _helper("gid_map")


def _helper(name):
    for d in ("/usr/bin", "/bin", "/usr/local/bin", "/usr/sbin"):
        path = os.path.join(d, HELPERS[name])
        if os.access(path, os.X_OK):
            return path
    return None


def write_maps(pid, linux, write_proc):
    """Write the init's uid and gid maps.  write_proc(pid, file, text,
    field) writes one /proc file (container._write_proc)."""
    for name, key in (("uid_map", "uidMappings"), ("gid_map", "gidMappings")):
        maps = linux.get(key) or ()
        if not maps:
            continue
        if os.geteuid() == 0:   # root of a user namespace: like root
            lines = "".join(f"{m['containerID']} {m['hostID']} {m['size']}\n" for m in maps)
            write_proc(pid, name, lines, f"linux.{key}")
            continue
        own = os.geteuid() if name == "uid_map" else os.getegid()
        if _own_only(maps, own):
            if name == "gid_map":
                write_proc(pid, "setgroups", "deny", f"linux.{key}")
            write_proc(pid, name, f"{maps[0]['containerID']} {own} 1\n", f"linux.{key}")
        else:
            _run_helper(pid, name, maps, f"linux.{key}")


def _run_helper(pid, name, maps, field):
    import subprocess
    helper = _helper(name)
    if helper is None:
        raise OciError(f"{field}: {HELPERS[name]} not found: install the uidmap package")
    args = [helper, str(pid)]
    for m in maps:
        args += [str(m["containerID"]), str(m["hostID"]), str(m["size"])]
    r = subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if r.returncode != 0:
        why = (r.stderr.strip().splitlines() or [f"exit status {r.returncode}"])[-1]
        raise OciError(f"{field}: {HELPERS[name]} refused the mapping ({why}): check "
                       f"/etc/sub{name[:3]} for uid {os.geteuid()}")
