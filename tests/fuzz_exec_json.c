/* Fuzz target of csrc/exec_json.c (the front end's process.json parser),
 * built by tests/test_exec_fast.py with -fsanitize=address,undefined.
 *
 *     fuzz_exec_json CAPNAMES < RECORDS
 *
 * CAPNAMES: the capability names, one a line, in number order (from
 * ociruntime/capabilities.py).  RECORDS: "LEN\n" then LEN bytes, repeated.
 * For each, one line: "reject", or the process parsed, as JSON, for the
 * test to compare with Python's reading.  Last, "fds N": the open fds,
 * which must be as many as at the start. */
#include "exec_proc.h"
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = -1;   /* the DIR's own */
    if (!d)
        return -1;
    while (readdir(d))
        n++;
    closedir(d);
    return n - 2;
}

static void print_strv(const char *key, const struct strv *s)
{
    printf("\"%s\":[", key);
    for (size_t i = 0; i < s->n; i++) {
        printf("%s\"", i ? "," : "");
        for (const char *c = s->v[i]; *c; c++)   /* ASCII only: the parser refuses more */
            if (*c == '"' || *c == '\\')
                printf("\\%c", *c);
            else if ((unsigned char)*c < 0x20)
                printf("\\u%04x", *c);
            else
                putchar(*c);
        putchar('"');
    }
    printf("]");
}

int main(int argc, char **argv)
{
    int fds_before = count_fds();
    struct cap_table caps = {0};
    FILE *f = argc > 1 ? fopen(argv[1], "r") : NULL;
    char line[64];
    if (!f)
        return 2;
    while (caps.n < EXEC_NCAPS && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        caps.name[caps.n++] = strdup(line);
    }
    fclose(f);
    size_t len;
    while (scanf("%zu", &len) == 1 && getchar() == '\n') {
        char *buf = malloc(len + 1);
        if (!buf || fread(buf, 1, len, stdin) != len)
            return 2;
        buf[len] = '\0';
        struct exec_proc p;
        if (exec_json_parse(buf, len, &caps, &p) < 0) {
            puts("reject");
        } else {
            printf("{");
            print_strv("args", &p.args);
            printf(",");
            print_strv("env", &p.env);
            struct strv cwd = {.v = &p.cwd, .n = 1};
            printf(",");
            print_strv("cwd", &cwd);
            printf(",\"uid\":%u,\"gid\":%u,\"umask\":%u,\"gids\":[", p.uid, p.gid, p.umask);
            for (size_t i = 0; i < p.ngids; i++)
                printf("%s%u", i ? "," : "", p.gids[i]);
            printf("],\"caps\":[%llu,%llu,%llu,%llu,%llu]", (unsigned long long)p.caps[0],
                   (unsigned long long)p.caps[1], (unsigned long long)p.caps[2],
                   (unsigned long long)p.caps[3], (unsigned long long)p.caps[4]);
            printf(",\"nnp\":%d,\"terminal\":%d,\"rows\":%llu,\"cols\":%llu,\"rlimits\":[", p.nnp,
                   p.terminal, (unsigned long long)p.rows, (unsigned long long)p.cols);
            for (int i = 0; i < p.nrl; i++)
                printf("%s[%d,%llu,%llu]", i ? "," : "", p.rl[i].res,
                       (unsigned long long)p.rl[i].soft, (unsigned long long)p.rl[i].hard);
            printf("],\"oom\":");
            if (p.has_oom)
                printf("%d}\n", p.oom);
            else
                printf("null}\n");
            exec_proc_free(&p);
        }
        free(buf);
    }
    for (int i = 0; i < caps.n; i++)
        free((char *)caps.name[i]);
    printf("fds %d %d\n", fds_before, count_fds());
    return 0;
}
