/* `ociruntime exec`, answered by the C front end.
 *
 * The same exec as ociruntime/execute.py, for the common case, without
 * Python's start-up: the process comes from the container's process in
 * the exec template create left (<root>/<id>/exec: exec_template.py)
 * changed by the command line, or from a process.json (exec_json.c); the
 * plan is the one execute.py compiles, step for step, encoded as plan.py
 * encodes it (csrc/core.h); ociruntime-init runs it from a sealed memfd
 * copy as for every exec (sealed_exe.c: CVE-2019-5736).
 *
 * The front end's rule holds: anything not plain -- a flag it does not
 * take (--cgroup, --apparmor, -t without a console socket...), no
 * template, a container not running or created, any check that fails, any
 * failure before the process exec'd -- hands the whole command to Python,
 * which says what is wrong.  Nothing of the container is changed before:
 * a process that was started and failed is killed and reaped first. */
#define _GNU_SOURCE
#include "core.h"
#include "exec_proc.h"
#include "frontend.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define TMPL_MAGIC "ociruntime-exec 1\n"
#define CLONE_PARENT_ 0x00008000
#define CLONE_NEWCGROUP_ 0x02000000
#define MAX_NS 16
#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define PASSWD_LIMIT (1 << 20)

/* -- the exec template --------------------------------------------------- */

struct ns_entry {
    const char *entry, *name;
    long flag;
};

struct tmpl {
    const char *init, *chroot, *keyring;
    long long pid, start;
    struct ns_entry ns[MAX_NS];
    int n_ns;
    const char *tasks[MAX_PATHS], *v2;
    int n_tasks;
    struct exec_proc proc;      /* the container's process */
    struct cap_table caps;
    struct blob seccomp;        /* the filter's build steps, encoded */
};

static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    char *end;
    if (*s < '0' || *s > '9')
        return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v > max)
        return -1;
    *out = v;
    return 0;
}

/* Parse what exec_template.write wrote; 0 or -1. */
static int parse_tmpl(char *buf, size_t len, struct tmpl *t)
{
    memset(t, 0, sizeof *t);
    t->proc.umask = 022;
    char *p = buf, *end = buf + len;
    if (len < strlen(TMPL_MAGIC) || strncmp(p, TMPL_MAGIC, strlen(TMPL_MAGIC)))
        return -1;
    p += strlen(TMPL_MAGIC);
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p)), *val;
        if (!nl || !(val = memchr(p, ' ', (size_t)(nl - p))))
            return -1;
        *nl = '\0';
        *val++ = '\0';
        uint64_t v, w[5];
        int ok = 0;
        if (!strcmp(p, "seccomp")) {
            if (parse_u64(val, (size_t)(end - nl - 1), &v) < 0 || v + 1 > (size_t)(end - nl - 1) || nl[1 + v] != '\n')
                return -1;
            t->seccomp.p = nl + 1;
            t->seccomp.len = v;
            p = nl + 2 + v;
            continue;
        } else if (!strcmp(p, "init")) {
            t->init = val, ok = 1;
        } else if (!strcmp(p, "pid")) {
            ok = parse_u64(val, INT32_MAX, &v) == 0, t->pid = (long long)v;
        } else if (!strcmp(p, "start")) {
            ok = parse_u64(val, INT64_MAX, &v) == 0, t->start = (long long)v;
        } else if (!strcmp(p, "ns") && t->n_ns < MAX_NS) {
            struct ns_entry *e = &t->ns[t->n_ns++];
            char *a = strchr(val, ' '), *b = a ? strchr(a + 1, ' ') : NULL;
            if (a && b) {
                *a = *b = '\0';
                e->entry = val, e->name = a + 1;
                ok = parse_u64(b + 1, INT32_MAX, &v) == 0, e->flag = (long)v;
            }
        } else if (!strcmp(p, "tasks") && t->n_tasks < MAX_PATHS) {
            t->tasks[t->n_tasks++] = val, ok = 1;
        } else if (!strcmp(p, "v2")) {
            t->v2 = val, ok = 1;
        } else if (!strcmp(p, "chroot")) {
            t->chroot = val, ok = 1;
        } else if (!strcmp(p, "keyring")) {
            t->keyring = val, ok = 1;
        } else if (!strcmp(p, "uid") || !strcmp(p, "gid") || !strcmp(p, "umask")) {
            ok = parse_u64(val, UINT32_MAX, &v) == 0;
            *(p[0] == 'u' && p[1] == 'i' ? &t->proc.uid : p[0] == 'g' ? &t->proc.gid : &t->proc.umask) = (uint32_t)v;
        } else if (!strcmp(p, "agid")) {
            uint32_t *g = realloc(t->proc.gids, (t->proc.ngids + 1) * sizeof *g);
            if ((ok = g && parse_u64(val, UINT32_MAX, &v) == 0))
                t->proc.gids = g, g[t->proc.ngids++] = (uint32_t)v;
        } else if (!strcmp(p, "env")) {
            ok = strv_add(&t->proc.env, val) == 0;
        } else if (!strcmp(p, "cwd")) {
            ok = (t->proc.cwd = strdup(val)) != NULL;
        } else if (!strcmp(p, "caps")) {
            ok = sscanf(val, "%lu %lu %lu %lu %lu", &w[0], &w[1], &w[2], &w[3], &w[4]) == 5;
            memcpy(t->proc.caps, w, sizeof w);
        } else if (!strcmp(p, "nnp")) {
            ok = 1, t->proc.nnp = !strcmp(val, "1");
        } else if (!strcmp(p, "rlimit") && t->proc.nrl < EXEC_MAX_RLIMITS) {
            struct exec_rlimit *r = &t->proc.rl[t->proc.nrl++];
            ok = sscanf(val, "%d %lu %lu", &r->res, &w[0], &w[1]) == 3;
            r->soft = w[0], r->hard = w[1];
        } else if (!strcmp(p, "oom")) {
            ok = sscanf(val, "%d", &t->proc.oom) == 1, t->proc.has_oom = 1;
        } else if (!strcmp(p, "console")) {
            ok = sscanf(val, "%lu %lu", &w[0], &w[1]) == 2;
            t->proc.rows = w[0], t->proc.cols = w[1];
        } else if (!strcmp(p, "cap") && t->caps.n < EXEC_NCAPS) {
            char *sp = strchr(val, ' ');
            if (sp && (*sp = '\0', parse_u64(sp + 1, EXEC_NCAPS - 1, &v) == 0) && (int)v == t->caps.n)
                t->caps.name[t->caps.n++] = val, ok = 1;
        }
        if (!ok)
            return -1;   /* a line we do not know: Python's exec */
        p = nl + 1;
    }
    return t->init && t->pid > 0 && t->proc.cwd ? 0 : -1;
}

