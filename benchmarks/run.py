#!/usr/bin/env python3
"""Run the shared OCI runtime benchmark on ociruntime, runc and crun, and
print the table of issue 7 with ratios against runc and crun.

    python -m benchmarks              (from the repository root, as root)
    benchmarks/run.py -n 50 --bench /path/to/runtime_bench.py

The measuring is done by runtime_bench.py (../shared/bench/ beside the
repository unless --bench says where): it builds its own busybox bundle
from `runc spec`, interleaves the runtimes call by call and writes every
sample to JSON; this script only turns that JSON into the table.  It is
not a test: timings depend on the machine and its load.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_BENCH = os.path.join(os.path.dirname(REPO), "shared", "bench", "runtime_bench.py")

# (row of the table, scenario, bench summary label, unit, higher is better)
ROWS = [
    ("full cycle create→start→stopped→delete", "lifecycle", "lifecycle: create→start→stopped→delete", "ms", False),
    ("create", "lifecycle", "  ↳ create", "ms", False),
    ("start", "lifecycle", "  ↳ start", "ms", False),
    ("state", "lifecycle", "  ↳ `state` (one call)", "ms", False),
    ("delete", "lifecycle", "  ↳ delete", "ms", False),
    ("CPU of the full cycle (user+sys)", "lifecycle", "  ↳ CPU user+sys of the runtime calls", "ms", False),
    ("run /bin/true in the foreground", "run", "run (foreground, + delete if left)", "ms", False),
    ("exec /bin/true", "exec", "exec `/bin/true` in running container", "ms", False),
    ("2 parallel workers", "parallel", "parallel ×{W} `run`: throughput per round", "containers/s", True),
    ("create peak RSS", "memory", "memory: `create` peak RSS", "MiB", False),
]


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--bench", default=DEFAULT_BENCH, help="path of runtime_bench.py")
    p.add_argument("--ociruntime", default=os.path.join(REPO, ".venv", "bin", "ociruntime"))
    p.add_argument("--runc", default=shutil.which("runc") or "/usr/sbin/runc")
    p.add_argument("--crun", default=shutil.which("crun") or "/usr/bin/crun")
    p.add_argument("-n", "--iterations", type=int, default=50, help="samples per scenario and runtime")
    p.add_argument("--workers", type=int, default=2, help="parallel workers")
    p.add_argument("--scenarios", default="lifecycle,run,parallel,memory,exec")
    p.add_argument("--no-hide-cgroup2", action="store_true",
                   help="do not pass --hide-cgroup2 (crun refuses this host's cgroup2 with controllers)")
    p.add_argument("--json", metavar="FILE", help="keep the bench's raw JSON here")
    p.add_argument("--markdown", metavar="FILE", help="also write the table to FILE")
    p.add_argument("--from-json", metavar="FILE", help="only print the table of an earlier --json")
    p.add_argument("bench_args", nargs="*", help="more runtime_bench.py arguments (after --)")
    return p.parse_args(argv)


def run_bench(o, json_path):
    if not os.path.isfile(o.bench):
        raise SystemExit(f"runtime_bench.py not found at {o.bench}: pass --bench PATH")
    runtimes = [("ociruntime", o.ociruntime), ("runc", o.runc), ("crun", o.crun)]
    argv = [sys.executable, o.bench]
    for name, path in runtimes:
        if not os.access(path, os.X_OK):
            raise SystemExit(f"{name}: {path} is not executable")
        argv += ["--runtime", f"{name}={path}"]
    argv += ["-n", str(o.iterations), "--workers", str(o.workers),
             "--scenarios", o.scenarios, "--json", json_path]
    if not o.no_hide_cgroup2:
        argv.append("--hide-cgroup2")
    argv += o.bench_args
    print("$ " + " ".join(argv), file=sys.stderr, flush=True)
    # The bench's own Markdown report goes to stderr: ours is the table.
    r = subprocess.run(argv, stdout=sys.stderr)
    if r.returncode not in (0, 2):   # 2: cleanup problems, still a report
        raise SystemExit(f"runtime_bench.py failed (exit {r.returncode})")
    return argv


def _cell(summary, label, name):
    for row in summary["rows"]:
        if row["label"] == label:
            c = row["cells"].get(name) or {}
            return c.get("median"), c.get("p90"), c.get("failed", False)
    return None, None, False


def table(doc, argv=None):
    summary = doc["summary"]
    W = doc["meta"]["options"].get("workers", 2)
    names = ["ociruntime", "runc", "crun"]
    out = []
    m = doc["meta"]["machine"]
    out.append(f"machine: {m['os']}, kernel {m['kernel']}, {m['nproc']} CPUs ({m['cpu_model']}), "
               f"RAM {m['mem_total']}; load {' '.join(m['loadavg_start'])} at start, "
               f"{' '.join(doc['meta']['loadavg_end'])} at end")
    for n in names:
        rt = doc["runtimes"].get(n, {})
        out.append(f"{n}: {rt.get('path')} ({rt.get('version')})")
    if argv:
        out.append("command: " + " ".join(argv))
    out.append("")
    out.append("| scenario | unit | ociruntime | runc | crun | ociruntime/runc | ociruntime/crun | beats runc |")
    out.append("|---|---|---:|---:|---:|---:|---:|:---:|")
    for title, scen, label, unit, higher in ROWS:
        label = label.format(W=W)
        cells, med = [], {}
        for n in names:
            v, p90, failed = _cell(summary, label, n)
            med[n] = v
            nd = 1 if unit in ("MiB", "containers/s") else 2
            cells.append("FAIL" if failed else "–" if v is None else f"{v:.{nd}f} (p90 {p90:.{nd}f})")
        ratios = []
        for other in ("runc", "crun"):
            a, b = med["ociruntime"], med[other]
            ratios.append(f"{a / b:.2f}×" if a and b else "n/a")
        a, b = med["ociruntime"], med["runc"]
        beats = "n/a" if a is None or b is None else ("yes" if (a > b if higher else a < b) else "no")
        if title == "2 parallel workers":
            title = f"{W} parallel workers (`run`)"
        out.append(f"| {title} | {unit} | " + " | ".join(cells + ratios + [beats]) + " |")
    out.append("")
    out.append("Medians (p90) over the samples; ratios are ociruntime / other: below 1 is better "
               "for ms and MiB, above 1 is better for containers/s.")
    if doc.get("failures"):
        out.append("")
        for f in doc["failures"]:
            out.append(f"- {f['runtime']} failed {f['scenario']} at `{f['step']}`: {f['message']}; "
                       f"stderr: {(f.get('stderr') or '').strip().splitlines()[-1:]}")
    return "\n".join(out)


def main(argv=None):
    o = parse_args(sys.argv[1:] if argv is None else argv)
    bench_argv = None
    if o.from_json:
        path = o.from_json
    else:
        if os.geteuid() != 0:
            raise SystemExit("the benchmark runs containers: run it as root")
        path = o.json or os.path.join(tempfile.mkdtemp(prefix="ociruntime-bench-"), "bench.json")
        bench_argv = run_bench(o, path)
    with open(path) as f:
        doc = json.load(f)
    text = table(doc, bench_argv or doc["meta"].get("argv"))
    print(text)
    if o.markdown:
        with open(o.markdown, "w") as f:
            f.write(text + "\n")
    if not o.json and not o.from_json:
        shutil.rmtree(os.path.dirname(path), ignore_errors=True)
    return 0


if __name__ == "__main__":
    if __package__ in (None, ""):   # benchmarks/run.py: make `benchmarks` importable
        sys.path.insert(0, REPO)
    sys.exit(main())
