"""`ociruntime features`: what this runtime implements, as the JSON of the
runtime-spec's features.md and features-linux.md.

It lists only what really works, and it is read from the code that does
the work rather than written down twice, so it grows as features land:

- namespaces: the keys of namespaces.NAMESPACES;
- capabilities: capabilities.CAPABILITIES;
- mountOptions: every option of config.md's table that mounts.parse_options
  turns into a mount flag or a propagation (an option it refuses, or would
  hand to the filesystem as data, is not "recognized");
- mountExtensions.idmap: whether parse_options accepts `idmap`;
- hooks: ociruntime.hooks.HOOK_NAMES (or HOOKS/NAMES), once that module
  runs hooks ([] until);
- seccomp: the names ociruntime.seccomp accepts (ACTIONS, OPERATORS, ARCHES,
  FLAGS; SUPPORTED_FLAGS if it narrows them), or its features() if it has
  one; {"enabled": false} while there is no such module;
- cgroup: ociruntime.cgroups.FEATURES if the cgroup code declares it, else
  what the foundation does: cgroupfs on v1 (and hybrid) hosts.

- annotations: org.ociruntime.checkpoint.enabled is "true" where criu
  is installed (runc's features has no field for checkpoint/restore).

Intel RDT is not implemented, and AppArmor/SELinux labels (ociruntime.lsm)
are untested for want of a host with either: they are reported as
disabled, not left out, so a caller can tell "no" from "does not say".  The spec wants this fixed at build time; nothing here
looks at the host but whether criu is installed.
"""
import importlib
import json

from ociruntime import SPEC_VERSION, __version__

OCI_VERSION_MIN = "1.0.0"

# config.md's table of mount options (runtime-spec 1.3), the candidates.
SPEC_MOUNT_OPTIONS = (
    "async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec",
    "iversion", "lazytime", "loud", "mand", "noatime", "nodev", "nodiratime",
    "noexec", "noiversion", "nolazytime", "nomand", "norelatime", "nostrictatime",
    "nosuid", "nosymfollow", "private", "ratime", "rbind", "rdev", "rdiratime",
    "relatime", "remount", "rexec", "rnoatime", "rnodiratime", "rnoexec",
    "rnorelatime", "rnostrictatime", "rnosuid", "rnosymfollow", "ro", "rprivate",
    "rrelatime", "rro", "rrw", "rshared", "rslave", "rstrictatime", "rsuid",
    "rsymfollow", "runbindable", "rw", "shared", "silent", "slave", "strictatime",
    "suid", "symfollow", "sync", "tmpcopyup", "unbindable", "idmap", "ridmap",
    "rnodev",   # not in config.md's table, but runc and the issue have it
)
HOOK_ORDER = ("prestart", "createRuntime", "createContainer", "startContainer",
              "poststart", "poststop")
# What the foundation's cgroup code does (cgroups.FEATURES overrides it).
DEFAULT_CGROUP = {"v1": True, "v2": False, "systemd": False, "systemdUser": False, "rdma": False}


def _module(name):
    """ociruntime.<name>, or None while it has not landed."""
    try:
        return importlib.import_module("ociruntime." + name)
    except ModuleNotFoundError as e:
        if e.name != "ociruntime." + name:
            raise   # it exists but is broken: say so, do not hide it
        return None


def _recognized(option):
    """Whether parse_options takes `option` as a flag or propagation of its own
    (not as filesystem data, and without refusing it)."""
    from ociruntime import mounts
    from ociruntime.errors import ConfigError
    try:
        _flags, _prop, data = mounts.parse_options([option], "features")
    except ConfigError:
        return False
    return data == ""


def mount_options():
    return sorted(o for o in SPEC_MOUNT_OPTIONS if _recognized(o))


def hooks():
    mod = _module("hooks")
    names = set()
    for attr in ("HOOK_NAMES", "HOOKS", "NAMES"):
        names.update(getattr(mod, attr, ()) or ())
    return [h for h in HOOK_ORDER if h in names]


def seccomp():
    """From the tables ociruntime.seccomp checks config names against."""
    mod = _module("seccomp")
    if mod is None:
        return {"enabled": False}
    if hasattr(mod, "features"):
        return mod.features()
    known = sorted(mod.FLAGS)
    return {
        "enabled": True,
        "actions": sorted(mod.ACTIONS),
        "operators": sorted(mod.OPERATORS),
        "archs": sorted(mod.ARCHES),
        "knownFlags": known,
        "supportedFlags": sorted(getattr(mod, "SUPPORTED_FLAGS", known)),
    }


def memory_policy():
    from ociruntime import process_attrs
    return {"modes": sorted(process_attrs.MPOL_MODES), "flags": sorted(process_attrs.MPOL_FLAGS)}


def cgroup():
    from ociruntime import cgroups
    return dict(getattr(cgroups, "FEATURES", None) or DEFAULT_CGROUP)


def features():
    """The Features structure, as a dict."""
    from ociruntime import criu
    from ociruntime.capabilities import CAPABILITIES
    from ociruntime.namespaces import NAMESPACES
    return {
        "ociVersionMin": OCI_VERSION_MIN,
        "ociVersionMax": SPEC_VERSION,
        "hooks": hooks(),
        "mountOptions": mount_options(),
        "linux": {
            "namespaces": sorted(NAMESPACES),
            "capabilities": list(CAPABILITIES),
            "cgroup": cgroup(),
            "seccomp": seccomp(),
            "apparmor": {"enabled": False},
            "selinux": {"enabled": False},
            "intelRdt": {"enabled": False},
            "mountExtensions": {"idmap": {"enabled": _recognized("idmap")}},
            "netDevices": {"enabled": True},   # ociruntime.netdev
            "memoryPolicy": memory_policy(),
        },
        "annotations": {
            "org.ociruntime.version": __version__,
            # checkpoint/restore (ociruntime/checkpoint.py) run criu: said
            # only where it is installed (whether it works is criu's to say)
            "org.ociruntime.checkpoint.enabled": "true" if criu.find() else "false",
            # --rootless (ociruntime/rootless.py): cgroups only where delegated
            "org.ociruntime.rootless.enabled": "true",
            "org.ociruntime.rootless.cgroups": "delegated-only",
            "org.ociruntime.rootless.idmapHelpers": "newuidmap,newgidmap",
        },
        "potentiallyUnsafeConfigAnnotations": [],
    }


def main():
    print(json.dumps(features(), indent=4))
