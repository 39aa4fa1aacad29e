"""Helpers for the real-container tests (used with the `oci` fixture).

Everything here looks at real processes and files from the outside; no
mocks.  Waiting is done with pidfds or polling under generous deadlines:
nothing asserts how long something took.
"""
import json
import os
import select
import time

from conftest import busybox_config


def sh(script):
    return ["sh", "-c", script]


def config(args=None):
    """A fresh busybox config (see bundles/busybox/config.json)."""
    return busybox_config(args)


def namespaces(cfg):
    return cfg["linux"]["namespaces"]


def set_ns(cfg, kind, path=None):
    """Add (or replace) a namespace entry."""
    drop_ns(cfg, kind)
    entry = {"type": kind}
    if path:
        entry["path"] = path
    namespaces(cfg).append(entry)
    return cfg


def drop_ns(cfg, kind):
    cfg["linux"]["namespaces"] = [n for n in namespaces(cfg) if n["type"] != kind]
    return cfg


def add_userns(cfg, host_id=100000, size=65536, oci=None):
    """A new user namespace mapping 0.. to host_id..; with oci, the test's
    later bundles go where the mapped root can reach them (see open_tmp)."""
    if oci is not None:
        open_tmp(oci)
    set_ns(cfg, "user")
    cfg["linux"]["uidMappings"] = [{"containerID": 0, "hostID": host_id, "size": size}]
    cfg["linux"]["gidMappings"] = [{"containerID": 0, "hostID": host_id, "size": size}]
    return cfg


def open_tmp(oci):
    """Make oci put its bundles in a world-traversable directory: pytest's
    tmp dirs are 0700 (and every new pytest session resets that), so a
    user namespace's root could not reach a rootfs there.  The directory
    goes after the fixture's cleanup found nothing left in it."""
    if getattr(oci, "_open_tmp", None):
        return oci.tmp
    import shutil
    import tempfile
    from pathlib import Path
    d = Path(tempfile.mkdtemp(prefix="ociruntime-test-open-", dir="/tmp"))
    os.chmod(d, 0o755)
    oci._open_tmp = oci.tmp = d
    inner = oci.cleanup

    def cleanup():
        left = inner()
        if not left:
            shutil.rmtree(d, ignore_errors=True)
        return left
    oci.cleanup = cleanup
    return d


def status_fields(text):
    """{field: value} of a /proc/PID/status text."""
    out = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        out[key] = value.strip()
    return out


def proc_status(pid):
    with open(f"/proc/{pid}/status") as f:
        return status_fields(f.read())


def ns_link(pid, name):
    return os.readlink(f"/proc/{pid}/ns/{name}")


