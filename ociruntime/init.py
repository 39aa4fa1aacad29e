"""The container init's plan: everything it does, in order, from clone to
exec.  Each concern adds its own steps (namespaces, mounts, process)."""
import os

from ociruntime import mounts, process
from ociruntime.errors import ConfigError
from ociruntime.namespaces import CLONE_NEWCGROUP, CLONE_NEWTIME
from ociruntime.plan import Plan


class Context:
    """What the plan needs to know besides the config."""

    def __init__(self, **kw):
        self.spawn_fds = []   # more fds the plan names (cgroups, idmapped trees): passed, then closed
        self.__dict__.update(kw)


def check(cfg, ns, source):
    """Combinations the schema cannot express."""
    for fn in CHECKS:
        fn(cfg, ns, source)


def _check_names(cfg, ns, source):
    for key in ("hostname", "domainname"):
        if cfg.get(key) and not ns.has("uts"):
            raise ConfigError(f"{source}: $.{key}: setting it needs a uts namespace")


def _check_mappings(cfg, ns, source):
    linux = cfg.get("linux") or {}
    if "user" in ns.new and bool(linux.get("uidMappings")) != bool(linux.get("gidMappings")):
        raise ConfigError(f"{source}: $.linux.uidMappings: uid and gid mappings go together")
    if not ns.has("user") and (linux.get("uidMappings") or linux.get("gidMappings")):
        raise ConfigError(f"{source}: $.linux.uidMappings: mappings need a user namespace")


def _check_sysctls(cfg, ns, source):
    for key in (cfg.get("linux") or {}).get("sysctl") or ():
        check_sysctl(key, ns, source)


def _check_lsm(cfg, ns, source):
    linux, proc = cfg.get("linux") or {}, cfg.get("process") or {}
    if proc.get("apparmorProfile") or proc.get("selinuxLabel") or linux.get("mountLabel"):
        from ociruntime import lsm
        lsm.check(cfg, source)


def _check_time(cfg, ns, source):
    if (cfg.get("linux") or {}).get("timeOffsets") and "time" not in ns.new:
        raise ConfigError(f"{source}: $.linux.timeOffsets: offsets need a new time namespace")


# Each on its own, so that `validate` can report every one that fails
# (checks.py runs the sysctls one by one too).
CHECKS = (_check_names, _check_mappings, _check_sysctls, _check_lsm, _check_time)


def default_mappings(cfg, ns):
    """A new user namespace without mappings runs, as in crun (1.8): the
    ids from 0 up to the highest the config names (the process's, and a
    mount's uid=/gid= option such as devpts' gid=5) map to the caller's
    (root: the same ids), so that the init can set them and make its
    mount points (with no mapping at all, every mkdir fails with
    EOVERFLOW).  runc refuses such a config."""
    linux = cfg.get("linux") or {}
    if "user" not in ns.new or linux.get("uidMappings") or linux.get("gidMappings"):
        return
    user = (cfg.get("process") or {}).get("user") or {}
    uids, gids = [user.get("uid", 0)], [user.get("gid", 0), *(user.get("additionalGids") or ())]
    for m in cfg.get("mounts") or ():
        for opt in m.get("options") or ():
            key, _, value = opt.partition("=")
            if key in ("uid", "gid") and value.isdigit():
                (uids if key == "uid" else gids).append(int(value))
    linux["uidMappings"] = [{"containerID": 0, "hostID": os.geteuid(), "size": max(uids) + 1}]
    linux["gidMappings"] = [{"containerID": 0, "hostID": os.getegid(), "size": max(gids) + 1}]


_IPC_SYSCTLS = frozenset((
    "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall",
    "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced"))


