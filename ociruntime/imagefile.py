"""Reading a file of the image, as host root, without trusting the image.

The runtime reads one file of the container's filesystem itself:
/etc/passwd, for HOME (process.home_of).  The image, or the running
container before an `exec`, controls that path entirely: it may be a
symlink meant to reach the host, a terminal or /dev/kmsg, a FIFO, a
multi-GB file, a link into the container's /proc, or sit on a FUSE
mount whose daemon (the container's) never answers.  So:

* the path is resolved inside the root, as openat2(RESOLVE_IN_ROOT) does
  (which Python lacks): one component at a time with O_PATH|O_NOFOLLOW,
  ".." never above the root, a symlink's text taken as a path inside the
  root (a magic link of /proc is only text here);
* each step's mount is found from /proc/self/fdinfo (no request to the
  filesystem), and the walk stops at a mount other than the root's that
  is a pseudo filesystem (its "regular files" are the kernel's: kcore,
  kmsg) or FUSE (a daemon that may never answer), before anything is
  looked up or stat'ed on it;
* the object is looked at through the O_PATH fd, which opens nothing:
  only a regular file goes on, never a device or FIFO (no open of them,
  so no side effect, no block, no device cgroup to get past);
* it is then opened O_NONBLOCK|O_NOCTTY through /proc/self/fd (the very
  inode checked), and at most `limit` bytes are read.
"""
import os
from stat import S_ISLNK, S_ISREG

MAX_LINKS = 40   # the kernel's MAXSYMLINKS
O_PATH_NOFOLLOW = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC

# Filesystems whose files are the kernel's (or a daemon's), not the image's.
REFUSED_FS = {"proc", "sysfs", "debugfs", "tracefs", "securityfs", "cgroup", "cgroup2",
              "configfs", "fusectl", "bpf", "pstore", "efivarfs", "devpts", "mqueue",
              "binfmt_misc", "autofs", "rpc_pipefs", "nsfs", "selinuxfs", "hugetlbfs",
              "devtmpfs", "fuse", "fuseblk"}


def read(root, path, limit, mountinfo="/proc/self/mountinfo"):
    """At most `limit` bytes of the regular file `path` inside the
    directory `root`.  mountinfo: the mount table the root is in (for a
    container's, /proc/<its pid>/mountinfo).  OSError when the file is
    missing, not a regular file, on a refused filesystem, or cannot be
    resolved inside the root."""
    root_fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fd = open_in_root(root_fd, path, _Mounts(root_fd, mountinfo))
        try:
            if not S_ISREG(os.fstat(fd).st_mode):
                raise OSError(22, f"{path}: not a regular file")
            # The inode checked above, opened now for reading.
            rfd = os.open(f"/proc/self/fd/{fd}", os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
        finally:
            os.close(fd)
    finally:
        os.close(root_fd)
    try:
        chunks, left = [], limit
        while left > 0:
            data = os.read(rfd, min(left, 1 << 20))
            if not data:
                break
            chunks.append(data)
            left -= len(data)
        return b"".join(chunks)
    finally:
        os.close(rfd)


def open_in_root(root_fd, path, mounts):
    """An O_PATH fd of `path` resolved inside root_fd (RESOLVE_IN_ROOT
    semantics).  The directories walked are held as a stack of fds: ".."
    pops it, so it never reaches above the root, whatever is renamed
    meanwhile.  mounts.check(fd) vets each step before it is used."""
    todo = path.split("/")[::-1]   # components, next one last
    stack = []                     # fds of the directories below root_fd
    links = 0
    try:
        while todo:
            name = todo.pop()
            if name in ("", "."):
                continue
            if name == "..":
                if stack:
                    os.close(stack.pop())
                continue
            parent = stack[-1] if stack else root_fd
            fd = os.open(name, O_PATH_NOFOLLOW, dir_fd=parent)
            stack.append(fd)   # closed with the others on an error
            mounts.check(fd, path)
            if S_ISLNK(os.fstat(fd).st_mode):
                os.close(stack.pop())
                links += 1
                if links > MAX_LINKS:
                    raise OSError(40, f"{path}: too many levels of symbolic links")
                target = os.readlink(name, dir_fd=parent)
                if target.startswith("/"):   # from the root
                    while stack:
                        os.close(stack.pop())
                todo.extend(target.split("/")[::-1])
            # else a directory (or the last step): a file there makes the
            # next openat fail with ENOTDIR
        return stack.pop() if stack else os.dup(root_fd)
    finally:
        for fd in stack:
            os.close(fd)


class _Mounts:
    """Which mounts a walk may use: the root's, and any other that is
    not in REFUSED_FS.  An fd's mount id comes from /proc/self/fdinfo,
    its type from the mount table (read once, when a walk first leaves
    the root's mount)."""

    def __init__(self, root_fd, mountinfo):
        self.mountinfo = mountinfo
        self.ok = {_mount_id(root_fd)}
        self.types = None

    def check(self, fd, path):
        mnt = _mount_id(fd)
        if mnt in self.ok:
            return
        if self.types is None:
            self.types = _mount_types(self.mountinfo)
        fstype = self.types.get(mnt)
        if fstype is None:   # unmounted meanwhile, or not in that table
            raise OSError(18, f"{path}: through a mount not in {self.mountinfo}")
        if fstype in REFUSED_FS or fstype.startswith("fuse."):
            raise OSError(18, f"{path}: through a {fstype} mount")
        self.ok.add(mnt)


def _mount_id(fd):
    info = os.open(f"/proc/self/fdinfo/{fd}", os.O_RDONLY | os.O_CLOEXEC)
    try:
        data = os.read(info, 4096)
    finally:
        os.close(info)
    i = data.find(b"mnt_id:")
    if i < 0:   # a kernel before 3.15: no way to tell, so no walk
        raise OSError(95, "/proc/self/fdinfo has no mnt_id")
    return int(data[i + len(b"mnt_id:"):].split(b"\n", 1)[0])


def _mount_types(mountinfo):
    """{mount id: filesystem type} of a mountinfo file (the id is the
    first field; the type follows the " - " separator)."""
    types = {}
    with open(mountinfo, "rb") as f:
        for line in f:
            mnt = line.partition(b" ")[0]
            fstype = line.partition(b" - ")[2].split(b" ", 1)[0]
            if mnt.isdigit():
                types[int(mnt)] = fstype.decode(errors="replace")
    return types
