"""exec: run another process in a running (or created) container.

The plan: an intermediate process (ociruntime-init's first child, ours:
core.spawn) joins every namespace of the container that differs from
ours (through fds the runtime opened on /proc/<init>/ns, checked against
the init's start time; the user namespace first, the mount namespace
last), then OP_CLONE with CLONE_PARENT forks the process
itself -- in the container's pid namespace, and our child, so that a
foreground exec can wait for it.  It says hello; we put it in the
container's cgroups (and --cgroup sub-cgroups) and say go; it sets up
its terminal, limits, ids and capabilities, and execs.  The process's
end of the sync channel is close-on-exec: EOF without an error message
means the exec happened, and only then is --pid-file written (conmon
takes the file as success).
"""
import os

# The C core of signal, no enum; jsonlite, not json (and re): see jsonlite.py.
import _signal as signal

from ociruntime import cgroups, container, core, jsonlite, log, process, state
from ociruntime.errors import ConfigError, ContainerNotRunning, OciError
from ociruntime.namespaces import _JOIN_ORDER, NAMESPACES
from ociruntime.plan import Plan
from ociruntime.state import Container

CLONE_PARENT = 0x00008000
CLONE_NEWCGROUP = 0x02000000


class ExecOptions:
    """What `ociruntime exec` was told (cli.py fills it)."""

    def __init__(self, **kw):
        self.process = None          # path of a process.json
        self.args = []
        self.tty = None              # None: not given
        self.cwd = None
        self.env = []
        self.user = None
        self.additional_gids = []
        self.caps = []
        self.no_new_privs = None
        self.apparmor = None
        self.process_label = None
        self.detach = False
        self.pid_file = None
        self.console_socket = None
        self.preserve_fds = 0
        self.ignore_paused = False
        self.cgroup = []
        self.__dict__.update(kw)


# The exec flag that sets each field of the process: an error in a field
# the command line set names the flag, not config.json (which create
# validated).
FLAG_OF_FIELD = (("$.cwd", "--cwd"), ("$.env", "--env"), ("$.user.additionalGids", "--additional-gids"),
                 ("$.user", "--user"), ("$.capabilities", "--cap"), ("$.apparmorProfile", "--apparmor"),
                 ("$.selinuxLabel", "--process-label"), ("$.noNewPrivileges", "--no-new-privs"),
                 ("$.args", "COMMAND"))


def _error(source, path, msg, from_flags):
    for field, flag in FLAG_OF_FIELD if from_flags else ():
        if path == field or path.startswith((field + ".", field + "[")):
            return ConfigError(f"{flag}: {msg}")
    return ConfigError(f"{source}: {path}: {msg}")


def validate_process(proc, source, from_flags=False):
    """A process.json: the config schema's `process`, plus runc's checks.
    from_flags: the process is the container's changed by exec's flags."""
    from ociruntime._config_validator import validate
    if not isinstance(proc, dict):
        raise ConfigError(f"{source}: $: process must be a JSON object")
    error = validate({"ociVersion": "1.0.0", "process": proc})
    if error is not None:
        path = "$" + error[0][len("$.process"):] if error[0].startswith("$.process") else error[0]
        raise _error(source, path, error[1], from_flags)
    if not proc.get("cwd"):
        raise _error(source, "$.cwd", "must not be empty", from_flags)
    if not proc["cwd"].startswith("/"):
        raise _error(source, "$.cwd", f"must be an absolute path, not {proc['cwd']!r}", from_flags)
    if not proc.get("args"):
        raise _error(source, "$.args", "must not be empty", from_flags)


def _check_flags(opts):
    """What the flags ask that the schema does not check, refused naming
    the flag (later steps would blame the container's config.json)."""
    from ociruntime.capabilities import CAP_NUMBER
    for name in opts.caps:
        if name not in CAP_NUMBER:
            raise ConfigError(f"--cap: unknown capability {name!r}")
    if opts.apparmor or opts.process_label:
        from ociruntime import lsm
        if opts.apparmor and not lsm.apparmor_enabled():
            raise ConfigError(f"--apparmor: AppArmor is not enabled on this host, so profile "
                              f"{opts.apparmor!r} cannot be applied")
        if opts.process_label and not lsm.selinux_enabled():
            raise ConfigError("--process-label: selinux label is specified, but selinux is "
                              "disabled or not supported")


