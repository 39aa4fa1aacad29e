"""The Python API, for programs that embed the runtime.

    from ociruntime import Container
    c = Container.create("web", bundle="/srv/web", root="/run/ociruntime")
    c.state()["status"]          # "created"
    c.start(); code = c.wait(); c.delete()

A thin layer over the functions the command line calls (container.py,
execute.py, cgroups/commands.py): the same checks, the same state
directory, so the CLI and the API see each other's containers.  Every
failure is an ociruntime.OciError (ConfigError, ContainerNotFound,
ContainerNotRunning, WaitTimeout), with the one-line message the CLI prints.

Processes: the container's init and exec'd processes are children of the
process that created them (CLONE_PARENT), as with the CLI.  wait() returns
the exit code of a child of ours (128 + N for a signal, as a shell); for a
container created by another process it waits for the end and returns None
(the code went to that process).  Create and delete in the same process,
or call wait(), so that no zombie is left.  The container inherits the
caller's stdin, stdout and stderr, as with `ociruntime create`.
"""
import os

from ociruntime.errors import OciError, WaitTimeout
from ociruntime.state import DEFAULT_ROOT


class Container:
    """A container in the state directory `root`."""

    def __init__(self, id, root=DEFAULT_ROOT):
        self.id, self.root = id, root
        self._exit = None   # the exit code, once wait() has reaped the init

    def __repr__(self):
        return f"Container({self.id!r}, root={self.root!r})"

    # -- finding and making containers ------------------------------------------
    @classmethod
    def create(cls, id, bundle=".", root=DEFAULT_ROOT, *, pid_file=None, console_socket=None,
               no_pivot=False, preserve_fds=0, systemd_cgroup=False, no_new_keyring=False):
        """`ociruntime create`: the container waits for start()."""
        from ociruntime import container
        if systemd_cgroup:
            from ociruntime.cgroups import systemd
            systemd.check_available()
        _call(container.create, root, id, bundle, pid_file, console_socket, no_pivot,
              preserve_fds, systemd_cgroup=systemd_cgroup, no_new_keyring=no_new_keyring)
        return cls(id, root)

    @classmethod
    def run(cls, id, bundle=".", root=DEFAULT_ROOT, **create_options):
        """create + start.  As a context manager, deleted (--force) on exit:
            with Container.run("job", bundle=b) as c:
                code = c.wait()"""
        c = cls.create(id, bundle, root, **create_options)
        try:
            c.start()
        except BaseException:
            c.delete(force=True)
            raise
        return c

    @classmethod
    def load(cls, id, root=DEFAULT_ROOT):
        """The container `id`; ContainerNotFound if there is none."""
        from ociruntime import state
        _call(state.Container.load, root, id)
        return cls(id, root)

    @classmethod
    def list(cls, root=DEFAULT_ROOT):
        """Every container under root (those being deleted, or whose state
        is damaged, left out, as `ociruntime list` does)."""
        from ociruntime import state
        out = []
        for cid in _call(state.Container.ids, root):
            try:
                out.append(cls.load(cid, root))
            except OciError:
                continue
        return out

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.delete(force=True)

    # -- what it is ------------------------------------------------------------
    def _record(self):
        from ociruntime import state
        return _call(state.Container.load, self.root, self.id)

    def state(self):
        """The state of runtime.md, as `ociruntime state` prints it:
        {"ociVersion", "id", "status", "pid", "bundle", ...}."""
        return self._record().oci_state()

    @property
    def status(self):
        return self.state()["status"]

    @property
    def pid(self):
        return self.state()["pid"]

    # -- the lifecycle -----------------------------------------------------------
    def start(self):
        from ociruntime import container
        _call(container.start, self.root, self.id)

    def kill(self, signal="SIGTERM", all=False):
        """Send a signal (a number or a name: 9, "KILL", "SIGKILL") to the
        init, or with all=True to every process of the container."""
        from ociruntime import container
        sig = signal if isinstance(signal, int) else _call(container.parse_signal, str(signal))
        _call(container.kill, self.root, self.id, sig, all)

    def wait(self, timeout=None):
        """Wait for the init to exit; its exit code if it is our child,
        else None.  WaitTimeout after timeout seconds."""
        if self._exit is not None:
            return self._exit
        c = self._record()
        code = _wait_pid(c.pid, c.data.get("pid_start"), timeout)
        self._exit = code
        return code

    def delete(self, force=False):
        """Delete a stopped container (force: any); reaps the init if it
        is our child."""
        from ociruntime import container, state
        pidfd = None
        try:
            c = state.Container.load(self.root, self.id)
            pidfd = _pidfd(c.pid, c.data.get("pid_start"))
        except OciError:
            pass   # delete says what is wrong, or removes what is left
        try:
            _call(container.delete, self.root, self.id, force)
            if pidfd is not None:
                code = _reap(pidfd, os.WNOHANG)
                if code is not None and self._exit is None:
                    self._exit = code
        finally:
            if pidfd is not None:
                os.close(pidfd)

    def exec(self, args=None, *, process=None, env=(), cwd=None, user=None,
             additional_gids=(), caps=(), no_new_privs=None, tty=False, console_socket=None,
             detach=False, pid_file=None, preserve_fds=0, ignore_paused=False, cgroup=(),
             timeout=None):
        """Run a process in the container (`ociruntime exec`): args with
        the container's process's settings, changed by the options, or
        process, a whole process object (a dict, or a process.json path).
        Waits and returns its exit code (128 + N for a signal); with
        detach=True returns its pid at once.  user: "UID[:GID]".  tty
        needs console_socket (the API proxies no terminal)."""
        from ociruntime import execute
        opts = execute.ExecOptions(
            process=process, args=list(args or ()), tty=tty, cwd=cwd, env=list(env), user=user,
            additional_gids=[str(g) for g in additional_gids], caps=list(caps),
            no_new_privs=no_new_privs, detach=True, pid_file=pid_file,
            console_socket=console_socket, preserve_fds=preserve_fds,
            ignore_paused=ignore_paused, cgroup=list(cgroup))
        # Always detached underneath: no signal forwarding or terminal proxy
        # in a program that embeds us; we wait for our child ourselves.
        _call(execute.exec_process, self.root, self.id, opts)
        if detach:
            return opts.pid
        return _wait_pid(opts.pid, None, timeout)

    # -- cgroups ---------------------------------------------------------------
    def pause(self):
        from ociruntime.cgroups import commands
        _call(commands.pause, self.root, self.id)

    def resume(self):
        from ociruntime.cgroups import commands
        _call(commands.resume, self.root, self.id)

    def update(self, resources=None, **groups):
        """Change the limits of a running container: a LinuxResources
        object (config-linux.md#control-groups), or its groups as keywords:
        update(memory={"limit": 64 << 20}, pids={"limit": 100})."""
        from ociruntime.cgroups import commands
        res = dict(resources or {}, **groups)
        _call(commands.update, self.root, self.id, res)

    def stats(self):
        """The container's cgroup statistics, as `ociruntime events --stats`
        gives them (runc's types: cpu, memory, pids, blkio, hugetlb)."""
        from ociruntime.cgroups import commands
        return _call(commands.stats, self.root, self.id)

    def processes(self):
        """The host pids of every process in the container (`ps --format json`)."""
        from ociruntime.cgroups import commands
        return _call(commands.pids, self.root, self.id)