/* -- the command line: cli.py's exec flags -------------------------------- */

struct opts {
    const char *process, *user, *cwd, *pid_file, *console_socket;
    struct strv env, caps, gids;
    int tty, detach, nnp, preserve_fds;
    const char *id;
    char **args;
    int nargs;
};

/* Is arg -name or --name (value: after '=', or NULL)? */
static int flag_is(const char *arg, const char *name, const char *alias, const char **value)
{
    const char *a = arg + (arg[1] == '-' ? 2 : 1);
    for (const char *n = name; n; n = n == name ? alias : NULL) {
        size_t k = strlen(n);
        if (!strncmp(a, n, k) && (a[k] == '\0' || a[k] == '=')) {
            *value = a[k] == '=' ? a + k + 1 : NULL;
            return 1;
        }
    }
    return 0;
}

/* 0, or -1 for anything Python must parse. */
static int parse_opts(int argc, char **argv, struct opts *o)
{
    memset(o, 0, sizeof *o);
    int i = 0;
    for (; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "--") || (a[1] == '-' && a[2] == '-'))
            return -1;
        /* booleans: a value (-t=false) is Python's */
        int *b = flag_is(a, "tty", "t", &v) ? &o->tty : flag_is(a, "detach", "d", &v) ? &o->detach
               : flag_is(a, "no-new-privs", NULL, &v) ? &o->nnp : NULL;
        int ignored = !b && (flag_is(a, "ignore-paused", NULL, &v) || flag_is(a, "no-subreaper", NULL, &v));
        if (b || ignored) {
            if (v)
                return -1;
            if (b)
                *b = 1;
            continue;
        }
        static const char *const names[][2] = {
            {"process", "p"}, {"user", "u"}, {"cwd", NULL}, {"pid-file", NULL},
            {"console-socket", NULL}, {"preserve-fds", NULL}, {"env", "e"}, {"cap", "c"},
            {"additional-gids", "g"},
        };
        int k = 0, n = (int)(sizeof names / sizeof *names);
        while (k < n && !flag_is(a, names[k][0], names[k][1], &v))
            k++;
        if (k == n)
            return -1;   /* --cgroup, --apparmor, --process-label, --help, a typo */
        if (!v && (v = argv[++i]) == NULL)
            return -1;
        const char **slot[] = {&o->process, &o->user, &o->cwd, &o->pid_file, &o->console_socket};
        if (k < 5) {
            *slot[k] = v;
        } else if (k == 5) {
            uint64_t fds;
            if (parse_u64(v, 1000, &fds) < 0)
                return -1;
            o->preserve_fds = (int)fds;
        } else if (strv_add(k == 6 ? &o->env : k == 7 ? &o->caps : &o->gids, v) < 0) {
            return -1;
        }
    }
    if (i == argc)
        return -1;
    o->id = argv[i++];
    o->args = argv + i;
    o->nargs = argc - i;
    return 0;
}

/* -- the process: execute.build_process ------------------------------------ */

static int read_path(const char *path, char **buf, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    struct stat st;
    if (fd < 0)
        return -1;
    int r = -1;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size < (16 << 20)
        && (*buf = malloc((size_t)st.st_size + 1)) != NULL) {
        size_t got = 0;
        ssize_t n;
        while (got < (size_t)st.st_size && (n = read(fd, *buf + got, (size_t)st.st_size - got)) > 0)
            got += (size_t)n;
        (*buf)[got] = '\0';
        *len = got;
        r = got == (size_t)st.st_size ? 0 : -1;
    }
    close(fd);
    return r;
}

