/* Mounting by fd, never twice by path (CVE-2021-30465, the race form).
 *
 * A destination is resolved once, in the root (open_in_root); the mount
 * is made onto that fd; every later change -- the bind's own flags, its
 * propagation, the recursive attributes, tmpcopyup -- goes to the mount
 * that was made, through an fd of it, and never to whatever the path
 * names a moment later (a volume shared with another container can swap
 * a component for a symlink at any time).  Binds are detached copies
 * (open_tree(OPEN_TREE_CLONE)) that get their flags before they are
 * attached with move_mount.  After attaching, the destination is resolved
 * again and must lead to the same mount: otherwise it changed while we
 * mounted, and create is refused (runc: "possibly malicious path").
 *
 * Also here: the sources of bind mounts for a container in a user
 * namespace, which its root may not reach (a 0700 host directory).  As
 * runc does, they are opened with the runtime's credentials inside the
 * container's new mount namespace: ociruntime-init, once it has cloned the
 * init, joins that namespace, opens each source O_PATH and sends the fds
 * over a socket; the init copies them with open_tree.  Being mounts of
 * the container's namespace (a copy of the host's), they keep the locks
 * the kernel put on them: a read-only host mount stays read-only, and a
 * submount cannot be removed to show what the host covered. */
#include "internal.h"
#include <fcntl.h>
#include <linux/openat2.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#define BIND_ATTRS (MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC | \
                    MOUNT_ATTR_NODIRATIME | MOUNT_ATTR_NOSYMFOLLOW)

/* The sources to open (OP_OPEN_SOURCE, by plan index), the socket they
 * travel on ([0] ociruntime-init's end, [1] the init's), and the fds the
 * init has received so far. */
static const char **sources;
static size_t n_sources;
static int source_sock[2] = {-1, -1};
static int *received;
static size_t n_received;

/* (dest, fd) of every mount made before pivot_root, newest last. */
struct handle {
    const char *dest;   /* points into the plan, which outlives it */
    int fd;
};
static struct handle *handles;
static size_t n_handles, cap_handles;

static int setattr_fd(int fd, unsigned flags, uint64_t set, uint64_t clr, uint64_t prop)
{
    struct mount_attr a = {.attr_set = set, .attr_clr = clr, .propagation = prop};
    return (int)syscall(SYS_mount_setattr, fd, "", flags | AT_EMPTY_PATH, &a, sizeof a);
}

/* ociruntime-init, before the clone: one more source to send. */
void add_source(struct init_ctx *c, const char *src)
{
    const char **more = realloc(sources, (n_sources + 1) * sizeof *sources);
    if (!more)
        die(c, "bind mount source %s: remember it", src);
    sources = more;
    sources[n_sources++] = src;
}

/* Before the clone: the socket, if there is anything to send. */
void sources_socket(struct init_ctx *c)
{
    if (n_sources && socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, source_sock) < 0)
        die(c, "make the socket for the bind mount sources");
}

/* In the child: only the receiving end. */
void sources_child(void)
{
    if (source_sock[0] >= 0)
        close(source_sock[0]);
    source_sock[0] = -1;
}

/* Sources go in messages of up to CHUNK: their errnos (0: opened), and
 * the fds of those opened.  Few messages, so that ociruntime-init never
 * waits for room in the socket (the init reads only after the runtime's
 * go, which waits for ociruntime-init to finish). */
#define CHUNK 64
#define TAKEN INT32_MIN   /* in received[]: handed out already */

static void send_chunk(int sock, int *errs, size_t n, int *fds, size_t nfds)
{
    union {
        char buf[CMSG_SPACE(CHUNK * sizeof(int))];
        struct cmsghdr align;
    } u;
    memset(&u, 0, sizeof u);
    struct iovec iov = {.iov_base = errs, .iov_len = n * sizeof *errs};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
    if (nfds) {
        m.msg_control = u.buf;
        m.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
        struct cmsghdr *h = CMSG_FIRSTHDR(&m);
        h->cmsg_level = SOL_SOCKET;
        h->cmsg_type = SCM_RIGHTS;
        h->cmsg_len = CMSG_LEN(nfds * sizeof(int));
        memcpy(CMSG_DATA(h), fds, nfds * sizeof(int));
    }
    /* A failure here is the init's to report: it finds the socket closed. */
    while (sendmsg(sock, &m, MSG_NOSIGNAL) < 0 && errno == EINTR)
        ;
}

