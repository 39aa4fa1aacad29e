"""Command line, runc-compatible: `ociruntime [global flags] COMMAND [flags] ARGS`.

Flags take `--name value`, `--name=value` and Go's single-dash `-name`.
Each command imports only what it needs: every call pays start-up.
"""
import sys

from ociruntime import SPEC_VERSION, __version__, log
from ociruntime.errors import OciError


# flag name -> True (takes a value), False (boolean), list (a value, and
# may be given again: the values accumulate), or a str (an alias)
GLOBAL = {"root": True, "log": True, "log-format": True, "debug": False,
          "systemd-cgroup": False, "rootless": True, "criu": True,
          "version": False, "v": "version", "help": False, "h": "help"}
_CREATE = {"bundle": True, "b": "bundle", "pid-file": True, "console-socket": True,
           "no-pivot": False, "no-new-keyring": False, "preserve-fds": True}
COMMANDS = {
    "create": _CREATE,
    "run": dict(_CREATE, detach=False, d="detach", keep=False, **{"no-subreaper": False}),
    "start": {}, "state": {},
    "kill": {"all": False, "a": "all"},
    "delete": {"force": False, "f": "force"},
    "list": {"format": True, "f": "format", "quiet": False, "q": "quiet"},
    "exec": {"process": True, "p": "process", "tty": False, "t": "tty", "cwd": True,
             "env": list, "e": "env", "user": True, "u": "user",
             "additional-gids": list, "g": "additional-gids", "cap": list, "c": "cap",
             "no-new-privs": False, "apparmor": True, "process-label": True,
             "detach": False, "d": "detach", "pid-file": True, "console-socket": True,
             "preserve-fds": True, "ignore-paused": False, "cgroup": list,
             "no-subreaper": False},
    "spec": {"bundle": True, "b": "bundle", "rootless": False},
    "validate": {"bundle": True, "b": "bundle"},
    "features": {},
    "pause": {}, "resume": {},
    "ps": {"format": True, "f": "format"},
    "events": {"stats": False, "interval": True},
    "checkpoint": {"image-path": True, "work-path": True, "parent-path": True,
                   "leave-running": False, "tcp-established": False, "ext-unix-sk": False,
                   "shell-job": False, "lazy-pages": False, "file-locks": False,
                   "pre-dump": False, "manage-cgroups-mode": True, "empty-ns": list,
                   "auto-dedup": False, "page-server": True, "status-fd": True},
    "restore": {"image-path": True, "work-path": True, "tcp-established": False,
                "ext-unix-sk": False, "shell-job": False, "file-locks": False,
                "manage-cgroups-mode": True, "empty-ns": list, "auto-dedup": False,
                "lazy-pages": False, "bundle": True, "b": "bundle", "detach": False,
                "d": "detach", "pid-file": True, "console-socket": True,
                "no-subreaper": False, "no-pivot": False, "lsm-profile": True,
                "lsm-mount-context": True},
    "update": {},   # filled from cgroups.commands.CLI_FLAGS when used
    "help": {},     # `help [COMMAND]`, runc's; also `h`
}
for _flags in COMMANDS.values():
    _flags.update(help=False, h="help")


class UsageError(OciError):
    pass


def parse_flags(args, spec, stop_at_positional=False):
    """(flags, positionals).  A flag after a positional is still a flag
    (runc users write `kill --all ID` and `delete ID --force` alike)."""
    opts, pos = {}, []
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--":
            pos.extend(args[i + 1:])
            break
        if a.startswith("-") and a != "-" and not (pos and stop_at_positional):
            name, eq, value = a.lstrip("-").partition("=")
            kind = spec.get(name)
            if isinstance(kind, str):
                name, kind = kind, spec[kind]
            if kind is None:
                raise UsageError(f"flag provided but not defined: -{name}")
            if kind:
                if not eq:
                    i += 1
                    if i == len(args):
                        raise UsageError(f"flag needs an argument: -{name}")
                    value = args[i]
                if kind is list:
                    opts.setdefault(name, []).append(value)
                else:
                    opts[name] = value
            else:
                opts[name] = value.lower() not in ("false", "0") if eq else True
        else:
            pos.append(a)
            if stop_at_positional:
                pos.extend(args[i + 1:])
                break
        i += 1
    return opts, pos


def _print_help(command):
    from ociruntime import help
    print(help.page(command), end="")
    sys.stdout.flush()


