/* Hooks (config.md "POSIX-platform Hooks"): running one hook program.
 *
 * oci_run_hook() is the one implementation: the runtime calls it through
 * cffi for the hooks of the runtime namespace (prestart, createRuntime,
 * poststart, poststop), and the container init calls it for the hooks of
 * the container namespace (createContainer before pivot_root,
 * startContainer right before exec: OP_HOOK, hook_step.c).
 *
 * The hook gets the state JSON on stdin (a memfd, so that a hook that
 * never reads it cannot block us), its stdout and stderr go to one pipe
 * we keep the first bytes of for the error message (runc too keeps them),
 * and it is killed with SIGKILL once its timeout passes. */
#define _GNU_SOURCE
#include "core.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#ifndef CLOSE_RANGE_UNSHARE
#define CLOSE_RANGE_UNSHARE (1U << 1)
#endif

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void keep_output(char *out, size_t size, size_t *used, const char *buf, size_t n)
{
    if (!out || size == 0)
        return;
    size_t room = size - 1 - *used;
    if (n > room)
        n = room;
    memcpy(out + *used, buf, n);
    *used += n;
    out[*used] = '\0';
}

int oci_run_hook(const char *path, char *const argv[], char *const envp[],
                 const char *state, size_t state_len, int timeout_secs, int cwd_fd,
                 char *out, size_t out_size, int *wstatus)
{
    size_t used = 0;
    if (out && out_size)
        out[0] = '\0';
    *wstatus = 0;
    int in = (int)syscall(SYS_memfd_create, "oci-hook-state", MFD_CLOEXEC);
    if (in < 0)
        return -errno;
    size_t off = 0;
    while (off < state_len) {
        ssize_t w = write(in, state + off, state_len - off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            close(in);
            return -e;
        }
        off += (size_t)w;
    }
    if (lseek(in, 0, SEEK_SET) < 0) {
        int e = errno;
        close(in);
        return -e;
    }
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) < 0) {
        int e = errno;
        close(in);
        return -e;
    }
    /* Tell the exec failure apart from the hook's own exit: a cloexec
     * pipe that carries errno only if execve returns. */
    int errpipe[2];
    if (pipe2(errpipe, O_CLOEXEC) < 0) {
        int e = errno;
        close(in);
        close(pipefd[0]);
        close(pipefd[1]);
        return -e;
    }
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(in);
        close(pipefd[0]);
        close(pipefd[1]);
        close(errpipe[0]);
        close(errpipe[1]);
        return -e;
    }
    if (pid == 0) {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGPIPE, SIG_DFL);
        signal(SIGXFSZ, SIG_DFL);
        if (dup2(in, 0) < 0 || dup2(pipefd[1], 1) < 0 || dup2(pipefd[1], 2) < 0)
            goto fail;
        int ep = errpipe[1];
        if (ep < 3 && (ep = fcntl(ep, F_DUPFD_CLOEXEC, 3)) < 0)
            goto fail;
        if (cwd_fd >= 0 && fchdir(cwd_fd) < 0)
            goto fail;
        /* Nothing of the runtime's (or of the container's preserved fds)
         * reaches the hook but the error pipe, which exec closes. */
        if (ep > 3)
            syscall(SYS_close_range, 3, ep - 1, 0);
        syscall(SYS_close_range, ep + 1, ~0U, 0);
        execve(path, argv, envp ? envp : environ);
        errpipe[1] = ep;
    fail: {
            int e = errno;
            ssize_t r = write(errpipe[1], &e, sizeof e);
            (void)r;
            _exit(127);
        }
    }
    close(in);
    close(pipefd[1]);
    close(errpipe[1]);
    int exec_err = 0;
    ssize_t r;
    do {
        r = read(errpipe[0], &exec_err, sizeof exec_err);
    } while (r < 0 && errno == EINTR);
    close(errpipe[0]);
    if (r != (ssize_t)sizeof exec_err)
        exec_err = 0;
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    int64_t deadline = timeout_secs > 0 ? now_ms() + (int64_t)timeout_secs * 1000 : -1;
    int timed_out = 0, pipe_open = 1;
    while (!exec_err) {
        struct pollfd p[2] = {{.fd = pidfd, .events = POLLIN}, {.fd = pipefd[0], .events = POLLIN}};
        int wait = -1;
        if (deadline >= 0) {
            int64_t left = deadline - now_ms();
            if (left <= 0) {
                timed_out = 1;
                break;
            }
            wait = left > 1000000 ? 1000000 : (int)left;
        }
        int n = poll(p, pipe_open ? 2 : 1, wait);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (pipe_open && (p[1].revents & (POLLIN | POLLHUP | POLLERR))) {
            char buf[4096];
            ssize_t got = read(pipefd[0], buf, sizeof buf);
            if (got > 0)
                keep_output(out, out_size, &used, buf, (size_t)got);
            else if (got == 0 || errno != EINTR)
                pipe_open = 0;
        }
        if (p[0].revents & POLLIN)
            break;   /* exited: what is left in the pipe is read below */
    }
    if (timed_out)
        kill(pid, SIGKILL);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (pidfd >= 0)
        close(pidfd);
    /* A background child of the hook may hold the pipe open: take only
     * what is already there. */
    if (pipe_open && fcntl(pipefd[0], F_SETFL, O_NONBLOCK) == 0) {
        char buf[4096];
        ssize_t got;
        while ((got = read(pipefd[0], buf, sizeof buf)) > 0)
            keep_output(out, out_size, &used, buf, (size_t)got);
    }
    close(pipefd[0]);
    *wstatus = status;
    if (exec_err)
        return -exec_err;
    if (timed_out)
        return OCI_HOOK_TIMEOUT;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : OCI_HOOK_FAILED;
}
