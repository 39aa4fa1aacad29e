/* seccomp: linux.seccomp through libseccomp.
 *
 * The filter is built early, while a failure can still be reported to the
 * runtime (OP_SECCOMP, OP_SECCOMP_RULE..., OP_SECCOMP_EXPORT: libseccomp
 * compiles it to BPF, which we keep), and loaded at the last moment
 * (OP_SECCOMP_LOAD: one seccomp(2) call, right before exec), so that the
 * runtime's own steps are not filtered.  Loading it ourselves rather than
 * with seccomp_load() lets us pass every filter flag of the config
 * (libseccomp 2.5 knows no WAIT_KILLABLE_RECV) and never sets
 * no_new_privs behind the config's back.
 *
 * With SCMP_ACT_NOTIFY the load returns a listener fd; it goes to the
 * config's listenerPath (a socket the runtime connected before clone)
 * with SCM_RIGHTS, the payload being the container process state JSON
 * (runtime-spec config-linux.md), into which the init's pid is spliced.
 */
#include "internal.h"
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SECCOMP_FILTER_FLAG_NEW_LISTENER
#define SECCOMP_FILTER_FLAG_NEW_LISTENER (1UL << 3)
#endif

/* The init is one single-threaded process: plain statics are its own. */
static scmp_filter_ctx filter;
static uint32_t default_action;
static struct sock_fprog prog;
static unsigned long load_flags;

static const char *arg_str(struct init_ctx *c, struct step *s, uint32_t i)
{
    if (i >= s->argc || !s->args[i].is_str)
        die_errno(c, EINVAL, "plan: seccomp step %u: argument %u must be a string", s->op, i);
    return s->args[i].str;
}

static int64_t arg_num(struct init_ctx *c, struct step *s, uint32_t i)
{
    if (i >= s->argc || s->args[i].is_str)
        die_errno(c, EINVAL, "plan: seccomp step %u: argument %u must be a number", s->op, i);
    return s->args[i].num;
}

/* args: default action, kernel filter flags, narch, arch names... */
void do_seccomp(struct init_ctx *c, struct step *s)
{
    default_action = (uint32_t)arg_num(c, s, 0);
    load_flags = (unsigned long)arg_num(c, s, 1);
    uint32_t narch = (uint32_t)arg_num(c, s, 2);
    if (filter)
        seccomp_release(filter);
    filter = seccomp_init(default_action);
    if (!filter)
        die_errno(c, EINVAL, "seccomp: linux.seccomp.defaultAction 0x%x is not supported by "
                  "libseccomp or the kernel", default_action);
    for (uint32_t i = 0; i < narch; i++) {
        const char *name = arg_str(c, s, 3 + i);
        uint32_t token = seccomp_arch_resolve_name(name);
        if (token == 0)   /* a valid spec arch this libseccomp predates: it cannot */
            continue;     /* run here, and the bad-arch action kills it anyway */
        int r = seccomp_arch_add(filter, token);
        if (r < 0 && r != -EEXIST)
            die_errno(c, -r, "seccomp: add architecture %s", name);
    }
}

/* args: action, nargs, nargs * (index, op, value, valueTwo), names...
 * Unknown syscall names are skipped (runc does the same: a profile names
 * syscalls of newer kernels and other architectures). */
void do_seccomp_rule(struct init_ctx *c, struct step *s)
{
    if (!filter)
        die_errno(c, EINVAL, "plan: seccomp rule before the filter");
    uint32_t action = (uint32_t)arg_num(c, s, 0);
    uint32_t nargs = (uint32_t)arg_num(c, s, 1);
    if (nargs > 64 || 2 + 4 * nargs > s->argc)
        die_errno(c, EINVAL, "plan: bad seccomp rule");
    struct scmp_arg_cmp cmp[64];
    int per_index[6] = {0}, repeated = 0;
    for (uint32_t a = 0; a < nargs; a++) {
        uint32_t base = 2 + 4 * a;
        int64_t index = arg_num(c, s, base), op = arg_num(c, s, base + 1);
        if (index < 0 || index > 5 || op <= _SCMP_CMP_MIN || op >= _SCMP_CMP_MAX)
            die_errno(c, EINVAL, "plan: bad seccomp argument comparison");
        cmp[a] = (struct scmp_arg_cmp){
            .arg = (unsigned)index, .op = (enum scmp_compare)op,
            .datum_a = (scmp_datum_t)arg_num(c, s, base + 2),
            .datum_b = (scmp_datum_t)arg_num(c, s, base + 3),
        };
        if (++per_index[index] > 1)
            repeated = 1;
    }
    for (uint32_t i = 2 + 4 * nargs; i < s->argc; i++) {
        const char *name = arg_str(c, s, i);
        int nr = seccomp_syscall_resolve_name(name);
        if (nr == __NR_SCMP_ERROR)
            continue;
        int r = 0;
        if (!repeated) {
            r = seccomp_rule_add_array(filter, action, nr, nargs, cmp);
        } else {
            /* Two conditions on one argument: libseccomp ANDs them into
             * one rule it refuses; runc adds one rule per condition. */
            for (uint32_t a = 0; a < nargs && r == 0; a++)
                r = seccomp_rule_add_array(filter, action, nr, 1, &cmp[a]);
        }
        if (r < 0)
            die_errno(c, -r, "seccomp: add the rule for syscall %s (linux.seccomp.syscalls)", name);
    }
}

