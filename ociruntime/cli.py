"""Command line, runc-compatible: `ociruntime [global flags] COMMAND [flags] ARGS`.

Flags take `--name value`, `--name=value` and Go's single-dash `-name`.
Each command imports only what it needs: every call pays start-up.
"""
import sys

from ociruntime import SPEC_VERSION, __version__, log
from ociruntime.errors import OciError

USAGE = """usage: ociruntime [global flags] COMMAND [flags] ARGS

An OCI container runtime (runtime-spec %s).

commands:
  create [-b BUNDLE] [--pid-file F] [--console-socket S] [--no-pivot]
         [--preserve-fds N] ID      create a container, waiting for start
  start ID                          run the process of a created container
  run [-b BUNDLE] [-d] [--pid-file F] [--keep] [--no-subreaper] ID
                                    create and start; in the foreground,
                                    wait and exit with the container's code
  state ID                          print the container's state (JSON)
  kill [--all] ID [SIGNAL]          send a signal (default SIGTERM)
  delete [-f] ID                    delete a stopped (-f: any) container
  list [--format table|json] [-q]   list containers
  spec [-b BUNDLE] [--rootless]     write a default config.json
  validate [-b BUNDLE]              check config.json with jsonschema

global flags:
  --root DIR        state directory (default /run/ociruntime)
  --log FILE        also write errors to FILE
  --log-format F    text or json
  --debug           log debug messages
  --systemd-cgroup  use systemd for cgroups (not supported yet)
  --version         print the version
""" % SPEC_VERSION

# flag name -> True (takes a value), False (boolean), or a str (an alias)
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
    "spec": {"bundle": True, "b": "bundle", "rootless": False},
    "validate": {"bundle": True, "b": "bundle"},
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


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    g = {}
    try:
        g, rest = parse_flags(argv, GLOBAL, stop_at_positional=True)
        log.configure(g.get("log"), g.get("log-format", "text"), g.get("debug", False))
        if g.get("log-format", "text") not in ("text", "json"):
            raise UsageError(f"--log-format: {g['log-format']!r} is not text or json")
        if g.get("version"):
            print(f"ociruntime version {__version__}\nspec: {SPEC_VERSION}")
            return 0
        if g.get("help") or not rest:
            print(USAGE, end="")
            return 0 if g.get("help") else 1
        command, args = rest[0], rest[1:]
        spec = COMMANDS.get(command)
        if spec is None:
            raise UsageError(f"unknown command {command!r} (see ociruntime --help)")
        opts, pos = parse_flags(args, spec)
        if opts.get("help"):
            print(USAGE, end="")
            return 0
        if g.get("systemd-cgroup"):
            raise OciError("--systemd-cgroup: systemd cgroup management is not supported yet; "
                           "use the default cgroupfs manager")
        root = g.get("root") or "/run/ociruntime"
        return globals()["cmd_" + command](root, opts, pos) or 0
    except OciError as e:
        log.error(str(e))
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as e:   # a bug of ours: still one line, details with --debug
        if g.get("debug"):
            import traceback
            traceback.print_exc()
        log.error(f"internal error: {type(e).__name__}: {e}")
        return 1


# -- commands -----------------------------------------------------------------

def cmd_create(root, opts, pos):
    from ociruntime import container
    container.create(root, _one_id(pos, "create"), opts.get("bundle"), opts.get("pid-file"),
                     opts.get("console-socket"), opts.get("no-pivot", False),
                     _int_flag(opts, "preserve-fds"))


def cmd_run(root, opts, pos):
    from ociruntime import container
    return container.run(root, _one_id(pos, "run"), opts.get("bundle"), opts.get("pid-file"),
                         opts.get("console-socket"), opts.get("no-pivot", False),
                         _int_flag(opts, "preserve-fds"), opts.get("detach", False),
                         opts.get("keep", False), opts.get("no-subreaper", False))


def cmd_start(root, opts, pos):
    from ociruntime import container
    container.start(root, _one_id(pos, "start"))


def cmd_state(root, opts, pos):
    import json
    from ociruntime.state import Container
    print(json.dumps(Container.load(root, _one_id(pos, "state")).oci_state(), indent=2))


def cmd_kill(root, opts, pos):
    from ociruntime import container
    cid = _one_id(pos, "kill", extra=1)
    sig = container.parse_signal(pos[1]) if len(pos) > 1 else 15
    container.kill(root, cid, sig, opts.get("all", False))


def cmd_delete(root, opts, pos):
    from ociruntime import container
    container.delete(root, _one_id(pos, "delete"), opts.get("force", False))


def cmd_list(root, opts, pos):
    import json
    from ociruntime.state import Container
    states = []
    for cid in Container.ids(root):
        try:
            states.append(Container.load(root, cid).oci_state())
        except OciError:
            continue   # being deleted, or corrupt: `state ID` says which
    fmt = opts.get("format", "table")
    if opts.get("quiet"):
        print("".join(s["id"] + "\n" for s in states), end="")
    elif fmt == "json":
        print(json.dumps(states))
    elif fmt == "table":
        rows = [("ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER")]
        rows += [(s["id"], str(s["pid"]), s["status"], s["bundle"], s["created"], "root") for s in states]
        widths = [max(len(r[i]) for r in rows) for i in range(6)]
        for r in rows:
            print("   ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip())
    else:
        raise UsageError(f"--format: {fmt!r} is not table or json")


def cmd_spec(root, opts, pos):
    from ociruntime import spec
    spec.write_spec(opts.get("bundle") or ".", rootless=opts.get("rootless", False))


def cmd_validate(root, opts, pos):
    import os
    from ociruntime import config
    from ociruntime.validate import validate_config_reference
    path = os.path.join(opts.get("bundle") or ".", "config.json")
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise OciError(f"{path}: {e.strerror.lower()}") from None
    validate_config_reference(config.parse(raw, path, validate=False), path)
    print(f"{path}: valid")
