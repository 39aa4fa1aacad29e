"""The container lifecycle: create, start, kill, delete, run.

create:  config -> plan -> clone (C) -> set-up handshake -> "created"
start:   one byte into exec.fifo; the init execs the process
delete:  kill what is left, remove cgroups and the state directory
"""
import os
import shutil
import signal
import time

from ociruntime import cgroups, config, core, init, state
from ociruntime.errors import ContainerNotRunning, OciError
from ociruntime.namespaces import Namespaces
from ociruntime.state import Container


def _now_rfc3339():
    ns = time.time_ns()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 10**9)) + f".{ns % 10**9:09d}Z"


def create(root, cid, bundle, pid_file=None, console_socket=None, no_pivot=False,
           preserve_fds=0, extra_close=()):
    """Create the container; returns its Container once the init waits."""
    state.check_id(cid)
    bundle = os.path.realpath(bundle or ".")
    source = os.path.join(bundle, "config.json")
    cfg = config.load(bundle)
    linux = cfg.get("linux") or {}
    ns = Namespaces(linux.get("namespaces"), source)
    init.check(cfg, ns, source)
    proc = cfg.get("process") or {}
    if proc.get("terminal") and not console_socket:
        raise OciError("process.terminal is set: a --console-socket is needed to pass the terminal")
    if proc.get("terminal"):
        raise OciError("process.terminal: terminals are not supported yet")

    os.makedirs(root, 0o711, exist_ok=True)
    cdir = os.path.join(root, cid)
    try:
        os.mkdir(cdir, 0o711)
    except FileExistsError:
        raise OciError(f'container with id "{cid}" already exists') from None
    lock = state.lock_dir(cdir)
    c = Container(root, cid, {
        "id": cid, "status": "creating", "bundle": bundle, "rootfs": cfg["root"]["path"],
        "created": _now_rfc3339(), "annotations": cfg.get("annotations") or {},
        "has_process": bool(cfg.get("process")), "hooks": cfg.get("hooks") or {},
        "namespaces": sorted(ns.new) + sorted(ns.joined),
    })
    pids = []
    cg = None
    try:
        c.save()
        cg = cgroups.Manager.for_config(linux.get("cgroupsPath"), cid)
        c.data["cgroups"] = cg.paths
        cg.create()
        c.data["cgroups_created"] = cg.created
        c.save()
        pid = _spawn_init(c, cfg, ns, cg, pids, source, bundle, no_pivot, preserve_fds,
                          [lock, *extra_close])
        st = state.proc_stat(pid)
        if st is None:
            raise OciError("the container init exited during create")
        c.data.update(status="created", pid=pid, pid_start=st[1])
        c.save()
        if pid_file:
            state.write_atomic(os.path.abspath(pid_file), str(pid))
        return c
    except BaseException:
        _undo_create(c, cg, pids)
        raise
    finally:
        os.close(lock)


def _spawn_init(c, cfg, ns, cg, pids, source, bundle, no_pivot, preserve_fds, close_fds):
    """Clone the init, answer its handshake; its pid once it is ready."""
    first_free = 3 + preserve_fds
    os.mkfifo(c.fifo, 0o600)
    # O_RDWR: the init holds both ends, so its read blocks until `start`
    # writes, and `start` can tell a dead init (ENXIO) from a waiting one.
    fifo_fd = core.move_fd_above(os.open(c.fifo, os.O_RDWR | os.O_CLOEXEC), first_free)
    parent_fd, child_fd = core.socketpair()
    child_fd = core.move_fd_above(child_fd, first_free)
    try:
        ctx = init.Context(
            rootfs=cfg["root"]["path"], bundle=bundle, source=source, fifo_fd=fifo_fd,
            close_fds=[parent_fd, *close_fds], first_closed_fd=first_free, no_pivot=no_pivot,
            userns=ns.has("user"), cgroupns="cgroup" in ns.new,
            cgroup_mounts=cg.mount_layout(),
        )
        plan = init.build(cfg, ns, ctx)
        first = core.spawn(plan.encode(), child_fd)
        pids.append(first)
        os.close(child_fd)
        child_fd = -1
        return _handshake(parent_fd, first, cfg, cg, pids, bool(ns.joined))
    finally:
        for fd in (fifo_fd, parent_fd, child_fd):
            if fd >= 0:
                os.close(fd)


def _handshake(fd, first, cfg, cg, pids, via_intermediate):
    """Serve the init's requests until it is ready; its pid.  With an
    intermediate, the init's hello may come before the intermediate's
    message naming it: set up only once both are in."""
    init_pid = None if via_intermediate else first
    hello = answered = False
    while True:
        msg = core.recv(fd)
        if msg is None:
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
        elif kind == core.MSG_READY and answered:
            return init_pid
        else:
            raise OciError(f"protocol error: unexpected message {kind} from the init")
        if hello and init_pid is not None and not answered:
            _set_up_from_outside(init_pid, cfg, cg)
            core.send(fd, core.MSG_GO)
            answered = True


