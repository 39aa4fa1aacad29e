"""The user's documentation of the command line: one table, three renderings.

`ociruntime --help`, `ociruntime CMD --help` and `ociruntime help CMD` print
a page from TABLE; setup.py renders the same table into the man pages
ociruntime(8) and ociruntime-CMD(8) and the bash completion, so the
three cannot drift.  tests/test_help.py checks that every flag the parser
(cli.py's tables) accepts is here and that nothing here is unknown to it.

Imported only for help, man pages and completion: never on the hot path.
"""
from ociruntime import SPEC_VERSION, __version__

# A flag: (names, metavar or None for a boolean, what it does, default or
# None).  names[0] is the long name; the others are its aliases.
# A command: summary (one line), usage lines, description, flags, examples.

_BUNDLE = (("bundle", "b"), "DIR", "the bundle: the directory holding config.json and "
           "(unless root.path says otherwise) the root filesystem", "the current directory")
_PID_FILE = (("pid-file",), "FILE", "write the process's host pid to FILE (atomically) once it "
             "is set up", None)
_CONSOLE = (("console-socket",), "SOCKET", "with process.terminal: the path of a unix socket "
            "that receives the pseudoterminal's master (SCM_RIGHTS)", None)
_PRESERVE = (("preserve-fds",), "N", "pass N more open file descriptors, 3 to 3+N-1 (after "
             "$LISTEN_FDS ones when $LISTEN_PID is ours); no other descriptor of the runtime "
             "reaches the container", "0")
_NO_PIVOT = (("no-pivot",), None, "do not use pivot_root to jail the process inside the "
             "rootfs (move the rootfs onto / and chroot): for a rootfs on a ramdisk, "
             "where pivot_root fails", None)
_NO_KEYRING = (("no-new-keyring",), None, "keep the caller's session keyring instead of "
               "giving the container one of its own (_ses.ID)", None)
_HELP = (("help", "h"), None, "show this help", None)
_FORMAT = (("format", "f"), "FORMAT", "table or json", "table")

GLOBAL_FLAGS = [
    (("root",), "DIR", "the directory for the containers' state (best on a tmpfs); "
     "rootless, $XDG_RUNTIME_DIR/ociruntime, else /tmp/ociruntime-UID", "/run/ociruntime"),
    (("log",), "FILE", "also write errors and warnings (and, with --debug, debug "
     "messages) to FILE", "stderr only"),
    (("log-format",), "FORMAT", "the --log file's format: text or json (one "
     '{"level","msg","time"} object a line, as runc writes)', "text"),
    (("debug",), None, "log debug messages: the command, its flags, every step of "
     "the plan the C core carries out, and (create, run, exec) the time each phase took", None),
    (("systemd-cgroup",), None, "manage cgroups through systemd (a transient scope unit); "
     'linux.cgroupsPath is then "slice:prefix:name", e.g. "system.slice:ociruntime:1234"; '
     "refused where systemd does not run", None),
    (("rootless",), "VALUE", "true, false or auto: run as an ordinary user, in a user "
     "namespace, with cgroups only where they are delegated; auto means when not root, or "
     "in a user namespace that does not map the host's root", "auto"),
    (("criu",), "PATH", "the criu program that checkpoint and restore run (looked up in "
     "$PATH, then /usr/local/sbin, /usr/sbin and /sbin)", "criu"),
    (("version", "v"), None, "print the version and the runtime-spec version", None),
    _HELP,
]

