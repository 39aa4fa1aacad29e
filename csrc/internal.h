/* Declarations shared by the C core's files; not part of the cffi API. */
#ifndef OCI_INTERNAL_H
#define OCI_INTERNAL_H
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>
#include "core.h"

struct arg {
    int is_str;
    int64_t num;
    const char *str;
};

struct step {
    uint32_t op;
    uint32_t argc;
    struct arg *args;
};

/* Where the init's time goes, for --debug's phase trace: each step's
 * duration is added to its phase's total, sent with MSG_HELLO and
 * MSG_READY (plan.c: send_phases). */
enum oci_phase { PH_PROCESS = 0, PH_NAMESPACES, PH_CGROUPS, PH_MOUNTS, PH_HOOKS, PH_SECCOMP,
                 PH_WAIT, PH__COUNT };

/* The init's state while it runs a plan. */
struct init_ctx {
    int sync_in;      /* pipe from the runtime (MSG_GO), -1 once it is gone */
    int sync_out;     /* pipe to the runtime, -1 once it is gone */
    int root_fd;      /* O_PATH fd of the rootfs, before pivot_root */
    const char *exec_path;   /* resolved by OP_FIND_EXEC */
    int64_t pid;      /* our pid as the runtime sees it (MSG_GO's value), 0 if unknown */
    int report_fd;    /* after create: where failures go (0: none; see OP_REPORT_FD) */
    int64_t started;              /* when ociruntime-init's clone returned in us */
    int64_t phase_ns[PH__COUNT];   /* time spent in each phase's steps */
    int seccomp_cached;   /* run_seccomp_build took the filter from the cache */
};

/* Report a failure to the runtime and exit; errno is taken as the cause.
 * The message names the step and its path: "mount proc to /proc". */
void die(struct init_ctx *c, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 2, 3)));
/* Same, with an explicit errno (0 means: the message says it all). */
void die_errno(struct init_ctx *c, int err, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 3, 4)));

/* plan.c: decode a plan (strings point into buf, which must outlive the
 * steps): 0 or -EINVAL.  fork() with namespace flags, the child born in
 * the cgroup2 directory cgroup_fd if >= 0 (clone3 CLONE_INTO_CGROUP). */
int decode_plan(const uint8_t *buf, size_t len, struct step **out, size_t *n_out);
pid_t clone_fork_into(unsigned long flags, int cgroup_fd);

/* Runs steps [i, n) of a decoded plan; returns only through exec or exit. */
void run_plan(struct init_ctx *c, struct step *steps, size_t n, size_t i)
    __attribute__((noreturn));
size_t run_seccomp_build(struct init_ctx *c, struct step *steps, size_t n, size_t i);

/* mounts.c */
void do_rootfs(struct init_ctx *c, const char *rootfs, unsigned long prop);
void do_mount(struct init_ctx *c, struct step *s);
void do_mknod(struct init_ctx *c, struct step *s);
void do_bind_device(struct init_ctx *c, struct step *s);
void do_symlink(struct init_ctx *c, const char *target, const char *dest);
void do_mkdir(struct init_ctx *c, const char *dest, int mode);
void do_pivot_root(struct init_ctx *c, const char *rootfs);
void do_move_root(struct init_ctx *c, const char *rootfs);
void do_readonly_path(struct init_ctx *c, const char *path);
void do_mask_path(struct init_ctx *c, const char *path);
void do_remount_root(struct init_ctx *c, unsigned long flags);
void do_chroot(struct init_ctx *c, const char *rootfs);
void do_reopen_dev_null(struct init_ctx *c);

