"""Hooks (config.md, POSIX-platform Hooks): when each runs, and where.

  prestart, createRuntime  the runtime, during create: the init stops after
                           its mounts, before pivot_root (OP_SYNC_HOOKS), so
                           every namespace exists and the mounts are done
  createContainer          the init itself (OP_HOOK), right after that: in
                           the container's namespaces, before pivot_root, so
                           the path still resolves on the host's tree
  startContainer           the init (OP_HOOK), after `start` woke it, right
                           before exec: in the container, path and all
  poststart                the runtime, in `start`, once the process has
                           executed (start waits for the exec: start.fifo)
  poststop                 the runtime, in `delete`, after the container is gone

Each hook gets the state on stdin with the status true at that moment
("creating", "created", "running", "stopped").  The pid is the one the
hook's namespace sees: the host pid for the runtime's hooks, the pid in the
container (1 with a pid namespace) for the init's.  A failing create- or
start-time hook fails the operation (create leaves nothing behind; start
kills the container, and `delete` does the rest); a failing poststart or
poststop hook is a warning.

Only imported when a config has hooks.
"""
import json
import os

from ociruntime import SPEC_VERSION
from ociruntime.errors import ConfigError, OciError

KINDS = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")
HOOK_NAMES = KINDS   # what `features` reports
# The prefix of every hook failure's message (create tells them apart by it).
ERROR_PREFIX = "error running "


class HookError(OciError):
    pass


def check(hooks, source):
    """What the schema leaves to us: absolute paths, positive timeouts."""
    if not isinstance(hooks, dict):
        raise ConfigError(f"{source}: $.hooks: must be an object")
    for kind in KINDS:
        for i, h in enumerate(hooks.get(kind) or ()):
            check_hook(h, f"{source}: $.hooks.{kind}[{i}]")


def check_hook(h, where):
    path = h.get("path")
    if not isinstance(path, str) or not path.startswith("/"):
        raise ConfigError(f"{where}.path: must be an absolute path, not {path!r}")
    t = h.get("timeout")
    if t is not None and (not isinstance(t, int) or isinstance(t, bool) or t <= 0):
        raise ConfigError(f"{where}.timeout: must be greater than zero, not {t!r}")


def state(data, status, pid):
    """The state of runtime.md for a hook's stdin."""
    s = {"ociVersion": SPEC_VERSION, "id": data.get("id", ""), "status": status,
         "pid": pid, "bundle": data.get("bundle", "")}
    if data.get("annotations"):
        s["annotations"] = data["annotations"]
    return s


def run(kind, entries, st, warn_only=False):
    """Run a list of hooks in order, in the runtime's namespaces."""
    if not entries:
        return
    from ociruntime._core import ffi, lib
    data = json.dumps(st, separators=(",", ":")).encode()
    for i, h in enumerate(entries):
        path = h["path"]
        keep = []

        def cstrs(items):
            arr = ffi.new("char *[]", len(items) + 1)
            for j, item in enumerate(items):
                b = ffi.new("char[]", item.encode() if isinstance(item, str) else item)
                keep.append(b)
                arr[j] = b
            return arr

        argv = cstrs(h.get("args") or [path])   # Go's exec.Cmd: no args -> {path}
        envp = cstrs(h["env"]) if h.get("env") is not None else ffi.NULL
        out = ffi.new("char[]", 512)
        status = ffi.new("int *")
        timeout = h.get("timeout") or 0
        r = lib.oci_run_hook(path.encode(), argv, envp, data, len(data), timeout, -1, out, 512, status)
        if r == 0:
            continue
        text = ffi.string(out).decode(errors="replace").strip()
        what = f"{ERROR_PREFIX}{kind} hook #{i} ({path})"
        if r == lib.OCI_HOOK_TIMEOUT:
            msg = f"{what}: hook ran past specified timeout of {timeout}s"
        elif r < 0:
            from ociruntime.core import strerror
            msg = f"{what}: exec: {strerror(-r)}"
        else:
            w = status[0]
            how = (f"exit status {os.WEXITSTATUS(w)}" if os.WIFEXITED(w)
                   else f"signal {os.WTERMSIG(w)}")
            msg = f"{what}: {how}" + (f", output: {text}" if text else "")
        if warn_only:
            from ociruntime import log
            log.warning(msg)
            continue
        raise HookError(msg)


def _state_parts(ctx, status):
    """The state JSON around its pid, which only the init knows."""
    s = state(ctx.state, status, 0)
    del s["pid"]
    text = json.dumps(s, separators=(",", ":"))
    return text[:-1] + ',"pid":', "}"


def _plan_hooks(plan, kind, entries, ctx, status):
    head, tail = _state_parts(ctx, status)
    for i, h in enumerate(entries):
        args = list(h.get("args") or ())
        env = h.get("env")
        plan.add("HOOK", kind, i, h["path"], h.get("timeout") or 0, head, tail,
                 len(args), *args, -1 if env is None else len(env), *(env or ()))


def plan_create(plan, hooks, ctx):
    """After the mounts, before pivot_root: the runtime's create-time hooks,
    then createContainer in the init."""
    if hooks.get("prestart") or hooks.get("createRuntime"):
        plan.add("SYNC_HOOKS")
    if hooks.get("createContainer"):
        _plan_hooks(plan, "createContainer", hooks["createContainer"], ctx, "creating")


def plan_start(plan, hooks, ctx):
    """After `start` woke the init: failures go to start.fifo, where
    `start` waits; then startContainer."""
    report_fd = getattr(ctx, "report_fd", -1)
    if report_fd >= 0:
        plan.add("REPORT_FD", report_fd)
    if hooks.get("startContainer"):
        _plan_hooks(plan, "startContainer", hooks["startContainer"], ctx, "created")


def needs_report(hooks):
    """Whether `start` must wait for the exec (and hear of failures)."""
    return bool(hooks and (hooks.get("startContainer") or hooks.get("poststart")))


def wait_exec(fd):
    """In `start`: wait until the init has exec'd (EOF) or died saying why;
    the failure's text or ''."""
    import select
    p = select.poll()
    p.register(fd, select.POLLIN | select.POLLHUP)
    chunks = []
    while True:
        p.poll()
        try:
            b = os.read(fd, 4096)
        except BlockingIOError:
            continue
        if not b:
            return b"".join(chunks).decode(errors="replace").strip()
        chunks.append(b)
