"""Where errors and warnings go: stderr, and --log in runc's formats.

JSON lines are {"level","msg","time"} as containerd reads them; by default
only warnings and errors are written (podman reads the file as one JSON
object when a command fails).  `json` is imported only to write a line:
it costs more than a whole `state` command."""
import sys
import time

_path = None
_format = "text"
_debug = False


def configure(path=None, fmt="text", debug=False):
    """Like runc, a --log that cannot be opened fails the command at once
    (rather than losing every message it was meant to keep)."""
    global _path, _format, _debug
    _path, _format, _debug = None, fmt, debug
    if path:
        try:
            with open(path, "a"):
                pass
        except OSError as e:
            from ociruntime.errors import OciError
            raise OciError(f"--log: open {path}: {e.strerror.lower()}") from None
    _path = path


def _now():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _write(level, msg):
    if not _path:
        return
    import json
    if _format == "json":
        line = json.dumps({"level": level, "msg": msg, "time": _now()})
    else:
        line = f'time="{_now()}" level={level} msg={json.dumps(msg)}'
    try:
        with open(_path, "a") as f:
            f.write(line + "\n")
    except OSError as e:
        print(f"ociruntime: cannot write log {_path}: {e.strerror}", file=sys.stderr)


def error(msg):
    _write("error", msg)
    print(f"ociruntime: {msg}", file=sys.stderr)


def warning(msg):
    _write("warning", msg)
    if not _path:
        print(f"ociruntime: warning: {msg}", file=sys.stderr)


def debug(msg):
    if _debug:
        _write("debug", msg)
        if not _path:
            print(f"ociruntime: debug: {msg}", file=sys.stderr)


def debug_plan(what, plan):
    """With --debug: every step the C core is about to carry out."""
    if _debug:
        debug(f"{what}: plan of {len(plan.steps)} steps")
        for i, (name, args) in enumerate(plan.steps):
            debug(f"{what}: step {i}: {name} " + " ".join(
                a.decode(errors="replace") if isinstance(a, bytes) else str(a) for a in args))