def validate_config(doc, bundle="."):
    """Every problem create would find in the config document doc (a
    dict), as a list of ociruntime.checks.Problem (.path, .message,
    .section; str() is one line); [] if create would take it.  Relative
    paths in it (root.path, bind sources) are taken from bundle."""
    from ociruntime import checks
    return _call(checks.config_problems, doc, bundle)


# -- helpers ----------------------------------------------------------------------

def _call(fn, *args, **kw):
    """fn(...), with an OSError that escaped the lifecycle made an OciError
    (one line, as the CLI would print it)."""
    try:
        return fn(*args, **kw)
    except OciError:
        raise
    except OSError as e:
        raise OciError(f"{e.filename + ': ' if e.filename else ''}{e.strerror or e}") from e


def _pidfd(pid, start_time):
    """A pidfd of pid if it is still the process of that start time
    (alive or a zombie), else None."""
    from ociruntime import state
    if not pid:
        return None
    try:
        fd = os.pidfd_open(pid)
    except (ProcessLookupError, OSError):
        return None
    st = state.proc_stat(pid)   # read after the pidfd: it cannot be a reused pid
    if st is None or (start_time is not None and st[1] != start_time):
        os.close(fd)
        return None
    return fd


def _reap(pidfd, flags=0):
    """Its exit code if the process is our child and has exited (blocking
    unless WNOHANG); None otherwise."""
    try:
        r = os.waitid(os.P_PIDFD, pidfd, os.WEXITED | flags)
    except ChildProcessError:   # not ours: its parent gets the code
        return None
    if r is None:   # WNOHANG, still running
        return None
    return r.si_status if r.si_code == os.CLD_EXITED else 128 + r.si_status


def _wait_pid(pid, start_time, timeout):
    import select
    fd = _pidfd(pid, start_time)
    if fd is None:
        return None   # gone already, reaped by someone else
    try:
        p = select.poll()
        p.register(fd, select.POLLIN)   # readable once it has exited
        if not p.poll(None if timeout is None else max(0, int(timeout * 1000))):
            raise WaitTimeout(f"process {pid} still running after {timeout} s")
        return _reap(fd, os.WNOHANG)
    finally:
        os.close(fd)
