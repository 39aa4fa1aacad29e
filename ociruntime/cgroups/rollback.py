"""`update` is all or nothing: the writes of an update, undone on failure.

An engine that sees `update` exit 1 believes the container kept its old
limits.  So before each write we read what undoes it, and when a write
fails we write those back, last first (the order that keeps v1's
memory.memsw >= memory.limit and the cpu quota/period pairs valid on the
way back, since each step forward was valid), then report the failure.

Most cgroup files hold one value, and their content is what undoes a
write.  Keyed files hold one line per device (or interface, or default)
and a write changes only its key's line: what undoes it is the old line
for that key, or the value that removes the key (a v1 throttle of 0, a v2
io.max of max...).  v1 device rules are put back whole from devices.list
(deny all, then allow each old line); a v2 device program is replaced in
one attach, so a failed one leaves the old program.
"""
import os

from ociruntime.cgroups import read_text, write_file
from ociruntime.errors import OciError

# Keyed files: name -> what a key absent from the file means, as the value
# part of a line written to remove it ("{key} {reset}").
_KEYED = {
    "blkio.throttle.read_bps_device": "0", "blkio.throttle.write_bps_device": "0",
    "blkio.throttle.read_iops_device": "0", "blkio.throttle.write_iops_device": "0",
    "blkio.weight_device": "0", "blkio.leaf_weight_device": "0",
    "blkio.bfq.weight_device": "0",
    "io.max": "rbps=max wbps=max riops=max wiops=max",
    "io.weight": "default", "io.bfq.weight": "default",
    "net_prio.ifpriomap": "0",
    "rdma.max": "hca_handle=max hca_object=max",
}


def undo_value(path, value):
    """What to write into path to undo writing value there (read now,
    before the write)."""
    name = os.path.basename(path)
    text = read_text(path)
    if name == "memory.oom_control":   # "oom_kill_disable N" among counters
        for line in text.splitlines():
            if line.startswith("oom_kill_disable "):
                return line.split()[1]
    if name in _KEYED:
        key = value.split(None, 1)[0] if " " in value else "default"
        for line in text.splitlines():
            if line.split(None, 1)[:1] == [key]:
                return line if " " in value else line.split(None, 1)[1]
        return f"{key} {_KEYED[name]}"
    return text.strip()


class Journal:
    """The writes made so far and how to undo them."""

    def __init__(self):
        self.undo = []   # [(path, old value)], in the order written
        self.devices = None   # (v1 devices dir, its old devices.list lines)

    def note_devices_v1(self, d):
        """Before rewriting the v1 device rules of d."""
        try:
            self.devices = (d, read_text(d + "/devices.list").splitlines())
        except OSError as e:
            raise OciError(f"linux.resources.devices: read {d}/devices.list: "
                           f"{os.strerror(e.errno).lower()}") from None

    def write(self, path, value, field):
        """write_file(path, value, field), noting first how to undo it (a
        write the kernel refuses changed nothing: it is not noted)."""
        try:
            old = undo_value(path, str(value))
        except OSError as e:
            raise OciError(f"{field}: read {path}: {os.strerror(e.errno).lower()}") from None
        write_file(path, value, field)
        self.undo.append((path, old))

    def roll_back(self):
        """Write the old values back, last first.  Returns the files that
        could not be restored (each is tried)."""
        failed = []
        if self.devices is not None:   # written last: put back first
            failed += _restore_devices_v1(*self.devices)
            self.devices = None
        for path, old in reversed(self.undo):
            try:
                write_file(path, old)
            except OciError:
                failed.append(path)
        self.undo = []
        return failed


def _restore_devices_v1(d, lines):
    try:
        write_file(d + "/devices.deny", "a")
        for line in lines:
            write_file(d + "/devices.allow", "a" if line == "a *:* rwm" else line)
    except OciError:
        return [d + "/devices.allow"]
    return []
