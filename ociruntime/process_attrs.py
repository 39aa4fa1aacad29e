"""Process attributes of runtime-spec 1.1 and later, as plan steps:
process.scheduler (sched_setattr), process.ioPriority (ioprio_set),
linux.personality, linux.memoryPolicy (set_mempolicy),
process.execCPUAffinity (for `exec`: the spec says it is not the init's),
and linux.intelRdt (a clear error: no resctrl support).

Only imported when a config uses one of them (see wanted())."""
import os

from ociruntime.errors import ConfigError

POLICIES = {"SCHED_OTHER": 0, "SCHED_FIFO": 1, "SCHED_RR": 2, "SCHED_BATCH": 3,
            "SCHED_ISO": 4, "SCHED_IDLE": 5, "SCHED_DEADLINE": 6}
SCHED_FLAGS = {"SCHED_FLAG_RESET_ON_FORK": 0x01, "SCHED_FLAG_RECLAIM": 0x02,
               "SCHED_FLAG_DL_OVERRUN": 0x04, "SCHED_FLAG_KEEP_POLICY": 0x08,
               "SCHED_FLAG_KEEP_PARAMS": 0x10, "SCHED_FLAG_UTIL_CLAMP_MIN": 0x20,
               "SCHED_FLAG_UTIL_CLAMP_MAX": 0x40}
IOPRIO_CLASSES = {"IOPRIO_CLASS_RT": 1, "IOPRIO_CLASS_BE": 2, "IOPRIO_CLASS_IDLE": 3}
PERSONALITY_DOMAINS = {"LINUX": 0x0000, "LINUX32": 0x0008}
# personality(2) flags, by their <sys/personality.h> names.  (The spec
# defines none yet; these are what the kernel takes.)
PERSONALITY_FLAGS = {
    "UNAME26": 0x0020000, "ADDR_NO_RANDOMIZE": 0x0040000, "FDPIC_FUNCPTRS": 0x0080000,
    "MMAP_PAGE_ZERO": 0x0100000, "ADDR_COMPAT_LAYOUT": 0x0200000, "READ_IMPLIES_EXEC": 0x0400000,
    "ADDR_LIMIT_32BIT": 0x0800000, "SHORT_INODE": 0x1000000, "WHOLE_SECONDS": 0x2000000,
    "STICKY_TIMEOUTS": 0x4000000, "ADDR_LIMIT_3GB": 0x8000000,
}
MPOL_MODES = {"MPOL_DEFAULT": 0, "MPOL_PREFERRED": 1, "MPOL_BIND": 2, "MPOL_INTERLEAVE": 3,
              "MPOL_LOCAL": 4, "MPOL_PREFERRED_MANY": 5, "MPOL_WEIGHTED_INTERLEAVE": 6}
MPOL_FLAGS = {"MPOL_F_STATIC_NODES": 1 << 15, "MPOL_F_RELATIVE_NODES": 1 << 14,
              "MPOL_F_NUMA_BALANCING": 1 << 13}
_NO_NODES = ("MPOL_DEFAULT", "MPOL_LOCAL")


def wanted(cfg):
    proc = cfg.get("process") or {}
    linux = cfg.get("linux") or {}
    return bool(proc.get("scheduler") or proc.get("ioPriority") or linux.get("personality")
                or linux.get("memoryPolicy") or linux.get("intelRdt"))


def parse_list(text, where, limit=None):
    """'0-3,7' -> [0, 1, 2, 3, 7]."""
    out = set()
    for part in (text or "").split(","):
        part = part.strip()
        if not part:
            continue
        try:
            lo, dash, hi = part.partition("-")
            lo, hi = int(lo), int(hi if dash else lo)
        except ValueError:
            raise ConfigError(f"{where}: {text!r} is not a list like 0-3,7") from None
        if lo < 0 or hi < lo or (limit is not None and hi >= limit):
            raise ConfigError(f"{where}: bad range {part!r} in {text!r}")
        out.update(range(lo, hi + 1))
    return sorted(out)


