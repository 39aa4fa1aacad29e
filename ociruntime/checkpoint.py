"""`checkpoint` and `restore`, with runc's flags, through criu (criu.py).

checkpoint: criu dumps the container's process tree into --image-path
  (default ./checkpoint); without --leave-running criu kills it and the
  container is deleted, as runc does, so that `restore` can take its id.
  --pre-dump dumps memory only and leaves it running: a later checkpoint
  with --parent-path sends only the pages changed since.
restore: a new container under ID from the bundle's config (its cgroups
  made as create makes them) whose process tree is criu's restore of the
  image; criu runs inside the new cgroups, so that what it restores is
  born there, and restores the tree as our child (--restore-sibling).
  Without --detach we wait for it, forward signals and delete it after,
  as `run` does.

What criu needs to know of a container, as runc tells it:
- the root: the rootfs (criu bind-mounts it as the restored root; we give
  it a read-only bind when root.readonly, which criu's bind keeps);
- bind mounts of host paths: external mounts (dump: destination ->
  destination; restore: destination -> the config's source); masked
  files: external mounts named /dev/null; the config's mountpoints made
  in a fresh rootfs, as create makes them;
- the network namespace is "empty": we do not manage its devices (runc
  always sets CLONE_NEWNET in criu's empty_ns), so criu makes a new one
  and restores nothing in it;
- the process's stdin, stdout and stderr when they are pipes from
  outside: kept as descriptors.json in the image (runc's file), and
  given back on restore as the restoring caller's own (--inherit-fd).
"""
import json
import os

# signal's C core, without the enum module (see container.py)
import _signal as signal

from ociruntime import cgroups, criu, log, state
from ociruntime.errors import ContainerNotRunning, OciError
from ociruntime.state import Container

DESCRIPTORS = "descriptors.json"   # runc's name: the init's fds 0-2 at dump time
MANAGE_CGROUPS_MODES = ("soft", "full", "strict", "ignore")
EMPTY_NS = {"network": "net"}   # runc's --empty-ns names -> criu's (only net: criu's limit)


class Options:
    """The flags of checkpoint and restore, as runc names them."""

    def __init__(self, opts, criu_name="criu"):
        self.criu_name = criu_name
        self.image_path = os.path.abspath(opts.get("image-path") or "checkpoint")
        self.work_path = os.path.abspath(opts["work-path"]) if opts.get("work-path") else self.image_path
        self.parent_path = opts.get("parent-path")
        self.leave_running = bool(opts.get("leave-running"))
        self.pre_dump = bool(opts.get("pre-dump"))
        self.lazy_pages = bool(opts.get("lazy-pages"))
        self.page_server = _page_server(opts.get("page-server"))
        self.status_fd = _status_fd(opts.get("status-fd"))
        self.booleans = [f for f in ("tcp-established", "ext-unix-sk", "shell-job", "file-locks",
                                     "auto-dedup") if opts.get(f)]
        mode = opts.get("manage-cgroups-mode")
        if mode is not None and mode not in MANAGE_CGROUPS_MODES:
            raise OciError(f"--manage-cgroups-mode: {mode!r} is not one of "
                           f"{', '.join(MANAGE_CGROUPS_MODES)}")
        self.manage_cgroups = mode
        for ns in opts.get("empty-ns") or ():   # network is always empty (common())
            if ns not in EMPTY_NS:
                raise OciError(f"--empty-ns: namespace {ns!r} is not supported (only network)")

    def common(self, action):
        """criu's arguments that checkpoint and restore share."""
        args = ["-D", self.image_path, "-W", self.work_path, "-o", f"{action}.log", "-v4",
                "--empty-ns", "net"]
        args += [f"--{f}" for f in self.booleans]
        args.append("--manage-cgroups" + (f"={self.manage_cgroups}" if self.manage_cgroups else ""))
        if self.lazy_pages:
            args.append("--lazy-pages")
        return args

    def dump_only(self):
        """criu's arguments of checkpoint alone: the page server, the status fd."""
        args = []
        if self.page_server:   # with --lazy-pages criu itself serves the pages there
            args += [] if self.lazy_pages else ["--page-server"]
            args += ["--address", self.page_server[0], "--port", self.page_server[1]]
        if self.status_fd is not None:
            args += ["--status-fd", str(self.status_fd)]
        return args

    def log_path(self, action):
        return os.path.join(self.work_path, f"{action}.log")


