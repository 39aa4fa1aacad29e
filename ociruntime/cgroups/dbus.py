"""A small D-Bus client: just what --systemd-cgroup needs to talk to systemd.

No dependency: a unix socket, the SASL EXTERNAL handshake and the binary
message format of the D-Bus specification ("Message Protocol"):

  header  yyyyuua(yv)  endianness 'l'/'B', type, flags, version 1,
                       body length, serial, header fields; padded to 8
  body    the arguments, marshalled by the SIGNATURE header field

Values map to Python as: y b n q i u x t h -> int/bool, d -> float,
s o g -> str, a -> list (a{..} -> dict), (..) -> tuple, v -> a Variant
(signature, value) when marshalled and the bare value when read.

Used only with --systemd-cgroup (imported lazily by cgroups/systemd.py).
"""
import os
import socket
import struct
import time

# message types
METHOD_CALL, METHOD_RETURN, ERROR, SIGNAL = 1, 2, 3, 4
NO_REPLY_EXPECTED = 0x1

# header field codes and their types
PATH, INTERFACE, MEMBER, ERROR_NAME, REPLY_SERIAL, DESTINATION, SENDER, SIGNATURE, UNIX_FDS = range(1, 10)
FIELD_TYPES = {PATH: "o", INTERFACE: "s", MEMBER: "s", ERROR_NAME: "s", REPLY_SERIAL: "u",
               DESTINATION: "s", SENDER: "s", SIGNATURE: "g", UNIX_FDS: "u"}

BUS_NAME = "org.freedesktop.DBus"
BUS_PATH = "/org/freedesktop/DBus"
SYSTEM_BUS_SOCKET = "/run/dbus/system_bus_socket"

_FIXED = {  # code: (struct format, alignment)
    "y": ("B", 1), "b": ("I", 4), "n": ("h", 2), "q": ("H", 2), "i": ("i", 4),
    "u": ("I", 4), "x": ("q", 8), "t": ("Q", 8), "d": ("d", 8), "h": ("I", 4),
}
_ALIGN = dict({k: a for k, (_, a) in _FIXED.items()},
              s=4, o=4, g=1, a=4, v=1, **{"(": 8, "{": 8})


class DBusError(Exception):
    """An ERROR reply: name (org.freedesktop.systemd1.NoSuchUnit...) and
    the message the peer gave."""

    def __init__(self, name, message=""):
        super().__init__(f"{name}: {message}" if message else name)
        self.name = name
        self.message = message


class ProtocolError(Exception):
    pass


class Variant(tuple):
    """A value with its signature, for marshalling a 'v'."""
    __slots__ = ()

    def __new__(cls, signature, value):
        return tuple.__new__(cls, (signature, value))

    signature = property(lambda self: self[0])
    value = property(lambda self: self[1])


# -- signatures -------------------------------------------------------------------

def split_signature(sig):
    """Complete types of a signature: "sa(sv)u" -> ["s", "a(sv)", "u"]."""
    out, i = [], 0
    while i < len(sig):
        j = _type_end(sig, i)
        out.append(sig[i:j])
        i = j
    return out


def _type_end(sig, i):
    if i >= len(sig):
        raise ProtocolError(f"bad D-Bus signature {sig!r}: incomplete")
    c = sig[i]
    if c == "a":
        return _type_end(sig, i + 1)
    if c in "({":
        close = ")" if c == "(" else "}"
        j = i + 1
        while j < len(sig) and sig[j] != close:
            j = _type_end(sig, j)
        if j >= len(sig):
            raise ProtocolError(f"bad D-Bus signature {sig!r}: no {close!r}")
        return j + 1
    if c in _FIXED or c in "sogv":
        return i + 1
    raise ProtocolError(f"bad D-Bus signature {sig!r} at {i}")


# -- marshalling --------------------------------------------------------------------

class Writer:
    def __init__(self, endian="<"):
        self.e = endian
        self.buf = bytearray()

    def pad(self, n):
        self.buf += b"\0" * (-len(self.buf) % n)

    def write(self, sig, values):
        for t, v in zip(split_signature(sig), values, strict=True):
            self.value(t, v)
        return self

    def value(self, t, v):
        c = t[0]
        if c in _FIXED:
            fmt, align = _FIXED[c]
            self.pad(align)
            if c == "b":
                v = 1 if v else 0
            self.buf += struct.pack(self.e + fmt, v)
        elif c in "so":
            data = v.encode()
            self.pad(4)
            self.buf += struct.pack(self.e + "I", len(data)) + data + b"\0"
        elif c == "g":
            data = v.encode()
            self.buf += bytes((len(data),)) + data + b"\0"
        elif c == "v":
            sig, inner = v
            self.value("g", sig)
            self.value(sig, inner)
        elif c in "({":
            self.pad(8)
            inner = split_signature(t[1:-1])
            for it, iv in zip(inner, v, strict=True):
                self.value(it, iv)
        elif c == "a":
            elem = t[1:]
            self.pad(4)
            at = len(self.buf)
            self.buf += b"\0\0\0\0"
            self.pad(_ALIGN[elem[0]])   # before the first element, not counted
            start = len(self.buf)
            items = v.items() if isinstance(v, dict) else v
            if elem == "y" and isinstance(v, (bytes, bytearray)):
                self.buf += v
            else:
                for item in items:
                    self.value(elem, item)
            struct.pack_into(self.e + "I", self.buf, at, len(self.buf) - start)
        else:
            raise ProtocolError(f"cannot marshal D-Bus type {t!r}")


