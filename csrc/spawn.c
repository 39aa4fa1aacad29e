/* ociruntime-init: the container's init, from the runtime's posix_spawn to
 * the container's process.
 *
 *     ociruntime-init PLAN_FD SYNC_IN SYNC_OUT REPORT_FD [CWD [ROOT ID]]
 *
 * The runtime (Python) starts this program -- no namespaces yet, nothing of
 * Python's memory -- with the plan on the pipe PLAN_FD (its length as a
 * u64, then the plan as plan.py encodes it), the init's ends of the two
 * sync pipes (messages from and to the runtime), and the write end of a
 * pipe REPORT_FD; every other fd the plan names arrives with the number
 * the plan gives it.  CWD is where it and its children
 * work until the plan's own chdir (the bundle for create, as runc; `/` for
 * exec): never the caller's directory.  ROOT and ID are not read: they
 * name the container in ps (and in the tests' leak checks).
 *
 * It clones the first child as the runtime's child (CLONE_PARENT: `run`
 * and `exec` wait for it): the init itself, with the plan's namespace flags
 * and born in its cgroup2 directory, or, when the plan joins namespaces
 * first, an intermediate that joins them and then clones the init
 * (OP_CLONE).  It reports that child's pid on REPORT_FD (MSG_PID), or why
 * there is none (MSG_ERROR), and exits; the runtime reaps it.  runc's
 * order too: exec first, clone after.  Exec after a clone into a new user
 * namespace would drop every capability there.
 *
 * Before any of that it makes sure that it runs from a sealed memfd, not
 * from a file the container could reopen for writing (sealed_exe.c): the
 * runtime starts it from a copy it sealed (core.py: _exe_copy). */
#include "internal.h"
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The kernel's struct sigaction: glibc's sigaction() refuses glibc's own
 * signals (32 and 33), which posix_spawn leaves ignored in its child. */
struct kernel_sigaction {
    void (*handler)(int);
    unsigned long flags;
    void (*restorer)(void);
    uint64_t mask;
};

/* The runtime (Python) ignores SIGPIPE and SIGXFSZ, `run`/`exec` block
 * the signals they forward, and posix_spawn ignores glibc's; all of it
 * survives exec, and none of it may reach the container's process.
 * Default dispositions and an empty mask, first thing in the child. */
static void reset_signals(struct init_ctx *c)
{
    struct kernel_sigaction dfl = {.handler = SIG_DFL};
    for (int sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP &&
            syscall(SYS_rt_sigaction, sig, &dfl, NULL, sizeof dfl.mask) < 0)
            die(c, "reset the disposition of signal %d", sig);
    sigset_t none;
    sigemptyset(&none);
    if (sigprocmask(SIG_SETMASK, &none, NULL) < 0)
        die(c, "unblock all signals");
}

static int fd_arg(const char *s)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 0 || v > INT_MAX)
        return -1;
    return (int)v;
}

/* Exactly size bytes: a plan cut short is no plan (a prefix could decode). */
static void read_all(struct init_ctx *c, int fd, void *buf, size_t size)
{
    for (size_t off = 0; off < size;) {
        ssize_t r = read(fd, (char *)buf + off, size - off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            die(c, "plan: read fd %d", fd);
        if (r == 0)
            die_errno(c, EIO, "plan: fd %d ended after %zu of %zu bytes", fd, off, size);
        off += (size_t)r;
    }
}

#define PLAN_MAX (64u << 20)

/* The whole plan, in memory that the child keeps (decoded strings point
 * into it); the pipe is closed, so no child inherits it. */
static uint8_t *read_plan(struct init_ctx *c, int fd, size_t *len)
{
    uint64_t size;
    read_all(c, fd, &size, sizeof size);
    if (size > PLAN_MAX)
        die_errno(c, EFBIG, "plan: %llu bytes", (unsigned long long)size);
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf)
        die(c, "plan: allocate %llu bytes", (unsigned long long)size);
    read_all(c, fd, buf, size);
    if (close(fd) < 0)
        die(c, "plan: close fd %d", fd);
    *len = size;
    return buf;
}

int main(int argc, char **argv)
{
    int64_t t_main = now_ns();   /* for --debug's trace, with the report */
    int fds[4];   /* plan, sync in, sync out, report */
    for (int i = 0; i < 4; i++) {
        fds[i] = argc > 4 ? fd_arg(argv[i + 1]) : -1;
        if (fds[i] < 0) {
            fprintf(stderr, "usage: ociruntime-init PLAN_FD SYNC_IN SYNC_OUT REPORT_FD [CWD [ROOT ID]]"
                            " (ociruntime runs it)\n");
            return 2;
        }
    }
    int plan_fd = fds[0], report_fd = fds[3];
    /* Until the clone, failures go to the report pipe. */
    struct init_ctx boot = {.sync_in = -1, .sync_out = report_fd, .root_fd = -1};
    /* Never from a writable file into a namespace (CVE-2019-5736). */
    ensure_sealed_self(&boot, argv);
    /* Started through /proc/self/fd/N, the command name would be "N": give
     * ps (and the waiting init of a created container) a readable one, as
     * runc's "runc:[2:INIT]".  The container's process gets its own at exec. */
    if (prctl(PR_SET_NAME, "ociruntime-init", 0, 0, 0) < 0)
        die(&boot, "prctl(PR_SET_NAME)");
    if (argc > 5 && chdir(argv[5]) < 0)
        die(&boot, "chdir %s (the bundle)", argv[5]);
    size_t len;
    uint8_t *plan = read_plan(&boot, plan_fd, &len);
    struct step *steps;
    size_t n;
    int r = decode_plan(plan, len, &steps, &n);
    if (r < 0)
        die_errno(&boot, -r, "plan: malformed (%zu bytes)", len);

    unsigned long flags = CLONE_PARENT;
    int cgroup_fd = -1;
    size_t first = 0;
    /* Bind sources we open for the init, with our credentials: its root
     * in a user namespace may not reach them (mount_fds.c). */
    for (; first < n && steps[first].op == OP_OPEN_SOURCE; first++) {
        if (!steps[first].args[0].is_str)
            die_errno(&boot, EINVAL, "plan: malformed bind source step");
        add_source(&boot, steps[first].args[0].str);
    }
    sources_socket(&boot);
    size_t sources = first;
    int64_t t_plan = now_ns();
    size_t built = first;
    first = run_seccomp_build(&boot, steps, n, first);
    if (first < n && steps[first].op == OP_CLONE && !steps[first].args[0].is_str) {
        /* Nothing to join first: the first child is the init. */
        flags |= (unsigned long)steps[first].args[0].num;
        if (steps[first].argc > 1)
            cgroup_fd = (int)steps[first].args[1].num;
        first++;
    } else if (sources > 0) {   /* the sources go to the init, not to an intermediate */
        die_errno(&boot, EINVAL, "plan: bind mount sources are sent to an init cloned first");
    }   /* else an intermediate joins namespaces, then OP_CLONE forks the init */
    int64_t t_clone = now_ns();
    pid_t pid = clone_fork_into(flags, cgroup_fd);
    if (pid < 0)
        die(&boot, "clone the container init");
    if (pid == 0) {
        struct init_ctx c = {.sync_in = fds[1], .sync_out = fds[2], .root_fd = -1,
                             .started = now_ns()};
        /* Ours alone: the report ends (EOF) when we exit, whatever the init does. */
        if (close(report_fd) < 0)
            die(&c, "close the report pipe");
        sources_child();
        reset_signals(&c);
        run_plan(&c, steps, n, first);
    }
    send_sources(pid);
    /* When this program started, (when it built a seccomp filter) and
     * cloned: the runtime's --debug trace reads them (CLOCK_MONOTONIC ns;
     * the child says when it started). */
    char times[96];
    if (first > built)   /* a filter built above, or taken from the cache */
        snprintf(times, sizeof times, "%lld %lld %lld%s", (long long)t_main, (long long)t_plan,
                 (long long)t_clone, boot.seccomp_cached ? " cached" : "");
    else
        snprintf(times, sizeof times, "%lld %lld", (long long)t_main, (long long)t_clone);
    sync_send_text(&boot, MSG_PID, pid, times);
    return 0;
}
