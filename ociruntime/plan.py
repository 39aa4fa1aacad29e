"""The plan: what the C core's container init does, step by step.

Python decides everything (which namespaces, which mounts in which order,
which ids and capabilities); csrc/ carries the steps out after clone.  A
plan is encoded as csrc/core.h describes: per step a u32 opcode, a u32
argument count, then each argument as an int64 or a NUL-terminated string.
"""
# The same order as enum oci_op in csrc/core.h (tests/test_plan.py checks).
OPS = (
    "SETNS", "CLONE", "UNSHARE", "SYNC_HELLO", "SETID_ROOT", "SETHOSTNAME",
    "SETDOMAINNAME", "ROOTFS", "MOUNT", "MKNOD", "BIND_DEVICE", "SYMLINK",
    "MKDIR", "PIVOT_ROOT", "MOVE_ROOT", "WRITE_FILE", "READONLY_PATH",
    "MASK_PATH", "REMOUNT_ROOT", "SETRLIMIT", "CAPBSET", "SETGROUPS",
    "SETUSER", "CAPS", "UMASK", "NO_NEW_PRIVS", "CHDIR", "FIND_EXEC",
    "SYNC_READY", "WAIT_START", "CLOSE_FDS", "EXEC", "SET_DUMPABLE", "SETSID",
    "CLOSE", "SETUP_TERMINAL",
    "SECCOMP", "SECCOMP_RULE", "SECCOMP_EXPORT", "SECCOMP_LOAD",
    "SYNC_HOOKS", "HOOK", "REPORT_FD", "MOUNT_SETATTR", "MOVE_MOUNT", "SCHED",
    "IOPRIO", "PERSONALITY", "MEMPOLICY", "AFFINITY", "LO_UP", "JOIN_CGROUP",
    "SESSION_KEYRING", "OPEN_SOURCE", "CHROOT", "SECCOMP_BPF", "SECCOMP_SAVE",
    "REOPEN_DEV_NULL", "SECCOMP_CACHE",
)
OP = {name: number for number, name in enumerate(OPS, 1)}

# Mount kinds (enum oci_mount_kind): what to create at a missing destination.
MOUNT_DIR, MOUNT_FILE = 0, 1
MOUNT_COPYUP = 4   # OR'ed into the kind: tmpcopyup (csrc/core.h)

# int.to_bytes rather than the struct module, which would add to every
# create's peak RSS (see core.py).
_INT = (0).to_bytes(4, "little")   # kind 0: an int64 follows
_STR = (1).to_bytes(4, "little")   # kind 1: u32 length, bytes, NUL
_U64 = (1 << 64) - 1


class Plan:
    """An ordered list of steps, encoded as they are added."""

    def __init__(self):
        self._chunks = []
        self.steps = []     # (name, args), for debugging and tests

    def add(self, name, *args):
        chunks = self._chunks
        chunks.append(OP[name].to_bytes(4, "little") + len(args).to_bytes(4, "little"))
        for a in args:
            if isinstance(a, int):
                # Unsigned 64-bit values (capability masks, RLIM_INFINITY)
                # travel as their two's-complement int64.
                if not -(1 << 63) <= a <= _U64:
                    raise ValueError(f"{name} argument {a} does not fit in 64 bits")
                chunks.append(_INT + (a & _U64).to_bytes(8, "little"))
            else:
                # surrogateescape: bytes of the command line that are not
                # UTF-8 (exec's args, -e, --cwd) reach the process as they
                # came, as in runc.  A config's strings are checked whole
                # before (config.check_strings).
                b = a.encode(errors="surrogateescape") if isinstance(a, str) else a
                if b"\0" in b:
                    raise ValueError(f"NUL byte in {name} argument {a!r}")
                chunks.append(_STR + len(b).to_bytes(4, "little") + b + b"\0")
        self.steps.append((name, args))
        return self

    def encode(self):
        return b"".join(self._chunks)
