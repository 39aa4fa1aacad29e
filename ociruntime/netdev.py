"""linux.netDevices (runtime-spec 1.3): move host network devices into the
container's network namespace, renamed as asked, with their permanent
global addresses, and up.

Done by the runtime once the init has said hello (its network namespace
exists), with pyroute2, imported only for configs that have netDevices.
The kernel drops a device's addresses when it changes namespace: they are
read before the move and added again inside.  Nothing is moved back on
delete (config-linux.md: "MUST NOT attempt to move the interface out of
the namespace before deletion"): virtual devices die with the namespace,
physical ones return to the host's."""
from ociruntime.errors import ConfigError, OciError

IFA_F_PERMANENT = 0x80
RT_SCOPE_UNIVERSE = 0


def check(cfg, source):
    linux = cfg.get("linux") or {}
    # pyroute2 is an extra: without it, refuse before anything is made
    # (move() imports it once the init exists).
    from importlib.util import find_spec
    if find_spec("pyroute2") is None:
        raise ConfigError(f"{source}: $.linux.netDevices: needs the pyroute2 package: "
                          "pip install 'ociruntime[netdev]'")
    if not any(n.get("type") == "network" for n in linux.get("namespaces") or ()):
        raise ConfigError(f"{source}: $.linux.netDevices: needs a network namespace of the container's own")
    for host, spec in linux["netDevices"].items():
        name = (spec or {}).get("name") or host
        if not 0 < len(name) < 16 or "/" in name or name in (".", ".."):
            raise ConfigError(f"{source}: $.linux.netDevices.{host}.name: {name!r} is not a valid "
                              "interface name")


def _addresses(ipr, index):
    """The permanent addresses of global scope, as keyword sets for addr()."""
    out = []
    for a in ipr.get_addr(index=index):
        flags = a.get_attr("IFA_FLAGS")
        if flags is None:
            flags = a["flags"]
        if a["scope"] != RT_SCOPE_UNIVERSE or not flags & IFA_F_PERMANENT:
            continue
        kw = {"address": a.get_attr("IFA_LOCAL") or a.get_attr("IFA_ADDRESS"),
              "prefixlen": a["prefixlen"], "family": a["family"]}
        if a.get_attr("IFA_BROADCAST"):
            kw["broadcast"] = a.get_attr("IFA_BROADCAST")
        out.append(kw)
    return out


def move(pid, devices, source):
    from pyroute2 import IPRoute, NetNS
    from pyroute2.netlink.exceptions import NetlinkError
    from ociruntime.core import strerror
    moved = []
    with IPRoute() as ipr, NetNS(f"/proc/{pid}/ns/net", flags=0) as ns:
        for host, spec in devices.items():
            where = f"{source}: $.linux.netDevices.{host}"
            name = (spec or {}).get("name") or host
            # Before moving anything: the kernel would move the device and
            # only then fail to rename it.
            if "%" not in name and ns.link_lookup(ifname=name):
                raise OciError(f"{where}: a device named {name!r} already exists in the container")
            found = ipr.link_lookup(ifname=host)
            if not found:
                raise OciError(f"{where}: no network device {host!r} on the host")
            index = found[0]
            link = ipr.get_links(index)[0]
            mac = link.get_attr("IFLA_ADDRESS")
            addrs = _addresses(ipr, index)
            try:
                # The name travels with the move: the kernel names it in
                # the target namespace (and expands a %d template there).
                ipr.link("set", index=index, net_ns_pid=pid, ifname=name)
            except NetlinkError as e:
                why = strerror(e.code)
                if e.code == 17:   # EEXIST
                    why = f"a device named {name!r} already exists in the container"
                raise OciError(f"{where}: move {host!r} into the container: {why}") from None
            moved.append((where, name, index, mac, addrs))
        for where, name, index, mac, addrs in moved:
            idx = _find(ns, name, index, mac)
            if idx is None:
                raise OciError(f"{where}: the moved device is not found in the container")
            try:
                for kw in addrs:
                    ns.addr("add", index=idx, **kw)
                ns.link("set", index=idx, state="up")
            except NetlinkError as e:
                raise OciError(f"{where}: set up {name!r} in the container: {strerror(e.code)}") from None


def _find(ns, name, index, mac):
    if "%" not in name:
        found = ns.link_lookup(ifname=name)
        return found[0] if found else None
    for link in ns.get_links():   # a template: find it by its address
        if link.get_attr("IFLA_ADDRESS") == mac and (link["index"] == index or mac):
            return link["index"]
    return None
