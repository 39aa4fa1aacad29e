/* Mounts beyond mount(2): recursive attributes (mount_setattr with
 * AT_RECURSIVE), idmapped mounts (a detached tree the runtime made with
 * open_tree + mount_setattr(MOUNT_ATTR_IDMAP), moved into place here with
 * move_mount).  (tmpcopyup lives in mounts.c.) */
#include "internal.h"
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

pid_t clone_fork(unsigned long flags);

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

static int setattr_fd(int fd, unsigned flags, uint64_t set, uint64_t clr, uint64_t prop, int userns)
{
    struct mount_attr attr = {.attr_set = set, .attr_clr = clr, .propagation = prop,
                              .userns_fd = (uint64_t)(userns < 0 ? 0 : userns)};
    return (int)syscall(SYS_mount_setattr, fd, "", flags | AT_EMPTY_PATH, &attr, sizeof attr);
}

/* args: dest, attr_set, attr_clr, recursive */
void do_mount_setattr(struct init_ctx *c, const char *dest, uint64_t set, uint64_t clr, int recursive)
{
    int fd = open_dest(c, dest, O_PATH);
    if (fd < 0)
        die(c, "mount %s: open for its recursive options", dest);
    if (setattr_fd(fd, recursive ? AT_RECURSIVE : 0, set, clr, 0, -1) < 0)
        die(c, "mount_setattr %s (set 0x%llx clear 0x%llx%s)", dest, (unsigned long long)set,
            (unsigned long long)clr, recursive ? ", recursive" : "");
    close(fd);
}

/* args: fd of a detached mount (inherited from the runtime), dest, kind */
void do_move_mount(struct init_ctx *c, int tree, const char *dest, int kind)
{
    int fd = open_in_root(c, dest, kind);
    if (fd < 0)
        die(c, "mount %s: make the mount point", dest);
    if (syscall(SYS_move_mount, tree, "", fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
        die(c, "move the idmapped mount to %s", dest);
    close(fd);
    close(tree);
}

/* -- for the runtime (cffi) ---------------------------------------------- */

static int write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    size_t len = strlen(text);
    ssize_t w = write(fd, text, len);
    int e = w < 0 ? errno : EIO;
    close(fd);
    return (size_t)w == len ? 0 : -e;
}

int oci_userns_fd(const char *uid_map, const char *gid_map)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return -errno;
    pid_t pid = clone_fork(CLONE_NEWUSER);
    if (pid < 0) {
        int e = errno;
        close(p[0]);
        close(p[1]);
        return -e;
    }
    if (pid == 0) {   /* only lives to own the namespace until it is opened */
        char b;
        close(p[1]);
        while (read(p[0], &b, 1) < 0 && errno == EINTR)
            ;
        _exit(0);
    }
    close(p[0]);
    char path[64];
    int r;
    snprintf(path, sizeof path, "/proc/%d/uid_map", (int)pid);
    r = write_file(path, uid_map);
    if (r == 0) {
        snprintf(path, sizeof path, "/proc/%d/gid_map", (int)pid);
        r = write_file(path, gid_map);
    }
    if (r == 0) {
        snprintf(path, sizeof path, "/proc/%d/ns/user", (int)pid);
        r = open(path, O_RDONLY | O_CLOEXEC);
        if (r < 0)
            r = -errno;
    }
    close(p[1]);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
    return r;
}

int oci_open_tree(const char *path, int recursive, int attr_recursive, uint64_t set, uint64_t clr,
                  int userns_fd)
{
    unsigned flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (recursive ? AT_RECURSIVE : 0);
    int fd = (int)syscall(SYS_open_tree, AT_FDCWD, path, flags);
    if (fd < 0)
        return -errno;
    if (userns_fd >= 0)
        set |= MOUNT_ATTR_IDMAP;
    if ((set || clr) && setattr_fd(fd, attr_recursive ? AT_RECURSIVE : 0, set, clr, 0, userns_fd) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}
