"""cgroup v1 specifics: the freezer and OOM notifications."""
import os
import time

from ociruntime.cgroups import read_text, write_file
from ociruntime.errors import OciError


def frozen(d):
    try:
        return read_text(d + "/freezer.state").strip() in ("FROZEN", "FREEZING")
    except OSError:
        return False


def freeze(d, timeout=10.0):
    """Write FROZEN and wait until the kernel says FROZEN.  A freeze can
    stay FREEZING (a task in an uninterruptible sleep): like runc, thaw
    and try again now and then."""
    deadline = time.monotonic() + timeout
    delay = 0.001
    tries = 0
    while True:
        write_file(d + "/freezer.state", "FROZEN", "pause")
        state = read_text(d + "/freezer.state").strip()
        if state == "FROZEN":
            return
        tries += 1
        if time.monotonic() > deadline:
            write_file(d + "/freezer.state", "THAWED", "pause")
            raise OciError(f"pause: {d}: the cgroup did not freeze (still {state})")
        if tries % 50 == 0:
            write_file(d + "/freezer.state", "THAWED", "pause")
        time.sleep(delay)
        delay = min(delay * 2, 0.01)


def thaw(d, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        write_file(d + "/freezer.state", "THAWED", "resume")
        if read_text(d + "/freezer.state").strip() == "THAWED":
            return
        if time.monotonic() > deadline:
            raise OciError(f"resume: {d}: the cgroup did not thaw")
        time.sleep(0.001)


def thaw_tree(top):
    """Thaw top and every cgroup under it that froze itself (a child's
    own FROZEN outlives its parent's thaw); parents first.  Errors are
    ignored: it is done to let killed tasks die."""
    for d in sorted((p for p, _dirs, _files in os.walk(top)), key=len):
        try:
            if read_text(d + "/freezer.state").strip() != "THAWED":
                write_file(d + "/freezer.state", "THAWED", "resume")
        except (OSError, OciError):
            pass


def oom_eventfd(memdir):
    """An eventfd that becomes readable at each OOM in memdir (v1
    memory.oom_control through cgroup.event_control), or None."""
    try:
        ctl = os.open(memdir + "/memory.oom_control", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    efd = os.eventfd(0, os.EFD_CLOEXEC)
    try:
        write_file(memdir + "/cgroup.event_control", f"{efd} {ctl}", "events: oom notification")
    except OciError:
        os.close(efd)
        return None
    finally:
        os.close(ctl)
    return efd
