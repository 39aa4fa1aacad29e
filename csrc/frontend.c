/* The `ociruntime` command: a small C front end for the Python CLI.
 *
 * Engines call the runtime several times per container, and a Python
 * start-up alone costs more than `runc state` in all.  So this program
 * answers the four commands that only look at (or end) a container that
 * create has set up -- state, start, kill, delete -- from a file Python
 * wrote for it at the end of create (<root>/<id>/fast: see write_fast in
 * ociruntime/state.py), `exec` from the exec template beside it
 * (exec_fast.c), and hands everything else to Python:
 * bin/ociruntime-py, run by the python3 beside this program (the
 * environment it was installed into) or else /usr/bin/python3.
 *
 * It never prints an error of its own.  Whenever a call is not the plain
 * case (no fast file, a hook to run, a container in another state than the
 * command wants, a flag it does not know, any failure before it changed
 * something), it execs Python with the same arguments, which does the
 * whole command and says what is wrong.  The rules it follows are
 * Python's (state.py, container.py); tests/test_frontend.py runs every
 * case both ways (OCIRUNTIME_NO_FAST=1 sends every call to Python).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "frontend.h"

#define FAST_MAGIC "ociruntime-fast 1\n"

static int g_argc;
static char **g_argv;
static struct timespec g_started;   /* for --debug's phase trace */

/* Is pyc the up-to-date bytecode of script, for the interpreter py?  As
 * Python checks a module's cache: the source's mtime and size in the
 * header; and made by this very interpreter, after it was installed.  The
 * header's flags word (which Python does not read when it runs a .pyc
 * given as the script) holds the inode of the interpreter that wrote it
 * (bin/ociruntime-py writes it): a .pyc another Python left -- another
 * version, whose magic number this one refuses with a traceback -- is not
 * run but the script, which then writes its own. */
static int pyc_fresh(const char *pyc, const char *script, const char *py)
{
    struct stat s, p, c;
    unsigned char h[16];
    int fd = open(pyc, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    int ok = read(fd, h, sizeof h) == (ssize_t)sizeof h && fstat(fd, &c) == 0
             && stat(script, &s) == 0 && stat(py, &p) == 0 && c.st_mtime >= p.st_mtime;
    close(fd);
    uint32_t flags, mtime, size;
    memcpy(&flags, h + 4, 4);
    memcpy(&mtime, h + 8, 4);
    memcpy(&size, h + 12, 4);
    return ok && flags == (uint32_t)p.st_ino && mtime == (uint32_t)s.st_mtime
           && size == (uint32_t)s.st_size;
}

/* exec the Python CLI with our arguments: the script's cached bytecode
 * when it is fresh (Python runs a .pyc given as the script), else the
 * script, which caches it. */
void __attribute__((noreturn)) run_python(void)
{
    char self[PATH_MAX], py[PATH_MAX + 16], script[PATH_MAX + 16], pyc[PATH_MAX + 40];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) {
        perror("ociruntime: readlink /proc/self/exe");
        exit(1);
    }
    self[n] = '\0';
    *strrchr(self, '/') = '\0';
    snprintf(script, sizeof script, "%s/ociruntime-py", self);
    snprintf(pyc, sizeof pyc, "%s/__pycache__/ociruntime-py.pyc", self);
    snprintf(py, sizeof py, "%s/python3", self);
    /* No python3 here (an install into /usr/local): the system's.  One
     * this caller may not run (a venv whose Python lives under /root,
     * called by another user) is not swapped for another Python, which
     * would not find the environment's packages: execv says why. */
    if (access(py, X_OK) != 0 && errno == ENOENT)
        strcpy(py, "/usr/bin/python3");
    /* Python sets its locale from the environment at start-up: a UTF-8
     * locale (LANG=C.UTF-8, or the C locale Python coerces to it) maps the
     * locale's LC_CTYPE file and the gconv cache, ~190 KiB of create's
     * peak RSS (issue 16) for nothing: the CLI runs in UTF-8 mode (-X utf8,
     * bytes as runc treats them) whatever the locale.  So Python starts
     * with LC_ALL=C, and bin/ociruntime-py puts the caller's LC_ALL back
     * (OCIRUNTIME_LC_ALL: "=VALUE", or "" when it was unset) before
     * anything inherits the environment. */
    const char *lc = getenv("LC_ALL");
    char *saved = malloc(lc ? strlen(lc) + 2 : 1);
    char **args = calloc((size_t)g_argc + 5, sizeof *args);
    if (!args || !saved) {
        perror("ociruntime");
        exit(1);
    }
    strcpy(saved, lc ? "=" : "");
    if (lc)
        strcat(saved, lc);
    if (setenv("OCIRUNTIME_LC_ALL", saved, 1) != 0 || setenv("LC_ALL", "C", 1) != 0) {
        perror("ociruntime: setenv LC_ALL");
        exit(1);
    }
    args[0] = py;
    args[1] = "-S";
    args[2] = "-X";
    args[3] = "utf8";
    args[4] = pyc_fresh(pyc, script, py) ? pyc : script;
    for (int i = 1; i < g_argc; i++)
        args[i + 4] = g_argv[i];
    /* When we started (CLOCK_MONOTONIC ns), for --debug's trace: its first
     * phase is the interpreter's start-up.  Python removes it at once. */
    char t0[32];
    snprintf(t0, sizeof t0, "%lld", (long long)g_started.tv_sec * 1000000000LL + g_started.tv_nsec);
    setenv("OCIRUNTIME_T0", t0, 1);
    execv(py, args);
    fprintf(stderr, "ociruntime: cannot run %s %s: %s\n", py, script, strerror(errno));
    exit(1);
}

