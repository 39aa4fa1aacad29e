#!/usr/bin/env python3
"""Cost as the work grows: ociruntime against runc and crun, side by side,
at several sizes of the same work, with the value at each size and the
per-item slope between sizes.  As root, from the repository root:

    python3 -m benchmarks.scaling                       # every scenario, default sizes (below)
    python3 -m benchmarks.scaling --scenarios list,state --containers 1,100,1000 -n 10
    python3 -m benchmarks.scaling --json /tmp/scaling.json --markdown /tmp/scaling.md
    python3 -m benchmarks.scaling --from-json /tmp/scaling.json

The scenarios (each runtime in turn, call by call, as `python3 -m benchmarks`):

  mounts   `create` with 0, 50, 200 extra mounts (binds, read-only, and tmpfs, alternating)
  seccomp  `create` without linux.seccomp, with the first 120 syscall names of
           Docker's default profile and with all of it (tests/data/seccomp/
           docker-default.json, resolved as Docker does: 362 names here)
  list     `list` with 1, 100, 1000 created containers in the root
  state    `state ID` of one of them, at the same sizes
  memory   PSS (/proc/PID/smaps_rollup) of every process a runtime leaves behind,
           per container, with 1 and 100 containers created (waiting for start),
           then the same containers started (running `sleep`); one runtime at a time
  exec     `exec ID /bin/true` into a container running 1 and 100 processes

Most of the run is the untimed set-up of list: a thousand containers made
and removed per runtime (about a minute on a quiet machine, six at load 15).
Not a test: timings depend on the machine and its load (benchmarks/README.md,
"Scaling").  Compare the runtimes within one run: ratios and slopes.
"""
import argparse
import json
import os
import sys
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if __package__ in (None, ""):   # benchmarks/scaling.py: make `benchmarks` importable
    sys.path.insert(0, REPO)

from benchmarks import harness, report, session   # noqa: E402
from benchmarks.harness import CallFailed   # noqa: E402
from benchmarks.scenarios import Bench   # noqa: E402

SCENARIOS = ("mounts", "seccomp", "list", "state", "memory", "exec")
DOCKER_PROFILE = os.path.join(REPO, "tests", "data", "seccomp", "docker-default.json")
# What one created container costs on average over the runtimes, to check
# the machine before making a thousand per runtime: pids (threads count:
# runc's waiting init is a Go program of 5 threads, ours and crun's are
# one each) and MiB (PSS: runc's 1.9, crun's 0.3, ours 0.2; "memory").
PIDS_PER_CONTAINER = 3
MIB_PER_CONTAINER = 3


# -- the bundles ---------------------------------------------------------------

def docker_seccomp(caps, arch="SCMP_ARCH_X86_64", goarch="amd64"):
    """linux.seccomp from Docker's default profile as Docker resolves it:
    archMap for this machine, rules kept or dropped by their
    includes/excludes (capabilities, architectures, minimum kernel)."""
    with open(DOCKER_PROFILE) as f:
        profile = json.load(f)
    kernel = tuple(int(x) for x in os.uname().release.split("-")[0].split(".")[:2])
    out = {k: v for k, v in profile.items() if k not in ("archMap", "syscalls")}
    for m in profile.get("archMap") or ():
        if m["architecture"] == arch:
            out["architectures"] = [arch, *(m.get("subArchitectures") or ())]

    def holds(cond):
        if cond.get("caps") and not all(c in caps for c in cond["caps"]):
            return False
        if cond.get("arches") and goarch not in cond["arches"]:
            return False
        want = cond.get("minKernel")
        return not want or kernel >= tuple(int(x) for x in want.split(".")[:2])

    rules = []
    for rule in profile["syscalls"]:
        if rule.get("includes") and not holds(rule["includes"]):
            continue
        exc = rule.get("excludes") or {}
        if any(c in caps for c in exc.get("caps") or ()) or goarch in (exc.get("arches") or ()):
            continue
        rules.append({k: v for k, v in rule.items()
                      if k not in ("includes", "excludes", "comment") and v is not None})
    out["syscalls"] = rules
    return out


def first_names(profile, n):
    """The profile with its first n syscall names only (its rules in
    order, the last one cut short): the curve up to the whole profile."""
    out, rules, left = dict(profile), [], n
    for rule in profile["syscalls"]:
        if left <= 0:
            break
        names = rule["names"][:left]
        rules.append(dict(rule, names=names))
        left -= len(names)
    out["syscalls"] = rules
    return out


