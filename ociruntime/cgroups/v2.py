"""cgroup v2 specifics: cgroup.freeze and the OOM counter."""
import time

from ociruntime.cgroups import oom_kill_count, read_text, write_file
from ociruntime.errors import OciError


def _events(d):
    out = {}
    try:
        for line in read_text(d + "/cgroup.events").splitlines():
            k, _, v = line.partition(" ")
            out[k] = v
    except OSError:
        pass
    return out


def frozen(d):
    try:
        return read_text(d + "/cgroup.freeze").strip() == "1"
    except OSError:
        return False


def _wait(d, want, what, timeout):
    deadline = time.monotonic() + timeout
    delay = 0.001
    while _events(d).get("frozen", want) != want:
        if time.monotonic() > deadline:
            raise OciError(f"{what}: {d}: cgroup.events does not say frozen {want}")
        time.sleep(delay)
        delay = min(delay * 2, 0.01)


def freeze(d, timeout=10.0):
    write_file(d + "/cgroup.freeze", "1", "pause")
    _wait(d, "1", "pause", timeout)


def thaw(d, timeout=10.0):
    write_file(d + "/cgroup.freeze", "0", "resume")
    _wait(d, "0", "resume", timeout)


def oom_kills(d):
    """The memory.events oom_kill counter (0 if there is none)."""
    return oom_kill_count(d + "/memory.events")
