/* Process steps: ids, capabilities, rlimits, finding and exec'ing. */
#include "internal.h"
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/capability.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef PROC_ROOT_INO
#define PROC_ROOT_INO 1
#endif

void do_setid_root(struct init_ctx *c)
{
    if (setresgid(0, 0, 0) < 0)
        die(c, "setresgid 0 in the user namespace (is gid 0 mapped?)");
    if (setresuid(0, 0, 0) < 0)
        die(c, "setresuid 0 in the user namespace (is uid 0 mapped?)");
}

void do_setrlimit(struct init_ctx *c, int res, uint64_t soft, uint64_t hard)
{
    struct rlimit rl = {.rlim_cur = soft, .rlim_max = hard};
    if (prlimit(0, res, &rl, NULL) < 0)
        die(c, "setrlimit %d (process.rlimits) to soft %llu hard %llu", res,
            (unsigned long long)soft, (unsigned long long)hard);
}

void do_capbset(struct init_ctx *c, uint64_t keep)
{
    for (int cap = 0; cap < 64; cap++) {
        if (keep & (1ULL << cap))
            continue;
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0) {
            if (errno == EINVAL)   /* past the kernel's last capability */
                break;
            die(c, "drop capability %d from the bounding set", cap);
        }
    }
}

void do_setgroups(struct init_ctx *c, struct step *s)
{
    gid_t *gids = calloc(s->argc ? s->argc : 1, sizeof *gids);
    if (!gids)
        die(c, "setgroups: allocate %u gids", s->argc);
    for (uint32_t i = 0; i < s->argc; i++)
        gids[i] = (gid_t)s->args[i].num;
    if (setgroups(s->argc, gids) < 0) {
        /* A user namespace whose gid map an unprivileged user wrote has
         * setgroups denied (rootless): with no groups asked for, the
         * process keeps the caller's, as in runc. */
        if (s->argc == 0 && errno == EPERM) {
            free(gids);
            return;
        }
        die(c, "setgroups (process.user.additionalGids)");
    }
    free(gids);
}

void do_setuser(struct init_ctx *c, uint32_t uid, uint32_t gid)
{
    /* Keep the permitted set across the uid change; OP_CAPS sets it. */
    if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
        die(c, "prctl keepcaps");
    if (setresgid(gid, gid, gid) < 0)
        die(c, "setgid %u (process.user.gid)", gid);
    if (setresuid(uid, uid, uid) < 0)
        die(c, "setuid %u (process.user.uid)", uid);
    if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
        die(c, "prctl keepcaps");
}

void do_caps(struct init_ctx *c, uint64_t eff, uint64_t perm, uint64_t inh, uint64_t amb)
{
    struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
    struct __user_cap_data_struct d[2] = {
        {(uint32_t)eff, (uint32_t)perm, (uint32_t)inh},
        {(uint32_t)(eff >> 32), (uint32_t)(perm >> 32), (uint32_t)(inh >> 32)},
    };
    if (syscall(SYS_capset, &h, d) < 0)
        die(c, "capset (process.capabilities)");
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
        die(c, "clear the ambient capabilities");
    /* A cap not also permitted and inheritable cannot be ambient; runc
     * only warns about that, and configs (runc spec's) rely on it. */
    for (int cap = 0; cap < 64; cap++)
        if ((amb & (1ULL << cap)) && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) < 0 && errno != EPERM)
            die(c, "raise ambient capability %d", cap);
}

/* Like Go's exec.LookPath, which runc uses: the same words, which podman
 * matches to choose exit codes 126 and 127. */
void do_find_exec(struct init_ctx *c, const char *argv0, const char *path)
{
    struct stat st;
    if (strchr(argv0, '/')) {
        if (stat(argv0, &st) < 0)
            die_errno(c, 0, "exec: \"%s\": stat %s: no such file or directory", argv0, argv0);
        if (S_ISDIR(st.st_mode) || access(argv0, X_OK) < 0)
            die_errno(c, 0, "exec: \"%s\": permission denied", argv0);
        c->exec_path = argv0;
        return;
    }
    int denied = 0;
    const char *p = path;
    while (1) {
        const char *end = strchrnul(p, ':');
        char cand[PATH_MAX];
        int n = end == p ? snprintf(cand, sizeof cand, "./%s", argv0)
                         : snprintf(cand, sizeof cand, "%.*s/%s", (int)(end - p), p, argv0);
        if (n > 0 && (size_t)n < sizeof cand && stat(cand, &st) == 0 && !S_ISDIR(st.st_mode)) {
            if (access(cand, X_OK) == 0) {
                c->exec_path = strdup(cand);
                if (!c->exec_path)
                    die(c, "strdup");
                return;
            }
            denied = 1;
        }
        if (!*end)
            break;
        p = end + 1;
    }
    if (denied)
        die_errno(c, 0, "exec: \"%s\": permission denied", argv0);
    die_errno(c, 0, "exec: \"%s\": executable file not found in $PATH", argv0);
}