def extra_mounts(n, source):
    """n mounts under /mnt/m<i>: read-only binds of one directory and
    tmpfs, alternating (a container's volumes and scratch space)."""
    out = []
    for i in range(n):
        if i % 2:
            out.append({"destination": f"/mnt/m{i}", "type": "tmpfs", "source": "tmpfs",
                        "options": ["nosuid", "nodev", "mode=755", "size=64k"]})
        else:
            out.append({"destination": f"/mnt/m{i}", "type": "bind", "source": source,
                        "options": ["rbind", "ro"]})
    return out


def sizes(text, what):
    try:
        got = [int(x) for x in text.split(",") if x]
    except ValueError:
        raise SystemExit(f"--{what}: expected comma-separated numbers, not {text!r}") from None
    if not got or min(got) < 0 or got != sorted(set(got)):
        raise SystemExit(f"--{what}: expected increasing numbers, not {text!r}")
    return got


# -- what a runtime leaves running -----------------------------------------------

def descendants(ancestor):
    """Pids of every process under ancestor (the benchmark is a child
    subreaper: whatever a runtime leaves running comes to it)."""
    parent = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            parent[int(name)] = int(stat[stat.rindex(")") + 2:].split()[1])
    out, todo = [], [ancestor]
    children = {}
    for pid, ppid in parent.items():
        children.setdefault(ppid, []).append(pid)
    while todo:
        for child in children.get(todo.pop(), ()):
            out.append(child)
            todo.append(child)
    return out


def pss_kib(pid):
    """The process's proportional set size, and its name."""
    try:
        with open(f"/proc/{pid}/comm") as f:
            comm = f.read().strip()
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]), comm
    except OSError:
        pass
    return None, None


def left_running():
    """(PSS in KiB summed, {name: count}) of every process under us."""
    total, names = 0, {}
    for pid in descendants(os.getpid()):
        kib, comm = pss_kib(pid)
        if kib is not None:
            total += kib
            names[comm] = names.get(comm, 0) + 1
    return total, names


def pid_namespace_size(pid):
    """How many processes share pid's pid namespace (a container's)."""
    try:
        ns = os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return 0
    n = 0
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                n += os.readlink(f"/proc/{name}/ns/pid") == ns
            except OSError:
                pass
    return n


# -- the scenarios -------------------------------------------------------------