def _broken(fd):
    """Is fd (stdout, stderr) a pipe or socket whose reader has gone?"""
    import select
    p = select.poll()
    p.register(fd, 0)
    return any(ev & (select.POLLERR | select.POLLHUP) for _, ev in p.poll(0))


def _die_of_sigpipe():
    """Whoever read our output has gone (`ociruntime features | head -1`):
    die of SIGPIPE, silently, as runc and every Unix filter do (the shell
    sees 141).  Python ignores SIGPIPE and would raise on every write."""
    import os
    import signal
    fd = os.open(os.devnull, os.O_WRONLY)
    os.dup2(fd, 1)   # no flush at exit can fail now
    os.dup2(fd, 2)
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGPIPE)
    os._exit(141)   # SIGPIPE blocked: the shell's status all the same


def _one_id(pos, command, extra=0):
    if not pos or len(pos) > 1 + extra:
        want = "ID" if not extra else "ID and at most %d more argument(s)" % extra
        raise UsageError(f"{command}: expects {want}, got {len(pos)} argument(s)")
    return pos[0]


def _int_flag(opts, name):
    try:
        n = int(opts.get(name, 0))
        if n < 0:
            raise ValueError
        return n
    except ValueError:
        raise UsageError(f"--{name}: not a whole number: {opts[name]!r}") from None


def main(argv=None, started=(None, None)):
    """started: when the front end and the launcher started (CLOCK_MONOTONIC
    ns; None: unknown), where --debug's phase trace begins."""
    try:
        return _main(argv, started)
    except BrokenPipeError:   # writing the error to a closed stderr
        if _broken(2):
            _die_of_sigpipe()
        raise


def _main(argv, started):
    argv = sys.argv[1:] if argv is None else argv
    g = {}
    what = None
    try:
        g, rest = parse_flags(argv, GLOBAL, stop_at_positional=True)
        log.configure(g.get("log"), g.get("log-format", "text"), g.get("debug", False))
        log.start_trace(*started)
        if g.get("log-format", "text") not in ("text", "json"):
            raise UsageError(f"--log-format: {g['log-format']!r} is not text or json")
        if g.get("version"):
            print(f"ociruntime version {__version__}\nspec: {SPEC_VERSION}")
            sys.stdout.flush()
            return 0
        if g.get("help") or not rest:
            _print_help(None)
            return 0 if g.get("help") else 1
        command, args = rest[0], rest[1:]
        command = "help" if command == "h" else command
        spec = COMMANDS.get(command)
        if spec is None:
            raise UsageError(f"unknown command {command!r} (see ociruntime --help)")
        # exec: flags after the ID belong to the command (runc's SkipArgReorder)
        if command == "update":
            from ociruntime.cgroups.commands import CLI_FLAGS
            spec = dict(CLI_FLAGS, help=False, h="help")
        # exec and ps: flags after the ID belong to the command (or to ps)
        opts, pos = parse_flags(args, spec, stop_at_positional=command in ("exec", "ps"))
        if opts.get("help"):
            _print_help(command)
            return 0
        if g.get("systemd-cgroup") and command in ("create", "run", "restore"):
            from ociruntime.cgroups import systemd   # a clear error where it cannot work
            systemd.check_available()
            opts["systemd-cgroup"] = True
        if command in ("checkpoint", "restore"):
            opts["criu"] = g.get("criu") or "criu"
        rootless = _rootless(g, command)
        root = g.get("root") or _default_root(rootless)
        if rootless:
            opts["rootless"] = True
        if g.get("debug"):
            log.debug(f"{command}: root {root}, flags {opts}, arguments {pos}")
            what = f"{command} {pos[0]}" if pos else command
        code = globals()["cmd_" + command](root, opts, pos) or 0
        sys.stdout.flush()   # here, where a closed pipe is still ours to handle
        return code
    except OciError as e:
        log.error(str(e))
        return 1
    except KeyboardInterrupt:
        return 130
    except PermissionError as e:   # a caller who may not touch the state or a cgroup
        log.error(f"permission denied: {e.filename or e}: run as root or use --root")
        return 1
    except Exception as e:   # a bug of ours: still one line, details with --debug
        if isinstance(e, BrokenPipeError) and _broken(1):
            _die_of_sigpipe()
        if g.get("debug"):
            import traceback
            traceback.print_exc()
        log.error(f"internal error: {type(e).__name__}: {e}")
        return 1
    finally:
        if what:   # --debug: where the time went, phase by phase
            log.trace(what)