/* The container's process changed by the flags (runc's getProcess). */
static int from_flags(struct tmpl *t, struct opts *o, struct exec_proc *p)
{
    *p = t->proc;   /* its vectors are extended in place: the template is not used again */
    memset(&p->args, 0, sizeof p->args);
    if (o->nargs == 0)
        return -1;
    for (int i = 0; i < o->nargs; i++)
        if (strv_add(&p->args, o->args[i]) < 0)
            return -1;
    if (o->cwd) {
        if (o->cwd[0] != '/')
            return -1;
        p->cwd = (char *)o->cwd;
    }
    for (size_t i = 0; i < o->env.n; i++)
        if (strv_add(&p->env, o->env.v[i]) < 0)
            return -1;
    p->terminal = o->tty;
    if (o->nnp)
        p->nnp = 1;
    if (o->user) {
        char user[64];   /* a copy: argv goes to Python if we give up */
        if (strlen(o->user) >= sizeof user)
            return -1;
        strcpy(user, o->user);
        char *colon = strchr(user, ':');
        uint64_t uid, gid;
        if (colon) {
            *colon = '\0';
            if (parse_u64(colon + 1, UINT32_MAX, &gid) < 0)
                return -1;
            p->gid = (uint32_t)gid;
        }
        if (parse_u64(user, UINT32_MAX, &uid) < 0)
            return -1;
        p->uid = (uint32_t)uid;
    }
    if (o->gids.n) {
        uint32_t *g = realloc(p->gids, (p->ngids + o->gids.n) * sizeof *g);
        if (!g)
            return -1;
        p->gids = g;
        for (size_t i = 0; i < o->gids.n; i++) {
            uint64_t v;
            if (parse_u64(o->gids.v[i], UINT32_MAX, &v) < 0)
                return -1;
            g[p->ngids++] = (uint32_t)v;
        }
    }
    for (size_t i = 0; i < o->caps.n; i++) {   /* all but the inheritable set */
        int n = cap_number(&t->caps, o->caps.v[i]);
        if (n < 0)
            return -1;
        for (int s = 0; s < 5; s++)
            if (s != 3)
                p->caps[s] |= 1ULL << n;
    }
    return 0;
}

/* execute._dedup_env: the last value of a variable wins, at the place
 * of its first. */
static int dedup_env(struct strv *env)
{
    struct strv out = {0};
    for (size_t i = 0; i < env->n; i++) {
        size_t k = strcspn(env->v[i], "=");
        int seen = 0;
        for (size_t j = 0; j < out.n && !seen; j++)
            seen = !strncmp(out.v[j], env->v[i], k) && (out.v[j][k] == '=' || out.v[j][k] == '\0')
                   && strcspn(out.v[j], "=") == k;
        if (seen)
            continue;
        const char *last = env->v[i];
        for (size_t j = i + 1; j < env->n; j++)
            if (strcspn(env->v[j], "=") == k && !strncmp(env->v[j], env->v[i], k))
                last = env->v[j];
        if (strv_add(&out, last) < 0)
            return -1;
    }
    *env = out;   /* the old vector is left: the process exits soon */
    return 0;
}

static const char *env_value(const struct strv *env, const char *key)
{
    size_t k = strlen(key);
    for (size_t i = 0; i < env->n; i++)
        if (!strncmp(env->v[i], key, k) && env->v[i][k] == '=')
            return env->v[i] + k + 1;
    return NULL;
}

/* HOME from the image's /etc/passwd (process.home_of).  The file is
 * hostile: resolved inside the container's root by the kernel
 * (RESOLVE_IN_ROOT), never across a mount (RESOLVE_NO_XDEV: Python's walk
 * judges a path through another mount), only a regular file, opened
 * non-blocking, at most PASSWD_LIMIT bytes.  Missing: "/".  Anything else
 * unusual (bytes beyond ASCII, line breaks Python splits on) is -1. */
static int home_of(long long pid, uint32_t uid, char **home)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%lld/root", pid);
    int root = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (root < 0)
        return -1;
    struct open_how how = {.flags = O_PATH | O_CLOEXEC,
                           .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_XDEV | RESOLVE_NO_MAGICLINKS};
    int fd = (int)syscall(SYS_openat2, root, "etc/passwd", &how, sizeof how);
    int err = errno;
    close(root);
    *home = "/";
    if (fd < 0)
        return err == ENOENT || err == ENOTDIR ? 0 : -1;
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return 0;
    }
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    int rfd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    close(fd);
    if (rfd < 0)
        return -1;
    char *data = malloc(PASSWD_LIMIT + 1);
    size_t len = 0;
    ssize_t n = 0;
    while (data && len < PASSWD_LIMIT && (n = read(rfd, data + len, PASSWD_LIMIT - len)) > 0)
        len += (size_t)n;
    close(rfd);
    if (!data || n < 0)
        return -1;
    data[len] = '\0';
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)data[i] >= 0x80 || data[i] == '\0' || data[i] == '\r'
            || data[i] == '\v' || data[i] == '\f' || (data[i] >= 0x1c && data[i] <= 0x1e))
            return -1;
    char want[16];
    snprintf(want, sizeof want, "%u", uid);
    for (char *line = data, *next; line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        char *f[7] = {0};
        int nf = 0;
        for (char *q = line; nf < 7; q++) {
            f[nf++] = q;
            if (!(q = strchr(q, ':')))
                break;
            *q = '\0';
        }
        if (nf >= 6 && !strcmp(f[2], want)) {
            *home = f[5][0] ? f[5] : "/";
            return 0;
        }
    }
    return 0;
}