/* mount_fds.c: mounting by fd (see there) */
void add_source(struct init_ctx *c, const char *src);
void sources_socket(struct init_ctx *c);
void sources_child(void);
void send_sources(pid_t pid);
int bind_tree(struct init_ctx *c, const char *src, int index, int recursive);
void set_bind_flags(struct init_ctx *c, int fd, unsigned long flags, const char *dest);
void set_propagation(struct init_ctx *c, int fd, unsigned long prop, const char *dest);
void attach_tree(struct init_ctx *c, int tree, int target, const char *dest);
void verify_mounted(struct init_ctx *c, int root, int fd, const char *dest);
int reopen_new_mount(struct init_ctx *c, int under, const char *dest);
void remember_mount(struct init_ctx *c, const char *dest, int fd);
int mount_at(const char *dest);
void forget_mounts(void);

/* process.c */
void do_setid_root(struct init_ctx *c);
void do_setrlimit(struct init_ctx *c, int res, uint64_t soft, uint64_t hard);
void do_capbset(struct init_ctx *c, uint64_t keep);
void do_setgroups(struct init_ctx *c, struct step *s);
void do_setuser(struct init_ctx *c, uint32_t uid, uint32_t gid);
void do_caps(struct init_ctx *c, uint64_t eff, uint64_t perm, uint64_t inh, uint64_t amb);
void do_find_exec(struct init_ctx *c, const char *argv0, const char *path);
void do_exec(struct init_ctx *c, struct step *s) __attribute__((noreturn));
void do_write_file(struct init_ctx *c, const char *path, const char *content);
void do_chdir(struct init_ctx *c, const char *cwd);

/* terminal.c */
void do_setup_terminal(struct init_ctx *c, int sock, int rows, int cols, int64_t uid, int console);

/* seccomp.c */
void do_seccomp(struct init_ctx *c, struct step *s);
void do_seccomp_rule(struct init_ctx *c, struct step *s);
void do_seccomp_export(struct init_ctx *c);
void do_seccomp_load(struct init_ctx *c, struct step *s);
void do_seccomp_bpf(struct init_ctx *c, struct step *s);
void do_seccomp_save(struct init_ctx *c, int fd);
struct sock_filter;
/* The compiled program: taken from the cache, or read to save it. */
void seccomp_use_compiled(unsigned long flags, struct sock_filter *insns, unsigned short count);
int seccomp_compiled(const struct sock_filter **insns, unsigned short *count);

/* seccomp_cache.c: compiled filters kept between creates (1: a hit) */
int seccomp_cache_load(const char *dir, struct step *steps, size_t n, unsigned long flags);
void seccomp_cache_store(const char *dir, struct step *steps, size_t n);

/* hooks.c */
void do_hook(struct init_ctx *c, struct step *s);

/* mounts.c: an O_PATH fd of dest in the rootfs, made if kind >= 0 */
int open_in_root(struct init_ctx *c, const char *dest, int kind);

/* mount_attrs.c */
void do_mount_setattr(struct init_ctx *c, const char *dest, uint64_t set, uint64_t clr, int recursive);
void do_move_mount(struct init_ctx *c, int tree, const char *dest, int kind, unsigned long prop);

/* process_attrs.c */
void do_sched(struct init_ctx *c, struct step *s);
void do_ioprio(struct init_ctx *c, int64_t value);
void do_personality(struct init_ctx *c, int64_t persona);
void do_mempolicy(struct init_ctx *c, struct step *s);
void do_affinity(struct init_ctx *c, struct step *s);
void do_lo_up(struct init_ctx *c);
void do_session_keyring(struct init_ctx *c, const char *name);

/* sealed_exe.c: returns only when we run from a sealed memfd (else execs
 * a sealed copy of ourselves with argv) */
void ensure_sealed_self(struct init_ctx *c, char **argv);

/* sync.c */
void sync_send(struct init_ctx *c, int type, int64_t value);
void sync_send_text(struct init_ctx *c, int type, int64_t value, const char *text);
int64_t now_ns(void);   /* CLOCK_MONOTONIC, the clock Python's time.monotonic_ns reads */
int64_t sync_wait(struct init_ctx *c, int type);   /* the message's value */
#endif
