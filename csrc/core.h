/* The C core of ociruntime: what must not run in Python.
 *
 * Python (ociruntime/plan.py) compiles a container's config into a *plan*:
 * a flat list of steps, each an opcode and its arguments.  The runtime
 * starts the small C program ociruntime-init (spawn.c) with the plan; it
 * clones the container init and the init carries the steps out, one by
 * one, in plain C.  No Python runs in the init, nor is it a copy of Python.
 *
 * This header is also the cffi API of ociruntime._core (build_core.py):
 * what the runtime itself calls in C (hooks, idmapped trees, device
 * programs, the subreaper), and the wire formats Python mirrors.
 *
 * Plan wire format (little endian, what plan.py writes):
 *   step := u32 op, u32 argc, arg * argc
 *   arg  := u32 kind (0 int | 1 str), then i64 value | u32 len, bytes, NUL
 *
 * The init talks to the runtime over two pipes (one each way) with
 * fixed-size struct oci_msg messages (see MSG_*; ociruntime/core.py reads
 * and writes them with plain os.read/os.write).  A failing step sends
 * MSG_ERROR with errno and a message naming the step and path, then exits.
 */
#ifndef OCI_CORE_H
#define OCI_CORE_H
#include <stdint.h>
#include <stddef.h>

/* Keep this enum and ociruntime/plan.py in the same order (a test checks). */
enum oci_op {
    OP_SETNS = 1,          /* path, nstype: join a namespace by path */
    OP_CLONE,              /* flags[, cgroup2 dir fd]: fork the next stage with new
                              namespaces (born in that cgroup: CLONE_INTO_CGROUP) */
    OP_UNSHARE,            /* flags: e.g. CLONE_NEWTIME, CLONE_NEWCGROUP */
    OP_SYNC_HELLO,         /* tell the runtime we exist, wait for its go */
    OP_SETID_ROOT,         /* become uid/gid 0 in a (new or joined) user ns */
    OP_SETHOSTNAME,        /* name */
    OP_SETDOMAINNAME,      /* name */
    OP_ROOTFS,             /* rootfs, propagation flags: prepare the root */
    OP_MOUNT,              /* src, dest, fstype, flags, data, propagation, kind[, source index] */
    OP_MKNOD,              /* dest, mode, major, minor, uid, gid */
    OP_BIND_DEVICE,        /* host path, dest, uid, gid (user ns: no mknod) */
    OP_SYMLINK,            /* target, dest */
    OP_MKDIR,              /* dest, mode (-1: make what is missing, chmod nothing) */
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
    OP_SETUP_TERMINAL,     /* sock fd, rows, cols, uid, mount console: pty */
    OP_SECCOMP,            /* default action, flags, narch, arch names...: start the filter */
    OP_SECCOMP_RULE,       /* action, nargs, (index, op, value, value2)*nargs, names... */
    OP_SECCOMP_EXPORT,     /* compile the filter to BPF (errors still reach the runtime) */
    OP_SECCOMP_LOAD,       /* listener socket fd, state JSON fragments...: load it */
    OP_SYNC_HOOKS,         /* ask the runtime to run prestart/createRuntime hooks, wait */
    OP_HOOK,               /* kind, index, path, timeout, state head, tail, argc, argv..., envc, env... */
    OP_REPORT_FD,          /* fd: after create, failures are written there (start reads them) */
    OP_MOUNT_SETATTR,      /* dest, attr_set, attr_clr, recursive: mount_setattr */
    OP_MOVE_MOUNT,         /* fd of a detached (idmapped) mount, dest, kind[, propagation] */
    OP_SCHED,              /* policy, flags, nice, priority, runtime, deadline, period */
    OP_IOPRIO,             /* ioprio value (class << 13 | level) */
    OP_PERSONALITY,        /* persona */
    OP_MEMPOLICY,          /* mode | flags, maxnode, mask words... */
    OP_AFFINITY,           /* cpu mask words (64 cpus each)... */
    OP_LO_UP,              /* bring lo up in a new network namespace */
    OP_JOIN_CGROUP,        /* (fd, path)...: write "0" to v1 `tasks` files: join them */
    OP_SESSION_KEYRING,    /* name: join (or make) a session keyring of that name */
    OP_OPEN_SOURCE,        /* source: leading the plan, a bind's source that ociruntime-init
                              opens for the init (OP_MOUNT's source index: the nth) */
    OP_CHROOT,             /* rootfs: no mount namespace of its own: chroot, mount nothing */
    OP_SECCOMP_BPF,        /* flags, insn...: a filter compiled before (OP_SECCOMP_SAVE),
                              each struct sock_filter as an int64, for OP_SECCOMP_LOAD */
    OP_SECCOMP_SAVE,       /* fd: write the compiled filter there (flags, then the BPF) and
                              exit 0: the front end's cache of exec's filter */
    OP_REOPEN_DEV_NULL,    /* after pivot_root: stdio on the null device -> the container's */
    OP_SECCOMP_CACHE,      /* dir: before the build steps (OP_SECCOMP...OP_SECCOMP_EXPORT), where
                              compiled filters are kept between creates (seccomp_cache.c) */
    OP__COUNT
};