def _load_process_file(path):
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise ConfigError(f"{path}: {core.strerror(e.errno)}") from None
    try:
        proc = jsonlite.loads(raw)
    except ValueError as e:
        raise ConfigError(f"{path}: invalid JSON: {e}") from None
    from ociruntime.config import check_strings
    check_strings(raw, proc, path)
    validate_process(proc, path)
    return proc


def _given_process(proc):
    """A process object given by a program (the API), checked as a file's."""
    from ociruntime.config import check_strings
    try:
        proc = jsonlite.loads(jsonlite.dumps(proc))   # a copy of plain JSON values
    except (TypeError, ValueError) as e:
        raise ConfigError(f"process: not a JSON object: {e}") from None
    check_strings(b"\\u", proc, "process")   # (a raw text with \u: every string is walked)
    validate_process(proc, "process")
    return proc


def _dedup_env(env):
    """The last value of a variable wins, at the place of its first."""
    seen = {}
    for e in env:
        seen[e.partition("=")[0]] = e
    out, done = [], set()
    for e in env:
        k = e.partition("=")[0]
        if k not in done:
            out.append(seen[k])
            done.add(k)
    return out


def build_process(opts, cfg):
    """The process to run: --process FILE, or the container's config's
    process with the command line's changes (runc's getProcess)."""
    if isinstance(opts.process, dict):   # the API's: a process object
        proc = _given_process(opts.process)
    elif opts.process:
        proc = _load_process_file(opts.process)
    else:
        proc = dict(cfg.get("process") or {})
        if not opts.args:
            raise OciError("process args cannot be empty")
        _check_flags(opts)
        proc["args"] = list(opts.args)
        if opts.cwd:
            proc["cwd"] = opts.cwd
        proc["env"] = list(proc.get("env") or ()) + list(opts.env)
        proc["terminal"] = bool(opts.tty)
        if opts.no_new_privs is not None:
            proc["noNewPrivileges"] = opts.no_new_privs
        user = dict(proc.get("user") or {})
        if opts.user:
            uid, sep, gid = opts.user.partition(":")
            if sep:
                user["gid"] = _int(gid, "gid", "--user")
            user["uid"] = _int(uid, "uid", "--user")
        if opts.additional_gids:
            user["additionalGids"] = list(user.get("additionalGids") or ()) + \
                [_int(g, "additional-gids", "--additional-gids") for g in opts.additional_gids]
        proc["user"] = user
        if opts.caps:
            caps = {k: list(v or ()) for k, v in (proc.get("capabilities") or {}).items()}
            for name in opts.caps:
                for s in ("bounding", "effective", "permitted", "ambient"):
                    caps.setdefault(s, []).append(name)
            proc["capabilities"] = caps
        if opts.apparmor:
            proc["apparmorProfile"] = opts.apparmor
        if opts.process_label:
            proc["selinuxLabel"] = opts.process_label
        validate_process(proc, "exec", from_flags=True)
    # With --process the file is the whole process (runc ignores --tty,
    # --env... then).  apparmorProfile and selinuxLabel (--apparmor,
    # --process-label): checked and applied as create does (ociruntime/lsm.py).
    proc["env"] = _dedup_env(proc.get("env") or ())
    return proc


def _int(text, what, flag):
    try:
        n = int(text)
    except ValueError:   # runc's words, after the flag
        raise OciError(f"{flag}: parsing {text} as int for {what} failed") from None
    if n < 0:
        raise OciError(f"{flag}: {what} must be a positive number {n}")
    return n


