"""--systemd-cgroup: cgroups made by systemd (a transient scope unit).

linux.cgroupsPath is then "slice:prefix:name" (runc's form): the unit is
"prefix-name.scope" in "slice" (default system.slice); a name ending in
".slice" is itself the unit (a slice, its parent pulled in by Wants=).
No cgroupsPath is ":ociruntime:<id>" (runc: ":runc:<id>").

How, as runc does it: once the init exists (its hello in the create
handshake), StartTransientUnit(unit, "replace", properties, []) over
D-Bus with PIDs=[init], Delegate=yes, Slice=, Description=,
DefaultDependencies=no, the accounting switches and the resource
properties systemd knows (MemoryLimit/MemoryMax, CPUShares/CPUWeight,
CPUQuotaPerSecUSec, TasksMax, DevicePolicy/DeviceAllow...); wait for the
job's JobRemoved signal; the container's cgroup in every hierarchy is then
the unit's (mountpoint + pid 1's cgroup + expanded slice + unit), made by
systemd or, in hierarchies it does not manage (cpuset, freezer... on
v1), by us.  The rest of linux.resources is written by the cgroupfs code,
so the result is the same as without --systemd-cgroup.  `update` also
sets the unit's properties (SetUnitProperties), `delete` stops the unit
(StopUnit, then ResetFailedUnit) and removes what is left.

The bus: $DBUS_SYSTEM_BUS_ADDRESS if set (then it is trusted even where
/run/systemd/system is missing: a test's fake bus), else, where systemd
runs, the system bus /run/dbus/system_bus_socket or systemd's private
socket /run/systemd/private.  Where systemd does not run it is a clear
error, not a silent fallback to cgroupfs.
"""
import os

from ociruntime.cgroups import Layout, Manager, _strerror, host_hierarchies
from ociruntime.errors import OciError

SD = "org.freedesktop.systemd1"
SD_PATH = "/org/freedesktop/systemd1"
SD_MANAGER = "org.freedesktop.systemd1.Manager"
PRIVATE_SOCKET = "/run/systemd/private"
U64_MAX = (1 << 64) - 1
DEFAULT_PERIOD = 100000
TIMEOUT = 30.0   # runc's, for a job


def parse_path(cgroups_path, cid):
    """(slice, unit name) from "slice:prefix:name", as runc: an empty
    slice is system.slice; the unit "prefix-name.scope", or "name" itself
    when it ends in .slice.  No path: system.slice, "ociruntime-<id>.scope"."""
    if not cgroups_path:
        return "system.slice", f"ociruntime-{cid}.scope"
    parts = cgroups_path.split(":")
    if len(parts) != 3:
        raise OciError(f"linux.cgroupsPath {cgroups_path!r}: with --systemd-cgroup it must be "
                       "\"slice:prefix:name\"")
    slc, prefix, name = parts
    slc = slc or "system.slice"
    expand_slice(slc, cgroups_path)
    if not name or "/" in name:
        raise OciError(f"linux.cgroupsPath {cgroups_path!r}: {name!r} is not a unit name")
    if name.endswith(".slice"):
        expand_slice(name, cgroups_path)
        return slc, name   # runc: the container gets that slice itself
    return slc, f"{prefix}-{name}.scope"


def expand_slice(slc, cgroups_path=None):
    """systemd's slice nesting: "a-b-c.slice" is /a.slice/a-b.slice/a-b-c.slice,
    "-.slice" the root ("/")."""
    what = f"linux.cgroupsPath {cgroups_path!r}: " if cgroups_path is not None else ""
    if not slc.endswith(".slice") or len(slc) <= len(".slice") or "/" in slc:
        raise OciError(f"{what}{slc!r} is not a systemd slice name")
    stem = slc[:-len(".slice")]
    if stem == "-":
        return "/"
    path, prefix = "", ""
    for part in stem.split("-"):
        if not part:
            raise OciError(f"{what}{slc!r} is not a systemd slice name")
        path += "/" + prefix + part + ".slice"
        prefix += part + "-"
    return path


