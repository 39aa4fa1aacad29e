"""Shared fixtures: real containers from the busybox bundle, as root.

`oci` gives each test its own state root, bundles (each with its own copy
of the busybox rootfs) and container ids; at the end it force-deletes
every container the test made and fails the test if anything is left:
state directories, cgroups named after its ids, mounts of its bundles.
"""
import copy
import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
RUNTIME = os.environ.get("OCIRUNTIME", str(REPO / ".venv" / "bin" / "ociruntime"))
ROOTFS = REPO / "bundles" / "busybox" / "rootfs"
BASE_CONFIG = REPO / "bundles" / "busybox" / "config.json"


def busybox_config(args=None):
    """The busybox bundle's config (a fresh copy), with args replaced."""
    with open(BASE_CONFIG) as f:
        cfg = json.load(f)
    if args is not None:
        cfg["process"]["args"] = list(args)
    return cfg


class Oci:
    def __init__(self, tmp_path):
        self.tmp = tmp_path
        self.root = f"/run/ociruntime-test-{uuid.uuid4().hex[:10]}"
        self.ids = []
        self._n = 0

    def new_id(self, prefix="ociruntime-test"):
        cid = f"{prefix}-{uuid.uuid4().hex[:8]}"
        self.ids.append(cid)
        return cid

    def bundle(self, cfg=None, args=None):
        """A bundle dir with its own rootfs copy and the given config."""
        self._n += 1
        b = self.tmp / f"bundle{self._n}"
        b.mkdir()
        shutil.copytree(ROOTFS, b / "rootfs", symlinks=True)
        cfg = copy.deepcopy(cfg) if cfg is not None else busybox_config(args)
        if args is not None:
            cfg["process"]["args"] = list(args)
        (b / "config.json").write_text(json.dumps(cfg, indent=1))
        return b

    def cmd(self, *args, global_args=(), **kw):
        """Run `ociruntime --root ROOT [global_args] args...`."""
        kw.setdefault("capture_output", True)
        kw.setdefault("text", True)
        kw.setdefault("timeout", 60)
        return subprocess.run([RUNTIME, "--root", self.root, *global_args, *map(str, args)], **kw)

    def ok(self, *args, **kw):
        r = self.cmd(*args, **kw)
        assert r.returncode == 0, f"ociruntime {' '.join(map(str, args))} failed ({r.returncode}): {r.stderr}"
        return r

    def create(self, *args, global_args=(), **kw):
        """`ociruntime create ARGS` with stdout/stderr on files, not pipes:
        the init inherits them, so a captured `create` would wait for EOF
        until the container exits.  Returns a CompletedProcess whose
        stdout/stderr are the files' text once `create` returned."""
        self._n += 1
        out, err = self.tmp / f"create{self._n}.out", self.tmp / f"create{self._n}.err"
        with open(out, "w+") as o, open(err, "w+") as e:
            r = self.cmd("create", *args, global_args=global_args, capture_output=False,
                         stdin=subprocess.DEVNULL, stdout=o, stderr=e, **kw)
            o.seek(0)
            e.seek(0)
            r.stdout, r.stderr = o.read(), e.read()
        return r

    def state(self, cid):
        return json.loads(self.ok("state", cid).stdout)

    def run_output(self, args=None, cfg=None, **kw):
        """Run a container in the foreground; (exit code, stdout, stderr)."""
        b = self.bundle(cfg, args)
        cid = self.new_id()
        r = self.cmd("run", "-b", b, cid, **kw)
        return r.returncode, r.stdout, r.stderr

    def cleanup(self):
        for cid in self.ids:
            self.cmd("delete", "--force", cid)
        leftovers = []
        if os.path.isdir(self.root):
            leftovers += [f"state dir {self.root}/{n}" for n in os.listdir(self.root)]
            shutil.rmtree(self.root, ignore_errors=True)
        # os.walk, not rglob: engines (podman's cleanup) remove their own
        # cgroups while we look, and rglob fails on a vanished directory.
        ids = set(self.ids)
        found = [os.path.join(top, d) for top, dirs, _ in os.walk("/sys/fs/cgroup")
                 for d in dirs if d in ids]
        for d in sorted(found, key=len, reverse=True):   # rmdir: list first
            leftovers.append(f"cgroup {d}")
            try:
                os.rmdir(d)
            except OSError:
                pass
        with open("/proc/self/mountinfo") as f:
            leftovers += [f"mount {l.split()[4]}" for l in f if str(self.tmp) in l]
        return leftovers


@pytest.fixture
def oci(tmp_path, monkeypatch):
    # Compiled seccomp filters (csrc/seccomp_cache.c): each test its own
    # cache, so that what one builds another never finds, and none is left.
    monkeypatch.setenv("OCIRUNTIME_SECCOMP_CACHE", str(tmp_path / "seccomp-cache"))
    o = Oci(tmp_path)
    yield o
    leftovers = o.cleanup()
    assert not leftovers, f"left behind: {leftovers}"