def _page_server(value):
    """--page-server ADDRESS:PORT (runc's): criu sends the pages there."""
    if not value:
        return None
    address, _, port = value.rpartition(":")
    if not address or not port.isdigit() or not 0 < int(port) < 65536:
        raise OciError(f"--page-server {value!r}: want ADDRESS:PORT")
    return address.strip("[]"), port


def _status_fd(value):
    """--status-fd N: criu writes a byte there once the page server (lazy
    pages) is ready; an open, writable fd of the caller."""
    if value is None:
        return None
    import fcntl
    try:
        fd = int(value)
        flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    except (ValueError, OSError):
        raise OciError(f"--status-fd {value!r}: not an open file descriptor") from None
    if flags & os.O_ACCMODE == os.O_RDONLY:
        raise OciError(f"--status-fd {value}: not open for writing")
    return fd


def _make_dir(path, flag):
    try:
        os.makedirs(path, 0o700, exist_ok=True)
    except OSError as e:
        raise OciError(f"--{flag} {path}: {os.strerror(e.errno).lower()}") from None


def _rootfs(data):
    rootfs = data.get("rootfs") or "rootfs"
    return os.path.realpath(os.path.join(data.get("bundle") or "/", rootfs))


def _clean(path):
    """An absolute path as the kernel shows a mountpoint (normpath keeps a
    leading //)."""
    return os.path.normpath("/" + path.lstrip("/"))


def _bind_mounts(cfg, bundle):
    """(destination, source) of the config's binds of host paths: criu's
    external mounts."""
    out = []
    for m in cfg.get("mounts") or ():
        if _is_bind(m):
            src = m.get("source") or ""
            out.append((_clean(m["destination"]), os.path.join(bundle, src)))
    return out


def _config_of(data):
    """The container's config.json, for its mounts and masked paths (runc
    keeps them in its state; we read the bundle create read).  A bundle
    gone or broken since: none, and criu names what it then cannot dump."""
    from ociruntime import config
    try:
        return config.load(data["bundle"])
    except OciError as e:
        log.warning(f"checkpoint: {e}: the config's bind mounts are not known to criu")
        return {}


# -- checkpoint ---------------------------------------------------------------

def checkpoint(root, cid, opts, criu_name="criu"):
    o = Options(opts, criu_name)
    c = Container.load(root, cid)
    exe = criu.require(criu_name)
    lock = state.lock_dir(c.dir)
    if lock is None:
        raise OciError(f'container "{cid}" does not exist')
    destroy = False
    try:
        status = c.status()
        if status not in ("running", "paused"):   # runc's words; criu takes a frozen one as it is
            raise ContainerNotRunning(f"container cannot be checkpointed in {status} state")
        _make_dir(o.image_path, "image-path")
        _make_dir(o.work_path, "work-path")
        action = "pre-dump" if o.pre_dump else "dump"
        argv = [exe, action, "-t", str(c.pid), "--root", _rootfs(c.data)] + o.common(action)
        argv += o.dump_only()
        if o.parent_path:   # criu takes it relative to the image directory, as runc passes it
            argv += ["--prev-images-dir", o.parent_path, "--track-mem"]
        elif o.pre_dump:
            argv.append("--track-mem")
        if o.leave_running and not o.pre_dump:
            argv.append("--leave-running")
        freezer = _freeze_cgroup(c.data)
        if freezer:   # freezes forks too, unlike ptrace's freeze
            argv += ["--freeze-cgroup", freezer]
        cfg = _config_of(c.data)
        for dest, _src in _bind_mounts(cfg, c.data["bundle"]):
            argv += ["--ext-mount-map", f"{dest}:{dest}"]
        for path in _masked_files(cfg, c.pid):
            argv += ["--ext-mount-map", f"{path}:/dev/null"]
        if not o.pre_dump:
            _save_descriptors(c.pid, o.image_path)
        log.debug(f"checkpoint {cid}: {' '.join(argv)}")
        criu.run(argv, o.log_path(action), f"checkpoint {cid}: criu {action} failed",
                 fds=() if o.status_fd is None else (o.status_fd,))
        destroy = not (o.leave_running or o.pre_dump)
    finally:
        os.close(lock)
    if destroy:   # criu has killed it: the container is gone, as with runc
        from ociruntime import container
        container.delete(root, cid, force=True)