TABLE = {
    "create": {
        "summary": "create a container, its process waiting for start",
        "usage": ["create [flags] ID"],
        "description": "Creates the container ID from a bundle: reads and validates "
        "config.json, makes the namespaces, cgroups and mounts, and runs the createRuntime "
        "and createContainer hooks.  The container's process then waits, in the created "
        "state, until `ociruntime start ID` runs it.  ID must be unique under --root.",
        "flags": [_BUNDLE, _CONSOLE, _PID_FILE, _NO_PIVOT, _NO_KEYRING, _PRESERVE, _HELP],
        "examples": ["ociruntime create -b /path/to/bundle --pid-file /run/c1.pid c1",
                     "ociruntime start c1"],
    },
    "start": {
        "summary": "run the process of a created container",
        "usage": ["start ID"],
        "description": "Runs the user's process of the created container ID (process.args "
        "of its config.json), then the poststart hooks.",
        "flags": [_HELP],
        "examples": ["ociruntime start c1"],
    },
    "run": {
        "summary": "create and start a container",
        "usage": ["run [flags] ID"],
        "description": "Creates the container ID from a bundle and starts it.  In the "
        "foreground (without --detach) it waits for the container's process, forwards "
        "signals to it, exits with its exit code, and deletes the container (unless "
        "--keep).  With process.terminal, a foreground run proxies the pseudoterminal to "
        "its own stdio; a detached one needs --console-socket.",
        "flags": [_BUNDLE, _CONSOLE, (("detach", "d"), None, "return once the container's "
                  "process runs (leaving it running)", None),
                  (("keep",), None, "do not delete the container after it exits", None),
                  _PID_FILE, (("no-subreaper",), None, "do not make the runtime a subreaper "
                  "(which reaps the processes orphaned below it)", None),
                  _NO_PIVOT, _NO_KEYRING, _PRESERVE, _HELP],
        "examples": ["ociruntime run -b /path/to/bundle c1",
                     "ociruntime run -d --console-socket /run/c1.sock -b /path/to/bundle c1"],
    },
    "exec": {
        "summary": "run a new process inside a running container",
        "usage": ["exec [flags] ID COMMAND [ARG...]", "exec [flags] -p process.json ID"],
        "description": "Runs COMMAND in the container ID, with the container's own process "
        "settings (user, env, capabilities...) changed by the flags; or runs the process "
        "described by --process, a JSON file holding a whole `process` object as in "
        "config.json (the other process flags are then ignored).  In the foreground it "
        "exits with the process's exit code (255 when the process could not be started); "
        "flags after ID belong to COMMAND.",
        "flags": [
            (("process", "p"), "FILE", "the process to run (process.json), instead of "
             "COMMAND", None),
            (("tty", "t"), None, "give the process a pseudoterminal", None),
            (("cwd",), "DIR", "the working directory in the container (absolute)",
             "the container's process.cwd"),
            (("env", "e"), "KEY=VALUE", "set an environment variable (repeatable)", None),
            (("user", "u"), "UID[:GID]", "run as this numeric user (and group)",
             "the container's process.user"),
            (("additional-gids", "g"), "GID", "an additional group id (repeatable)", None),
            (("cap", "c"), "CAP", "add a capability (e.g. CAP_NET_ADMIN) to the process's "
             "bounding, effective, permitted and ambient sets (repeatable)", None),
            (("no-new-privs",), None, "set no_new_privs for the process", None),
            (("apparmor",), "PROFILE", "the AppArmor profile of the process (refused where "
             "AppArmor is not enabled)", None),
            (("process-label",), "LABEL", "the SELinux label of the process (refused where "
             "SELinux is not enabled)", None),
            (("detach", "d"), None, "return once the process runs (do not wait for it)",
             None),
            (("pid-file",), "FILE", "write the process's host pid to FILE once it has "
             "exec'd", None),
            _CONSOLE, _PRESERVE,
            (("ignore-paused",), None, "exec even into a paused container", None),
            (("cgroup",), "[CONTROLLER[,CONTROLLER]:]PATH", "run the process in an existing "
             "sub-cgroup of the container's (repeatable)", None),
            (("no-subreaper",), None, "accepted for compatibility (exec reaps its own "
             "process)", None),
            _HELP],
        "examples": ["ociruntime exec c1 ps", "ociruntime exec -t c1 /bin/sh",
                     "ociruntime exec -u 1000:1000 -e LANG=C --cwd /tmp c1 id",
                     "ociruntime exec -d --pid-file /run/p.pid -p process.json c1"],
    },
    "state": {
        "summary": "print the state of a container (JSON)",
        "usage": ["state ID"],
        "description": "Prints the OCI state of the container ID as JSON: ociVersion, id, "
        "status (creating, created, running, paused, stopped), pid, bundle, annotations "
        "and, like runc, its rootfs, creation time and owner.",
        "flags": [_HELP],
        "examples": ["ociruntime state c1"],
    },
    "kill": {
        "summary": "send a signal to a container's process",
        "usage": ["kill [flags] ID [SIGNAL]"],
        "description": "Sends SIGNAL (a name like KILL or SIGKILL, or a number) to the "
        "container's init process, or with --all to every process of the container.",
        "flags": [(("all", "a"), None, "signal every process of the container, not only "
                   "its init", None), _HELP],
        "examples": ["ociruntime kill c1", "ociruntime kill c1 KILL",
                     "ociruntime kill --all c1 9"],
        "default_note": "SIGNAL defaults to SIGTERM.",
    },
    "delete": {
        "summary": "delete a container and what it holds",
        "usage": ["delete [flags] ID"],
        "description": "Deletes the container ID: its state, its cgroups, and (for a "
        "created container) its waiting process; runs the poststop hooks.  A running or "
        "paused container is refused unless --force, which kills it first.",
        "flags": [(("force", "f"), None, "kill a running or paused container (SIGKILL) "
                   "and delete it", None), _HELP],
        "examples": ["ociruntime delete c1", "ociruntime delete --force c1"],
    },
    "list": {
        "summary": "list the containers under --root",
        "usage": ["list [flags]"],
        "description": "Lists the containers under --root with their pid, status, bundle "
        "and creation time.",
        "flags": [_FORMAT, (("quiet", "q"), None, "print only the containers' ids", None),
                  _HELP],
        "examples": ["ociruntime list", "ociruntime --root /run/other list -q",
                     "ociruntime list --format json"],
    },
    "pause": {
        "summary": "freeze every process of a container",
        "usage": ["pause ID"],
        "description": "Freezes every process of the running container ID with the cgroup "
        "freezer.",
        "flags": [_HELP],
        "examples": ["ociruntime pause c1"],
    },
    "resume": {
        "summary": "thaw a paused container",
        "usage": ["resume ID"],
        "description": "Thaws every process of the paused container ID.",
        "flags": [_HELP],
        "examples": ["ociruntime resume c1"],
    },
    "ps": {
        "summary": "list the processes of a container",
        "usage": ["ps [flags] ID [PS-ARGS...]"],
        "description": "Runs ps(1) with PS-ARGS (default -ef) and prints the lines of the "
        "container's processes; --format json prints their host pids instead.",
        "flags": [_FORMAT, _HELP],
        "examples": ["ociruntime ps c1", "ociruntime ps c1 -o pid,comm",
                     "ociruntime ps --format json c1"],
    },
    "events": {
        "summary": "print a container's statistics and OOM events",
        "usage": ["events [flags] ID"],
        "description": "Prints the container's resource statistics (cpu, memory, pids, "
        "I/O...) as one JSON object a line every --interval, and OOM events as they "
        "happen, until the container stops; --stats prints the statistics once.",
        "flags": [(("stats",), None, "print the statistics once and exit", None),
                  (("interval",), "DURATION", "the time between statistics (Go's "
                   "durations: 500ms, 5s, 1m)", "5s"), _HELP],
        "examples": ["ociruntime events --stats c1", "ociruntime events --interval 1s c1"],
    },
    "update": {
        "summary": "change the resource limits of a running container",
        "usage": ["update [flags] ID"],
        "description": "Changes the cgroup limits of the container ID.  --resources reads a "
        "LinuxResources JSON object (as linux.resources of config.json: memory, cpu, "
        "pids, blockIO...) from FILE, or from stdin with -; the other flags then override "
        "its values.  Sizes take units: 512k, 64m, 1g; -1 is unlimited.",
        "flags": [
            (("resources", "r"), "FILE", "a LinuxResources JSON file, - for stdin", None),
            (("memory",), "BYTES", "memory limit", None),
            (("memory-swap",), "BYTES", "memory plus swap limit; -1 for unlimited swap",
             None),
            (("memory-reservation",), "BYTES", "memory soft limit", None),
            (("kernel-memory",), "BYTES", "kernel memory limit (cgroup v1; deprecated by "
             "the kernel)", None),
            (("kernel-memory-tcp",), "BYTES", "kernel TCP buffer memory limit (cgroup v1)",
             None),
            (("cpu-shares", "cpu-share"), "N", "CPU shares: the weight against other "
             "cgroups", None),
            (("cpu-quota",), "USECS", "CPU time allowed in each --cpu-period (CFS); -1 for "
             "no limit", None),
            (("cpu-period",), "USECS", "the CFS period of --cpu-quota", None),
            (("cpu-burst",), "USECS", "CPU time a period may borrow from idle ones", None),
            (("cpu-rt-period",), "USECS", "the realtime scheduling period", None),
            (("cpu-rt-runtime",), "USECS", "realtime CPU time allowed in each "
             "--cpu-rt-period", None),
            (("cpu-idle",), "0|1", "1: the cgroup gets SCHED_IDLE priority (cgroup v2)",
             None),
            (("cpuset-cpus",), "LIST", "the CPUs to use, e.g. 0-3,6", None),
            (("cpuset-mems",), "LIST", "the memory nodes to use, e.g. 0,1", None),
            (("pids-limit",), "N", "the most processes the container may hold; -1 for no "
             "limit", None),
            (("blkio-weight",), "N", "block I/O weight, 10 to 1000", None),
            _HELP],
        "examples": ["ociruntime update --memory 256m --pids-limit 100 c1",
                     "echo '{\"cpu\": {\"quota\": 50000}}' | ociruntime update -r - c1"],
    },
    "checkpoint": {
        "summary": "checkpoint a running container (criu)",
        "usage": ["checkpoint [flags] ID"],
        "description": "Saves the running container ID's processes (memory, files, "
        "namespaces, tmpfs contents) into --image-path with criu (3.17 or later), as runc "
        "does.  Without --leave-running or --pre-dump the container is stopped and deleted "
        "afterwards, so that `restore` can bring it back under the same ID.  Its stdin, "
        "stdout and stderr must be pipes (or files of the container), as with runc: criu "
        "cannot dump a host file such as /dev/null outside the container.  Where criu "
        "does not work, it fails with criu's own reason, the container left running.",
        "flags": [
            (("image-path",), "DIR", "where criu writes the image (made if missing)",
             "./checkpoint"),
            (("work-path",), "DIR", "where criu writes its log (dump.log) and work files",
             "the image path"),
            (("parent-path",), "DIR", "the image of an earlier --pre-dump (relative to "
             "--image-path, or absolute): only the memory changed since is written", None),
            (("leave-running",), None, "leave the container running after the checkpoint",
             None),
            (("tcp-established",), None, "allow open TCP connections (criu's "
             "--tcp-established)", None),
            (("ext-unix-sk",), None, "allow unix sockets connected to the outside", None),
            (("shell-job",), None, "allow a process started from a shell's terminal "
             "(a tty of the caller's session)", None),
            (("lazy-pages",), None, "leave the memory behind for a restore that fetches it "
             "on demand (userfaultfd); criu keeps serving the pages until then", None),
            (("file-locks",), None, "allow file locks (flock, POSIX locks)", None),
            (("pre-dump",), None, "dump only the memory, leaving the container running; a "
             "later checkpoint with --parent-path writes only what changed", None),
            (("manage-cgroups-mode",), "MODE", "criu's cgroup handling: soft, full, strict "
             "or ignore", "criu's: soft"),
            (("empty-ns",), "NS", "a namespace to checkpoint without its contents (only "
             "network, which is always empty: the runtime does not manage its devices); "
             "may be repeated", None),
            (("auto-dedup",), None, "free the memory pages of a --parent-path image that "
             "this image replaces", None),
            (("page-server",), "ADDRESS:PORT", "send the memory pages to a criu page server "
             "there (criu page-server) instead of --image-path; with --lazy-pages, serve "
             "them there until the restore has fetched them", None),
            (("status-fd",), "FD", "with --lazy-pages: criu writes a byte to this open fd "
             "once its page server is ready for the restore", None),
            _HELP],
        "examples": ["ociruntime checkpoint --image-path /var/lib/ckpt/c1 c1",
                     "ociruntime checkpoint --pre-dump --image-path /ck/1 c1",
                     "ociruntime checkpoint --parent-path ../1 --image-path /ck/2 c1"],
    },
    "restore": {
        "summary": "restore a container from a checkpoint (criu)",
        "usage": ["restore [flags] ID"],
        "description": "Creates the container ID from a bundle (its config.json: cgroups, "
        "bind mount sources) and restores into it the processes that `checkpoint` saved in "
        "--image-path, which continue where they were.  Their stdin, stdout and stderr "
        "that were pipes become restore's own.  Without --detach it waits for the "
        "container's process, forwards signals to it, exits with its exit code and "
        "deletes the container, as `run` does.  ID may differ from the checkpointed "
        "container's.",
        "flags": [
            _BUNDLE,
            (("image-path",), "DIR", "the checkpoint to restore", "./checkpoint"),
            (("work-path",), "DIR", "where criu writes its log (restore.log) and work files",
             "the image path"),
            (("detach", "d"), None, "return once the container runs", None),
            _PID_FILE,
            (("console-socket",), "SOCKET", "accepted as runc's; a container with "
             "process.terminal cannot be restored yet (refused)", None),
            (("no-subreaper",), None, "without --detach: do not make the runtime a child "
             "subreaper", None),
            (("no-pivot",), None, "accepted as runc's: criu sets up the restored root "
             "itself", None),
            (("lsm-profile",), "TYPE:NAME", "the LSM profile of the restored processes "
             "(apparmor:NAME or selinux:LABEL); refused where that LSM is not enabled", None),
            (("lsm-mount-context",), "CONTEXT", "the SELinux context of the restored mounts; "
             "refused where SELinux is not enabled", None),
            (("tcp-established",), None, "restore open TCP connections", None),
            (("ext-unix-sk",), None, "allow unix sockets connected to the outside", None),
            (("shell-job",), None, "allow a process of a shell's terminal", None),
            (("file-locks",), None, "restore file locks", None),
            (("lazy-pages",), None, "fetch the memory on demand from a --lazy-pages "
             "checkpoint (userfaultfd)", None),
            (("manage-cgroups-mode",), "MODE", "criu's cgroup handling: soft, full, strict "
             "or ignore", "criu's: soft"),
            (("empty-ns",), "NS", "a namespace to restore empty (only network, which is "
             "always empty)", None),
            (("auto-dedup",), None, "free the image's memory pages as they are restored",
             None),
            _HELP],
        "examples": ["ociruntime restore -d -b /path/to/bundle --image-path /var/lib/ckpt/c1 c1",
                     "ociruntime restore --image-path /ck/2 -b bundle c2"],
    },
    "features": {
        "summary": "print what this runtime implements (JSON)",
        "usage": ["features"],
        "description": "Prints the runtime's features as JSON (runtime-spec's "
        "features.md): the runtime-spec versions, hooks, mount options, namespaces, "
        "capabilities, cgroup managers, seccomp actions and architectures, and more.",
        "flags": [_HELP],
        "examples": ["ociruntime features"],
    },
    "spec": {
        "summary": "write a default config.json",
        "usage": ["spec [flags]"],
        "description": "Writes runc's example config.json into the bundle: a shell (sh) in "
        "a read-only rootfs directory named rootfs, with a terminal.  It refuses to "
        "overwrite an existing config.json.",
        "flags": [_BUNDLE, (("rootless",), None, "a config for a container made by a "
                  "non-root user (a user namespace mapping the caller)", None), _HELP],
        "examples": ["mkdir -p bundle/rootfs && ociruntime spec -b bundle"],
    },
    "validate": {
        "summary": "check a bundle's config.json against the schema",
        "usage": ["validate [flags]"],
        "description": "Checks config.json against the runtime-spec's JSON Schema with "
        "jsonschema, and prints the first error, naming the field.",
        "flags": [_BUNDLE, _HELP],
        "examples": ["ociruntime validate -b /path/to/bundle"],
    },
    "help": {
        "summary": "show the list of commands, or the help of one command",
        "usage": ["help [COMMAND]"],
        "description": "Prints the page of COMMAND (as `ociruntime COMMAND --help` does), "
        "or without COMMAND the list of commands and global flags.",
        "flags": [_HELP],
        "examples": ["ociruntime help exec"],
    },
}
ALIASES = {"h": "help"}

