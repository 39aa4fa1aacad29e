"""The container lifecycle: create, start, kill, delete, run.

create:  config -> plan -> clone (C) -> set-up handshake -> "created"
start:   one byte into exec.fifo; the init execs the process
delete:  kill what is left, remove cgroups and the state directory
"""
import os
import time

# signal's C core: the same functions and SIG* ints, without the enum
# module that `import signal` loads (a few ms of every command).
import _signal as signal

from ociruntime import cgroups, log, state
from ociruntime.errors import ConfigError, ContainerNotFound, ContainerNotRunning, OciError
from ociruntime.namespaces import Namespaces
from ociruntime.state import Container


class _OnFirstUse:
    """A module imported when first used: start, kill and delete need
    neither the C core (cffi) nor the plan builders and the validator."""

    def __init__(self, name):
        self.__name = name

    def __getattr__(self, attr):
        module = __import__("ociruntime." + self.__name, fromlist=["_"])
        globals()[self.__name] = module
        return getattr(module, attr)


config, core, init = _OnFirstUse("config"), _OnFirstUse("core"), _OnFirstUse("init")


def _now_rfc3339():
    ns = time.time_ns()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 10**9)) + f".{ns % 10**9:09d}Z"


def create(root, cid, bundle, pid_file=None, console_socket=None, no_pivot=False,
           preserve_fds=0, foreground=False, systemd_cgroup=False,
           no_new_keyring=False, rootless=False, subreaper=False):
    """Create the container; returns its Container once the init waits.
    foreground (run without -d): a terminal without --console-socket is
    proxied by the caller, which finds its end in c.console_ours.
    subreaper (run without --no-subreaper): reap whatever the container
    leaves to us (see _create).
    A config error names the spec section it breaks, as `validate` does."""
    try:
        return _create(root, cid, bundle, pid_file, console_socket, no_pivot, preserve_fds,
                       foreground, systemd_cgroup, no_new_keyring, rootless, subreaper)
    except ConfigError as e:
        from ociruntime import checks
        raise checks.annotate(e) from None