def _set_up_from_outside(pid, cfg, cg):
    """What the parent does for the init: ids, time offsets, cgroups."""
    linux = cfg.get("linux") or {}
    for name, key in (("uid_map", "uidMappings"), ("gid_map", "gidMappings")):
        if linux.get(key):
            lines = "".join(f"{m['containerID']} {m['hostID']} {m['size']}\n" for m in linux[key])
            _write_proc(pid, name, lines, f"linux.{key}")
    offsets = linux.get("timeOffsets")
    if offsets:
        lines = "".join(f"{clock} {o.get('secs', 0)} {o.get('nanosecs', 0)}\n" for clock, o in offsets.items())
        _write_proc(pid, "timens_offsets", lines, "linux.timeOffsets")
    cg.join(pid)
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
    shutil.rmtree(c.dir, ignore_errors=True)


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

def start(root, cid):
    c = Container.load(root, cid)
    lock = state.lock_dir(c.dir)
    if lock is None:
        raise OciError(f'container "{cid}" does not exist')
    try:
        status = c.status()
        if status != "created":
            if status == "stopped":
                raise OciError("cannot start a container that has stopped")
            raise OciError(f"cannot start an already {status} container")
        if not c.data.get("has_process"):
            raise OciError("config.json has no process: there is nothing to start")
        try:
            fd = os.open(c.fifo, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            raise OciError("cannot start a container that has stopped") from None
        try:
            os.write(fd, b"0")
        finally:
            os.close(fd)
        os.unlink(c.fifo)
    finally:
        os.close(lock)


SIGNALS = {name: getattr(signal, name) for name in dir(signal)
           if name.startswith("SIG") and not name.startswith("SIG_") and isinstance(getattr(signal, name), int)}


def parse_signal(text):
    if text.isdigit():
        return int(text)
    name = text.upper()
    num = SIGNALS.get(name) or SIGNALS.get("SIG" + name)
    if num is None:
        raise OciError(f"unknown signal {text!r}")
    return int(num)


def kill(root, cid, sig, all_processes=False):
    c = Container.load(root, cid)
    status = c.status()
    if status not in ("created", "running", "paused"):
        raise ContainerNotRunning("container not running")
    if all_processes:
        for pid in cgroups.Manager(c.data.get("cgroups") or {}).pids():
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        return
    _signal_init(c, sig)


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
    finally:
        os.close(pidfd)


def delete(root, cid, force=False):
    try:
        c = Container.load(root, cid)
    except OciError:
        if not force or not os.path.isdir(os.path.join(root, state.check_id(cid))):
            raise
        c = Container(root, cid, {})   # corrupt state: remove what we can
    lock = state.lock_dir(c.dir)
    if lock is None:
        raise OciError(f'container "{cid}" does not exist')
    try:
        if c.data.get("status") == "creating":
            status = "stopped"   # we hold the lock: its creator is dead
        else:
            status = c.status()
        if status in ("running", "paused") and not force:
            raise OciError(f"cannot delete container {cid} that is not stopped: {status}")
        cg = cgroups.Manager(c.data.get("cgroups") or {}, c.data.get("cgroups_created") or ())
        if status != "stopped" or c.data.get("status") == "creating":
            _kill_everything(c, cg)
        cg.destroy()
        shutil.rmtree(c.dir, ignore_errors=True)
    finally:
        os.close(lock)


def _kill_everything(c, cg):
    pid, start_time = c.pid, c.data.get("pid_start")
    if pid and start_time and state.process_alive(pid, start_time):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        _wait_gone(pid, start_time, 10.0)
    for p in cg.pids():   # without a pid namespace, the rest survive init
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


# -- run --------------------------------------------------------------------

FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT,
             signal.SIGUSR1, signal.SIGUSR2, signal.SIGWINCH)


def run(root, cid, bundle, pid_file=None, console_socket=None, no_pivot=False,
        preserve_fds=0, detach=False, keep=False, no_subreaper=False):
    """create + start; in the foreground, wait and return the exit code."""
    if detach:
        create(root, cid, bundle, pid_file, console_socket, no_pivot, preserve_fds)
        start(root, cid)
        return 0
    if not no_subreaper:   # the init may be a grandchild: make it ours
        core.set_child_subreaper()
    watched = set(FORWARDED) | {signal.SIGCHLD}
    signal.pthread_sigmask(signal.SIG_BLOCK, watched)
    try:
        c = create(root, cid, bundle, pid_file, console_socket, no_pivot, preserve_fds)
        try:
            start(root, cid)
            return _wait_forwarding(c.pid, watched)
        finally:
            if not keep:
                delete(root, cid, force=True)
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
