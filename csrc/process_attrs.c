/* Process attributes of runtime-spec 1.1+: scheduler (sched_setattr),
 * I/O priority, personality, NUMA memory policy, CPU affinity, and the
 * loopback device of a new network namespace. */
#include "internal.h"
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/personality.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <sched.h>

struct oci_sched_attr {
    uint32_t size;
    uint32_t sched_policy;
    uint64_t sched_flags;
    int32_t sched_nice;
    uint32_t sched_priority;
    uint64_t sched_runtime;
    uint64_t sched_deadline;
    uint64_t sched_period;
    uint32_t sched_util_min;
    uint32_t sched_util_max;
};

/* args: policy, flags, nice, priority, runtime, deadline, period */
void do_sched(struct init_ctx *c, struct step *s)
{
    struct oci_sched_attr a = {
        .size = sizeof a,
        .sched_policy = (uint32_t)s->args[0].num,
        .sched_flags = (uint64_t)s->args[1].num,
        .sched_nice = (int32_t)s->args[2].num,
        .sched_priority = (uint32_t)s->args[3].num,
        .sched_runtime = (uint64_t)s->args[4].num,
        .sched_deadline = (uint64_t)s->args[5].num,
        .sched_period = (uint64_t)s->args[6].num,
    };
    if (syscall(SYS_sched_setattr, 0, &a, 0) < 0) {
        if (errno == EPERM && (a.sched_policy == 1 || a.sched_policy == 2))
            die(c, "sched_setattr (process.scheduler: policy %u, priority %u): real-time group "
                "scheduling gives the container's cgroup no time: set "
                "linux.resources.cpu.realtimeRuntime", a.sched_policy, a.sched_priority);
        die(c, "sched_setattr (process.scheduler: policy %u, priority %u, nice %d)",
            a.sched_policy, a.sched_priority, a.sched_nice);
    }
}

void do_ioprio(struct init_ctx *c, int64_t value)
{
    if (syscall(SYS_ioprio_set, 1 /* IOPRIO_WHO_PROCESS */, 0, (int)value) < 0)
        die(c, "ioprio_set (process.ioPriority: class %d, priority %d)",
            (int)(value >> 13), (int)(value & 0x1fff));
}

void do_personality(struct init_ctx *c, int64_t persona)
{
    if (personality((unsigned long)persona) < 0)
        die(c, "personality 0x%llx (linux.personality)", (unsigned long long)persona);
}

/* args: mode (with flags), maxnode, mask words... */
void do_mempolicy(struct init_ctx *c, struct step *s)
{
    unsigned long mask[64] = {0};
    uint32_t words = s->argc - 2;
    if (words > 64)
        die_errno(c, EINVAL, "plan: memory policy mask too long");
    for (uint32_t i = 0; i < words; i++)
        mask[i] = (unsigned long)s->args[2 + i].num;
    unsigned long maxnode = (unsigned long)s->args[1].num;
    if (syscall(SYS_set_mempolicy, (int)s->args[0].num, words ? mask : NULL, maxnode) < 0)
        die(c, "set_mempolicy (linux.memoryPolicy: mode 0x%x)", (int)s->args[0].num);
}

/* args: mask words (64 CPUs each) */
void do_affinity(struct init_ctx *c, struct step *s)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    for (uint32_t w = 0; w < s->argc; w++)
        for (int b = 0; b < 64; b++)
            if (((uint64_t)s->args[w].num >> b) & 1 && w * 64 + b < CPU_SETSIZE)
                CPU_SET(w * 64 + b, &set);
    if (sched_setaffinity(0, sizeof set, &set) < 0)
        die(c, "sched_setaffinity (process.execCPUAffinity)");
}

/* A new network namespace has lo down; runc brings it up.  One ioctl on
 * a throwaway socket: no netlink needed. */
void do_lo_up(struct init_ctx *c)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        die(c, "bring lo up: socket");
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strcpy(ifr.ifr_name, "lo");
    if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
        die(c, "bring lo up: get its flags");
    if (!(ifr.ifr_flags & IFF_UP)) {
        ifr.ifr_flags |= IFF_UP;
        if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
            die(c, "bring lo up");
    }
    close(fd);
}
