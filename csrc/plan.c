/* Decoding a plan and running its steps in the container init. */
#include "internal.h"
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sched.h>
#include <unistd.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

/* Fewest arguments each op takes; decoding rejects a plan with fewer. */
static const uint32_t min_args[OP__COUNT] = {
    [OP_SETNS] = 2, [OP_CLONE] = 1, [OP_UNSHARE] = 1, [OP_SETHOSTNAME] = 1,
    [OP_SETDOMAINNAME] = 1, [OP_ROOTFS] = 2, [OP_MOUNT] = 7, [OP_MKNOD] = 6,
    [OP_BIND_DEVICE] = 4, [OP_SYMLINK] = 2, [OP_MKDIR] = 2, [OP_PIVOT_ROOT] = 1,
    [OP_MOVE_ROOT] = 1, [OP_WRITE_FILE] = 2, [OP_READONLY_PATH] = 1,
    [OP_MASK_PATH] = 1, [OP_REMOUNT_ROOT] = 1, [OP_SETRLIMIT] = 3,
    [OP_CAPBSET] = 1, [OP_SETUSER] = 2, [OP_CAPS] = 4, [OP_UMASK] = 1,
    [OP_CHDIR] = 1, [OP_FIND_EXEC] = 2, [OP_WAIT_START] = 1,
    [OP_CLOSE_FDS] = 1, [OP_EXEC] = 2, [OP_SET_DUMPABLE] = 1,
    [OP_SETUP_TERMINAL] = 5, [OP_SECCOMP] = 3, [OP_SECCOMP_RULE] = 2,
    [OP_SECCOMP_LOAD] = 1,
    [OP_HOOK] = 8, [OP_REPORT_FD] = 1, [OP_MOUNT_SETATTR] = 4, [OP_MOVE_MOUNT] = 3,
    [OP_SCHED] = 7, [OP_IOPRIO] = 1, [OP_PERSONALITY] = 1, [OP_MEMPOLICY] = 2,
    [OP_AFFINITY] = 1, [OP_SESSION_KEYRING] = 1, [OP_OPEN_SOURCE] = 1, [OP_CHROOT] = 1,
    [OP_SECCOMP_BPF] = 2, [OP_SECCOMP_SAVE] = 1, [OP_SECCOMP_CACHE] = 1,
};

static int read_u32(const uint8_t **p, const uint8_t *end, uint32_t *v)
{
    if (end - *p < 4)
        return -1;
    memcpy(v, *p, 4);
    *p += 4;
    return 0;
}

/* Decodes the whole plan up front, before the first clone, so that a
 * malformed plan is reported as such and never by a half-set-up child.
 * Strings point into the plan buffer, which outlives the child's use. */
int decode_plan(const uint8_t *buf, size_t len, struct step **out, size_t *n_out)
{
    const uint8_t *p = buf, *end = buf + len;
    size_t n = 0, cap = 64;
    struct step *steps = malloc(cap * sizeof *steps);
    if (!steps)
        return -ENOMEM;
    while (p < end) {
        struct step s;
        if (read_u32(&p, end, &s.op) || read_u32(&p, end, &s.argc))
            goto bad;
        /* No fixed limit (an exec of 20000 args and env entries is one
         * step); an argument takes at least 9 bytes, so argc is bounded by
         * what is left of the plan before anything is allocated for it. */
        if (s.op == 0 || s.op >= OP__COUNT || s.argc > (size_t)(end - p) / 9
            || s.argc < min_args[s.op])
            goto bad;
        s.args = calloc(s.argc ? s.argc : 1, sizeof *s.args);
        if (!s.args)
            goto bad;
        for (uint32_t i = 0; i < s.argc; i++) {
            uint32_t kind, slen;
            if (read_u32(&p, end, &kind))
                goto bad;
            if (kind == 0) {
                if (end - p < 8)
                    goto bad;
                memcpy(&s.args[i].num, p, 8);
                p += 8;
            } else if (kind == 1) {
                if (read_u32(&p, end, &slen) || (size_t)(end - p) < (size_t)slen + 1 || p[slen] != 0)
                    goto bad;
                s.args[i].is_str = 1;
                s.args[i].str = (const char *)p;
                p += slen + 1;
            } else {
                goto bad;
            }
        }
        if (n == cap) {
            struct step *more = realloc(steps, (cap *= 2) * sizeof *steps);
            if (!more)
                goto bad;
            steps = more;
        }
        steps[n++] = s;
    }
    *out = steps;
    *n_out = n;
    return 0;
bad:
    for (size_t i = 0; i < n; i++)
        free(steps[i].args);
    free(steps);
    return -EINVAL;
}

