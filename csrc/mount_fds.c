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
 * Also here: the sources of bind mounts opened before the clone, with the
 * runtime's credentials (OP_OPEN_TREE): a container in a user namespace
 * may not be able to reach them (a 0700 host directory). */
#include "internal.h"
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#define BIND_ATTRS (MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC | \
                    MOUNT_ATTR_NODIRATIME | MOUNT_ATTR_NOSYMFOLLOW)

/* Source trees opened before the clone, by plan index; inherited. */
static int *trees;
static size_t n_trees;

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

/* args: source, recursive, propagation (the rootfs's, MS_REC for all of
 * it).  Runs in ociruntime-init before the clone: the host's mount
 * namespace (the container's starts as its copy) and credentials.  The
 * copy is made like the init's own mounts (slave or private), so that
 * nothing mounted in it reaches the host's peer group. */
void do_open_tree(struct init_ctx *c, const char *src, int recursive, unsigned long prop)
{
    unsigned flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (recursive ? AT_RECURSIVE : 0);
    int fd = (int)syscall(SYS_open_tree, AT_FDCWD, src, flags);
    if (fd < 0)
        die(c, "bind mount source %s: open it before entering the user namespace", src);
    uint64_t p = prop & (MS_SHARED | MS_SLAVE | MS_PRIVATE | MS_UNBINDABLE);
    if (p && setattr_fd(fd, prop & MS_REC ? AT_RECURSIVE : 0, 0, 0, p) < 0)
        die(c, "bind mount source %s: set its propagation", src);
    int *more = realloc(trees, (n_trees + 1) * sizeof *trees);
    if (!more)
        die(c, "bind mount source %s: remember it", src);
    trees = more;
    trees[n_trees++] = fd;
}

/* A detached copy of src to bind: opened before the clone (index >= 0),
 * or here, in the init's mount namespace. */
int bind_tree(struct init_ctx *c, const char *src, int index, int recursive)
{
    if (index >= 0) {
        if ((size_t)index >= n_trees || trees[index] < 0)
            die_errno(c, EINVAL, "plan: bind mount source %s: no opened tree %d", src, index);
        int fd = trees[index];
        trees[index] = -1;
        return fd;
    }
    unsigned flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (recursive ? AT_RECURSIVE : 0);
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
    clr &= ~(now | MOUNT_ATTR__ATIME);
    set &= ~MOUNT_ATTR__ATIME;
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
    for (size_t i = 0; i < n_trees; i++)
        if (trees[i] >= 0)
            close(trees[i]);
    n_trees = 0;
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