def _rootless(g, command):
    """Rootless mode (rootless.py) for the commands that touch containers;
    root in the host's user namespace without --rootless skips the import."""
    if command in ("spec", "features", "validate"):
        return False
    import os
    if g.get("rootless") is None and os.geteuid() == 0 and _host_root():
        return False
    from ociruntime import rootless
    return rootless.enabled(g.get("rootless"))


def _host_root():
    # The initial user namespace maps 0 to 0 (see rootless._maps_host_root).
    try:
        with open("/proc/self/uid_map", "rb") as f:
            return any(line.split()[:2] == [b"0", b"0"] for line in f)
    except OSError:
        return True


def _default_root(rootless):
    if not rootless:
        return "/run/ociruntime"
    from ociruntime import rootless as rl
    return rl.default_root()


# -- commands -----------------------------------------------------------------

def _imported(*modules):
    """The trace's "imports" phase: with --debug, the command's modules
    that are imported on first use are imported now, to count here."""
    if log._debug:
        for name in modules:
            __import__("ociruntime." + name)
        log.mark("imports")


def cmd_create(root, opts, pos):
    from ociruntime import container
    _imported("config", "validate", "core", "init")
    container.create(root, _one_id(pos, "create"), opts.get("bundle"), opts.get("pid-file"),
                     opts.get("console-socket"), opts.get("no-pivot", False),
                     _int_flag(opts, "preserve-fds"),
                     systemd_cgroup=opts.get("systemd-cgroup", False),
                     no_new_keyring=opts.get("no-new-keyring", False),
                     rootless=opts.get("rootless", False))


def cmd_run(root, opts, pos):
    from ociruntime import container
    _imported("config", "validate", "core", "init")
    return container.run(root, _one_id(pos, "run"), opts.get("bundle"), opts.get("pid-file"),
                         opts.get("console-socket"), opts.get("no-pivot", False),
                         _int_flag(opts, "preserve-fds"), opts.get("detach", False),
                         opts.get("keep", False), opts.get("no-subreaper", False),
                         systemd_cgroup=opts.get("systemd-cgroup", False),
                         no_new_keyring=opts.get("no-new-keyring", False),
                         rootless=opts.get("rootless", False))


def cmd_start(root, opts, pos):
    from ociruntime import container
    container.start(root, _one_id(pos, "start"))


def cmd_state(root, opts, pos):
    from ociruntime.jsonlite import dumps_pretty   # json.dumps(indent=2), without `re`
    from ociruntime.state import Container
    print(dumps_pretty(Container.load(root, _one_id(pos, "state")).oci_state()))


def cmd_kill(root, opts, pos):
    from ociruntime import container
    cid = _one_id(pos, "kill", extra=1)
    sig = container.parse_signal(pos[1]) if len(pos) > 1 else 15
    container.kill(root, cid, sig, opts.get("all", False))


def cmd_delete(root, opts, pos):
    from ociruntime import container
    container.delete(root, _one_id(pos, "delete"), opts.get("force", False))