# -- where the bus is --------------------------------------------------------------

def systemd_running():
    return os.path.isdir("/run/systemd/system")


def bus_address():
    """(socket path, is a bus) to talk to systemd through, or an OciError
    saying why there is none."""
    addr = os.environ.get("DBUS_SYSTEM_BUS_ADDRESS")
    if addr:
        from ociruntime.cgroups import dbus
        try:
            return dbus.parse_address(addr), True
        except (dbus.ProtocolError, ValueError) as e:
            raise OciError(f"--systemd-cgroup: DBUS_SYSTEM_BUS_ADDRESS: {e}") from None
    if not systemd_running():
        raise OciError("--systemd-cgroup: systemd is not running on this host (no /run/systemd/system); "
                       "run without --systemd-cgroup to use the cgroupfs manager")
    if os.path.exists("/run/dbus/system_bus_socket"):
        return "/run/dbus/system_bus_socket", True
    if os.path.exists(PRIVATE_SOCKET):
        return PRIVATE_SOCKET, False
    raise OciError("--systemd-cgroup: no D-Bus system bus (/run/dbus/system_bus_socket) and no "
                   f"systemd private socket ({PRIVATE_SOCKET}) to talk to systemd through")


def check_available():
    """A clear error now (before any work) where --systemd-cgroup cannot work."""
    bus_address()


class Bus:
    """A connection to systemd's manager object, with runc's job waiting."""

    def __init__(self):
        from ociruntime.cgroups import dbus
        self.dbus = dbus
        path, is_bus = bus_address()
        try:
            self.conn = dbus.Connection(path, bus=is_bus, timeout=TIMEOUT)
            # JobRemoved reaches the client that queued the job (systemd
            # tracks it): the bus needs only our match rule to route it.
            self.conn.add_match(f"type='signal',sender='{SD}',path='{SD_PATH}',"
                                f"interface='{SD_MANAGER}',member='JobRemoved'")
        except OSError as e:
            raise OciError(f"--systemd-cgroup: cannot talk to systemd over D-Bus at {path.lstrip(chr(0))}: "
                           f"{_strerror(e) if e.errno else e}") from None
        except (dbus.ProtocolError, dbus.DBusError) as e:
            raise OciError(f"--systemd-cgroup: D-Bus at {path}: {e}") from None
        self._version = None

    def close(self):
        self.conn.close()

    def call(self, member, signature="", args=(), what=None):
        dbus = self.dbus
        try:
            return self.conn.call(SD, SD_PATH, SD_MANAGER, member, signature, args)
        except dbus.DBusError:
            raise
        except (OSError, dbus.ProtocolError) as e:
            raise OciError(f"--systemd-cgroup: {what or member}: D-Bus: "
                           f"{_strerror(e) if getattr(e, 'errno', None) else e or 'timed out'}") from None

    def version(self):
        """systemd's version number (252 of "252.22-1~deb12u1"), -1 if unknown."""
        if self._version is None:
            self._version = -1
            try:
                v = self.conn.call(SD, SD_PATH, "org.freedesktop.DBus.Properties", "Get", "ss",
                                   [SD_MANAGER, "Version"])[0]
                digits = ""
                for ch in str(v).lstrip('"v'):
                    if not ch.isdigit():
                        break
                    digits += ch
                self._version = int(digits) if digits else -1
            except (OSError, self.dbus.ProtocolError, self.dbus.DBusError):
                pass
        return self._version

    def run_job(self, member, signature, args, unit, what):
        """Call a method that queues a job; wait for its JobRemoved; its
        result ("done", "failed", "canceled"...)."""
        job = self.call(member, signature, args, what)[0]
        dbus = self.dbus

        def ours(m):
            return (m.member == "JobRemoved" and m.interface == SD_MANAGER
                    and len(m.body) >= 4 and m.body[1] == job)
        try:
            return self.conn.wait_signal(ours, TIMEOUT).body[3]
        except TimeoutError:
            raise OciError(f"--systemd-cgroup: {what}: timed out waiting for systemd's job {job}") from None
        except (OSError, dbus.ProtocolError) as e:
            raise OciError(f"--systemd-cgroup: {what}: D-Bus: {e}") from None

    def start_unit(self, unit, props):
        """StartTransientUnit and wait, as runc: a unit of that name that
        exists (a failed leftover) is reset and the start tried once more."""
        what = f"start unit {unit}"
        for attempt in (1, 2):
            try:
                result = self.run_job("StartTransientUnit", "ssa(sv)a(sa(sv))",
                                      [unit, "replace", props, []], unit, what)
                break
            except self.dbus.DBusError as e:
                if e.name == "org.freedesktop.systemd1.UnitExists" and attempt == 1:
                    self.reset_failed(unit)
                    continue
                raise OciError(f"--systemd-cgroup: {what}: {e}") from None
        if result != "done":
            self.reset_failed(unit)
            raise OciError(f"--systemd-cgroup: {what}: systemd's job ended {result!r}")

    def stop_unit(self, unit):
        what = f"stop unit {unit}"
        try:
            self.run_job("StopUnit", "ss", [unit, "replace"], unit, what)
        except self.dbus.DBusError as e:
            if e.name != "org.freedesktop.systemd1.NoSuchUnit":
                raise OciError(f"--systemd-cgroup: {what}: {e}") from None
        self.reset_failed(unit)

    def reset_failed(self, unit):
        try:
            self.call("ResetFailedUnit", "s", [unit])
        except (OciError, self.dbus.DBusError):
            pass   # not failed, or gone: nothing to reset

    def set_properties(self, unit, props):
        try:
            self.call("SetUnitProperties", "sba(sv)", [unit, True, props])
        except self.dbus.DBusError as e:
            raise OciError(f"--systemd-cgroup: set properties of unit {unit}: {e}") from None