/* ociruntime-init, after cloning the init (pid): join its mount namespace
 * and send it each source, opened there with our credentials.  A source
 * that cannot be opened is sent as its errno: the init reports it. */
void send_sources(pid_t pid)
{
    if (source_sock[0] < 0)
        return;
    close(source_sock[1]);
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/ns/mnt", (int)pid);
    int ns = open(path, O_RDONLY | O_CLOEXEC), err = 0;
    if (ns < 0 || setns(ns, CLONE_NEWNS) < 0)
        err = errno;
    for (size_t i = 0; i < n_sources; i += CHUNK) {
        int errs[CHUNK], fds[CHUNK];
        size_t n = n_sources - i < CHUNK ? n_sources - i : CHUNK, nfds = 0;
        for (size_t j = 0; j < n; j++) {
            int fd = err ? -1 : open(sources[i + j], O_PATH | O_CLOEXEC);
            errs[j] = fd < 0 ? (err ? err : errno) : 0;
            if (fd >= 0)
                fds[nfds++] = fd;
        }
        send_chunk(source_sock[0], errs, n, fds, nfds);
        for (size_t j = 0; j < nfds; j++)
            close(fds[j]);
    }
    close(source_sock[0]);
}

/* The init: the next message, into received[] (an fd, or -errno). */
static void receive_chunk(struct init_ctx *c, const char *src)
{
    int errs[CHUNK];
    union {
        char buf[CMSG_SPACE(CHUNK * sizeof(int))];
        struct cmsghdr align;
    } u;
    struct iovec iov = {.iov_base = errs, .iov_len = sizeof errs};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                       .msg_controllen = sizeof u.buf};
    ssize_t r;
    do {
        r = recvmsg(source_sock[1], &m, MSG_CMSG_CLOEXEC);
    } while (r < 0 && errno == EINTR);
    if (r < 0)
        die(c, "bind mount source %s: receive it from the runtime", src);
    if (r == 0 || r % sizeof(int) || (m.msg_flags & (MSG_TRUNC | MSG_CTRUNC)))
        die_errno(c, EIO, "bind mount source %s: the runtime did not send it whole", src);
    size_t n = (size_t)r / sizeof(int), nfds = 0, next = 0;
    int fds[CHUNK];
    struct cmsghdr *h = CMSG_FIRSTHDR(&m);
    if (h && h->cmsg_level == SOL_SOCKET && h->cmsg_type == SCM_RIGHTS) {
        nfds = (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        memcpy(fds, CMSG_DATA(h), nfds * sizeof(int));
    }
    int *more = realloc(received, (n_received + n) * sizeof *received);
    if (!more)
        die(c, "bind mount source %s: remember it", src);
    received = more;
    for (size_t j = 0; j < n; j++) {
        if (!errs[j] && next == nfds)
            die_errno(c, EIO, "bind mount source %s: the runtime sent too few fds", src);
        received[n_received++] = errs[j] ? -errs[j] : fds[next++];
    }
}

/* The init: the source of plan index `index`, as ociruntime-init sent it. */
static int receive_source(struct init_ctx *c, const char *src, int index)
{
    while (n_received <= (size_t)index)
        receive_chunk(c, src);
    int fd = received[index];
    received[index] = TAKEN;
    if (fd == TAKEN)
        die_errno(c, EINVAL, "plan: bind mount source %s: index %d used twice", src, index);
    if (fd < 0)
        die_errno(c, -fd, "bind mount source %s: open it (with the runtime's credentials)", src);
    return fd;
}

/* A detached copy of src to bind, made in the init's mount namespace: of
 * the source ociruntime-init sent (index >= 0), or looked up here. */
