/* Messages between the init and the runtime, and error reporting. */
#include "internal.h"
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

static int send_msg(int fd, const struct oci_msg *m)
{
    ssize_t r;
    do {
        r = send(fd, m, sizeof *m, MSG_NOSIGNAL);
    } while (r < 0 && errno == EINTR);
    return r < 0 ? -errno : 0;
}

__attribute__((noreturn)) static void vdie(struct init_ctx *c, int err, const char *fmt, va_list ap)
{
    struct oci_msg m = {.type = MSG_ERROR, .err = err};
    vsnprintf(m.text, sizeof m.text, fmt, ap);
    if (c->sync_fd >= 0)
        send_msg(c->sync_fd, &m);
    else if (c->report_fd > 0)   /* `start` waits to hear (startContainer hooks) */
        dprintf(c->report_fd, "%s%s%s", m.text, err ? ": " : "", err ? strerror(err) : "");
    else   /* after create returned: nobody listens but the caller's stderr */
        dprintf(2, "ociruntime init: %s: %s\n", m.text, strerror(err));
    syscall(SYS_exit_group, 127);
    __builtin_unreachable();
}

void die(struct init_ctx *c, const char *fmt, ...)
{
    int err = errno;
    va_list ap;
    va_start(ap, fmt);
    vdie(c, err, fmt, ap);
}

void die_errno(struct init_ctx *c, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vdie(c, err, fmt, ap);
}

void sync_send(struct init_ctx *c, int type, int64_t value)
{
    struct oci_msg m = {.type = type, .value = value};
    int r = send_msg(c->sync_fd, &m);
    if (r < 0)
        die_errno(c, -r, "sync: send message %d to the runtime", type);
}

int64_t sync_wait(struct init_ctx *c, int type)
{
    struct oci_msg m;
    int r = oci_recv(c->sync_fd, &m);
    if (r < 0)
        die_errno(c, -r, "sync: wait for the runtime");
    if (r == 0)   /* the runtime died: nobody will ever start us */
        syscall(SYS_exit_group, 1);
    if (m.type != type)
        die_errno(c, EPROTO, "sync: expected message %d, got %d", type, m.type);
    return m.value;
}

int oci_recv(int fd, struct oci_msg *m)
{
    ssize_t r;
    memset(m, 0, sizeof *m);
    do {
        r = recv(fd, m, sizeof *m, 0);
    } while (r < 0 && errno == EINTR);
    if (r < 0)
        return -errno;
    m->text[sizeof m->text - 1] = '\0';
    return (int)r;
}

int oci_send(int fd, int type, int64_t value)
{
    struct oci_msg m = {.type = type, .value = value};
    return send_msg(fd, &m);
}

int oci_socketpair(int fds[2])
{
    return socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) < 0 ? -errno : 0;
}

int oci_move_fd_above(int fd, int min)
{
    if (fd >= min)
        return fd;
    int n = fcntl(fd, F_DUPFD_CLOEXEC, min);
    if (n < 0)
        return -errno;
    close(fd);
    return n;
}

int oci_set_child_subreaper(void)
{
    return prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0 ? -errno : 0;
}