def marshal(sig, values, endian="<"):
    return bytes(Writer(endian).write(sig, values).buf)


class Reader:
    def __init__(self, data, endian="<", offset=0):
        self.data = data
        self.e = endian
        self.pos = offset

    def align(self, n):
        self.pos += -self.pos % n

    def take(self, n):
        if self.pos + n > len(self.data):
            raise ProtocolError("truncated D-Bus message")
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def read(self, sig):
        return [self.value(t) for t in split_signature(sig)]

    def value(self, t):
        c = t[0]
        if c in _FIXED:
            fmt, align = _FIXED[c]
            self.align(align)
            v = struct.unpack(self.e + fmt, self.take(align))[0]
            return bool(v) if c == "b" else v
        if c in "so":
            self.align(4)
            n = struct.unpack(self.e + "I", self.take(4))[0]
            s = self.take(n + 1)
            return s[:-1].decode()
        if c == "g":
            n = self.take(1)[0]
            return self.take(n + 1)[:-1].decode()
        if c == "v":
            return self.value(self.value("g"))
        if c in "({":
            self.align(8)
            return tuple(self.value(it) for it in split_signature(t[1:-1]))
        if c == "a":
            self.align(4)
            n = struct.unpack(self.e + "I", self.take(4))[0]
            elem = t[1:]
            self.align(_ALIGN[elem[0]])
            end = self.pos + n
            if end > len(self.data):
                raise ProtocolError("truncated D-Bus array")
            if elem == "y":
                return bytes(self.take(n))
            items = []
            while self.pos < end:
                items.append(self.value(elem))
            return dict(items) if elem[0] == "{" else items
        raise ProtocolError(f"cannot unmarshal D-Bus type {t!r}")


def unmarshal(sig, data, endian="<"):
    return Reader(data, endian).read(sig)


# -- messages ------------------------------------------------------------------------

class Message:
    def __init__(self, type, fields=None, body=(), signature="", flags=0, serial=0):
        self.type = type
        self.fields = dict(fields or {})
        self.body = list(body)
        self.flags = flags
        self.serial = serial
        if signature:
            self.fields[SIGNATURE] = signature

    path = property(lambda self: self.fields.get(PATH))
    interface = property(lambda self: self.fields.get(INTERFACE))
    member = property(lambda self: self.fields.get(MEMBER))
    error_name = property(lambda self: self.fields.get(ERROR_NAME))
    reply_serial = property(lambda self: self.fields.get(REPLY_SERIAL))
    destination = property(lambda self: self.fields.get(DESTINATION))
    sender = property(lambda self: self.fields.get(SENDER))
    signature = property(lambda self: self.fields.get(SIGNATURE, ""))

    def __repr__(self):
        return (f"Message(type={self.type}, serial={self.serial}, "
                f"fields={self.fields!r}, body={self.body!r})")

    def encode(self, endian="<"):
        body = marshal(self.signature, self.body, endian)
        fields = [(code, Variant(FIELD_TYPES[code], v)) for code, v in self.fields.items()]
        w = Writer(endian)
        w.value("y", ord("l" if endian == "<" else "B"))
        w.write("yyyuua(yv)", [self.type, self.flags, 1, len(body), self.serial, fields])
        w.pad(8)
        return bytes(w.buf) + body


def message_length(head):
    """Total length of the message whose first 16 bytes are head."""
    endian = _endian(head[0])
    body_len, _serial, fields_len = struct.unpack(endian + "III", head[4:16])
    return 16 + fields_len + (-(16 + fields_len) % 8) + body_len


def _endian(b):
    if b == ord("l"):
        return "<"
    if b == ord("B"):
        return ">"
    raise ProtocolError(f"bad D-Bus endianness byte {b!r}")


def decode(data):
    """A Message from its bytes; ProtocolError if they are not one."""
    try:
        return _decode(data)
    except (IndexError, struct.error, UnicodeDecodeError, TypeError, ValueError) as e:
        raise ProtocolError(f"malformed D-Bus message: {e}") from None


