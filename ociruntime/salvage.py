"""`delete --force` of a container whose state.json is damaged.

One corrupt file must not strand a container: its processes running, its
cgroup directories and state directory left.  What delete needs is kept
in more than one place, and each is read on its own, field by field (a
field is used only if it has the type create writes, state.py's FIELDS):

  state.json        whatever fields of it still parse and check
  fast              the front end's file: the init's pid and start time,
                    the cgroup directories create made, and a whole copy
                    of state.json as create left it
  cgroups.json      the cgroups (and the bundle), written before they were
                    made: it alone covers a create killed half-way
  the id            the default placement, a directory named after it
  the bundle        config.json's linux.cgroupsPath, if the bundle is known

The processes of every cgroup found are killed (so are the init's, if its
pid and start time are known), the directories removed, the poststop
hooks run (if a record has them), then the state directory is removed.
Nothing is done in a cgroup that holds the runtime itself (an ancestor of
ours, or a hierarchy's root): that is never a container's.  A record
whose id is another container's is not used.
"""
import os

import _signal as signal

from ociruntime import cgroups, jsonlite, state
from ociruntime.errors import OciError


def remove(c):
    """Kill and remove everything found of container c (whose directory
    we hold locked), then its state directory."""
    # A record naming another container (a state copied over ours) is
    # not ours to act on.
    records = [r for r in _records(c.dir) if r.get("id", c.id) == c.id]
    managers, made = _placements(c.id, records)
    pid, start = _pid(records)
    for m in managers:
        m.kill_all(signal.SIGKILL)
    if pid and state.process_alive(pid, start):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        from ociruntime.container import _wait_gone
        _wait_gone(pid, start, 10.0)
    for m in managers:
        m.wait_empty(5.0)
        if type(m) is not cgroups.Manager:
            m.destroy()   # a systemd unit: stopped
    # Deepest first; an error keeps the state directory: delete --force again.
    cgroups.Manager({}, sorted(made, key=len)).destroy()
    _poststop(c.id, records)
    state.remove_tree(c.dir)


def _poststop(cid, records):
    """The poststop hooks, as delete runs them (runtime.md 13), where a
    record still has them."""
    entries = next(iter(_good(records, "hooks")), {}).get("poststop")
    if entries:
        from ociruntime import hooks
        data = {"id": cid, "bundle": next(iter(_good(records, "bundle")), ""),
                "annotations": next(iter(_good(records, "annotations")), {})}
        hooks.run("poststop", entries, hooks.state(data, "stopped", 0), warn_only=True)


# -- the records ---------------------------------------------------------------

def _records(cdir):
    """The state data of each record that parses as an object, best first."""
    out = []
    for name in ("state.json", state.ASIDE, "fast", "cgroups.json"):
        try:
            with open(os.path.join(cdir, name), "rb") as f:
                raw = f.read()
        except OSError:
            continue
        data = _parse_fast(raw) if name == "fast" else _parse_json(raw)
        if data:
            out.append(data)
    return out


def _parse_json(raw):
    try:
        data = jsonlite.loads(raw)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _parse_fast(raw):
    """state.write_fast's lines: its copy of state.json, overlaid with its
    own pid, start and cgroup directories."""
    if not raw.startswith(state.FAST_MAGIC):
        return None
    data, made = {}, []
    rest = raw[len(state.FAST_MAGIC):]
    try:
        while rest:
            line, _, rest = rest.partition(b"\n")
            key, _, value = line.partition(b" ")
            if key in (b"head", b"mid", b"tail", b"state.json"):
                n = int(value)
                blob, rest = rest[:n], rest[n + 1:]
                if key == b"state.json":
                    data = dict(_parse_json(blob) or {}, **data)
            elif key == b"pid":
                data["pid"] = int(value)
            elif key == b"start":
                data["pid_start"] = int(value)
            elif key in (b"rmdir", b"rmparent"):   # its own, and parents create made
                made.append(os.fsdecode(value))
    except ValueError:
        pass
    if made:
        data["cgroups_created"] = made
    return data


def _good(records, name):
    """The values of field name in the records where it checks."""
    return [r[name] for r in records if name in r and state.field_ok(r, name)]


def _pid(records):
    """(pid, start time) from the first record that has both, else (0, None)."""
    for r in records:
        if state.field_ok(r, "pid") and state.field_ok(r, "pid_start") and "pid" in r and "pid_start" in r:
            return r["pid"], r["pid_start"]
    return 0, None


# -- the cgroups ------------------------------------------------------------------

def _placements(cid, records):
    """([Manager] of every placement found, {directory create made})."""
    managers, made, units = [], set(), set()
    for r in records:   # a --systemd-cgroup container: its unit is stopped
        if "cgroups_systemd" in r and state.field_ok(r, "cgroups_systemd") \
                and state.field_ok(r, "cgroups") and r["cgroups_systemd"]["unit"] not in units:
            units.add(r["cgroups_systemd"]["unit"])
            managers.append(cgroups.load({k: r[k] for k in ("cgroups", "cgroups_systemd")
                                          if k in r}))
    for dirs in _good(records, "cgroups_created"):
        made.update(dirs)
    found = [dict(p) for p in _good(records, "cgroups")]
    recorded = bool(made or found)
    # The default placement (named after the id: ours to remove), and
    # the config's: its directory is removed too if no record says more.
    for path in [None] + [_config_path(b) for b in _good(records, "bundle")]:
        try:
            paths = cgroups.Manager.for_config(path, cid).paths
        except (OciError, ValueError, TypeError):
            continue
        found.append(paths)
        made.update(d for d in paths.values()
                    if os.path.basename(d) == cid or (path and not recorded))
    seen = set()
    for paths in found:
        paths = {m: d for m, d in paths.items() if os.path.isdir(d) and _may_be_a_container(d)}
        key = tuple(sorted(paths.items()))
        if paths and key not in seen:
            seen.add(key)
            managers.append(cgroups.Manager(paths))
    return managers, {d for d in made if _may_be_a_container(d)}


def _config_path(bundle):
    """linux.cgroupsPath of the bundle's config.json, if it still says."""
    try:
        with open(os.path.join(bundle, "config.json"), "rb") as f:
            cfg = jsonlite.loads(f.read())
        path = cfg["linux"]["cgroupsPath"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return path if isinstance(path, str) and path else None


def _own_dirs():
    """The runtime's own cgroup directory in each hierarchy."""
    return [os.path.normpath(mnt + "/" + (own[len(root):] if root != "/" and own.startswith(root)
                                           else own))
            for _n, _t, _k, mnt, root, own in cgroups.host_hierarchies()]


def _may_be_a_container(d):
    """Is d below a hierarchy's root, and neither our own cgroup nor one
    of its ancestors?"""
    mounts = [h[3].rstrip("/") for h in cgroups.host_hierarchies()]
    if not any(d.startswith(m + "/") for m in mounts):
        return False
    return not any(own == d or own.startswith(d.rstrip("/") + "/") for own in _own_dirs())
