"""--systemd-cgroup: the D-Bus client (against known byte strings) and real
containers placed by a fake systemd.

This host runs no systemd, so the tests serve a small fake bus on a unix
socket (DBUS_SYSTEM_BUS_ADDRESS points to it): it speaks the SASL
handshake and the D-Bus message format, answers Hello, AddMatch and
Properties.Get(Version), and does what systemd does for a transient scope:
StartTransientUnit makes the unit's cgroup under the slice in the
hierarchies systemd manages on a v1 host (name=systemd, the cgroup2 mount,
memory, cpu, cpuacct, blkio, devices, pids), moves the PIDs in, answers a
job path and signals JobRemoved "done"; StopUnit removes it all.  It
records every call, so the tests check the unit name and properties.

Slices are named ociruntime-test-XXXX.slice, so their directories are
/ociruntime.slice/ociruntime-test.slice/ociruntime-test-XXXX.slice; every
test checks (and cleans) that nothing of them is left.
"""
import json
import os
import socket
import struct
import threading
import uuid

import pytest

from conftest import busybox_config
from ocihelpers import assert_one_line_error, host_cgroups
from ociruntime import cgroups
from ociruntime.cgroups import dbus, devices, systemd
from ociruntime.errors import OciError

LAYOUT = cgroups.Layout.probe()
SD = "org.freedesktop.systemd1"
SD_PATH = "/org/freedesktop/systemd1"
SD_MANAGER = "org.freedesktop.systemd1.Manager"
# What systemd makes a unit's cgroup in on a v1/hybrid host (not cpuset,
# freezer...: the runtime makes those).
SYSTEMD_MANAGED = ("systemd", "unified", "memory", "cpu", "cpuacct", "blkio", "devices", "pids")


# -- marshalling against known bytes ---------------------------------------------

# Captured from sd-bus (busctl --address=unix:path=... call ...) and
# libdbus (dbus-send), talking to a socket that records what they send.
SDBUS_HELLO = (
    b"l\x01\x00\x01\x00\x00\x00\x00\x01\x00\x00\x00m\x00\x00\x00"
    b"\x01\x01o\x00\x15\x00\x00\x00/org/freedesktop/DBus\x00\x00\x00"
    b"\x03\x01s\x00\x05\x00\x00\x00Hello\x00\x00\x00"
    b"\x02\x01s\x00\x14\x00\x00\x00org.freedesktop.DBus\x00\x00\x00\x00"
    b"\x06\x01s\x00\x14\x00\x00\x00org.freedesktop.DBus\x00\x00\x00\x00")
SDBUS_START = (
    b"l\x01\x04\x01\xa8\x00\x00\x00\x02\x00\x00\x00\xb6\x00\x00\x00"
    b"\x01\x01o\x00\x19\x00\x00\x00/org/freedesktop/systemd1\x00\x00\x00\x00\x00\x00\x00"
    b"\x03\x01s\x00\x12\x00\x00\x00StartTransientUnit\x00\x00\x00\x00\x00\x00"
    b"\x02\x01s\x00 \x00\x00\x00org.freedesktop.systemd1.Manager\x00\x00\x00\x00\x00\x00\x00\x00"
    b"\x06\x01s\x00\x18\x00\x00\x00org.freedesktop.systemd1\x00\x00\x00\x00\x00\x00\x00\x00"
    b"\x08\x01g\x00\x10ssa(sv)a(sa(sv))\x00\x00\x00"
    b"\n\x00\x00\x00test.scope\x00\x00\x07\x00\x00\x00replace\x00"
    b"\x7f\x00\x00\x00"
    b"\x04\x00\x00\x00PIDs\x00\x02au\x00\x00\x00\x00\x04\x00\x00\x00\xd2\x04\x00\x00"
    b"\x08\x00\x00\x00Delegate\x00\x01b\x00\x01\x00\x00\x00\x00\x00\x00\x00"
    b"\x0b\x00\x00\x00MemoryLimit\x00\x01t\x00\x00\x00\x00\x00\x00\x00\x00\x00 \x00\x00\x00\x00"
    b"\x0b\x00\x00\x00Description\x00\x01s\x00\x00\x16\x00\x00\x00ociruntime container x\x00"
    b"\x00\x00\x00\x00\x00\x00\x00\x00\x00")