def mask_words(ids):
    words = [0] * (max(ids) // 64 + 1 if ids else 1)
    for i in ids:
        words[i // 64] |= 1 << (i % 64)
    return words


def plan_init(plan, cfg, source):
    """Steps for the init, before it drops privileges (CAP_SYS_NICE for
    real-time policies, CAP_SYS_ADMIN for the RT I/O class)."""
    proc = cfg.get("process") or {}
    linux = cfg.get("linux") or {}
    if linux.get("intelRdt"):
        check_intel_rdt(linux["intelRdt"], source)
    if proc.get("scheduler"):
        plan_scheduler(plan, proc["scheduler"], f"{source}: $.process.scheduler")
    if proc.get("ioPriority"):
        plan_ioprio(plan, proc["ioPriority"], f"{source}: $.process.ioPriority")
    if linux.get("personality"):
        p = linux["personality"]
        where = f"{source}: $.linux.personality"
        persona = PERSONALITY_DOMAINS.get(p.get("domain"))
        if persona is None:
            raise ConfigError(f"{where}.domain: unknown domain {p.get('domain')!r} (LINUX or LINUX32)")
        persona = _or_flags(persona, p.get("flags"), PERSONALITY_FLAGS, where, "personality flag")
        plan.add("PERSONALITY", persona)
    if linux.get("memoryPolicy"):
        plan_mempolicy(plan, linux["memoryPolicy"], f"{source}: $.linux.memoryPolicy")


def plan_scheduler(plan, s, where):
    policy = POLICIES.get(s.get("policy"))
    if policy is None:
        raise ConfigError(f"{where}.policy: unknown policy {s.get('policy')!r}")
    if s["policy"] == "SCHED_ISO":
        raise ConfigError(f"{where}.policy: SCHED_ISO is not implemented by Linux")
    flags = 0
    for i, f in enumerate(s.get("flags") or ()):
        if f not in SCHED_FLAGS:
            raise ConfigError(f"{where}.flags[{i}]: unknown flag {f!r}")
        flags |= SCHED_FLAGS[f]
    nice = s.get("nice", 0)
    if not -20 <= nice <= 19:
        raise ConfigError(f"{where}.nice: {nice} is not within -20..19")
    prio = s.get("priority", 0)
    if s["policy"] in ("SCHED_FIFO", "SCHED_RR"):
        if not 1 <= prio <= 99:
            raise ConfigError(f"{where}.priority: {s['policy']} needs a priority of 1..99, not {prio}")
    elif prio:
        raise ConfigError(f"{where}.priority: only SCHED_FIFO and SCHED_RR take a priority")
    dl = [s.get(k, 0) for k in ("runtime", "deadline", "period")]
    if s["policy"] != "SCHED_DEADLINE" and any(dl):
        raise ConfigError(f"{where}: runtime, deadline and period are for SCHED_DEADLINE only")
    plan.add("SCHED", policy, flags, nice, prio, *dl)


def plan_ioprio(plan, io, where):
    cls = IOPRIO_CLASSES.get(io.get("class"))
    if cls is None:
        raise ConfigError(f"{where}.class: unknown class {io.get('class')!r}")
    prio = io.get("priority", 0)
    if not 0 <= prio <= 7:
        raise ConfigError(f"{where}.priority: {prio} is not within 0..7")
    plan.add("IOPRIO", cls << 13 | prio)


def _or_flags(value, names, table, where, what):
    """value with the flags `names` (looked up in table) or'ed in; an
    unknown name is an error naming its index."""
    for i, name in enumerate(names or ()):
        if name not in table:
            raise ConfigError(f"{where}.flags[{i}]: unknown {what} {name!r}")
        value |= table[name]
    return value


def plan_mempolicy(plan, mp, where):
    mode = MPOL_MODES.get(mp.get("mode"))
    if mode is None:
        raise ConfigError(f"{where}.mode: unknown mode {mp.get('mode')!r}")
    mode = _or_flags(mode, mp.get("flags"), MPOL_FLAGS, where, "flag")
    nodes = parse_list(mp.get("nodes"), f"{where}.nodes", limit=4096)
    if mp["mode"] in _NO_NODES and nodes:
        raise ConfigError(f"{where}.nodes: {mp['mode']} takes no nodes")
    if mp["mode"] not in _NO_NODES and mp["mode"] != "MPOL_PREFERRED" and not nodes:
        raise ConfigError(f"{where}.nodes: {mp['mode']} needs at least one node")
    if nodes:
        words = mask_words(nodes)
        # The kernel reads maxnode - 1 bits (set_mempolicy(2)).
        plan.add("MEMPOLICY", mode, len(words) * 64 + 1, *words)
    else:
        plan.add("MEMPOLICY", mode, 0)


def plan_exec_affinity(plan, proc, stage, source):
    """process.execCPUAffinity of `exec`: stage "initial" before joining
    the container's cgroup, "final" after."""
    aff = proc.get("execCPUAffinity") or {}
    text = aff.get(stage)
    if text:
        cpus = parse_list(text, f"{source}: $.process.execCPUAffinity.{stage}", limit=os.cpu_count() or 1024)
        plan.add("AFFINITY", *mask_words(cpus))


def check_intel_rdt(rdt, source):
    where = f"{source}: $.linux.intelRdt"
    try:
        with open("/proc/self/mountinfo") as f:
            mounted = any(" - resctrl " in line for line in f)
    except OSError:
        mounted = False
    if not mounted:
        raise ConfigError(f"{where}: Intel RDT is not available on this host (no resctrl filesystem "
                          "mounted at /sys/fs/resctrl)")
    raise ConfigError(f"{where}: Intel RDT (resctrl) is not supported by this runtime yet")