def _masked_files(cfg, pid):
    """The masked paths that are files, masked with a bind of /dev/null:
    external mounts named /dev/null, as runc names them, restored as
    binds of the host's null device.  (Telling criu of any external mount
    also makes it read the host's mount table, where it then finds the
    host files the process may hold open: the /dev/null that conmon gives
    as stdin.)"""
    out = []
    for path in ((cfg.get("linux") or {}).get("maskedPaths") or ()):
        try:
            if not os.path.isdir(f"/proc/{pid}/root{path}") and \
                    os.path.exists(f"/proc/{pid}/root{path}"):
                out.append(_clean(path))
        except (OSError, ValueError):
            continue
    return out


def _freeze_cgroup(data):
    """The cgroup criu freezes the container with: v1's freezer, or the
    cgroup2 directory; None without one (criu then uses ptrace)."""
    cg = data.get("cgroups") or {}
    for mnt, path in cg.items():
        if "freezer" in os.path.basename(mnt):
            return path
    for mnt, path in cg.items():
        if os.path.exists(os.path.join(path, "cgroup.freeze")):
            return path
    return None


def _save_descriptors(pid, image_path):
    fds = []
    for fd in range(3):
        try:
            fds.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:
            fds.append("/dev/null")
    path = os.path.join(image_path, DESCRIPTORS)
    try:
        state.write_atomic(path, json.dumps(fds))
    except OSError as e:
        raise OciError(f"--image-path: write {path}: {os.strerror(e.errno).lower()}") from None


# -- restore ------------------------------------------------------------------

def restore(root, cid, bundle, opts, criu_name="criu", systemd_cgroup=False):
    """Restore the container cid from --image-path; with --detach return
    once it runs, else wait for it and return its exit code."""
    o = Options(opts, criu_name)
    detach = bool(opts.get("detach"))
    if not detach and not opts.get("no-subreaper"):
        from ociruntime import core
        core.set_child_subreaper()
    from ociruntime import container
    watched = set(container.FORWARDED) | {signal.SIGCHLD}
    if not detach:
        signal.pthread_sigmask(signal.SIG_BLOCK, watched)
    try:
        c = _restore(root, cid, bundle, o, opts, systemd_cgroup)
        if detach:
            return 0
        try:
            return container._wait_forwarding(c.pid, watched)
        finally:
            container.delete(root, cid, force=True)
    finally:
        if not detach:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, watched)