LIBDBUS_STOP = (
    b"l\x01\x00\x01\x1c\x00\x00\x00\x01\x00\x00\x00\xa0\x00\x00\x00"
    b"\x01\x01o\x00\x19\x00\x00\x00/org/freedesktop/systemd1\x00\x00\x00\x00\x00\x00\x00"
    b"\x02\x01s\x00 \x00\x00\x00org.freedesktop.systemd1.Manager\x00\x00\x00\x00\x00\x00\x00\x00"
    b"\x03\x01s\x00\x08\x00\x00\x00StopUnit\x00\x00\x00\x00\x00\x00\x00\x00"
    b"\x06\x01s\x00\x18\x00\x00\x00org.freedesktop.systemd1\x00\x00\x00\x00\x00\x00\x00\x00"
    b"\x08\x01g\x00\x02ss\x00"
    b"\t\x00\x00\x00foo.scope\x00\x00\x00\x07\x00\x00\x00replace\x00")


def test_marshal_basic_types():
    # The specification's rules: strings are length, bytes, NUL; a
    # signature has a one-byte length; each value aligned to its size.
    assert dbus.marshal("s", ["foo"]) == b"\x03\x00\x00\x00foo\x00"
    assert dbus.marshal("g", ["a(sv)"]) == b"\x05a(sv)\x00"
    assert dbus.marshal("yu", [1, 2]) == b"\x01\x00\x00\x00\x02\x00\x00\x00"
    assert dbus.marshal("bt", [True, 5]) == b"\x01\x00\x00\x00\x00\x00\x00\x00" + struct.pack("<Q", 5)
    assert dbus.marshal("i", [-1]) == b"\xff\xff\xff\xff"
    assert dbus.marshal("o", ["/a"]) == b"\x02\x00\x00\x00/a\x00"
    assert dbus.marshal("u", [0x12345678], endian=">") == b"\x12\x34\x56\x78"
    # An array's length excludes the padding to its first element, which
    # is there even when the array is empty.
    assert dbus.marshal("at", [[5]]) == b"\x08\x00\x00\x00\x00\x00\x00\x00" + struct.pack("<Q", 5)
    assert dbus.marshal("at", [[]]) == b"\x00\x00\x00\x00\x00\x00\x00\x00"
    assert dbus.marshal("au", [[1, 2]]) == b"\x08\x00\x00\x00\x01\x00\x00\x00\x02\x00\x00\x00"
    assert dbus.marshal("as", [["a", "bc"]]) == (
        b"\x0f\x00\x00\x00" b"\x01\x00\x00\x00a\x00\x00\x00" b"\x02\x00\x00\x00bc\x00")
    # A variant: its signature, then the value aligned as its type wants.
    assert dbus.marshal("v", [dbus.Variant("u", 7)]) == b"\x01u\x00\x00\x07\x00\x00\x00"
    assert dbus.marshal("ay", [b"\x0f"]) == b"\x01\x00\x00\x00\x0f"


def test_marshal_round_trip():
    sig = "ssa(sv)a(sa(sv))yiasau(ub)a{sv}"
    values = ["u.scope", "replace",
              [("PIDs", dbus.Variant("au", [1, 2])), ("Delegate", dbus.Variant("b", True)),
               ("DeviceAllow", dbus.Variant("a(ss)", [("/dev/char/1:3", "rwm")])),
               ("AllowedCPUs", dbus.Variant("ay", b"\x03"))],
              [], 7, -3, ["x", ""], [], (1, False), {"k": dbus.Variant("t", 1 << 63)}]
    for endian in "<>":
        got = dbus.unmarshal(sig, dbus.marshal(sig, values, endian), endian)
        assert got == ["u.scope", "replace",
                       [("PIDs", [1, 2]), ("Delegate", True), ("DeviceAllow", [("/dev/char/1:3", "rwm")]),
                        ("AllowedCPUs", b"\x03")],
                       [], 7, -3, ["x", ""], [], (1, False), {"k": 1 << 63}]


