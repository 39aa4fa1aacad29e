/* exec --process FILE: the process.json, parsed with json-c.
 *
 * The file is the caller's (an engine's), so parsed strictly, and only
 * what the front end applies exactly as execute.py would is accepted:
 * every value of the type config.schema.json's Process gives it, the
 * checks validate_process adds (cwd absolute, args not empty), known
 * capability and rlimit names, no rlimit twice.  Everything else -- a key
 * it does not apply (apparmorProfile, scheduler...), a \u escape or a
 * byte beyond ASCII (whose strings config.check_strings vets), a float
 * where an integer goes -- is refused here, and Python then does the
 * whole exec and names what is wrong.  tests/test_exec_fast.py fuzzes it
 * against Python's verdict. */
#define _GNU_SOURCE
#include "exec_proc.h"
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

int strv_add(struct strv *s, const char *str)
{
    if (s->n + 2 > s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        char **v = realloc(s->v, cap * sizeof *v);
        if (!v)
            return -1;
        s->v = v;
        s->cap = cap;
    }
    if (!(s->v[s->n] = strdup(str)))
        return -1;
    s->v[++s->n] = NULL;
    return 0;
}

static void strv_free(struct strv *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
    memset(s, 0, sizeof *s);
}

void exec_proc_free(struct exec_proc *p)
{
    strv_free(&p->args);
    strv_free(&p->env);
    free(p->cwd);
    free(p->gids);
    memset(p, 0, sizeof *p);
}

int cap_number(const struct cap_table *t, const char *name)
{
    for (int i = 0; i < t->n; i++)
        if (t->name[i] && !strcmp(t->name[i], name))
            return i;
    return -1;
}

/* process.py's RLIMITS */
static const char *const RLIMIT_NAMES[] = {
    "RLIMIT_CPU", "RLIMIT_FSIZE", "RLIMIT_DATA", "RLIMIT_STACK", "RLIMIT_CORE",
    "RLIMIT_RSS", "RLIMIT_NPROC", "RLIMIT_NOFILE", "RLIMIT_MEMLOCK", "RLIMIT_AS",
    "RLIMIT_LOCKS", "RLIMIT_SIGPENDING", "RLIMIT_MSGQUEUE", "RLIMIT_NICE",
    "RLIMIT_RTPRIO", "RLIMIT_RTTIME",
};

int rlimit_number(const char *name)
{
    for (int i = 0; i < (int)(sizeof RLIMIT_NAMES / sizeof *RLIMIT_NAMES); i++)
        if (!strcmp(RLIMIT_NAMES[i], name))
            return i;
    return -1;
}

/* An integer in [0, max]; doubles ("1.0", "1e3") are Python's to judge. */
static int get_uint(json_object *o, uint64_t max, uint64_t *out)
{
    if (!json_object_is_type(o, json_type_int))
        return -1;
    int64_t s = json_object_get_int64(o);
    if (s < 0)
        return -1;
    uint64_t u = s == INT64_MAX ? json_object_get_uint64(o) : (uint64_t)s;
    /* json-c clamps what overflows to UINT64_MAX: that one is Python's */
    if (u > max || u == UINT64_MAX)
        return -1;
    *out = u;
    return 0;
}

static int get_bool(json_object *o, int *out)
{
    if (!json_object_is_type(o, json_type_boolean))
        return -1;
    *out = json_object_get_boolean(o);
    return 0;
}

static int get_strings(json_object *o, struct strv *out)
{
    if (!json_object_is_type(o, json_type_array))
        return -1;
    size_t n = json_object_array_length(o);
    for (size_t i = 0; i < n; i++) {
        json_object *s = json_object_array_get_idx(o, i);
        if (!json_object_is_type(s, json_type_string) || strv_add(out, json_object_get_string(s)) < 0)
            return -1;
    }
    return 0;
}