/* -- the fast file ------------------------------------------------------- */

char *read_file_at(int dfd, const char *name, size_t *len)
{
    int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return NULL;
    struct stat st;
    char *buf = NULL;
    if (fstat(fd, &st) == 0 && st.st_size > 0 && st.st_size < (16 << 20)
        && (buf = malloc((size_t)st.st_size + 1)) != NULL) {
        size_t got = 0;
        ssize_t r;
        while (got < (size_t)st.st_size && (r = read(fd, buf + got, (size_t)st.st_size - got)) > 0)
            got += (size_t)r;
        buf[got] = '\0';
        *len = got;
    }
    close(fd);
    return buf;
}

/* Parse what write_fast wrote; 0, or -1 if anything is off. */
static int parse_fast(char *buf, size_t len, struct fast *f)
{
    memset(f, 0, sizeof *f);
    char *p = buf, *end = buf + len;
    if (strncmp(p, FAST_MAGIC, strlen(FAST_MAGIC)) != 0)
        return -1;
    p += strlen(FAST_MAGIC);
    int have = 0;
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            return -1;
        *nl = '\0';
        char *val = strchr(p, ' ');
        if (!val)
            return -1;
        *val++ = '\0';
        struct blob *b = !strcmp(p, "head") ? &f->head : !strcmp(p, "mid") ? &f->mid
                       : !strcmp(p, "tail") ? &f->tail
                       : !strcmp(p, "state.json") ? &f->state_json : NULL;
        if (b) {   /* "name LEN\n" LEN bytes "\n" */
            size_t n = strtoull(val, NULL, 10);
            if (n > (size_t)(end - nl - 1) - 1 || nl[1 + n] != '\n')
                return -1;
            b->p = nl + 1;
            b->len = n;
            have |= b == &f->head ? 1 : b == &f->mid ? 2 : b == &f->tail ? 4 : 8;
            p = nl + 2 + n;
            continue;
        }
        if (!strcmp(p, "pid"))
            f->pid = atoll(val);
        else if (!strcmp(p, "start"))
            f->start = atoll(val);
        else if (!strcmp(p, "start_ok"))
            f->start_ok = atoi(val);
        else if (!strcmp(p, "delete_ok"))
            f->delete_ok = atoi(val);
        else if (!strcmp(p, "freezer"))
            f->freezer = val;
        else if (!strcmp(p, "freeze2") && f->n_freeze2 < MAX_PATHS)
            f->freeze2[f->n_freeze2++] = val;
        else if (!strcmp(p, "rmdir") && f->n_rmdir < MAX_PATHS)
            f->rmdir[f->n_rmdir++] = val;
        else if (!strcmp(p, "rmparent") && f->n_rmparent < MAX_PATHS)
            f->rmparent[f->n_rmparent++] = val;
        else
            return -1;   /* a line we do not know: Python does */
        p = nl + 1;
    }
    return have == 15 && f->pid > 0 ? 0 : -1;
}

