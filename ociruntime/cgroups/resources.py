"""linux.resources -> cgroup files, for v1 and for v2.

Each group of the spec's resources (memory, cpu, pids, blockIO, ...) is
served by a controller; the manager says where that controller lives on
this host (a v1 hierarchy or cgroup2).  The group then yields its writes:
(directory, file, value, field), in the order the kernel needs them.

Conversions where the spec or runc defines them, for a v1-style value on
a v2 host:
  cpu.shares        -> cpu.weight   1 + (shares - 2) * 9999 / 262142
  cpu.quota/period  -> cpu.max      "QUOTA|max PERIOD"
  memory.swap       -> memory.swap.max = swap - limit (memory+swap in v1)
  blockIO.weight    -> io.bfq.weight as is, else io.weight
                       1 + (weight - 10) * 9999 / 990
  blockIO.throttle* -> io.max "MAJ:MIN rbps=|wbps=|riops=|wiops=N"
  hugepageLimits    -> hugetlb.SIZE.max (v1: .limit_in_bytes)
Zero means "not set", as in runc, for blockIO.weight and leafWeight
(also per device), memory.limit, reservation, swap, kernel and kernelTCP,
cpu.shares, quota, period, realtimeRuntime and realtimePeriod, and
pids.limit: Docker writes 0 for each of them it was not asked to set,
at create and in its update payload.  Such a zero writes nothing.
A value without a counterpart on the host (a controller that is not
there, a v1-only knob on v2, a file this kernel lacks) is an OciError
naming the field: nothing is skipped silently.
"""
import os

from ociruntime.cgroups import read_text, write_file
from ociruntime.errors import OciError

MAX_SHARES = 262144


def shares_to_weight(shares):
    """runc's cgroup v1 cpu.shares [2, 262144] -> v2 cpu.weight [1, 10000]."""
    if shares == 0:
        return 0
    return 1 + ((shares - 2) * 9999) // 262142


def blkio_weight_to_io_weight(weight):
    """v1 blkio.weight [10, 1000] -> v2 io.weight [1, 10000] (runc's)."""
    if weight == 0:
        return 0
    return 1 + (weight - 10) * 9999 // 990


def swap_to_v2(swap, limit, field):
    """memory.swap (memory+swap, v1) -> memory.swap.max (swap alone):
    None to leave it, -1 for max.  runc's rules and errors."""
    limit = limit or 0
    if swap is None or swap == 0:   # 0 is unset (runc)
        return -1 if limit == -1 else None
    if swap == -1:
        return -1
    if limit in (0, -1):
        raise OciError(f"{field}.swap: a swap limit needs a memory limit on cgroup v2")
    if swap < limit:
        raise OciError(f"{field}.swap: memory+swap ({swap}) must be at least the memory limit ({limit})")
    return swap - limit


def _max(v):
    return "max" if v == -1 else str(v)


class Writes:
    """The writes of one apply, and the controllers they need."""

    def __init__(self, mgr, update):
        self.mgr, self.update = mgr, update
        self.out = []

    def where(self, controller, field):
        d = self.mgr.dir_of(controller)
        if d is None and self.mgr.why_missing(controller):
            raise OciError(f"{field}: cannot set the {controller} limit of a rootless container: "
                           f"{self.mgr.why_missing(controller)}; drop the limit, or run as root")
        if d is None:
            raise OciError(f"{field}: the {controller} cgroup controller is not available on this host")
        if d[0] == 2:
            self.mgr.enable_v2([{"blkio": "io"}.get(controller, controller)])
        return d

    def add(self, d, name, value, field):
        self.out.append((d, name, str(value), field))


def _set(obj, key):
    return obj.get(key) is not None


# The fields where 0 is "not set" (runc), per group.
ZERO_UNSET = {
    "memory": ("limit", "reservation", "swap", "kernel", "kernelTCP"),
    "cpu": ("shares", "quota", "period", "realtimeRuntime", "realtimePeriod"),
    "pids": ("limit",),
    "blockIO": ("weight", "leafWeight"),
}