/* -- the plan: plan.py's encoding ----------------------------------------- */

struct plan {
    uint8_t *p;
    size_t len, cap;
    int bad;
};

static void put(struct plan *b, const void *data, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n)
            cap *= 2;
        uint8_t *p = realloc(b->p, cap);
        if (!p) {
            b->bad = 1;
            return;
        }
        b->p = p, b->cap = cap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
}

static void put_u32(struct plan *b, uint32_t v) { put(b, &v, 4); }   /* little endian hosts */

static void step(struct plan *b, enum oci_op op, uint32_t argc)
{
    put_u32(b, op);
    put_u32(b, argc);
}

static void arg_int(struct plan *b, int64_t v)
{
    put_u32(b, 0);
    put(b, &v, 8);
}

static void arg_str(struct plan *b, const char *s)
{
    uint32_t n = (uint32_t)strlen(s);
    put_u32(b, 1);
    put_u32(b, n);
    put(b, s, n + 1);
}

/* -- running it ------------------------------------------------------------ */

struct run {
    int first_free;
    int ns_fd[MAX_NS];
    long ns_flag[MAX_NS];
    int n_ns;
    int tasks_fd[MAX_PATHS];
    int v2_fd, console_fd;
    int ours[2], theirs[2];   /* sync: (read, write) each */
};

/* fd, or a close-on-exec copy numbered >= min (fd closed); -1 on failure. */
static int above(int fd, int min)
{
    if (fd < 0 || fd >= min)
        return fd;
    int n = fcntl(fd, F_DUPFD_CLOEXEC, min);
    close(fd);
    return n;
}

/* execute._namespace_fds: the container's namespaces that are not ours. */
static int open_namespaces(const struct tmpl *t, struct run *r)
{
    for (int i = 0; i < t->n_ns; i++) {
        char theirs[96], ours[96];
        struct stat a, b;
        snprintf(theirs, sizeof theirs, "/proc/%lld/ns/%s", t->pid, t->ns[i].entry);
        snprintf(ours, sizeof ours, "/proc/self/ns/%s", t->ns[i].name);
        if (stat(theirs, &a) < 0) {
            snprintf(ours, sizeof ours, "/proc/%lld", t->pid);
            if (errno == ENOENT && access(ours, F_OK) == 0)
                continue;   /* this kernel has no such namespace */
            return -1;
        }
        if (stat(ours, &b) < 0)
            return -1;
        if (a.st_dev == b.st_dev && a.st_ino == b.st_ino)
            continue;
        int fd = above(open(theirs, O_RDONLY | O_CLOEXEC), r->first_free);
        if (fd < 0)
            return -1;
        r->ns_fd[r->n_ns] = fd;
        r->ns_flag[r->n_ns++] = t->ns[i].flag;
    }
    return 0;
}

static int open_cgroups(const struct tmpl *t, struct run *r)
{
    char path[PATH_MAX];
    for (int i = 0; i < t->n_tasks; i++) {
        snprintf(path, sizeof path, "%s/tasks", t->tasks[i]);
        if ((r->tasks_fd[i] = above(open(path, O_WRONLY | O_CLOEXEC), r->first_free)) < 0)
            return -1;
    }
    /* Born in the cgroup2 directory, unless it builds a seccomp filter
     * there (create's rule: not on the container's memory). */
    r->v2_fd = -1;
    if (t->v2 && !t->seccomp.p
        && (r->v2_fd = above(open(t->v2, O_PATH | O_DIRECTORY | O_CLOEXEC), r->first_free)) < 0)
        return -1;
    return 0;
}

static int connect_console(const char *path, int min)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sa.sun_path)
        return -1;
    strcpy(sa.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        close(fd);
        return -1;
    }
    return above(fd, min);
}

static int cached_bpf(int dfd, struct plan *b);

