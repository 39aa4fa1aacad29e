/* The process `exec` runs, as the front end builds it (exec_fast.c):
 * from the container's process in the exec template and the command
 * line, or from a process.json (exec_json.c).  Anything it cannot hold
 * exactly as Python would is refused, and Python does the exec. */
#ifndef OCI_EXEC_PROC_H
#define OCI_EXEC_PROC_H
#include <stddef.h>
#include <stdint.h>

#define EXEC_MAX_RLIMITS 16
#define EXEC_NCAPS 64

struct strv {
    char **v;
    size_t n, cap;
};

struct exec_rlimit {
    int res;
    uint64_t soft, hard;
};

struct exec_proc {
    struct strv args, env;
    char *cwd;
    uint32_t uid, gid, umask;
    uint32_t *gids;
    size_t ngids;
    uint64_t caps[5];        /* bounding, effective, permitted, inheritable, ambient */
    int nnp, terminal, has_oom, oom;
    uint64_t rows, cols;     /* consoleSize */
    struct exec_rlimit rl[EXEC_MAX_RLIMITS];
    int nrl;
};

/* Capability names to numbers, as the exec template lists them (from
 * capabilities.py: the one table). */
struct cap_table {
    const char *name[EXEC_NCAPS];
    int n;
};

int strv_add(struct strv *s, const char *str);
int cap_number(const struct cap_table *t, const char *name);
int rlimit_number(const char *name);

/* Parse a process.json (raw, len bytes) into p (zeroed first).  0, or -1
 * for anything Python must judge: invalid JSON or a value the schema
 * refuses, a key the front end does not apply, a \u escape or a byte
 * that is not ASCII (Python checks those strings), an unknown
 * capability or rlimit. */
int exec_json_parse(const char *raw, size_t len, const struct cap_table *caps,
                    struct exec_proc *p);
void exec_proc_free(struct exec_proc *p);
#endif