_INTRO = ("ociruntime is an OCI container runtime (runtime-spec %s): it creates and runs "
          "containers from bundles, a directory with a config.json and a root filesystem, "
          "as runc does, and takes runc's command line.  Engines (podman, containerd, "
          "Docker, CRI-O) call it as their runtime; people call it directly." % SPEC_VERSION)


def flag_names(flag):
    """['--bundle', '-b'] of a flag (a single letter: one dash)."""
    return [("-" if len(n) == 1 else "--") + n for n in flag[0]]


def _flag_head(flag):
    head = ", ".join(flag_names(flag))
    return head + (" " + flag[1] if flag[1] else "")


def _flag_text(flag):
    return flag[2] + (f" (default: {flag[3]})" if flag[3] else "")


def _wrap(text, width, indent):
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    lines.append(line)
    return ("\n" + " " * indent).join(lines)


def _flag_lines(flags):
    col = min(max(len(_flag_head(f)) for f in flags) + 5, 32)
    out = []
    for f in flags:
        head = "   " + _flag_head(f)
        text = _wrap(_flag_text(f), 78 - col, col)
        out.append(head.ljust(col) + text if len(head) < col - 1 else head + "\n" + " " * col + text)
    return "\n".join(out)


def page(command=None):
    """The --help text of a command (None: the global page)."""
    if command is None:
        width = max(len(c) for c in TABLE) + 2
        cmds = "\n".join(f"   {c.ljust(width)}{TABLE[c]['summary']}" for c in TABLE)
        return (f"NAME:\n   ociruntime - an OCI container runtime\n\n"
                f"USAGE:\n   ociruntime [global flags] COMMAND [flags] [ARGS...]\n\n"
                f"DESCRIPTION:\n   {_wrap(_INTRO, 75, 3)}\n\n"
                f"VERSION:\n   {__version__} (runtime-spec {SPEC_VERSION})\n\n"
                f"COMMANDS:\n{cmds}\n\n"
                f"GLOBAL FLAGS (before the command):\n{_flag_lines(GLOBAL_FLAGS)}\n\n"
                + _wrap("Flags take --flag VALUE, --flag=VALUE and -flag VALUE. A command's "
                        "flags: `ociruntime help COMMAND`, `ociruntime COMMAND --help`, or "
                        "man ociruntime-COMMAND.", 78, 0) + "\n")
    c = TABLE[command]
    usage = "\n".join(f"   ociruntime [global flags] {u}" for u in c["usage"])
    note = f"\n   {c['default_note']}" if c.get("default_note") else ""
    examples = "\n".join(f"   # {e}" for e in c["examples"])
    return (f"NAME:\n   ociruntime {command} - {c['summary']}\n\n"
            f"USAGE:\n{usage}\n\n"
            f"DESCRIPTION:\n   {_wrap(c['description'], 75, 3)}{note}\n\n"
            f"FLAGS:\n{_flag_lines(c['flags'])}\n\n"
            f"EXAMPLES:\n{examples}\n\n"
            "Global flags (--root, --log, --debug...): ociruntime --help.\n")


