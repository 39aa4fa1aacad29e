#!/usr/bin/env python3
"""Time ociruntime against runc and crun, side by side, and print a table
with ratios.  As root, from the repository root:

    python3 -m benchmarks                      # ociruntime, runc, crun; -n 30
    python3 -m benchmarks -n 100 --json /tmp/bench.json
    python3 -m benchmarks --from-json /tmp/bench.json   # the table again
    python3 -m benchmarks --runtime ociruntime=/usr/local/bin/ociruntime --runtime runc=/usr/sbin/runc

The first runtime is the one the ratios are of.  Not a test: timings
depend on the machine and its load (benchmarks/README.md).
"""
import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if __package__ in (None, ""):   # benchmarks/run.py: make `benchmarks` importable
    sys.path.insert(0, REPO)

from benchmarks import harness, report   # noqa: E402
from benchmarks.scenarios import SCENARIOS, Bench   # noqa: E402


def default_runtimes():
    found = [("ociruntime", harness.which("ociruntime", os.path.join(REPO, ".venv", "bin", "ociruntime"))),
             ("runc", harness.which("runc", "/usr/sbin/runc")),
             ("crun", harness.which("crun", "/usr/bin/crun"))]
    # The repository's own build first, when there is one.
    venv = os.path.join(REPO, ".venv", "bin", "ociruntime")
    if os.access(venv, os.X_OK):
        found[0] = ("ociruntime", venv)
    for name, path in found:
        if path is None:
            harness.log_line(f"{name}: not found, left out (--runtime {name}=PATH to name it)")
    return [(n, p) for n, p in found if p]


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python3 -m benchmarks", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runtime", action="append", metavar="NAME=PATH",
                   help="a runtime to time (repeat; the first is compared with the others); "
                        "default: ociruntime (.venv's, else PATH's), runc, crun")
    p.add_argument("-n", "--iterations", type=int, default=30, help="samples per scenario and runtime")
    p.add_argument("--warmup", type=int, default=2, help="untimed rounds before each scenario")
    p.add_argument("--workers", default="2,8", metavar="W[,W...]",
                   help="concurrent `run`s in the parallel scenario: one round set per count (2,8)")
    p.add_argument("--rounds", type=int, default=3, help="rounds of the parallel scenario")
    p.add_argument("--scenarios", default=",".join(SCENARIOS),
                   help="comma-separated, from: " + ", ".join(SCENARIOS))
    g = p.add_mutually_exclusive_group()
    g.add_argument("--hide-cgroup2", dest="hide", action="store_true", default=None,
                   help="run in a private mount namespace without /sys/fs/cgroup/unified (crun 1.8 "
                        "refuses a hybrid host otherwise); default: when crun runs on a hybrid host")
    g.add_argument("--no-hide-cgroup2", dest="hide", action="store_false")
    p.add_argument("--json", metavar="FILE", help="write every sample, the summary and the machine here")
    p.add_argument("--markdown", metavar="FILE", help="also write the table to FILE")
    p.add_argument("--from-json", metavar="FILE", help="print the table of an earlier --json, run nothing")
    p.add_argument("--workdir", help="where bundles and state roots go (default: a new temporary directory)")
    o = p.parse_args(argv)
    o.scenarios = [s for s in o.scenarios.split(",") if s]
    bad = [s for s in o.scenarios if s not in SCENARIOS]
    if bad:
        p.error(f"--scenarios: unknown {', '.join(bad)}")
    try:
        o.workers = [int(w) for w in o.workers.split(",")]
    except ValueError:
        p.error(f"--workers {o.workers!r}: expected counts like 2 or 2,8")
    if min(o.iterations, *o.workers, o.rounds) < 1 or o.warmup < 0:
        p.error("-n, --workers and --rounds must be at least 1, --warmup at least 0")
    runtimes = []
    for spec in o.runtime or []:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            p.error(f"--runtime {spec!r}: expected NAME=PATH")
        runtimes.append((name, path))
    o.runtimes = runtimes or None
    return o


def measure(o):
    runtimes = o.runtimes or default_runtimes()
    for name, path in runtimes:
        if not os.access(path, os.X_OK):
            raise SystemExit(f"--runtime {name}: {path} is not executable")
    if len({n for n, _ in runtimes}) != len(runtimes):
        raise SystemExit("--runtime: each name once")
    if "memory" in o.scenarios and not os.access(harness.GNU_TIME, os.X_OK):
        raise SystemExit(f"memory: needs GNU time at {harness.GNU_TIME} (apt-get install time), "
                         "or leave it out with --scenarios")
    hide = o.hide if o.hide is not None else (
        any(n == "crun" or p.endswith("/crun") for n, p in runtimes) and harness.hybrid_cgroup2())
    if hide:
        harness.hide_cgroup2()
    harness.become_subreaper()
    workdir = o.workdir or tempfile.mkdtemp(prefix="ociruntime-bench-")
    os.makedirs(workdir, exist_ok=True)
    meta = {"machine": harness.machine(), "argv": sys.argv, "hide_cgroup2": bool(hide),
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "runtimes": [{"name": n, "path": p, "version": harness.version_of(p)} for n, p in runtimes],
            "options": {"iterations": o.iterations, "warmup": o.warmup, "workers": o.workers,
                        "rounds": o.rounds, "scenarios": o.scenarios}}
    runc = dict(runtimes).get("runc") or harness.which("runc", "/usr/sbin/runc")
    bench = None
    try:
        cfg, meta["config_source"] = harness.make_bundle(os.path.join(workdir, "bundle"), REPO, runc)
        bench = Bench(runtimes, workdir, cfg, o.iterations, o.warmup, o.workers, o.rounds)
        bench.run(o.scenarios)
    finally:
        if bench:
            bench.cleanup()
        if not o.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            for name in os.listdir(workdir):   # ours only: the bundles and state roots
                if name.startswith(("bundle", "root-")):
                    shutil.rmtree(os.path.join(workdir, name), ignore_errors=True)
    meta["loadavg_end"] = list(os.getloadavg())
    return {"meta": meta, "samples": bench.samples, "failures": bench.failures,
            "summary": report.summarize(bench.samples, meta["options"])}


def _terminate(signum, frame):
    raise KeyboardInterrupt   # through the finally blocks: containers deleted


def main(argv=None):
    o = parse_args(sys.argv[1:] if argv is None else argv)
    if o.from_json:
        with open(o.from_json) as f:
            doc = json.load(f)
    else:
        if os.geteuid() != 0:
            raise SystemExit("the benchmark runs containers: run it as root")
        signal.signal(signal.SIGTERM, _terminate)
        doc = measure(o)
        if o.json:
            with open(o.json, "w") as f:
                json.dump(doc, f, indent=1)
    text = report.table(doc)
    print(text)
    if o.markdown:
        with open(o.markdown, "w") as f:
            f.write(text + "\n")
    return 1 if doc["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
