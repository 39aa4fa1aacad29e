"""Every check `create` makes of a config, run without creating anything,
and every failure collected: what `ociruntime validate` and the API's
validate_config report.

create stops at its first error; here each check runs on its own (the
schema's every error, then each semantic check of create's path: the
namespaces, init.CHECKS, each sysctl, each hook, each rlimit and
capability, args, cwd, netDevices, the cgroup resources, and at last
the whole plan built dry, which covers mounts, devices, seccomp, masked
paths and the rest).  Each problem names its JSON path and the section of
the runtime spec it breaks; create names the same section (annotate).

Only imported by `validate`, by the API, and by create on its way out
with an error.
"""
import copy
import os

from ociruntime.errors import ConfigError, OciError

# JSON path -> the spec section that says what it must be (GitHub's anchors
# of the headings of /work/shared/oci-runtime-spec).  The longest match wins.
SECTIONS = {
    "$": "config.md",
    "$.ociVersion": "config.md#specification-version",
    "$.root": "config.md#root",
    "$.mounts": "config.md#mounts",
    "$.process": "config.md#process",
    "$.process.rlimits": "config.md#posix-process",
    "$.process.user": "config.md#user",
    "$.process.capabilities": "config.md#linux-process",
    "$.process.noNewPrivileges": "config.md#linux-process",
    "$.process.oomScoreAdj": "config.md#linux-process",
    "$.process.apparmorProfile": "config.md#linux-process",
    "$.process.selinuxLabel": "config.md#linux-process",
    "$.process.scheduler": "config.md#linux-process",
    "$.process.ioPriority": "config.md#linux-process",
    "$.process.execCPUAffinity": "config.md#linux-process",
    "$.hostname": "config.md#hostname",
    "$.domainname": "config.md#domainname",
    "$.hooks": "config.md#posix-platform-hooks",
    "$.annotations": "config.md#annotations",
    "$.linux": "config-linux.md",
    "$.linux.namespaces": "config-linux.md#namespaces",
    "$.linux.uidMappings": "config-linux.md#user-namespace-mappings",
    "$.linux.gidMappings": "config-linux.md#user-namespace-mappings",
    "$.linux.timeOffsets": "config-linux.md#offset-for-time-namespace",
    "$.linux.devices": "config-linux.md#devices",
    "$.linux.netDevices": "config-linux.md#network-devices",
    "$.linux.cgroupsPath": "config-linux.md#cgroups-path",
    "$.linux.resources": "config-linux.md#control-groups",
    "$.linux.resources.devices": "config-linux.md#allowed-device-list",
    "$.linux.resources.memory": "config-linux.md#memory",
    "$.linux.resources.cpu": "config-linux.md#cpu",
    "$.linux.resources.blockIO": "config-linux.md#block-io",
    "$.linux.resources.hugepageLimits": "config-linux.md#huge-page-limits",
    "$.linux.resources.network": "config-linux.md#network",
    "$.linux.resources.pids": "config-linux.md#pids",
    "$.linux.resources.rdma": "config-linux.md#rdma",
    "$.linux.resources.unified": "config-linux.md#unified",
    "$.linux.intelRdt": "config-linux.md#intelrdt",
    "$.linux.memoryPolicy": "config-linux.md#memory-policy",
    "$.linux.sysctl": "config-linux.md#sysctl",
    "$.linux.seccomp": "config-linux.md#seccomp",
    "$.linux.rootfsPropagation": "config-linux.md#rootfs-mount-propagation",
    "$.linux.maskedPaths": "config-linux.md#masked-paths",
    "$.linux.readonlyPaths": "config-linux.md#readonly-paths",
    "$.linux.mountLabel": "config-linux.md#mount-label",
    "$.linux.personality": "config-linux.md#personality",
}


def section(path):
    """The spec section of a JSON path ($.process.cwd -> config.md#process)."""
    best = "$"
    for key in SECTIONS:
        if len(key) > len(best) and (path == key or path.startswith((key + ".", key + "["))):
            best = key
    return SECTIONS[best]


class Problem:
    """One thing wrong with a config: its JSON path, what is wrong, and
    the spec section it breaks.  str(): `$.process.cwd: must be ... (config.md#process)`."""

    def __init__(self, path, message):
        self.path, self.message, self.section = path, message, section(path)

    def __str__(self):
        return f"{self.path}: {self.message} ({self.section})"

    def __repr__(self):
        return f"Problem({str(self)!r})"

    def __eq__(self, other):
        return isinstance(other, Problem) and (self.path, self.message) == (other.path, other.message)

    def __hash__(self):
        return hash((self.path, self.message))