def test_messages_match_sd_bus_and_libdbus_bytes():
    hello = dbus.Message(dbus.METHOD_CALL, {dbus.PATH: "/org/freedesktop/DBus", dbus.MEMBER: "Hello",
                                            dbus.INTERFACE: "org.freedesktop.DBus",
                                            dbus.DESTINATION: "org.freedesktop.DBus"}, serial=1)
    assert hello.encode() == SDBUS_HELLO
    start = dbus.Message(
        dbus.METHOD_CALL,
        {dbus.PATH: SD_PATH, dbus.MEMBER: "StartTransientUnit", dbus.INTERFACE: SD_MANAGER,
         dbus.DESTINATION: SD},
        ["test.scope", "replace",
         [("PIDs", dbus.Variant("au", [1234])), ("Delegate", dbus.Variant("b", True)),
          ("MemoryLimit", dbus.Variant("t", 512 << 20)),
          ("Description", dbus.Variant("s", "ociruntime container x"))], []],
        "ssa(sv)a(sa(sv))", flags=4, serial=2)
    assert start.encode() == SDBUS_START
    m = dbus.decode(SDBUS_START)
    assert (m.type, m.serial, m.flags, m.member, m.path, m.destination) == (
        dbus.METHOD_CALL, 2, 4, "StartTransientUnit", SD_PATH, SD)
    assert m.body == ["test.scope", "replace", [("PIDs", [1234]), ("Delegate", True),
                                                ("MemoryLimit", 512 << 20),
                                                ("Description", "ociruntime container x")], []]
    assert dbus.message_length(SDBUS_START[:16]) == len(SDBUS_START)
    m = dbus.decode(LIBDBUS_STOP)
    assert (m.interface, m.member, m.signature, m.body) == (SD_MANAGER, "StopUnit", "ss",
                                                            ["foo.scope", "replace"])
    # What our client sends for the same call, with libdbus's field order.
    ours = dbus.Message(dbus.METHOD_CALL, {dbus.PATH: SD_PATH, dbus.INTERFACE: SD_MANAGER,
                                           dbus.MEMBER: "StopUnit", dbus.DESTINATION: SD},
                        ["foo.scope", "replace"], "ss", serial=1)
    assert ours.encode() == LIBDBUS_STOP


def test_bad_messages_are_errors():
    with pytest.raises(dbus.ProtocolError):
        dbus.decode(b"X" + SDBUS_HELLO[1:])
    with pytest.raises(dbus.ProtocolError):
        dbus.decode(SDBUS_START[:-4])
    with pytest.raises(dbus.ProtocolError):
        dbus.split_signature("a(sv")


def test_addresses():
    assert dbus.parse_address("unix:path=/run/dbus/system_bus_socket") == "/run/dbus/system_bus_socket"
    assert dbus.parse_address("tcp:host=x;unix:path=/a%20b,guid=0") == "/a b"
    assert dbus.parse_address("unix:abstract=/tmp/dbus-x") == "\0/tmp/dbus-x"
    with pytest.raises(dbus.ProtocolError):
        dbus.parse_address("tcp:host=localhost,port=1")


def test_slice_names_and_units():
    assert systemd.expand_slice("system.slice") == "/system.slice"
    assert systemd.expand_slice("a-b-c.slice") == "/a.slice/a-b.slice/a-b-c.slice"
    assert systemd.expand_slice("-.slice") == "/"
    for bad in ("a--b.slice", "-a.slice", ".slice", "a.scope", "a/b.slice"):
        with pytest.raises(OciError, match="not a systemd slice name"):
            systemd.expand_slice(bad)
    assert systemd.parse_path("system.slice:ociruntime:ID", "x") == ("system.slice", "ociruntime-ID.scope")
    assert systemd.parse_path("machine.slice:libpod:abc", "x") == ("machine.slice", "libpod-abc.scope")
    assert systemd.parse_path(":runc:abc", "x") == ("system.slice", "runc-abc.scope")
    assert systemd.parse_path("", "x") == ("system.slice", "ociruntime-x.scope")
    assert systemd.parse_path("a.slice::a-b.slice", "x") == ("a.slice", "a-b.slice")
    assert systemd.parse_path("a.slice::x", "y") == ("a.slice", "-x.scope")   # runc's, too
    with pytest.raises(OciError, match="slice:prefix:name"):
        systemd.parse_path("/a/b", "x")
    with pytest.raises(OciError, match="not a systemd slice name"):
        systemd.parse_path("a:b:c", "x")
    hier = [("cpu", "cgroup", "cpu", "/sys/fs/cgroup/cpu", "/", "/x")]
    assert systemd.unit_paths("a-b.slice", "p-c.scope", hier) == {
        "/sys/fs/cgroup/cpu": "/sys/fs/cgroup/cpu/a.slice/a-b.slice/p-c.scope"}