static int get_caps(json_object *o, const struct cap_table *t, uint64_t caps[5])
{
    static const char *const SETS[] = {"bounding", "effective", "permitted", "inheritable", "ambient"};
    if (!json_object_is_type(o, json_type_object))
        return -1;
    json_object_object_foreach(o, key, val) {
        int set = -1;
        for (int i = 0; i < 5; i++)
            if (!strcmp(key, SETS[i]))
                set = i;
        if (set < 0 || !json_object_is_type(val, json_type_array))
            return -1;
        for (size_t i = 0; i < json_object_array_length(val); i++) {
            json_object *s = json_object_array_get_idx(val, i);
            int n = json_object_is_type(s, json_type_string) ? cap_number(t, json_object_get_string(s)) : -1;
            if (n < 0)
                return -1;
            caps[set] |= 1ULL << n;
        }
    }
    return 0;
}

static int get_user(json_object *o, struct exec_proc *p)
{
    if (!json_object_is_type(o, json_type_object))
        return -1;
    json_object_object_foreach(o, key, val) {
        uint64_t v;
        if (!strcmp(key, "uid") || !strcmp(key, "gid") || !strcmp(key, "umask")) {
            if (get_uint(val, UINT32_MAX, &v) < 0)
                return -1;
            *(key[0] == 'u' && key[1] == 'i' ? &p->uid : key[0] == 'g' ? &p->gid : &p->umask) = (uint32_t)v;
        } else if (!strcmp(key, "additionalGids")) {
            if (!json_object_is_type(val, json_type_array))
                return -1;
            size_t n = json_object_array_length(val);
            free(p->gids);
            p->ngids = 0;
            if (!(p->gids = calloc(n ? n : 1, sizeof *p->gids)))
                return -1;
            for (size_t i = 0; i < n; i++) {
                if (get_uint(json_object_array_get_idx(val, i), UINT32_MAX, &v) < 0)
                    return -1;
                p->gids[p->ngids++] = (uint32_t)v;
            }
        } else if (strcmp(key, "username") || !json_object_is_type(val, json_type_string)) {
            return -1;   /* unknown; a username (Windows) Python ignores too */
        }
    }
    return 0;
}

static int get_rlimits(json_object *o, struct exec_proc *p)
{
    if (!json_object_is_type(o, json_type_array))
        return -1;
    size_t n = json_object_array_length(o);
    if (n > EXEC_MAX_RLIMITS)
        return -1;
    for (size_t i = 0; i < n; i++) {
        json_object *r = json_object_array_get_idx(o, i), *t, *s, *h;
        if (!json_object_is_type(r, json_type_object) || json_object_object_length(r) != 3
            || !json_object_object_get_ex(r, "type", &t) || !json_object_object_get_ex(r, "soft", &s)
            || !json_object_object_get_ex(r, "hard", &h) || !json_object_is_type(t, json_type_string))
            return -1;
        struct exec_rlimit *rl = &p->rl[p->nrl];
        if ((rl->res = rlimit_number(json_object_get_string(t))) < 0
            || get_uint(s, UINT64_MAX, &rl->soft) < 0 || get_uint(h, UINT64_MAX, &rl->hard) < 0)
            return -1;
        for (int k = 0; k < p->nrl; k++)
            if (p->rl[k].res == rl->res)
                return -1;   /* listed twice: Python's error */
        p->nrl++;
    }
    return 0;
}

static int get_console(json_object *o, struct exec_proc *p)
{
    json_object *h, *w;
    if (!json_object_is_type(o, json_type_object) || json_object_object_length(o) != 2
        || !json_object_object_get_ex(o, "height", &h) || !json_object_object_get_ex(o, "width", &w))
        return -1;
    return get_uint(h, UINT64_MAX, &p->rows) < 0 || get_uint(w, UINT64_MAX, &p->cols) < 0 ? -1 : 0;
}

