"""The cgroup commands: update, pause, resume, events, ps (runc's)."""
import json
import os
import re
import sys

from ociruntime.cgroups import load
from ociruntime.errors import ContainerNotRunning, OciError
from ociruntime.state import Container


def _manager(c):
    return load(c.data)


def _load_live(root, cid):
    c = Container.load(root, cid)
    status = c.status()
    if status in ("stopped", "creating"):
        raise ContainerNotRunning("container not running")
    return c, status


# -- pause / resume -----------------------------------------------------------

def pause(root, cid):
    # runc: a running or created container; pausing a paused one is an error.
    c, status = _load_live(root, cid)
    if status == "paused":
        raise ContainerNotRunning("container not running")
    _manager(c).freeze()


def resume(root, cid):
    c, status = _load_live(root, cid)
    if status != "paused":
        raise OciError("container not paused")
    _manager(c).thaw()


# -- update ---------------------------------------------------------------------

_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
_RAM = re.compile(r"^(\d+(?:\.\d+)?) ?([kKmMgGtTpP])?[iI]?[bB]?$")


def parse_bytes(text, flag):
    """runc's units.RAMInBytes: 512, 512k, 1.5g, 64MiB; -1 is unlimited."""
    if text.strip() == "-1":
        return -1
    m = _RAM.match(text.strip())
    if not m:
        raise OciError(f"--{flag}: invalid size {text!r}")
    return int(float(m.group(1)) * _UNITS[(m.group(2) or "").lower()])


def _int(text, flag, minimum=None):
    try:
        n = int(text)
    except ValueError:
        raise OciError(f"--{flag}: not a number: {text!r}") from None
    if minimum is not None and n < minimum:
        raise OciError(f"--{flag}: {n} is below {minimum}")
    return n


# flag -> (group, key, parser)
UPDATE_FLAGS = {
    "memory": ("memory", "limit", parse_bytes),
    "memory-swap": ("memory", "swap", parse_bytes),
    "memory-reservation": ("memory", "reservation", parse_bytes),
    "kernel-memory": ("memory", "kernel", parse_bytes),
    "kernel-memory-tcp": ("memory", "kernelTCP", parse_bytes),
    "cpu-shares": ("cpu", "shares", lambda t, f: _int(t, f, 0)),
    "cpu-quota": ("cpu", "quota", lambda t, f: _int(t, f, -1)),
    "cpu-period": ("cpu", "period", lambda t, f: _int(t, f, 0)),
    "cpu-burst": ("cpu", "burst", lambda t, f: _int(t, f, 0)),
    "cpu-rt-period": ("cpu", "realtimePeriod", lambda t, f: _int(t, f, 0)),
    "cpu-rt-runtime": ("cpu", "realtimeRuntime", lambda t, f: _int(t, f)),
    "cpu-idle": ("cpu", "idle", lambda t, f: _int(t, f, 0)),
    "cpuset-cpus": ("cpu", "cpus", lambda t, f: t),
    "cpuset-mems": ("cpu", "mems", lambda t, f: t),
    "pids-limit": ("pids", "limit", lambda t, f: _int(t, f, -1)),
    "blkio-weight": ("blockIO", "weight", lambda t, f: _int(t, f, 0)),
}
CLI_FLAGS = dict({k: True for k in UPDATE_FLAGS}, resources=True, r="resources", **{"cpu-share": "cpu-shares"})


def read_resources(arg):
    """The LinuxResources object of `--resources FILE|-`."""
    try:
        if arg == "-":
            raw = sys.stdin.buffer.read()
        else:
            with open(arg, "rb") as f:
                raw = f.read()
    except OSError as e:
        raise OciError(f"--resources {arg}: {os.strerror(e.errno).lower()}") from None
    try:
        res = json.loads(raw) if raw.strip() else {}
    except (ValueError, RecursionError) as e:   # RecursionError: nested a thousand deep
        raise OciError(f"--resources {arg}: not JSON: {e}") from None
    if not isinstance(res, dict):
        raise OciError(f"--resources {arg}: not a JSON object (LinuxResources)")
    from ociruntime.config import check_strings   # no NUL, no lone surrogate
    check_strings(raw, res, f"--resources {arg}")
    return res


def resources_from_flags(opts):
    res = read_resources(opts["resources"]) if opts.get("resources") else {}
    for flag, (group, key, parse) in UPDATE_FLAGS.items():
        if flag in opts:
            res.setdefault(group, {})[key] = parse(opts[flag], flag)
    return res


