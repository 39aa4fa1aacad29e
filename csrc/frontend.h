/* What frontend.c shares with exec_fast.c (the front end's `exec`). */
#ifndef OCI_FRONTEND_H
#define OCI_FRONTEND_H
#include <stddef.h>

#define MAX_PATHS 64

struct blob {
    const char *p;
    size_t len;
};

/* The fast file create leaves (write_fast in ociruntime/state.py). */
struct fast {
    long long pid, start;
    int start_ok, delete_ok;
    const char *freezer;                 /* v1 freezer.state, or NULL */
    const char *freeze2[MAX_PATHS];      /* cgroup.freeze candidates */
    const char *rmdir[MAX_PATHS];        /* its own cgroup dirs */
    const char *rmparent[MAX_PATHS];     /* parents create made, deepest first */
    int n_freeze2, n_rmdir, n_rmparent;
    struct blob head, mid, tail;         /* the state JSON around pid, status */
    struct blob state_json;              /* state.json as create saved it */
};

struct container {
    int dfd;          /* its state directory */
    struct fast f;
};

/* exec the Python CLI with the front end's arguments: never returns. */
void __attribute__((noreturn)) run_python(void);
/* Open root/id, its fast file checked against state.json; any miss runs Python. */
void load(const char *root, const char *id, int lock, struct container *c);
char *read_file_at(int dfd, const char *name, size_t *len);
const char *status_of(int dfd, const struct fast *f);
int frozen(const struct fast *f);

/* exec ID CMD... / exec -p FILE ID, args after the command word. */
int cmd_exec(const char *root, int argc, char **argv);
#endif
