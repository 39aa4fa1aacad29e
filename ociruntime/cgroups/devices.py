"""Device access: linux.resources.devices as v1 files or a v2 eBPF program.

The rules, in order: the config's, then (like runc) the default devices
every container gets (mknod of anything, /dev/null, zero, full, random,
urandom, tty, ptmx, pts/*) and the devices of linux.devices.  A later
rule wins over an earlier one; a device no rule names is denied.

v1: "a" into devices.deny (deny all, empty list), then each rule into
    devices.allow or devices.deny in order, so devices.list shows exactly
    what was asked ("c 10:229 rwm").
v2: an eBPF program (BPF_PROG_TYPE_CGROUP_DEVICE) that checks the rules
    last to first and returns the first match's verdict, attached to the
    container's cgroup2 directory (csrc/bpf_devices.c does the bpf calls).
"""
import os

from ociruntime.errors import OciError


class Rule(tuple):
    """(allow, type, major, minor, access): a typing.NamedTuple without
    importing typing (with it re, functools...: milliseconds of create)."""
    __slots__ = ()

    def __new__(cls, allow, type, major, minor, access):
        return tuple.__new__(cls, (allow, type, major, minor, access))

    def __repr__(self):
        return "Rule(allow=%r, type=%r, major=%r, minor=%r, access=%r)" % self

    allow = property(lambda self: self[0])    # bool
    type = property(lambda self: self[1])     # a, c, b
    major = property(lambda self: self[2])    # int, None: any
    minor = property(lambda self: self[3])    # int, None: any
    access = property(lambda self: self[4])   # some of rwm

    def v1_line(self):
        if self.type == "a" and self.major is None and self.minor is None and set(self.access) == set("rwm"):
            return "a"
        mj = "*" if self.major is None else self.major
        mn = "*" if self.minor is None else self.minor
        return f"{self.type} {mj}:{mn} {self.access}"


def _r(t, mj, mn, acc):
    return Rule(True, t, mj, mn, acc)


DEFAULT_ALLOWED = (
    _r("c", None, None, "m"), _r("b", None, None, "m"),   # mknod anything
    _r("c", 1, 3, "rwm"),     # /dev/null
    _r("c", 1, 8, "rwm"),     # /dev/random
    _r("c", 1, 7, "rwm"),     # /dev/full
    _r("c", 5, 0, "rwm"),     # /dev/tty
    _r("c", 1, 5, "rwm"),     # /dev/zero
    _r("c", 1, 9, "rwm"),     # /dev/urandom
    _r("c", 136, None, "rwm"),  # /dev/pts/*
    _r("c", 5, 2, "rwm"),     # /dev/ptmx
)


def parse_rules(entries, field="linux.resources.devices"):
    rules = []
    for i, e in enumerate(entries or ()):
        t = e.get("type") or "a"
        acc = e.get("access") or "rwm"
        if t not in ("a", "b", "c") or not acc or set(acc) - set("rwm"):
            raise OciError(f"{field}[{i}]: type must be a, b or c and access some of rwm")
        acc = "".join(ch for ch in "rwm" if ch in acc)
        for k in ("major", "minor"):
            v = e.get(k)
            if v is not None and (v < -1 or v >= 1 << 32):
                raise OciError(f"{field}[{i}].{k}: {v} is not a device number")
        mj = None if e.get("major") in (None, -1) else e["major"]
        mn = None if e.get("minor") in (None, -1) else e["minor"]
        if t == "a" and (mj is not None or mn is not None or acc != "rwm"):
            # v1 takes "a" as everything: spell it out per type.
            rules += [Rule(bool(e["allow"]), "c", mj, mn, acc), Rule(bool(e["allow"]), "b", mj, mn, acc)]
        else:
            rules.append(Rule(bool(e["allow"]), t, mj, mn, acc))
    return rules


def rules_for(spec_rules, linux_devices):
    """The whole rule list of a container, in order."""
    rules = parse_rules(spec_rules)
    rules += DEFAULT_ALLOWED
    for d in linux_devices or ():
        t = d.get("type")
        if t in ("c", "u", "b") and d.get("major") is not None and d.get("minor") is not None:
            rules.append(_r("b" if t == "b" else "c", d["major"], d["minor"], "rwm"))
    return rules


def apply(mgr, rules, explicit=False):
    where = mgr.dir_of("devices")
    if mgr.rootless:
        # As runc: a rootless container's device rules are not applied (an
        # unprivileged user can load no eBPF program, nor write devices.*
        # of v1); its user namespace keeps it from making device nodes, and
        # only the host's are bound in, with the host's permissions.
        return
    if where is not None and where[0] == 1:
        apply_v1(where[1], rules)
    elif mgr.v2_dir:
        attach_v2(mgr.v2_dir, rules)
    elif explicit:
        raise OciError("linux.resources.devices: this host has no devices cgroup "
                       "(neither a v1 devices hierarchy nor cgroup v2)")


def apply_v1(d, rules):
    """"a" into devices.deny, then the rules in order.  Each file is
    opened once (every write is one rule to the kernel), and a deny
    before the first allow is not written: after "a" the list is empty,
    and a deny only takes away from it."""
    from ociruntime.cgroups import open_file, write_value
    fds = {}
    try:
        fds[False] = open_file(d + "/devices.deny", "linux.resources.devices")
        write_value(fds[False], d + "/devices.deny", "a", "linux.resources.devices")
        allowed = False
        for r in rules:
            allowed = allowed or r.allow
            if not allowed:
                continue
            path = d + ("/devices.allow" if r.allow else "/devices.deny")
            field = f"linux.resources.devices: {'allow' if r.allow else 'deny'} {r.v1_line()}"
            if r.allow not in fds:
                fds[r.allow] = open_file(path, field)
            write_value(fds[r.allow], path, r.v1_line(), field)
    finally:
        for fd in fds.values():
            os.close(fd)


