/* seccomp_cache: compiled seccomp filters kept between creates.
 *
 * libseccomp takes ~9 ms here to compile Docker's or podman's profile
 * (362 syscall names), and an engine gives all its containers the same
 * one.  The process that clones the init (spawn.c) looks the filter up in
 * the directory the plan names (seccomp.py's cache_dir: one per user, not
 * in a state root, which callers expect empty once its containers are
 * deleted) before building it, and saves what it built: crun does the
 * same in /run/crun/.seccomp-cache.
 *
 * An entry holds its whole key: the plan's build steps as they came (the
 * default action, the load flags, the architectures, every rule), when
 * this program was built, the version and API level of libseccomp and the
 * kernel's release.  A hit is an exact match of that key; the file name,
 * a hash of it, only finds the entry.  Whatever is unexpected is a miss, and the filter is then built
 * as without a cache: a directory or an entry that is not ours or that
 * others may write, a file too short or too long for what it says.
 *
 * Layout: "OCIRSCC1", u32 key length, key, u32 instruction count, the
 * instructions (struct sock_filter), all in this machine's byte order.
 * A failure to save is not an error: the next create builds again.  At
 * most MAX_ENTRIES are kept.
 */
#include "internal.h"
#include <dirent.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#define MAGIC "OCIRSCC1"
#define MAX_ENTRY (1 << 20)
#define MAX_ENTRIES 256   /* distinct profiles kept */

struct buf {
    uint8_t *p;
    size_t len, cap;
};

static int put(struct buf *b, const void *data, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 4096;
        while (cap < b->len + n)
            cap *= 2;
        uint8_t *p = realloc(b->p, cap);
        if (!p)
            return -1;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
    return 0;
}

/* The key: what the compiled filter depends on, in one byte string. */
static int key_of(struct step *steps, size_t n, struct buf *key)
{
    struct utsname u;
    const struct scmp_version *v = seccomp_version();
    if (uname(&u) < 0 || !v)
        return -1;
    char env[512];
    /* The build's time: a rebuilt ociruntime-init (a change of how steps
     * become rules) never takes an older build's entries. */
    int len = snprintf(env, sizeof env, "ociruntime-init %s %s libseccomp %u.%u.%u api %u kernel %s %s\n",
                       __DATE__, __TIME__, v->major, v->minor, v->micro, seccomp_api_get(), u.release,
                       u.machine);
    if (len < 0 || (size_t)len >= sizeof env || put(key, env, (size_t)len) < 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        uint32_t head[2] = {steps[i].op, steps[i].argc};
        if (put(key, head, sizeof head) < 0)
            return -1;
        for (uint32_t a = 0; a < steps[i].argc; a++) {
            const struct arg *arg = &steps[i].args[a];
            uint8_t is_str = arg->is_str ? 1 : 0;
            if (put(key, &is_str, 1) < 0)
                return -1;
            if (is_str) {
                uint32_t slen = (uint32_t)strlen(arg->str);
                if (put(key, &slen, sizeof slen) < 0 || put(key, arg->str, slen) < 0)
                    return -1;
            } else if (put(key, &arg->num, sizeof arg->num) < 0) {
                return -1;
            }
        }
    }
    return 0;
}

/* FNV-1a: only names the file; the key itself is compared in full. */
static void name_of(const struct buf *key, char name[17])
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < key->len; i++)
        h = (h ^ key->p[i]) * 0x100000001b3ULL;
    snprintf(name, 17, "%016llx", (unsigned long long)h);
}

/* Ours and closed to others, or not used at all (st: what fstat said). */
static int private_to_us(int fd, int want_dir, struct stat *st)
{
    return fstat(fd, st) == 0 && st->st_uid == geteuid() && !(st->st_mode & (want_dir ? 077 : 022))
        && (want_dir ? S_ISDIR(st->st_mode) : S_ISREG(st->st_mode) && st->st_size <= MAX_ENTRY);
}

static int open_dir(const char *dir, int make)
{
    if (make && mkdir(dir, 0700) < 0 && errno != EEXIST)
        return -1;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    if (fd >= 0 && !private_to_us(fd, 1, &st)) {
        close(fd);
        return -1;
    }
    return fd;
}

/* The entry's bytes (malloc'd, *size of them), or NULL: missing, not
 * ours, or changing size while read. */