def _create(root, cid, bundle, pid_file, console_socket, no_pivot, preserve_fds, foreground,
            systemd_cgroup, no_new_keyring, rootless, subreaper=False):
    state.check_id(cid)
    if pid_file:
        pid_file = state.check_pid_file(pid_file)
    bundle = os.path.realpath(bundle or ".")
    source = os.path.join(bundle, "config.json")
    cfg = config.load(bundle)
    linux = cfg.get("linux") or {}
    ns = Namespaces(linux.get("namespaces"), source)
    init.default_mappings(cfg, ns)
    init.check(cfg, ns, source)
    if rootless:
        from ociruntime import rootless as rl
        rl.check_config(cfg, ns, source)
        if systemd_cgroup:
            raise OciError("--systemd-cgroup: not supported in rootless mode yet "
                           "(the user's own systemd is not asked): use cgroupfs")
    if cfg.get("hooks"):
        from ociruntime import hooks
        hooks.check(cfg["hooks"], source)
    if linux.get("netDevices"):
        from ociruntime import netdev
        netdev.check(cfg, source)
    proc = cfg.get("process") or {}
    if proc.get("terminal") or console_socket:
        from ociruntime import terminal
        terminal.check(proc.get("terminal"), console_socket, not foreground)
    preserve_fds += listen_fds(proc, preserve_fds)
    if subreaper and (ns.joined or "pid" not in ns.new):
        # The init is our child (CLONE_PARENT), and a pid namespace of its
        # own reaps its orphans: only the init of an intermediate (a
        # joined namespace) or orphans without a pid namespace come to
        # us.  Otherwise the C core (cffi, ~1 ms) stays unloaded.
        core.set_child_subreaper()
    log.mark("read+validate")

    cdir = state.make_container_dir(root, cid)
    lock = state.lock_dir(cdir)
    c = Container(root, cid, {
        "id": cid, "status": "creating", "bundle": bundle, "rootfs": cfg["root"]["path"],
        "created": _now_rfc3339(), "annotations": cfg.get("annotations") or {},
        "has_process": bool(cfg.get("process")), "hooks": cfg.get("hooks") or {},
        "namespaces": sorted(ns.new) + sorted(ns.joined),
        "seccomp": linux.get("seccomp"),   # exec applies the same filter
        "process": proc,   # exec's defaults, as validated now
        "no_new_keyring": no_new_keyring,   # exec joins the container's keyring unless set
        "rootless": rootless,
    })
    pids = []
    cg = None
    console_fd = -1
    try:
        if proc.get("terminal"):
            from ociruntime import terminal
            if console_socket:
                console_fd = terminal.connect(console_socket)
            else:
                c.console_ours, console_fd = terminal.pair()
        cg = cgroups.Manager.for_config(linux.get("cgroupsPath"), cid, systemd=systemd_cgroup)
        if rootless:   # best effort: only where we may make the directory
            cg.drop_unwritable()
        c.data["cgroups"] = cg.paths
        if systemd_cgroup:   # delete stops the unit (cgroups/systemd.py)
            c.data["cgroups_systemd"] = cg.state()
        else:   # recorded before they are made: a create killed meanwhile leaves delete --force the list
            c.data["cgroups_created"] = cg.planned()
        # cgroups.json is that record (salvage.py reads it when state.json
        # is missing or damaged).  state.json itself is written once, when
        # the init is ready (as runc's): each rename over it costs ext4 a
        # flush.  Create-time hooks may ask `state` meanwhile: "creating".
        c.save_cgroups()
        if _create_hooks(cfg):
            c.save()
        cg.create()
        c.data["cgroups_created"] = cg.created
        cg.apply_config(cfg, source)   # limits in place before the init joins
        log.mark("state dir+cgroups")
        staged = []
        # Without an intermediate the init's pid is known at spawn, and
        # without create-time hooks nothing has saved state.json yet: the
        # ready files are then written while the init sets itself up.
        meanwhile = None if ns.joined or c.on_disk else (
            lambda first: staged.extend(_stage_ready(c, cg, first)))
        try:
            pid = _spawn_init(c, cfg, ns, cg, pids, source, bundle, no_pivot, preserve_fds,
                              console_fd, meanwhile)
        except OciError as e:
            raise cg.explain(e) from None   # e.g. an OOM kill under a tiny memory limit
        st = state.proc_stat(pid)
        if st is None:
            raise OciError("the container init exited during create")
        c.data.update(status="created", pid=pid, pid_start=st[1])
        if staged and staged[0] == (pid, st[1]) and _same_data(c, staged[1]):
            _commit_ready(c, staged, pid_file)
        else:
            c.save()
            if pid_file:
                state.write_pid_file(pid_file, pid)
            from ociruntime import exec_template
            exec_template.write(c, cg)   # what the front end's exec needs
            state.write_fast(c)   # last: the C front end may answer from now on
        log.mark("ready: state saved")
        return c
    except BaseException as e:
        _undo_create(c, cg, pids)
        hooks = None
        if cfg.get("hooks"):
            from ociruntime import hooks
        # A create-time hook failed (in the runtime, or in the init, whose
        # message is all that crosses the channel): the lifecycle goes on at
        # delete's steps (runtime.md 3-5, 12-13), so poststop hooks run.
        if hooks and str(e).startswith(hooks.ERROR_PREFIX):
            hooks.run("poststop", cfg["hooks"].get("poststop"),
                      hooks.state(c.data, "stopped", 0), warn_only=True)
        if getattr(c, "console_ours", None) is not None:
            os.close(c.console_ours)
        raise
    finally:
        os.close(lock)
        if console_fd >= 0:
            os.close(console_fd)


def _stage_ready(c, cg, pid):
    """While the init sets itself up (issue 16: its ~2 ms left our CPU
    idle): the files of the ready container -- state.json, the exec
    template, the front end's `fast` -- rendered as they will be, and
    written under their temporary names.  [(pid, start), state.json's
    bytes, names to rename]; [] when the init is gone already."""
    st = state.proc_stat(pid)
    if st is None:
        return []
    from ociruntime import exec_template, jsonlite
    ready = Container(c.root, c.id, dict(c.data, status="created", pid=pid, pid_start=st[1]))
    ready.saved = jsonlite.dumps(ready.data).encode()
    names = []
    for name, data in (("state.json", ready.saved), ("exec", exec_template.render(ready, cg)),
                       ("fast", state.render_fast(ready))):
        if data is not None:
            state.stage_file(c.dir, name, data)
            names.append(name)
    return [(pid, st[1]), ready.saved, names]


def _same_data(c, saved):
    """Whether state.json as staged is what create would save now (nothing
    changed c.data while the init worked): else the files are written again."""
    from ociruntime import jsonlite
    return jsonlite.dumps(c.data).encode() == saved


