"""Where create's (or run's) time goes: the median of each phase of the
`--debug` trace (ociruntime/log.py) over N calls.

    python3 -m benchmarks.phases [-n 20] [--command create|run|exec] [--workers W] [--bundle DIR]

The bundle defaults to bundles/busybox with /bin/true and no terminal;
exec runs /bin/true in a container of it running `sleep 1000`.  With
--workers W, W calls run at once (N each): the phases that grow against
one worker are where parallel calls wait for each other.
With --debug every phase costs a little more than without (the plan is
logged, json is imported): compare phases with each other, and the
total with an untraced run's."""
import argparse
import json
import os
import re
import statistics
import subprocess
import tempfile
import uuid

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PHASE = re.compile(r"^\S+ \S+: phase (.+): (-?\d+\.\d+) ms$")
TOTAL = re.compile(r"^\S+ \S+: (\d+\.\d+) ms in all")


def _bundle(tmp, args=("/bin/true",)):
    with open(os.path.join(REPO, "bundles", "busybox", "config.json")) as f:
        cfg = json.load(f)
    cfg["process"].update(args=list(args), terminal=False)
    cfg["root"]["path"] = os.path.join(REPO, "bundles", "busybox", "rootfs")
    with open(os.path.join(tmp, "config.json"), "w") as f:
        json.dump(cfg, f)
    return tmp


def trace_once(runtime, root, bundle, command, log, target=None):
    """One traced call: create/run of a new container, or an exec of
    /bin/true into target."""
    cid = "phases-" + uuid.uuid4().hex[:8]
    open(log, "w").close()
    args = ["exec", target, "/bin/true"] if target else [command, "-b", bundle, cid]
    subprocess.run([runtime, "--root", root, "--debug", "--log", log, "--log-format", "json",
                    *args], check=True, stdin=subprocess.DEVNULL,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if not target:
        subprocess.run([runtime, "--root", root, "delete", "--force", cid], check=True)
    phases, total = {}, None
    with open(log) as f:
        for line in f:
            msg = json.loads(line)["msg"]
            if m := PHASE.match(msg):   # a phase seen twice (init: process) adds up
                phases[m.group(1)] = phases.get(m.group(1), 0.0) + float(m.group(2))
            elif m := TOTAL.match(msg):
                total = float(m.group(1))
    return phases, total


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("-n", type=int, default=20)
    p.add_argument("--command", choices=("create", "run", "exec"), default="create")
    p.add_argument("--runtime", default=os.path.join(REPO, ".venv", "bin", "ociruntime"))
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--bundle")
    o = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        root, log = os.path.join(tmp, "root"), os.path.join(tmp, "log.json")
        target = None
        if o.command == "exec":
            bundle = o.bundle or _bundle(tmp, ("/bin/sleep", "1000"))
            target = "phases-" + uuid.uuid4().hex[:8]
            subprocess.run([o.runtime, "--root", root, "run", "-d", "-b", bundle, target], check=True,
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        else:
            bundle = o.bundle or _bundle(tmp)
        def worker(w):
            wlog = f"{log}.{w}"
            return [trace_once(o.runtime, root, bundle, o.command, wlog, target)
                    for _ in range(o.n + 1)][1:]
        try:
            from concurrent.futures import ThreadPoolExecutor
            with ThreadPoolExecutor(o.workers) as pool:
                runs = [r for rs in pool.map(worker, range(o.workers)) for r in rs]
        finally:
            if target:
                subprocess.run([o.runtime, "--root", root, "delete", "--force", target], check=True)
    order = list(dict.fromkeys(name for phases, _ in runs for name in phases))
    each = f", {o.workers} workers at once" if o.workers > 1 else ""
    print(f"| phase of `{o.command}` (median of {len(runs)}{each}, ms) | median | min | max |\n|---|---:|---:|---:|")
    for name in order:
        v = [phases.get(name, 0.0) for phases, _ in runs]
        print(f"| {name} | {statistics.median(v):.2f} | {min(v):.2f} | {max(v):.2f} |")
    totals = [t for _, t in runs]
    print(f"| **in all** | {statistics.median(totals):.2f} | {min(totals):.2f} | {max(totals):.2f} |")


if __name__ == "__main__":
    main()