def _restore(root, cid, bundle, o, opts, systemd_cgroup):
    from ociruntime import config
    from ociruntime.container import _now_rfc3339, _undo_create
    from ociruntime.namespaces import Namespaces
    state.check_id(cid)
    pid_file = state.check_pid_file(opts["pid-file"]) if opts.get("pid-file") else None
    exe = criu.require(o.criu_name)
    if not os.path.isfile(os.path.join(o.image_path, "inventory.img")):
        raise OciError(f"--image-path {o.image_path}: no checkpoint there (no inventory.img)")
    bundle = os.path.realpath(bundle or ".")
    source = os.path.join(bundle, "config.json")
    cfg = config.load(bundle)
    linux = cfg.get("linux") or {}
    ns = Namespaces(linux.get("namespaces"), source)
    proc = cfg.get("process") or {}
    lsm_args = _lsm_args(opts)
    if proc.get("terminal"):
        raise OciError(f"{source}: process.terminal: restoring a container with a terminal "
                       "is not supported yet")
    rootfs = os.path.realpath(os.path.join(bundle, cfg["root"]["path"]))
    _make_dir(o.work_path, "work-path")

    cdir = state.make_container_dir(root, cid)
    lock = state.lock_dir(cdir)
    c = Container(root, cid, {
        "id": cid, "status": "creating", "bundle": bundle, "rootfs": cfg["root"]["path"],
        "created": _now_rfc3339(), "annotations": cfg.get("annotations") or {},
        "has_process": bool(proc), "hooks": cfg.get("hooks") or {},
        "namespaces": sorted(ns.new) + sorted(ns.joined),
        "seccomp": linux.get("seccomp"), "process": proc, "no_new_keyring": False,
        "rootless": False,
    })
    cg = criu_root = None
    pids = []
    try:
        cg = cgroups.Manager.for_config(linux.get("cgroupsPath"), cid, systemd=systemd_cgroup)
        c.data["cgroups"] = cg.paths
        if systemd_cgroup:
            c.data["cgroups_systemd"] = cg.state()
        else:
            c.data["cgroups_created"] = cg.planned()
        c.save()
        c.save_cgroups()
        cg.create()
        c.data["cgroups_created"] = cg.created
        c.save()
        cg.apply_config(cfg, source)
        pidfile = os.path.join(cdir, "criu.pid")
        criu_root = _bind_root(rootfs, os.path.join(cdir, "criu-root"),
                               bool(cfg["root"].get("readonly")))
        argv = [exe, "restore", "--root", criu_root, "--restore-sibling", "--restore-detached",
                "--pidfile", pidfile] + o.common("restore")
        argv += _cgroup_roots(cg)
        for dest, src in _bind_mounts(cfg, bundle):
            argv += ["--ext-mount-map", f"{dest}:{src}"]
        if linux.get("maskedPaths"):
            argv += ["--ext-mount-map", "/dev/null:/dev/null"]
        make_mountpoints(rootfs, cfg, bundle)
        argv += _inherit_stdio(o.image_path) + lsm_args
        log.debug(f"restore {cid}: {' '.join(argv)}")
        criu.run(argv, o.log_path("restore"), f"restore {cid}: criu restore failed",
                 before_exec=cg.join)
        pid = _read_pid(pidfile)
        pids.append(pid)
        os.unlink(pidfile)
        st = state.proc_stat(pid)
        if st is None:
            raise OciError(f"restore {cid}: the restored process exited at once")
        c.data.update(status="created", pid=pid, pid_start=st[1])
        c.save()
        if pid_file:
            state.write_pid_file(pid_file, pid)
        state.write_fast(c)
        return c
    except BaseException:
        _unbind_root(criu_root)
        criu_root = None
        if cg is not None:
            try:
                cg.kill_all(signal.SIGKILL)   # whatever criu had restored
            except OciError:
                pass
        _undo_create(c, cg, pids)
        raise
    finally:
        _unbind_root(criu_root)
        os.close(lock)


# mount(2) flags
MS_RDONLY, MS_REMOUNT, MS_BIND, MS_REC, MNT_DETACH = 1, 32, 4096, 16384, 2


def _libc():
    import ctypes
    return ctypes, ctypes.CDLL(None, use_errno=True)


def _bind_root(rootfs, target, readonly):
    """The rootfs bound at target, read-only if root.readonly: criu binds
    the restored root from it, and a bind keeps the source mount's
    read-only flag (given the rootfs itself, criu restores it writable)."""
    ctypes, libc = _libc()
    os.mkdir(target, 0o700)
    steps = [(rootfs, MS_BIND | MS_REC, "bind the rootfs")]
    if readonly:
        steps.append((None, MS_REMOUNT | MS_BIND | MS_RDONLY, "make it read-only (root.readonly)"))
    for src, flags, what in steps:
        if libc.mount(src and os.fsencode(src), os.fsencode(target), None, flags, None) != 0:
            err = ctypes.get_errno()
            _unbind_root(target)
            raise OciError(f"restore: {what} at {target}: {os.strerror(err).lower()}")
    return target


def _unbind_root(target):
    if target is None:
        return
    _ctypes, libc = _libc()
    libc.umount2(os.fsencode(target), MNT_DETACH)
    try:
        os.rmdir(target)
    except OSError:
        pass