def split(text):
    """(path, message) of an error's text "<file>: $.a.b: message" (or a
    cgroup one, "linux.resources.x: message"); path "$" if it names none."""
    i = 0 if text.startswith("$") else text.find(": $") + 2
    if i == 1:   # no "$" path
        if text.startswith("linux."):   # "linux.x.y: ..." or "linux.cgroupsPath '..' leaves ..."
            end = min(k for k in (text.find(": "), text.find(" "), len(text)) if k >= 0)
            return "$." + text[:end], text[end:].lstrip(": ")
        return "$", text
    j = text.find(": ", i)
    if j < 0:
        return text[i:], ""
    return text[i:j], text[j + 2:]


def annotate(err):
    """create's error, with the spec section its path breaks appended
    (one that names no JSON path, a missing file or bad JSON, as it is)."""
    text = str(err)
    if not (text.startswith("$") or ": $" in text):
        return err
    path, _ = split(text)
    return type(err)(f"{text} ({section(path)})")


def config_problems(doc, bundle=".", source="config.json"):
    """Every Problem of config document doc; relative paths (root.path,
    bind mount sources) are taken from bundle.  [] if create would take it."""
    problems = _schema_problems(doc)
    schema_ok = not problems
    if not isinstance(doc, dict):
        return problems
    cfg = copy.deepcopy(doc)   # default_mappings and root.path change it

    def run(fn, *args):
        try:
            return fn(*args)
        except OciError as e:
            p = Problem(*split(str(e)))
            # Under a schema error, the semantic checks see values of the
            # wrong type: the schema's error says it better.
            if schema_ok or not any(_within(p.path, q.path) for q in problems):
                if p not in problems:
                    problems.append(p)
        except (TypeError, AttributeError, ValueError, KeyError):
            if schema_ok:
                raise
        return None

    for check in _semantic_checks(cfg, bundle, source):
        run(check)
    return problems


def _within(path, top):
    return path == top or path.startswith((top + ".", top + "[")) or top == "$"


def _schema_problems(doc):
    """Every schema error.  The compiled validator (create's) first: where
    it finds none, jsonschema would not either (tests/test_schema.py) and
    its import (most of a second) is spared; else jsonschema lists them all."""
    from ociruntime.validate import reference_errors, validate_config
    try:
        validate_config(doc, "")
        return []
    except ConfigError as e:
        first = Problem(*split(str(e)))
    try:
        problems = [Problem(path, msg) for path, msg in reference_errors("config.schema.json", doc)]
    except OciError:   # no jsonschema: the compiled validator's first error
        problems = []
    return problems or [first]


def _semantic_checks(cfg, bundle, source):
    """create's checks in create's order, each a callable that raises."""
    from ociruntime import capabilities, config, hooks, init, process
    from ociruntime.namespaces import Namespaces
    linux, proc = _dict(cfg.get("linux")), _dict(cfg.get("process"))
    state = {}
    yield lambda: config.check_root(cfg, bundle, source)

    def namespaces():
        state["ns"] = Namespaces(linux.get("namespaces"), source)
    yield namespaces
    if "ns" not in state:   # the rest is judged as if the bad entries were not there
        state["ns"] = _good_namespaces(linux.get("namespaces"))
    ns = state["ns"]
    yield lambda: init.default_mappings(cfg, ns)
    for fn in init.CHECKS:
        if fn is not init._check_sysctls:
            yield lambda fn=fn: fn(cfg, ns, source)
    for key in _dict(linux.get("sysctl")):
        yield lambda key=key: init.check_sysctl(key, ns, source)
    hooks_cfg = cfg.get("hooks")
    if hooks_cfg:
        yield lambda: hooks.check(hooks_cfg if isinstance(hooks_cfg, dict) else None, source)
        for kind in hooks.KINDS if isinstance(hooks_cfg, dict) else ():
            for i, h in enumerate(_list(hooks_cfg.get(kind))):
                yield lambda h=h, w=f"{source}: $.hooks.{kind}[{i}]": hooks.check_hook(h, w)
    if linux.get("netDevices"):
        from ociruntime import netdev
        yield lambda: netdev.check(cfg, source)
    where = f"{source}: $.process"
    for i, rl in enumerate(_list(proc.get("rlimits"))):
        yield lambda rl=rl, i=i: process.rlimit_number(rl, f"{where}.rlimits[{i}]")
    for s, names in _dict(proc.get("capabilities")).items():
        for i, name in enumerate(_list(names)):
            yield lambda name=name, w=f"{where}.capabilities.{s}[{i}]": capabilities.number(name, w)
    if cfg.get("process"):
        yield lambda: process.check_args(proc, source)
        yield lambda: process.check_cwd(proc, source)
    resources = _dict(linux.get("resources"))
    for key in _list(getattr(_resources(), "GROUPS", ())):
        if resources.get(key[0]):
            yield lambda key=key: _check_resource(linux, *key)
    yield lambda: _check_devices(linux)
    for i, m in enumerate(_list(cfg.get("mounts"))):   # each on its own: every bad one
        yield lambda i=i, m=m: _check_mount(cfg, i, m, ns, bundle, source)
    # Last, the whole plan, dry: mounts, devices, seccomp, masked paths,
    # the process's other fields -- whatever create checks as it builds it.
    yield lambda: _dry_plan(cfg, ns, bundle, source)
    if cfg.get("process"):   # the process comes last in the plan: whatever precedes it, it is checked
        yield lambda: _dry_plan(dict(cfg, process=None), ns, bundle, source)


