"""The table: one row per measurement, the median and p90 of each
runtime, and the first runtime's ratio to each of the others."""
from benchmarks import harness

# (row, scenario, sample key, unit, higher is better); the parallel rows
# are repeated for each worker count ({W}).
ROWS = [
    ("full cycle create→start→stopped→delete", "lifecycle", "cycle_ms", "ms", False),
    ("create", "lifecycle", "create_ms", "ms", False),
    ("start", "lifecycle", "start_ms", "ms", False),
    ("state", "lifecycle", "state_ms", "ms", False),
    ("delete", "lifecycle", "delete_ms", "ms", False),
    ("CPU of the full cycle (user+sys)", "lifecycle", "cpu_ms", "ms", False),
    ("run /bin/true in the foreground", "run", "run_ms", "ms", False),
    ("exec /bin/true", "exec", "exec_ms", "ms", False),
    ("{W} parallel workers (`run`)", "parallel", "rate", "containers/s", True),
    ("CPU per container, {W} workers (user+sys)", "parallel", "cpu_ms", "ms", False),
    ("create peak RSS", "memory", "rss_mib", "MiB", False),
]


def worker_counts(options):
    w = options["workers"]
    return [w] if isinstance(w, int) else list(w)


def rows(options):
    """(title, scenario, summary key, sample key, unit, workers or None)."""
    out = []
    for title, scenario, key, unit, _higher in ROWS:
        if "{W}" not in title:
            out.append((title, scenario, key, key, unit, None))
            continue
        for w in worker_counts(options):
            out.append((title.format(W=w), scenario, f"{key}@{w}", key, unit, w))
    return out


def summarize(samples, options):
    """{row key: {runtime: stats or None}} from {runtime: {scenario: [sample]}};
    a parallel sample counts for its own worker count (an older one
    without it, for the only count there was)."""
    out = {}
    only = worker_counts(options)[0]
    for _, scenario, key, sample_key, _, w in rows(options):
        out[key] = {name: harness.stats([s.get(sample_key) for s in by[scenario]
                                         if w is None or s.get("workers", only) == w])
                    for name, by in samples.items()}
    return out


def idle_line(samples, options):
    """How idle the machine was in the parallel rounds, per runtime."""
    parts = []
    for w in worker_counts(options):
        cells = []
        for name, by in samples.items():
            st = harness.stats([s.get("idle") for s in by.get("parallel", ()) if s.get("workers") == w])
            if st:
                cells.append(f"{name} {st['median']:.0%}")
        if cells:
            parts.append(f"{w} workers: " + ", ".join(cells))
    return ("CPU idle during the parallel rounds (median): " + "; ".join(parts) + ".") if parts else None


def header(meta):
    """A run's first lines: the machine, its load, each runtime."""
    m = meta["machine"]
    lines = [f"machine: {m['os']}, kernel {m['kernel']}, {m['cpus']} CPUs ({m['cpu_model']}), "
             f"RAM {m['mem_total']}; load {' '.join(f'{x:.2f}' for x in m['loadavg'])} at start, "
             f"{' '.join(f'{x:.2f}' for x in meta['loadavg_end'])} at end"]
    for r in meta["runtimes"]:
        lines.append(f"{r['name']}: {r['path']} ({r['version']})")
    return lines


def table(doc):
    meta = doc["meta"]
    summary = summarize(doc["samples"], meta["options"])   # an older --json's summary has other keys
    names = [r["name"] for r in meta["runtimes"]]
    subject, others = names[0], names[1:]
    lines = header(meta)
    o = meta["options"]
    lines.append(f"{o['iterations']} samples per scenario and runtime (+{o['warmup']} warm-up), "
                 f"parallel: {','.join(map(str, worker_counts(o)))} workers × {o['rounds']} rounds; bundle: busybox, "
                 f"config from {meta['config_source']}"
                 + ("; cgroup2 hidden (private mount namespace)" if meta["hide_cgroup2"] else ""))
    lines.append("")
    head = ["scenario", "unit", *names] + [f"{subject}/{n}" for n in others]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|---|---|" + "---:|" * (len(names) + len(others)))
    for title, scenario, key, _sample_key, unit, _w in rows(o):
        cells = []
        for n in names:
            s = summary[key].get(n)
            nd = 1 if unit in ("MiB", "containers/s") else 2
            failed = any(f["runtime"] == n and f["scenario"] == scenario for f in doc["failures"])
            cells.append("FAIL" if failed else "–" if s is None else f"{s['median']:.{nd}f} (p90 {s['p90']:.{nd}f})")
        for n in others:
            a, b = summary[key].get(subject), summary[key].get(n)
            cells.append(f"{a['median'] / b['median']:.2f}×" if a and b and b["median"] else "n/a")
        lines.append(f"| {title} | {unit} | " + " | ".join(cells) + " |")
    lines.append("")
    idle = idle_line(doc["samples"], o)
    if idle:
        lines.append(idle)
    lines.append(f"Medians (p90) over the samples.  Ratios are {subject} / other: below 1 is better "
                 "for ms and MiB, above 1 for containers/s.")
    for f in doc["failures"]:
        lines.append(f"- {f['runtime']} failed {f['scenario']}: {f['error']}")
    return "\n".join(lines)