def _commit_ready(c, staged, pid_file):
    """The staged files into place, in the order create writes them: the
    front end's `fast` last (it may answer from then on)."""
    _, c.saved, names = staged
    state.commit_staged(c.dir, "state.json")
    c.on_disk = True
    if pid_file:
        state.write_pid_file(pid_file, c.data["pid"])
    for name in names[1:]:
        state.commit_staged(c.dir, name)


def _create_hooks(cfg):
    hooks_cfg = cfg.get("hooks") or {}
    return any(hooks_cfg.get(k) for k in ("prestart", "createRuntime", "createContainer"))


def check_preserved_fds(n, first=3):
    """Like runc: every fd to pass must be open (it is the caller's)."""
    for fd in range(first, first + n):
        try:
            os.fstat(fd)
        except OSError as e:
            raise OciError(f"unable to stat preserved-fd {fd - first} (of {n}): "
                           f"{core.strerror(e.errno)}") from None


def listen_fds(proc, preserve_fds):
    """Socket activation, as runc does it for the init: with LISTEN_FDS=N
    meant for us (LISTEN_PID is our pid), fds 3..3+N-1 pass through and the
    process sees LISTEN_FDS=N, LISTEN_PID=1.  Returns N; checks that the
    N + preserve_fds fds are open."""
    n = 0
    if os.environ.get("LISTEN_FDS"):
        try:
            if int(os.environ.get("LISTEN_PID", "")) == os.getpid():
                n = max(int(os.environ["LISTEN_FDS"]), 0)
        except ValueError:
            n = 0
    check_preserved_fds(n + preserve_fds)
    if n and proc:
        proc["env"] = list(proc.get("env") or ()) + [f"LISTEN_FDS={n}", "LISTEN_PID=1"]
    return n