# -- man pages ------------------------------------------------------------------

def _roff(text):
    """Escape text for roff: backslashes, hyphens (a plain - may become a
    typographic one), and a leading dot or quote."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\\&" + text if text[:1] in (".", "'") else text


def _man_flags(flags):
    out = []
    for f in flags:
        names = ", ".join(f"\\fB{_roff(n)}\\fR" for n in flag_names(f))
        out += [".TP", names + (f" \\fI{_roff(f[1])}\\fR" if f[1] else ""), _roff(_flag_text(f))]
    return out


def man_page(command=None, date="2026"):
    """ociruntime(8) (command None) or ociruntime-COMMAND(8), in roff."""
    name = "ociruntime" + (f"-{command}" if command else "")
    lines = [f'.TH {name.upper()} 8 "{date}" "ociruntime {__version__}" "System Administration"',
             ".SH NAME"]
    if command is None:
        lines += ["ociruntime \\- an OCI container runtime", ".SH SYNOPSIS",
                  "\\fBociruntime\\fR [\\fIglobal flags\\fR] \\fICOMMAND\\fR [\\fIflags\\fR] "
                  "[\\fIARGS\\fR...]", ".SH DESCRIPTION", _roff(_INTRO), ".SH COMMANDS"]
        for c, d in TABLE.items():
            lines += [".TP", f"\\fB{c}\\fR", _roff(d["summary"]) + f" (see \\fBociruntime\\-{c}\\fR(8))."]
        lines += [".SH GLOBAL FLAGS", "Global flags come before the command.  Flags take "
                  "\\fB\\-\\-flag\\fR \\fIVALUE\\fR, \\fB\\-\\-flag=\\fR\\fIVALUE\\fR and "
                  "\\fB\\-flag\\fR \\fIVALUE\\fR."] + _man_flags(GLOBAL_FLAGS)
        lines += [".SH EXIT STATUS", "0 on success; 1 on an error, reported as one line on "
                  "stderr (and in \\fB\\-\\-log\\fR); \\fBrun\\fR and \\fBexec\\fR in the "
                  "foreground exit with the container process's status.",
                  ".SH SEE ALSO",
                  ", ".join(f"\\fBociruntime\\-{c}\\fR(8)" for c in TABLE) + ", \\fBrunc\\fR(8)"]
        return "\n".join(lines) + "\n"
    c = TABLE[command]
    lines += [f"ociruntime\\-{command} \\- {_roff(c['summary'])}", ".SH SYNOPSIS"]
    for i, u in enumerate(c["usage"]):
        lines += ([".br"] if i else []) + [f"\\fBociruntime\\fR [\\fIglobal flags\\fR] {_roff(u)}"]
    lines += [".SH DESCRIPTION", _roff(c["description"])]
    if c.get("default_note"):
        lines += [".PP", _roff(c["default_note"])]
    lines += [".SH OPTIONS"] + _man_flags(c["flags"])
    lines += [".SH EXAMPLES"]
    for e in c["examples"]:
        lines += [".PP", ".RS 4", ".nf", _roff(e), ".fi", ".RE"]
    lines += [".SH SEE ALSO", "\\fBociruntime\\fR(8) (the global flags)"]
    return "\n".join(lines) + "\n"


# -- completion -----------------------------------------------------------------

def _words(flags, with_value):
    return " ".join(n for f in flags if bool(f[1]) == with_value for n in flag_names(f))


_FILE_METAVARS = {"DIR", "FILE", "SOCKET", "PATH"}


def bash_completion():
    """The bash completion script (share/bash-completion/completions/ociruntime)."""
    cases = []
    for c, d in TABLE.items():
        files = " ".join(n for f in d["flags"] if f[1] in _FILE_METAVARS for n in flag_names(f))
        cases.append(f"        {c}) bools='{_words(d['flags'], False)}'; "
                     f"valued='{_words(d['flags'], True)}'; files='{files}' ;;")
    from ociruntime.capabilities import CAPABILITIES
    gfiles = " ".join(n for f in GLOBAL_FLAGS if f[1] in _FILE_METAVARS for n in flag_names(f))
    return f"""# bash completion for ociruntime (generated from ociruntime/help.py)
