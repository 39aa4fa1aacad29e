"""The container init's plan: everything it does, in order, from clone to
exec.  Each concern adds its own steps (namespaces, mounts, process)."""
from ociruntime import mounts, process
from ociruntime.errors import ConfigError
from ociruntime.namespaces import CLONE_NEWCGROUP, CLONE_NEWTIME
from ociruntime.plan import Plan


class Context:
    """What the plan needs to know besides the config."""

    def __init__(self, **kw):
        self.late_readonly = []
        self.__dict__.update(kw)


def check(cfg, ns, source):
    """Combinations the schema cannot express."""
    linux = cfg.get("linux") or {}
    if not ns.has("mount"):
        raise ConfigError(f"{source}: $.linux.namespaces: a mount namespace is required")
    for key in ("hostname", "domainname"):
        if cfg.get(key) and not ns.has("uts"):
            raise ConfigError(f"{source}: $.{key}: setting it needs a uts namespace")
    if "user" in ns.new and not (linux.get("uidMappings") and linux.get("gidMappings")):
        raise ConfigError(f"{source}: $.linux.uidMappings: a new user namespace needs uid and gid mappings")
    if not ns.has("user") and (linux.get("uidMappings") or linux.get("gidMappings")):
        raise ConfigError(f"{source}: $.linux.uidMappings: mappings need a user namespace")
    if linux.get("timeOffsets") and "time" not in ns.new:
        raise ConfigError(f"{source}: $.linux.timeOffsets: offsets need a new time namespace")


def build(cfg, ns, ctx):
    """The whole plan of `create`: ctx has rootfs, bundle, source, fifo_fd,
    close_fds, first_closed_fd, no_pivot, cgroup_mounts."""
    plan = Plan()
    ns.add_joins(plan)
    plan.add("CLONE", ns.clone_flags())
    if ctx.close_fds:
        plan.add("CLOSE", *ctx.close_fds)
    # Until exec the init is a copy of the runtime: nothing in the
    # container may open /proc/<init>/exe or its memory (CVE-2019-5736).
    plan.add("SET_DUMPABLE", 0)
    if "time" in ns.new:
        plan.add("UNSHARE", CLONE_NEWTIME)
    plan.add("SYNC_HELLO")      # the runtime maps ids, joins cgroups
    if ns.has("user"):
        plan.add("SETID_ROOT")
    if "cgroup" in ns.new:      # now rooted at the container's cgroup
        plan.add("UNSHARE", CLONE_NEWCGROUP)
    plan.add("UMASK", 0)        # device and directory modes as written
    plan.add("SETSID")
    if cfg.get("hostname"):
        plan.add("SETHOSTNAME", cfg["hostname"])
    if cfg.get("domainname"):
        plan.add("SETDOMAINNAME", cfg["domainname"])
    mounts.plan_mounts(plan, cfg, ctx)
    mounts.plan_pivot(plan, ctx, ctx.no_pivot)
    mounts.plan_after_pivot(plan, cfg, ctx)
    proc = cfg.get("process")
    finish = None
    if proc:
        process.plan_identity(plan, proc, ctx.source)
        finish = process.plan_exec(plan, proc, ctx.rootfs, ctx.source, ctx.first_closed_fd)
    plan.add("SYNC_READY")
    plan.add("WAIT_START", ctx.fifo_fd)
    if finish:
        finish()
    return plan