def _spawn_init(c, cfg, ns, cg, pids, source, bundle, no_pivot, preserve_fds, console_fd=-1,
                meanwhile=None):
    """Start the init, answer its handshake; its pid once it is ready.
    It gets the fds its plan names, and the preserved ones; none of the
    rest of ours (all close-on-exec: the lock, our ends of the sync channel)."""
    first_free = 3 + preserve_fds
    os.mkfifo(c.fifo, 0o600)
    # O_RDWR: the init holds both ends, so its read blocks until `start`
    # writes, and `start` can tell a dead init (ENXIO) from a waiting one.
    fifo_fd = core.move_fd_above(os.open(c.fifo, os.O_RDWR | os.O_CLOEXEC), first_free)
    sync, init_sync = core.channel()
    init_sync = tuple(core.move_fd_above(fd, first_free) for fd in init_sync)
    if console_fd >= 0:   # the caller's copy is closed by create
        console_fd = core.move_fd_above(os.dup(console_fd), first_free)
    listener_fd = report_fd = -1
    hooks_cfg = cfg.get("hooks") or {}
    ctx = None
    try:
        if hooks_cfg.get("startContainer") or hooks_cfg.get("poststart"):
            # `start` waits on it for the exec (EOF) or the init's failure.
            fifo2 = os.path.join(c.dir, "start.fifo")
            os.mkfifo(fifo2, 0o600)
            report_fd = core.move_fd_above(os.open(fifo2, os.O_RDWR | os.O_CLOEXEC), first_free)
        seccomp_cfg = (cfg.get("linux") or {}).get("seccomp")
        if seccomp_cfg is not None:   # SCMP_ACT_NOTIFY: the agent's socket
            from ociruntime import seccomp
            listener_fd = seccomp.open_listener(seccomp.compile_filter(seccomp_cfg, source), first_free)
        # The init places itself in its cgroups (fast; see open_for_init)
        # before it says hello.  Born in its cgroup2 directory, unless that
        # is in a joined cgroup namespace (CLONE_INTO_CGROUP would refuse);
        # a seccomp filter is built before the clone (init.build).
        cgroup_tasks, cgroup_v2_fd = cg.open_for_init(into_v2="cgroup" not in ns.joined)
        cgroup_tasks = [(core.move_fd_above(fd, first_free), p) for fd, p in cgroup_tasks]
        if cgroup_v2_fd >= 0:
            cgroup_v2_fd = core.move_fd_above(cgroup_v2_fd, first_free)
        set_up = _needs_set_up(cfg, ns, cg, bool(c.data.get("rootless")), listener_fd)
        ctx = init.Context(
            set_up=set_up, cgroup_tasks=cgroup_tasks, cgroup_v2_fd=cgroup_v2_fd,
            seccomp_listener_fd=listener_fd,
            seccomp_state={"id": c.id, "bundle": bundle, "annotations": cfg.get("annotations") or {}},
            rootfs=cfg["root"]["path"], bundle=bundle, source=source, fifo_fd=fifo_fd,
            first_closed_fd=first_free, no_pivot=no_pivot,
            # rootless: in a user namespace already (rootless podman runs us as its root)
            userns=ns.has("user") or bool(c.data.get("rootless")), cgroupns="cgroup" in ns.new,
            cgroup_mounts=cg.mount_layout(), console_fd=console_fd,
            rootless=bool(c.data.get("rootless")), netns_new="network" in ns.new,
            console_proxied=getattr(c, "console_ours", None) is not None,
            state=c.data, report_fd=report_fd, no_new_keyring=c.data.get("no_new_keyring"),
        )
        ctx.spawn_fds += [fd for fd, _ in cgroup_tasks] + ([cgroup_v2_fd] if cgroup_v2_fd >= 0 else [])
        plan = init.build(cfg, ns, ctx)
        log.mark("plan")
        log.debug_plan(f"create {c.id}", plan)
        log.mark("--debug: log the plan")
        passed = [fd for fd in (fifo_fd, console_fd, listener_fd, report_fd) if fd >= 0]
        first = core.spawn(plan.encode(), init_sync, [*range(3, first_free), *passed, *ctx.spawn_fds],
                           (c.root, c.id), cwd=bundle)
        log.debug(f"create {c.id}: cloned {first}")
        pids.append(first)
        if listener_fd >= 0:   # the init's copy is the one that sends: the agent waits for EOF
            os.close(listener_fd)
            listener_fd = -1
        for fd in init_sync:   # the init's copy is the one that counts: EOF when it is gone
            os.close(fd)
        init_sync = ()
        if meanwhile is not None and not set_up:   # the init works on alone: our CPU is free
            meanwhile(first)
        return _handshake(sync, first, cfg, cg, pids, bool(ns.joined),
                          on_hooks=_runtime_hooks(c, hooks_cfg), rootless=ctx.rootless,
                          hello=set_up)
    finally:
        for fd in (fifo_fd, *sync, *init_sync, console_fd, listener_fd, report_fd):
            if fd >= 0:
                os.close(fd)
        if ctx is not None:
            for fd in ctx.spawn_fds:
                os.close(fd)


def _needs_set_up(cfg, ns, cg, rootless, listener_fd):
    """Whether the init must wait, after its hello, for the runtime to
    set it up (_set_up_from_outside): ids to map, time offsets, network
    devices, oomScoreAdj, a cgroup it did not join itself; or to learn
    its pid (an intermediate names it; a seccomp agent is told it).
    Otherwise it goes on alone: one round trip less."""
    linux = cfg.get("linux") or {}
    return bool(ns.joined or rootless or listener_fd >= 0 or not cg.init_joins_alone()
                or linux.get("uidMappings") or linux.get("gidMappings")
                or linux.get("timeOffsets") or linux.get("netDevices")
                or (cfg.get("process") or {}).get("oomScoreAdj") is not None)


def _runtime_hooks(c, hooks_cfg):
    """What runs the prestart and createRuntime hooks when the init asks
    (after its mounts), or None if the config has neither."""
    if not (hooks_cfg.get("prestart") or hooks_cfg.get("createRuntime")):
        return None

    def run(pid):
        from ociruntime import hooks
        st = hooks.state(c.data, "creating", pid)
        hooks.run("prestart", hooks_cfg.get("prestart"), st)
        hooks.run("createRuntime", hooks_cfg.get("createRuntime"), st)
    return run


