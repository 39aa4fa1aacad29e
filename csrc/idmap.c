/* Idmapped and recursive-attribute mounts, the runtime's side (cffi):
 * a user namespace with the container's maps, held by an fd, and a
 * detached copy of a mount with its attributes set and idmapped to it.
 * The init moves such a tree into place (mount_attrs.c: OP_MOVE_MOUNT). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include "core.h"

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
    /* fork() into a new user namespace (no stack: the child goes on here) */
    pid_t pid = (pid_t)syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, NULL, NULL, NULL, NULL);
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
    struct mount_attr attr = {.attr_set = set, .attr_clr = clr,
                              .userns_fd = (uint64_t)(userns_fd < 0 ? 0 : userns_fd)};
    if ((set || clr) && syscall(SYS_mount_setattr, fd, "", (attr_recursive ? AT_RECURSIVE : 0) | AT_EMPTY_PATH,
                                &attr, sizeof attr) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}