/* execute.exec_process's plan, step for step. */
static void encode(struct plan *b, const struct tmpl *t, const struct run *r, struct exec_proc *p,
                   const char *home, int dfd)
{
    int n_ns = r->n_ns, early = 0;
    if (n_ns) {
        step(b, OP_SET_DUMPABLE, 1);
        arg_int(b, 0);
    }
    for (int i = 0; i < n_ns; i++)
        if (r->ns_flag[i] != CLONE_NEWCGROUP_) {
            step(b, OP_SETNS, 2);
            arg_int(b, r->ns_fd[i]);
            arg_int(b, r->ns_flag[i]);
        }
    step(b, OP_CLONE, r->v2_fd >= 0 ? 2 : 1);
    arg_int(b, n_ns ? CLONE_PARENT_ : 0);
    if (r->v2_fd >= 0)
        arg_int(b, r->v2_fd);
    for (int i = 0; i < n_ns; i++)
        if (r->ns_flag[i] == CLONE_NEWCGROUP_) {
            step(b, OP_SETNS, 2);
            arg_int(b, r->ns_fd[i]);
            arg_int(b, r->ns_flag[i]);
        }
    if (n_ns) {
        step(b, OP_CLOSE, (uint32_t)n_ns);
        for (int i = 0; i < n_ns; i++)
            arg_int(b, r->ns_fd[i]);
    }
    step(b, OP_SET_DUMPABLE, 1);
    arg_int(b, 0);
    if (t->chroot) {
        step(b, OP_CHROOT, 1);
        arg_str(b, t->chroot);
    }
    if (t->n_tasks) {
        step(b, OP_JOIN_CGROUP, (uint32_t)(2 * t->n_tasks));
        for (int i = 0; i < t->n_tasks; i++) {
            arg_int(b, r->tasks_fd[i]);
            arg_str(b, t->tasks[i]);
        }
    }
    step(b, OP_SYNC_HELLO, 0);
    if (t->keyring) {
        step(b, OP_SESSION_KEYRING, 1);
        arg_str(b, t->keyring);
    }
    step(b, OP_SETSID, 0);
    if (p->terminal) {   /* terminal.plan_terminal, not proxied */
        step(b, OP_SETUP_TERMINAL, 5);
        arg_int(b, r->console_fd);
        arg_int(b, (int64_t)p->rows);
        arg_int(b, (int64_t)p->cols);
        arg_int(b, p->uid);
        arg_int(b, 0);
    }
    /* process.plan_process: limits, bounding set, groups, user; then as
     * the user plan_exec's steps and the filter's build (seccomp.py:
     * loaded here when it cannot wait for no_new_privs or CAP_SYS_ADMIN);
     * capabilities, no_new_privs, the filter, exec. */
    for (int i = 0; i < p->nrl; i++) {
        step(b, OP_SETRLIMIT, 3);
        arg_int(b, p->rl[i].res);
        arg_int(b, (int64_t)p->rl[i].soft);
        arg_int(b, (int64_t)p->rl[i].hard);
    }
    step(b, OP_CAPBSET, 1);
    arg_int(b, (int64_t)p->caps[0]);
    step(b, OP_SETGROUPS, (uint32_t)p->ngids);
    for (size_t i = 0; i < p->ngids; i++)
        arg_int(b, p->gids[i]);
    step(b, OP_SETUSER, 2);
    arg_int(b, p->uid);
    arg_int(b, p->gid);
    const char *path = env_value(&p->env, "PATH");
    if (!env_value(&p->env, "HOME")) {
        char *h = malloc(strlen(home) + 6);
        if (!h || (sprintf(h, "HOME=%s", home), strv_add(&p->env, h) < 0))
            b->bad = 1;
        free(h);
    }
    step(b, OP_CHDIR, 1);
    arg_str(b, p->cwd);
    step(b, OP_FIND_EXEC, 2);
    arg_str(b, p->args.v[0]);
    arg_str(b, path ? path : DEFAULT_PATH);
    step(b, OP_UMASK, 1);
    arg_int(b, p->umask);
    step(b, OP_CLOSE_FDS, 1);
    arg_int(b, r->first_free);
    if (t->seccomp.p) {
        if (cached_bpf(dfd, b) < 0)
            put(b, t->seccomp.p, t->seccomp.len);
        /* Filter.load_early */
        early = !p->nnp && !(p->caps[1] & (1ULL << 21));   /* CAP_SYS_ADMIN */
        if (early) {
            step(b, OP_SECCOMP_LOAD, 1);
            arg_int(b, -1);
        }
    }
    step(b, OP_CAPS, 4);
    for (int s = 1; s < 5; s++)
        arg_int(b, (int64_t)p->caps[s]);
    if (p->nnp)
        step(b, OP_NO_NEW_PRIVS, 0);
    if (t->seccomp.p && !early) {
        step(b, OP_SECCOMP_LOAD, 1);
        arg_int(b, -1);
    }
    step(b, OP_EXEC, (uint32_t)(2 + p->args.n + p->env.n));
    arg_int(b, (int64_t)p->args.n);
    for (size_t i = 0; i < p->args.n; i++)
        arg_str(b, p->args.v[i]);
    arg_int(b, (int64_t)p->env.n);
    for (size_t i = 0; i < p->env.n; i++)
        arg_str(b, p->env.v[i]);
}

/* core._exe_copy: a close-on-exec memfd holding ociruntime-init, sealed
 * here, by its writer (sealed_exe.c says why); the init checks the seals.
 * Kernels before 6.3 have no F_SEAL_EXEC (EINVAL): the others suffice. */
#define EXE_SEALS (F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)
static int exe_seal(int fd)
{
    if (fcntl(fd, F_ADD_SEALS, EXE_SEALS | 0x20 /* F_SEAL_EXEC */) == 0)
        return 0;
    return errno == EINVAL ? fcntl(fd, F_ADD_SEALS, EXE_SEALS) : -1;
}