def _given(obj, key, group):
    """Set, and not a zero that means unset."""
    v = obj.get(key)
    return v is not None and not (v == 0 and key in ZERO_UNSET[group])


def _value(obj, key, group):
    """The value, or None where it is unset (absent, or a zero of ZERO_UNSET)."""
    return obj[key] if _given(obj, key, group) else None


# -- memory -------------------------------------------------------------------

_MEMORY_KEYS = ("limit", "reservation", "swap", "kernel", "kernelTCP", "swappiness",
                "disableOOMKiller", "useHierarchy")


def _memory(w, m, f):
    if not any(_given(m, k, "memory") for k in m if k in _MEMORY_KEYS):
        return
    ver, d = w.where("memory", f)
    limit, swap = _value(m, "limit", "memory"), _value(m, "swap", "memory")
    if w.update and m.get("checkBeforeUpdate") and limit is not None and limit >= 0:
        usage = int(read_text(os.path.join(d, "memory.usage_in_bytes" if ver == 1 else "memory.current")))
        if limit < usage:
            raise OciError(f"{f}.limit: {limit} is below the container's current memory usage "
                           f"({usage}) and checkBeforeUpdate is set")
    if ver == 1:
        lw = (d, "memory.limit_in_bytes", limit, f + ".limit")
        if limit == -1 and swap is None and os.path.exists(d + "/memory.memsw.limit_in_bytes"):
            swap = -1   # unlimited memory means unlimited swap too (runc)
        sw = (d, "memory.memsw.limit_in_bytes", swap, f + ".swap")
        order = [lw, sw]
        if limit is not None and swap is not None:
            cur = int(read_text(os.path.join(d, "memory.limit_in_bytes")))
            if swap == -1 or cur < swap:
                order = [sw, lw]   # memsw may never drop below the limit
        for item in order:
            if item[2] is not None:
                w.add(*item)
        for key, name in (("reservation", "memory.soft_limit_in_bytes"),
                          ("kernel", "memory.kmem.limit_in_bytes"),
                          ("kernelTCP", "memory.kmem.tcp.limit_in_bytes")):
            if _given(m, key, "memory"):
                w.add(d, name, m[key], f"{f}.{key}")
        if _set(m, "swappiness"):
            if not 0 <= m["swappiness"] <= 100:
                raise OciError(f"{f}.swappiness: {m['swappiness']} is not in 0..100")
            w.add(d, "memory.swappiness", m["swappiness"], f + ".swappiness")
        if _set(m, "disableOOMKiller"):
            w.add(d, "memory.oom_control", int(bool(m["disableOOMKiller"])), f + ".disableOOMKiller")
        if _set(m, "useHierarchy"):
            w.add(d, "memory.use_hierarchy", int(bool(m["useHierarchy"])), f + ".useHierarchy")
        return
    for key in ("kernel", "kernelTCP", "swappiness"):
        if _given(m, key, "memory") if key in ZERO_UNSET["memory"] else _set(m, key):
            raise OciError(f"{f}.{key}: cgroup v2 has no such memory setting")
    if m.get("disableOOMKiller"):
        raise OciError(f"{f}.disableOOMKiller: cgroup v2 cannot disable the OOM killer")
    if m.get("useHierarchy") is False:
        raise OciError(f"{f}.useHierarchy: cgroup v2 memory accounting is always hierarchical")
    swap_max = swap_to_v2(swap, limit, f)
    if swap_max is not None:
        w.add(d, "memory.swap.max", _max(swap_max), f + ".swap")
    if limit is not None:
        w.add(d, "memory.max", _max(limit), f + ".limit")
    if _given(m, "reservation", "memory"):
        w.add(d, "memory.low", _max(m["reservation"]), f + ".reservation")


# -- cpu ------------------------------------------------------------------------