/* fork() with namespace flags.  A NULL stack makes clone behave like fork:
 * the child continues here on a copy of our stack. */
static pid_t clone_fork(unsigned long flags)
{
    return (pid_t)syscall(SYS_clone, flags | SIGCHLD, NULL, NULL, NULL, NULL);
}

/* clone3's arguments (linux/sched.h, which clashes with glibc's sched.h). */
struct clone3_args {
    uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size,
        tls, set_tid, set_tid_size, cgroup;
};
#define OCI_CLONE_INTO_CGROUP 0x200000000ULL

/* clone_fork, the child born in the cgroup2 directory cgroup_fd (if >= 0):
 * no move afterwards, so no wait for cgroup_threadgroup_rwsem. */
pid_t clone_fork_into(unsigned long flags, int cgroup_fd)
{
    if (cgroup_fd < 0)
        return clone_fork(flags);
    /* With CLONE_PARENT the child signals our parent as we would (clone3
     * refuses an exit signal of its own then). */
    struct clone3_args a = {
        .flags = flags | OCI_CLONE_INTO_CGROUP,
        .exit_signal = flags & CLONE_PARENT ? 0 : SIGCHLD, .cgroup = (uint64_t)cgroup_fd,
    };
    return (pid_t)syscall(SYS_clone3, &a, sizeof a);
}

static const char *str_arg(struct init_ctx *c, struct step *s, uint32_t i)
{
    if (!s->args[i].is_str)
        die_errno(c, EINVAL, "plan: step %u argument %u must be a string", s->op, i);
    return s->args[i].str;
}

static int64_t num_arg(struct init_ctx *c, struct step *s, uint32_t i)
{
    if (s->args[i].is_str)
        die_errno(c, EINVAL, "plan: step %u argument %u must be a number", s->op, i);
    return s->args[i].num;
}

/* A thread that moves itself into a v1 cgroup through `tasks` does not
 * take cgroup_threadgroup_rwsem, whose RCU grace period a move of another
 * process (the runtime writing our pid to cgroup.procs) waits for: about
 * 9 ms of every create.  The init is single-threaded: the thread is all. */
static void join_cgroups(struct init_ctx *c, struct step *s)
{
    for (uint32_t a = 0; a + 1 < s->argc; a += 2) {
        int fd = (int)num_arg(c, s, a);
        if (write(fd, "0", 1) != 1)
            die(c, "join cgroup %s", str_arg(c, s, a + 1));
        close(fd);
    }
}

/* Anything the runtime left open must not reach the process
 * (CVE-2024-21626): every fd from `first` up is made close-on-exec.
 * Done before the seccomp filter, and with the classic calls where
 * close_range is missing (before 5.11) or refused by a filter around us. */
static void cloexec_from(struct init_ctx *c, int first)
{
    if (syscall(SYS_close_range, (unsigned)first, ~0U, CLOSE_RANGE_CLOEXEC) == 0)
        return;
    if (errno != ENOSYS && errno != EPERM && errno != EINVAL)
        die(c, "close_range from fd %d", first);
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        die(c, "mark fds from %d close-on-exec: open /proc/self/fd", first);
    struct dirent *e;
    while ((e = readdir(d))) {
        char *end;
        long fd = strtol(e->d_name, &end, 10);
        if (*end || end == e->d_name || fd < first || fd == dirfd(d))
            continue;
        int flags = fcntl((int)fd, F_GETFD);
        if (flags >= 0 && fcntl((int)fd, F_SETFD, flags | FD_CLOEXEC) < 0)
            die(c, "mark fd %ld close-on-exec", fd);
    }
    closedir(d);
}

#define S(i) str_arg(c, s, (i))
#define N(i) num_arg(c, s, (i))