def check_sysctl(key, ns, source):
    """runc's rule: a sysctl must belong to a namespace the container has
    (not the host's), else the write would change the whole host."""
    where = f"{source}: $.linux.sysctl[{key!r}]"
    if "/" in key or ".." in key or not key or key.startswith("."):
        raise ConfigError(f"{where}: not a sysctl name")
    if key in _IPC_SYSCTLS or key.startswith("fs.mqueue."):
        if ns.has("ipc"):
            return
        raise ConfigError(f"{where}: sysctl {key!r} is not allowed in the host's ipc namespace")
    if key.startswith("net."):
        if ns.has("network"):
            return
        raise ConfigError(f"{where}: sysctl {key!r} is not allowed in the host's network namespace")
    if key in ("kernel.domainname", "kernel.hostname"):
        if not ns.has("uts"):
            raise ConfigError(f"{where}: sysctl {key!r} is not allowed in the host's uts namespace")
        if key == "kernel.hostname":
            # runc 1.1.5 (and crun): always, `hostname` given or not.
            # kernel.domainname is taken, even beside `domainname`: the
            # sysctl is written last and wins (as in runc).
            raise ConfigError(f"{where}: sysctl {key!r} is not allowed as it conflicts "
                              "with the OCI 'hostname' field")
        return
    raise ConfigError(f"{where}: sysctl {key!r} is not in a separate kernel namespace")