def test_resource_properties():
    v = dbus.Variant
    res = {"memory": {"limit": 1 << 30, "reservation": 1 << 20, "swap": 2 << 30},
           "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "cpus": "0-2,5"},
           "pids": {"limit": 100}, "blockIO": {"weight": 500}}
    assert systemd.resource_properties(res, v2=False, version=252) == [
        ("MemoryLimit", v("t", 1 << 30)), ("CPUShares", v("t", 1024)),
        ("CPUQuotaPeriodUSec", v("t", 100000)), ("CPUQuotaPerSecUSec", v("t", 500000)),
        ("BlockIOWeight", v("t", 500)), ("TasksMax", v("t", 100)),
        ("AllowedCPUs", v("ay", b"\x27"))]
    assert systemd.resource_properties(res, v2=True, version=241) == [
        ("MemoryMax", v("t", 1 << 30)), ("MemoryLow", v("t", 1 << 20)), ("MemorySwapMax", v("t", 1 << 30)),
        ("CPUWeight", v("t", 39)), ("CPUQuotaPerSecUSec", v("t", 500000)),
        ("IOWeight", v("t", 4950)), ("TasksMax", v("t", 100))]
    # runc's rounding of a quota up to whole percents; -1 is "infinity".
    props = systemd.resource_properties({"cpu": {"quota": 12345, "period": 100000},
                                         "pids": {"limit": -1}, "memory": {"limit": -1}}, False, 230)
    assert props == [("MemoryLimit", v("t", (1 << 64) - 1)), ("CPUQuotaPerSecUSec", v("t", 130000)),
                     ("TasksMax", v("t", (1 << 64) - 1))]
    assert systemd.resource_properties({"pids": {"limit": 0}}, False, 252) == []