static void do_setns(struct init_ctx *c, const char *path, int nstype)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        die(c, "open namespace %s", path);
    if (setns(fd, nstype) < 0) {
        if (errno == EINVAL)
            die_errno(c, EINVAL, "setns %s: not a namespace of the type its entry names (or cannot be joined)", path);
        die(c, "setns %s", path);
    }
    close(fd);
}

static void do_setns_fd(struct init_ctx *c, int fd, int nstype)
{
    if (setns(fd, nstype) < 0)
        die(c, "setns fd %d (namespace type 0x%x) of the container", fd, nstype);
    close(fd);
}

static void wait_start(struct init_ctx *c, int fd)
{
    char b;
    ssize_t r;
    do {
        r = read(fd, &b, 1);
    } while (r < 0 && errno == EINTR);
    if (r != 1)
        die(c, "wait for start on the exec fifo");
    close(fd);
}

/* Each step's phase in --debug's trace (PH_PROCESS unless named here). */
static const uint8_t phase_of[OP__COUNT] = {
    [OP_SETNS] = PH_NAMESPACES, [OP_CLONE] = PH_NAMESPACES, [OP_UNSHARE] = PH_NAMESPACES,
    [OP_SETHOSTNAME] = PH_NAMESPACES, [OP_SETDOMAINNAME] = PH_NAMESPACES,
    [OP_LO_UP] = PH_NAMESPACES, [OP_JOIN_CGROUP] = PH_CGROUPS,
    [OP_ROOTFS] = PH_MOUNTS, [OP_MOUNT] = PH_MOUNTS, [OP_MKNOD] = PH_MOUNTS,
    [OP_BIND_DEVICE] = PH_MOUNTS, [OP_SYMLINK] = PH_MOUNTS, [OP_MKDIR] = PH_MOUNTS,
    [OP_PIVOT_ROOT] = PH_MOUNTS, [OP_MOVE_ROOT] = PH_MOUNTS, [OP_WRITE_FILE] = PH_MOUNTS,
    [OP_READONLY_PATH] = PH_MOUNTS, [OP_MASK_PATH] = PH_MOUNTS, [OP_REMOUNT_ROOT] = PH_MOUNTS,
    [OP_MOUNT_SETATTR] = PH_MOUNTS, [OP_MOVE_MOUNT] = PH_MOUNTS, [OP_CHROOT] = PH_MOUNTS,
    [OP_REOPEN_DEV_NULL] = PH_MOUNTS,
    [OP_SYNC_HOOKS] = PH_HOOKS, [OP_HOOK] = PH_HOOKS,
    [OP_SECCOMP] = PH_SECCOMP, [OP_SECCOMP_RULE] = PH_SECCOMP,
    [OP_SECCOMP_EXPORT] = PH_SECCOMP, [OP_SECCOMP_LOAD] = PH_SECCOMP,
    [OP_SECCOMP_BPF] = PH_SECCOMP, [OP_SECCOMP_SAVE] = PH_SECCOMP, [OP_SECCOMP_CACHE] = PH_SECCOMP,
    [OP_SYNC_HELLO] = PH_WAIT, [OP_SYNC_READY] = PH_WAIT, [OP_WAIT_START] = PH_WAIT,
};

/* MSG_HELLO and MSG_READY: when (the value), when the first child
 * started, and the time each phase took so far (the text, "started=ns
 * name=ns ..."), which `--debug` shows as the init's phases
 * (ociruntime/log.py: mark_init). */
static void send_phases(struct init_ctx *c, int type)
{
    char text[256];
    const int64_t *p = c->phase_ns;
    snprintf(text, sizeof text,
             "started=%lld namespaces=%lld cgroups=%lld mounts=%lld hooks=%lld process=%lld seccomp=%lld",
             (long long)c->started, (long long)p[PH_NAMESPACES], (long long)p[PH_CGROUPS], (long long)p[PH_MOUNTS],
             (long long)p[PH_HOOKS], (long long)p[PH_PROCESS], (long long)p[PH_SECCOMP]);
    sync_send_text(c, type, now_ns(), text);
}

static void run_step(struct init_ctx *c, struct step *s);