def build(cfg, ns, ctx):
    """The whole plan of `create`: ctx has rootfs, bundle, source, fifo_fd,
    first_closed_fd, no_pivot, cgroup_mounts."""
    plan = Plan()
    mounts.plan_sources(plan, cfg, ctx, ns)   # first: ociruntime-init opens them before any clone
    seccomp_cfg = (cfg.get("linux") or {}).get("seccomp")
    if cfg.get("process") and seccomp_cfg is not None:
        # Built first, by the process that clones the init (csrc/spawn.c):
        # libseccomp's memory (over 1 MiB for podman's profile) is the
        # runtime's, not charged to the container's limit, and the init
        # inherits the built filter.  So the init can be born in its
        # cgroup2 directory and join its v1 cgroups itself (writing 0 into
        # `tasks`): the runtime moving it in afterwards (cgroup.procs)
        # waited for an RCU grace period, ~5 ms here.
        # Compiling Docker's profile takes libseccomp ~9 ms, and an engine's
        # containers share one: compiled filters are kept (seccomp.cache_dir).
        from ociruntime import seccomp
        cache = seccomp.cache_dir(getattr(ctx, "rootless", False))
        if cache:
            plan.add("SECCOMP_CACHE", cache)
        seccomp.add_seccomp_step(plan, seccomp_cfg, ctx.source, cfg["process"], "build")
    if ns.joined:   # the intermediate enters the container's namespaces:
        plan.add("SET_DUMPABLE", 0)   # not dumpable first (CVE-2019-5736); the init inherits it
    ns.add_joins(plan)
    cgroup_v2_fd = getattr(ctx, "cgroup_v2_fd", -1)
    if cgroup_v2_fd >= 0:   # born in its cgroup2 directory
        plan.add("CLONE", ns.clone_flags(), cgroup_v2_fd)
    else:
        plan.add("CLONE", ns.clone_flags())
    # Until exec the init is ociruntime-init, the runtime's own program
    # (from a sealed memfd: csrc/sealed_exe.c): nothing in the container
    # may open /proc/<init>/exe, its memory or its fds (CVE-2019-5736).
    plan.add("SET_DUMPABLE", 0)
    if "time" in ns.new:
        plan.add("UNSHARE", CLONE_NEWTIME)
    tasks = getattr(ctx, "cgroup_tasks", ())
    if tasks:   # into its v1 cgroups, before it allocates anything more
        plan.add("JOIN_CGROUP", *[x for fd, path in tasks for x in (fd, path)])
    # Rootless: the runtime (or newuidmap) is no more than the init's owner,
    # and /proc/PID of a non-dumpable process is root's: dumpable while it
    # writes the maps, as runc's nsexec does.  Nothing of the container has
    # run yet.
    owner_writes = getattr(ctx, "rootless", False) and "user" in ns.new
    if owner_writes:
        plan.add("SET_DUMPABLE", 1)
    if getattr(ctx, "set_up", True):   # else the runtime has nothing to do here
        plan.add("SYNC_HELLO")      # the runtime maps ids, joins cgroups
    if owner_writes:
        plan.add("SET_DUMPABLE", 0)
    if ns.has("user"):
        plan.add("SETID_ROOT")
    if not getattr(ctx, "no_new_keyring", False):   # runc: not the caller's session keyring
        plan.add("SESSION_KEYRING", "_ses." + ctx.state["id"])
    if "cgroup" in ns.new:      # now rooted at the container's cgroup
        plan.add("UNSHARE", CLONE_NEWCGROUP)
    if "network" in ns.new:     # as runc: a new network namespace has lo up
        plan.add("LO_UP")
    plan.add("UMASK", 0)        # device and directory modes as written
    plan.add("SETSID")
    if cfg.get("hostname"):
        plan.add("SETHOSTNAME", cfg["hostname"])
    if cfg.get("domainname"):
        plan.add("SETDOMAINNAME", cfg["domainname"])
    # Without a mount namespace of its own (config-linux.md: inherited),
    # the mount table is the host's: nothing is mounted, / is a chroot.
    own_mounts = ns.has("mount")
    if own_mounts:
        mounts.plan_mounts(plan, cfg, ctx)
    hooks_cfg = cfg.get("hooks")
    if hooks_cfg:   # prestart, createRuntime, createContainer: before pivot_root
        from ociruntime import hooks
        hooks.plan_create(plan, hooks_cfg, ctx)
    if own_mounts:
        mounts.plan_pivot(plan, ctx, ctx.no_pivot)
    else:
        mounts.plan_sysctl(plan, cfg)   # through the host's /proc: it shows our namespaces
        plan.add("CHROOT", ctx.rootfs)
    if getattr(ctx, "console_fd", -1) >= 0:   # the pty, before / turns read-only
        from ociruntime import terminal
        terminal.plan_terminal(plan, cfg.get("process") or {}, ctx.console_fd, mount_console=own_mounts,
                               proxied=getattr(ctx, "console_proxied", False))
    if own_mounts:
        mounts.plan_after_pivot(plan, cfg, ctx)
    proc = cfg.get("process")
    finish = None
    seccomp_cfg = (cfg.get("linux") or {}).get("seccomp")
    on_identity = on_exec = None
    if proc and seccomp_cfg is not None:
        from ociruntime import seccomp
        lfd = getattr(ctx, "seccomp_listener_fd", -1)
        st = getattr(ctx, "seccomp_state", None) or {}
        on_identity = lambda: seccomp.add_seccomp_step(   # noqa: E731
            plan, seccomp_cfg, ctx.source, proc, "identity", lfd, dict(st, status="creating"),
            built=True)
        on_exec = lambda: seccomp.add_seccomp_step(   # noqa: E731
            plan, seccomp_cfg, ctx.source, proc, "exec", lfd, dict(st, status="running"))
    if proc and (proc.get("apparmorProfile") or proc.get("selinuxLabel")):
        from ociruntime import lsm
        lsm.plan_labels(plan, proc)
    linux = cfg.get("linux") or {}
    if ((proc or {}).get("scheduler") or (proc or {}).get("ioPriority") or linux.get("personality")
            or linux.get("memoryPolicy") or linux.get("intelRdt")):
        from ociruntime import process_attrs   # before privileges are dropped
        process_attrs.plan_init(plan, cfg, ctx.source)
    if proc:
        finish = process.plan_process(plan, proc, ctx.rootfs, ctx.source, ctx.first_closed_fd,
                                      on_identity)
    plan.add("SYNC_READY")
    plan.add("WAIT_START", ctx.fifo_fd)
    if hooks_cfg and proc:   # startContainer: after start, right before exec
        hooks.plan_start(plan, hooks_cfg, ctx)
    if finish:
        finish(before_exec=on_exec)
    return plan
