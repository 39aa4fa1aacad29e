/* Mounts beyond mount(2), in the init: recursive attributes (mount_setattr
 * with AT_RECURSIVE) and idmapped mounts: a detached tree the runtime made
 * (idmap.c: open_tree + mount_setattr(MOUNT_ATTR_IDMAP)), moved into place
 * here with move_mount.  (tmpcopyup lives in mounts.c; the fds of the
 * mounts made, through which attributes are set, in mount_fds.c.) */
#include "internal.h"
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <unistd.h>

static int resolve_in(int root_fd, const char *path, int flags)
{
    struct open_how how = {
        .flags = (uint64_t)(flags | O_CLOEXEC),
        .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
    };
    return (int)syscall(SYS_openat2, root_fd, path, &how, sizeof how);
}

/* dest inside the rootfs before pivot_root, as a plain path after it. */
static int open_dest(struct init_ctx *c, const char *dest, int flags)
{
    if (c->root_fd >= 0)
        return resolve_in(c->root_fd, dest, flags);
    return open(dest, flags | O_CLOEXEC);
}

/* args: dest, attr_set, attr_clr, recursive.  Before pivot_root dest is
 * a mount the plan just made: the change goes to that mount, through the
 * fd kept of it, never to what the path names now (mount_fds.c). */
void do_mount_setattr(struct init_ctx *c, const char *dest, uint64_t set, uint64_t clr, int recursive)
{
    int made = c->root_fd >= 0 ? mount_at(dest) : -1;
    int fd = made >= 0 ? dup(made) : open_dest(c, dest, O_PATH);
    if (fd < 0)
        die(c, "mount %s: open for its recursive options", dest);
    struct mount_attr attr = {.attr_set = set, .attr_clr = clr};
    if (syscall(SYS_mount_setattr, fd, "", (recursive ? AT_RECURSIVE : 0) | AT_EMPTY_PATH, &attr,
                sizeof attr) < 0)
        die(c, "mount_setattr %s (set 0x%llx clear 0x%llx%s)", dest, (unsigned long long)set,
            (unsigned long long)clr, recursive ? ", recursive" : "");
    close(fd);
}

/* args: fd of a detached mount (inherited from the runtime), dest, kind,
 * propagation.  The runtime copied it in the host's mount namespace: it
 * is made slave (or private) like the init's own mounts, before it is
 * attached, so that nothing mounted in it reaches the host's peers. */
void do_move_mount(struct init_ctx *c, int tree, const char *dest, int kind, unsigned long prop)
{
    set_propagation(c, tree, prop, dest);
    int fd = open_in_root(c, dest, kind);
    if (fd < 0)
        die(c, "mount %s: make the mount point", dest);
    if (syscall(SYS_move_mount, tree, "", fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
        die(c, "move the idmapped mount to %s", dest);
    close(fd);
    verify_mounted(c, c->root_fd, tree, dest);
    remember_mount(c, dest, tree);   /* closed at pivot_root */
}
