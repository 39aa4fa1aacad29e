#!/usr/bin/env python3
"""How long joining a cgroup takes, two ways (as root, on a v1 host):

  procs pid     the parent writes the child's pid into cgroup.procs (what
                runc, crun and ociruntime do): takes cgroup_threadgroup_rwsem
                for writing, which waits for an RCU grace period
  tasks 0 self  the child writes "0" into tasks (one thread, itself): the
                kernel skips that lock

Usage: benchmarks/cgroup_join.py [/sys/fs/cgroup/pids]
"""
import os
import sys
import time


def main():
    base = os.path.join(sys.argv[1] if len(sys.argv) > 1 else "/sys/fs/cgroup/pids",
                        f"ociruntime-bench-{os.getpid()}")
    os.mkdir(base)
    try:
        for name, fn in (("procs pid", _procs), ("tasks 0 self", _self)):
            xs = []
            for _ in range(15):
                time.sleep(0.05)   # idle, as between two creates
                xs.append(fn(base))
            xs.sort()
            print(f"{name:13} median {xs[7] * 1e3:.3f} ms, max {xs[-1] * 1e3:.3f} ms")
    finally:
        os.rmdir(base)


def _procs(base):
    pid = os.fork()
    if pid == 0:
        time.sleep(5)
        os._exit(0)
    t = time.perf_counter()
    with open(base + "/cgroup.procs", "w") as f:
        f.write(str(pid))
    d = time.perf_counter() - t
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    return d


def _self(base):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        t = time.perf_counter()
        fd = os.open(base + "/tasks", os.O_WRONLY)
        os.write(fd, b"0")
        os.close(fd)
        os.write(w, str(time.perf_counter() - t).encode())
        os._exit(0)
    os.close(w)
    d = float(os.read(r, 100))
    os.close(r)
    os.waitpid(pid, 0)
    return d


if __name__ == "__main__":
    main()