_ociruntime_ids() {{
    ociruntime ${{1:+--root "$1"}} list -q 2>/dev/null
}}

_ociruntime() {{
    local cur prev i cmd= root=
    cur=${{COMP_WORDS[COMP_CWORD]}}
    prev=${{COMP_WORDS[COMP_CWORD-1]}}
    local gbools='{_words(GLOBAL_FLAGS, False)}' gvalued='{_words(GLOBAL_FLAGS, True)}'
    for ((i = 1; i < COMP_CWORD; i++)); do
        case ${{COMP_WORDS[i]}} in
            --root|-root) root=${{COMP_WORDS[i+1]}}; ((i++)) ;;
            --root=*|-root=*) root=${{COMP_WORDS[i]#*=}} ;;
            -*=*) ;;
            -*) [[ " $gvalued " == *" ${{COMP_WORDS[i]}} "* ]] && ((i++)) ;;
            *) cmd=${{COMP_WORDS[i]}}; break ;;
        esac
    done
    if [[ -z $cmd ]]; then
        if [[ " $gvalued " == *" $prev "* ]]; then
            case $prev in
                {' | '.join(gfiles.split()) or '--root'}) COMPREPLY=($(compgen -f -- "$cur")) ;;
                --log-format) COMPREPLY=($(compgen -W 'text json' -- "$cur")) ;;
                --rootless) COMPREPLY=($(compgen -W 'true false auto' -- "$cur")) ;;
            esac
            return
        fi
        if [[ $cur == -* ]]; then
            COMPREPLY=($(compgen -W "$gbools $gvalued" -- "$cur"))
        else
            COMPREPLY=($(compgen -W '{" ".join(TABLE)}' -- "$cur"))
        fi
        return
    fi
    local bools= valued= files=
    case $cmd in
{chr(10).join(cases)}
        h) cmd=help ;;
    esac
    if [[ " $valued " == *" $prev "* ]]; then
        case $prev in
            --format|-f) [[ $cmd == list || $cmd == ps ]] && COMPREPLY=($(compgen -W 'table json' -- "$cur")) ;;
            --cap|-c) COMPREPLY=($(compgen -W '{" ".join(CAPABILITIES)}' -- "$cur")) ;;
            *) [[ " $files " == *" $prev "* ]] && COMPREPLY=($(compgen -f -- "$cur")) ;;
        esac
        return
    fi
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$bools $valued" -- "$cur"))
    elif [[ $cmd == help ]]; then
        COMPREPLY=($(compgen -W '{" ".join(TABLE)}' -- "$cur"))
    elif [[ $cmd == kill && $prev != kill && $prev != -* ]]; then
        COMPREPLY=($(compgen -W 'TERM KILL HUP INT QUIT USR1 USR2 STOP CONT' -- "$cur"))
    else
        case $cmd in
            features|list|spec|validate) ;;
            *) COMPREPLY=($(compgen -W "$(_ociruntime_ids "$root")" -- "$cur")) ;;
        esac
    fi
}}
complete -F _ociruntime ociruntime
"""


def write_docs(out_dir, date="2026"):
    """Write the man pages and completions under out_dir as they install
    (share/man/man8/..., share/bash-completion/...); the
    list of (install directory, [files]) for setup.py's data_files."""
    import os
    files = {"share/man/man8/ociruntime.8": man_page(None, date)}
    for c in TABLE:
        files[f"share/man/man8/ociruntime-{c}.8"] = man_page(c, date)
    files["share/bash-completion/completions/ociruntime"] = bash_completion()
    data = {}
    for rel, text in files.items():
        path = os.path.join(out_dir, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        data.setdefault(os.path.dirname(rel), []).append(path)
    return sorted(data.items())