void run_plan(struct init_ctx *c, struct step *steps, size_t n, size_t i)
{
    for (; i < n; i++) {
        int64_t t = now_ns();
        run_step(c, &steps[i]);
        c->phase_ns[phase_of[steps[i].op]] += now_ns() - t;
    }
    die_errno(c, EINVAL, "plan: ended without exec");
}

/* The steps from i on that build a seccomp filter, run by the process
 * that clones the init (spawn.c's main): libseccomp's memory is then the
 * runtime's, not charged to the container, and the init inherits the
 * built filter, so it can be born in its cgroups.  After OP_SECCOMP_CACHE
 * the filter compiled by an earlier create is taken if its key matches,
 * and what is built is saved (seccomp_cache.c).  Returns the index of the
 * first other step. */
size_t run_seccomp_build(struct init_ctx *c, struct step *steps, size_t n, size_t i)
{
    int64_t t = now_ns();
    const char *cache = NULL;
    if (i < n && steps[i].op == OP_SECCOMP_CACHE)
        cache = steps[i++].args[0].is_str ? steps[i - 1].args[0].str : NULL;
    size_t end = i;
    while (end < n && (steps[end].op == OP_SECCOMP || steps[end].op == OP_SECCOMP_RULE
                       || steps[end].op == OP_SECCOMP_EXPORT))
        end++;
    /* A complete build (OP_SECCOMP ... OP_SECCOMP_EXPORT), or no cache. */
    int whole = end > i && steps[i].op == OP_SECCOMP && !steps[i].args[1].is_str
        && steps[end - 1].op == OP_SECCOMP_EXPORT;
    c->seccomp_cached = cache && whole
        && seccomp_cache_load(cache, steps + i, end - i, (unsigned long)steps[i].args[1].num);
    if (!c->seccomp_cached) {
        for (size_t j = i; j < end; j++)
            run_step(c, &steps[j]);
        if (cache && whole)
            seccomp_cache_store(cache, steps + i, end - i);
    }
    c->phase_ns[PH_SECCOMP] += now_ns() - t;
    return end;
}