def wait_for(predicate, what=None, timeout=20.0):
    """Poll predicate until it is true; its value.  On timeout: an
    AssertionError naming `what`, or False when no `what` is given (for
    callers that check a negative, or assert themselves)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            if what is None:
                return False
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def wait_gone(pid, timeout=20.0):
    """Wait until pid has exited (works for processes that are not our
    children); True if it is gone."""
    if pid <= 0:   # `state` says 0 once the container stopped
        return True
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        p = select.poll()
        p.register(fd, select.POLLIN)
        return bool(p.poll(int(timeout * 1000)))
    finally:
        os.close(fd)


def wait_status(oci, cid, want, timeout=20.0):
    deadline = time.monotonic() + timeout
    while True:
        st = oci.state(cid)
        if st["status"] == want or time.monotonic() > deadline:
            return st
        time.sleep(0.02)


def pid_alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except OSError:   # ENOENT, or ESRCH while it is being reaped
        return False
    return data[data.rindex(")") + 2] not in "ZX"


def leftover_processes(oci):
    """Processes that belong to this test's containers: a copy of the
    runtime before exec (its command line names the test's --root) or
    anything in a cgroup named after one of the test's ids."""
    found = []
    me = os.getpid()
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == me:
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                cmdline = f.read().decode(errors="replace")
            with open(f"/proc/{name}/cgroup") as f:
                cgroup = f.read()
        except OSError:
            continue
        if not pid_alive(int(name)):
            continue
        if oci.root in cmdline or any(cid in cgroup for cid in oci.ids):
            found.append((int(name), cmdline.replace("\0", " ")))
    return found


def assert_one_line_error(r, *needles):
    """exit 1, a single line on stderr containing every needle, no traceback."""
    assert r.returncode == 1, f"want exit 1, got {r.returncode}: {r.stderr!r}"
    assert "Traceback" not in r.stderr and "Traceback" not in r.stdout, r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 1, f"want one line on stderr, got {lines!r}"
    for n in needles:
        assert n in lines[0], f"{n!r} not in {lines[0]!r}"
    return lines[0]


def json_log_errors(path):
    """The error records of a --log-format json file."""
    out = []
    with open(path) as f:
        for line in f:
            rec = json.loads(line)
            assert set(rec) >= {"level", "msg", "time"}, rec
            if rec["level"] == "error":
                out.append(rec)
    return out


class Running:
    """create + start a container; .cid, .pid; delete --force on exit."""

    def __init__(self, oci, cfg=None, args=None, start=True):
        self.oci = oci
        self.bundle = oci.bundle(cfg, args)
        self.cid = oci.new_id()
        r = oci.create("-b", self.bundle, self.cid)
        assert r.returncode == 0, f"create failed ({r.returncode}): {r.stderr}"
        if start:
            oci.ok("start", self.cid)
        self.pid = oci.state(self.cid)["pid"]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.oci.cmd("delete", "--force", self.cid)


def host_cgroups(pid="self"):
    """{controllers field: path} of /proc/PID/cgroup."""
    out = {}
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            out[ctrls] = path
    return out


def cmd_files(oci, *args, global_args=(), **kw):
    """`ociruntime ARGS` with stdio on files (see Oci.create): for `run -d`
    and anything else that leaves a container holding its stdio."""
    import subprocess
    oci._n += 1
    out, err = oci.tmp / f"cmd{oci._n}.out", oci.tmp / f"cmd{oci._n}.err"
    with open(out, "w+") as o, open(err, "w+") as e:
        r = oci.cmd(*args, global_args=global_args, capture_output=False,
                    stdin=subprocess.DEVNULL, stdout=o, stderr=e, **kw)
        o.seek(0)
        e.seek(0)
        r.stdout, r.stderr = o.read(), e.read()
    return r


def cgroup_dir(pid):
    """The host directory of pid's cgroup on the pids hierarchy (v1), or
    the unified one (v2): where to read its cgroup.procs."""
    from ociruntime.cgroups import host_hierarchies
    mnts = {key: mnt for _n, _t, key, mnt, _r, _o in host_hierarchies()}
    key = "pids" if "pids" in mnts else ""
    return mnts[key] + host_cgroups(pid)[key]


def read(path):
    """A cgroup (or any small) file's content, stripped."""
    with open(path) as f:
        return f.read().strip()


def state_cgroup_dir(oci, cid, controller):
    """The container's directory for controller, as its state.json records."""
    from ociruntime import cgroups
    with open(os.path.join(oci.root, cid, "state.json")) as f:
        paths = json.load(f)["cgroups"]
    return paths[cgroups.Layout.probe().locate(controller)[1]]


FELL_BACK = 99


def front_end_alone(d):
    """A copy of the C front end in directory d, beside a `python3` that
    only says it was called and exits FELL_BACK: a command the front end
    hands to Python shows it, so a test sees which calls stay in C."""
    import shutil
    from conftest import RUNTIME
    d.mkdir(exist_ok=True)
    shutil.copy(RUNTIME, d / "ociruntime")
    (d / "python3").write_text(f"#!/bin/sh\necho fell back to python: \"$@\" >&2\nexit {FELL_BACK}\n")
    os.chmod(d / "python3", 0o755)
    return d / "ociruntime"
