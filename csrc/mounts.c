/* Mount steps: the rootfs, config mounts, devices, pivot_root, masks.
 *
 * Before pivot_root every destination is resolved inside the rootfs with
 * openat2(RESOLVE_IN_ROOT), so a symlink in the image (or one swapped in
 * during set-up) cannot take a mount outside it (CVE-2021-30465); the
 * mount then targets the resolved object (move_mount onto the fd, or
 * mount(2) through /proc/self/fd/N), and every later change goes to the
 * mount made, by fd, never by the path again (mount_fds.c).  After
 * pivot_root, read-only and masked paths are resolved the same way in the
 * container's root. */
#include "internal.h"
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

static int resolve(int root_fd, const char *path, int flags)
{
    struct open_how how = {
        .flags = (uint64_t)(flags | O_CLOEXEC),
        .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
    };
    return (int)syscall(SYS_openat2, root_fd, path, &how, sizeof how);
}

/* Makes the last component of prefix (a directory or an empty file)
 * inside parent, a directory already resolved in the root. */
static int make_component(int parent, const char *name, int as_file)
{
    if (as_file) {
        int fd = openat(parent, name, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd < 0)
            return errno == EEXIST ? 0 : -1;
        close(fd);
        return 0;
    }
    return mkdirat(parent, name, 0755) < 0 && errno != EEXIST ? -1 : 0;
}

static int open_in_root_depth(struct init_ctx *c, const char *dest, int kind, int depth);

/* Returns an O_PATH fd for dest inside the rootfs, creating what is
 * missing (directories; the last component as kind says), or -1. */
int open_in_root(struct init_ctx *c, const char *dest, int kind)
{
    return open_in_root_depth(c, dest, kind, 0);
}

/* A component that exists but does not resolve is a dangling symlink
 * (an image's /etc/resolv.conf -> ../run/...): like runc, follow it
 * inside the root and make what it points to.  dest[start, end) is the
 * link's name; what follows it in dest stays appended. */
static int follow_dangling(struct init_ctx *c, int parent, const char *dest, size_t start,
                           size_t end, int kind, int depth)
{
    char link[PATH_MAX], next[PATH_MAX];
    char name[NAME_MAX + 1];
    if (end - start > NAME_MAX) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(name, dest + start, end - start);
    name[end - start] = '\0';
    ssize_t l = readlinkat(parent, name, link, sizeof link - 1);
    if (l < 0) {
        errno = ENOENT;   /* not a link after all */
        return -1;
    }
    link[l] = '\0';
    int n = link[0] == '/'
        ? snprintf(next, sizeof next, "%s%s", link, dest + end)
        : snprintf(next, sizeof next, "%.*s%s%s", (int)start, dest, link, dest + end);
    if (n < 0 || (size_t)n >= sizeof next) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return open_in_root_depth(c, next, kind, depth + 1);
}

/* The common case: only the last component of dest is missing.  Its
 * parent, looked up once in the root, gets it.  -2 when the parent
 * does not resolve or the name is not a plain one: the walk from the
 * root then makes (or fails on) each component.  The same lookups and
 * checks as the walk's last step. */
static int make_last(struct init_ctx *c, const char *dest, size_t len, int kind, int depth)
{
    const char *slash = strrchr(dest, '/');
    if (!slash || slash == dest || !slash[1] || !strcmp(slash + 1, ".") || !strcmp(slash + 1, ".."))
        return -2;
    char dir[PATH_MAX];
    memcpy(dir, dest, (size_t)(slash - dest));
    dir[slash - dest] = '\0';
    int parent = resolve(c->root_fd, dir, O_PATH);
    if (parent < 0) {
        errno = ENOENT;
        return -2;
    }
    int fd = -1;
    if (make_component(parent, slash + 1, kind == MOUNT_FILE) == 0
        && (fd = resolve(c->root_fd, dest, O_PATH)) < 0 && errno == ENOENT)
        /* made, yet not there: a dangling symlink, followed as the walk does */
        fd = follow_dangling(c, parent, dest, (size_t)(slash + 1 - dest), len, kind, depth);
    int err = errno;
    close(parent);
    errno = err;
    return fd;
}