/* The integer of top-level key in the compact JSON of b, or -1. */
static long long json_int(const struct blob *b, const char *key)
{
    char pat[64];
    int n = snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = b->p, *end = b->p + b->len;
    while ((p = memmem(p, (size_t)(end - p), pat, (size_t)n)) != NULL) {
        if (p > b->p && (p[-1] == '{' || p[-1] == ',') && p + n < end && p[n] >= '0' && p[n] <= '9')
            return strtoll(p + n, NULL, 10);
        p += n;
    }
    return -1;
}

/* Does b hold the JSON string "path" (a path needing no escapes)? */
static int json_has_path(const struct blob *b, const char *path)
{
    char quoted[PATH_MAX + 2];
    int n = snprintf(quoted, sizeof quoted, "\"%s\"", path);
    return n > 0 && (size_t)n < sizeof quoted && memmem(b->p, b->len, quoted, (size_t)n) != NULL;
}

/* Is the top-level "id" of the compact JSON b the string id (an id
 * needs no escapes)? */
static int json_id_is(const struct blob *b, const char *id)
{
    char pat[1100];
    for (const char *lead = "{,"; *lead; lead++) {
        int n = snprintf(pat, sizeof pat, "%c\"id\":\"%s\"", *lead, id);
        if (n > 0 && (size_t)n < sizeof pat && memmem(b->p, b->len, pat, (size_t)n))
            return 1;
    }
    return 0;
}

/* The fast file's own lines must say what its copy of state.json says,
 * and that copy must be this container's: one damaged file is never
 * acted on (a wrong pid, a directory that is not the container's, the
 * files of another container); Python judges from state.json. */
static int agrees(const struct fast *f, const char *id)
{
    if (!json_id_is(&f->state_json, id))
        return 0;
    if (json_int(&f->state_json, "pid") != f->pid || json_int(&f->state_json, "pid_start") != f->start)
        return 0;
    for (int i = 0; i < f->n_rmdir; i++)
        if (!json_has_path(&f->state_json, f->rmdir[i]))
            return 0;
    return 1;
}

/* -- status: state.py's Container.status ----------------------------------- */

/* Is pid alive, not a zombie, and started at start (not a reused pid)? */
static int process_alive(long long pid, long long start)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%lld/stat", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    if (!p || p[1] != ' ')
        return 0;
    char state = p[2];
    p += 2;
    for (int field = 3; field < 22; field++) {   /* to starttime, field 22 */
        p = strchr(p, ' ');
        if (!p)
            return 0;
        p++;
    }
    return state != 'Z' && state != 'X' && atoll(p) == start;
}

static int read_small(const char *path, char *buf, size_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, size - 1);
    close(fd);
    if (n < 0)
        return -1;
    buf[n] = '\0';
    return 0;
}

int frozen(const struct fast *f)
{
    char buf[64];
    if (f->freezer)
        return read_small(f->freezer, buf, sizeof buf) == 0
               && (!strncmp(buf, "FROZEN", 6) || !strncmp(buf, "FREEZING", 8));
    for (int i = 0; i < f->n_freeze2; i++)
        if (access(f->freeze2[i], F_OK) == 0)
            return read_small(f->freeze2[i], buf, sizeof buf) == 0 && buf[0] == '1';
    return 0;
}

/* Paused before created: a created container can be paused (runc). */
const char *status_of(int dfd, const struct fast *f)
{
    if (!process_alive(f->pid, f->start))
        return "stopped";
    if (frozen(f))
        return "paused";
    if (faccessat(dfd, "exec.fifo", F_OK, AT_SYMLINK_NOFOLLOW) == 0)
        return "created";
    return "running";
}

/* -- the commands ------------------------------------------------------------ */


