"""--systemd-cgroup: cgroups made by systemd (a transient scope unit).

linux.cgroupsPath is then "slice:prefix:name" (runc's form): the unit is
"prefix-name.scope" in "slice" (default system.slice).  Only a host where
systemd runs can do this; elsewhere it is a clear error, not a silent
fallback to cgroupfs.
"""
import os

from ociruntime.errors import OciError


def parse_path(cgroups_path, cid):
    """(slice, unit name) from "slice:prefix:name"; the default as runc's:
    system.slice, unit "ociruntime-<id>.scope"."""
    if not cgroups_path:
        return "system.slice", f"ociruntime-{cid}.scope"
    parts = cgroups_path.split(":")
    if len(parts) != 3:
        raise OciError(f"linux.cgroupsPath {cgroups_path!r}: with --systemd-cgroup it must be "
                       "\"slice:prefix:name\"")
    slc, prefix, name = parts
    slc = slc or "system.slice"
    if not slc.endswith(".slice") or "/" in slc:
        raise OciError(f"linux.cgroupsPath {cgroups_path!r}: {slc!r} is not a systemd slice name")
    if name.endswith(".slice"):
        return slc, name   # runc: the container gets that slice itself
    unit = f"{prefix}-{name}.scope" if prefix else f"{name}.scope"
    return slc, unit


def systemd_running():
    return os.path.isdir("/run/systemd/system")


def check_available():
    if not systemd_running():
        raise OciError("--systemd-cgroup: systemd is not running on this host (no /run/systemd/system); "
                       "run without --systemd-cgroup to use the cgroupfs manager")
    raise OciError("--systemd-cgroup: creating systemd scope units over D-Bus is not implemented yet; "
                   "run without --systemd-cgroup to use the cgroupfs manager")


def manager_for(cgroups_path, cid):
    _slice, _unit = parse_path(cgroups_path, cid)
    if not systemd_running():
        raise OciError("--systemd-cgroup: systemd is not running on this host (no /run/systemd/system); "
                       "run without --systemd-cgroup to use the cgroupfs manager")
    raise OciError("--systemd-cgroup: creating systemd scope units over D-Bus is not implemented yet; "
                   "run without --systemd-cgroup to use the cgroupfs manager")
