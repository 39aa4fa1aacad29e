"""The exec template: what the C front end needs to run `exec` itself.

create leaves it beside the `fast` file (<root>/<id>/exec), computed from
what exec_process (execute.py) would read from state.json: the namespaces
to join and in which order, the cgroups to place the process in, the
container's process (the defaults `exec ID CMD...` changes), the seccomp
filter's build steps already encoded by plan.py, and the capability
names.  csrc/exec_fast.c reads it, fills in the process from the command
line or process.json, and runs the same plan execute.py would compile.

It is not written when exec needs more than the front end does (a
systemd cgroup, a seccomp listener, an LSM label, a scheduler, an I/O
priority, a CPU affinity, a string that cannot be one line): every exec
then goes to Python.  Plain lines, "key value"; the seccomp steps as
"seccomp LEN", LEN bytes, newline.
"""
import os

from ociruntime import core
from ociruntime.capabilities import CAPABILITIES, SETS, masks
from ociruntime.namespaces import _JOIN_ORDER, NAMESPACES
from ociruntime.process import RLIMITS
from ociruntime.state import replace_file

MAGIC = b"ociruntime-exec 1\n"
# Keys of the container's process that only Python's exec applies.
PYTHON_ONLY = ("apparmorProfile", "selinuxLabel", "scheduler", "ioPriority", "execCPUAffinity")


def write(c, cg):
    """Write <dir>/exec for container c (created, c.data complete) with
    cgroup manager cg, or remove a stale one when exec must be Python's."""
    data = render(c, cg)
    if data is None:
        try:
            os.unlink(os.path.join(c.dir, "exec"))
        except FileNotFoundError:
            pass
        return
    replace_file(c.dir, "exec", data)


def render(c, cg):
    """The bytes of <dir>/exec, or None when exec must be Python's."""
    lines = _lines(c, cg)
    return None if lines is None else b"".join(lines)


def _lines(c, cg):
    d = c.data
    proc = d.get("process")
    if not proc or d.get("cgroups_systemd") or any(proc.get(k) for k in PYTHON_ONLY):
        return None
    words = [("init", core.INIT_EXE), ("pid", str(d["pid"])), ("start", str(d["pid_start"]))]
    for kind in _JOIN_ORDER:
        flag, name = NAMESPACES[kind]
        entry = "time_for_children" if kind == "time" else name
        words.append(("ns", f"{entry} {name} {flag}"))
    v2 = cg.layout.v2 if d.get("cgroups") else None
    for mnt, path in (d.get("cgroups") or {}).items():
        words.append(("v2" if mnt == v2 else "tasks", path))
    if "mount" not in (d.get("namespaces") or ("mount",)):
        words.append(("chroot", d.get("rootfs") or "/"))
    if not d.get("no_new_keyring"):
        words.append(("keyring", "_ses." + c.id))
    user = proc.get("user") or {}
    words += [("uid", str(user.get("uid", 0))), ("gid", str(user.get("gid", 0))),
              ("umask", str(user.get("umask", 0o022)))]
    words += [("agid", str(g)) for g in user.get("additionalGids") or ()]
    words += [("env", e) for e in proc.get("env") or ()]
    words.append(("cwd", proc.get("cwd") or "/"))
    m = masks(proc.get("capabilities"), "process.capabilities")
    words.append(("caps", " ".join(str(m[s]) for s in SETS)))
    words.append(("nnp", "1" if proc.get("noNewPrivileges") else "0"))
    for rl in proc.get("rlimits") or ():
        words.append(("rlimit", f"{RLIMITS[rl['type']]} {rl['soft']} {rl['hard']}"))
    if proc.get("oomScoreAdj") is not None:
        words.append(("oom", str(proc["oomScoreAdj"])))
    size = proc.get("consoleSize") or {}
    words.append(("console", f"{size.get('height', 0)} {size.get('width', 0)}"))
    out = [MAGIC]
    for key, value in words:
        b = value.encode(errors="surrogateescape")
        if b"\n" in b or b"\0" in b:
            return None
        out.append(b"%s %s\n" % (key.encode(), b))
    # Our own table, not the config's: one block, nothing to check.
    out.append("".join(f"cap {name} {n}\n" for n, name in enumerate(CAPABILITIES)).encode())
    sc = d.get("seccomp")
    if sc is not None:
        from ociruntime import seccomp
        from ociruntime.plan import Plan
        flt = seccomp.compile_filter(sc, os.path.join(d.get("bundle") or "", "config.json"))
        if flt is not None:
            if flt.notify:
                return None
            plan = Plan()
            flt.add_build(plan)
            steps = plan.encode()
            out.append(b"seccomp %d\n%s\n" % (len(steps), steps))
    return out