/* state.py's check_id: an id that names nothing outside the root. */
static int valid_id(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > 238 || !strcmp(id, ".") || !strcmp(id, ".."))   /* MAX_ID_LENGTH */
        return 0;
    return strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+-.") == n;
}

/* Open root/id and its fast file; locked (flock, as state.lock_dir) if
 * asked.  Any miss runs Python. */
void load(const char *root, const char *id, int lock, struct container *c)
{
    if (!valid_id(id))
        run_python();
    int rfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (rfd < 0)
        run_python();
    c->dfd = openat(rfd, id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    close(rfd);
    if (c->dfd < 0)
        run_python();
    struct stat st;
    if (lock && (flock(c->dfd, LOCK_EX) < 0 || fstat(c->dfd, &st) < 0 || st.st_nlink == 0))
        run_python();
    size_t len = 0;
    char *buf = read_file_at(c->dfd, "fast", &len);
    if (!buf || parse_fast(buf, len, &c->f) < 0)
        run_python();
    /* state.json changed since (damaged, rewritten): Python's to judge. */
    char *saved = read_file_at(c->dfd, "state.json", &len);
    if (!saved || len != c->f.state_json.len || memcmp(saved, c->f.state_json.p, len) != 0
        || !agrees(&c->f, id))
        run_python();
    free(saved);
}

static int cmd_state(const char *root, const char *id)
{
    struct container c;
    load(root, id, 0, &c);
    const char *status = status_of(c.dfd, &c.f);
    long long pid = strcmp(status, "stopped") ? c.f.pid : 0;
    fwrite(c.f.head.p, 1, c.f.head.len, stdout);
    printf("%lld", pid);
    fwrite(c.f.mid.p, 1, c.f.mid.len, stdout);
    fputs(status, stdout);
    fwrite(c.f.tail.p, 1, c.f.tail.len, stdout);
    return fflush(stdout) == 0 ? 0 : 1;
}

/* container.start without hooks: one byte into exec.fifo. */
static int cmd_start(const char *root, const char *id)
{
    struct container c;
    load(root, id, 1, &c);
    if (!c.f.start_ok || strcmp(status_of(c.dfd, &c.f), "created"))
        run_python();
    int fd = openat(c.dfd, "exec.fifo", O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        run_python();   /* the init is gone: Python says so */
    if (write(fd, "0", 1) != 1) {
        close(fd);
        run_python();
    }
    close(fd);
    unlinkat(c.dfd, "exec.fifo", 0);
    return 0;
}

/* Linux's signal names, as Python's _signal has them. */
static const struct { const char *name; int num; } SIGNALS[] = {
    {"HUP", SIGHUP}, {"INT", SIGINT}, {"QUIT", SIGQUIT}, {"ILL", SIGILL},
    {"TRAP", SIGTRAP}, {"ABRT", SIGABRT}, {"IOT", SIGIOT}, {"BUS", SIGBUS},
    {"FPE", SIGFPE}, {"KILL", SIGKILL}, {"USR1", SIGUSR1}, {"SEGV", SIGSEGV},
    {"USR2", SIGUSR2}, {"PIPE", SIGPIPE}, {"ALRM", SIGALRM}, {"TERM", SIGTERM},
    {"STKFLT", SIGSTKFLT}, {"CHLD", SIGCHLD}, {"CLD", SIGCHLD}, {"CONT", SIGCONT},
    {"STOP", SIGSTOP}, {"TSTP", SIGTSTP}, {"TTIN", SIGTTIN}, {"TTOU", SIGTTOU},
    {"URG", SIGURG}, {"XCPU", SIGXCPU}, {"XFSZ", SIGXFSZ}, {"VTALRM", SIGVTALRM},
    {"PROF", SIGPROF}, {"WINCH", SIGWINCH}, {"IO", SIGIO}, {"POLL", SIGPOLL},
    {"PWR", SIGPWR}, {"SYS", SIGSYS},
};

/* container.parse_signal; -1 for what Python should judge. */
static int parse_signal(const char *text)
{
    size_t n = strlen(text);
    /* Above 64 (_NSIG - 1) Python says why: the kernel would say EINVAL. */
    if (n > 0 && n < 4 && strspn(text, "0123456789") == n)
        return atoi(text) < _NSIG ? atoi(text) : -1;
    if (!strncasecmp(text, "SIG", 3))
        text += 3;
    for (size_t i = 0; i < sizeof SIGNALS / sizeof *SIGNALS; i++)
        if (!strcasecmp(text, SIGNALS[i].name))
            return SIGNALS[i].num;
    return -1;
}

/* container.kill without --all: through a pidfd checked against the
 * start time, so a reused pid is never hit.  SIGKILL to a paused
 * container is Python's: the freezer must be thawed after it. */
static int cmd_kill(const char *root, const char *id, const char *sigtext)
{
    int sig = sigtext ? parse_signal(sigtext) : SIGTERM;
    if (sig < 0)
        run_python();
    struct container c;
    load(root, id, 0, &c);
    if (sig == SIGKILL && frozen(&c.f))
        run_python();
    int pidfd = (int)syscall(SYS_pidfd_open, (pid_t)c.f.pid, 0);
    if (pidfd < 0)
        run_python();
    if (!process_alive(c.f.pid, c.f.start)
        || syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0) < 0) {
        close(pidfd);
        run_python();
    }
    close(pidfd);
    return 0;
}

/* state.remove_tree: never follows a link; errors are ignored. */
static void remove_tree_at(int dfd)
{
    int fd = dup(dfd);
    DIR *d = fd < 0 ? NULL : fdopendir(fd);
    if (!d) {
        if (fd >= 0)
            close(fd);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        if (unlinkat(dfd, e->d_name, 0) == 0 || (errno != EISDIR && errno != EPERM))
            continue;
        int sub = openat(dfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub >= 0) {
            remove_tree_at(sub);
            close(sub);
            unlinkat(dfd, e->d_name, AT_REMOVEDIR);
        }
    }
    closedir(d);
}

/* container.delete of a stopped container: its cgroup directories, the
 * parents create made if they are empty now (never more: a sibling may
 * use one), then its state directory.  A busy cgroup of its own (a
 * process left behind, child cgroups) is Python's to kill and remove. */
static int cmd_delete(const char *root, const char *id)
{
    struct container c;
    load(root, id, 1, &c);
    if (!c.f.delete_ok || strcmp(status_of(c.dfd, &c.f), "stopped"))
        run_python();
    for (int i = 0; i < c.f.n_rmdir; i++)
        if (rmdir(c.f.rmdir[i]) < 0 && errno != ENOENT)
            run_python();
    for (int i = 0; i < c.f.n_rmparent; i++)
        rmdir(c.f.rmparent[i]);   /* EBUSY: in use; ENOENT: gone */
    remove_tree_at(c.dfd);
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", root, id);
    if (rmdir(path) < 0 && errno != ENOENT)
        run_python();   /* a read-only --root, say: Python says why */
    return 0;
}

/* -- the command line ------------------------------------------------------------ */

/* Does uid 0 here map to 0 of the parent: the host's root (as
 * ociruntime/rootless.py reads /proc/self/uid_map)?  Unreadable: yes. */
static int maps_host_root(void)
{
    FILE *f = fopen("/proc/self/uid_map", "re");
    if (!f)
        return 1;
    unsigned long in, out, n;
    int found = 0;
    while (fscanf(f, "%lu %lu %lu", &in, &out, &n) == 3)
        if (in == 0 && out == 0)
            found = 1;
    fclose(f);
    return found;
}

/* The default --root, as cli.py chooses it: /run/ociruntime, or in
 * rootless mode (--rootless, or auto: not root, or a user namespace
 * without the host's root) $XDG_RUNTIME_DIR/ociruntime, else
 * /tmp/ociruntime-UID.  A rootless root that is not our own directory
 * yet is Python's to make or refuse. */
static const char *default_root(const char *rootless)
{
    int on;
    if (!rootless || !strcmp(rootless, "auto"))
        on = geteuid() != 0 || !maps_host_root();
    else if (!strcmp(rootless, "true") || !strcmp(rootless, "1"))
        on = 1;
    else if (!strcmp(rootless, "false") || !strcmp(rootless, "0"))
        on = 0;
    else
        run_python();
    if (!on)
        return "/run/ociruntime";
    static char root[PATH_MAX];
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    int n = xdg && xdg[0] == '/' ? snprintf(root, sizeof root, "%s/ociruntime", xdg)
                                 : snprintf(root, sizeof root, "/tmp/ociruntime-%u", (unsigned)geteuid());
    struct stat st;
    if (n < 0 || (size_t)n >= sizeof root || lstat(root, &st) < 0 || !S_ISDIR(st.st_mode)
        || st.st_uid != geteuid())
        run_python();
    return root;
}

/* Can --log's file be opened (and made) for appending, as runc and
 * Python open it before doing anything? */
static int log_opens(const char *path)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return 0;
    close(fd);
    return 1;
}