def _cpu(w, c, f):
    for key in ("cpus", "mems"):
        if c.get(key):   # "" means: leave it (what runc does)
            _ver, d = w.where("cpuset", f"{f}.{key}")
            w.add(d, "cpuset." + key, c[key], f"{f}.{key}")
    keys = ("shares", "quota", "burst", "period", "realtimeRuntime", "realtimePeriod", "idle")
    if not any(_given(c, k, "cpu") if k in ZERO_UNSET["cpu"] else _set(c, k) for k in keys):
        return
    ver, d = w.where("cpu", f)
    shares, quota, period, burst = c.get("shares"), c.get("quota"), c.get("period"), c.get("burst")
    if ver == 1:
        if shares:
            w.add(d, "cpu.shares", shares, f + ".shares")
        if period:
            w.add(d, "cpu.cfs_period_us", period, f + ".period")
        if quota is not None and quota != 0:
            w.add(d, "cpu.cfs_quota_us", quota, f + ".quota")
        if burst is not None:
            w.add(d, "cpu.cfs_burst_us", burst, f + ".burst")
        if c.get("realtimePeriod"):
            w.add(d, "cpu.rt_period_us", c["realtimePeriod"], f + ".realtimePeriod")
        if c.get("realtimeRuntime"):
            w.add(d, "cpu.rt_runtime_us", c["realtimeRuntime"], f + ".realtimeRuntime")
        if _set(c, "idle"):
            w.add(d, "cpu.idle", c["idle"], f + ".idle")
        return
    for key in ("realtimeRuntime", "realtimePeriod"):
        if c.get(key):
            raise OciError(f"{f}.{key}: cgroup v2 has no real-time cpu bandwidth")
    if shares:
        if not 2 <= shares <= MAX_SHARES:
            raise OciError(f"{f}.shares: {shares} is not in 2..{MAX_SHARES}")
        w.add(d, "cpu.weight", shares_to_weight(shares), f + ".shares")
    if (quota is not None and quota != 0) or period:
        if quota is None or quota == 0:
            cur = "max"
            if w.update:
                try:
                    cur = read_text(d + "/cpu.max").split()[0]
                except (OSError, IndexError):
                    pass
            q = cur
        else:
            q = _max(quota)
        w.add(d, "cpu.max", f"{q} {period}" if period else q, f + (".quota" if quota else ".period"))
    if burst is not None:
        w.add(d, "cpu.max.burst", burst, f + ".burst")
    if _set(c, "idle"):
        w.add(d, "cpu.idle", c["idle"], f + ".idle")


# -- pids, hugetlb, network, rdma ---------------------------------------------

def _pids(w, p, f):
    if not _given(p, "limit", "pids"):
        return   # 0 too: runc leaves pids.max alone
    limit = p["limit"]
    if limit < -1:
        raise OciError(f"{f}.limit: {limit} is not -1 (unlimited) or a number of processes")
    _ver, d = w.where("pids", f)
    w.add(d, "pids.max", _max(limit), f + ".limit")


def _hugetlb(w, limits, f):
    for i, h in enumerate(limits):
        fi = f"{f}[{i}]"
        size = h.get("pageSize", "")
        import re   # here: `re` costs milliseconds, and only hugetlb needs it
        if not re.match(r"^[1-9][0-9]*[KMG]B$", size):
            raise OciError(f"{fi}.pageSize: {size!r} is not a page size like 2MB or 1GB")
        ver, d = w.where("hugetlb", fi)
        name = f"hugetlb.{size}.limit_in_bytes" if ver == 1 else f"hugetlb.{size}.max"
        if not os.path.exists(os.path.join(d, name)):
            raise OciError(f"{fi}.pageSize: this host has no {size} huge pages ({d}/{name} is missing)")
        w.add(d, name, h["limit"], fi + ".limit")
        rsvd = f"hugetlb.{size}.rsvd.limit_in_bytes" if ver == 1 else f"hugetlb.{size}.rsvd.max"
        if os.path.exists(os.path.join(d, rsvd)):   # reservations too, as runc
            w.add(d, rsvd, h["limit"], fi + ".limit")