static int open_in_root_depth(struct init_ctx *c, const char *dest, int kind, int depth)
{
    if (depth > 40) {
        errno = ELOOP;
        return -1;
    }
    int fd = resolve(c->root_fd, dest, O_PATH);
    if (fd >= 0 || errno != ENOENT || kind < 0)
        return fd;
    char prefix[PATH_MAX];
    size_t len = strlen(dest);
    if (len >= sizeof prefix) {
        errno = ENAMETOOLONG;
        return -1;
    }
    if ((fd = make_last(c, dest, len, kind, depth)) != -2)
        return fd;
    int parent = dup(c->root_fd);
    if (parent < 0)
        return -1;
    for (size_t i = 0; i <= len; i++) {
        if (dest[i] != '/' && dest[i] != '\0')
            continue;
        size_t start = i;   /* find this component's start */
        while (start > 0 && dest[start - 1] != '/')
            start--;
        if (start == i)     /* empty component: "//" or leading "/" */
            continue;
        memcpy(prefix, dest, i);
        prefix[i] = '\0';
        fd = resolve(c->root_fd, prefix, O_PATH);
        if (fd < 0 && errno == ENOENT) {
            char name[NAME_MAX + 1];
            size_t nlen = i - start;
            if (nlen > NAME_MAX) {
                errno = ENAMETOOLONG;
                break;
            }
            memcpy(name, dest + start, nlen);
            name[nlen] = '\0';
            if (make_component(parent, name, kind == MOUNT_FILE && i == len) < 0)
                break;
            fd = resolve(c->root_fd, prefix, O_PATH);
            if (fd < 0 && errno == ENOENT) {
                fd = follow_dangling(c, parent, dest, start, i, kind, depth);
                int err = errno;
                close(parent);
                errno = err;
                return fd;
            }
        }
        if (fd < 0)
            break;
        close(parent);
        parent = fd;
    }
    if (fd < 0) {
        int err = errno;
        close(parent);
        errno = err;
        return -1;
    }
    return parent;
}

static void fd_path(char *buf, size_t size, int fd)
{
    snprintf(buf, size, "/proc/self/fd/%d", fd);
}

/* Flags a bind remount must keep: a mount made in another user namespace
 * has them locked, and dropping them is EPERM. */
static unsigned long locked_flags(const char *target)
{
    struct statvfs sv;
    unsigned long f = 0;
    if (statvfs(target, &sv) < 0)
        return 0;
    if (sv.f_flag & ST_NOSUID) f |= MS_NOSUID;
    if (sv.f_flag & ST_NODEV) f |= MS_NODEV;
    if (sv.f_flag & ST_NOEXEC) f |= MS_NOEXEC;
    if (sv.f_flag & ST_NOATIME) f |= MS_NOATIME;
    if (sv.f_flag & ST_NODIRATIME) f |= MS_NODIRATIME;
    if (sv.f_flag & ST_RELATIME) f |= MS_RELATIME;
    if (sv.f_flag & ST_RDONLY) f |= MS_RDONLY;
    return f;
}

static int remount_bind(const char *target, unsigned long flags)
{
    unsigned long base = MS_BIND | MS_REMOUNT;
    if (mount(NULL, target, NULL, base | flags, NULL) == 0)
        return 0;
    if (errno != EPERM)
        return -1;
    return mount(NULL, target, NULL, base | flags | locked_flags(target), NULL);
}

