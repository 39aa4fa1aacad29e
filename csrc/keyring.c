/* The session keyring of a container's processes, as runc makes it: unless
 * --no-new-keyring, the init (and every exec) joins a session keyring named
 * "_ses.<id>" instead of inheriting the caller's, so keys of the host's
 * session never reach the container.  The keyring is made searchable by its
 * user, so that a later exec joins the same one by name. */
#include "internal.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define KEYCTL_SETPERM 5
#define KEYCTL_DESCRIBE 6
#define KEYCTL_JOIN_SESSION_KEYRING 1
#define KEY_USR_SEARCH 0x00080000u

void do_session_keyring(struct init_ctx *c, const char *name)
{
    long id = syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name, 0L, 0L, 0L);
    if (id < 0) {
        if (errno == ENOSYS)   /* runc too: a kernel without keys */
            return;
        die(c, "join session keyring %s", name);
    }
    /* "type;uid;gid;perm;description": perm is hex */
    char desc[512];
    long n = syscall(SYS_keyctl, KEYCTL_DESCRIBE, id, desc, (long)sizeof desc, 0L);
    if (n < 0)
        die(c, "describe session keyring %s", name);
    desc[sizeof desc - 1] = '\0';
    const char *p = desc;
    for (int i = 0; i < 3 && p; i++) {
        p = strchr(p, ';');
        if (p)
            p++;
    }
    if (!p)
        die_errno(c, EINVAL, "describe session keyring %s: unexpected %s", name, desc);
    char *end;
    errno = 0;
    unsigned long perm = strtoul(p, &end, 16);
    if (errno || end == p || *end != ';')
        die_errno(c, EINVAL, "describe session keyring %s: unexpected %s", name, desc);
    if (syscall(SYS_keyctl, KEYCTL_SETPERM, id, (unsigned long)(uint32_t)perm | KEY_USR_SEARCH,
                0L, 0L) < 0)
        die(c, "set permissions of session keyring %s", name);
}
