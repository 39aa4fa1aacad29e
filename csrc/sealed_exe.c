/* CVE-2019-5736: ociruntime-init runs only from a sealed memfd.
 *
 * The init, exec's process and the hooks the init runs all execute this
 * program inside the container's namespaces.  Any of them can be made to
 * exec an image's `#!/proc/self/exe`: the kernel then runs /proc/self/exe
 * -- this program's file -- with the image's ld.so, dumpable again, and
 * the image's code can reopen that file for writing.  So the file must be
 * one that cannot be written: a memfd sealed against writes, shrinking and
 * growing (and against chmod where the kernel has F_SEAL_EXEC).
 *
 * The runtime spawns us from a memfd copy that it sealed right after
 * writing it (core.py: _exe_copy; exec_fast.c: exe_copy), in the process
 * and on the CPU that wrote the pages: sealed by another process, the
 * kernel's wait for page pins (memfd_wait_for_pins) found the writer's
 * pages still in the writer CPU's LRU batch and drained every CPU's.
 * Whoever started us, /proc/self/exe must carry the seals.  Started any
 * other way -- from the file in site-packages, or from a copy that is not
 * sealed -- we make the sealed copy ourselves (written and sealed here)
 * and exec it, before reading the plan: nothing of ours enters a namespace
 * from a writable file.  As runc's cloned_binary. */
#include "internal.h"
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif
#ifndef F_SEAL_EXEC
#define F_SEAL_EXEC 0x0020
#endif

/* The seals that make the content final. */
#define SEALS_REQUIRED (F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)

/* Kernels before 6.3 have no F_SEAL_EXEC (EINVAL): the others suffice. */
static int add_seals(int fd)
{
    if (fcntl(fd, F_ADD_SEALS, SEALS_REQUIRED | F_SEAL_EXEC) == 0)
        return 0;
    return errno == EINVAL ? fcntl(fd, F_ADD_SEALS, SEALS_REQUIRED) : -1;
}

static int is_sealed(int fd)
{
    int seals = fcntl(fd, F_GET_SEALS);
    return seals >= 0 && (seals & SEALS_REQUIRED) == SEALS_REQUIRED;
}

/* A sealed memfd holding the file of fd; exits through die on failure. */
static int sealed_copy(struct init_ctx *c, int src)
{
    struct stat st;
    if (fstat(src, &st) < 0)
        die(c, "sealed copy: stat /proc/self/exe");
    /* MFD_EXEC: executable even where vm.memfd_noexec defaults to not;
     * kernels before 6.3 do not know the flag (EINVAL). */
    int fd = (int)syscall(SYS_memfd_create, "ociruntime-init", MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC);
    if (fd < 0 && errno == EINVAL)
        fd = (int)syscall(SYS_memfd_create, "ociruntime-init", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0)
        die(c, "sealed copy: memfd_create ociruntime-init");
    for (off_t off = 0; off < st.st_size;) {
        ssize_t n = sendfile(fd, src, &off, (size_t)(st.st_size - off));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            die(c, "sealed copy: copy /proc/self/exe");
        if (n == 0)
            die_errno(c, EIO, "sealed copy: /proc/self/exe ended at %lld of %lld bytes",
                      (long long)off, (long long)st.st_size);
    }
    if (add_seals(fd) < 0)
        die(c, "sealed copy: seal the memfd");
    return fd;
}

void ensure_sealed_self(struct init_ctx *c, char **argv)
{
    int self = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    if (self < 0)
        die(c, "sealed copy: open /proc/self/exe");
    if (is_sealed(self)) {
        if (close(self) < 0)
            die(c, "sealed copy: close /proc/self/exe");
        return;
    }
    int fd = sealed_copy(c, self);
    if (close(self) < 0)
        die(c, "sealed copy: close /proc/self/exe");
    /* The memfd is close-on-exec: fine for an ELF file, which the kernel
     * has open by then.  Our fds (plan, sync, report) are not: they stay. */
    extern char **environ;
    syscall(SYS_execveat, fd, "", argv, environ, AT_EMPTY_PATH);
    die(c, "sealed copy: exec the sealed copy of ociruntime-init");
}