/* Is arg the flag name (-name, --name, or either with =value)? */
static int is_flag(const char *arg, const char *name, const char **value)
{
    if (arg[0] != '-')
        return 0;
    arg += arg[1] == '-' ? 2 : 1;
    size_t n = strlen(name);
    if (strncmp(arg, name, n) != 0 || (arg[n] != '\0' && arg[n] != '='))
        return 0;
    *value = arg[n] == '=' ? arg + n + 1 : NULL;
    return 1;
}

int main(int argc, char **argv)
{
    clock_gettime(CLOCK_MONOTONIC, &g_started);
    g_argc = argc;
    g_argv = argv;
    const char *nofast = getenv("OCIRUNTIME_NO_FAST");
    if (nofast && *nofast && strcmp(nofast, "0"))
        run_python();
    const char *root = NULL, *rootless = NULL, *value;
    int i = 1;
    /* The global flags that change nothing here (--log: only errors and
     * debug lines are logged, and both are Python's; but a log that cannot
     * be opened is an error, Python's to report). */
    for (; i < argc && argv[i][0] == '-'; i++) {
        static const char *const with_value[] = {"root", "log", "log-format", "rootless", "criu"};
        size_t k, n = sizeof with_value / sizeof *with_value;
        for (k = 0; k < n && !is_flag(argv[i], with_value[k], &value); k++)
            ;
        if (k < n) {
            if (!value && (value = argv[++i]) == NULL)
                run_python();
            if (k == 0)
                root = value;
            else if (k == 3)
                rootless = value;
            else if (k == 1 && !log_opens(value))
                run_python();   /* Python fails the command, naming the file */
            else if (k == 2 && strcmp(value, "text") && strcmp(value, "json"))
                run_python();
        } else if (!is_flag(argv[i], "systemd-cgroup", &value)) {
            run_python();   /* --debug, --help, --version, or unknown */
        }
    }
    if (!root)
        root = default_root(rootless);
    if (i == argc || !*root)
        run_python();
    const char *cmd = argv[i++];
    if (!strcmp(cmd, "exec"))   /* its flags are its own: exec_fast.c */
        return cmd_exec(root, argc - i, argv + i);
    const char *pos[3];
    int npos = 0;
    for (; i < argc; i++) {
        if (argv[i][0] != '-' || !argv[i][1]) {
            if (npos == 3)
                run_python();
            pos[npos++] = argv[i];
        } else if (!strcmp(cmd, "delete") && (is_flag(argv[i], "force", &value)
                                             || is_flag(argv[i], "f", &value))) {
            ;   /* only a stopped container is deleted here: --force changes nothing */
        } else {
            run_python();   /* kill --all, --help, --, or a typo */
        }
    }
    if (!strcmp(cmd, "state") && npos == 1)
        return cmd_state(root, pos[0]);
    if (!strcmp(cmd, "start") && npos == 1)
        return cmd_start(root, pos[0]);
    if (!strcmp(cmd, "kill") && (npos == 1 || npos == 2))
        return cmd_kill(root, pos[0], npos == 2 ? pos[1] : NULL);
    if (!strcmp(cmd, "delete") && npos == 1)
        return cmd_delete(root, pos[0]);
    run_python();
}
