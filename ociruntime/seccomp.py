"""linux.seccomp: validate the config and compile it into plan steps.

Imported only when a config has linux.seccomp.  Python checks the names
(actions, architectures, flags, operators) and encodes numbers; the C core
(csrc/seccomp.c) builds the filter with libseccomp before the init reports
ready, so a bad filter fails `create`, and loads it with one seccomp(2)
call as late as possible:

* noNewPrivileges, or CAP_SYS_ADMIN kept in the effective set: right
  before exec, after `start` (phase "exec");
* otherwise loading needs CAP_SYS_ADMIN, which the process is about to
  lose: after the user changed, the cwd was entered, the executable found
  and the fds marked close-on-exec, right before the capabilities are set
  (phase "identity"; the C core raises CAP_SYS_ADMIN from the permitted
  set for the load).  runc loads it earlier, before the user changes.

After the filter the init makes only calls runc makes after its own
(capset, prctl, read/write/close of its pipes, execve; issue 12.3), so a
classic allow-list without openat2, getcwd, close_range or umask works
(tests/test_seccomp_order.py).

Both `create` and `exec` use add_seccomp_step() at the two points of their
plan, with the listener socket from open_listener() when the filter has
SCMP_ACT_NOTIFY.  Unknown syscall names are skipped, as runc does.
"""
import json
import os

from ociruntime import SPEC_VERSION
from ociruntime.errors import ConfigError, OciError

EPERM = 1

# libseccomp's SCMP_ACT_* values (seccomp.h); ERRNO/TRACE take an errno.
_ACT_ERRNO, _ACT_TRACE = 0x00050000, 0x7FF00000
ACTIONS = {
    "SCMP_ACT_KILL": 0x00000000, "SCMP_ACT_KILL_THREAD": 0x00000000,
    "SCMP_ACT_KILL_PROCESS": 0x80000000, "SCMP_ACT_TRAP": 0x00030000,
    "SCMP_ACT_ERRNO": _ACT_ERRNO, "SCMP_ACT_TRACE": _ACT_TRACE,
    "SCMP_ACT_ALLOW": 0x7FFF0000, "SCMP_ACT_LOG": 0x7FFC0000,
    "SCMP_ACT_NOTIFY": 0x7FC00000,
}
_TAKES_ERRNO = {"SCMP_ACT_ERRNO", "SCMP_ACT_TRACE"}

# The spec's architectures -> libseccomp's names (seccomp_arch_resolve_name).
# One this libseccomp does not know is skipped by the C side: it cannot run
# here anyway, and the filter's bad-arch action kills it.
ARCHES = {
    "SCMP_ARCH_X86": "x86", "SCMP_ARCH_X86_64": "x86_64", "SCMP_ARCH_X32": "x32",
    "SCMP_ARCH_ARM": "arm", "SCMP_ARCH_AARCH64": "aarch64", "SCMP_ARCH_MIPS": "mips",
    "SCMP_ARCH_MIPS64": "mips64", "SCMP_ARCH_MIPS64N32": "mips64n32",
    "SCMP_ARCH_MIPSEL": "mipsel", "SCMP_ARCH_MIPSEL64": "mipsel64",
    "SCMP_ARCH_MIPSEL64N32": "mipsel64n32", "SCMP_ARCH_PPC": "ppc",
    "SCMP_ARCH_PPC64": "ppc64", "SCMP_ARCH_PPC64LE": "ppc64le", "SCMP_ARCH_S390": "s390",
    "SCMP_ARCH_S390X": "s390x", "SCMP_ARCH_PARISC": "parisc", "SCMP_ARCH_PARISC64": "parisc64",
    "SCMP_ARCH_RISCV64": "riscv64", "SCMP_ARCH_LOONGARCH64": "loongarch64",
    "SCMP_ARCH_M68K": "m68k", "SCMP_ARCH_SH": "sh", "SCMP_ARCH_SHEB": "sheb",
}

# seccomp(2) filter flags (linux/seccomp.h).
FLAG_TSYNC, FLAG_LOG, FLAG_SPEC_ALLOW = 1, 2, 4
FLAG_NEW_LISTENER, FLAG_WAIT_KILLABLE_RECV = 8, 32
FLAGS = {
    "SECCOMP_FILTER_FLAG_TSYNC": FLAG_TSYNC,
    "SECCOMP_FILTER_FLAG_LOG": FLAG_LOG,
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": FLAG_SPEC_ALLOW,
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV": FLAG_WAIT_KILLABLE_RECV,
}

OPERATORS = {
    "SCMP_CMP_NE": 1, "SCMP_CMP_LT": 2, "SCMP_CMP_LE": 3, "SCMP_CMP_EQ": 4,
    "SCMP_CMP_GE": 5, "SCMP_CMP_GT": 6, "SCMP_CMP_MASKED_EQ": 7,
}

