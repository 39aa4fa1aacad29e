/* Messages between the init and the runtime, and error reporting.
 * A message is one struct oci_msg: 512 bytes, at most PIPE_BUF, so each
 * write to a pipe is whole and alone, and so is each read of that size.
 * A write after the runtime died kills us with SIGPIPE: an exit as good
 * as any, with nobody left to tell. */
#include "internal.h"
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

_Static_assert(sizeof(struct oci_msg) <= PIPE_BUF, "a message must be one atomic pipe write");

static int send_msg(int fd, const struct oci_msg *m)
{
    ssize_t r;
    do {
        r = write(fd, m, sizeof *m);
    } while (r < 0 && errno == EINTR);
    if (r < 0)
        return -errno;
    return r == sizeof *m ? 0 : -EIO;
}

/* Bytes read (0 at EOF) or -errno. */
static int recv_msg(int fd, struct oci_msg *m)
{
    ssize_t r;
    memset(m, 0, sizeof *m);
    do {
        r = read(fd, m, sizeof *m);
    } while (r < 0 && errno == EINTR);
    if (r < 0)
        return -errno;
    if (r != 0 && r != sizeof *m)
        return -EPROTO;
    m->text[sizeof m->text - 1] = '\0';
    return (int)r;
}

__attribute__((noreturn)) static void vdie(struct init_ctx *c, int err, const char *fmt, va_list ap)
{
    struct oci_msg m = {.type = MSG_ERROR, .err = err};
    vsnprintf(m.text, sizeof m.text, fmt, ap);
    if (c->sync_out >= 0)
        send_msg(c->sync_out, &m);
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
    sync_send_text(c, type, value, "");
}

void sync_send_text(struct init_ctx *c, int type, int64_t value, const char *text)
{
    struct oci_msg m = {.type = type, .value = value};
    snprintf(m.text, sizeof m.text, "%s", text);
    int r = send_msg(c->sync_out, &m);
    if (r < 0)
        die_errno(c, -r, "sync: send message %d to the runtime", type);
}

int64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);   /* vDSO: no syscall, cannot fail here */
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

int64_t sync_wait(struct init_ctx *c, int type)
{
    struct oci_msg m;
    int r = recv_msg(c->sync_in, &m);
    if (r < 0)
        die_errno(c, -r, "sync: wait for the runtime");
    if (r == 0)   /* the runtime died: nobody will ever start us */
        syscall(SYS_exit_group, 1);
    if (m.type != type)
        die_errno(c, EPROTO, "sync: expected message %d, got %d", type, m.type);
    return m.value;
}
