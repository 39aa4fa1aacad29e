"""The container process: rlimits, user, capabilities, cwd, env, exec."""

from ociruntime import capabilities
from ociruntime.errors import ConfigError

RLIMITS = {
    "RLIMIT_CPU": 0, "RLIMIT_FSIZE": 1, "RLIMIT_DATA": 2, "RLIMIT_STACK": 3,
    "RLIMIT_CORE": 4, "RLIMIT_RSS": 5, "RLIMIT_NPROC": 6, "RLIMIT_NOFILE": 7,
    "RLIMIT_MEMLOCK": 8, "RLIMIT_AS": 9, "RLIMIT_LOCKS": 10,
    "RLIMIT_SIGPENDING": 11, "RLIMIT_MSGQUEUE": 12, "RLIMIT_NICE": 13,
    "RLIMIT_RTPRIO": 14, "RLIMIT_RTTIME": 15,
}
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def env_value(env, key):
    prefix = key + "="
    for e in env:
        if e.startswith(prefix):
            return e[len(prefix):]
    return None


PASSWD_LIMIT = 1 << 20   # bytes of /etc/passwd read at most


def home_of(root, uid, mountinfo="/proc/self/mountinfo"):
    """HOME from the image's /etc/passwd, as runc sets it when absent.
    The file is the image's, so hostile: imagefile.read resolves it
    inside `root` (a link to /etc/passwd is the rootfs's, never the
    host's), reads only a regular file, at most PASSWD_LIMIT bytes, and
    never blocks.  Whatever cannot be read that way gives "/"."""
    from ociruntime import imagefile
    try:
        data = imagefile.read(root, "/etc/passwd", PASSWD_LIMIT, mountinfo)
    except OSError:
        return "/"
    for line in data.decode(errors="replace").splitlines():
        parts = line.split(":")
        if len(parts) >= 6 and parts[2] == str(uid):
            return parts[5] or "/"
    return "/"


def plan_identity(plan, proc, source, before_caps=None):
    """rlimits, groups, ids and capabilities, in the order that works:
    limits and the bounding set need privileges we drop afterwards.
    before_caps runs as the user, with the permitted set still whole:
    plan_exec's steps, then a seccomp filter that cannot wait for exec."""
    where = f"{source}: $.process"
    seen = set()
    for i, rl in enumerate(proc.get("rlimits") or ()):
        res = rlimit_number(rl, f"{where}.rlimits[{i}]")
        if res in seen:   # config.md: duplicated entries MUST be an error
            raise ConfigError(f"{where}.rlimits[{i}].type: {rl['type']} is listed twice")
        seen.add(res)
        plan.add("SETRLIMIT", res, rl["soft"], rl["hard"])
    caps = capabilities.masks(proc.get("capabilities"), f"{where}.capabilities")
    user = proc.get("user") or {}
    plan.add("CAPBSET", caps["bounding"])
    plan.add("SETGROUPS", *user.get("additionalGids") or ())
    plan.add("SETUSER", user.get("uid", 0), user.get("gid", 0))
    if before_caps:
        before_caps()
    plan.add("CAPS", caps["effective"], caps["permitted"], caps["inheritable"], caps["ambient"])
    if proc.get("noNewPrivileges"):
        plan.add("NO_NEW_PRIVS")


def rlimit_number(rl, where):
    res = RLIMITS.get(rl.get("type"))
    if res is None:
        raise ConfigError(f"{where}.type: unknown rlimit {rl.get('type')!r}")
    return res


def check_args(proc, source):
    if not proc.get("args"):
        raise ConfigError(f"{source}: $.process.args: must name a command")


def check_cwd(proc, source):
    cwd = proc.get("cwd") or "/"
    if not cwd.startswith("/"):
        raise ConfigError(f"{source}: $.process.cwd: must be an absolute path, not {cwd!r}")


def plan_exec(plan, proc, rootfs, source, first_closed_fd, mountinfo="/proc/self/mountinfo"):
    """Everything of the exec that can go before a seccomp filter (issue
    12.3: a classic allow-list has no openat2, getcwd, close_range, stat or
    umask): cwd, finding the executable (so a missing one fails `create`,
    as in runc), the umask, the runtime's fds close-on-exec.  rootfs and
    mountinfo: where the container's files are seen from here (for exec,
    through its init's /proc entry).  Returns what adds the exec itself,
    for after OP_WAIT_START."""
    check_args(proc, source)
    check_cwd(proc, source)
    args, cwd = proc["args"], proc.get("cwd") or "/"
    env = list(proc.get("env") or ())
    if env_value(env, "HOME") is None:
        env.append("HOME=" + home_of(rootfs, (proc.get("user") or {}).get("uid", 0), mountinfo))
    plan.add("CHDIR", cwd)
    plan.add("FIND_EXEC", args[0], env_value(env, "PATH") or DEFAULT_PATH)
    plan.add("UMASK", (proc.get("user") or {}).get("umask", 0o022))
    plan.add("CLOSE_FDS", first_closed_fd)
    return lambda before_exec=None: (
        before_exec and before_exec(),   # seccomp: the very last step
        plan.add("EXEC", len(args), *args, len(env), *env),
    )


def plan_process(plan, proc, rootfs, source, first_closed_fd, load_filter=None,
                 mountinfo="/proc/self/mountinfo"):
    """plan_identity with plan_exec's steps as the user, then load_filter
    (a seccomp filter that needs the permitted set: see seccomp.py);
    returns plan_exec's finisher."""
    finish = []

    def before_caps():
        finish.append(plan_exec(plan, proc, rootfs, source, first_closed_fd, mountinfo))
        if load_filter:
            load_filter()
    plan_identity(plan, proc, source, before_caps)
    return finish[0]