# The init itself makes these calls after loading a filter with a
# listener: a notification on them would wait for an agent that has not
# got the fd yet (runc refuses SCMP_ACT_NOTIFY on its `write` likewise).
_NO_NOTIFY = {"sendmsg"}

_MAX_NAMES_PER_STEP = 2000   # names per SECCOMP_RULE step: the plan stays in small steps
_U64 = (1 << 64) - 1


class Filter:
    """A validated linux.seccomp: the numbers the plan steps carry."""

    def __init__(self, sc, source):
        where = f"{source}: $.linux.seccomp"
        if not isinstance(sc, dict):
            raise ConfigError(f"{where}: must be an object")
        self.source = source
        self.default = _action(sc.get("defaultAction"), sc.get("defaultErrnoRet"),
                               f"{where}.defaultAction", f"{where}.defaultErrnoRet")
        if sc.get("defaultAction") == "SCMP_ACT_NOTIFY":
            raise ConfigError(f"{where}.defaultAction: SCMP_ACT_NOTIFY cannot be the default action")
        self.arches = []
        for i, a in enumerate(_list(sc, "architectures", where)):
            if a not in ARCHES:
                raise ConfigError(f"{where}.architectures[{i}]: unknown architecture {a!r}")
            if ARCHES[a] not in self.arches:
                self.arches.append(ARCHES[a])
        flags = 0
        for i, f in enumerate(_list(sc, "flags", where)):
            if f not in FLAGS:
                raise ConfigError(f"{where}.flags[{i}]: unknown flag {f!r}")
            flags |= FLAGS[f]
        self.rules = []       # (action, [(index, op, value, value2)], [names])
        self.notify = False
        for i, rule in enumerate(_list(sc, "syscalls", where)):
            w = f"{where}.syscalls[{i}]"
            if not isinstance(rule, dict):
                raise ConfigError(f"{w}: must be an object")
            names = rule.get("names")
            if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
                raise ConfigError(f"{w}.names: must list at least one syscall name")
            act = _action(rule.get("action"), rule.get("errnoRet"), f"{w}.action", f"{w}.errnoRet")
            if rule.get("action") == "SCMP_ACT_NOTIFY":
                self.notify = True
                bad = _NO_NOTIFY.intersection(names)
                if bad:
                    raise ConfigError(f"{w}.names: SCMP_ACT_NOTIFY cannot be used for {sorted(bad)[0]}: "
                                      "the runtime needs it to hand over the notify fd")
            conds = []
            for j, arg in enumerate(_list(rule, "args", w)):
                conds.append(_condition(arg, f"{w}.args[{j}]"))
            if act == self.default:
                continue   # libseccomp refuses a rule that does what the default does (runc skips it)
            self.rules.append((act, conds, names))
        self.listener_path = sc.get("listenerPath") or ""
        self.metadata = sc.get("listenerMetadata")
        if self.metadata and not self.listener_path:
            raise ConfigError(f"{where}.listenerMetadata: must not be set without listenerPath")
        if self.notify:
            if not self.listener_path:
                raise ConfigError(f"{where}.listenerPath: SCMP_ACT_NOTIFY needs a listener socket")
            # One thread: TSYNC has nothing to sync, and the kernel
            # refuses it together with a listener.
            flags = (flags & ~FLAG_TSYNC) | FLAG_NEW_LISTENER
        else:
            # Only meaningful with a listener; the kernel refuses it alone.
            flags &= ~FLAG_WAIT_KILLABLE_RECV
        self.flags = flags

    def load_early(self, proc):
        """True when the filter must be loaded before the identity change:
        without no_new_privs, seccomp(2) needs CAP_SYS_ADMIN."""
        if proc.get("noNewPrivileges"):
            return False
        eff = (proc.get("capabilities") or {}).get("effective") or ()
        return "CAP_SYS_ADMIN" not in eff

    def add_build(self, plan):
        plan.add("SECCOMP", self.default, self.flags, len(self.arches), *self.arches)
        for act, conds, names in self.rules:
            flat = [v for c in conds for v in c]
            for k in range(0, len(names), _MAX_NAMES_PER_STEP):
                plan.add("SECCOMP_RULE", act, len(conds), *flat, *names[k:k + _MAX_NAMES_PER_STEP])
        plan.add("SECCOMP_EXPORT")

    def add_load(self, plan, listener_fd=-1, state=None):
        frags = state_fragments(state or {}, self.metadata) if self.notify else ()
        plan.add("SECCOMP_LOAD", listener_fd if self.notify else -1, *frags)


def _list(obj, key, where):
    v = obj.get(key)
    if v is None:
        return ()
    if not isinstance(v, list):
        raise ConfigError(f"{where}.{key}: must be an array")
    return v