# -- eBPF -------------------------------------------------------------------------

LDX_W = 0x61        # BPF_LDX | BPF_MEM | BPF_W
AND32_K = 0x54      # BPF_ALU | BPF_AND | BPF_K
RSH32_K = 0x74      # BPF_ALU | BPF_RSH | BPF_K
MOV32_X = 0xbc      # BPF_ALU | BPF_MOV | BPF_X
MOV32_K = 0xb4      # BPF_ALU | BPF_MOV | BPF_K
JNE_K = 0x55        # BPF_JMP | BPF_JNE | BPF_K
JNE_X = 0x5d        # BPF_JMP | BPF_JNE | BPF_X
JEQ_K = 0x15        # BPF_JMP | BPF_JEQ | BPF_K
EXIT = 0x95         # BPF_JMP | BPF_EXIT
DEV_BLOCK, DEV_CHAR = 1, 2            # BPF_DEVCG_DEV_*
ACC = {"m": 1, "r": 2, "w": 4}        # BPF_DEVCG_ACC_*


def _i(code, dst=0, src=0, off=0, imm=0):
    return (code, dst, src, off, imm)


def program(rules):
    """The device program as a list of (code, dst, src, off, imm).
    r2 = type, r3 = access, r4 = major, r5 = minor (from struct
    bpf_cgroup_dev_ctx); the rules are checked last to first.  An allow
    rule matches when every requested access is allowed, a deny rule when
    any requested access is denied."""
    insns = [
        _i(LDX_W, 2, 1, 0), _i(AND32_K, 2, imm=0xFFFF),
        _i(LDX_W, 3, 1, 0), _i(RSH32_K, 3, imm=16),
        _i(LDX_W, 4, 1, 4), _i(LDX_W, 5, 1, 8),
    ]
    for r in reversed(rules):
        block = []   # jumps with off=None go to the next block
        if r.type != "a":
            block.append(_i(JNE_K, 2, imm=DEV_CHAR if r.type == "c" else DEV_BLOCK, off=None))
        bits = sum(ACC[c] for c in r.access)
        if bits != 7:
            block.append(_i(MOV32_X, 1, 3))
            block.append(_i(AND32_K, 1, imm=bits))
            block.append(_i(JNE_X, 1, 3, off=None) if r.allow else _i(JEQ_K, 1, imm=0, off=None))
        if r.major is not None:
            block.append(_i(JNE_K, 4, imm=r.major, off=None))
        if r.minor is not None:
            block.append(_i(JNE_K, 5, imm=r.minor, off=None))
        block += [_i(MOV32_K, 0, imm=int(r.allow)), _i(EXIT)]
        n = len(block)
        insns += [(c, d, s, n - k - 1 if off is None else off, imm)
                  for k, (c, d, s, off, imm) in enumerate(block)]
        if len(block) == 2:   # matches everything: earlier rules never count
            return insns
    return insns + [_i(MOV32_K, 0, imm=0), _i(EXIT)]


def encode(insns):
    from struct import Struct   # v2 only: not on every create's path
    insn = Struct("<BBhi")   # struct bpf_insn: u8 code, u8 dst:4 src:4, s16 off, s32 imm
    return b"".join(insn.pack(c, (s << 4) | d, off, imm - (1 << 32) if imm >= 1 << 31 else imm)
                    for c, d, s, off, imm in insns)


def run(insns, dev_type, access, major, minor):
    """Interpret the program (what the kernel would answer): 1 or 0.
    For tests; dev_type 'c'/'b', access some of rwm."""
    ctx = ((sum(ACC[c] for c in access) << 16) | (DEV_CHAR if dev_type == "c" else DEV_BLOCK), major, minor)
    reg = [0] * 11
    pc = 0
    while True:
        code, d, s, off, imm = insns[pc]
        pc += 1
        if code == LDX_W:
            reg[d] = ctx[off // 4]
        elif code == AND32_K:
            reg[d] &= imm
        elif code == RSH32_K:
            reg[d] >>= imm
        elif code == MOV32_X:
            reg[d] = reg[s]
        elif code == MOV32_K:
            reg[d] = imm
        elif code == JNE_K:
            pc += off if reg[d] != imm else 0
        elif code == JNE_X:
            pc += off if reg[d] != reg[s] else 0
        elif code == JEQ_K:
            pc += off if reg[d] == imm else 0
        elif code == EXIT:
            return reg[0]
        else:
            raise ValueError(f"unknown insn {code:#x}")


def attach_v2(cgroup_dir, rules):
    from ociruntime._core import ffi, lib
    insns = program(rules)
    code = encode(insns)
    log = ffi.new("char[]", 65536)
    r = lib.oci_bpf_devices_attach(cgroup_dir.encode(), code, len(insns), log, 65536)
    if r < 0:
        from ociruntime.core import strerror
        detail = ffi.string(log).decode(errors="replace").strip().splitlines()
        extra = f" (verifier: {detail[-1]})" if detail else ""
        raise OciError(f"linux.resources.devices: load the eBPF device filter into {cgroup_dir}: "
                       f"{strerror(-r)}{extra}")


def attached(cgroup_dir):
    """How many device programs are attached to a cgroup2 directory."""
    from ociruntime._core import lib
    return lib.oci_bpf_device_progs(cgroup_dir.encode())