/* Mount kinds for OP_MOUNT: what to make at the destination. */
enum oci_mount_kind { MOUNT_DIR = 0, MOUNT_FILE = 1 };
/* OR'ed into the kind: after mounting, copy what the destination directory
 * held into the new mount (the tmpcopyup mount option, tmpfs only). */
#define MOUNT_COPYUP 4

enum oci_msg_type {
    MSG_ERROR = 1,   /* err, text */
    MSG_HELLO,       /* init -> runtime: namespaces exist, please set me up */
    MSG_GO,          /* runtime -> init: ids mapped, cgroups joined */
    MSG_READY,       /* init -> runtime: created, waiting for start */
    MSG_PID,         /* intermediate -> runtime: value = pid of the init;
                        ociruntime-init -> runtime (report pipe): of its child */
    MSG_HOOKS,       /* init -> runtime: mounts done, run prestart/createRuntime */
};

struct oci_msg {
    int32_t type;
    int32_t err;       /* errno of a failure, 0 if none */
    int64_t value;
    char text[496];
};

/* `run` (subreaper.c): PR_SET_CHILD_SUBREAPER; 0 or -errno. */
int oci_set_child_subreaper(void);

/* Hooks (hooks.c): run path with argv/envp (envp NULL: ours), the state on
 * stdin, its cwd cwd_fd (-1: ours), killed after timeout_secs (0: never).
 * 0 if it exited 0, OCI_HOOK_FAILED (*wstatus says how), OCI_HOOK_TIMEOUT,
 * or -errno if it could not be run.  out gets the start of its output. */
enum { OCI_HOOK_FAILED = 1, OCI_HOOK_TIMEOUT = 2 };
int oci_run_hook(const char *path, char *const argv[], char *const envp[],
                 const char *state, size_t state_len, int timeout_secs, int cwd_fd,
                 char *out, size_t out_size, int *wstatus);

/* Idmapped and recursive-attribute mounts (idmap.c): a user
 * namespace with these maps, as an fd (its process is gone); a detached
 * copy of path's mount (recursive: with its submounts) with attributes
 * set (attr_recursive: on all of it) and idmapped to userns_fd if >= 0.
 * fd or -errno. */
int oci_userns_fd(const char *uid_map, const char *gid_map);
int oci_open_tree(const char *path, int recursive, int attr_recursive, uint64_t attr_set,
                  uint64_t attr_clr, int userns_fd);

/* cgroup v2 device filter (bpf_devices.c): load the eBPF program insns
 * (n_insns struct bpf_insn) and attach it to the cgroup2 directory,
 * replacing any device program attached there before.  0 or -errno; the
 * verifier's log goes to log.  oci_bpf_device_progs counts the attached. */
int oci_bpf_devices_attach(const char *cgroup_dir, const void *insns, unsigned n_insns,
                           char *log, unsigned log_size);
int oci_bpf_device_progs(const char *cgroup_dir);
#endif
