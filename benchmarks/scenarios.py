"""The five scenarios, run on every runtime in turn, call by call (A B C,
then B C A, ...), so that the machine's drift hits them alike:

  lifecycle  create, start, `state` until stopped, delete (/bin/true):
             the whole cycle, each step, and the CPU of the calls
  run        `run` in the foreground (/bin/true)
  exec       `exec ID /bin/true` into a running `sleep 1000` container
  parallel   W workers doing `run` at once (W = 2, then 8): containers per
             second, CPU per container, and how idle the machine was
  memory     peak RSS of `create`

Every container gets an id of its own and each runtime a state root of its
own under the work directory; whatever is left (after a failure, on
Ctrl-C) is force-deleted at the end.
"""
import itertools
import json
import os
import threading
import time

from benchmarks import harness
from benchmarks.harness import CallFailed

SCENARIOS = ("lifecycle", "run", "exec", "parallel", "memory")


class Runtime:
    def __init__(self, name, path, workdir):
        self.name, self.path = name, path
        self.root = os.path.join(workdir, f"root-{name}")

    def argv(self, *args):
        return [self.path, "--root", self.root, *map(str, args)]


class Bench:
    def __init__(self, runtimes, workdir, bundle_cfg, iterations=30, warmup=2, workers=(2, 8), rounds=3):
        self.runtimes = [Runtime(n, p, workdir) for n, p in runtimes]
        self.workdir = workdir
        self.n, self.warmup, self.rounds = iterations, warmup, rounds
        self.workers = [workers] if isinstance(workers, int) else list(workers)
        self.samples = {rt.name: {s: [] for s in SCENARIOS} for rt in self.runtimes}
        self.failures = []
        self._failed = set()
        self._ids = itertools.count()
        self._live = {}          # container id -> runtime, until deleted
        self._lock = threading.Lock()
        self.bundle = self._bundle("bundle", bundle_cfg, ["/bin/true"])
        self.sleeper = self._bundle("bundle-sleep", bundle_cfg, ["sleep", "1000"])

    def _bundle(self, name, cfg, args):
        path = os.path.join(self.workdir, name)
        os.makedirs(path, exist_ok=True)
        cfg = json.loads(json.dumps(cfg))
        cfg["root"]["path"] = os.path.join(self.workdir, "bundle", "rootfs")
        cfg["process"]["args"] = args
        with open(os.path.join(path, "config.json"), "w") as f:
            json.dump(cfg, f, indent=1)
        return path

    # -- bookkeeping --------------------------------------------------------

    def new_id(self, rt):
        with self._lock:
            cid = f"ocibench-{os.getpid()}-{next(self._ids)}"
            self._live[cid] = rt
        return cid

    def call(self, rt, what, *args, timeout=60):
        return harness.call(rt.argv(*args), self.workdir, timeout).check(what)

    def delete(self, rt, cid):
        """Untimed, forced: whatever state the container is in."""
        harness.call(rt.argv("delete", "--force", cid), self.workdir)
        with self._lock:
            self._live.pop(cid, None)

    def cleanup(self):
        for cid, rt in list(self._live.items()):
            self.delete(rt, cid)
        harness.reap()

    def _record(self, rt, scenario, sample):
        self.samples[rt.name][scenario].append(sample)

    def _fail(self, rt, scenario, e):
        self._failed.add((rt.name, scenario))
        self.failures.append({"runtime": rt.name, "scenario": scenario, "error": str(e)})
        harness.log_line(f"  {rt.name} fails {scenario}: {e}")

    def _interleaved(self, scenario, once, n):
        order = list(self.runtimes)
        for i in range(self.warmup + n):
            for rt in order:
                if (rt.name, scenario) in self._failed:
                    continue
                try:
                    sample = once(rt)
                except CallFailed as e:
                    self._fail(rt, scenario, e)
                    continue
                finally:
                    harness.reap()
                if i >= self.warmup:
                    self._record(rt, scenario, sample)
            order = order[1:] + order[:1]

    # -- the scenarios ------------------------------------------------------

    def run(self, scenarios):
        for s in scenarios:
            harness.log_line(f"{s}: {self.n} samples per runtime")
            getattr(self, "scenario_" + s)()

    def scenario_lifecycle(self):
        def once(rt):
            cid = self.new_id(rt)
            try:
                t0 = time.perf_counter()
                create = self.call(rt, "create", "create", "--bundle", self.bundle, cid)
                start = self.call(rt, "start", "start", cid)
                states = []
                while True:
                    c = self.call(rt, "state", "state", cid)
                    states.append(c)
                    if json.loads(c.out).get("status") == "stopped":
                        break
                    if len(states) > 2000:
                        raise CallFailed(f"state: {cid} never stopped")
                delete = self.call(rt, "delete", "delete", cid)
                cycle = (time.perf_counter() - t0) * 1e3
                with self._lock:
                    self._live.pop(cid, None)
            finally:
                if cid in self._live:
                    self.delete(rt, cid)
            calls = [create, start, *states, delete]
            return {"cycle_ms": cycle, "create_ms": create.wall_ms, "start_ms": start.wall_ms,
                    "state_ms": states[0].wall_ms, "delete_ms": delete.wall_ms,
                    "cpu_ms": sum(c.cpu_ms for c in calls), "state_calls": len(states)}
        self._interleaved("lifecycle", once, self.n)

    def scenario_run(self):
        def once(rt):
            cid = self.new_id(rt)
            try:
                return {"run_ms": self.call(rt, "run", "run", "--bundle", self.bundle, cid).wall_ms}
            finally:
                self.delete(rt, cid)   # runc and ociruntime delete it already: harmless
        self._interleaved("run", once, self.n)

    def scenario_exec(self):
        running = {}
        try:
            for rt in self.runtimes:
                cid = self.new_id(rt)
                try:
                    self.call(rt, "create (sleep)", "create", "--bundle", self.sleeper, cid)
                    self.call(rt, "start (sleep)", "start", cid)
                    running[rt.name] = cid
                except CallFailed as e:
                    self._fail(rt, "exec", e)

            def once(rt):
                c = self.call(rt, "exec", "exec", running[rt.name], "/bin/true")
                return {"exec_ms": c.wall_ms, "cpu_ms": c.cpu_ms}
            self._interleaved("exec", once, self.n)
        finally:
            for rt in self.runtimes:
                if rt.name in running:
                    self.delete(rt, running[rt.name])

    def scenario_parallel(self):
        """For each worker count W: rounds × (W workers running `count`
        containers in all); each round's rate is its containers over its
        wall time.  Also the CPU each container took (its `run` and what
        it reaped: the init, the process) and how idle the machine was:
        a round that leaves no CPU idle is bound by CPU, not by waits."""
        for workers in self.workers:
            count = max(3 * workers, -(-self.n // self.rounds))
            order = list(self.runtimes)
            for _ in range(self.rounds):
                for rt in order:
                    if (rt.name, "parallel") in self._failed:
                        continue
                    try:
                        self._record(rt, "parallel", self._parallel_round(rt, workers, count))
                    except CallFailed as e:
                        self._fail(rt, "parallel", e)
                    finally:
                        harness.reap()
                order = order[1:] + order[:1]

    def _parallel_round(self, rt, workers, count):
        ids = [self.new_id(rt) for _ in range(count)]
        todo = iter(ids)
        errors, latencies, cpu = [], [], []

        def worker():
            for cid in todo:   # next() on a shared iterator: one id each
                try:
                    c = self.call(rt, "run", "run", "--bundle", self.bundle, cid)
                except CallFailed as e:
                    errors.append(e)
                    return
                latencies.append(c.wall_ms)
                cpu.append(c.cpu_ms)
        threads = [threading.Thread(target=worker) for _ in range(workers)]
        idle0 = harness.idle_seconds()
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
        idle = (harness.idle_seconds() - idle0) / (wall * (os.cpu_count() or 1))
        for cid in ids:
            self.delete(rt, cid)
        if errors:
            raise errors[0]
        return {"workers": workers, "rate": count / wall, "containers": count,
                "latency_ms": latencies, "cpu_ms": sum(cpu) / len(cpu), "idle": max(0.0, idle)}

    def scenario_memory(self):
        def once(rt):
            cid = self.new_id(rt)
            try:
                _, rss = harness.peak_rss_kib(rt.argv("create", "--bundle", self.bundle, cid), self.workdir)
            finally:
                self.delete(rt, cid)
            return {"rss_mib": rss / 1024}
        self._interleaved("memory", once, self.n)