def check_resources(res):
    """The update's LinuxResources against the config schema's (the same
    compiled validator as create): a wrong type is a one-line error naming
    the field, before anything is written."""
    from ociruntime._config_validator import _d_Resources   # the schema's "Resources"
    error = _d_Resources(res)
    if error is not None:
        raise OciError(f"linux.resources{error[0]}: {error[1]}")


def update(root, cid, res):
    check_resources(res)
    c, _status = _load_live(root, cid)
    _manager(c).update(res)


def stats(root, cid):
    """The cgroup statistics of a live container (events --stats' data)."""
    c, _status = _load_live(root, cid)
    return _manager(c).stats()


def pids(root, cid):
    """The host pids of a live container's processes (ps --format json)."""
    c = Container.load(root, cid)
    if c.status() in ("stopped", "creating"):
        raise ContainerNotRunning("container not running")
    return _manager(c).pids()


# -- ps ---------------------------------------------------------------------------

def ps(root, cid, fmt="table", ps_args=()):
    found = pids(root, cid)
    if fmt == "json":
        print(json.dumps(found, separators=(",", ":")))
        return 0
    if fmt != "table":
        raise OciError(f"--format: {fmt!r} is not table or json")
    import subprocess
    try:
        r = subprocess.run(["ps", *(ps_args or ["-ef"])], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    except OSError as e:
        raise OciError(f"ps: {os.strerror(e.errno).lower()}") from None
    out = r.stdout.decode(errors="replace")
    if r.returncode != 0:
        raise OciError(f"ps: {out.strip()}")
    lines = out.split("\n")
    header = lines[0].split()
    if "PID" not in header:
        raise OciError("ps: its output has no PID column")
    idx = header.index("PID")
    want = set(found)
    print(lines[0])
    for line in lines[1:]:
        f = line.split()
        if len(f) > idx and f[idx].isdigit() and int(f[idx]) in want:
            print(line)
    return 0


# -- events -------------------------------------------------------------------------

def parse_duration(text):
    """Go's time.ParseDuration subset: 5s, 100ms, 1m30s, 1.5h; a bare
    number is seconds."""
    units = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    parts = re.findall(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)", text)
    if not parts or "".join(a + b for a, b in parts) != text:
        raise OciError(f"--interval: invalid duration {text!r}")
    total = sum(float(n) * units[u] for n, u in parts)
    if total <= 0:
        raise OciError("--interval: the duration must be greater than 0")
    return total


def _emit(kind, cid, data=None):
    ev = {"type": kind, "id": cid}
    if data is not None:
        ev["data"] = data
    sys.stdout.write(json.dumps(ev, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def events(root, cid, stats_only=False, interval=5.0):
    import select
    import time
    if stats_only:
        _emit("stats", cid, stats(root, cid))
        return 0
    c, _status = _load_live(root, cid)
    mgr = _manager(c)
    efd = None
    v2mem = None
    mem = mgr.dir_of("memory")
    if mem and mem[0] == 1:
        from ociruntime.cgroups import v1
        efd = v1.oom_eventfd(mem[1])
    elif mem:
        from ociruntime.cgroups import v2
        v2mem = mem[1]
        ooms = v2.oom_kills(v2mem)
    tick = min(interval, 0.5)
    next_stats = time.monotonic()
    try:
        while True:
            now = time.monotonic()
            if now >= next_stats:
                if c.status() in ("stopped", "creating"):
                    return 0
                _emit("stats", cid, mgr.stats())
                next_stats = now + interval
            wait = max(0.0, min(tick, next_stats - time.monotonic()))
            if efd is not None:
                ready, _, _ = select.select([efd], [], [], wait)
                if ready:
                    os.eventfd_read(efd)
                    # It also fires when the cgroup goes away: an OOM only
                    # if the cgroup is still there.
                    if not os.path.exists(mem[1] + "/memory.oom_control"):
                        return 0
                    _emit("oom", cid)
            else:
                time.sleep(wait)
                if v2mem:
                    n = v2.oom_kills(v2mem)
                    if n > ooms:
                        ooms = n
                        _emit("oom", cid)
            if c.status() in ("stopped", "creating"):
                return 0
    except BrokenPipeError:
        return 0
    finally:
        if efd is not None:
            os.close(efd)