def make_mountpoints(rootfs, cfg, bundle):
    """What create makes for the config's mounts, criu needs in a fresh
    rootfs (a copy of the image): each destination that is not inside a
    tmpfs of the config (criu restores those whole), a directory, or an
    empty file for a bind of a file (as runc's restore does).  Made one
    component at a time without following a symlink of the image: a
    destination through one is left to criu (which then says what is
    missing), never made outside the rootfs."""
    mounts = cfg.get("mounts") or ()
    tmpfs = [_clean(m["destination"]).rstrip("/") + "/" for m in mounts if m.get("type") == "tmpfs"]
    for m in mounts:
        dest = _clean(m["destination"])
        if any(dest.startswith(t) for t in tmpfs):
            continue
        src = os.path.join(bundle, m.get("source") or "")
        is_file = _is_bind(m) and os.path.exists(src) and not os.path.isdir(src)
        _make_in_root(rootfs, dest, is_file)


def _is_bind(m):
    opts = m.get("options") or ()
    return m.get("type") == "bind" or "bind" in opts or "rbind" in opts


def _make_in_root(rootfs, dest, is_file):
    parts = [p for p in dest.split("/") if p and p != "."]
    if not parts or ".." in parts:
        return
    fd = os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for i, name in enumerate(parts):
            last = i == len(parts) - 1
            try:
                nfd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
            except FileNotFoundError:
                try:
                    if last and is_file:
                        os.close(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                                         | os.O_CLOEXEC, 0o644, dir_fd=fd))
                    else:
                        os.mkdir(name, 0o755, dir_fd=fd)
                    nfd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
                except OSError:
                    return   # read-only or in the way: criu will say
            except OSError:
                return
            os.close(fd)
            fd = nfd
            if not last and not _is_dir_fd(fd):
                return   # a symlink or a file of the image: not ours to go through
    finally:
        os.close(fd)


def _is_dir_fd(fd):
    import stat
    return stat.S_ISDIR(os.fstat(fd).st_mode)


def _lsm_args(opts):
    """runc's --lsm-profile TYPE:NAME and --lsm-mount-context, for criu;
    refused where that LSM is not enabled, as create refuses a label."""
    from ociruntime import lsm
    args = []
    profile = opts.get("lsm-profile")
    if profile:
        kind, _, name = profile.partition(":")
        enabled = {"apparmor": lsm.apparmor_enabled, "selinux": lsm.selinux_enabled}.get(kind)
        if enabled is None or not name:
            raise OciError(f"--lsm-profile {profile!r}: want apparmor:NAME or selinux:LABEL")
        if not enabled():
            raise OciError(f"--lsm-profile {profile!r}: {kind} is not enabled on this host")
        args += ["--lsm-profile", profile]
    context = opts.get("lsm-mount-context")
    if context:
        if not lsm.selinux_enabled():
            raise OciError("--lsm-mount-context: SELinux is not enabled on this host")
        args += ["--lsm-mount-context", context]
    return args


def _cgroup_roots(cg):
    """criu's --cgroup-root for each hierarchy: the new container's
    directory replaces the checkpointed one."""
    args = []
    layout = cg.layout
    for mnt, path in cg.paths.items():
        rel = "/" + os.path.relpath(path, mnt)
        if mnt == layout.v2:
            args += ["--cgroup-root", rel]
        else:
            args += ["--cgroup-root", f"{os.path.basename(mnt)}:{rel}"]
    return args


def _inherit_stdio(image_path):
    """The checkpointed process's stdin, stdout and stderr that were pipes
    become ours (runc's descriptors.json)."""
    try:
        with open(os.path.join(image_path, DESCRIPTORS)) as f:
            fds = json.load(f)
    except (OSError, ValueError):
        return []
    args = []
    if isinstance(fds, list):
        for i, link in enumerate(fds[:3]):
            if isinstance(link, str) and link.startswith("pipe:"):
                args += ["--inherit-fd", f"fd[{i}]:{link}"]
    return args


def _read_pid(path):
    try:
        with open(path) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        raise OciError(f"restore: criu wrote no pid to {path}") from None