def _good_namespaces(entries):
    from ociruntime.namespaces import NAMESPACES, Namespaces
    seen, good = set(), []
    for e in entries if isinstance(entries, list) else ():
        if isinstance(e, dict) and e.get("type") in NAMESPACES and e["type"] not in seen \
                and (not e.get("path") or str(e["path"]).startswith("/")):
            seen.add(e["type"])
            good.append(e)
    return Namespaces(good)




def _dry_manager():
    from ociruntime.cgroups import Manager

    class DryManager(Manager):
        def enable_v2(self, controllers):   # would write cgroup.subtree_control
            pass
    return DryManager


def _dict(v):
    return v if isinstance(v, dict) else {}


def _list(v):
    return v if isinstance(v, (list, tuple)) else ()


def _resources():
    from ociruntime.cgroups import resources
    return resources


def _check_resource(linux, key, fn):
    """One group of linux.resources, as create computes its writes,
    without making or writing anything: the placement (cgroupsPath) and
    every value it checks."""
    resources = _resources()
    mgr = _dry_manager().for_config(linux.get("cgroupsPath"), "validate")
    try:
        fn(resources.Writes(mgr, False), linux["resources"][key], f"linux.resources.{key}")
    except OSError:
        pass   # it reads the container's cgroup files, which do not exist yet: checked so far


def _check_devices(linux):
    from ociruntime.cgroups import devices
    _dry_manager().for_config(linux.get("cgroupsPath"), "validate")   # the placement
    res = _dict(linux.get("resources"))
    devices.rules_for(res.get("devices"), linux.get("devices"))


def _check_mount(cfg, i, m, ns, bundle, source):
    """mounts[i] alone, through create's own plan_mounts."""
    from ociruntime import mounts
    from ociruntime.plan import Plan
    ctx = _dry_context(cfg, ns, bundle, source)
    if ctx is None:
        return
    try:
        mounts.plan_mounts(Plan(), dict(cfg, mounts=[m]), ctx)
    except ConfigError as e:   # it was mounts[0] there
        raise ConfigError(str(e).replace(": $.mounts[0]", f": $.mounts[{i}]", 1)) from None


def _dry_plan(cfg, ns, bundle, source):
    from ociruntime import init
    ctx = _dry_context(cfg, ns, bundle, source)
    if ctx is not None:
        init.build(cfg, ns, ctx)


def _dry_context(cfg, ns, bundle, source):
    """create's init.Context, with nothing opened: dry (mount_attrs makes
    no idmapped tree).  None without a rootfs (config.check_root said why)."""
    from ociruntime import init
    root = cfg.get("root") or {}
    if not os.path.isabs(root.get("path") or ""):
        return None
    try:
        layout = _dry_manager().for_config((cfg.get("linux") or {}).get("cgroupsPath"),
                                           "validate").mount_layout()
    except OciError:
        layout = []
    return init.Context(
        cgroup_tasks=[], cgroup_v2_fd=-1, seccomp_listener_fd=-1, seccomp_state={},
        rootfs=root["path"], bundle=bundle, source=source, fifo_fd=-1, first_closed_fd=3,
        no_pivot=False, userns=ns.has("user"), cgroupns="cgroup" in ns.new,
        cgroup_mounts=layout, console_fd=-1, console_proxied=False,
        state={"id": "validate"}, report_fd=-1, no_new_keyring=False, dry=True)