static uint8_t *read_entry(int dirfd, const char *name, size_t *size)
{
    int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    struct stat st;
    uint8_t *data = NULL;
    if (private_to_us(fd, 0, &st) && st.st_size > 0 && (data = malloc((size_t)st.st_size))) {
        *size = (size_t)st.st_size;
        size_t total = 0;
        ssize_t r = 0;
        while (total < *size && (r = read(fd, data + total, *size - total)) > 0)
            total += (size_t)r;
        if (total != *size) {
            free(data);
            data = NULL;
        }
    }
    close(fd);
    return data;
}

/* The entry's instructions if it is this key's, else 0 (a miss). */
static int parse_entry(const uint8_t *data, size_t size, const struct buf *key,
                       struct sock_filter **insns, unsigned short *count)
{
    uint32_t klen, n;
    size_t head = sizeof MAGIC - 1;
    if (size < head + 8 || memcmp(data, MAGIC, head))
        return 0;
    memcpy(&klen, data + head, 4);
    if (klen != key->len || size < head + 8 + klen || memcmp(data + head + 4, key->p, klen))
        return 0;
    memcpy(&n, data + head + 4 + klen, 4);
    size_t at = head + 8 + klen;
    if (n == 0 || n > BPF_MAXINSNS || size - at != (size_t)n * sizeof **insns)
        return 0;
    if (!(*insns = malloc(size - at)))
        return 0;
    memcpy(*insns, data + at, size - at);
    *count = (unsigned short)n;
    return 1;
}

int seccomp_cache_load(const char *dir, struct step *steps, size_t n, unsigned long flags)
{
    struct buf key = {0};
    uint8_t *data = NULL;
    int hit = 0, dirfd = open_dir(dir, 0);
    if (dirfd >= 0 && key_of(steps, n, &key) == 0) {
        char name[17];
        name_of(&key, name);
        size_t size = 0;
        struct sock_filter *insns;
        unsigned short count;
        if ((data = read_entry(dirfd, name, &size)) && parse_entry(data, size, &key, &insns, &count)) {
            seccomp_use_compiled(flags, insns, count);
            hit = 1;
        }
    }
    free(data);
    free(key.p);
    if (dirfd >= 0)
        close(dirfd);
    return hit;
}

/* At MAX_ENTRIES, the entry written longest ago goes. */
static void make_room(int dirfd)
{
    int fd = dup(dirfd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0)
            close(fd);
        return;
    }
    size_t entries = 0;
    char oldest[256] = "";
    struct timespec when = {0};
    struct dirent *e;
    struct stat st;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || strlen(e->d_name) >= sizeof oldest
            || fstatat(dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            continue;
        entries++;
        if (!oldest[0] || st.st_mtim.tv_sec < when.tv_sec
            || (st.st_mtim.tv_sec == when.tv_sec && st.st_mtim.tv_nsec < when.tv_nsec)) {
            strcpy(oldest, e->d_name);
            when = st.st_mtim;
        }
    }
    closedir(d);
    if (entries >= MAX_ENTRIES && oldest[0])
        unlinkat(dirfd, oldest, 0);
}

static void write_entry(int dirfd, const char *name, const struct buf *key)
{
    const struct sock_filter *insns;
    unsigned short count;
    if (!seccomp_compiled(&insns, &count))
        return;
    struct buf e = {0};
    uint32_t klen = (uint32_t)key->len, n = count;
    if (put(&e, MAGIC, sizeof MAGIC - 1) == 0 && put(&e, &klen, 4) == 0 && put(&e, key->p, key->len) == 0
        && put(&e, &n, 4) == 0 && put(&e, insns, (size_t)count * sizeof *insns) == 0 && e.len <= MAX_ENTRY) {
        char tmp[64];
        snprintf(tmp, sizeof tmp, ".%s.%d", name, (int)getpid());
        int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd >= 0) {
            int ok = write(fd, e.p, e.len) == (ssize_t)e.len;
            ok = close(fd) == 0 && ok;
            if (!ok || renameat(dirfd, tmp, dirfd, name) < 0)
                unlinkat(dirfd, tmp, 0);
        }
    }
    free(e.p);
}

void seccomp_cache_store(const char *dir, struct step *steps, size_t n)
{
    int err = errno;
    struct buf key = {0};
    int dirfd = open_dir(dir, 1);
    if (dirfd >= 0 && key_of(steps, n, &key) == 0) {
        make_room(dirfd);
        char name[17];
        name_of(&key, name);
        write_entry(dirfd, name, &key);
    }
    free(key.p);
    if (dirfd >= 0)
        close(dirfd);
    errno = err;
}