class Scaling(Bench):
    """The scenarios above on every runtime; samples[runtime][scenario] is
    a list of {"size": N, key: value}."""

    def __init__(self, runtimes, workdir, bundle_cfg, sizes_of, iterations=10, warmup=1, setup_workers=2):
        super().__init__(runtimes, workdir, bundle_cfg, iterations, warmup)
        self.cfg, self.sizes, self.setup_workers = bundle_cfg, sizes_of, setup_workers
        self.samples = {rt.name: {s: [] for s in SCENARIOS} for rt in self.runtimes}
        self.notes = []
        self.made_by = {}     # container id -> runtime, for what is left behind
        self.setup_log = []   # untimed set-up: containers made and removed in batches
        self.mount_source = os.path.join(workdir, "bundle-volume")
        os.makedirs(self.mount_source, exist_ok=True)

    def new_id(self, rt):
        cid = super().new_id(rt)
        self.made_by[cid] = rt.name
        return cid

    def left_cgroups(self):
        """After cleanup: the cgroup directories of our containers that a
        runtime left behind (empty once their processes are gone), noted by
        runtime and removed.  Only our own ids: ocibench-<our pid>-N."""
        prefix = f"ocibench-{os.getpid()}-"
        found = sorted((os.path.join(top, d) for top, dirs, _ in os.walk("/sys/fs/cgroup")
                        for d in dirs if d.startswith(prefix)), key=len, reverse=True)
        by_rt = {}
        for path in found:
            cid = os.path.basename(path)
            by_rt.setdefault(self.made_by.get(cid, "?"), set()).add(cid)
            try:
                os.rmdir(path)
            except OSError as e:
                harness.log_line(f"  cannot remove {path}: {e.strerror}")
        for name, ids in sorted(by_rt.items()):
            self.notes.append(f"{name} left the cgroups of {len(ids)} deleted containers behind "
                              f"({', '.join(sorted(ids)[:5])}{', ...' if len(ids) > 5 else ''}): removed")

    def variant(self, name, args, **linux):
        cfg = json.loads(json.dumps(self.cfg))
        mounts = linux.pop("mounts", None)
        if mounts:
            cfg["mounts"] = cfg.get("mounts", []) + mounts
        cfg["linux"].update(linux)
        return self._bundle(name, cfg, args)

    def run(self, scenarios):
        for s in scenarios:
            if s == "state" and "list" in scenarios:
                continue   # measured with list: the same containers
            harness.log_line(f"{s}: sizes {self.sizes.get(s)}, {self.n} samples per size and runtime")
            t0 = time.monotonic()
            getattr(self, "scenario_" + s)(scenarios)
            harness.log_line(f"{s}: {time.monotonic() - t0:.0f} s")

    def _sized(self, scenario, size, once):
        """Interleaved samples of once(rt) at one size, tagged with it."""
        def tagged(rt):
            return {"size": size, **once(rt)}
        self._interleaved(scenario, tagged, self.n)

    def _timed(self, what, *args):
        def once(rt):
            c = self.call(rt, what, *args)
            return {"ms": c.wall_ms, "cpu_ms": c.cpu_ms}
        return once

    def _create_timed(self, bundle):
        def once(rt):
            cid = self.new_id(rt)
            try:
                c = self.call(rt, "create", "create", "--bundle", bundle, cid)
            finally:
                self.delete(rt, cid)
            return {"ms": c.wall_ms, "cpu_ms": c.cpu_ms}
        return once

    def scenario_mounts(self, _):
        for n in self.sizes["mounts"]:
            bundle = self.variant(f"bundle-mounts-{n}", ["/bin/true"],
                                  mounts=extra_mounts(n, self.mount_source))
            self._sized("mounts", n, self._create_timed(bundle))

    def scenario_seccomp(self, _):
        caps = self.cfg["process"].get("capabilities", {}).get("bounding", [])
        profile = docker_seccomp(caps)
        names = sum(len(r.get("names") or ()) for r in profile["syscalls"])
        self.notes.append(f"seccomp: Docker's default profile resolved for {', '.join(caps) or 'no capability'}: "
                          f"{len(profile['syscalls'])} rules, {names} syscall names")
        for size in sorted({min(n, names) for n in self.sizes["seccomp"]}):
            extra = {"seccomp": first_names(profile, size)} if size else {}
            bundle = self.variant(f"bundle-seccomp-{size}", ["/bin/true"], **extra)
            self._sized("seccomp", size, self._create_timed(bundle))

    # -- list and state: N created containers in each runtime's root ----------

    def _parallel(self, rt, what, items, fn):
        """fn(item) on setup_workers threads (untimed set-up and clean-up)."""
        todo, errors = iter(list(items)), []
        lock = threading.Lock()

        def worker():
            while not errors:
                with lock:
                    item = next(todo, None)
                if item is None:
                    return
                try:
                    fn(item)
                except CallFailed as e:
                    errors.append(e)
        threads = [threading.Thread(target=worker) for _ in range(self.setup_workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        harness.reap()
        if errors:
            raise CallFailed(f"{what}: {errors[0]}")

    def _create_many(self, rt, ids, bundle):
        self._setup_timed(rt, "created", ids, lambda cid: self.call(rt, "create", "create", "--bundle", bundle, cid))

    def _delete_many(self, rt, ids):
        self._setup_timed(rt, "deleted", ids, lambda cid: self.delete(rt, cid))

    def _setup_timed(self, rt, what, ids, fn):
        """The set-up's own cost, in the progress lines and the JSON: the
        median create (delete) of each batch tells whether they grow with
        the containers already there."""
        times = []

        def timed(cid):
            t0 = time.perf_counter()
            fn(cid)
            times.append((time.perf_counter() - t0) * 1e3)
        t0 = time.monotonic()
        try:
            self._parallel(rt, what, ids, timed)
        finally:
            if times:
                med = harness.stats(times)["median"]
                self.setup_log.append({"runtime": rt.name, "what": what, "count": len(times),
                                       "seconds": time.monotonic() - t0, "median_ms": med})
                harness.log_line(f"  {rt.name}: {len(times)} {what} in {time.monotonic() - t0:.1f} s "
                                 f"(median {med:.1f} ms each, {self.setup_workers} at once)")

    def room_for(self, count, scenario):
        """count containers per runtime at once: does the machine hold them?
        Returns the count it holds (and a note when that is fewer)."""
        with open("/proc/sys/kernel/pid_max") as f:
            pid_max = int(f.read())
        used = sum(1 for _ in os.scandir("/proc") if _.name.isdigit())
        mem = int(harness._field("/proc/meminfo", "MemAvailable").split()[0]) // 1024
        per = len(self.runtimes)
        fits = min((pid_max // 2 - used) // (PIDS_PER_CONTAINER * per), mem // 2 // (MIB_PER_CONTAINER * per))
        if fits < count:
            self.notes.append(f"{scenario}: scaled down from {count} to {fits} containers per runtime: "
                              f"pid_max {pid_max} with {used} processes, {mem} MiB available "
                              f"(at most half of each for {per} runtimes' containers)")
            return max(fits, 1)
        return count

    def fitting(self, scenario, top):
        """The sizes up to top, and top itself when it cut the list short."""
        want = self.sizes[scenario]
        return [s for s in want if s < top] + [top] if top < want[-1] else want

    def scenario_list(self, scenarios):
        want_list, want_state = "list" in scenarios, "state" in scenarios
        top = self.room_for(self.sizes["list"][-1], "list")
        made = {rt.name: [] for rt in self.runtimes}
        try:
            for n in self.fitting("list", top):
                for rt in self.runtimes:
                    new = [self.new_id(rt) for _ in range(n - len(made[rt.name]))]
                    made[rt.name] += new
                    try:
                        self._create_many(rt, new, self.sleeper)
                    except CallFailed as e:
                        for s in ("list", "state"):
                            self._fail(rt, s, e)
                if want_list:
                    self._sized("list", n, self._timed("list", "list"))
                if want_state:
                    self._sized("state", n, lambda rt: self._timed("state", "state", made[rt.name][0])(rt))
        finally:
            for rt in self.runtimes:
                try:
                    self._delete_many(rt, made[rt.name])
                except CallFailed as e:
                    harness.log_line(f"  {rt.name}: {e}")

    def scenario_state(self, scenarios):
        self.scenario_list(["state"])   # list's containers, state's samples only

    # -- memory: what each runtime leaves running, per container ----------------

    def scenario_memory(self, _):
        top = self.room_for(self.sizes["memory"][-1], "memory")
        for n in self.fitting("memory", top):
            for rt in self.runtimes:   # one at a time: no page shared across runtimes
                if (rt.name, "memory") in self._failed:
                    continue
                ids = [self.new_id(rt) for _ in range(n)]
                try:
                    harness.reap()
                    base, _ = left_running()
                    self._create_many(rt, ids, self.sleeper)
                    created, names_c = left_running()
                    self._parallel(rt, "start", ids, lambda cid: self.call(rt, "start", "start", cid))
                    running, names_r = self._after_exec(n)
                    self._record(rt, "memory", {"size": n, "created_kib": (created - base) / n,
                                                "running_kib": (running - base) / n,
                                                "created_procs": names_c, "running_procs": names_r})
                except CallFailed as e:
                    self._fail(rt, "memory", e)
                finally:
                    self._delete_many(rt, ids)

    def _after_exec(self, n):
        """left_running() once all n containers run `sleep`: start returns
        when the init has been told to go, not when it has exec'd."""
        deadline = time.monotonic() + 30
        while True:
            total, names = left_running()
            if names.get("sleep", 0) >= n:
                return total, names
            if time.monotonic() > deadline:
                raise CallFailed(f"memory: {n} containers started, {names.get('sleep', 0)} run sleep after 30 s")
            time.sleep(0.05)

    # -- exec into a container running N processes --------------------------------

    def scenario_exec(self, _):
        for n in self.sizes["exec"]:
            if n < 1:
                continue
            script = f"i=1; while [ $i -lt {n} ]; do sleep 1000 & i=$((i+1)); done; exec sleep 1000"
            bundle = self.variant(f"bundle-exec-{n}", ["sh", "-c", script])
            running = {}
            try:
                for rt in self.runtimes:
                    if (rt.name, "exec") in self._failed:
                        continue
                    cid = self.new_id(rt)
                    try:
                        self.call(rt, "create", "create", "--bundle", bundle, cid)
                        self.call(rt, "start", "start", cid)
                        running[rt.name] = cid
                        self._wait_processes(rt, cid, n)
                    except CallFailed as e:
                        self._fail(rt, "exec", e)
                self._sized("exec", n, lambda rt: {
                    "ms": self.call(rt, "exec", "exec", running[rt.name], "/bin/true").wall_ms})
            finally:
                for rt in self.runtimes:
                    if rt.name in running:
                        self.delete(rt, running[rt.name])

    def _wait_processes(self, rt, cid, n):
        pid = json.loads(self.call(rt, "state", "state", cid).out)["pid"]
        deadline = time.monotonic() + 60
        while pid_namespace_size(pid) < n:
            if time.monotonic() > deadline:
                raise CallFailed(f"exec: {cid} never ran {n} processes")
            time.sleep(0.05)


# -- the report ------------------------------------------------------------------

# (scenario, sample key, title, unit, size unit)
ROWS = [
    ("mounts", "ms", "create with N extra mounts", "ms", "mount"),
    ("seccomp", "ms", "create with N seccomp syscall names (0: none; the most: all of Docker's default)",
     "ms", "name"),
    ("list", "ms", "`list` with N created containers in the root", "ms", "container"),
    ("list", "cpu_ms", "CPU (user+sys) of that `list`", "ms", "container"),
    ("state", "ms", "`state ID` with N created containers in the root", "ms", "container"),
    ("memory", "created_kib", "PSS left per created container (N at once)", "KiB", "container"),
    ("memory", "running_kib", "PSS left per running container (N at once)", "KiB", "container"),
    ("exec", "ms", "`exec /bin/true` into a container of N processes", "ms", "process"),
]


def summarize(samples):
    """{scenario/key: {runtime: {size: stats}}}."""
    out = {}
    for scenario, key, *_ in ROWS:
        by_rt = out.setdefault(f"{scenario}/{key}", {})
        for name, by in samples.items():
            per = {}
            for s in by.get(scenario, ()):
                per.setdefault(s["size"], []).append(s.get(key))
            by_rt[name] = {size: harness.stats(xs) for size, xs in sorted(per.items())}
    return out


def _fmt(x, unit):
    return f"{x:.0f}" if unit == "KiB" else f"{x:.2f}"


def table(doc):
    meta, summary = doc["meta"], doc["summary"]
    names = [r["name"] for r in meta["runtimes"]]
    subject, others = names[0], names[1:]
    lines = report.header(meta)
    o = meta["options"]
    lines.append(f"{o['iterations']} samples per size and runtime (+{o['warmup']} warm-up); memory: one "
                 f"sample per size; bundle: busybox, config from {meta['config_source']}"
                 + ("; cgroup2 hidden (private mount namespace)" if meta["hide_cgroup2"] else ""))
    lines.append("")
    head = ["scenario", "N", "unit", *names] + [f"{subject}/{n}" for n in others]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|---|---:|---|" + "---:|" * (len(names) + len(others)))
    for scenario, key, title, unit, per in ROWS:
        by_rt = summary.get(f"{scenario}/{key}") or {}
        all_sizes = sorted({int(s) for v in by_rt.values() for s in v})
        if not all_sizes:
            continue
        failed = {f["runtime"] for f in doc["failures"] if f["scenario"] == scenario}

        def value(name, size, stat="median"):
            s = (by_rt.get(name) or {}).get(str(size)) or (by_rt.get(name) or {}).get(size)
            return s[stat] if s else None

        def cell(name, size):
            if value(name, size) is None:
                return "FAIL" if name in failed else "–"
            if scenario == "memory":   # one sample: no minimum to show
                return _fmt(value(name, size), unit)
            return f"{_fmt(value(name, size), unit)} ({_fmt(value(name, size, 'min'), unit)})"

        for size in all_sizes:
            cells = [cell(n, size) for n in names]
            cells += [_ratio(value(subject, size), value(n, size)) for n in others]
            lines.append(f"| {title} | {size} | {unit} | " + " | ".join(cells) + " |")
        # The per-item slope of each step between sizes: linear growth
        # keeps it level, worse than linear makes it climb.  For memory per
        # container the value is already per item: no slope.
        if scenario == "memory":
            continue
        for a, b in zip(all_sizes, all_sizes[1:]):
            def slope(n, stat):
                va, vb = value(n, a, stat), value(n, b, stat)
                return None if va is None or vb is None else (vb - va) / (b - a) * 1000
            slopes = [slope(n, "median") for n in names]
            cells = ["–" if s is None else f"{s:.1f} ({slope(n, 'min'):.1f})" for n, s in zip(names, slopes)]
            cells += [_ratio(slopes[0], s, slope=True) for s in slopes[1:]]
            lines.append(f"| ↳ slope {a}→{b} | | µs/{per} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(f"Medians (minima) over the samples; ↳ the slope of the row above between two sizes, in µs "
                 f"per item, of the medians (of the minima): level is linear, climbing is worse than linear.  "
                 f"Ratios are {subject} / other, of the medians: below 1 is better.")
    for note in doc.get("notes", ()):
        lines.append(f"- {note}")
    procs = _process_names(doc)
    if procs:
        lines.append("- processes left per container (memory): " + procs)
    for f in doc["failures"]:
        lines.append(f"- {f['runtime']} failed {f['scenario']}: {f['error']}")
    return "\n".join(lines)


def _ratio(a, b, slope=False):
    if a is None or b is None:
        return "n/a"
    if slope and (abs(b) < 1e-3 or a < 0 or b < 0):
        return "n/a"   # a flat or negative slope (noise): no ratio
    return f"{a / b:.2f}×" if b else "n/a"


def _process_names(doc):
    out = []
    for name, by in doc["samples"].items():
        mem = by.get("memory") or []
        if mem:
            s = mem[-1]
            each = lambda d: ", ".join(f"{k} ×{v / s['size']:g}" for k, v in sorted(d.items()))
            out.append(f"{name}: created {each(s['created_procs'])}; running {each(s['running_procs'])}")
    return "; ".join(out)


# -- the command line --------------------------------------------------------------

def parse_args(argv):
    p = argparse.ArgumentParser(prog="python3 -m benchmarks.scaling", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-n", "--iterations", type=int, default=10, help="samples per size and runtime")
    p.add_argument("--warmup", type=int, default=1, help="untimed rounds before each size")
    p.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated, from: " + ", ".join(SCENARIOS))
    p.add_argument("--mounts", default="0,50,200", help="extra mounts of the mounts scenario")
    p.add_argument("--seccomp-names", default="0,120,1000",
                   help="syscall names of Docker's profile for seccomp (0: no filter; more than it has: all)")
    p.add_argument("--containers", default="1,100,1000", help="containers in the root for list and state")
    p.add_argument("--running", default="1,100", help="containers at once for memory")
    p.add_argument("--processes", default="1,100", help="processes in the container for exec")
    p.add_argument("--setup-workers", type=int, default=2, help="threads creating and deleting containers (untimed)")
    session.add_arguments(p, "measure")
    o = p.parse_args(argv)
    o.scenarios = [s for s in o.scenarios.split(",") if s]
    bad = [s for s in o.scenarios if s not in SCENARIOS]
    if bad:
        p.error(f"--scenarios: unknown {', '.join(bad)}")
    if o.iterations < 1 or o.warmup < 0 or o.setup_workers < 1:
        p.error("-n and --setup-workers must be at least 1, --warmup at least 0")
    o.sizes = {"mounts": sizes(o.mounts, "mounts"), "seccomp": sizes(o.seccomp_names, "seccomp-names"),
               "list": sizes(o.containers, "containers"),
               "state": sizes(o.containers, "containers"), "memory": sizes(o.running, "running"),
               "exec": sizes(o.processes, "processes")}
    if min(o.sizes["list"] + o.sizes["memory"]) < 1:
        p.error("--containers and --running: at least 1")
    session.parse_runtimes(p, o)
    return o


def measure(o):
    runtimes, hide = session.prepare(o)
    meta = session.metadata(runtimes, hide, {"iterations": o.iterations, "warmup": o.warmup,
                                             "scenarios": o.scenarios, "sizes": o.sizes})
    bench = None
    with session.workdir(o, "ociruntime-scaling-") as workdir:
        try:
            cfg = session.make_bundle(workdir, meta, runtimes)
            bench = Scaling(runtimes, workdir, cfg, o.sizes, o.iterations, o.warmup, o.setup_workers)
            bench.run(o.scenarios)
        finally:
            if bench:
                bench.cleanup()
                bench.left_cgroups()
    meta["loadavg_end"] = list(os.getloadavg())
    doc = {"meta": meta, "samples": bench.samples, "failures": bench.failures, "notes": bench.notes,
           "setup": bench.setup_log}
    doc["summary"] = summarize(bench.samples)
    return json.loads(json.dumps(doc))   # the sizes as JSON keys, as --from-json reads them


def main(argv=None):
    o = parse_args(sys.argv[1:] if argv is None else argv)
    doc = session.main(o, measure, table)
    return 1 if doc["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