def _handshake(sync, first, cfg, cg, pids, via_intermediate, set_up=None, until_exec=False,
               on_hooks=None, rootless=False, hello=True):
    """Serve the init's requests on sync (our end of the channel) until it
    is ready; its pid.  With an
    intermediate, the init's hello may come before the intermediate's
    message naming it: set up only once both are in.
    exec uses it too: set_up(pid) replaces the init's set-up, and with
    until_exec the end is EOF on sync (close-on-exec: the process exec'd).
    on_hooks(pid) runs the prestart/createRuntime hooks when the init asks.
    hello=False: the plan has no hello (_needs_set_up), nothing to answer."""
    init_pid = None if via_intermediate else first
    answered = not hello
    hello = False
    hello_at, hello_text = 0, ""
    while True:
        msg = core.recv(sync)
        if msg is None:
            if until_exec and answered:
                log.mark("init: set-up until exec")
                return init_pid
            raise OciError("the container init exited during set-up without saying why")
        kind, err, value, text = msg
        if kind == core.MSG_ERROR:
            raise OciError(f"{text}: {core.strerror(err)}" if err else text)
        if kind == core.MSG_PID:
            init_pid = value
            pids.append(value)
            os.waitpid(first, 0)
        elif kind == core.MSG_HELLO:
            hello = True
            hello_at, hello_text = value, text   # when, and the init's phases so far
        elif kind == core.MSG_READY and answered:
            log.mark_init(text, value, "init: other steps, wake-ups", since=hello_text)
            return init_pid
        elif kind == core.MSG_HOOKS and answered and on_hooks is not None:
            on_hooks(init_pid)
            core.send(sync, core.MSG_GO, init_pid)
            continue
        else:
            raise OciError(f"protocol error: unexpected message {kind} from the init")
        if hello and init_pid is not None and not answered:
            log.mark_init(hello_text, hello_at, "init: other steps until hello")
            if set_up is not None:
                set_up(init_pid)
            else:
                _set_up_from_outside(init_pid, cfg, cg, rootless)
            core.send(sync, core.MSG_GO, init_pid)   # the init learns its pid
            log.mark("set-up handshake")
            answered = True


def _set_up_from_outside(pid, cfg, cg, rootless=False):
    """What the parent does for the init: ids, time offsets, cgroups."""
    linux = cfg.get("linux") or {}
    if rootless:   # our own id directly, more through newuidmap/newgidmap
        from ociruntime import rootless as rl
        rl.write_maps(pid, linux, _write_proc)
    for name, key in (("uid_map", "uidMappings"), ("gid_map", "gidMappings")):
        if linux.get(key) and not rootless:
            lines = "".join(f"{m['containerID']} {m['hostID']} {m['size']}\n" for m in linux[key])
            _write_proc(pid, name, lines, f"linux.{key}")
    offsets = linux.get("timeOffsets")
    if offsets:
        lines = "".join(f"{clock} {o.get('secs', 0)} {o.get('nanosecs', 0)}\n" for clock, o in offsets.items())
        _write_proc(pid, "timens_offsets", lines, "linux.timeOffsets")
    cg.join(pid)
    if linux.get("netDevices"):   # the init's network namespace exists now
        from ociruntime import netdev
        netdev.move(pid, linux["netDevices"], "config.json")
    adj = (cfg.get("process") or {}).get("oomScoreAdj")
    if adj is not None:
        _write_proc(pid, "oom_score_adj", str(adj), "process.oomScoreAdj")


def _write_proc(pid, name, text, field):
    try:
        with open(f"/proc/{pid}/{name}", "w") as f:
            f.write(text)
    except OSError as e:
        raise OciError(f"{field}: write /proc/{pid}/{name}: {core.strerror(e.errno)}") from None