static void run_step(struct init_ctx *c, struct step *s)
{
    switch (s->op) {
    case OP_SETNS:   /* by path, or by an fd the runtime opened (exec) */
        if (s->args[0].is_str)
            do_setns(c, S(0), (int)N(1));
        else
            do_setns_fd(c, (int)N(0), (int)N(1));
        break;
    case OP_CLONE: {
        pid_t pid = clone_fork_into((unsigned long)N(0), s->argc > 1 ? (int)N(1) : -1);
        if (pid < 0)
            die(c, "clone the container init");
        if (pid > 0) {   /* we are the intermediate: hand over, leave */
            sync_send(c, MSG_PID, pid);
            syscall(SYS_exit_group, 0);
        }
        break;
    }
    case OP_UNSHARE:
        if (unshare((int)N(0)) < 0)
            die(c, "unshare namespaces 0x%llx", (unsigned long long)N(0));
        break;
    case OP_SYNC_HELLO:
        send_phases(c, MSG_HELLO);
        c->pid = sync_wait(c, MSG_GO);
        break;
    case OP_SETID_ROOT: do_setid_root(c); break;
    case OP_SETHOSTNAME:
        if (sethostname(S(0), strlen(S(0))) < 0)
            die(c, "sethostname %s", S(0));
        break;
    case OP_SETDOMAINNAME:
        if (setdomainname(S(0), strlen(S(0))) < 0)
            die(c, "setdomainname %s", S(0));
        break;
    case OP_ROOTFS: do_rootfs(c, S(0), (unsigned long)N(1)); break;
    case OP_MOUNT: do_mount(c, s); break;
    case OP_MKNOD: do_mknod(c, s); break;
    case OP_BIND_DEVICE: do_bind_device(c, s); break;
    case OP_SYMLINK: do_symlink(c, S(0), S(1)); break;
    case OP_MKDIR: do_mkdir(c, S(0), (int)N(1)); break;
    case OP_PIVOT_ROOT: do_pivot_root(c, S(0)); break;
    case OP_MOVE_ROOT: do_move_root(c, S(0)); break;
    case OP_WRITE_FILE: do_write_file(c, S(0), S(1)); break;
    case OP_READONLY_PATH: do_readonly_path(c, S(0)); break;
    case OP_MASK_PATH: do_mask_path(c, S(0)); break;
    case OP_REMOUNT_ROOT: do_remount_root(c, (unsigned long)N(0)); break;
    case OP_SETRLIMIT: do_setrlimit(c, (int)N(0), (uint64_t)N(1), (uint64_t)N(2)); break;
    case OP_CAPBSET: do_capbset(c, (uint64_t)N(0)); break;
    case OP_SETGROUPS: do_setgroups(c, s); break;
    case OP_SETUSER: do_setuser(c, (uint32_t)N(0), (uint32_t)N(1)); break;
    case OP_CAPS: do_caps(c, N(0), N(1), N(2), N(3)); break;
    case OP_UMASK: umask((mode_t)N(0)); break;
    case OP_NO_NEW_PRIVS:
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
            die(c, "prctl no_new_privs");
        break;
    case OP_CHDIR: do_chdir(c, S(0)); break;
    case OP_FIND_EXEC: do_find_exec(c, S(0), S(1)); break;
    case OP_SYNC_READY:
        send_phases(c, MSG_READY);
        close(c->sync_in);   /* the runtime goes away now */
        close(c->sync_out);
        c->sync_in = c->sync_out = -1;
        break;
    case OP_WAIT_START: wait_start(c, (int)N(0)); break;
    case OP_CLOSE_FDS: cloexec_from(c, (int)N(0)); break;
    case OP_EXEC: do_exec(c, s);
    case OP_SET_DUMPABLE:
        if (prctl(PR_SET_DUMPABLE, (unsigned long)N(0), 0, 0, 0) < 0)
            die(c, "prctl set_dumpable");
        break;
    case OP_CLOSE:
        for (uint32_t a = 0; a < s->argc; a++)
            close((int)N(a));
        break;
    case OP_SETUP_TERMINAL:
        do_setup_terminal(c, (int)N(0), (int)N(1), (int)N(2), N(3), (int)N(4));
        break;
    case OP_SETSID:
        if (setsid() < 0)
            die(c, "setsid");
        break;
    case OP_SECCOMP: do_seccomp(c, s); break;
    case OP_SECCOMP_RULE: do_seccomp_rule(c, s); break;
    case OP_SECCOMP_EXPORT: do_seccomp_export(c); break;
    case OP_SECCOMP_LOAD: do_seccomp_load(c, s); break;
    case OP_SECCOMP_BPF: do_seccomp_bpf(c, s); break;
    case OP_SECCOMP_SAVE: do_seccomp_save(c, (int)N(0)); break;
    case OP_SECCOMP_CACHE: break;   /* a hint for run_seccomp_build only */
    case OP_SYNC_HOOKS:
        sync_send(c, MSG_HOOKS, 0);
        sync_wait(c, MSG_GO);
        break;
    case OP_HOOK: do_hook(c, s); break;
    case OP_REPORT_FD: c->report_fd = (int)N(0); break;
    case OP_MOUNT_SETATTR:
        do_mount_setattr(c, S(0), (uint64_t)N(1), (uint64_t)N(2), (int)N(3));
        break;
    case OP_MOVE_MOUNT:
        do_move_mount(c, (int)N(0), S(1), (int)N(2), s->argc > 3 ? (unsigned long)N(3) : 0);
        break;
    case OP_SCHED: do_sched(c, s); break;
    case OP_IOPRIO: do_ioprio(c, N(0)); break;
    case OP_PERSONALITY: do_personality(c, N(0)); break;
    case OP_MEMPOLICY: do_mempolicy(c, s); break;
    case OP_AFFINITY: do_affinity(c, s); break;
    case OP_JOIN_CGROUP: join_cgroups(c, s); break;
    case OP_LO_UP: do_lo_up(c); break;
    case OP_SESSION_KEYRING: do_session_keyring(c, S(0)); break;
    case OP_CHROOT: do_chroot(c, S(0)); break;
    case OP_REOPEN_DEV_NULL: do_reopen_dev_null(c); break;
    default:
        die_errno(c, EINVAL, "plan: unknown step %u", s->op);
    }
}