/* Compile the filter to BPF now, while errors still reach the runtime. */
void do_seccomp_export(struct init_ctx *c)
{
    if (!filter)
        die_errno(c, EINVAL, "plan: seccomp export before the filter");
    int fd = (int)syscall(SYS_memfd_create, "seccomp-bpf", MFD_CLOEXEC);
    if (fd < 0)
        die(c, "seccomp: memfd_create");
    int r = seccomp_export_bpf(filter, fd);
    if (r < 0)
        die_errno(c, -r, "seccomp: compile the filter (linux.seccomp)");
    struct stat st;
    if (fstat(fd, &st) < 0)
        die(c, "seccomp: stat the compiled filter");
    size_t size = (size_t)st.st_size;
    if (size == 0 || size % sizeof(struct sock_filter) || size / sizeof(struct sock_filter) > BPF_MAXINSNS)
        die_errno(c, E2BIG, "seccomp: the compiled filter has %zu bytes (at most %d instructions fit)",
                  size, BPF_MAXINSNS);
    struct sock_filter *insns = malloc(size);
    if (!insns)
        die(c, "seccomp: allocate the filter");
    size_t got = 0;
    while (got < size) {
        ssize_t n = pread(fd, (char *)insns + got, size - got, (off_t)got);
        if (n <= 0)
            die(c, "seccomp: read the compiled filter");
        got += (size_t)n;
    }
    close(fd);
    free(prog.filter);
    prog.filter = insns;
    prog.len = (unsigned short)(size / sizeof(struct sock_filter));
    seccomp_release(filter);
    filter = NULL;
}

/* The front end's cache (csrc/exec_fast.c): a filter compiled once, in
 * a process of the runtime's own that joined nothing, is written to fd
 * as the u64 load flags then the instructions; later execs hand it back
 * with OP_SECCOMP_BPF instead of building it with libseccomp each time. */
void do_seccomp_save(struct init_ctx *c, int fd)
{
    uint64_t flags = load_flags;
    size_t size = prog.len * sizeof *prog.filter;
    if (!prog.filter)
        die_errno(c, EINVAL, "plan: seccomp save before the filter was compiled");
    if (write(fd, &flags, sizeof flags) != (ssize_t)sizeof flags)
        die(c, "seccomp: save the compiled filter");
    for (size_t off = 0; off < size;) {
        ssize_t n = write(fd, (char *)prog.filter + off, size - off);
        if (n <= 0)
            die(c, "seccomp: save the compiled filter");
        off += (size_t)n;
    }
    if (close(fd) < 0)
        die(c, "seccomp: save the compiled filter");
    syscall(SYS_exit_group, 0);
}

/* A program compiled before (seccomp_cache.c): libseccomp is not used. */
void seccomp_use_compiled(unsigned long flags, struct sock_filter *insns, unsigned short count)
{
    if (filter)
        seccomp_release(filter);
    filter = NULL;
    free(prog.filter);
    prog.filter = insns;
    prog.len = count;
    load_flags = flags;
}

int seccomp_compiled(const struct sock_filter **insns, unsigned short *count)
{
    *insns = prog.filter;
    *count = prog.len;
    return prog.filter != NULL;
}