static int exe_copy(const char *init)
{
    int src = open(init, O_RDONLY | O_CLOEXEC);
    if (src < 0)
        return -1;
    int fd = memfd_create("ociruntime-init", MFD_CLOEXEC | MFD_ALLOW_SEALING | 0x10 /* MFD_EXEC */);
    if (fd < 0 && errno == EINVAL)
        fd = memfd_create("ociruntime-init", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    struct stat st;
    off_t off = 0;
    int sized = fd >= 0 && fstat(src, &st) == 0;
    if (sized)
        while (off < st.st_size && sendfile(fd, src, &off, (size_t)(st.st_size - off)) > 0)
            ;
    close(src);
    /* Any failure: no copy, and Python's exec does it all. */
    if (fd >= 0 && (!sized || off != st.st_size || exe_seal(fd) < 0)) {
        close(fd);
        fd = -1;
    }
    return fd;
}

static int read_msg(int fd, struct oci_msg *m)
{
    ssize_t n;
    do
        n = read(fd, m, sizeof *m);
    while (n < 0 && errno == EINTR);
    return n == 0 ? 0 : n == (ssize_t)sizeof *m ? 1 : -1;
}

static int send_msg(int fd, int type, int64_t value)
{
    struct oci_msg m = {.type = type, .value = value};
    return write(fd, &m, sizeof m) == (ssize_t)sizeof m ? 0 : -1;
}

/* core.spawn: start ociruntime-init from the memfd with the plan b, its
 * sync ends theirs, and the fds keep (which the plan names) with their
 * numbers; the pid of its first child, or -1. */
static pid_t spawn(const char *init, const int *keep, int nkeep, const int theirs[2],
                   int first_free, const struct plan *b, const char *root, const char *id)
{
    int exe = exe_copy(init), plan[2] = {-1, -1}, report[2] = {-1, -1};
    if (exe < 0 || pipe2(plan, O_CLOEXEC) < 0 || pipe2(report, O_CLOEXEC) < 0)
        return -1;
    char a[4][16];
    int nums[4] = {plan[0], theirs[0], theirs[1], report[1]};
    for (int i = 0; i < 4; i++)
        snprintf(a[i], sizeof a[i], "%d", nums[i]);
    char *argv[] = {(char *)init, a[0], a[1], a[2], a[3], "/", (char *)root, (char *)id, NULL};
    char *envp[] = {NULL};
    char exe_path[32];
    snprintf(exe_path, sizeof exe_path, "/proc/self/fd/%d", exe);
    pid_t helper = fork();
    if (helper == 0) {
        /* What the init gets keeps its number: the four, the fds the plan
         * names, the caller's preserved fds.  Not the memfd: the kernel
         * opens it before the exec closes the fd (close-on-exec). */
        for (int i = 0; i < 4; i++)
            if (fcntl(nums[i], F_SETFD, 0) < 0)
                _exit(127);
        for (int i = 0; i < nkeep; i++)
            if (keep[i] >= 0 && fcntl(keep[i], F_SETFD, 0) < 0)
                _exit(127);
        for (int fd = 3; fd < first_free; fd++)
            fcntl(fd, F_SETFD, 0);
        execve(exe_path, argv, envp);
        _exit(127);
    }
    close(plan[0]);
    close(report[1]);
    close(exe);
    pid_t first = -1;
    if (helper > 0) {
        uint64_t len = b->len;
        if (write(plan[1], &len, 8) == 8) {
            size_t off = 0;
            ssize_t n;
            while (off < b->len && (n = write(plan[1], b->p + off, b->len - off)) > 0)
                off += (size_t)n;
        }
        close(plan[1]);
        struct oci_msg m;
        if (read_msg(report[0], &m) == 1 && m.type == MSG_PID)
            first = (pid_t)m.value;
        waitpid(helper, NULL, 0);
    } else {
        close(plan[1]);
    }
    close(report[0]);
    return first;
}

/* -- the seccomp filter, compiled once ------------------------------------ */

#define BPF_CACHE "exec.bpf"
#define BPF_MAX_INSNS 4096

/* The cache is valid: the u64 load flags, then 1 to BPF_MAX_INSNS
 * instructions of 8 bytes. */
static int bpf_valid(size_t len)
{
    return len > 8 && (len - 8) % 8 == 0 && (len - 8) / 8 <= BPF_MAX_INSNS;
}

/* Compile the template's filter in a process of ours that joins nothing
 * (ociruntime-init: libseccomp, as every exec did), and keep the BPF in
 * the state directory for the execs after this one.  Any failure leaves
 * no cache: this exec builds the filter in its own plan. */
static void compile_bpf(const struct tmpl *t, int dfd, const char *root, const char *id)
{
    char tmp[64];
    snprintf(tmp, sizeof tmp, ".%s.%d.tmp", BPF_CACHE, (int)getpid());
    int fd = above(openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600), 3);
    int up[2] = {-1, -1}, down[2] = {-1, -1};
    if (fd < 0)
        return;
    struct plan b = {0};
    step(&b, OP_CLONE, 1);
    arg_int(&b, 0);
    put(&b, t->seccomp.p, t->seccomp.len);
    step(&b, OP_SECCOMP_SAVE, 1);
    arg_int(&b, fd);
    int ok = 0, status;
    if (!b.bad && pipe2(up, O_CLOEXEC) == 0 && pipe2(down, O_CLOEXEC) == 0) {
        int theirs[2] = {down[0], up[1]};
        pid_t pid = spawn(t->init, &fd, 1, theirs, 3, &b, root, id);
        close(up[1]);
        close(down[0]);
        struct stat st;
        ok = pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0
             && fstat(fd, &st) == 0 && bpf_valid((size_t)st.st_size);
        close(up[0]);
        close(down[1]);
    }
    close(fd);
    free(b.p);
    if (!ok || renameat(dfd, tmp, dfd, BPF_CACHE) < 0)
        unlinkat(dfd, tmp, 0);
}