/* args: argc, argv..., envc, env... */
void do_exec(struct init_ctx *c, struct step *s)
{
    uint32_t argc = (uint32_t)s->args[0].num;
    if (argc == 0 || (uint64_t)argc + 2 > s->argc)
        die_errno(c, EINVAL, "plan: bad exec step");
    uint32_t envc = (uint32_t)s->args[1 + argc].num;
    if ((uint64_t)argc + 2 + envc != s->argc)
        die_errno(c, EINVAL, "plan: bad exec step");
    /* On the stack, not malloc: after the seccomp filter, nothing but the
     * classic calls (a profile need not allow brk or mmap for us). */
    char *argv[argc + 1], *envp[envc + 1];
    argv[argc] = envp[envc] = NULL;
    for (uint32_t i = 0; i < argc; i++)
        argv[i] = (char *)s->args[1 + i].str;
    for (uint32_t i = 0; i < envc; i++)
        envp[i] = (char *)s->args[2 + argc + i].str;
    const char *path = c->exec_path ? c->exec_path : argv[0];
    execve(path, argv, envp);
    if (errno == EACCES)
        die_errno(c, 0, "exec: \"%s\": permission denied", argv[0]);
    die(c, "exec %s", path);
}

/* Opens /proc/<rel> for writing through a handle that no mount the
 * container controls can redirect (CVE-2025-52881): "/proc" must be the
 * root of a procfs, the rest is resolved below it without crossing a
 * mount or following any symlink ("self" is spelt as our pid), and what
 * opens must be procfs again. */
static int open_proc_for_write(struct init_ctx *c, const char *rel, const char *path)
{
    int proc = open("/proc", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (proc < 0)
        die(c, "write %s: open /proc", path);
    struct statfs sf;
    struct stat st;
    if (fstatfs(proc, &sf) < 0 || fstat(proc, &st) < 0)
        die(c, "write %s: stat /proc", path);
    if (sf.f_type != PROC_SUPER_MAGIC || st.st_ino != PROC_ROOT_INO)
        die_errno(c, EPERM, "write %s: /proc is not the root of a procfs (no proc mount, or a mount over it)", path);
    char buf[PATH_MAX];
    if (strncmp(rel, "self/", 5) == 0 || strncmp(rel, "thread-self/", 12) == 0) {
        const char *rest = strchr(rel, '/') + 1;
        if (snprintf(buf, sizeof buf, "%d/%s", (int)getpid(), rest) >= (int)sizeof buf)
            die_errno(c, ENAMETOOLONG, "write %s", path);
        rel = buf;
    }
    struct open_how how = {
        .flags = O_WRONLY | O_NOCTTY | O_CLOEXEC,
        .resolve = RESOLVE_BENEATH | RESOLVE_NO_XDEV | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
    };
    int fd = (int)syscall(SYS_openat2, proc, rel, &how, sizeof how);
    if (fd < 0) {
        if (errno == EXDEV || errno == ELOOP)
            die(c, "write %s: the path crosses a mount or a symlink inside /proc (refused)", path);
        die(c, "open %s", path);
    }
    if (fstatfs(fd, &sf) < 0)
        die(c, "write %s: statfs", path);
    if (sf.f_type != PROC_SUPER_MAGIC)
        die_errno(c, EPERM, "write %s: not a procfs file (refused)", path);
    close(proc);
    return fd;
}

void do_write_file(struct init_ctx *c, const char *path, const char *content)
{
    int fd;
    if (strncmp(path, "/proc/", 6) == 0) {
        fd = open_proc_for_write(c, path + 6, path);
    } else {
        fd = open(path, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            die(c, "open %s", path);
    }
    size_t len = strlen(content);
    ssize_t w = write(fd, content, len);
    if (w < 0 || (size_t)w != len)
        die(c, "write %s", path);
    close(fd);
}

/* process.cwd, resolved inside the container's root without magic links
 * (no /proc/self/fd/N of an fd that is not the container's), and checked
 * to be reachable from the root (CVE-2024-21626). */
void do_chdir(struct init_ctx *c, const char *cwd)
{
    int root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (root < 0)
        die(c, "chdir to cwd %s: open /", cwd);
    struct open_how how = {
        .flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
        .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
    };
    int fd = (int)syscall(SYS_openat2, root, cwd, &how, sizeof how);
    if (fd < 0)
        die(c, "chdir to cwd %s", cwd);
    if (fchdir(fd) < 0)
        die(c, "chdir to cwd %s", cwd);
    close(fd);
    close(root);
    char buf[PATH_MAX];
    long n = syscall(SYS_getcwd, buf, sizeof buf);
    if (n < 0)
        die(c, "chdir to cwd %s: getcwd", cwd);
    if (buf[0] != '/')   /* "(unreachable)...": outside our root */
        die_errno(c, EPERM, "chdir to cwd %s: it is outside the container (refused)", cwd);
}
