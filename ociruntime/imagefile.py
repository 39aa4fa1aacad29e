"""Reading a file of the image, as host root, without trusting the image.

The runtime reads one file of the container's filesystem itself:
/etc/passwd, for HOME (process.home_of).  The image, or the running
container before an `exec`, controls that path entirely: it may be a
symlink meant to reach the host, a terminal or /dev/kmsg, a FIFO, a
multi-GB file, or a link into the container's /proc.  So:

* the path is resolved inside the root, as openat2(RESOLVE_IN_ROOT) does
  (which Python lacks): one component at a time with O_PATH|O_NOFOLLOW,
  ".." never above the root, a symlink's text taken as a path inside the
  root (a magic link of /proc is only text here);
* the object is looked at through that O_PATH fd, which opens nothing:
  only a regular file goes on, never a device or FIFO (no open of them,
  so no side effect, no block, no device cgroup to get past);
* a file on a pseudo filesystem (procfs, sysfs...) is refused: its
  "regular files" are the kernel's (kcore, kmsg) or a process's;
* it is then opened O_NONBLOCK|O_NOCTTY through /proc/self/fd (the very
  inode checked), and at most `limit` bytes are read.

Not covered: a FUSE mount the container made can still block a lookup
(runc, reading inside the container, blocks there too).
"""
import os
from stat import S_ISLNK, S_ISREG

MAX_LINKS = 40   # the kernel's MAXSYMLINKS
O_PATH_NOFOLLOW = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC

# Filesystems whose files are the kernel's, not the image's.  fuse too: a
# container's FUSE daemon could block every read.
PSEUDO_FS = {"proc", "sysfs", "debugfs", "tracefs", "securityfs", "cgroup", "cgroup2",
             "configfs", "fusectl", "bpf", "pstore", "efivarfs", "devpts", "mqueue",
             "binfmt_misc", "autofs", "rpc_pipefs", "nsfs", "selinuxfs", "hugetlbfs",
             "devtmpfs", "fuse", "fuseblk"}


def read(root, path, limit, mountinfo="/proc/self/mountinfo"):
    """At most `limit` bytes of the regular file `path` inside the
    directory `root`; OSError when it is missing, not a regular file,
    on a pseudo filesystem, or cannot be resolved inside the root."""
    root_fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fd = open_in_root(root_fd, path)
        try:
            st = os.fstat(fd)
            if not S_ISREG(st.st_mode):
                raise OSError(22, f"{path}: not a regular file")
            if st.st_dev != os.fstat(root_fd).st_dev and _is_pseudo(st.st_dev, mountinfo):
                raise OSError(22, f"{path}: on a pseudo filesystem")
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


def open_in_root(root_fd, path):
    """An O_PATH fd of `path` resolved inside root_fd (RESOLVE_IN_ROOT
    semantics).  The directories walked are held as a stack of fds: ".."
    pops it, so it never reaches above the root, whatever is renamed
    meanwhile."""
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
            mode = os.fstat(fd).st_mode
            if S_ISLNK(mode):
                links += 1
                try:
                    target = os.readlink(name, dir_fd=parent)
                finally:
                    os.close(fd)
                if links > MAX_LINKS:
                    raise OSError(40, f"{path}: too many levels of symbolic links")
                if target.startswith("/"):   # from the root
                    while stack:
                        os.close(stack.pop())
                todo.extend(target.split("/")[::-1])
                continue
            stack.append(fd)   # not a directory: the next openat says ENOTDIR
        if not stack:   # the root itself
            return os.dup(root_fd)
        return stack.pop()
    finally:
        for fd in stack:
            os.close(fd)


def _is_pseudo(dev, mountinfo):
    """Whether device `dev` is a pseudo filesystem's, per a mountinfo file
    ("major:minor" is its third field, the type follows " - ").  Not
    there (a btrfs subvolume's own device, say): a real filesystem."""
    want = f"{os.major(dev)}:{os.minor(dev)}".encode()
    with open(mountinfo, "rb") as f:
        for line in f:
            fields = line.split(b" ", 3)
            if len(fields) > 3 and fields[2] == want:
                fstype = line.partition(b" - ")[2].split(b" ", 1)[0].decode(errors="replace")
                return fstype in PSEUDO_FS or fstype.startswith("fuse.")
    return False