static int get_process(json_object *o, const struct cap_table *t, struct exec_proc *p)
{
    if (!json_object_is_type(o, json_type_object))
        return -1;
    int have_cwd = 0;
    json_object_object_foreach(o, key, val) {
        int r;
        if (!strcmp(key, "args")) {
            r = p->args.n ? -1 : get_strings(val, &p->args);   /* a key twice: Python's */
        } else if (!strcmp(key, "env")) {
            r = p->env.n ? -1 : get_strings(val, &p->env);
        } else if (!strcmp(key, "cwd")) {
            r = json_object_is_type(val, json_type_string) ? 0 : -1;
            if (r == 0) {
                free(p->cwd);
                r = (p->cwd = strdup(json_object_get_string(val))) ? 0 : -1;
                have_cwd = 1;
            }
        } else if (!strcmp(key, "terminal")) {
            r = get_bool(val, &p->terminal);
        } else if (!strcmp(key, "noNewPrivileges")) {
            r = get_bool(val, &p->nnp);
        } else if (!strcmp(key, "user")) {
            r = get_user(val, p);
        } else if (!strcmp(key, "capabilities")) {
            r = get_caps(val, t, p->caps);
        } else if (!strcmp(key, "rlimits")) {
            r = p->nrl ? -1 : get_rlimits(val, p);
        } else if (!strcmp(key, "consoleSize")) {
            r = get_console(val, p);
        } else if (!strcmp(key, "oomScoreAdj")) {
            int64_t v = json_object_get_int64(val);
            r = json_object_is_type(val, json_type_int) && v >= -1000 && v <= 1000 ? 0 : -1;
            p->oom = (int)v;
            p->has_oom = 1;
        } else if (!strcmp(key, "commandLine")) {
            r = json_object_is_type(val, json_type_string) ? 0 : -1;   /* Windows': ignored */
        } else if (!strcmp(key, "apparmorProfile") || !strcmp(key, "selinuxLabel")) {
            /* none (engines send ""): a label is Python's to check and apply */
            r = json_object_is_type(val, json_type_string) && !*json_object_get_string(val) ? 0 : -1;
        } else {
            r = -1;   /* scheduler, ioPriority, execCPUAffinity, unknown: Python's */
        }
        if (r < 0)
            return -1;
    }
    /* validate_process: cwd given, absolute; args not empty. */
    return have_cwd && p->cwd[0] == '/' && p->args.n > 0 ? 0 : -1;
}

int exec_json_parse(const char *raw, size_t len, const struct cap_table *caps,
                    struct exec_proc *p)
{
    memset(p, 0, sizeof *p);
    p->umask = 022;
    /* Only ASCII: Python checks any other string (a NUL, a lone
     * surrogate, UTF-16) and says where.  Go's encoder (every engine's)
     * writes &, < and > as \u0026, \u003c, \u003e: an escape of ASCII
     * other than NUL is let through. */
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)raw[i] >= 0x80 || raw[i] == '\0')
            return -1;
        if (raw[i] == '\\' && i + 1 < len && raw[i + 1] == 'u') {
            unsigned v = 0;
            for (size_t k = i + 2; k < i + 6; k++) {
                char h = k < len ? raw[k] : 'x';
                int d = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10
                      : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
                if (d < 0)
                    return -1;
                v = v * 16 + (unsigned)d;
            }
            if (v == 0 || v >= 0x80)
                return -1;
        }
    }
    struct json_tokener *tok = json_tokener_new();
    if (!tok)
        return -1;
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    json_object *doc = json_tokener_parse_ex(tok, raw, (int)len);
    int r = -1;
    if (doc && len < INT32_MAX && json_tokener_get_error(tok) == json_tokener_success) {
        size_t end = json_tokener_get_parse_end(tok);
        while (end < len && strchr(" \t\r\n", raw[end]))
            end++;
        if (end == len)
            r = get_process(doc, caps, p);
    }
    json_object_put(doc);
    json_tokener_free(tok);
    if (r < 0)
        exec_proc_free(p);
    return r;
}