def _action(name, errno_ret, where, errno_where):
    if name not in ACTIONS:
        raise ConfigError(f"{where}: unknown action {name!r}")
    value = ACTIONS[name]
    if errno_ret is not None:
        if name not in _TAKES_ERRNO:
            raise ConfigError(f"{errno_where}: {name} does not take an errno")
        if not isinstance(errno_ret, int) or isinstance(errno_ret, bool) or not 0 <= errno_ret <= 0xFFFF:
            raise ConfigError(f"{errno_where}: must be an errno number from 0 to 65535")
    if name in _TAKES_ERRNO:
        value |= EPERM if errno_ret is None else errno_ret
    return value


def _condition(arg, where):
    if not isinstance(arg, dict):
        raise ConfigError(f"{where}: must be an object")
    index = arg.get("index")
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index <= 5:
        raise ConfigError(f"{where}.index: must be a syscall argument index from 0 to 5")
    op = OPERATORS.get(arg.get("op"))
    if op is None:
        raise ConfigError(f"{where}.op: unknown operator {arg.get('op')!r}")
    vals = []
    for key in ("value", "valueTwo"):
        v = arg.get(key, 0)
        if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= _U64:
            raise ConfigError(f"{where}.{key}: must be an unsigned 64-bit number")
        vals.append(v)
    return (index, op, vals[0], vals[1])


def state_fragments(state, metadata):
    """The container process state (config-linux.md) as JSON, in pieces
    between which the C core puts the pid (twice: the process's, and the
    state's)."""
    state = {k: v for k, v in state.items() if k != "pid"}
    head = '{"ociVersion":%s,"fds":["seccompFd"],"pid":' % json.dumps(SPEC_VERSION)
    meta = ',"metadata":%s' % json.dumps(metadata) if metadata else ""
    inner = json.dumps(dict({"ociVersion": SPEC_VERSION}, **state), separators=(",", ":"))
    return head, meta + ',"state":' + inner[:-1] + ',"pid":', "}}"


def open_listener(flt, min_fd=3):
    """A socket connected to listenerPath when the filter notifies, else -1.
    The runtime passes it to the init and closes its own copy after clone."""
    if flt is None or not flt.notify:
        return -1
    import socket
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(flt.listener_path)
    except OSError as e:
        s.close()
        raise OciError(f"{flt.source}: $.linux.seccomp.listenerPath: connect to "
                       f"{flt.listener_path}: {os.strerror(e.errno).lower()}") from None
    fd = s.detach()
    if fd < min_fd:
        import fcntl
        new = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, min_fd)
        os.close(fd)
        fd = new
    return fd


_cache = {}


def cache_dir(rootless):
    """Where ociruntime-init keeps compiled filters between creates
    (csrc/seccomp_cache.c), or None: /run/ociruntime-seccomp for root,
    $XDG_RUNTIME_DIR/ociruntime-seccomp for a user (rootless podman's
    root in its user namespace included).  Not in the state root: callers
    (containerd's cleanup) expect it empty once its containers are gone.
    OCIRUNTIME_SECCOMP_CACHE overrides it; empty: no cache."""
    path = os.environ.get("OCIRUNTIME_SECCOMP_CACHE")
    if path is not None:
        return os.path.abspath(path) if path else None
    if not rootless and os.geteuid() == 0:
        return "/run/ociruntime-seccomp"
    xdg = os.environ.get("XDG_RUNTIME_DIR") or ""
    return os.path.join(xdg, "ociruntime-seccomp") if os.path.isabs(xdg) else None


def compile_filter(cfg_seccomp, source):
    """The Filter of a config's linux.seccomp (None if absent), checked once."""
    if cfg_seccomp is None:
        return None
    key = id(cfg_seccomp)
    hit = _cache.get(key)
    if hit is None or hit[0] is not cfg_seccomp:
        hit = _cache[key] = (cfg_seccomp, Filter(cfg_seccomp, source))
    return hit[1]


def add_seccomp_step(plan, cfg_seccomp, source, proc, phase, listener_fd=-1, state=None,
                     built=False):
    """Add linux.seccomp's steps for one point of a plan (create or exec):

    phase "identity": call after the process's user is set and before its
      capabilities are (process.plan_process's load_filter); builds the filter, and
      loads it here when it cannot wait (see Filter.load_early);
    phase "exec": call right before the EXEC step; loads it otherwise.

    listener_fd: from open_listener() (SCMP_ACT_NOTIFY); state: the
    container's state (runtime.md) without pid, sent to the listener."""
    flt = compile_filter(cfg_seccomp, source)
    if flt is None:
        return
    early = flt.load_early(proc or {})
    if phase == "build":
        # In the intermediate, before the clone (init.build): libseccomp's
        # allocations (over 1 MiB for podman's profile) are then not
        # charged to the container's memory limit.  Pass built=True to the
        # "identity" phase afterwards.
        flt.add_build(plan)
    elif phase == "identity":
        if not built:
            flt.add_build(plan)
        if early:
            flt.add_load(plan, listener_fd, state)
    elif phase == "exec":
        if not early:
            flt.add_load(plan, listener_fd, state)
    else:
        raise ValueError(f"unknown seccomp phase {phase!r}")
