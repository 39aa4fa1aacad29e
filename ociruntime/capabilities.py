"""Capability names to numbers (linux/capability.h)."""
from ociruntime.errors import ConfigError

CAPABILITIES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER",
    "CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
    "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD",
    "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
)
CAP_NUMBER = {name: n for n, name in enumerate(CAPABILITIES)}

SETS = ("bounding", "effective", "permitted", "inheritable", "ambient")


def mask(names, where):
    """The bit mask of a list of capability names.  A name we cannot map
    is an error: the spec says such a value MUST fail."""
    m = 0
    for i, name in enumerate(names or ()):
        m |= 1 << number(name, f"{where}[{i}]")
    return m


def number(name, where):
    n = CAP_NUMBER.get(name)
    if n is None:
        raise ConfigError(f"{where}: unknown capability {name!r}")
    return n


def masks(caps, where):
    """{set name: mask} for process.capabilities (absent sets are empty)."""
    caps = caps or {}
    return {s: mask(caps.get(s), f"{where}.{s}") for s in SETS}
