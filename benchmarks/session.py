"""What every benchmark command shares (run.py, scaling.py): the flags
that name the runtimes and the output, the host's set-up (crun's hidden
cgroup2, the subreaper), the run's metadata, the work directory and its
clean-up, and the main that prints a table now or from an earlier --json."""
import contextlib
import json
import os
import shutil
import signal
import sys
import tempfile
import time

from benchmarks import harness

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


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


def add_arguments(p, verb):
    """The flags every benchmark takes; verb: what it does to a runtime."""
    p.add_argument("--runtime", action="append", metavar="NAME=PATH",
                   help=f"a runtime to {verb} (repeat; the first is compared with the others); "
                        "default: ociruntime (.venv's, else PATH's), runc, crun")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--hide-cgroup2", dest="hide", action="store_true", default=None,
                   help="run in a private mount namespace without /sys/fs/cgroup/unified (crun 1.8 "
                        "refuses a hybrid host otherwise); default: when crun runs on a hybrid host")
    g.add_argument("--no-hide-cgroup2", dest="hide", action="store_false")
    p.add_argument("--json", metavar="FILE", help="write every sample, the summary and the machine here")
    p.add_argument("--markdown", metavar="FILE", help="also write the table to FILE")
    p.add_argument("--from-json", metavar="FILE", help="print the table of an earlier --json, run nothing")
    p.add_argument("--workdir", help="where bundles and state roots go (default: a new temporary directory)")


def parse_runtimes(p, o):
    """o.runtimes: the --runtime NAME=PATH pairs, or None for the default."""
    runtimes = []
    for spec in o.runtime or []:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            p.error(f"--runtime {spec!r}: expected NAME=PATH")
        runtimes.append((name, path))
    o.runtimes = runtimes or None


def prepare(o):
    """The runtimes to measure, checked; the host set up for them.
    Returns (runtimes, whether cgroup2 is hidden)."""
    runtimes = o.runtimes or default_runtimes()
    for name, path in runtimes:
        if not os.access(path, os.X_OK):
            raise SystemExit(f"--runtime {name}: {path} is not executable")
    if len({n for n, _ in runtimes}) != len(runtimes):
        raise SystemExit("--runtime: each name once")
    hide = o.hide if o.hide is not None else (
        any(n == "crun" or p.endswith("/crun") for n, p in runtimes) and harness.hybrid_cgroup2())
    if hide:
        harness.hide_cgroup2()
    harness.become_subreaper()
    return runtimes, bool(hide)


def metadata(runtimes, hide, options):
    return {"machine": harness.machine(), "argv": sys.argv, "hide_cgroup2": hide,
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "runtimes": [{"name": n, "path": p, "version": harness.version_of(p)} for n, p in runtimes],
            "options": options}


@contextlib.contextmanager
def workdir(o, prefix):
    """--workdir, or a temporary directory; afterwards the temporary one
    is removed, or only our bundles and state roots from --workdir."""
    path = o.workdir or tempfile.mkdtemp(prefix=prefix)
    os.makedirs(path, exist_ok=True)
    try:
        yield path
    finally:
        if not o.workdir:
            shutil.rmtree(path, ignore_errors=True)
        else:
            for name in os.listdir(path):
                if name.startswith(("bundle", "root-")):
                    shutil.rmtree(os.path.join(path, name), ignore_errors=True)


def make_bundle(path, meta, runtimes):
    """The busybox bundle every runtime runs, from runc's `spec` when
    there is a runc; its config, and its source noted in meta."""
    runc = dict(runtimes).get("runc") or harness.which("runc", "/usr/sbin/runc")
    cfg, meta["config_source"] = harness.make_bundle(os.path.join(path, "bundle"), REPO, runc)
    return cfg


def _terminate(signum, frame):
    raise KeyboardInterrupt   # through the finally blocks: containers deleted


def main(o, measure, table):
    """Measure (as root) or read --from-json; print the table, and write
    --json and --markdown.  Returns the run's document."""
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
    text = table(doc)
    print(text)
    if o.markdown:
        with open(o.markdown, "w") as f:
            f.write(text + "\n")
    return doc