int bind_tree(struct init_ctx *c, const char *src, int index, int recursive)
{
    unsigned flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (recursive ? AT_RECURSIVE : 0);
    if (index >= 0) {
        if ((size_t)index >= n_sources)
            die_errno(c, EINVAL, "plan: bind mount source %s: no source %d", src, index);
        int fd = receive_source(c, src, index);
        int tree = (int)syscall(SYS_open_tree, fd, "", flags | AT_EMPTY_PATH);
        if (tree < 0)
            die(c, "bind mount %s: copy the source", src);
        close(fd);
        return tree;
    }
    int fd = (int)syscall(SYS_open_tree, AT_FDCWD, src, flags);
    if (fd < 0)
        die(c, "bind mount %s: open the source", src);
    return fd;
}

/* What mount(MS_REMOUNT|MS_BIND|flags) does, on the mount open at fd
 * (its top mount only): the per-mount flags become those asked for, and
 * the atime setting too if one is named.  A flag locked by another user
 * namespace stays as it is (clearing it would be EPERM). */
void set_bind_flags(struct init_ctx *c, int fd, unsigned long flags, const char *dest)
{
    uint64_t set = 0, clr;
    if (flags & MS_RDONLY) set |= MOUNT_ATTR_RDONLY;
    if (flags & MS_NOSUID) set |= MOUNT_ATTR_NOSUID;
    if (flags & MS_NODEV) set |= MOUNT_ATTR_NODEV;
    if (flags & MS_NOEXEC) set |= MOUNT_ATTR_NOEXEC;
    if (flags & MS_NODIRATIME) set |= MOUNT_ATTR_NODIRATIME;
    if (flags & MS_NOSYMFOLLOW) set |= MOUNT_ATTR_NOSYMFOLLOW;
    clr = BIND_ATTRS & ~set;
    /* mount(2): strictatime wins, then noatime; relatime is the default
     * unless no atime option is named (a remount keeps the old one). */
    if (flags & (MS_STRICTATIME | MS_NOATIME | MS_RELATIME | MS_NODIRATIME)) {
        clr |= MOUNT_ATTR__ATIME;
        set |= flags & MS_STRICTATIME ? MOUNT_ATTR_STRICTATIME
             : flags & MS_NOATIME ? MOUNT_ATTR_NOATIME : MOUNT_ATTR_RELATIME;
    }
    if (setattr_fd(fd, 0, set, clr, 0) == 0)
        return;
    if (errno != EPERM)
        die(c, "mount %s: set its options", dest);
    struct statvfs sv;
    if (fstatvfs(fd, &sv) < 0)
        die(c, "mount %s: read its options", dest);
    uint64_t now = (sv.f_flag & ST_RDONLY ? MOUNT_ATTR_RDONLY : 0) |
                   (sv.f_flag & ST_NOSUID ? MOUNT_ATTR_NOSUID : 0) |
                   (sv.f_flag & ST_NODEV ? MOUNT_ATTR_NODEV : 0) |
                   (sv.f_flag & ST_NOEXEC ? MOUNT_ATTR_NOEXEC : 0) |
                   (sv.f_flag & ST_NODIRATIME ? MOUNT_ATTR_NODIRATIME : 0);
    clr &= ~now;   /* an atime asked for stays asked for: locked, it fails */
    if (setattr_fd(fd, 0, set, clr, 0) < 0)
        die(c, "mount %s: set its options", dest);
}

/* prop: MS_SHARED/MS_SLAVE/MS_PRIVATE/MS_UNBINDABLE, MS_REC for all of it. */
void set_propagation(struct init_ctx *c, int fd, unsigned long prop, const char *dest)
{
    uint64_t p = prop & (MS_SHARED | MS_SLAVE | MS_PRIVATE | MS_UNBINDABLE);
    if (p && setattr_fd(fd, prop & MS_REC ? AT_RECURSIVE : 0, 0, 0, p) < 0)
        die(c, "set propagation of %s", dest);
}

static uint64_t mount_id(struct init_ctx *c, int fd, const char *dest)
{
    struct statx st;
    if (statx(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, STATX_MNT_ID, &st) < 0)
        die(c, "mount %s: statx", dest);
    if (!(st.stx_mask & STATX_MNT_ID))
        die_errno(c, ENOSYS, "mount %s: the kernel gives no mount id", dest);
    return st.stx_mnt_id;
}

