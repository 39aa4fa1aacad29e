"""Each namespace is really isolated (or really joined), seen from inside
the container and from the host."""
import os
import subprocess
import uuid

import pytest

from ocihelpers import (Running, add_userns, assert_one_line_error, config, drop_ns,
                        leftover_processes, namespaces, ns_link, proc_status, set_ns, sh)

NS_DIRS = {"pid": "pid", "network": "net", "mount": "mnt", "ipc": "ipc", "uts": "uts",
           "user": "user", "cgroup": "cgroup", "time": "time"}


def run_ok(oci, cfg):
    code, out, err = oci.run_output(cfg=cfg)
    assert code == 0, err
    assert "Traceback" not in err
    return out


def test_new_namespaces_differ_from_the_host(oci):
    """From outside: every namespace the config asks for is a new one,
    every other one is the host's."""
    cfg = config(["sleep", "1000"])
    add_userns(cfg, oci=oci)
    set_ns(cfg, "time")
    with Running(oci, cfg) as c:
        asked = {n["type"] for n in namespaces(cfg)}
        for kind, d in NS_DIRS.items():
            inside, host = ns_link(c.pid, d), ns_link(os.getpid(), d)
            if kind in asked:
                assert inside != host, kind
            else:
                assert inside == host, kind
    with Running(oci, config(["sleep", "1000"])) as c:   # no user/time ns
        assert ns_link(c.pid, "user") == ns_link(os.getpid(), "user")
        assert ns_link(c.pid, "time") == ns_link(os.getpid(), "time")


def test_uts_hostname_and_domainname(oci):
    cfg = config(sh("hostname; cat /proc/sys/kernel/domainname"))
    cfg["hostname"] = "box-" + uuid.uuid4().hex[:6]
    cfg["domainname"] = "example.test"
    out = run_ok(oci, cfg)
    assert out.split() == [cfg["hostname"], "example.test"]
    assert os.uname().nodename != cfg["hostname"]


def test_pid_namespace_process_is_pid_1_and_proc_shows_only_it(oci):
    # `echo /proc/[0-9]*` is expanded by the shell itself: no other process
    out = run_ok(oci, config(sh("echo $$; echo /proc/[0-9]*; read c < /proc/1/comm; echo $c")))
    assert out.split("\n")[:3] == ["1", "/proc/1", "sh"]


def test_network_namespace_has_only_lo(oci):
    out = run_ok(oci, config(sh("ls /sys/class/net; tail -n +3 /proc/net/dev | cut -d: -f1")))
    assert out.split() == ["lo", "lo"]


def test_ipc_objects_are_not_shared(oci):
    """A SysV shared memory segment of the host is invisible inside, and
    one made inside never shows on the host."""
    made = subprocess.run(["ipcmk", "-M", "4096"], capture_output=True, text=True, check=True)
    shmid = made.stdout.split()[-1]
    try:
        with open("/proc/sysvipc/shm") as f:
            assert any(l.split()[1] == shmid for l in f.readlines()[1:])
        out = run_ok(oci, config(sh("tail -n +2 /proc/sysvipc/shm | wc -l")))
        assert out.strip() == "0"
    finally:
        subprocess.run(["ipcrm", "-m", shmid], check=True)
    # without an ipc namespace the host's segments are visible
    cfg = drop_ns(config(sh("tail -n +2 /proc/sysvipc/shm | wc -l")), "ipc")
    made = subprocess.run(["ipcmk", "-M", "4096"], capture_output=True, text=True, check=True)
    shmid = made.stdout.split()[-1]
    try:
        assert int(run_ok(oci, cfg)) >= 1
    finally:
        subprocess.run(["ipcrm", "-m", shmid], check=True)


def test_user_namespace_mapping(oci):
    cfg = add_userns(config(sh(
        "cat /proc/self/uid_map /proc/self/gid_map; id -u; id -g; stat -c '%u %g' /bin/busybox")), oci=oci)
    out = run_ok(oci, cfg).split("\n")
    assert out[0].split() == ["0", "100000", "65536"]
    assert out[1].split() == ["0", "100000", "65536"]
    assert out[2:4] == ["0", "0"]
    # the rootfs belongs to host root, which is unmapped: nobody inside
    assert out[4] == "65534 65534"


def test_user_namespace_ids_from_outside(oci):
    cfg = add_userns(config(["sleep", "1000"]), oci=oci)
    cfg["process"]["user"] = {"uid": 5, "gid": 7}
    with Running(oci, cfg) as c:
        st = proc_status(c.pid)
        assert st["Uid"].split() == ["100005"] * 4
        assert st["Gid"].split() == ["100007"] * 4
        with open(f"/proc/{c.pid}/uid_map") as f:
            assert f.read().split() == ["0", "100000", "65536"]


def test_cgroup_namespace_root(oci):
    out = run_ok(oci, config(["cat", "/proc/self/cgroup"]))
    lines = out.split()
    assert lines and all(l.split(":", 2)[2] == "/" for l in lines), lines
    # without one the container sees its real cgroup, named after its id
    cfg = drop_ns(config(["cat", "/proc/self/cgroup"]), "cgroup")
    b = oci.bundle(cfg)
    cid = oci.new_id()
    r = oci.cmd("run", "-b", b, cid)
    assert r.returncode == 0, r.stderr
    assert all(l.split(":", 2)[2].endswith("/" + cid) for l in r.stdout.split()), r.stdout