def _decode(data):
    if not data:
        raise ProtocolError("empty D-Bus message")
    endian = _endian(data[0])
    r = Reader(data, endian)
    _e, mtype, flags, version, body_len, serial, fields = r.read("yyyyuua(yv)")
    if version != 1:
        raise ProtocolError(f"D-Bus protocol version {version} is not 1")
    r.align(8)
    m = Message(mtype, dict(fields), flags=flags, serial=serial)
    body = data[r.pos:r.pos + body_len]
    if len(body) != body_len:
        raise ProtocolError("truncated D-Bus message body")
    if m.signature:
        m.body = unmarshal(m.signature, body, endian)
    return m


# -- the connection -------------------------------------------------------------------------

def parse_address(address):
    """The socket address of the first unix: transport in a D-Bus
    address ("unix:path=/run/dbus/system_bus_socket;..." or
    "unix:abstract=NAME")."""
    for part in address.split(";"):
        transport, _, params = part.partition(":")
        if transport != "unix":
            continue
        kv = dict(p.split("=", 1) for p in params.split(",") if "=" in p)
        if "path" in kv:
            return _unescape(kv["path"])
        if "abstract" in kv:
            return "\0" + _unescape(kv["abstract"])
    raise ProtocolError(f"no unix:path= or unix:abstract= transport in D-Bus address {address!r}")


def _unescape(s):
    out, i = bytearray(), 0
    while i < len(s):
        if s[i] == "%":
            out.append(int(s[i + 1:i + 3], 16))
            i += 3
        else:
            out += s[i].encode()
            i += 1
    return out.decode()


class Connection:
    """One connection to a bus (or straight to a peer such as systemd's
    private socket: bus=False, then there is no Hello and no AddMatch)."""

    def __init__(self, path, bus=True, timeout=30.0):
        self.path = path
        self.bus = bus
        self.timeout = timeout
        self.serial = 0
        self.unique_name = None
        self.pending = []     # messages read while waiting for another
        self._buf = b""
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            self.sock.settimeout(timeout)
            self.sock.connect(path)
            self._auth()
            if bus:
                self.unique_name = self.call(BUS_NAME, BUS_PATH, BUS_NAME, "Hello")[0]
        except BaseException:
            self.sock.close()
            raise

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # SASL: a NUL byte, then lines.  EXTERNAL: the kernel tells the peer
    # who we are (SO_PEERCRED); we name our uid, hex-encoded ASCII.
    def _auth(self):
        uid = str(os.geteuid()).encode().hex()
        self.sock.sendall(b"\0AUTH EXTERNAL " + uid.encode() + b"\r\n")
        line = self._line()
        if not line.startswith(b"OK "):
            raise ProtocolError(f"D-Bus authentication refused: {line.decode(errors='replace')}")
        self.sock.sendall(b"BEGIN\r\n")

    def _line(self):
        while b"\r\n" not in self._buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ProtocolError("D-Bus peer closed the connection during authentication")
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\r\n")
        return line

    def _recv_exact(self, n):
        while len(self._buf) < n:
            chunk = self.sock.recv(max(65536, n - len(self._buf)))
            if not chunk:
                raise ProtocolError("D-Bus peer closed the connection")
            self._buf += chunk
        data, self._buf = self._buf[:n], self._buf[n:]
        return data

    def send(self, msg):
        self.serial += 1
        msg.serial = self.serial
        self.sock.sendall(msg.encode())
        return msg.serial

    def recv(self, deadline=None):
        """The next message off the socket."""
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("timed out waiting for a D-Bus message")
            self.sock.settimeout(left)
        head = self._recv_exact(16)
        return decode(head + self._recv_exact(message_length(head) - 16))

    def call(self, destination, path, interface, member, signature="", args=()):
        """A method call; the reply's body (a list).  An ERROR reply raises
        DBusError.  Signals that come meanwhile wait in self.pending."""
        fields = {PATH: path}   # libdbus's order (any order will do)
        if destination and self.bus:
            fields[DESTINATION] = destination
        if interface:
            fields[INTERFACE] = interface
        fields[MEMBER] = member
        serial = self.send(Message(METHOD_CALL, fields, args, signature))
        deadline = time.monotonic() + self.timeout
        while True:
            m = self.recv(deadline)
            if m.type in (METHOD_RETURN, ERROR) and m.reply_serial == serial:
                if m.type == ERROR:
                    text = m.body[0] if m.body and isinstance(m.body[0], str) else ""
                    raise DBusError(m.error_name or "org.freedesktop.DBus.Error.Failed", text)
                return m.body
            if m.type == SIGNAL:
                self.pending.append(m)

    def add_match(self, rule):
        if self.bus:
            self.call(BUS_NAME, BUS_PATH, BUS_NAME, "AddMatch", "s", [rule])

    def wait_signal(self, match, timeout=None):
        """The first signal m (queued or new) for which match(m) is true."""
        for i, m in enumerate(self.pending):
            if match(m):
                return self.pending.pop(i)
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            m = self.recv(deadline)
            if m.type == SIGNAL:
                if match(m):
                    return m
                self.pending.append(m)