void do_rootfs(struct init_ctx *c, const char *rootfs, unsigned long prop)
{
    /* Nothing we mount may propagate back to the host. */
    if (mount(NULL, "/", NULL, MS_REC | prop, NULL) < 0)
        die(c, "set propagation of / (linux.rootfsPropagation)");
    /* pivot_root needs the new root to be a mount point. */
    if (mount(rootfs, rootfs, NULL, MS_BIND | MS_REC, NULL) < 0)
        die(c, "bind mount the rootfs %s", rootfs);
    c->root_fd = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (c->root_fd < 0)
        die(c, "open the rootfs %s", rootfs);
}

/* tmpcopyup: copy the directory tree open at `from` into `to` (an empty
 * new mount), keeping types, modes, owners and times.  Runs in the init
 * before pivot_root, on fds resolved inside the rootfs, and never follows
 * a symlink: a link is copied as a link. */
static void copy_meta(struct init_ctx *c, int dir, const char *name, const struct stat *st, const char *where)
{
    struct timespec times[2] = { st->st_atim, st->st_mtim };
    if (fchownat(dir, name, st->st_uid, st->st_gid, AT_SYMLINK_NOFOLLOW) < 0)
        die(c, "tmpcopyup %s: chown %s", where, name);
    if (!S_ISLNK(st->st_mode) && fchmodat(dir, name, st->st_mode & 07777, 0) < 0)
        die(c, "tmpcopyup %s: chmod %s", where, name);
    if (utimensat(dir, name, times, AT_SYMLINK_NOFOLLOW) < 0)
        die(c, "tmpcopyup %s: set the times of %s", where, name);
}

static void copy_file(struct init_ctx *c, int from, int to, const char *name, const struct stat *st, const char *where)
{
    char buf[65536];
    /* Non-blocking, and checked to be the regular file fstatat saw: one
     * swapped for a FIFO or a device meanwhile is neither waited on nor read. */
    struct stat now;
    int in = openat(from, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (in < 0)
        die(c, "tmpcopyup %s: open %s", where, name);
    if (fstat(in, &now) < 0)
        die(c, "tmpcopyup %s: stat %s", where, name);
    if (!S_ISREG(now.st_mode) || now.st_ino != st->st_ino || now.st_dev != st->st_dev)
        die_errno(c, ESTALE, "tmpcopyup %s: %s changed while being copied", where, name);
    int out = openat(to, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, st->st_mode & 0777);
    if (out < 0)
        die(c, "tmpcopyup %s: create %s", where, name);
    for (;;) {
        ssize_t n = read(in, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            die(c, "tmpcopyup %s: read %s", where, name);
        if (n == 0)
            break;
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(out, buf + off, (size_t)(n - off));
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0)
                die(c, "tmpcopyup %s: write %s", where, name);
            off += w;
        }
    }
    close(in);
    close(out);
}