def test_time_namespace_offsets(oci):
    day = 86400
    cfg = set_ns(config(sh("cat /proc/uptime; cat /proc/self/timens_offsets")), "time")
    cfg["linux"]["timeOffsets"] = {"boottime": {"secs": 1000 * day, "nanosecs": 0},
                                   "monotonic": {"secs": 7 * day, "nanosecs": 500}}
    with open("/proc/uptime") as f:
        before = float(f.read().split()[0])
    out = run_ok(oci, cfg).split("\n")
    with open("/proc/uptime") as f:
        after = float(f.read().split()[0])
    inside = float(out[0].split()[0])
    assert before + 1000 * day <= inside <= after + 1000 * day + 1
    offsets = {l.split()[0]: l.split()[1:] for l in out[1:] if l}
    assert offsets == {"monotonic": [str(7 * day), "500"], "boottime": [str(1000 * day), "0"]}


@pytest.fixture
def holder():
    """A host process in its own net and uts namespaces, with a hostname."""
    name = "holder-" + uuid.uuid4().hex[:6]
    p = subprocess.Popen(["unshare", "--net", "--uts", "sh", "-c",
                          f"hostname {name} && echo ok && exec sleep 1000"],
                         stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline() == "ok\n"
        p.hostname = name
        yield p
    finally:
        p.kill()
        p.wait()


def test_join_namespaces_by_path(oci, holder):
    cfg = config(sh("readlink /proc/self/ns/net; readlink /proc/self/ns/uts; hostname; echo $$"))
    set_ns(cfg, "network", f"/proc/{holder.pid}/ns/net")
    set_ns(cfg, "uts", f"/proc/{holder.pid}/ns/uts")
    del cfg["hostname"]   # would rename the holder's namespace
    out = run_ok(oci, cfg).split()
    assert out[:2] == [ns_link(holder.pid, "net"), ns_link(holder.pid, "uts")]
    assert out[2] == holder.hostname
    assert out[3] == "1"   # the pid namespace is still a new one


def test_join_from_outside_and_new_ones_still_new(oci, holder):
    cfg = config(["sleep", "1000"])
    set_ns(cfg, "network", f"/proc/{holder.pid}/ns/net")
    with Running(oci, cfg) as c:
        assert ns_link(c.pid, "net") == ns_link(holder.pid, "net")
        assert ns_link(c.pid, "uts") != ns_link(holder.pid, "uts")
        assert ns_link(c.pid, "pid") != ns_link(os.getpid(), "pid")
        assert proc_status(c.pid)["NSpid"].split()[-1] == "1"


def test_joined_namespace_of_the_wrong_type_is_an_error(oci, holder):
    cfg = config(["true"])
    set_ns(cfg, "network", f"/proc/{holder.pid}/ns/uts")
    b = oci.bundle(cfg)
    cid = oci.new_id()
    r = oci.create("-b", b, cid)
    assert_one_line_error(r, f"/proc/{holder.pid}/ns/uts")
    assert not leftover_processes(oci)
    assert not os.path.exists(os.path.join(oci.root, cid))


def test_joining_a_missing_namespace_path_is_an_error(oci):
    cfg = set_ns(config(["true"]), "network", "/proc/self/ns/does-not-exist")
    b = oci.bundle(cfg)
    r = oci.create("-b", b, oci.new_id())
    assert_one_line_error(r, "does-not-exist")
    assert not leftover_processes(oci)


def test_no_namespaces_but_mount_shares_the_host_ones(oci):
    cfg = config(sh("readlink /proc/self/ns/net; readlink /proc/self/ns/pid"))
    cfg["linux"]["namespaces"] = [{"type": "mount"}]
    del cfg["hostname"]
    cfg["mounts"] = [m for m in cfg["mounts"] if m["type"] not in ("sysfs", "cgroup", "mqueue")]
    out = run_ok(oci, cfg).split()
    assert out == [ns_link(os.getpid(), "net"), ns_link(os.getpid(), "pid")]


def test_join_a_user_namespace_with_others(oci):
    """Joining a user namespace (first, so that we may join the rest) and
    a network namespace it owns; the other namespaces are made inside it
    and no ids are mapped by us."""
    p = subprocess.Popen(["unshare", "--user", "--net", "sh", "-c", "echo ok; exec sleep 1000"],
                         stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline() == "ok\n"
        for name in ("uid_map", "gid_map"):
            with open(f"/proc/{p.pid}/{name}", "w") as f:
                f.write("0 100000 65536\n")
        cfg = config(sh("cat /proc/self/uid_map; readlink /proc/self/ns/user; "
                        "readlink /proc/self/ns/net; echo $$"))
        add_userns(cfg, oci=oci)
        del cfg["linux"]["uidMappings"], cfg["linux"]["gidMappings"]
        set_ns(cfg, "user", f"/proc/{p.pid}/ns/user")
        set_ns(cfg, "network", f"/proc/{p.pid}/ns/net")
        out = run_ok(oci, cfg).split("\n")
        assert out[0].split() == ["0", "100000", "65536"]
        assert out[1:3] == [ns_link(p.pid, "user"), ns_link(p.pid, "net")]
        assert out[3] == "1"
    finally:
        p.kill()
        p.wait()
