/* The C core of ociruntime: what must not run in Python.
 *
 * Python (ociruntime/plan.py) compiles a container's config into a *plan*:
 * a flat list of steps, each an opcode and its arguments.  oci_spawn()
 * clones the container init and the init carries the steps out, one by
 * one, in plain C.  No Python runs in the child after clone.
 *
 * Plan wire format (little endian, what plan.py writes):
 *   step := u32 op, u32 argc, arg * argc
 *   arg  := u32 kind (0 int | 1 str), then i64 value | u32 len, bytes, NUL
 *
 * The init talks to the runtime over a SOCK_SEQPACKET socket with
 * fixed-size struct oci_msg messages (see MSG_*).  A failing step sends
 * MSG_ERROR with errno and a message naming the step and path, then exits.
 */
#ifndef OCI_CORE_H
#define OCI_CORE_H
#include <stdint.h>
#include <stddef.h>

/* Keep this enum and ociruntime/plan.py in the same order (a test checks). */
enum oci_op {
    OP_SETNS = 1,          /* path, nstype: join a namespace by path */
    OP_CLONE,              /* flags: fork the next stage with new namespaces */
    OP_UNSHARE,            /* flags: e.g. CLONE_NEWTIME, CLONE_NEWCGROUP */
    OP_SYNC_HELLO,         /* tell the runtime we exist, wait for its go */
    OP_SETID_ROOT,         /* become uid/gid 0 in a (new or joined) user ns */
    OP_SETHOSTNAME,        /* name */
    OP_SETDOMAINNAME,      /* name */
    OP_ROOTFS,             /* rootfs, propagation flags: prepare the root */
    OP_MOUNT,              /* src, dest, fstype, flags, data, propagation, kind */
    OP_MKNOD,              /* dest, mode, major, minor, uid, gid */
    OP_BIND_DEVICE,        /* host path, dest, uid, gid (user ns: no mknod) */
    OP_SYMLINK,            /* target, dest */
    OP_MKDIR,              /* dest, mode */
    OP_PIVOT_ROOT,         /* rootfs */
    OP_MOVE_ROOT,          /* rootfs (--no-pivot: MS_MOVE + chroot) */
    OP_WRITE_FILE,         /* path, content (after pivot: sysctl) */
    OP_READONLY_PATH,      /* path */
    OP_MASK_PATH,          /* path */
    OP_REMOUNT_ROOT,       /* flags: root.readonly, root propagation */
    OP_SETRLIMIT,          /* resource, soft, hard */
    OP_CAPBSET,            /* keep mask: drop the rest of the bounding set */
    OP_SETGROUPS,          /* gid... */
    OP_SETUSER,            /* uid, gid (keeps capabilities for OP_CAPS) */
    OP_CAPS,               /* effective, permitted, inheritable, ambient */
    OP_UMASK,              /* mask */
    OP_NO_NEW_PRIVS,
    OP_CHDIR,              /* path */
    OP_FIND_EXEC,          /* argv0, PATH: resolve what OP_EXEC runs */
    OP_SYNC_READY,         /* tell the runtime the container is created */
    OP_WAIT_START,         /* fd: block until `start` writes to the fifo */
    OP_CLOSE_FDS,          /* first fd not to pass to the process */
    OP_EXEC,               /* argc, argv..., envc, env... */
    OP_SET_DUMPABLE,       /* 0/1: /proc/PID/exe must not be reopenable */
    OP_SETSID,             /* new session (no terminal: like runc) */
    OP_CLOSE,              /* fd...: the runtime's own (its lock) */
    OP__COUNT
};

/* Mount kinds for OP_MOUNT: what to make at the destination. */
enum oci_mount_kind { MOUNT_DIR = 0, MOUNT_FILE = 1 };

enum oci_msg_type {
    MSG_ERROR = 1,   /* err, text */
    MSG_HELLO,       /* init -> runtime: namespaces exist, please set me up */
    MSG_GO,          /* runtime -> init: ids mapped, cgroups joined */
    MSG_READY,       /* init -> runtime: created, waiting for start */
    MSG_PID,         /* intermediate -> runtime: value = pid of the init */
};

struct oci_msg {
    int32_t type;
    int32_t err;       /* errno of a failure, 0 if none */
    int64_t value;
    char text[496];
};

/* Fork the container init (directly, or through an intermediate process
 * when the plan joins namespaces before OP_CLONE) and run the plan in it.
 * Returns the pid of the first child in the caller's pid namespace
 * (the init itself, or the intermediate whose MSG_PID names the init),
 * or -errno.  Never returns in the child. */
int oci_spawn(const uint8_t *plan, size_t len, int sync_fd);

/* Helpers for the Python side, so it need not import socket/fcntl/struct. */
int oci_socketpair(int fds[2]);
int oci_recv(int fd, struct oci_msg *m);          /* bytes read or -errno */
int oci_send(int fd, int type, int64_t value);    /* 0 or -errno */
int oci_move_fd_above(int fd, int min);           /* new fd or -errno */
int oci_set_child_subreaper(void);                /* 0 or -errno */
#endif
