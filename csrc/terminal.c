/* process.terminal: a pty from the container's devpts, its master sent to
 * the console socket, its slave the process's stdio and controlling tty.
 *
 * The runtime connects to the --console-socket (or makes a socketpair for
 * a foreground run) and hands the init the connected fd: after pivot_root
 * the socket's path may no longer be reachable.  Like runc, the message
 * carries the master's name ("/dev/ptmx") and the fd as SCM_RIGHTS. */
#include "internal.h"
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#ifndef TIOCGPTPEER
#define TIOCGPTPEER _IO('T', 0x41)
#endif

static void send_master(struct init_ctx *c, int sock, int master)
{
    static const char name[] = "/dev/ptmx";
    char cbuf[CMSG_SPACE(sizeof(int))];
    struct iovec iov = {.iov_base = (void *)name, .iov_len = sizeof name - 1};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1,
                         .msg_control = cbuf, .msg_controllen = sizeof cbuf};
    memset(cbuf, 0, sizeof cbuf);
    struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &master, sizeof(int));
    ssize_t r;
    do {
        r = sendmsg(sock, &msg, MSG_NOSIGNAL);
    } while (r < 0 && errno == EINTR);
    if (r < 0)
        die(c, "send the pty master to the console socket");
}

/* args: socket fd, rows, cols, uid, mount /dev/console (0/1) */
void do_setup_terminal(struct init_ctx *c, int sock, int rows, int cols, int64_t uid, int console)
{
    int master = open("/dev/pts/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (master < 0 && (errno == ENOENT || errno == ENODEV))
        master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (master < 0)
        die(c, "terminal: open /dev/pts/ptmx (is devpts mounted at /dev/pts?)");
    int unlock = 0;
    if (ioctl(master, TIOCSPTLCK, &unlock) < 0)
        die(c, "terminal: unlock the pty");
    unsigned int n;
    if (ioctl(master, TIOCGPTN, &n) < 0)
        die(c, "terminal: get the pty number");
    char slave_path[64];
    snprintf(slave_path, sizeof slave_path, "/dev/pts/%u", n);
    /* The peer through the master: no path lookup that could be raced. */
    int slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (slave < 0)
        slave = open(slave_path, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (slave < 0)
        die(c, "terminal: open %s", slave_path);
    if (rows > 0 || cols > 0) {
        struct winsize ws = {.ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols};
        if (ioctl(master, TIOCSWINSZ, &ws) < 0)
            die(c, "terminal: set the size (process.consoleSize)");
    }
    if (console) {
        int fd = open("/dev/console", O_CREAT | O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC, 0600);
        if (fd < 0 && errno != EEXIST)
            die(c, "terminal: create /dev/console");
        if (fd >= 0)
            close(fd);
        /* Bind the pty we hold onto the very file we made or found, both
         * by fd: a symlink swapped in at /dev/console (or at /dev/pts/N)
         * cannot redirect the mount (CVE-2025-52565). */
        int target = open("/dev/console", O_PATH | O_NOFOLLOW | O_CLOEXEC);
        struct stat st;
        if (target < 0 || fstat(target, &st) < 0)
            die(c, "terminal: open /dev/console");
        if (!S_ISREG(st.st_mode) && !S_ISCHR(st.st_mode))
            die_errno(c, EPERM, "terminal: /dev/console is not a file or a device (refused)");
        char src[64], dst[64];
        snprintf(src, sizeof src, "/proc/self/fd/%d", slave);
        snprintf(dst, sizeof dst, "/proc/self/fd/%d", target);
        if (mount(src, dst, NULL, MS_BIND, NULL) < 0)
            die(c, "terminal: bind %s to /dev/console", slave_path);
        close(target);
    }
    send_master(c, sock, master);
    close(master);
    close(sock);
    if (uid >= 0 && fchown(slave, (uid_t)uid, (gid_t)-1) < 0)
        die(c, "terminal: chown %s to uid %lld", slave_path, (long long)uid);
    for (int i = 0; i < 3; i++)
        if (slave != i && dup3(slave, i, 0) < 0)
            die(c, "terminal: make %s fd %d", slave_path, i);
    if (slave > 2)
        close(slave);
    else if (fcntl(slave, F_SETFD, 0) < 0)   /* it is stdio: keep it */
        die(c, "terminal: keep %s open across exec", slave_path);
    if (ioctl(0, TIOCSCTTY, 0) < 0)
        die(c, "terminal: make %s the controlling terminal", slave_path);
}
