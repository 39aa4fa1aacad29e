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
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if __package__ in (None, ""):   # benchmarks/run.py: make `benchmarks` importable
    sys.path.insert(0, REPO)

from benchmarks import harness, report, session   # noqa: E402
from benchmarks.scenarios import SCENARIOS, Bench   # noqa: E402


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python3 -m benchmarks", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-n", "--iterations", type=int, default=30, help="samples per scenario and runtime")
    p.add_argument("--warmup", type=int, default=2, help="untimed rounds before each scenario")
    p.add_argument("--workers", default="2,8", metavar="W[,W...]",
                   help="concurrent `run`s in the parallel scenario: one round set per count (2,8)")
    p.add_argument("--rounds", type=int, default=3, help="rounds of the parallel scenario")
    p.add_argument("--scenarios", default=",".join(SCENARIOS),
                   help="comma-separated, from: " + ", ".join(SCENARIOS))
    session.add_arguments(p, "time")
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
    session.parse_runtimes(p, o)
    return o


def measure(o):
    if "memory" in o.scenarios and not os.access(harness.GNU_TIME, os.X_OK):
        raise SystemExit(f"memory: needs GNU time at {harness.GNU_TIME} (apt-get install time), "
                         "or leave it out with --scenarios")
    runtimes, hide = session.prepare(o)
    meta = session.metadata(runtimes, hide, {"iterations": o.iterations, "warmup": o.warmup,
                                             "workers": o.workers, "rounds": o.rounds,
                                             "scenarios": o.scenarios})
    bench = None
    with session.workdir(o, "ociruntime-bench-") as workdir:
        try:
            cfg = session.make_bundle(workdir, meta, runtimes)
            bench = Bench(runtimes, workdir, cfg, o.iterations, o.warmup, o.workers, o.rounds)
            bench.run(o.scenarios)
        finally:
            if bench:
                bench.cleanup()
    meta["loadavg_end"] = list(os.getloadavg())
    return {"meta": meta, "samples": bench.samples, "failures": bench.failures,
            "summary": report.summarize(bench.samples, meta["options"])}


def main(argv=None):
    o = parse_args(sys.argv[1:] if argv is None else argv)
    doc = session.main(o, measure, report.table)
    return 1 if doc["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
