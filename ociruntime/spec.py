"""The example config.json that `ociruntime spec` writes.

It mirrors `runc spec` (and `runc spec --rootless`) of the runc that
Debian 12 ships (1.1.5) key for key and in runc's key order, so the file it
writes differs from runc's only in ociVersion; tests/test_spec.py checks that
against the installed runc. Only json and os are imported: this is on a CLI path.
"""

import json
import os

from ociruntime import SPEC_VERSION
from ociruntime.errors import OciError

_CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]


def _mount(dest, typ, src, *options):
    m = {"destination": dest, "type": typ, "source": src}
    if options:
        m["options"] = list(options)
    return m


def _cgroup2_unified():
    # runc adds a cgroup namespace only on a pure cgroup v2 host; there the
    # root of /sys/fs/cgroup is cgroup2 and carries cgroup.controllers
    # (on v1 and hybrid hosts it is a tmpfs without it).
    return os.path.exists("/sys/fs/cgroup/cgroup.controllers")


def default_spec(rootless=False):
    """Return runc's example spec as a dict (rootless: runc's ToRootless of it)."""
    namespaces = ["pid", "network", "ipc", "uts", "mount"]
    if _cgroup2_unified():
        namespaces.append("cgroup")
    devpts = ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]
    if rootless:
        sysfs = _mount("/sys", "none", "/sys", "rbind", "nosuid", "noexec", "nodev", "ro")
    else:
        devpts.append("gid=5")  # tty group; a user namespace has no gid 5 mapped
        sysfs = _mount("/sys", "sysfs", "sysfs", "nosuid", "noexec", "nodev", "ro")

    linux = {}
    if rootless:
        # One-to-one maps of the caller: all an unprivileged user may write.
        linux["uidMappings"] = [{"containerID": 0, "hostID": os.geteuid(), "size": 1}]
        linux["gidMappings"] = [{"containerID": 0, "hostID": os.getegid(), "size": 1}]
        namespaces = [ns for ns in namespaces if ns != "network"] + ["user"]
    else:
        # Rootless containers cannot be given cgroup settings, so runc drops them.
        linux["resources"] = {"devices": [{"allow": False, "access": "rwm"}]}
    linux["namespaces"] = [{"type": ns} for ns in namespaces]
    linux["maskedPaths"] = [
        "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
        "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
        "/proc/sched_debug", "/sys/firmware", "/proc/scsi",
    ]
    linux["readonlyPaths"] = [
        "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
    ]

    return {
        "ociVersion": SPEC_VERSION,
        "process": {
            "terminal": True,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm",
            ],
            "cwd": "/",
            "capabilities": {
                s: list(_CAPS) for s in ("bounding", "effective", "permitted", "ambient")
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "runc",
        "mounts": [
            _mount("/proc", "proc", "proc"),
            _mount("/dev", "tmpfs", "tmpfs", "nosuid", "strictatime", "mode=755", "size=65536k"),
            _mount("/dev/pts", "devpts", "devpts", *devpts),
            _mount("/dev/shm", "tmpfs", "shm", "nosuid", "noexec", "nodev", "mode=1777", "size=65536k"),
            _mount("/dev/mqueue", "mqueue", "mqueue", "nosuid", "noexec", "nodev"),
            sysfs,
            _mount("/sys/fs/cgroup", "cgroup", "cgroup", "nosuid", "noexec", "nodev", "relatime", "ro"),
        ],
        "linux": linux,
    }


def write_spec(bundle_dir, rootless=False):
    """Write default_spec() to bundle_dir/config.json, never over an existing one."""
    path = os.path.join(bundle_dir, "config.json")
    # Same text as runc: tab indent, no trailing newline.
    data = json.dumps(default_spec(rootless), indent="\t").encode()
    try:
        # O_EXCL makes the existence check and the create one step.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
        with open(fd, "wb") as f:
            f.write(data)
    except FileExistsError:
        raise OciError("File config.json exists. Remove it first") from None
    except OSError as e:
        raise OciError(f"{path}: {e.strerror}") from None
