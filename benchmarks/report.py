"""The table: one row per measurement, the median and p90 of each
runtime, and the first runtime's ratio to each of the others."""
from benchmarks import harness

# (row, scenario, sample key, unit, higher is better)
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
    ("create peak RSS", "memory", "rss_mib", "MiB", False),
]


def summarize(samples):
    """{row key: {runtime: stats or None}} from {runtime: {scenario: [sample]}}."""
    out = {}
    for _, scenario, key, _, _ in ROWS:
        out[key] = {name: harness.stats([s.get(key) for s in by[scenario]]) for name, by in samples.items()}
    return out


def table(doc):
    meta, summary = doc["meta"], doc["summary"]
    names = [r["name"] for r in meta["runtimes"]]
    subject, others = names[0], names[1:]
    m = meta["machine"]
    lines = [f"machine: {m['os']}, kernel {m['kernel']}, {m['cpus']} CPUs ({m['cpu_model']}), "
             f"RAM {m['mem_total']}; load {' '.join(f'{x:.2f}' for x in m['loadavg'])} at start, "
             f"{' '.join(f'{x:.2f}' for x in meta['loadavg_end'])} at end"]
    for r in meta["runtimes"]:
        lines.append(f"{r['name']}: {r['path']} ({r['version']})")
    o = meta["options"]
    lines.append(f"{o['iterations']} samples per scenario and runtime (+{o['warmup']} warm-up), "
                 f"parallel: {o['workers']} workers × {o['rounds']} rounds; bundle: busybox, "
                 f"config from {meta['config_source']}"
                 + ("; cgroup2 hidden (private mount namespace)" if meta["hide_cgroup2"] else ""))
    lines.append("")
    head = ["scenario", "unit", *names] + [f"{subject}/{n}" for n in others]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|---|---|" + "---:|" * (len(names) + len(others)))
    for title, scenario, key, unit, _higher in ROWS:
        cells = []
        for n in names:
            s = summary[key].get(n)
            nd = 1 if unit in ("MiB", "containers/s") else 2
            failed = any(f["runtime"] == n and f["scenario"] == scenario for f in doc["failures"])
            cells.append("FAIL" if failed else "–" if s is None else f"{s['median']:.{nd}f} (p90 {s['p90']:.{nd}f})")
        for n in others:
            a, b = summary[key].get(subject), summary[key].get(n)
            cells.append(f"{a['median'] / b['median']:.2f}×" if a and b and b["median"] else "n/a")
        lines.append(f"| {title.format(W=o['workers'])} | {unit} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(f"Medians (p90) over the samples.  Ratios are {subject} / other: below 1 is better "
                 "for ms and MiB, above 1 for containers/s.")
    for f in doc["failures"]:
        lines.append(f"- {f['runtime']} failed {f['scenario']}: {f['error']}")
    return "\n".join(lines)
