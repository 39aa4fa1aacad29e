"""The VM is the host it claims to be: systemd as PID 1, a pure cgroup v2
hierarchy with every controller the kernel has enabled at the root."""
import os

import pytest

from vmhelpers import IN_VM_ONLY

pytestmark = IN_VM_ONLY


def test_systemd_is_pid1():
    with open("/proc/1/comm") as f:
        assert f.read().strip() == "systemd"


def test_pure_cgroup2():
    with open("/proc/self/mountinfo") as f:
        types = [l.partition(" - ")[2].split()[0] for l in f]
    assert "cgroup" not in types
    assert os.statvfs("/sys/fs/cgroup")
    with open("/sys/fs/cgroup/cgroup.controllers") as f:
        have = set(f.read().split())
    with open("/sys/fs/cgroup/cgroup.subtree_control") as f:
        on = set(f.read().split())
    assert {"cpu", "cpuset", "io", "memory", "pids", "hugetlb"} <= have
    assert have == on