def test_device_properties():
    v = dbus.Variant
    rules = devices.rules_for([{"allow": False, "access": "rwm"},
                               {"allow": True, "type": "c", "major": 10, "minor": 229, "access": "rw"}], None)
    props = systemd.device_properties(rules, 252)
    assert props[0] == ("DevicePolicy", v("s", "strict"))
    allow = dict(props[2][1].value)
    assert allow["/dev/char/10:229"] == "rw"
    assert allow["/dev/char/1:3"] == "rwm"
    assert allow["char-136"] == "rwm"
    assert allow["char-*"] == "m" and allow["block-*"] == "m"
    # A deny of a device an allow named takes it away.
    rules = devices.parse_rules([{"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
                                 {"allow": False, "type": "c", "major": 1, "minor": 3, "access": "w"}])
    assert systemd.device_properties(rules, 252)[2] == ("DeviceAllow", v("a(ss)", [("/dev/char/1:3", "rm")]))
    # Allow everything: systemd's "auto" with no list.
    assert systemd.device_properties(devices.parse_rules([{"allow": True}]), 252) == [
        ("DevicePolicy", v("s", "auto")), ("DeviceAllow", v("a(ss)", []))]
    # A deny list systemd cannot express: deny all there (cgroupfs has the real rules).
    rules = devices.parse_rules([{"allow": True}, {"allow": False, "type": "c", "major": 1, "minor": 3}])
    assert systemd.device_properties(rules, 252) == [
        ("DevicePolicy", v("s", "strict")), ("DeviceAllow", v("a(ss)", []))]


# -- a fake systemd on a fake bus ------------------------------------------------------

def _expand(slc):
    """The slice's directory, as systemd nests a-b.slice in a.slice."""
    stem, path, prefix = slc[:-len(".slice")], "", ""
    for part in stem.split("-"):
        path += "/" + prefix + part + ".slice"
        prefix += part + "-"
    return path


class _Peer:
    """One client connection of the fake bus: SASL, then messages."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.serial = 0

    def auth(self):
        if self.sock.recv(1) != b"\0":
            return False
        while True:
            while b"\r\n" not in self.buf:
                chunk = self.sock.recv(4096)
                if not chunk:
                    return False
                self.buf += chunk
            line, _, self.buf = self.buf.partition(b"\r\n")
            if line.startswith(b"AUTH EXTERNAL "):
                # the uid, hex-encoded ASCII: ours (root)
                if bytes.fromhex(line.split()[2].decode()) != str(os.geteuid()).encode():
                    self.sock.sendall(b"REJECTED EXTERNAL\r\n")
                    continue
                self.sock.sendall(b"OK 0123456789abcdef0123456789abcdef\r\n")
            elif line == b"BEGIN":
                return True
            else:
                self.sock.sendall(b"ERROR\r\n")

    def recv(self):
        while len(self.buf) < 16 or len(self.buf) < dbus.message_length(self.buf[:16]):
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self.buf += chunk
        n = dbus.message_length(self.buf[:16])
        data, self.buf = self.buf[:n], self.buf[n:]
        return dbus.decode(data)

    def send(self, mtype, fields, body=(), sig=""):
        self.serial += 1
        self.sock.sendall(dbus.Message(mtype, fields, body, sig, serial=self.serial).encode())


class FakeSystemd:
    def __init__(self, sock_path):
        self.path = str(sock_path)
        self.calls = []          # (member, body)
        self.units = {}          # name: [directories made, parents first]
        self.failed = set()
        self.job_result = "done"
        self.jobs = 0
        self.lock = threading.Lock()
        self.threads = []
        self.conns = []
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(self.path)
        self.srv.listen(8)
        t = threading.Thread(target=self._accept, daemon=True)
        t.start()
        self.threads.append(t)

    def stop(self):
        try:
            self.srv.shutdown(socket.SHUT_RDWR)   # wakes accept()
        except OSError:
            pass
        self.srv.close()
        for c in self.conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in self.threads:
            t.join(5)

    def called(self, member):
        return [body for m, body in self.calls if m == member]

    def _accept(self):
        n = 0
        while True:
            try:
                conn, _ = self.srv.accept()
            except OSError:
                return
            n += 1
            self.conns.append(conn)
            t = threading.Thread(target=self._serve, args=(conn, f":1.{n}"), daemon=True)
            t.start()
            self.threads.append(t)

    # -- the wire (per connection: a _Peer) ---
    def _serve(self, sock, name):
        conn = _Peer(sock)
        try:
            with sock:
                if not conn.auth():
                    return
                while True:
                    msg = conn.recv()
                    if msg is None:
                        return
                    self._dispatch(conn, name, msg)
        except OSError:
            return

    def _reply(self, conn, name, msg, body=(), sig=""):
        conn.send(dbus.METHOD_RETURN, {dbus.REPLY_SERIAL: msg.serial, dbus.DESTINATION: name,
                                       dbus.SENDER: SD}, body, sig)

    def _error(self, conn, name, msg, err, text):
        conn.send(dbus.ERROR, {dbus.REPLY_SERIAL: msg.serial, dbus.DESTINATION: name,
                               dbus.ERROR_NAME: err, dbus.SENDER: SD}, [text], "s")

    def _job_done(self, conn, name, unit, result):
        with self.lock:
            self.jobs += 1
            n = self.jobs
        job = f"{SD_PATH}/job/{n}"
        return job, lambda: conn.send(
            dbus.SIGNAL, {dbus.PATH: SD_PATH, dbus.INTERFACE: SD_MANAGER, dbus.MEMBER: "JobRemoved",
                          dbus.SENDER: SD}, [n, job, unit, result], "uoss")

    def _dispatch(self, conn, name, msg):
        with self.lock:
            self.calls.append((msg.member, msg.body))
        member = msg.member
        if msg.interface == "org.freedesktop.DBus":
            if member == "Hello":
                return self._reply(conn, name, msg, [name], "s")
            if member == "AddMatch":
                return self._reply(conn, name, msg)
        if msg.interface == "org.freedesktop.DBus.Properties" and member == "Get":
            return self._reply(conn, name, msg, [dbus.Variant("s", "252.22-1~deb12u1")], "v")
        if msg.interface != SD_MANAGER:
            return self._error(conn, name, msg, "org.freedesktop.DBus.Error.UnknownMethod", member)
        unit = msg.body[0]
        if member == "StartTransientUnit":
            if unit in self.units or unit in self.failed:
                return self._error(conn, name, msg, "org.freedesktop.systemd1.UnitExists",
                                   f"Unit {unit} was already loaded or has a fragment file.")
            props = dict(msg.body[2])
            result = self.job_result
            if result == "done":
                self.units[unit] = self._make(unit, props)
            else:
                self.failed.add(unit)
            job, signal = self._job_done(conn, name, unit, result)
            self._reply(conn, name, msg, [job], "o")
            return signal()
        if member == "StopUnit":
            if unit not in self.units:
                return self._error(conn, name, msg, "org.freedesktop.systemd1.NoSuchUnit",
                                   f"Unit {unit} not loaded.")
            for d in reversed(self.units.pop(unit)):
                try:
                    os.rmdir(d)
                except OSError:
                    pass   # a slice still in use
            job, signal = self._job_done(conn, name, unit, "done")
            self._reply(conn, name, msg, [job], "o")
            return signal()
        if member == "ResetFailedUnit":
            if unit in self.failed:
                self.failed.discard(unit)
                return self._reply(conn, name, msg)
            return self._error(conn, name, msg, "org.freedesktop.systemd1.NoSuchUnit",
                               f"Unit {unit} not loaded.")
        if member == "SetUnitProperties":
            return self._reply(conn, name, msg)
        return self._error(conn, name, msg, "org.freedesktop.DBus.Error.UnknownMethod", member)

    def _make(self, unit, props):
        """What systemd does: the unit's cgroup in the hierarchies it
        manages, the PIDs moved in."""
        made = []
        for h in SYSTEMD_MANAGED:
            mnt = f"/sys/fs/cgroup/{h}"
            if not os.path.isdir(mnt):
                continue
            d = mnt
            for part in (_expand(props["Slice"]) + "/" + unit).strip("/").split("/"):
                d += "/" + part
                if not os.path.isdir(d):
                    os.mkdir(d)
                    made.append(d)
            for pid in props.get("PIDs", []):
                with open(d + "/cgroup.procs", "w") as f:
                    f.write(str(pid))
        return made


def _test_slice_dirs():
    found = []
    for h in os.listdir("/sys/fs/cgroup"):
        top = f"/sys/fs/cgroup/{h}/ociruntime.slice/ociruntime-test.slice"
        if os.path.isdir(top):
            for d in os.listdir(top):
                found.append(f"{top}/{d}")
    return found


@pytest.fixture
def fake_systemd(tmp_path, monkeypatch):
    """A fake systemd on a bus at DBUS_SYSTEM_BUS_ADDRESS.  Request it
    before `oci`: then it outlives the oci fixture's delete --force."""
    before = set(_test_slice_dirs())
    fake = FakeSystemd(tmp_path / "bus.sock")
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", f"unix:path={fake.path}")
    yield fake
    fake.stop()
    left = sorted(set(_test_slice_dirs()) - before)
    for d in left:   # leave nothing, and say so
        for top, dirs, _ in sorted(os.walk(d, topdown=False), key=lambda x: -len(x[0])):
            try:
                os.rmdir(top)
            except OSError:
                pass
    for h in os.listdir("/sys/fs/cgroup"):   # the parents, if now empty
        for p in ("ociruntime.slice/ociruntime-test.slice", "ociruntime.slice"):
            try:
                os.rmdir(f"/sys/fs/cgroup/{h}/{p}")
            except OSError:
                pass
    assert not left, f"slice cgroups left behind: {left}"


def _slice():
    return f"ociruntime-test-{uuid.uuid4().hex[:8]}.slice"


def _created(oci, cfg, cid):
    r = oci.create("-b", oci.bundle(cfg), cid, global_args=["--systemd-cgroup"])
    assert r.returncode == 0, r.stderr
    return oci.state(cid)["pid"]


def test_container_in_a_systemd_scope(fake_systemd, oci):
    slc = _slice()
    cid = oci.new_id()
    cfg = busybox_config(["sleep", "1000"])
    cfg["linux"]["cgroupsPath"] = f"{slc}:ociruntime:{cid}"
    cfg["linux"]["resources"] = {
        "memory": {"limit": 64 << 20}, "cpu": {"shares": 512, "quota": 20000, "period": 100000},
        "pids": {"limit": 50},
        "devices": [{"allow": False, "access": "rwm"},
                    {"allow": True, "type": "c", "major": 10, "minor": 229, "access": "rwm"}]}
    pid = _created(oci, cfg, cid)
    unit = f"ociruntime-{cid}.scope"
    rel = f"/ociruntime.slice/ociruntime-test.slice/{slc}/{unit}"

    # The call: name, mode, the properties runc sets.
    (start,) = fake_systemd.called("StartTransientUnit")
    name, mode, props, aux = start
    props = dict(props)
    assert (name, mode, aux) == (unit, "replace", [])
    assert props["Slice"] == slc and props["PIDs"] == [pid]
    assert props["Delegate"] is True and props["DefaultDependencies"] is False
    assert props["Description"] == f"ociruntime container {cid}"
    assert props["MemoryAccounting"] and props["CPUAccounting"] and props["TasksAccounting"]
    assert props["MemoryLimit"] == 64 << 20 and props["CPUShares"] == 512
    assert props["CPUQuotaPerSecUSec"] == 200000 and props["CPUQuotaPeriodUSec"] == 100000
    assert props["TasksMax"] == 50
    assert props["DevicePolicy"] == "strict"
    assert ("/dev/char/10:229", "rwm") in props["DeviceAllow"]
    assert fake_systemd.called("AddMatch")[0][0].endswith("member='JobRemoved'")

    # The init is in the unit's cgroup in every hierarchy: systemd's and
    # those the runtime made (cpuset, freezer).
    seen = host_cgroups(pid)
    for key, path in seen.items():
        assert path == rel, (key, path)
    with open(f"/sys/fs/cgroup/memory{rel}/memory.limit_in_bytes") as f:
        assert int(f.read()) == 64 << 20
    with open(f"/sys/fs/cgroup/cpu{rel}/cpu.cfs_quota_us") as f:
        assert int(f.read()) == 20000
    with open(f"/sys/fs/cgroup/devices{rel}/devices.list") as f:
        assert "c 10:229 rwm" in f.read().split("\n")
    state = json.load(open(os.path.join(oci.root, cid, "state.json")))
    assert state["cgroups_systemd"] == {"unit": unit, "slice": slc}

    # update: the unit's properties, and the cgroupfs files.
    oci.ok("update", "--memory", "32m", "--pids-limit", "40", cid)
    (sets,) = fake_systemd.called("SetUnitProperties")
    assert sets[0] == unit and sets[1] is True
    assert dict(sets[2]) == {"MemoryLimit": 32 << 20, "TasksMax": 40}
    with open(f"/sys/fs/cgroup/memory{rel}/memory.limit_in_bytes") as f:
        assert int(f.read()) == 32 << 20
    # Device rules: systemd's list replaced too (the container frozen meanwhile).
    rules = {"devices": [{"allow": False, "access": "rwm"},
                         {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rw"}]}
    oci.ok("update", "--resources", "-", cid, input=json.dumps(rules))
    props = dict(fake_systemd.called("SetUnitProperties")[1][2])
    assert props["DevicePolicy"] == "strict" and ("/dev/char/1:3", "rwm") in props["DeviceAllow"]
    assert oci.state(cid)["status"] == "created"   # thawed again

    oci.ok("start", cid)
    oci.ok("pause", cid)
    assert oci.state(cid)["status"] == "paused"
    oci.ok("resume", cid)
    oci.ok("kill", cid, "KILL")
    oci.ok("delete", "--force", cid)
    assert fake_systemd.called("StopUnit") == [[unit, "replace"]]
    assert fake_systemd.called("ResetFailedUnit") == [[unit]]
    assert _test_slice_dirs() == [] or all(slc not in d for d in _test_slice_dirs())
    for h in os.listdir("/sys/fs/cgroup"):
        assert not os.path.exists(f"/sys/fs/cgroup/{h}/ociruntime.slice/ociruntime-test.slice/{slc}"), h


def test_default_unit_and_run(fake_systemd, oci):
    """No cgroupsPath: system.slice, ociruntime-<id>.scope; `run` too."""
    cid = oci.new_id()
    made = [h for h in os.listdir("/sys/fs/cgroup") if not os.path.exists(f"/sys/fs/cgroup/{h}/system.slice")]
    cfg = busybox_config(["cat", "/proc/self/cgroup"])
    cfg["linux"]["namespaces"] = [n for n in cfg["linux"]["namespaces"] if n["type"] != "cgroup"]
    r = oci.cmd("run", "-b", oci.bundle(cfg), cid, global_args=["--systemd-cgroup"])
    assert r.returncode == 0, r.stderr
    unit = f"ociruntime-{cid}.scope"
    (start,) = fake_systemd.called("StartTransientUnit")
    assert start[0] == unit and dict(start[2])["Slice"] == "system.slice"
    # Without a cgroup namespace: the host's view.
    paths = {line.split(":", 2)[2] for line in r.stdout.splitlines()}
    assert paths == {f"/system.slice/{unit}"}, r.stdout
    assert fake_systemd.called("StopUnit") == [[unit, "replace"]]
    left = [h for h in made if os.path.exists(f"/sys/fs/cgroup/{h}/system.slice")]
    for h in left:
        os.rmdir(f"/sys/fs/cgroup/{h}/system.slice")
    assert not left, f"system.slice left in {left}"


def test_failed_job_leaves_nothing(fake_systemd, oci):
    fake_systemd.job_result = "failed"
    slc = _slice()
    cid = oci.new_id()
    cfg = busybox_config(["true"])
    cfg["linux"]["cgroupsPath"] = f"{slc}:ociruntime:{cid}"
    r = oci.create("-b", oci.bundle(cfg), cid, global_args=["--systemd-cgroup"])
    assert_one_line_error(r, "--systemd-cgroup", f"ociruntime-{cid}.scope", "failed")
    assert not os.path.exists(os.path.join(oci.root, cid))
    assert fake_systemd.called("ResetFailedUnit") == [[f"ociruntime-{cid}.scope"]]
    assert [d for d in _test_slice_dirs() if slc in d] == []


def test_cgroupfs_error_after_start_stops_the_unit(fake_systemd, oci):
    """A value the kernel refuses once the unit exists: create fails, the
    unit is stopped and nothing is left."""
    if "cpuset" not in LAYOUT.v1:
        pytest.skip("no v1 cpuset hierarchy")
    slc = _slice()
    cid = oci.new_id()
    cfg = busybox_config(["true"])
    cfg["linux"]["cgroupsPath"] = f"{slc}:ociruntime:{cid}"
    cfg["linux"]["resources"] = {"cpu": {"cpus": "4095"}}
    r = oci.create("-b", oci.bundle(cfg), cid, global_args=["--systemd-cgroup"])
    assert_one_line_error(r, "cpuset.cpus")
    assert fake_systemd.called("StopUnit") == [[f"ociruntime-{cid}.scope", "replace"]]
    assert not os.path.exists(os.path.join(oci.root, cid))
    assert [d for d in _test_slice_dirs() if slc in d] == []


def test_unit_of_a_live_container_is_left_alone(fake_systemd, oci):
    """The same cgroupsPath twice: the second create fails (the unit
    exists) and the first container keeps its cgroups and processes."""
    slc = _slice()
    first, second = oci.new_id(), oci.new_id()
    cfg = busybox_config(["sleep", "1000"])
    cfg["linux"]["cgroupsPath"] = f"{slc}:ociruntime:shared"
    pid = _created(oci, cfg, first)
    r = oci.create("-b", oci.bundle(cfg), second, global_args=["--systemd-cgroup"])
    assert_one_line_error(r, "--systemd-cgroup", "ociruntime-shared.scope", "UnitExists")
    assert oci.state(first)["status"] == "created"
    assert set(host_cgroups(pid).values()) == {
        f"/ociruntime.slice/ociruntime-test.slice/{slc}/ociruntime-shared.scope"}
    oci.ok("delete", "--force", first)
    assert fake_systemd.called("StopUnit") == [["ociruntime-shared.scope", "replace"]]


def test_unit_exists_is_reset_and_retried(fake_systemd, oci):
    """runc's retry: a failed leftover of the same name is reset first."""
    slc = _slice()
    cid = oci.new_id()
    fake_systemd.failed.add(f"ociruntime-{cid}.scope")
    cfg = busybox_config(["sleep", "1000"])
    cfg["linux"]["cgroupsPath"] = f"{slc}:ociruntime:{cid}"
    _created(oci, cfg, cid)
    assert len(fake_systemd.called("StartTransientUnit")) == 2
    oci.ok("delete", "--force", cid)


def test_errors_without_systemd(oci, tmp_path):
    cfg = busybox_config(["true"])
    b = oci.bundle(cfg)
    env = {k: v for k, v in os.environ.items() if k != "DBUS_SYSTEM_BUS_ADDRESS"}
    if not systemd.systemd_running():
        cid = oci.new_id()
        r = oci.create("-b", b, cid, global_args=["--systemd-cgroup"], env=env)
        assert_one_line_error(r, "--systemd-cgroup", "systemd is not running")
        assert not os.path.exists(os.path.join(oci.root, cid))
    # A bus address with nothing behind it.
    cid = oci.new_id()
    env["DBUS_SYSTEM_BUS_ADDRESS"] = f"unix:path={tmp_path}/nobody.sock"
    r = oci.create("-b", b, cid, global_args=["--systemd-cgroup"], env=env)
    assert_one_line_error(r, "--systemd-cgroup", "nobody.sock")
    assert not os.path.exists(os.path.join(oci.root, cid))
    r = oci.cmd("--systemd-cgroup", "create", "-b", b, cid, env=dict(env, DBUS_SYSTEM_BUS_ADDRESS="tcp:host=x"))
    assert_one_line_error(r, "--systemd-cgroup", "DBUS_SYSTEM_BUS_ADDRESS")
    # A bad path for the systemd driver.
    cfg["linux"]["cgroupsPath"] = "/not/slice/form"
    cid = oci.new_id()
    r = oci.create("-b", oci.bundle(cfg), cid, global_args=["--systemd-cgroup"],
                   env=dict(env, DBUS_SYSTEM_BUS_ADDRESS=f"unix:path={tmp_path}/nobody.sock"))
    assert_one_line_error(r, "slice:prefix:name")