static void copy_tree(struct init_ctx *c, int from, int to, const char *where)
{
    int dfd = dup(from);
    DIR *d = dfd < 0 ? NULL : fdopendir(dfd);
    if (!d)
        die(c, "tmpcopyup %s: read the directory", where);
    struct dirent *e;
    while ((errno = 0, e = readdir(d)) != NULL) {
        const char *name = e->d_name;
        struct stat st;
        if (!strcmp(name, ".") || !strcmp(name, ".."))
            continue;
        if (fstatat(from, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            die(c, "tmpcopyup %s: stat %s", where, name);
        if (S_ISDIR(st.st_mode)) {
            if (mkdirat(to, name, 0700) < 0)
                die(c, "tmpcopyup %s: mkdir %s", where, name);
            int sub_from = openat(from, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            int sub_to = openat(to, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub_from < 0 || sub_to < 0)
                die(c, "tmpcopyup %s: open directory %s", where, name);
            copy_tree(c, sub_from, sub_to, where);
            close(sub_from);
            close(sub_to);
        } else if (S_ISREG(st.st_mode)) {
            copy_file(c, from, to, name, &st, where);
        } else if (S_ISLNK(st.st_mode)) {
            char target[PATH_MAX];
            ssize_t n = readlinkat(from, name, target, sizeof target - 1);
            if (n < 0)
                die(c, "tmpcopyup %s: readlink %s", where, name);
            target[n] = '\0';
            if (symlinkat(target, to, name) < 0)
                die(c, "tmpcopyup %s: symlink %s", where, name);
        } else if (mknodat(to, name, st.st_mode, st.st_rdev) < 0) {
            die(c, "tmpcopyup %s: mknod %s", where, name);
        }
        copy_meta(c, to, name, &st, where);
    }
    if (errno)
        die(c, "tmpcopyup %s: read the directory", where);
    closedir(d);
}

/* A bind: a detached copy of the source gets the bind's own flags, then
 * is attached onto the destination open at fd (mount_fds.c). */
static int bind_onto(struct init_ctx *c, struct step *s, int fd)
{
    const char *src = s->args[0].str, *dest = s->args[1].str;
    unsigned long flags = (unsigned long)s->args[3].num;
    int index = s->argc > 7 ? (int)s->args[7].num : -1;
    int tree = bind_tree(c, src, index, (flags & MS_REC) != 0);
    unsigned long rest = flags & ~(MS_BIND | MS_REC | MS_REMOUNT);
    if (rest)
        set_bind_flags(c, tree, rest, dest);
    attach_tree(c, tree, fd, dest);
    return tree;
}

/* Any other filesystem: mount(2) onto the resolved fd, then an fd of the
 * new mount, checked to be the one just made (mount_fds.c). */
static int mount_onto(struct init_ctx *c, struct step *s, int fd, int copyup)
{
    const char *src = s->args[0].str, *dest = s->args[1].str;
    const char *fstype = s->args[2].str, *data = s->args[4].str;
    unsigned long flags = (unsigned long)s->args[3].num;
    char target[64];
    fd_path(target, sizeof target, fd);
    /* tmpcopyup with ro: fill it first, make it read-only after. */
    unsigned long first = copyup >= 0 ? flags & ~MS_RDONLY : flags;
    if (mount(src, target, *fstype ? fstype : NULL, first, *data ? data : NULL) < 0)
        die(c, "mount %s (type %s) to %s", src, fstype, dest);
    /* A remount changed the mount open at fd itself: nothing new there. */
    int top = flags & MS_REMOUNT ? dup(fd) : reopen_new_mount(c, fd, dest);
    if (top < 0)
        die(c, "mount %s: keep an fd of it", dest);
    if (copyup >= 0) {
        int to = openat(top, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (to < 0)
            die(c, "mount %s: open the new mount (tmpcopyup)", dest);
        copy_tree(c, copyup, to, dest);
        close(to);
        close(copyup);
        fd_path(target, sizeof target, top);   /* the new mount itself */
        if (first != flags &&
            mount(src, target, *fstype ? fstype : NULL, flags | MS_REMOUNT, *data ? data : NULL) < 0)
            die(c, "mount %s: remount read-only after tmpcopyup", dest);
    }
    return top;
}

/* args: src, dest, fstype, flags, data, propagation, kind[, source tree] */
void do_mount(struct init_ctx *c, struct step *s)
{
    const char *dest = s->args[1].str;
    unsigned long flags = (unsigned long)s->args[3].num;
    unsigned long prop = (unsigned long)s->args[5].num;
    int kind = (int)(s->args[6].num & ~MOUNT_COPYUP), copyup = -1;
    int fd = open_in_root(c, dest, kind);
    if (fd < 0)
        die(c, "mount %s: make the mount point", dest);
    /* Still names the directory under the mount once it is covered. */
    if ((s->args[6].num & MOUNT_COPYUP) &&
        (copyup = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        die(c, "mount %s: open it to copy its contents up (tmpcopyup)", dest);
    int top = flags & MS_BIND ? bind_onto(c, s, fd) : mount_onto(c, s, fd, copyup);
    close(fd);
    set_propagation(c, top, prop, dest);
    /* A new filesystem's fd was taken by looking dest up again and checking
     * it (reopen_new_mount): a third lookup would check the same thing. */
    if (flags & (MS_BIND | MS_REMOUNT) || copyup >= 0)
        verify_mounted(c, c->root_fd, top, dest);
    remember_mount(c, dest, top);
}

/* Opens the directory that will hold dest and points *name at its last
 * component, making the directories on the way. */
static int open_parent(struct init_ctx *c, const char *dest, char *dir, size_t size, const char **name)
{
    const char *slash = strrchr(dest, '/');
    size_t dlen = slash ? (size_t)(slash - dest) : 0;
    if (dlen >= size) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(dir, dest, dlen);
    dir[dlen] = '\0';
    *name = slash ? slash + 1 : dest;
    if (!**name) {
        errno = EINVAL;
        return -1;
    }
    return dlen ? open_in_root(c, dir, MOUNT_DIR) : dup(c->root_fd);
}

/* args: dest, mode (with S_IFCHR/S_IFBLK/S_IFIFO), major, minor, uid, gid */
void do_mknod(struct init_ctx *c, struct step *s)
{
    const char *dest = s->args[0].str, *name;
    char dir[PATH_MAX];
    int parent = open_parent(c, dest, dir, sizeof dir, &name);
    if (parent < 0)
        die(c, "device %s: make its directory", dest);
    dev_t dev = makedev((unsigned)s->args[2].num, (unsigned)s->args[3].num);
    mode_t mode = (mode_t)s->args[1].num;
    if (mknodat(parent, name, mode, dev) < 0) {
        /* config-linux.md: "If a file already exists at path that does not
         * match the requested device, the runtime MUST generate an error." */
        struct stat st;
        if (errno != EEXIST)
            die(c, "mknod device %s", dest);
        if (fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            die(c, "device %s: stat what is there", dest);
        if ((st.st_mode & S_IFMT) != (mode & S_IFMT) || (!S_ISFIFO(mode) && st.st_rdev != dev))
            die_errno(c, EEXIST, "device %s (linux.devices): a file that is not this device is there", dest);
        if (fchmodat(parent, name, mode & 07777, 0) < 0)
            die(c, "chmod device %s", dest);
    }
    if (fchownat(parent, name, (uid_t)s->args[4].num, (gid_t)s->args[5].num, AT_SYMLINK_NOFOLLOW) < 0)
        die(c, "chown device %s", dest);
    close(parent);
}

/* args: host path, dest, uid, gid.  In a user namespace mknod is EPERM;
 * like runc, bind the host's device node instead. */
void do_bind_device(struct init_ctx *c, struct step *s)
{
    const char *host = s->args[0].str, *dest = s->args[1].str;
    char target[64];
    int fd = open_in_root(c, dest, MOUNT_FILE);
    if (fd < 0)
        die(c, "device %s: make the mount point", dest);
    fd_path(target, sizeof target, fd);
    if (mount(host, target, NULL, MS_BIND, NULL) < 0)
        die(c, "bind device %s to %s", host, dest);
    close(fd);
}

void do_symlink(struct init_ctx *c, const char *target, const char *dest)
{
    const char *name;
    char dir[PATH_MAX];
    int parent = open_parent(c, dest, dir, sizeof dir, &name);
    if (parent < 0)
        die(c, "symlink %s: make its directory", dest);
    if (symlinkat(target, parent, name) < 0 && errno != EEXIST)
        die(c, "symlink %s -> %s", dest, target);
    close(parent);
}

void do_mkdir(struct init_ctx *c, const char *dest, int mode)
{
    int fd = open_in_root(c, dest, MOUNT_DIR);
    if (fd < 0)
        die(c, "mkdir %s", dest);
    char target[64];
    fd_path(target, sizeof target, fd);
    if (mode >= 0 && chmod(target, (mode_t)mode) < 0)   /* -1: only make what is missing */
        die(c, "chmod %s", dest);
    close(fd);
}

void do_pivot_root(struct init_ctx *c, const char *rootfs)
{
    int oldroot = open("/", O_DIRECTORY | O_RDONLY | O_CLOEXEC);
    if (oldroot < 0)
        die(c, "pivot_root: open /");
    int newroot = open(rootfs, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
    if (newroot < 0)
        die(c, "pivot_root: open %s", rootfs);
    /* pivot_root(".", "."): the old root ends up stacked on the new one;
     * detach it from there without a temporary directory in the image. */
    if (fchdir(newroot) < 0)
        die(c, "pivot_root: chdir %s", rootfs);
    if (syscall(SYS_pivot_root, ".", ".") < 0)
        die(c, "pivot_root %s", rootfs);
    if (fchdir(oldroot) < 0)
        die(c, "pivot_root: chdir to the old root");
    /* Keep the unmount from propagating to the host. */
    if (mount(NULL, ".", NULL, MS_SLAVE | MS_REC, NULL) < 0)
        die(c, "pivot_root: make the old root rslave");
    if (umount2(".", MNT_DETACH) < 0)
        die(c, "pivot_root: detach the old root");
    if (chdir("/") < 0)
        die(c, "pivot_root: chdir /");
    close(oldroot);
    close(newroot);
    close(c->root_fd);
    c->root_fd = -1;
    forget_mounts();
}

void do_move_root(struct init_ctx *c, const char *rootfs)
{
    if (chdir(rootfs) < 0)
        die(c, "chdir %s", rootfs);
    if (mount(rootfs, "/", NULL, MS_MOVE, NULL) < 0)
        die(c, "move the rootfs %s to /", rootfs);
    if (chroot(".") < 0)
        die(c, "chroot %s", rootfs);
    if (chdir("/") < 0)
        die(c, "chdir /");
    close(c->root_fd);
    c->root_fd = -1;
    forget_mounts();
}

/* After pivot_root: path resolved once in the container's root; root
 * gets that root's fd (for the check after mounting).  -1 with errno
 * ENOENT if the path is not there. */
static int open_after_pivot(struct init_ctx *c, const char *path, int *root, const char *what)
{
    *root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (*root < 0)
        die(c, "open / for %s", what);
    int fd = resolve(*root, path, O_PATH);
    if (fd < 0 && errno != ENOENT)
        die(c, "open %s for %s", path, what);
    if (fd < 0)
        close(*root);
    return fd;
}

/* Attaches tree onto fd (path), checks it, and closes all three. */
static void attach_checked(struct init_ctx *c, int tree, int fd, int root, const char *path)
{
    attach_tree(c, tree, fd, path);
    verify_mounted(c, root, tree, path);
    close(tree);
    close(fd);
    close(root);
}

/* A read-only bind of the path onto itself: one lookup, the copy made
 * read-only before it is attached there (no remount by path). */
void do_readonly_path(struct init_ctx *c, const char *path)
{
    int root, fd = open_after_pivot(c, path, &root, "linux.readonlyPaths");
    if (fd < 0)   /* the spec: a path that is not there is fine */
        return;
    int tree = (int)syscall(SYS_open_tree, fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE | AT_EMPTY_PATH);
    if (tree < 0)
        die(c, "bind %s for linux.readonlyPaths", path);
    set_bind_flags(c, tree, MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, path);
    attach_checked(c, tree, fd, root, path);
}

/* A new read-only tmpfs, detached (fsopen/fsmount). */
static int masking_tmpfs(struct init_ctx *c, const char *path)
{
    int fs = (int)syscall(SYS_fsopen, "tmpfs", FSOPEN_CLOEXEC);
    if (fs < 0 || syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, "source", "tmpfs", 0) < 0 ||
        syscall(SYS_fsconfig, fs, FSCONFIG_SET_FLAG, "ro", NULL, 0) < 0 ||
        syscall(SYS_fsconfig, fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
        die(c, "mask directory %s (linux.maskedPaths): make a tmpfs", path);
    int m = (int)syscall(SYS_fsmount, fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_RDONLY);
    if (m < 0)
        die(c, "mask directory %s (linux.maskedPaths): mount the tmpfs", path);
    close(fs);
    return m;
}

/* Only ever bind the real null device over a path (CVE-2025-31133):
 * open it without following a symlink, check the very object opened,
 * and copy that object's mount (not the path, which could be swapped). */
static int null_tree(struct init_ctx *c, const char *path)
{
    struct stat null;
    int nfd = open("/dev/null", O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (nfd < 0)
        die(c, "open /dev/null to mask %s", path);
    if (fstat(nfd, &null) < 0)
        die(c, "stat /dev/null to mask %s", path);
    if (!S_ISCHR(null.st_mode) || null.st_rdev != makedev(1, 3))
        die_errno(c, EPERM, "mask %s: /dev/null is not the null device (refused)", path);
    int tree = (int)syscall(SYS_open_tree, nfd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
    if (tree < 0)
        die(c, "mask %s (linux.maskedPaths): bind /dev/null", path);
    close(nfd);
    return tree;
}

void do_mask_path(struct init_ctx *c, const char *path)
{
    struct stat st;
    int root, fd = open_after_pivot(c, path, &root, "linux.maskedPaths");
    if (fd < 0)
        return;
    if (fstat(fd, &st) < 0)
        die(c, "stat %s for linux.maskedPaths", path);
    int tree = S_ISDIR(st.st_mode) ? masking_tmpfs(c, path) : null_tree(c, path);
    attach_checked(c, tree, fd, root, path);
}

void do_remount_root(struct init_ctx *c, unsigned long flags)
{
    unsigned long prop = flags & (MS_SHARED | MS_SLAVE | MS_PRIVATE | MS_UNBINDABLE | MS_REC);
    if ((flags & MS_RDONLY) && remount_bind("/", MS_RDONLY) < 0)
        die(c, "remount / read-only (root.readonly)");
    if ((prop & ~MS_REC) && mount(NULL, "/", NULL, prop, NULL) < 0)
        die(c, "set propagation of / (linux.rootfsPropagation)");
}

/* The caller's stdin, stdout or stderr that is the host's null device
 * (conmon gives /dev/null as stdin) becomes the container's own /dev/null,
 * as runc's reOpenDevNull does: a file on a mount outside the container's
 * mount namespace is one that criu cannot checkpoint.  Only the real null
 * device of the container is used; without one the fds stay as they are. */
void do_reopen_dev_null(struct init_ctx *c)
{
    struct stat null, st;
    int nfd = open("/dev/null", O_RDWR | O_NOFOLLOW | O_CLOEXEC);
    if (nfd < 0)
        return;
    if (fstat(nfd, &null) < 0)
        die(c, "stat the container's /dev/null");
    if (S_ISCHR(null.st_mode) && null.st_rdev == makedev(1, 3)) {
        for (int fd = 0; fd < 3; fd++) {
            if (fstat(fd, &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == null.st_rdev &&
                dup3(nfd, fd, 0) < 0)
                die(c, "reopen fd %d on the container's /dev/null", fd);
        }
    }
    close(nfd);
}

/* A container without a mount namespace of its own shares the host's mount
 * table: it must not be changed (no pivot_root, no mount), so the root is
 * only a chroot, as runc and crun do there. */
void do_chroot(struct init_ctx *c, const char *rootfs)
{
    if (chdir(rootfs) < 0)
        die(c, "chroot to the rootfs %s: chdir", rootfs);
    if (chroot(".") < 0)
        die(c, "chroot to the rootfs %s", rootfs);
    if (chdir("/") < 0)
        die(c, "chroot to the rootfs %s: chdir /", rootfs);
}
