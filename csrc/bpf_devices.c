/* The cgroup v2 device filter: load an eBPF program of type
 * BPF_PROG_TYPE_CGROUP_DEVICE and attach it to a cgroup2 directory.
 *
 * Python (ociruntime/cgroups/devices.py) assembles the instructions from
 * linux.resources.devices; this file only does the bpf() calls, in the
 * runtime process (not in the init: it is not a plan step).  Attaching is
 * done with BPF_F_ALLOW_MULTI, then every program that was attached
 * before is detached, so an update replaces the filter without a moment
 * in which the cgroup has none.
 */
#include "internal.h"
#include <fcntl.h>
#include <linux/bpf.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MAX_OLD 64

static int sys_bpf(int cmd, union bpf_attr *attr)
{
    return (int)syscall(SYS_bpf, cmd, attr, sizeof *attr);
}

/* Ids of the device programs attached to the cgroup open at fd, or -errno. */
static int query(int fd, uint32_t *ids, uint32_t max)
{
    union bpf_attr a;
    memset(&a, 0, sizeof a);
    a.query.target_fd = (uint32_t)fd;
    a.query.attach_type = BPF_CGROUP_DEVICE;
    a.query.prog_ids = (uint64_t)(uintptr_t)ids;
    a.query.prog_cnt = max;
    if (sys_bpf(BPF_PROG_QUERY, &a) < 0)
        return -errno;
    return (int)a.query.prog_cnt;
}

int oci_bpf_device_progs(const char *cgroup_dir)
{
    uint32_t ids[MAX_OLD];
    int fd = open(cgroup_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int n = query(fd, ids, MAX_OLD);
    close(fd);
    return n;
}

int oci_bpf_devices_attach(const char *cgroup_dir, const void *insns, unsigned n_insns,
                           char *log, unsigned log_size)
{
    uint32_t old[MAX_OLD];
    union bpf_attr a;
    int r, n_old, prog = -1;
    int cg = open(cgroup_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (cg < 0)
        return -errno;
    n_old = query(cg, old, MAX_OLD);
    if (n_old < 0) {
        r = n_old;
        goto out;
    }
    memset(&a, 0, sizeof a);
    a.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
    a.insns = (uint64_t)(uintptr_t)insns;
    a.insn_cnt = n_insns;
    a.license = (uint64_t)(uintptr_t)"Apache";
    if (log && log_size) {
        log[0] = 0;
        a.log_buf = (uint64_t)(uintptr_t)log;
        a.log_size = log_size;
        a.log_level = 1;
    }
    prog = sys_bpf(BPF_PROG_LOAD, &a);
    if (prog < 0 && errno == ENOSPC && log) {   /* log too small: load quietly */
        a.log_buf = 0;
        a.log_size = 0;
        a.log_level = 0;
        prog = sys_bpf(BPF_PROG_LOAD, &a);
    }
    if (prog < 0) {
        r = -errno;
        goto out;
    }
    memset(&a, 0, sizeof a);
    a.target_fd = (uint32_t)cg;
    a.attach_bpf_fd = (uint32_t)prog;
    a.attach_type = BPF_CGROUP_DEVICE;
    a.attach_flags = BPF_F_ALLOW_MULTI;
    if (sys_bpf(BPF_PROG_ATTACH, &a) < 0) {
        r = -errno;
        goto out;
    }
    /* The new filter is in place: drop the ones it replaces. */
    for (int i = 0; i < n_old; i++) {
        memset(&a, 0, sizeof a);
        a.prog_id = old[i];
        int ofd = sys_bpf(BPF_PROG_GET_FD_BY_ID, &a);
        if (ofd < 0)
            continue;   /* gone meanwhile */
        memset(&a, 0, sizeof a);
        a.target_fd = (uint32_t)cg;
        a.attach_bpf_fd = (uint32_t)ofd;
        a.attach_type = BPF_CGROUP_DEVICE;
        r = sys_bpf(BPF_PROG_DETACH, &a) < 0 ? -errno : 0;
        close(ofd);
        if (r < 0 && r != -ENOENT)
            goto out;
    }
    r = 0;
out:
    if (prog >= 0)
        close(prog);   /* the attachment holds its own reference */
    close(cg);
    return r;
}
