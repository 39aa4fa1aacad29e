"""Container statistics in runc's `events` JSON shape:
{"cpu", "memory", "pids", "blkio", "hugetlb", ...}, each read from
wherever this host keeps the controller (v1 or cgroup2)."""
import os

from ociruntime.cgroups import read_text

USER_HZ = 100
MAX_V2 = (1 << 64) - 1   # runc's value for "max"


def _int(path, default=0):
    try:
        s = read_text(path).strip()
    except OSError:
        return default
    if s == "max":
        return MAX_V2
    try:
        return int(s)
    except ValueError:
        return default


def _kv(path):
    out = {}
    try:
        text = read_text(path)
    except OSError:
        return out
    for line in text.splitlines():
        k, _, v = line.partition(" ")
        try:
            out[k] = int(v)
        except ValueError:
            pass
    return out


def _omit(d):
    """Go's omitempty for numbers, lists and maps."""
    return {k: v for k, v in d.items() if v not in (0, None, [], {})}


def _cpu(mgr):
    out = {"usage": {}, "throttling": {}}
    acct = mgr.dir_of("cpuacct")
    cpu = mgr.dir_of("cpu")
    if acct and acct[0] == 1:
        d = acct[1]
        usage = {"total": _int(d + "/cpuacct.usage")}
        try:
            usage["percpu"] = [int(x) for x in read_text(d + "/cpuacct.usage_percpu").split()]
        except OSError:
            pass
        try:
            lines = read_text(d + "/cpuacct.usage_all").splitlines()[1:]
            usage["percpu_kernel"] = [int(l.split()[2]) for l in lines]
            usage["percpu_user"] = [int(l.split()[1]) for l in lines]
        except (OSError, IndexError, ValueError):
            pass
        st = _kv(d + "/cpuacct.stat")
        out["usage"] = dict(_omit(usage), kernel=st.get("system", 0) * 10**9 // USER_HZ,
                            user=st.get("user", 0) * 10**9 // USER_HZ)
    if cpu:
        ver, d = cpu
        st = _kv(d + "/cpu.stat")
        if ver == 2:
            out["usage"] = dict(_omit({"total": st.get("usage_usec", 0) * 1000}),
                                kernel=st.get("system_usec", 0) * 1000, user=st.get("user_usec", 0) * 1000)
            out["throttling"] = _omit({"periods": st.get("nr_periods"), "throttledPeriods": st.get("nr_throttled"),
                                       "throttledTime": st.get("throttled_usec", 0) * 1000})
        else:
            out["throttling"] = _omit({"periods": st.get("nr_periods"), "throttledPeriods": st.get("nr_throttled"),
                                       "throttledTime": st.get("throttled_time")})
    return out


def _entry(d, prefix, v1):
    if v1:
        e = {"limit": _int(f"{d}/{prefix}limit_in_bytes"), "usage": _int(f"{d}/{prefix}usage_in_bytes"),
             "max": _int(f"{d}/{prefix}max_usage_in_bytes"), "failcnt": _int(f"{d}/{prefix}failcnt")}
    else:
        e = {"limit": _int(f"{d}/{prefix}max"), "usage": _int(f"{d}/{prefix}current"),
             "max": _int(f"{d}/{prefix}peak"), "failcnt": 0}
    return {k: v for k, v in e.items() if v or k in ("limit", "failcnt")}


def _memory(mgr):
    where = mgr.dir_of("memory")
    if not where:
        return {}
    ver, d = where
    raw = _kv(d + "/memory.stat")
    if ver == 1:
        out = {"cache": raw.get("cache", 0), "usage": _entry(d, "memory.", True),
               "swap": _entry(d, "memory.memsw.", True), "kernel": _entry(d, "memory.kmem.", True),
               "kernelTCP": _entry(d, "memory.kmem.tcp.", True)}
    else:
        usage = _entry(d, "memory.", False)
        usage["failcnt"] = _kv(d + "/memory.events").get("max", 0)
        out = {"cache": raw.get("file", 0), "usage": usage, "swap": _entry(d, "memory.swap.", False),
               "kernel": {"limit": 0, "failcnt": 0}, "kernelTCP": {"limit": 0, "failcnt": 0}}
    if not out["cache"]:
        del out["cache"]
    if raw:
        out["raw"] = raw
    return out


def _pids(mgr):
    where = mgr.dir_of("pids")
    if not where:
        return {}
    d = where[1]
    limit = _int(d + "/pids.max")
    return _omit({"current": _int(d + "/pids.current"), "limit": 0 if limit == MAX_V2 else limit})


def _blkio_v1(path):
    out = []
    try:
        text = read_text(path)
    except OSError:
        return out
    for line in text.splitlines():
        f = line.split()
        if len(f) == 3 and ":" in f[0]:
            mj, mn = f[0].split(":")
            out.append(_omit({"major": int(mj), "minor": int(mn), "op": f[1], "value": int(f[2])}))
    return out


def _blkio(mgr):
    where = mgr.dir_of("blkio")
    if not where:
        return {}
    ver, d = where
    if ver == 1:
        out = {}
        for key, names in (("ioServiceBytesRecursive", ("blkio.io_service_bytes_recursive",
                                                         "blkio.throttle.io_service_bytes_recursive")),
                           ("ioServicedRecursive", ("blkio.io_serviced_recursive",
                                                    "blkio.throttle.io_serviced_recursive"))):
            for name in names:
                if os.path.exists(os.path.join(d, name)):
                    entries = _blkio_v1(os.path.join(d, name))
                    if entries:
                        out[key] = entries
                    break
        return out
    nbytes, nios = [], []
    try:
        text = read_text(d + "/io.stat")
    except OSError:
        return {}
    for line in text.splitlines():
        f = line.split()
        if not f or ":" not in f[0]:
            continue
        mj, mn = (int(x) for x in f[0].split(":"))
        kv = dict(x.split("=", 1) for x in f[1:] if "=" in x)
        for name, op, lst in (("rbytes", "Read", nbytes), ("wbytes", "Write", nbytes),
                              ("rios", "Read", nios), ("wios", "Write", nios)):
            if name in kv:
                lst.append(_omit({"major": mj, "minor": mn, "op": op, "value": int(kv[name])}))
    return _omit({"ioServiceBytesRecursive": nbytes, "ioServicedRecursive": nios})


def _hugetlb(mgr):
    where = mgr.dir_of("hugetlb")
    if not where:
        return {}
    ver, d = where
    out = {}
    try:
        sizes = sorted({n.split(".")[1] for n in os.listdir(d) if n.startswith("hugetlb.")})
    except OSError:
        return out
    for size in sizes:
        p = f"{d}/hugetlb.{size}."
        if ver == 1:
            e = {"usage": _int(p + "usage_in_bytes"), "max": _int(p + "max_usage_in_bytes"),
                 "failcnt": _int(p + "failcnt")}
        else:
            e = {"usage": _int(p + "current"), "failcnt": _kv(p + "events").get("max", 0)}
        out[size] = {k: v for k, v in e.items() if v or k == "failcnt"}
    return out


def _cpu_list(text):
    """"0-2,5" -> [0, 1, 2, 5]."""
    out = []
    for part in text.strip().split(","):
        if part:
            lo, _, hi = part.partition("-")
            out += range(int(lo), int(hi or lo) + 1)
    return out


def _cpuset(mgr):
    """runc's v1 cpuset stats (it has none to give on cgroup2)."""
    where = mgr.dir_of("cpuset")
    if not where or where[0] != 1:
        return None
    d = where[1] + "/cpuset."
    try:
        cpus, mems = _cpu_list(read_text(d + "cpus")), _cpu_list(read_text(d + "mems"))
    except (OSError, ValueError):
        return None
    out = {"cpus": cpus, "cpu_exclusive": _int(d + "cpu_exclusive"), "mems": mems}
    for key in ("mem_hardwall", "mem_exclusive", "memory_migrate", "memory_spread_page",
                "memory_spread_slab", "memory_pressure", "sched_load_balance"):
        out[key] = _int(d + key)
    out["sched_relax_domain_level"] = _int(d + "sched_relax_domain_level")
    return out


def collect(mgr):
    cpuset = _cpuset(mgr)
    if cpuset is not None:
        return {"cpu": _cpu(mgr), "cpuset": cpuset, "memory": _memory(mgr), "pids": _pids(mgr),
                "blkio": _blkio(mgr), "hugetlb": _hugetlb(mgr), "intel_rdt": {}, "network_interfaces": None}
    return {"cpu": _cpu(mgr), "memory": _memory(mgr), "pids": _pids(mgr), "blkio": _blkio(mgr),
            "hugetlb": _hugetlb(mgr), "intel_rdt": {}, "network_interfaces": None}