def sub_cgroups(specs, paths):
    """{hierarchy mountpoint: directory} for --cgroup [CTRL[,CTRL]:]PATH."""
    if not specs:
        return {}
    out = {}
    by_ctrl = {}
    for mnt in paths:
        name = os.path.basename(mnt)
        for ctrl in name.split(","):
            by_ctrl[ctrl] = mnt
        if name == "unified":
            by_ctrl[""] = mnt
    for spec in specs:
        parts = spec.split(":")
        if len(parts) > 2:
            raise OciError(f"invalid --cgroup argument: {spec}")
        if len(parts) == 1:
            if len(specs) != 1:
                raise OciError(f"invalid --cgroup argument: {spec} (missing <controller>: prefix)")
            sub = parts[0]
            # No controller on this hybrid host: every hierarchy that has it.
            for mnt, base in paths.items():
                target = _sub_path(base, sub)
                if os.path.isdir(target):
                    out[mnt] = target
            if not out:
                raise OciError(f"--cgroup {spec}: no such sub-cgroup in any hierarchy of the container")
            continue
        ctrls, sub = parts
        for ctrl in ctrls.split(","):
            mnt = by_ctrl.get(ctrl)
            if mnt is None:
                raise OciError(f"unknown controller {ctrl} in --cgroup")
            out[mnt] = _sub_path(paths[mnt], sub)
    return out


def _sub_path(base, sub):
    path = os.path.normpath(os.path.join(base, sub.lstrip("/")))
    if path != base and not path.startswith(base + "/"):
        raise OciError(f"{sub} is not a sub cgroup path")
    return path


def _namespace_fds(c, first_free):
    """[(fd, CLONE flag)] of the container's namespaces that are not ours,
    in join order; fds opened through the init's /proc entry, then the
    init checked to still be the container's (not a reused pid)."""
    out = []
    try:
        for kind in _JOIN_ORDER:
            flag, name = NAMESPACES[kind]
            # time_for_children: a created init has unshared its time
            # namespace but enters it only when it execs.
            entry = "time_for_children" if kind == "time" else name
            try:
                theirs = os.stat(f"/proc/{c.pid}/ns/{entry}")
            except FileNotFoundError:
                if os.path.exists(f"/proc/{c.pid}"):
                    continue   # this kernel has no such namespace
                raise ContainerNotRunning("cannot exec in a stopped container") from None
            ours = os.stat(f"/proc/self/ns/{name}")
            if (theirs.st_dev, theirs.st_ino) == (ours.st_dev, ours.st_ino):
                continue
            fd = os.open(f"/proc/{c.pid}/ns/{entry}", os.O_RDONLY | os.O_CLOEXEC)
            out.append((core.move_fd_above(fd, first_free), flag))
        if not state.process_alive(c.pid, c.data.get("pid_start")):
            raise ContainerNotRunning("cannot exec in a stopped container")
        return out
    except BaseException:
        for fd, _ in out:
            os.close(fd)
        raise