/* The cached filter as an OP_SECCOMP_BPF step; 0, or -1 if there is none. */
static int cached_bpf(int dfd, struct plan *b)
{
    size_t len;
    char *buf = read_file_at(dfd, BPF_CACHE, &len);
    if (!buf || !bpf_valid(len)) {
        free(buf);
        return -1;
    }
    size_t n = (len - 8) / 8;
    step(b, OP_SECCOMP_BPF, (uint32_t)(1 + n));
    for (size_t i = 0; i <= n; i++) {
        int64_t v;
        memcpy(&v, buf + 8 * i, 8);
        arg_int(b, v);
    }
    free(buf);
    return 0;
}

static void kill_reap(pid_t pid)
{
    if (pid > 0 && kill(pid, SIGKILL) == 0)
        waitpid(pid, NULL, 0);
}

/* container._handshake until exec: the process's pid, or -1 (its
 * processes killed and reaped). */
static pid_t handshake(const struct tmpl *t, const struct run *r, const struct exec_proc *p, pid_t first)
{
    pid_t pid = r->n_ns ? -1 : first;
    int hello = 0, answered = 0;
    for (;;) {
        struct oci_msg m;
        int got = read_msg(r->ours[0], &m);
        if (got == 0 && answered)
            return pid;   /* EOF: close-on-exec, the process exec'd */
        if (got <= 0 || m.type == MSG_ERROR)
            break;
        if (m.type == MSG_PID && pid < 0) {
            pid = (pid_t)m.value;
            waitpid(first, NULL, 0);
            first = -1;
        } else if (m.type == MSG_HELLO && !hello) {
            hello = 1;
        } else {
            break;
        }
        if (hello && pid > 0 && !answered) {
            char path[PATH_MAX], num[32];
            int n = snprintf(num, sizeof num, "%d", pid), ok = 1;
            if (t->v2 && r->v2_fd < 0) {   /* not born there: cgroup.procs */
                snprintf(path, sizeof path, "%s/cgroup.procs", t->v2);
                int fd = open(path, O_WRONLY | O_CLOEXEC);
                ok = fd >= 0 && write(fd, num, (size_t)n) == n;
                if (fd >= 0)
                    close(fd);
            }
            if (ok && p->has_oom) {
                snprintf(path, sizeof path, "/proc/%d/oom_score_adj", pid);
                int fd = open(path, O_WRONLY | O_CLOEXEC);
                n = snprintf(num, sizeof num, "%d", p->oom);
                ok = fd >= 0 && write(fd, num, (size_t)n) == n;
                if (fd >= 0)
                    close(fd);
            }
            if (!ok || send_msg(r->ours[1], MSG_GO, pid) < 0)
                break;
            answered = 1;
        }
    }
    kill_reap(pid);
    kill_reap(first);
    return -1;
}