def _undo_create(c, cg, pids):
    """Leave nothing of a failed create: processes, cgroups, state."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for pid in pids:
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:   # the init of an intermediate: not ours
            _wait_gone(pid, None, 2.0)
    if cg is not None:
        try:
            cg.destroy()
        except OciError:
            pass
    state.remove_tree(c.dir)


def _wait_gone(pid, start_time, timeout):
    """Wait until pid (with that start time, if given) has exited."""
    import select
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        if start_time is not None and not state.process_alive(pid, start_time):
            return True
        p = select.poll()
        p.register(pidfd, select.POLLIN)
        return bool(p.poll(int(timeout * 1000)))
    finally:
        os.close(pidfd)


# -- start / kill / delete -------------------------------------------------

def start(root, cid, c=None):
    """c: the container as this process's create left it (run): its
    state.json is not read again; its status is still checked, live."""
    if c is None:
        c = Container.load(root, cid)
    lock = state.lock_dir(c.dir)
    if lock is None:
        raise OciError(f'container "{cid}" does not exist')
    try:
        status = c.status()
        if status != "created":
            if status == "stopped":
                raise OciError("cannot start a container that has stopped")
            if status == "running":
                raise OciError("cannot start an already running container")
            raise OciError(f"cannot start a container in the {status} state")   # runc's words
        if not c.data.get("has_process"):
            raise OciError("config.json has no process: there is nothing to start")
        hooks_cfg = c.data.get("hooks") or {}
        report = -1
        if hooks_cfg.get("startContainer") or hooks_cfg.get("poststart"):
            try:
                report = os.open(os.path.join(c.dir, "start.fifo"),
                                 os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            except FileNotFoundError:
                pass
        try:
            try:
                fd = os.open(c.fifo, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            except OSError:
                raise OciError("cannot start a container that has stopped") from None
            try:
                os.write(fd, b"0")
            finally:
                os.close(fd)
            os.unlink(c.fifo)
            if report >= 0:
                from ociruntime import hooks
                failure = hooks.wait_exec(report)
                os.unlink(os.path.join(c.dir, "start.fifo"))
                if failure:   # runtime.md 7: stop the container; delete does the rest
                    _kill_everything(c, cgroups.load(c.data))
                    raise OciError(failure)
                hooks.run("poststart", hooks_cfg.get("poststart"),
                          hooks.state(c.data, "running", c.pid), warn_only=True)
        finally:
            if report >= 0:
                os.close(report)
    finally:
        os.close(lock)


def _signals():
    """Signal names to numbers: built by the first name parsed (kill, and
    the C front end answers most kills), not by every create (issue 16)."""
    global _SIGNALS
    if _SIGNALS is None:
        _SIGNALS = {name: getattr(signal, name) for name in dir(signal)
                    if name.startswith("SIG") and not name.startswith("SIG_")
                    and isinstance(getattr(signal, name), int)}
    return _SIGNALS


_SIGNALS = None


def parse_signal(text):
    """A signal number or name; a number must be one the kernel has
    (0 to SIGRTMAX, 64): `kill ID 65` is a clean error, not EINVAL."""
    if text.isascii() and text.isdigit():
        if len(text.lstrip("0")) > 3 or int(text) > signal.SIGRTMAX:   # not int() of 10**6 digits
            raise OciError(f"invalid signal {text!r}: a number must be at most {signal.SIGRTMAX}")
        return int(text)
    name = text.upper()
    num = _signals().get(name) or _signals().get("SIG" + name)
    if num is None:
        raise OciError(f"unknown signal {text!r}")
    return int(num)


def kill(root, cid, sig, all_processes=False):
    c = Container.load(root, cid)
    status = c.status()
    # --all signals whatever is left in the cgroup even once the init is
    # gone, as runc does (containerd's shim sends `kill --all ID 9` then).
    if status not in ("created", "running", "paused") and not all_processes:
        raise ContainerNotRunning("container not running")
    if all_processes:
        cgroups.load(c.data).kill_all(sig)
        return
    _signal_init(c, sig)
    if status == "paused" and sig == signal.SIGKILL:
        # A task frozen by the v1 freezer dies only once thawed (runc thaws
        # too); other signals stay pending until `resume`.
        cgroups.load(c.data).thaw_after_kill()


def _signal_init(c, sig):
    # A pidfd, checked against the start time after opening, cannot hit
    # another process that reused the pid.
    try:
        pidfd = os.pidfd_open(c.pid)
    except ProcessLookupError:
        raise ContainerNotRunning("container not running") from None
    try:
        if not state.process_alive(c.pid, c.data.get("pid_start")):
            raise ContainerNotRunning("container not running")
        signal.pidfd_send_signal(pidfd, sig)
    except ProcessLookupError:
        raise ContainerNotRunning("container not running") from None
    except OSError as e:
        raise OciError(f"kill the container's init with signal {sig}: {os.strerror(e.errno).lower()}") from None
    finally:
        os.close(pidfd)


def delete(root, cid, force=False, c=None):
    """c: the container as this process created it (run's tail): its
    state.json is not read again.  Nothing that delete reads of it changes
    after create (the cgroups, the init's pid, the hooks), and its
    directory is locked and checked as for any other."""
    damaged = False
    try:
        if c is None:
            c = Container.load(root, cid)
    except (ContainerNotFound, state.CorruptState):
        if not force:
            raise
        # A directory without a readable state (a create killed before it
        # wrote one, or a damaged file): salvage.py finds what is left.
        c, damaged = Container(root, cid, {}), True
    lock = state.lock_dir(c.dir)
    if lock is None:
        if force:
            return   # runc: --force on a missing container succeeds (podman relies on it)
        raise OciError(f'container "{cid}" does not exist')
    if damaged:
        try:   # its create may have been under way: read it again, locked
            c, damaged = Container.load(root, cid), False
        except (ContainerNotFound, state.CorruptState):
            try:
                from ociruntime import salvage
                return salvage.remove(c)
            finally:
                os.close(lock)
    try:
        if c.data.get("status") == "creating":
            status = "stopped"   # we hold the lock: its creator is dead
        else:
            status = c.status()
        if status in ("running", "paused") and not force:
            raise OciError(f"cannot delete container {cid} that is not stopped: {status}")
        cg = cgroups.load(c.data)
        if status != "stopped" or c.data.get("status") == "creating":
            _kill_everything(c, cg)
        cg.destroy()
        if (c.data.get("hooks") or {}).get("poststop"):
            from ociruntime import hooks   # runtime.md 13: after the container is gone
            hooks.run("poststop", c.data["hooks"]["poststop"],
                      hooks.state(c.data, "stopped", c.pid), warn_only=True)
        state.remove_tree(c.dir)
        _check_removed(root, c.dir)
    finally:
        os.close(lock)


def _check_removed(root, cdir):
    """delete must not say it succeeded when the state directory is still
    there (a read-only --root): runc says why, and so do we."""
    try:
        os.rmdir(cdir)
    except FileNotFoundError:
        pass
    except OSError as e:
        raise OciError(f"--root {root}: remove {cdir}: {os.strerror(e.errno).lower()}") from None


def _kill_everything(c, cg):
    # The whole cgroup at once (cgroup.kill, or freeze-signal-thaw): without
    # a pid namespace the rest would survive the init.
    cg.kill_all(signal.SIGKILL)
    pid, start_time = c.pid, c.data.get("pid_start")
    if pid and start_time and state.process_alive(pid, start_time):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        _wait_gone(pid, start_time, 10.0)
    cg.wait_empty(5.0)   # destroy() kills again what is slow to go


# -- run --------------------------------------------------------------------

FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT,
             signal.SIGUSR1, signal.SIGUSR2, signal.SIGWINCH)


def run(root, cid, bundle, pid_file=None, console_socket=None, no_pivot=False,
        preserve_fds=0, detach=False, keep=False, no_subreaper=False, systemd_cgroup=False,
        no_new_keyring=False, rootless=False):
    """create + start; in the foreground, wait and return the exit code."""
    if detach:
        c = create(root, cid, bundle, pid_file, console_socket, no_pivot, preserve_fds,
                   systemd_cgroup=systemd_cgroup, no_new_keyring=no_new_keyring, rootless=rootless)
        start(root, cid, c)
        log.mark("start")
        return 0
    watched = set(FORWARDED) | {signal.SIGCHLD}
    signal.pthread_sigmask(signal.SIG_BLOCK, watched)
    try:
        c = create(root, cid, bundle, pid_file, console_socket, no_pivot, preserve_fds,
                   foreground=True, systemd_cgroup=systemd_cgroup, no_new_keyring=no_new_keyring,
                   rootless=rootless, subreaper=not no_subreaper)
        try:
            ours = getattr(c, "console_ours", None)
            if ours is not None:   # a terminal and no socket: we proxy it
                from ociruntime import terminal
                master = terminal.recv_master(ours)
                try:
                    start(root, cid, c)
                    return terminal.proxy(master, c.pid, watched, lambda: _reap(c.pid))
                finally:
                    os.close(master)
            start(root, cid, c)
            log.mark("start")
            return _wait_forwarding(c.pid, watched)
        finally:
            log.mark("the process ran")
            if not keep:
                delete(root, cid, force=True, c=c)
                log.mark("delete")
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, watched)


def _wait_forwarding(pid, watched):
    """Forward signals to the init until it exits; its exit code, or
    128 + the signal that killed it (as a shell reports it)."""
    while True:
        code = _reap(pid)
        if code is not None:
            return code
        info = signal.sigwaitinfo(watched)
        if info.si_signo != signal.SIGCHLD:
            try:
                os.kill(pid, info.si_signo)
            except ProcessLookupError:
                pass


def _reap(pid):
    while True:
        try:
            got, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return 255   # not ours to wait for (--no-subreaper): unknown
        if got == 0:
            return None
        if got == pid:
            return os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)