def _network(w, n, f):
    if _set(n, "classID"):
        _ver, d = w.where("net_cls", f + ".classID")
        w.add(d, "net_cls.classid", n["classID"], f + ".classID")
    for i, p in enumerate(n.get("priorities") or ()):
        _ver, d = w.where("net_prio", f"{f}.priorities[{i}]")
        w.add(d, "net_prio.ifpriomap", f"{p['name']} {p['priority']}", f"{f}.priorities[{i}]")


def _rdma(w, r, f):
    for dev, lim in r.items():
        _ver, d = w.where("rdma", f"{f}.{dev}")
        if lim.get("hcaHandles") is None and lim.get("hcaObjects") is None:
            raise OciError(f"{f}.{dev}: give hcaHandles or hcaObjects")
        h = lim.get("hcaHandles")
        o = lim.get("hcaObjects")
        w.add(d, "rdma.max", f"{dev} hca_handle={'max' if h is None else h} "
                             f"hca_object={'max' if o is None else o}", f"{f}.{dev}")


# -- block io ---------------------------------------------------------------------

_THROTTLE = (("throttleReadBpsDevice", "read_bps_device", "rbps"),
             ("throttleWriteBpsDevice", "write_bps_device", "wbps"),
             ("throttleReadIOPSDevice", "read_iops_device", "riops"),
             ("throttleWriteIOPSDevice", "write_iops_device", "wiops"))


def _blockio(w, b, f):
    keys = ("weightDevice",) + tuple(t[0] for t in _THROTTLE)
    if not (any(b.get(k) for k in keys) or _given(b, "weight", "blockIO")
            or _given(b, "leafWeight", "blockIO")):
        return
    ver, d = w.where("blkio", f)
    has = lambda name: os.path.exists(os.path.join(d, name))   # noqa: E731
    if ver == 1:
        bfq = not has("blkio.weight") and has("blkio.bfq.weight")
        wname = "blkio.bfq.weight" if bfq else "blkio.weight"
        if _given(b, "weight", "blockIO"):
            w.add(d, wname, b["weight"], f + ".weight")
        if _given(b, "leafWeight", "blockIO"):
            w.add(d, "blkio.leaf_weight", b["leafWeight"], f + ".leafWeight")
        for i, wd in enumerate(b.get("weightDevice") or ()):
            dev = f"{wd['major']}:{wd['minor']}"
            if _given(wd, "weight", "blockIO"):
                w.add(d, wname + "_device", f"{dev} {wd['weight']}", f"{f}.weightDevice[{i}].weight")
            if _given(wd, "leafWeight", "blockIO"):
                w.add(d, "blkio.leaf_weight_device", f"{dev} {wd['leafWeight']}",
                      f"{f}.weightDevice[{i}].leafWeight")
        for key, name, _v2 in _THROTTLE:
            for i, t in enumerate(b.get(key) or ()):
                w.add(d, "blkio.throttle." + name, f"{t['major']}:{t['minor']} {t['rate']}", f"{f}.{key}[{i}]")
        return
    if _given(b, "leafWeight", "blockIO"):
        raise OciError(f"{f}.leafWeight: cgroup v2 has no leaf weight")
    bfq = has("io.bfq.weight")
    if _given(b, "weight", "blockIO"):
        if bfq:
            w.add(d, "io.bfq.weight", b["weight"], f + ".weight")
        else:
            w.add(d, "io.weight", f"default {blkio_weight_to_io_weight(b['weight'])}", f + ".weight")
    for i, wd in enumerate(b.get("weightDevice") or ()):
        dev = f"{wd['major']}:{wd['minor']}"
        if _given(wd, "leafWeight", "blockIO"):
            raise OciError(f"{f}.weightDevice[{i}].leafWeight: cgroup v2 has no leaf weight")
        if _given(wd, "weight", "blockIO"):
            if bfq:
                w.add(d, "io.bfq.weight", f"{dev} {wd['weight']}", f"{f}.weightDevice[{i}].weight")
            else:
                w.add(d, "io.weight", f"{dev} {blkio_weight_to_io_weight(wd['weight'])}",
                      f"{f}.weightDevice[{i}].weight")
    for key, _v1, v2key in _THROTTLE:
        for i, t in enumerate(b.get(key) or ()):
            w.add(d, "io.max", f"{t['major']}:{t['minor']} {v2key}={t['rate']}", f"{f}.{key}[{i}]")


