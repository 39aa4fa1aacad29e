"""What this host's kernel offers, probed, for tests that need a feature.

A test that needs a host feature asks here and skips, naming the feature,
when the host lacks it; it never decides by catching its own failure.
The cgroup probes make a scratch cgroup beside where the runtime puts
containers (under our own cgroup: some files, like blkio.bfq.weight and
cpu.cfs_burst_us, are not in a hierarchy's root), list it, and remove it.
"""
import functools
import os
import uuid

import pytest

from ociruntime import cgroups


@functools.lru_cache(maxsize=None)
def cgroup_files(controller):
    """The files a new v1 cgroup of controller has here (frozenset), or
    None where the host has no v1 hierarchy for it."""
    for _name, fstype, key, mnt, root, own in cgroups.host_hierarchies():
        if fstype == "cgroup" and controller in key.split(","):
            base = own[len(root):] if root != "/" and own.startswith(root) else own
            d = os.path.join(mnt + base, f"ocitest-probe-{uuid.uuid4().hex[:8]}")
            os.mkdir(d)
            try:
                return frozenset(os.listdir(d))
            finally:
                os.rmdir(d)
    return None


def has_cgroup_file(controller, name):
    return name in (cgroup_files(controller) or ())


def blkio_weight_file():
    """blkio.weight (CFQ), blkio.bfq.weight (BFQ), or None: a v1 block
    I/O weight needs one of those I/O schedulers in the kernel."""
    for name in ("blkio.weight", "blkio.bfq.weight"):
        if has_cgroup_file("blkio", name):
            return name
    return None


def swap_accounting():
    """v1 memory+swap limits (memory.memsw.*): off with swapaccount=0 or
    cgroup.memory=noswap."""
    return has_cgroup_file("memory", "memory.memsw.limit_in_bytes")


def hugepage_size(size):
    """Huge pages of size ("2MB", "1GB") exist here."""
    kb = int(size[:-2]) << {"KB": 0, "MB": 10, "GB": 20}[size[-2:]]
    return os.path.isdir(f"/sys/kernel/mm/hugepages/hugepages-{kb}kB")


def need_cgroup_file(controller, name, what):
    return pytest.mark.skipif(not has_cgroup_file(controller, name),
                              reason=f"no {what} on this host (no {controller} {name})")


need_blkio_weight = pytest.mark.skipif(
    blkio_weight_file() is None,
    reason="no v1 block I/O weight on this host (blkio.weight or blkio.bfq.weight: no CFQ or BFQ)")
need_swap_accounting = pytest.mark.skipif(
    not swap_accounting(), reason="no swap accounting on this host (no memory.memsw.limit_in_bytes)")


def uclamp():
    """Utilization clamping of tasks (CONFIG_UCLAMP_TASK: the
    SCHED_FLAG_UTIL_CLAMP_* flags of sched_setattr)."""
    return os.path.exists("/proc/sys/kernel/sched_util_clamp_min")
