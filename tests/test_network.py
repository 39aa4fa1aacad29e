"""Networking: lo is up in every new network namespace (as runc), and
linux.netDevices (runtime-spec 1.3) moves host devices into the
container's namespace, renamed, with their addresses, up.  Devices are
veth pairs made for each test (this kernel has no dummy driver)."""
import subprocess
import uuid

import pytest

from conftest import busybox_config


def ip(*args, check=True):
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


@pytest.fixture
def veth():
    """make(): a fresh veth pair's host-side name (peer: name + 'p')."""
    made = []

    def make(*addrs):
        name = "oct" + uuid.uuid4().hex[:8]
        ip("link", "add", name, "type", "veth", "peer", "name", name + "p")
        made.append(name)
        for a in addrs:
            ip("addr", "add", *a.split(), "dev", name)
        return name
    yield make
    for name in made:
        ip("link", "del", name, check=False)
        ip("link", "del", name + "p", check=False)


def _run(oci, cfg, script):
    cfg["process"]["args"] = ["sh", "-c", script]
    return oci.run_output(cfg=cfg)


def test_lo_is_up_in_a_new_network_namespace(oci):
    """runc brings lo up in a new network namespace: 127.0.0.1 works."""
    code, out, err = _run(oci, busybox_config(),
                          "ip -o link show lo; ip -o addr show lo; "
                          "nc -l -p 5555 > /dev/null & "
                          "for i in $(seq 100); do echo hi | nc 127.0.0.1 5555 2>/dev/null && echo connected && break;"
                          " sleep 0.05; done")
    assert code == 0, err
    assert "<LOOPBACK,UP,LOWER_UP>" in out
    assert "127.0.0.1/8" in out
    assert "connected" in out


def test_lo_is_up_in_a_user_namespace_container(oci):
    from ocihelpers import add_userns
    cfg = add_userns(busybox_config(), oci=oci)
    code, out, err = _run(oci, cfg, "ip -o link show lo")
    assert code == 0, err
    assert "<LOOPBACK,UP,LOWER_UP>" in out


def test_host_network_is_left_alone(oci):
    """Without a network namespace nothing is brought up or changed."""
    cfg = busybox_config()
    cfg["linux"]["namespaces"] = [n for n in cfg["linux"]["namespaces"] if n["type"] != "network"]
    with open("/proc/self/ns/net", "rb"):
        pass
    code, out, err = _run(oci, cfg, "readlink /proc/self/ns/net")
    assert code == 0, err
    import os
    assert out.strip() == os.readlink("/proc/self/ns/net")


def test_net_device_is_moved_renamed_with_its_addresses_and_up(oci, veth):
    """config-linux.md netDevices: the device is made available in the
    container under `name`, keeps its permanent global addresses (IPv4 and
    IPv6), and is set "up"."""
    dev = veth("10.77.0.1/24", "fd00:77::1/64", "10.78.0.1/24 scope link")
    cfg = busybox_config()
    cfg["linux"]["netDevices"] = {dev: {"name": "eth42"}}
    b = oci.bundle(cfg, ["sleep", "30"])
    cid = oci.new_id()
    r = oci.create("-b", b, cid)
    assert r.returncode == 0, r.stderr
    pid = oci.state(cid)["pid"]
    # Gone from the host, there in the container.
    assert ip("link", "show", dev, check=False).returncode != 0
    inside = subprocess.run(["nsenter", "-t", str(pid), "-n", "ip", "-o", "addr", "show", "eth42"],
                            capture_output=True, text=True).stdout
    link = subprocess.run(["nsenter", "-t", str(pid), "-n", "ip", "-o", "link", "show", "eth42"],
                          capture_output=True, text=True).stdout
    oci.ok("delete", "--force", cid)
    assert "10.77.0.1/24" in inside and "fd00:77::1/64" in inside
    assert "10.78.0.1" not in inside          # not of global scope
    assert ",UP" in link
    # The namespace is gone with the container, and the veth with it (the
    # kernel cleans a dead namespace up in the background: wait for it).
    import time
    for _ in range(1000):
        if ip("link", "show", dev + "p", check=False).returncode != 0:
            break
        time.sleep(0.01)
    assert ip("link", "show", dev + "p", check=False).returncode != 0


def test_net_device_keeps_its_host_name_without_name(oci, veth):
    dev = veth()
    cfg = busybox_config()
    cfg["linux"]["netDevices"] = {dev: {}}
    code, out, err = _run(oci, cfg, f"ip -o link show {dev}")
    assert code == 0, err
    assert dev in out


def test_net_device_name_template(oci, veth):
    """config-linux.md: "unless the user has provided a template by appending
    %d to the new name ... the kernel will generate a unique name"."""
    a, b_ = veth("10.79.0.1/24"), veth()
    cfg = busybox_config()
    cfg["linux"]["netDevices"] = {a: {"name": "net%d"}, b_: {"name": "net%d"}}
    code, out, err = _run(oci, cfg, "ip -o addr show; ip -o link show")
    assert code == 0, err
    assert "net0" in out and "net1" in out
    assert "10.79.0.1/24" in out


def test_net_device_name_taken_in_the_container(oci, veth):
    """config-linux.md: "If a network device with the specified name already
    exists in the container namespace, the runtime MUST generate an error"."""
    dev = veth()
    cfg = busybox_config(["true"])
    cfg["linux"]["netDevices"] = {dev: {"name": "lo"}}
    b = oci.bundle(cfg)
    r = oci.create("-b", b, oci.new_id())
    assert r.returncode == 1
    assert "netDevices" in r.stderr and "already exists" in r.stderr
    assert ip("link", "show", dev, check=False).returncode == 0   # still the host's
    assert oci.ok("list", "-q").stdout == ""


def test_missing_net_device(oci):
    cfg = busybox_config(["true"])
    cfg["linux"]["netDevices"] = {"nosuchdev0": {}}
    r = oci.create("-b", oci.bundle(cfg), oci.new_id())
    assert r.returncode == 1
    assert "nosuchdev0" in r.stderr
    assert oci.ok("list", "-q").stdout == ""


def test_net_devices_need_a_network_namespace(oci, veth):
    dev = veth()
    cfg = busybox_config(["true"])
    cfg["linux"]["namespaces"] = [n for n in cfg["linux"]["namespaces"] if n["type"] != "network"]
    cfg["linux"]["netDevices"] = {dev: {}}
    r = oci.create("-b", oci.bundle(cfg), oci.new_id())
    assert r.returncode == 1
    assert "netDevices" in r.stderr and "network namespace" in r.stderr
    assert ip("link", "show", dev, check=False).returncode == 0