/* args: load flags, then each instruction as the int64 of its 8 bytes. */
void do_seccomp_bpf(struct init_ctx *c, struct step *s)
{
    uint32_t n = s->argc - 1;
    if (n == 0 || n > BPF_MAXINSNS)
        die_errno(c, E2BIG, "plan: a compiled seccomp filter of %u instructions", n);
    struct sock_filter *insns = malloc(n * sizeof *insns);
    if (!insns)
        die(c, "seccomp: allocate the filter");
    for (uint32_t i = 0; i < n; i++) {
        int64_t v = arg_num(c, s, i + 1);
        memcpy(&insns[i], &v, sizeof insns[i]);
    }
    free(prog.filter);
    prog.filter = insns;
    prog.len = (unsigned short)n;
    load_flags = (unsigned long)arg_num(c, s, 0);
}

/* Writes all of buf (the fds ride with the first chunk). */
static int send_all(int sock, const char *buf, size_t len, int pass_fd)
{
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    size_t off = 0;
    int first = 1;
    while (off < len) {
        struct iovec iov = {.iov_base = (char *)buf + off, .iov_len = len - off};
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
        if (first) {
            memset(&u, 0, sizeof u);
            mh.msg_control = u.buf;
            mh.msg_controllen = sizeof u.buf;
            struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
            cm->cmsg_level = SOL_SOCKET;
            cm->cmsg_type = SCM_RIGHTS;
            cm->cmsg_len = CMSG_LEN(sizeof(int));
            memcpy(CMSG_DATA(cm), &pass_fd, sizeof(int));
        }
        ssize_t n = sendmsg(sock, &mh, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        off += (size_t)n;
        first = 0;
    }
    return 0;
}

/* Without no_new_privs, loading needs CAP_SYS_ADMIN in the effective set.
 * The filter is loaded after the uid change (so that cwd, the executable
 * and everything else the init can do unfiltered is done as the user),
 * which cleared the effective set of a non-root user; the permitted set
 * kept it (PR_SET_KEEPCAPS).  Raise it back for the load: OP_CAPS, next,
 * sets the process's own sets.  1 if it was raised. */
static int raise_sys_admin(void)
{
    struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
    struct __user_cap_data_struct d[2];
    if (syscall(SYS_capget, &h, d) < 0)
        return 0;
    uint32_t bit = 1U << (CAP_SYS_ADMIN % 32);
    int word = CAP_SYS_ADMIN / 32;
    if (!(d[word].permitted & bit) || (d[word].effective & bit))
        return 0;
    d[word].effective |= bit;
    return syscall(SYS_capset, &h, d) == 0;
}

/* args: listener socket fd (-1: none), then the state JSON in fragments
 * between which the pid goes: frag0 PID frag1 PID frag2 ... */
void do_seccomp_load(struct init_ctx *c, struct step *s)
{
    int sock = (int)arg_num(c, s, 0);
    if (!prog.filter)
        die_errno(c, EINVAL, "plan: seccomp load before the filter was compiled");
    char *json = NULL;
    size_t json_len = 0;
    if (load_flags & SECCOMP_FILTER_FLAG_NEW_LISTENER) {
        /* Prepare the message before the filter can get in the way. */
        if (sock < 0)
            die_errno(c, EINVAL, "seccomp: SCMP_ACT_NOTIFY needs linux.seccomp.listenerPath");
        char pid[24];
        snprintf(pid, sizeof pid, "%lld", (long long)(c->pid > 0 ? c->pid : getpid()));
        FILE *f = open_memstream(&json, &json_len);
        if (!f)
            die(c, "seccomp: allocate the container process state");
        for (uint32_t i = 1; i < s->argc; i++)
            fprintf(f, "%s%s", i > 1 ? pid : "", arg_str(c, s, i));
        if (fclose(f) != 0)
            die(c, "seccomp: write the container process state");
    }
    long r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, load_flags, &prog);
    if (r < 0 && errno == EACCES && raise_sys_admin())
        r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, load_flags, &prog);
    if (r < 0) {
        if (errno == EACCES)
            die(c, "seccomp: load the filter (without noNewPrivileges this needs CAP_SYS_ADMIN)");
        die(c, "seccomp: load the filter (flags 0x%lx)", load_flags);
    }
    if (load_flags & SECCOMP_FILTER_FLAG_NEW_LISTENER) {
        int listener = (int)r;
        if (send_all(sock, json, json_len, listener) < 0)
            die(c, "seccomp: send the notify fd to linux.seccomp.listenerPath");
        close(listener);
        free(json);
    }
    if (sock >= 0)
        close(sock);   /* one state per connection, then closed (the spec) */
}