def exec_process(root, cid, opts):
    """Run the process; its exit code in the foreground, 0 detached."""
    c = Container.load(root, cid)
    if opts.pid_file:
        opts.pid_file = state.check_pid_file(opts.pid_file)
    status = c.status()
    if status in ("stopped", "creating"):
        raise ContainerNotRunning("cannot exec in a stopped container")
    if status == "paused" and not opts.ignore_paused:
        raise OciError("cannot exec in a paused container (use --ignore-paused to override)")
    bundle = c.data.get("bundle") or ""
    cfg = {}
    if not opts.process:
        # The process create validated and kept (as runc execs from the
        # config it stored): neither config.json nor the validator is read.
        if "process" in c.data:
            cfg = {"process": c.data["process"]}
        else:   # a container made before create kept it
            from ociruntime import config
            cfg = config.load(bundle)
    proc = build_process(opts, cfg)
    terminal = bool(proc.get("terminal"))
    if terminal or opts.console_socket:
        from ociruntime import terminal as term
        term.check(terminal, opts.console_socket, opts.detach)
    container.check_preserved_fds(opts.preserve_fds)
    first_free = 3 + opts.preserve_fds
    cg_paths = dict(c.data.get("cgroups") or {})
    subs = sub_cgroups(opts.cgroup, cg_paths)
    log.mark("read state+process")

    watched = set(container.FORWARDED) | {signal.SIGCHLD}
    if not opts.detach:
        signal.pthread_sigmask(signal.SIG_BLOCK, watched)
    fds = []          # ours to close once spawned
    ours = None       # our end of the foreground terminal's pair
    pid = None
    pids = []
    try:
        ns_fds = _namespace_fds(c, first_free)
        fds += [fd for fd, _ in ns_fds]
        # The process places itself in the container's cgroups, as create's
        # init does (Manager.open_for_init): v1 through `tasks`, cgroup2 at
        # birth.  Our writing its pid would wait for an RCU grace period
        # (5-15 ms here: most of an exec).  Not born in cgroup2 if it builds
        # a seccomp filter there (create's rule: not on the container's memory).
        cg = cgroups.Manager(dict(cg_paths, **subs))
        cg_tasks, cg_v2_fd = cg.open_for_init(into_v2=c.data.get("seccomp") is None)
        cg_tasks = [(core.move_fd_above(fd, first_free), path) for fd, path in cg_tasks]
        fds += [fd for fd, _ in cg_tasks]
        if cg_v2_fd >= 0:
            cg_v2_fd = core.move_fd_above(cg_v2_fd, first_free)
            fds.append(cg_v2_fd)
        log.mark("namespace and cgroup fds")
        sync, init_sync = core.channel()
        fds += sync
        init_sync = tuple(core.move_fd_above(fd, first_free) for fd in init_sync)
        fds += init_sync
        console_fd = -1
        if terminal:
            from ociruntime import terminal as term
            if opts.console_socket:
                console_fd = term.connect(opts.console_socket)
            else:
                ours, console_fd = term.pair()
            console_fd = core.move_fd_above(console_fd, first_free)
            fds.append(console_fd)

        plan = Plan()
        # Not dumpable before joining anything: a process of the container
        # must never open /proc/PID/exe (a sealed memfd: csrc/sealed_exe.c),
        # mem or fds of the runtime's ociruntime-init (CVE-2019-5736); the
        # process cloned below inherits it.
        if ns_fds:
            plan.add("SET_DUMPABLE", 0)
        for fd, flag in ns_fds:
            if flag != CLONE_NEWCGROUP:
                plan.add("SETNS", fd, flag)
        plan.add("CLONE", CLONE_PARENT if ns_fds else 0, *([cg_v2_fd] if cg_v2_fd >= 0 else []))
        # The cgroup namespace only now: CLONE_INTO_CGROUP wants the clone's
        # old and new cgroups both inside the caller's cgroup namespace.
        for fd, flag in ns_fds:
            if flag == CLONE_NEWCGROUP:
                plan.add("SETNS", fd, flag)
        if ns_fds:   # the intermediate's: the process needs none of them
            plan.add("CLOSE", *(fd for fd, _ in ns_fds))
        plan.add("SET_DUMPABLE", 0)     # until exec, the runtime's ociruntime-init
        if "mount" not in (c.data.get("namespaces") or ("mount",)):
            # The container has no mount namespace of its own (it listed
            # none): its root is a chroot to its rootfs, as create's init did.
            plan.add("CHROOT", c.data.get("rootfs") or "/")
        source = opts.process if isinstance(opts.process, str) else \
            "process" if opts.process else os.path.join(bundle, "config.json")
        extra = proc.get("execCPUAffinity") or proc.get("scheduler") or proc.get("ioPriority")
        if extra:   # execCPUAffinity: initial before joining the cgroup, final after
            from ociruntime import process_attrs
            process_attrs.plan_exec_affinity(plan, proc, "initial", source)
        if cg_tasks:
            plan.add("JOIN_CGROUP", *[x for fd, path in cg_tasks for x in (fd, path)])
        plan.add("SYNC_HELLO")          # we join what it did not
        if not c.data.get("no_new_keyring"):   # runc: the container's session keyring
            plan.add("SESSION_KEYRING", "_ses." + c.id)
        if extra:
            process_attrs.plan_exec_affinity(plan, proc, "final", source)
            if proc.get("scheduler"):
                process_attrs.plan_scheduler(plan, proc["scheduler"], f"{source}: $.process.scheduler")
            if proc.get("ioPriority"):
                process_attrs.plan_ioprio(plan, proc["ioPriority"], f"{source}: $.process.ioPriority")
        plan.add("SETSID")
        if terminal:
            term.plan_terminal(plan, proc, console_fd, mount_console=False, proxied=ours is not None)
        # The container's linux.seccomp (kept by create) applies to every
        # process in it, as in runc; loaded where create loads it.
        on_identity = on_exec = None
        sc_cfg = c.data.get("seccomp")
        if sc_cfg is not None:
            from ociruntime import seccomp
            lfd = seccomp.open_listener(seccomp.compile_filter(sc_cfg, source), first_free)
            if lfd >= 0:
                fds.append(lfd)
            sc_state = {"id": cid, "status": "running", "bundle": bundle,
                        "annotations": c.data.get("annotations") or {}}
            on_identity = lambda: seccomp.add_seccomp_step(   # noqa: E731
                plan, sc_cfg, source, proc, "identity", lfd, sc_state)
            on_exec = lambda: seccomp.add_seccomp_step(   # noqa: E731
                plan, sc_cfg, source, proc, "exec", lfd, sc_state)
        if proc.get("apparmorProfile") or proc.get("selinuxLabel"):   # as create: runc's rules
            from ociruntime import lsm
            lsm.check({"process": proc}, source)
            lsm.plan_labels(plan, proc)
        # HOME from the passwd the container sees (its mounts, its changes),
        # as runc reads it inside: through the init's root, resolved in it.
        finish = process.plan_process(plan, proc, f"/proc/{c.pid}/root", source, first_free,
                                      on_identity, mountinfo=f"/proc/{c.pid}/mountinfo")
        finish(before_exec=on_exec)

        def set_up(p):
            cg.join(p)
            if proc.get("oomScoreAdj") is not None:
                container._write_proc(p, "oom_score_adj", str(proc["oomScoreAdj"]), "process.oomScoreAdj")

        log.mark("plan")
        log.debug_plan(f"exec {cid}", plan)
        log.mark("--debug: log the plan")
        passed = [fd for fd in fds if fd not in sync and fd not in init_sync]
        first = core.spawn(plan.encode(), init_sync, [*range(3, first_free), *passed], (root, cid))
        log.debug(f"exec {cid}: cloned {first}")
        pids.append(first)
        for fd in fds:
            if fd not in sync:
                os.close(fd)
        fds = list(sync)
        pid = container._handshake(sync, first, cfg, None, pids, bool(ns_fds),
                                   set_up=set_up, until_exec=True)
        if opts.pid_file:
            state.write_pid_file(opts.pid_file, pid)
        opts.pid = pid   # the API waits for it itself
        if opts.detach:
            return 0
        if ours is not None:
            master = term.recv_master(ours)
            ours = None
            try:
                return term.proxy(master, pid, watched, lambda: container._reap(pid))
            finally:
                os.close(master)
                log.mark("the process ran")
        code = container._wait_forwarding(pid, watched)
        log.mark("the process ran")
        return code
    except BaseException:
        # The process is our child (CLONE_PARENT) until reaped: safe to
        # kill.  The intermediate (pids[0] when more follow) is reaped.
        if pid is not None:
            _kill_reap(pid)
        elif len(pids) == 1:
            _kill_reap(pids[0])
        else:
            for p in pids[1:]:
                _kill_reap(p)
        raise
    finally:
        for fd in fds:
            os.close(fd)
        if ours is not None:
            os.close(ours)
        if not opts.detach:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, watched)


def _kill_reap(pid):
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass
