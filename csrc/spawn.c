/* oci_spawn: from the runtime (a Python process) to a running init. */
#include "internal.h"
#include <signal.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

int decode_plan(const uint8_t *buf, size_t len, struct step **out, size_t *n_out);
void free_plan(struct step *steps, size_t n);
pid_t clone_fork(unsigned long flags);
pid_t clone_fork_into(unsigned long flags, int cgroup_fd);

/* The runtime (Python) ignores SIGPIPE and SIGXFSZ, and `run`/`exec`
 * block the signals they forward: neither may reach the container's
 * process, since ignored signals and the mask survive exec.  Default
 * dispositions and an empty mask, first thing in the child. */
static void reset_signals(void)
{
    struct sigaction sa = {.sa_handler = SIG_DFL};
    sigemptyset(&sa.sa_mask);
    for (int sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            sigaction(sig, &sa, NULL);   /* EINVAL for the reserved RT ones */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}

int oci_spawn(const uint8_t *plan, size_t len, int sync_fd)
{
    struct step *steps;
    size_t n;
    int r = decode_plan(plan, len, &steps, &n);
    if (r < 0)
        return r;
    struct init_ctx c = {.sync_fd = sync_fd, .root_fd = -1};
    pid_t pid;
    size_t first = 0;
    if (n > 0 && steps[0].op == OP_CLONE && !steps[0].args[0].is_str) {
        /* Nothing to join first: clone the init straight from here. */
        pid = clone_fork_into((unsigned long)steps[0].args[0].num,
                              steps[0].argc > 1 ? (int)steps[0].args[1].num : -1);
        first = 1;
    } else {
        /* Joining namespaces must not touch the runtime itself: an
         * intermediate process joins, then OP_CLONE forks the init. */
        pid = clone_fork(0);
    }
    if (pid == 0) {
        reset_signals();
        run_plan(&c, steps, n, first);
    }
    r = pid < 0 ? -errno : pid;
    free_plan(steps, n);
    return r;
}
