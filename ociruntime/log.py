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
_marks = []   # with --debug: (phase, CLOCK_MONOTONIC ns when it ended)


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


# -- the phase trace of --debug ---------------------------------------------
# Each phase is the time from the previous mark to its own, on the host's
# CLOCK_MONOTONIC (time.monotonic_ns), which the front end and the init
# (csrc/frontend.c, spawn.c, plan.c) read too: the trace spans every
# process of the command.  Off without --debug: mark() returns at once.

def start_trace(t_front=None, t_launch=None):
    """The trace's start: the front end's start (its OCIRUNTIME_T0), the
    launcher's first line; interpreter start-up is the time between."""
    if not _debug:
        return
    t_launch = t_launch or time.monotonic_ns()
    _marks[:] = [("", t_front), ("interpreter start", t_launch)] if t_front else [("", t_launch)]
    if _path:   # what --debug itself costs, apart: the log's lines are JSON
        import json  # noqa: F401
        mark("--debug: import json for the log")


def mark(phase, at=None):
    """The phase `phase` ended now, or at `at` (ns, CLOCK_MONOTONIC; never
    before the last mark: processes overlap, and a container's time
    namespace could shift the init's clock)."""
    if _debug:
        now = time.monotonic_ns() if at is None else at
        _marks.append((phase, max(now, _marks[-1][1]) if _marks else now))


def mark_times(phases, text):
    """The phases that ended at the times in text ("ns ns ..."): the
    report of ociruntime-init (spawn.c)."""
    if not _debug:
        return
    try:
        times = [int(t) for t in text.split()]
    except ValueError:
        return
    for phase, at in zip(phases, times):
        mark(phase, at)


def _phase_totals(text):
    out = {}
    for word in text.split():
        name, _, ns = word.partition("=")
        if ns.isdigit():
            out[name] = int(ns)
    return out


def mark_init(text, end, rest, since=""):
    """The init's own phases up to its message at `end`: its text gives
    when it started and each phase's total so far ("started=ns name=ns
    ...", plan.c: send_phases), less those of the message `since`.  They
    are laid out to end at `end`, after `rest`: what they leave of the
    time since the last mark (waking up, other steps).  Without `since`:
    the time to its start is the clone's."""
    if not _debug or not _marks:
        return
    before = _phase_totals(since)
    totals = _phase_totals(text)
    started = totals.pop("started", None)
    if not since and started:
        mark("init: clone", started)
    parts = [(name, ns - before.get(name, 0)) for name, ns in totals.items()
             if ns > before.get(name, 0)]
    start = end - sum(ns for _, ns in parts)
    if len(_marks) > 1 and start < _marks[-1][1]:
        # Our last mark came late: we were kept off the CPU after our
        # message, the init was not.  Its own clock is the better one.
        name, _ = _marks[-1]
        _marks[-1] = (name, max(start, _marks[-2][1]))
    mark(rest, start)
    at = _marks[-1][1]
    for name, ns in parts:
        at += ns
        mark("init: " + name, at)


def trace(what):
    """Log each phase's duration and the total (debug lines)."""
    if not _debug or not _marks:
        return
    mark("rest of the command")
    for (_, t0), (phase, t1) in zip(_marks, _marks[1:]):
        debug(f"{what}: phase {phase}: {(t1 - t0) / 1e6:.2f} ms")
    debug(f"{what}: {(_marks[-1][1] - _marks[0][1]) / 1e6:.2f} ms in all, {len(_marks) - 1} phases")
    _marks.clear()