/* The mount open at fd must be what dest, resolved again in root (the
 * rootfs before pivot_root, "/" after), leads to now. */
void verify_mounted(struct init_ctx *c, int root, int fd, const char *dest)
{
    struct open_how how = {
        .flags = O_PATH | O_CLOEXEC,
        .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
    };
    if (!strcmp(dest, "/"))   /* the root itself is never looked up through */
        return;
    int now = (int)syscall(SYS_openat2, root, dest, &how, sizeof how);
    if (now < 0)
        die(c, "mount %s: look it up again after mounting", dest);
    int same = mount_id(c, now, dest) == mount_id(c, fd, dest);
    close(now);
    if (!same)
        die_errno(c, 0, "mount %s: the path changed while it was mounted "
                        "(possibly malicious path; refused)", dest);
}

/* Attaches the detached tree onto the destination open at target. */
void attach_tree(struct init_ctx *c, int tree, int target, const char *dest)
{
    if (syscall(SYS_move_mount, tree, "", target, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
        die(c, "mount %s: attach it", dest);
}

/* Keeps fd (of the mount made at dest) for the steps that follow. */
void remember_mount(struct init_ctx *c, const char *dest, int fd)
{
    if (n_handles == cap_handles) {
        size_t cap = cap_handles ? cap_handles * 2 : 16;
        struct handle *more = realloc(handles, cap * sizeof *handles);
        if (!more)
            die(c, "mount %s: remember it", dest);
        handles = more;
        cap_handles = cap;
    }
    handles[n_handles].dest = dest;
    handles[n_handles++].fd = fd;
}

/* The newest mount made at dest, or -1. */
int mount_at(const char *dest)
{
    for (size_t i = n_handles; i-- > 0;)
        if (!strcmp(handles[i].dest, dest))
            return handles[i].fd;
    return -1;
}

/* At pivot_root: the handles are done with (the process must not get them). */
void forget_mounts(void)
{
    for (size_t i = 0; i < n_handles; i++)
        close(handles[i].fd);
    n_handles = 0;
    for (size_t i = 0; i < n_received; i++)
        if (received[i] >= 0)
            close(received[i]);   /* sent, never used */
    n_received = 0;
    if (source_sock[1] >= 0)
        close(source_sock[1]);
    source_sock[1] = -1;
}

static void id_of(struct init_ctx *c, int fd, const char *name, const char *dest, struct statx *st)
{
    if (statx(fd, name, AT_SYMLINK_NOFOLLOW | (*name ? 0 : AT_EMPTY_PATH),
              STATX_INO | STATX_MNT_ID, st) < 0)
        die(c, "mount %s: statx", dest);
}

/* After mount(2) onto the destination open at under (a filesystem, not a
 * bind: there is no detached copy to hold), an fd of the new mount: dest
 * looked up again must be a mount root other than under's mount, with the
 * same parent directory.  Anything else means the path changed. */
int reopen_new_mount(struct init_ctx *c, int under, const char *dest)
{
    int fd = open_in_root(c, dest, -1);
    if (fd < 0)
        die(c, "mount %s: look it up again after mounting", dest);
    struct statx top, below, top_up, below_up;
    id_of(c, fd, "", dest, &top);
    id_of(c, under, "", dest, &below);
    id_of(c, fd, "..", dest, &top_up);
    id_of(c, under, "..", dest, &below_up);
    if (!(top.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) || !(top.stx_attributes & STATX_ATTR_MOUNT_ROOT) ||
        top.stx_mnt_id == below.stx_mnt_id || top_up.stx_mnt_id != below_up.stx_mnt_id ||
        top_up.stx_ino != below_up.stx_ino || top_up.stx_dev_major != below_up.stx_dev_major ||
        top_up.stx_dev_minor != below_up.stx_dev_minor)
        die_errno(c, 0, "mount %s: the path changed while it was mounted "
                        "(possibly malicious path; refused)", dest);
    return fd;
}