/* state.write_atomic */
static int write_pid_file(const char *path, pid_t pid)
{
    char tmp[PATH_MAX + 32], num[32];
    snprintf(tmp, sizeof tmp, "%s.%d.tmp", path, (int)getpid());
    int n = snprintf(num, sizeof num, "%d", pid);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0)
        return -1;
    int ok = write(fd, num, (size_t)n) == n;
    if (close(fd) < 0 || !ok || rename(tmp, path) < 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

/* container._wait_forwarding: its exit code, or 128 + the signal. */
static int wait_forwarding(pid_t pid, const sigset_t *watched)
{
    for (;;) {
        int status;
        pid_t got = waitpid(-1, &status, WNOHANG);
        if (got < 0 && errno == ECHILD)
            return 255;
        if (got == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        if (got > 0)
            continue;
        siginfo_t info;
        if (sigwaitinfo(watched, &info) > 0 && info.si_signo != SIGCHLD)
            kill(pid, info.si_signo);
    }
}

static int check_pid_file(const char *given, char *abs)
{
    if (given[0] == '/') {
        if (strlen(given) >= PATH_MAX)
            return -1;
        strcpy(abs, given);
    } else {
        char cwd[PATH_MAX];
        if (!getcwd(cwd, sizeof cwd) || snprintf(abs, PATH_MAX, "%s/%s", cwd, given) >= PATH_MAX)
            return -1;
    }
    /* os.path.abspath normalises: ., .., // -- those are Python's */
    if (strstr(abs, "/./") || strstr(abs, "/../") || strstr(abs, "//")
        || (strlen(abs) >= 2 && !strcmp(abs + strlen(abs) - 2, "/."))
        || (strlen(abs) >= 3 && !strcmp(abs + strlen(abs) - 3, "/..")) || abs[strlen(abs) - 1] == '/')
        return -1;
    char dir[PATH_MAX];
    strcpy(dir, abs);
    *strrchr(dir, '/') = '\0';
    struct stat st;
    return stat(dir[0] ? dir : "/", &st) == 0 && S_ISDIR(st.st_mode) ? 0 : -1;
}

int cmd_exec(const char *root, int argc, char **argv)
{
    struct opts o;
    if (parse_opts(argc, argv, &o) < 0)
        run_python();
    struct container c;
    load(root, o.id, 0, &c);
    const char *status = status_of(c.dfd, &c.f);
    if (strcmp(status, "running") && strcmp(status, "created"))
        run_python();   /* stopped, paused: Python says so */
    size_t len;
    char *buf = read_file_at(c.dfd, "exec", &len);
    struct tmpl t;
    if (!buf || parse_tmpl(buf, len, &t) < 0 || t.pid != c.f.pid || t.start != c.f.start)
        run_python();
    struct exec_proc p;
    if (o.process) {
        char *raw;
        if (read_path(o.process, &raw, &len) < 0 || exec_json_parse(raw, len, &t.caps, &p) < 0)
            run_python();
    } else if (from_flags(&t, &o, &p) < 0) {
        run_python();
    }
    /* terminal.check, and only a terminal sent to a console socket: the
     * foreground proxy is Python's. */
    if (p.terminal != (o.console_socket != NULL) || (p.terminal && !o.detach))
        run_python();
    char pid_file[PATH_MAX];
    if (o.pid_file && check_pid_file(o.pid_file, pid_file) < 0)
        run_python();
    struct stat st;
    for (int fd = 3; fd < 3 + o.preserve_fds; fd++)   /* container.check_preserved_fds */
        if (fstat(fd, &st) < 0)
            run_python();
    char *home = "/";
    if (dedup_env(&p.env) < 0 || (!env_value(&p.env, "HOME") && home_of(t.pid, p.uid, &home) < 0))
        run_python();

    struct run r = {.first_free = 3 + o.preserve_fds, .v2_fd = -1, .console_fd = -1};
    int up[2], down[2];
    if (open_namespaces(&t, &r) < 0 || strcmp(status_of(c.dfd, &c.f), status)
        || open_cgroups(&t, &r) < 0 || pipe2(up, O_CLOEXEC) < 0 || pipe2(down, O_CLOEXEC) < 0)
        run_python();
    r.ours[0] = up[0], r.ours[1] = down[1];
    if ((r.theirs[0] = above(down[0], r.first_free)) < 0 || (r.theirs[1] = above(up[1], r.first_free)) < 0)
        run_python();
    if (p.terminal && (r.console_fd = connect_console(o.console_socket, r.first_free)) < 0)
        run_python();   /* nothing reached the socket: Python says why */
    struct plan b = {0};
    if (t.seccomp.p && faccessat(c.dfd, BPF_CACHE, F_OK, AT_SYMLINK_NOFOLLOW) < 0)
        compile_bpf(&t, c.dfd, root, o.id);
    encode(&b, &t, &r, &p, home, c.dfd);
    if (b.bad)
        run_python();

    sigset_t watched, old;
    int fwd[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH, SIGCHLD};
    sigemptyset(&watched);
    for (size_t i = 0; i < sizeof fwd / sizeof *fwd; i++)
        sigaddset(&watched, fwd[i]);
    sigprocmask(SIG_BLOCK, o.detach ? NULL : &watched, &old);
    int keep[MAX_NS + MAX_PATHS + 2], nkeep = 0;
    for (int i = 0; i < r.n_ns; i++)
        keep[nkeep++] = r.ns_fd[i];
    for (int i = 0; i < t.n_tasks; i++)
        keep[nkeep++] = r.tasks_fd[i];
    keep[nkeep++] = r.v2_fd;
    keep[nkeep++] = r.console_fd;
    pid_t first = spawn(t.init, keep, nkeep, r.theirs, r.first_free, &b, root, o.id);
    /* Ours only now: the init's ends, the namespaces, cgroups, console. */
    close(r.theirs[0]);
    close(r.theirs[1]);
    for (int i = 0; i < r.n_ns; i++)
        close(r.ns_fd[i]);
    for (int i = 0; i < t.n_tasks; i++)
        close(r.tasks_fd[i]);
    if (r.v2_fd >= 0)
        close(r.v2_fd);
    if (r.console_fd >= 0)
        close(r.console_fd);
    pid_t pid = first > 0 ? handshake(&t, &r, &p, first) : -1;
    if (pid > 0 && o.pid_file && write_pid_file(pid_file, pid) < 0) {
        kill_reap(pid);
        pid = -1;
    }
    if (pid < 0) {   /* nothing is left of it: Python does it again, and says why */
        sigprocmask(SIG_SETMASK, &old, NULL);
        run_python();
    }
    if (o.detach)
        return 0;
    return wait_forwarding(pid, &watched);
}