# -- unified ------------------------------------------------------------------------

def _unified(w, u, f):
    mgr = w.mgr
    d = mgr.v2_dir
    if not d:
        raise OciError(f"{f}: this host has no cgroup v2 hierarchy")
    for key, value in u.items():
        if "/" in key or key in (".", "..") or "." not in key:
            raise OciError(f"{f}.{key}: not a cgroup v2 file name")
        ctrl = key.split(".", 1)[0]
        if ctrl != "cgroup":
            if ctrl not in mgr.layout.v2_controllers:
                raise OciError(f"{f}.{key}: the {ctrl} controller is not available in this host's "
                               "cgroup v2 hierarchy")
            mgr.enable_v2([ctrl])
        if not os.path.exists(os.path.join(d, key)):
            raise OciError(f"{f}.{key}: {d}/{key}: this host's kernel has no such cgroup file")
        w.add(d, key, value, f"{f}.{key}")


GROUPS = (("memory", _memory), ("cpu", _cpu), ("pids", _pids), ("blockIO", _blockio),
          ("hugepageLimits", _hugetlb), ("network", _network), ("rdma", _rdma),
          ("unified", _unified))


def plan(mgr, res, update=False):
    """[(directory, file, value, field)] for the resources object `res`."""
    w = Writes(mgr, update)
    for key, fn in GROUPS:
        v = res.get(key)
        if v:
            fn(w, v, f"linux.resources.{key}")
    return w.out


def write_all(writes, journal=None):
    """Write each in order.  With a journal (update), first check that every
    file is there, and note how to undo each write as it is made."""
    write = journal.write if journal is not None else write_file
    if journal is not None:
        for d, name, _value, field in writes:
            if not os.path.exists(os.path.join(d, name)):
                raise OciError(f"{field}: {d}/{name}: this host's kernel has no such cgroup file")
    for d, name, value, field in writes:
        if name == "cpu.cfs_period_us":
            _write_period_v1(d, value, field, write)
        else:
            write(os.path.join(d, name), value, field)


def _write_period_v1(d, value, field, write):
    # A smaller period can be refused while the old quota exceeds it
    # (with cpu.cfs_burst_us): runc retries after the quota is written.
    try:
        write(os.path.join(d, "cpu.cfs_period_us"), value, field)
    except OciError:
        write(os.path.join(d, "cpu.cfs_quota_us"), "-1", field)
        write(os.path.join(d, "cpu.cfs_period_us"), value, field)


def apply_config(mgr, cfg, source="config.json"):
    """At create: linux.resources and the device rules, before the init
    joins (so it is limited before it execs)."""
    from ociruntime.cgroups import devices
    linux = cfg.get("linux") or {}
    res = linux.get("resources") or {}
    write_all(plan(mgr, res))
    devices.apply(mgr, devices.rules_for(res.get("devices"), linux.get("devices")),
                  explicit=bool(res.get("devices")))


def apply_update(mgr, res):
    """`update`: only what res names, all or nothing: every value is
    checked and every file found before the first write, and a write the
    kernel refuses undoes the ones before it (rollback.py).  Device rules,
    if given, replace the container's (with the default devices, as at
    create), after the rest."""
    from ociruntime.cgroups import devices, rollback
    rules = devices.rules_for(res["devices"], None) if res.get("devices") else None
    writes = plan(mgr, res, update=True)
    journal = rollback.Journal()
    try:
        write_all(writes, journal)
        if rules is not None:
            where = mgr.dir_of("devices")
            if where is not None and where[0] == 1:
                journal.note_devices_v1(where[1])
            devices.apply(mgr, rules, explicit=True)
    except OciError as e:
        failed = journal.roll_back()
        if failed:
            raise OciError(f"{e}; and could not put back the old value of {', '.join(failed)}") from None
        raise OciError(f"{e} (nothing was changed)") from None