def cmd_list(root, opts, pos):
    # Each container's record is read and parsed once, and each owner's
    # name looked up once: list's cost per container is its state file,
    # its init's /proc/PID/stat, its freezer state and a stat.
    from ociruntime.jsonlite import dumps
    from ociruntime.state import Container
    fmt = opts.get("format", "table")
    if fmt not in ("table", "json"):
        raise UsageError(f"--format: {fmt!r} is not table or json")
    states = []
    for cid in Container.ids(root):
        try:
            states.append(Container.load(root, cid).oci_state())
        except OciError:
            continue   # deleted meanwhile, or corrupt: `state ID` says which
    if opts.get("quiet"):
        print("".join(s["id"] + "\n" for s in states), end="")
    elif fmt == "json":
        print(dumps(states))   # compact, as runc's
    else:
        names = {}
        rows = [("ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER")]
        rows += [(s["id"], str(s["pid"]), s["status"], s["bundle"], s["created"], _owner(root, s["id"], names))
                 for s in states]
        widths = [max(len(r[i]) for r in rows) for i in range(6)]
        for r in rows:
            print("   ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip())


def _owner(root, cid, names):
    """The user who owns the container's state, as runc's list shows it;
    names caches uid -> name (getpwuid reads /etc/passwd on every call)."""
    import os
    try:
        uid = os.stat(os.path.join(root, cid)).st_uid
    except OSError:
        return "?"
    if uid not in names:
        import pwd
        try:
            names[uid] = pwd.getpwuid(uid).pw_name
        except KeyError:
            names[uid] = f"#{uid}"
    return names[uid]


def cmd_spec(root, opts, pos):
    from ociruntime import spec
    spec.write_spec(opts.get("bundle") or ".", rootless=opts.get("rootless", False))


def cmd_validate(root, opts, pos):
    """Every check create makes (checks.py), every failure on a line of
    its own: the file, the JSON path, what is wrong, the spec section."""
    import os
    from ociruntime import config
    from ociruntime.checks import config_problems
    bundle = opts.get("bundle") or "."
    path = os.path.join(bundle, "config.json")
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise OciError(f"{path}: {e.strerror.lower()}") from None
    problems = config_problems(config.parse(raw, path, validate=False), bundle, path)
    for p in problems:
        log.error(f"{path}: {p}")
    if problems:
        return 1
    print(f"{path}: valid")


def cmd_help(root, opts, pos):
    if len(pos) > 1:
        raise UsageError(f"help: expects at most one COMMAND, got {len(pos)} arguments")
    command = "help" if pos[:1] == ["h"] else (pos[0] if pos else None)
    if command is not None and command not in COMMANDS:
        raise UsageError(f"help: unknown command {command!r} (see ociruntime --help)")
    _print_help(command)


def cmd_features(root, opts, pos):
    if pos:
        raise UsageError(f"features: takes no arguments, got {len(pos)}")
    from ociruntime import features
    features.main()


def cmd_exec(root, opts, pos):
    from ociruntime import execute
    _imported()
    if not pos:
        raise UsageError("exec: expects ID [COMMAND [ARG...]], got no ID")
    eopts = execute.ExecOptions(
        process=opts.get("process"), args=pos[1:], tty=opts.get("tty"), cwd=opts.get("cwd"),
        env=opts.get("env", []), user=opts.get("user"),
        additional_gids=opts.get("additional-gids", []), caps=opts.get("cap", []),
        no_new_privs=opts.get("no-new-privs"), apparmor=opts.get("apparmor"),
        process_label=opts.get("process-label"), detach=opts.get("detach", False),
        pid_file=opts.get("pid-file"), console_socket=opts.get("console-socket"),
        preserve_fds=_int_flag(opts, "preserve-fds"),
        ignore_paused=opts.get("ignore-paused", False), cgroup=opts.get("cgroup", []))
    try:
        return execute.exec_process(root, pos[0], eopts)
    except OciError as e:   # runc: "exec failed: ...", status 255
        log.error(f"exec failed: {e}")
        return 255


def cmd_pause(root, opts, pos):
    from ociruntime.cgroups import commands
    commands.pause(root, _one_id(pos, "pause"))


def cmd_resume(root, opts, pos):
    from ociruntime.cgroups import commands
    commands.resume(root, _one_id(pos, "resume"))


def cmd_ps(root, opts, pos):
    from ociruntime.cgroups import commands
    if not pos:
        raise UsageError("ps: expects ID [PS-ARGS...], got no ID")
    return commands.ps(root, pos[0], opts.get("format", "table"), pos[1:])


def cmd_events(root, opts, pos):
    from ociruntime.cgroups import commands
    interval = commands.parse_duration(opts.get("interval", "5s"))
    return commands.events(root, _one_id(pos, "events"), opts.get("stats", False), interval)


def cmd_update(root, opts, pos):
    from ociruntime.cgroups import commands
    cid = _one_id(pos, "update")
    commands.update(root, cid, commands.resources_from_flags(opts))


def cmd_checkpoint(root, opts, pos):
    from ociruntime import checkpoint
    _no_rootless(opts, "checkpoint")
    checkpoint.checkpoint(root, _one_id(pos, "checkpoint"), opts, opts["criu"])


def cmd_restore(root, opts, pos):
    from ociruntime import checkpoint
    _no_rootless(opts, "restore")
    return checkpoint.restore(root, _one_id(pos, "restore"), opts.get("bundle"), opts,
                              opts["criu"], systemd_cgroup=opts.get("systemd-cgroup", False))


def _no_rootless(opts, command):
    # criu needs CAP_SYS_ADMIN and CAP_CHECKPOINT_RESTORE of the host (runc refuses too)
    if opts.get("rootless"):
        raise OciError(f"{command}: not supported in rootless mode (criu needs root)")