# -- unit properties ------------------------------------------------------------------------

def _v(sig, value):
    from ociruntime.cgroups.dbus import Variant
    return Variant(sig, value)


def _u64(v):
    return U64_MAX if v == -1 else v


def range_to_bits(text, field):
    """"0-2,7" -> the little-endian byte mask systemd's AllowedCPUs takes."""
    mask = 0
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        try:
            lo, hi = int(lo), int(hi or lo)
        except ValueError:
            raise OciError(f"{field}: {text!r} is not a list of ranges") from None
        if lo > hi or lo < 0:
            raise OciError(f"{field}: {text!r} is not a list of ranges")
        for i in range(lo, hi + 1):
            mask |= 1 << i
    return mask.to_bytes(max(1, (mask.bit_length() + 7) // 8), "little")


def resource_properties(res, v2, version, field="linux.resources", update=False):
    """runc's properties for linux.resources (genV1/genV2ResourcesProperties)."""
    from ociruntime.cgroups import resources
    props = []
    mem = res.get("memory") or {}
    if mem.get("limit"):
        props.append(("MemoryMax" if v2 else "MemoryLimit", _v("t", _u64(mem["limit"]))))
    if v2:
        if mem.get("reservation"):
            props.append(("MemoryLow", _v("t", _u64(mem["reservation"]))))
        if "swap" in mem or mem.get("limit"):
            swap = resources.swap_to_v2(mem.get("swap"), mem.get("limit"), f"{field}.memory")
            if swap:
                props.append(("MemorySwapMax", _v("t", _u64(swap))))
    cpu = res.get("cpu") or {}
    if cpu.get("shares"):
        if v2:
            props.append(("CPUWeight", _v("t", resources.shares_to_weight(cpu["shares"]))))
        else:
            props.append(("CPUShares", _v("t", cpu["shares"])))
    _cpu_quota(props, cpu.get("quota") or 0, cpu.get("period") or 0, version)
    blkio = res.get("blockIO") or {}
    if blkio.get("weight"):
        if v2:
            props.append(("IOWeight", _v("t", resources.blkio_weight_to_io_weight(blkio["weight"]))))
        else:
            props.append(("BlockIOWeight", _v("t", blkio["weight"])))
    pids = res.get("pids") or {}
    limit = pids.get("limit")
    if limit is not None and (limit > 0 or limit == -1):
        props.append(("TasksMax", _v("t", _u64(limit))))
    if version >= 244:
        for key, name in (("cpus", "AllowedCPUs"), ("mems", "AllowedMemoryNodes")):
            if cpu.get(key):
                props.append((name, _v("ay", range_to_bits(cpu[key], f"{field}.cpu.{key}"))))
    if v2:
        props += _unified_properties(res.get("unified") or {}, version)
    return props


def _cpu_quota(props, quota, period, version):
    # runc's addCpuQuota: systemd keeps a quota per second of CPU time,
    # rounded up to 10ms (1%) so that the cgroupfs value still fits.
    if period and version >= 242:
        props.append(("CPUQuotaPeriodUSec", _v("t", period)))
    if quota or period:
        per_sec = U64_MAX
        if quota > 0:
            per_sec = quota * 1000000 // (period or DEFAULT_PERIOD)
            if per_sec % 10000:
                per_sec = (per_sec // 10000 + 1) * 10000
        props.append(("CPUQuotaPerSecUSec", _v("t", per_sec)))


_UNIFIED_U64 = {"memory.high": "MemoryHigh", "memory.low": "MemoryLow", "memory.min": "MemoryMin",
                "memory.max": "MemoryMax", "memory.swap.max": "MemorySwapMax", "pids.max": "TasksMax"}


def _unified_properties(unified, version):
    """runc's unifiedResToSystemdProps, best effort: what systemd has no
    property for is still written to cgroupfs."""
    props = []
    for k, v in unified.items():
        v = str(v).strip()
        try:
            if k in _UNIFIED_U64:
                props.append((_UNIFIED_U64[k], _v("t", U64_MAX if v == "max" else int(v))))
            elif k == "cpu.weight":
                props.append(("CPUWeight", _v("t", int(v))))
            elif k == "cpu.max":
                q, _, p = v.partition(" ")
                _cpu_quota(props, 0 if q == "max" else int(q), int(p) if p else DEFAULT_PERIOD, version)
        except ValueError:
            pass   # the cgroupfs write names the bad value
    return props


def device_properties(rules, version):
    """DevicePolicy/DeviceAllow for the container's device rules (runc's
    systemdProperties).  systemd has only allow lists: rules it cannot
    express make a deny-all list (the cgroupfs rules are the real ones)."""
    strict = [("DevicePolicy", _v("s", "strict")), ("DeviceAllow", _v("a(ss)", []))]
    allow_all, allowed, exact = False, [], True
    for r in rules:
        if r.type == "a":
            allow_all, allowed = r.allow, []
            continue
        if allow_all:
            if not r.allow:
                exact = False   # a deny list: systemd cannot say it
            continue
        if r.allow:
            allowed.append([r.type, r.major, r.minor, r.access])
            continue
        for e in allowed:
            if e[0] != r.type or not set(e[3]) & set(r.access):
                continue
            covers = (r.major is None or r.major == e[1]) and (r.minor is None or r.minor == e[2])
            if covers:
                e[3] = "".join(ch for ch in e[3] if ch not in r.access)
            elif (e[1] is None or e[1] == r.major) and (e[2] is None or e[2] == r.minor):
                exact = False   # a hole in a wildcard allow
        allowed = [e for e in allowed if e[3]]
    if allow_all:
        if exact:
            return [("DevicePolicy", _v("s", "auto")), ("DeviceAllow", _v("a(ss)", []))]
        return strict
    if not exact:
        return strict
    entries = []
    for t, major, minor, access in allowed:
        kind = "char" if t == "c" else "block"
        if major is None:
            if minor is not None:
                continue   # "*:n": systemd has no way to say it
            path = f"{kind}-*"
        elif minor is None:
            if version < 240:
                continue   # older systemd wants a /proc/devices group name
            path = f"{kind}-{major}"
        else:
            path = f"/dev/{kind}/{major}:{minor}"
        entries.append((path, access))
    return strict + [("DeviceAllow", _v("a(ss)", entries))]


ANNOTATION = "org.systemd.property."


def annotation_properties(annotations):
    """runc's initSystemdProps: each `org.systemd.property.NAME` annotation
    is a unit property, its value in GVariant text (gvariant.py); a NAME
    ending in a lower-case letter and "Sec" is given in seconds and set as
    NAMEUSec in microseconds."""
    props = []
    for key, text in sorted(annotations.items()):
        if not key.startswith(ANNOTATION):
            continue
        name = key[len(ANNOTATION):]
        if len(name) < 3 or not ("A" <= name[0] <= "Z") or not name.isascii() or not name.isalpha():
            raise OciError(f"annotations.{key}: {name!r} is not a systemd property name "
                           "(A-Z, then letters)")
        from ociruntime.cgroups import gvariant
        try:
            sig, value = gvariant.parse(str(text))
        except ValueError as e:
            raise OciError(f"annotations.{key}: {text!r}: {e}") from None
        if name.endswith("Sec") and "a" <= name[-4] <= "z":
            if sig not in "ynqiuxtd" or value < 0:
                raise OciError(f"annotations.{key}: {text!r} is not a number of seconds")
            name, sig, value = name[:-3] + "USec", "t", int(value * 1000000)
        props.append((name, _v(sig, value)))
    return props


# -- the manager ---------------------------------------------------------------------------------

def _pid1_cgroups():
    try:
        from ociruntime.cgroups import _own_cgroups
        return _own_cgroups(1)
    except OSError:
        return {}


def unit_paths(slc, unit, hierarchies=None):
    """{hierarchy mountpoint: the unit's directory}: mountpoint + pid 1's
    cgroup (without init.scope) + the expanded slice + the unit."""
    init = _pid1_cgroups()
    where = expand_slice(unit) if unit.endswith(".slice") else expand_slice(slc) + "/" + unit
    paths = {}
    for _name, _fstype, key, mnt, root, _own in hierarchies or host_hierarchies():
        base = os.path.normpath(init.get(key, "/"))
        if os.path.basename(base) == "init.scope":
            base = os.path.dirname(base)
        if root != "/" and (base + "/").startswith(root.rstrip("/") + "/"):
            base = base[len(root.rstrip("/")):] or "/"
        paths[mnt] = os.path.normpath(f"{mnt}/{base}/{where}")
    return paths


def manager_for(cgroups_path, cid, hierarchies=None):
    slc, unit = parse_path(cgroups_path, cid)
    bus_address()   # a clear error before anything is made
    hierarchies = hierarchies or host_hierarchies()
    return SystemdManager(unit_paths(slc, unit, hierarchies), layout=Layout.probe(hierarchies),
                          unit=unit, slice=slc, started=False,
                          description=f"ociruntime container {cgroups_path.split(':')[2] if cgroups_path else cid}")


class SystemdManager(Manager):
    """The cgroupfs manager over the directories of a systemd unit."""

    def open_for_init(self, into_v2=True):
        return [], -1   # starting the unit moves the init (join)

    def init_joins_alone(self):
        return False

    def __init__(self, paths, created=(), layout=None, unit=None, slice=None, started=True,
                 description=None):
        super().__init__(paths, created, layout)
        self.unit = unit
        self.slice = slice
        self.started = started
        self.description = description or f"ociruntime container {unit}"
        self._config = None
        self._bus = None

    def state(self):
        """What state.json keeps ("cgroups_systemd")."""
        return {"unit": self.unit, "slice": self.slice}

    def bus(self):
        if self._bus is None:
            self._bus = Bus()
        return self._bus

    def close(self):
        if self._bus is not None:
            self._bus.close()
            self._bus = None

    @property
    def v2_mode(self):
        return self.layout.mode == "v2"

    def create(self):
        """Nothing yet: systemd makes the unit's cgroups once the init exists."""

    def apply_config(self, cfg, source="config.json"):
        """Keep the config for join (the unit's properties, then the
        cgroupfs writes); compute the properties now, so a bad value or an
        unreachable bus fails before the init is made."""
        self._config = (cfg, source)
        self._unit_props(cfg)

    def _unit_props(self, cfg):
        from ociruntime.cgroups import devices
        linux = cfg.get("linux") or {}
        res = linux.get("resources") or {}
        bus = self.bus()
        version = bus.version()
        props = [("Description", _v("s", self.description))]
        if self.unit.endswith(".slice"):
            props.append(("Wants", _v("s", self.slice)))
        else:
            props.append(("Slice", _v("s", self.slice)))
            props.append(("Delegate", _v("b", True)))
        io = "IOAccounting" if self.v2_mode else "BlockIOAccounting"
        for name in ("MemoryAccounting", "CPUAccounting", io, "TasksAccounting"):
            props.append((name, _v("b", True)))
        props.append(("DefaultDependencies", _v("b", False)))
        if self.dir_of("devices") or self.v2_mode:
            props += device_properties(devices.rules_for(res.get("devices"), linux.get("devices")),
                                       version)
        props += resource_properties(res, self.v2_mode, version)
        # Last, as runc: an annotation overrides what the runtime set.
        return props + annotation_properties(cfg.get("annotations") or {})

    def join(self, pid):
        """Start the unit with the init in it; join the hierarchies systemd
        left alone; write linux.resources."""
        cfg, source = self._config or ({}, "config.json")
        props = self._unit_props(cfg)
        if not self.unit.endswith(".slice"):   # a slice takes no PIDs
            props.insert(1, ("PIDs", _v("au", [pid])))
        try:
            self.bus().start_unit(self.unit, props)
            self.started = True
        finally:
            self.close()
        for mnt, path in self.paths.items():
            self._make(mnt, path)
        super().join(pid)
        if self._config is not None:
            super().apply_config(cfg, source)

    def update(self, res):
        from ociruntime.cgroups import devices, resources
        # A value the cgroupfs part refuses fails before the unit changes.
        resources.plan(self, res, update=True)
        try:
            bus = self.bus()
            props = resource_properties(res, self.v2_mode, bus.version())
            if res.get("devices") and (self.dir_of("devices") or self.v2_mode):
                props += device_properties(devices.rules_for(res["devices"], None), bus.version())
            if props:
                # systemd rewrites the device list deny-all first: freeze
                # meanwhile so the container sees no spurious EPERM (runc).
                thaw = False
                if res.get("devices") and not self.frozen():
                    try:
                        self.freeze()
                        thaw = True
                    except OciError:
                        pass
                try:
                    bus.set_properties(self.unit, props)
                finally:
                    if thaw:
                        self.thaw()
        finally:
            self.close()
        super().update(res)

    def destroy(self, timeout=10.0):
        """StopUnit (systemd removes its cgroups), then whatever is left:
        the unit's directories, and the slices we made in hierarchies
        systemd does not manage.  A bus error is reported after that."""
        err = None
        if self.started:
            try:
                self.bus().stop_unit(self.unit)
            except OciError as e:
                err = e
            finally:
                self.close()
        leaves = set(self.paths.values())
        if self.started:
            Manager(self.paths, [p for p in leaves if os.path.isdir(p)], self._layout).destroy(timeout)
        else:   # never ours: a unit of that name may be another container's
            Manager(self.paths, [p for p in self.created if p in leaves], self._layout).destroy(timeout)
        for d in sorted(set(self.created) - leaves, key=len, reverse=True):
            try:
                os.rmdir(d)
            except OSError:
                pass   # another container's slice too
        # Slices we made for an earlier container of the same slice, now empty.
        for mnt, leaf in self.paths.items():
            if leaf not in self.created:
                continue
            p = os.path.dirname(leaf)
            while p.endswith(".slice") and len(p) > len(mnt):
                try:
                    os.rmdir(p)
                except OSError:
                    break
                p = os.path.dirname(p)
        if err is not None:
            raise err
