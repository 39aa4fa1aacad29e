"""`ociruntime exec`: a second process in a running container, checked
from inside (what it sees) and from outside (/proc of the host)."""
import json
import os
import subprocess
from ocihelpers import wait_for

import pytest

from conftest import RUNTIME, busybox_config
from ociruntime.cli import COMMANDS, UsageError, parse_flags

NS = ("cgroup", "ipc", "mnt", "net", "pid", "uts", "user", "time")


def sh(script):
    return ["sh", "-c", script]


def detached(oci, *args):
    """`ociruntime ARGS` whose container keeps our stdio: not pipes that
    would stay open (and make a capture wait) as long as it runs."""
    with open(oci.tmp / "detached.err", "w+") as err:
        r = oci.cmd(*args, capture_output=False, stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL, stderr=err)
        err.seek(0)
        assert r.returncode == 0, f"ociruntime {args} failed: {err.read()}"


def start(oci, cfg=None):
    """A detached container running sleep; (id, init pid)."""
    cfg = cfg or busybox_config(["sleep", "1000"])
    b = oci.bundle(cfg)
    cid = oci.new_id()
    detached(oci, "run", "-d", "-b", b, cid)
    return cid, oci.state(cid)["pid"]


def userns(cfg, oci, host_id=100000):
    for d in (oci.tmp, *oci.tmp.parents):   # the mapped root must reach the rootfs
        if str(d) in ("/", "/tmp"):
            break
        os.chmod(d, os.stat(d).st_mode | 0o111)
    cfg["linux"]["namespaces"].append({"type": "user"})
    for key in ("uidMappings", "gidMappings"):
        cfg["linux"][key] = [{"containerID": 0, "hostID": host_id, "size": 65536}]
    return cfg


def ns_inode(pid, name):
    return os.readlink(f"/proc/{pid}/ns/{name}")




# -- the command line -----------------------------------------------------

def test_parse_flags_repeatable_and_single():
    spec = COMMANDS["exec"]
    opts, pos = parse_flags(["-e", "A=1", "--env", "B=2", "--env=C=3", "-u", "1", "--user", "2",
                             "-t", "ID", "sh", "-c", "--tty"], spec, stop_at_positional=True)
    assert opts["env"] == ["A=1", "B=2", "C=3"]
    assert opts["user"] == "2"           # a single-value flag: the last wins
    assert opts["tty"] is True
    assert pos == ["ID", "sh", "-c", "--tty"]   # after the ID: the command's
    opts, pos = parse_flags(["ID", "--force"], COMMANDS["delete"])
    assert opts == {"force": True} and pos == ["ID"]
    with pytest.raises(UsageError):
        parse_flags(["--cap"], spec)


# -- output, exit code, signals --------------------------------------------

def test_exec_output_and_exit_code(oci):
    cid, _ = start(oci)
    r = oci.cmd("exec", cid, *sh("echo out; echo err >&2; exit 7"))
    assert (r.returncode, r.stdout, r.stderr) == (7, "out\n", "err\n")
    r = oci.cmd("exec", cid, *sh("kill -9 $$"))
    assert r.returncode == 128 + 9
    r = oci.cmd("exec", cid, "cat", input="through stdin\n")
    assert (r.returncode, r.stdout) == (0, "through stdin\n")
    # flags after the id belong to the command (runc's rule)
    assert oci.ok("exec", cid, "echo", "--tty", "-e").stdout == "--tty -e\n"


def test_exec_forwards_signals(oci):
    cid, _ = start(oci)
    p = subprocess.Popen([RUNTIME, "--root", oci.root, "exec", cid, *sh(
        "trap 'echo got-term; exit 42' TERM; echo ready; while :; do sleep 0.05; done")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline() == "ready\n"
        p.terminate()
        assert p.wait(timeout=30) == 42
        assert p.stdout.read() == "got-term\n"
    finally:
        p.kill()
        p.wait()


def test_exec_errors_use_runc_words(oci):
    cid, _ = start(oci)
    r = oci.cmd("exec", cid, "no-such-command")
    assert r.returncode == 255
    assert 'exec failed: exec: "no-such-command": executable file not found in $PATH' in r.stderr
    r = oci.cmd("exec", cid, "/etc")
    assert r.returncode == 255 and "permission denied" in r.stderr
    r = oci.cmd("exec", "ociruntime-test-nonexistent", "true")
    assert r.returncode == 255
    assert 'container "ociruntime-test-nonexistent" does not exist' in r.stderr
    r = oci.cmd("exec", cid)
    assert r.returncode == 255 and "process args cannot be empty" in r.stderr
    assert "Traceback" not in r.stderr


def test_exec_into_stopped_container(oci):
    b = oci.bundle(args=["true"])
    cid = oci.new_id()
    detached(oci, "run", "-d", "-b", b, cid)
    wait_for(lambda: oci.state(cid)["status"] == "stopped", "the container to stop")
    r = oci.cmd("exec", cid, "true")
    assert r.returncode == 255
    assert "cannot exec in a stopped container" in r.stderr


def test_exec_into_created_container(oci):
    """runc allows exec before start: the process joins the same namespaces."""
    b = oci.bundle(args=["sleep", "1000"])
    cid = oci.new_id()
    detached(oci, "create", "-b", b, cid)
    pid = oci.state(cid)["pid"]
    out = oci.ok("exec", cid, *sh("readlink /proc/self/ns/mnt; readlink /proc/self/ns/pid; hostname")).stdout
    assert out.split() == [ns_inode(pid, "mnt"), ns_inode(pid, "pid"), "busybox"]
    assert oci.state(cid)["status"] == "created"


def test_exec_into_paused_container(oci):
    cid, pid = start(oci)
    freezer = None
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            if "freezer" in ctrls.split(","):
                freezer = f"/sys/fs/cgroup/freezer{path}/freezer.state"
    if freezer is None or not os.path.exists(freezer):
        pytest.skip("no v1 freezer here")
    with open(freezer, "w") as f:
        f.write("FROZEN")
    try:
        wait_for(lambda: open(freezer).read().strip() == "FROZEN", "the freeze")
        r = oci.cmd("exec", cid, "true")
        assert r.returncode == 255
        assert "cannot exec in a paused container (use --ignore-paused to override)" in r.stderr
        # --ignore-paused: accepted; the process runs once the container thaws
        p = subprocess.Popen([RUNTIME, "--root", oci.root, "exec", "--ignore-paused", cid,
                              "echo", "thawed"], stdout=subprocess.PIPE, text=True)
    finally:
        with open(freezer, "w") as f:
            f.write("THAWED")
    out, _ = p.communicate(timeout=30)
    assert (p.returncode, out) == (0, "thawed\n")


# -- what the process is -----------------------------------------------------

def test_exec_env_cwd_user_groups(oci):
    cid, _ = start(oci)
    out = oci.ok("exec", "-e", "FOO=bar", "--env", "TERM=dumb", "--cwd", "/tmp", "-u", "1000:1000",
                 "-g", "5", "--additional-gids", "6", cid,
                 *sh("id -u; id -g; id -G; pwd; echo $FOO $TERM $HOME; env | grep -c ^TERM=")).stdout
    assert out.split("\n")[:-1] == ["1000", "1000", "1000 5 6", "/tmp", "bar dumb /home/user", "1"]
    # the default: the config's process (root, cwd /, its env)
    out = oci.ok("exec", cid, *sh("id -u; pwd; echo $TERM")).stdout
    assert out.split() == ["0", "/", "xterm"]
    r = oci.cmd("exec", "-u", "x", cid, "true")
    assert r.returncode == 255 and "parsing x as int for uid failed" in r.stderr


def caps(text):
    return {l.split(":")[0]: int(l.split()[1], 16) for l in text.splitlines() if l.startswith("Cap")}


def test_exec_caps_and_no_new_privs(oci):
    cid, _ = start(oci)
    cfg_caps = busybox_config()["process"]["capabilities"]
    from ociruntime.capabilities import mask
    base = mask(cfg_caps["bounding"], "")
    got = caps(oci.ok("exec", cid, "cat", "/proc/self/status").stdout)
    assert got["CapBnd"] == base and got["CapEff"] == base
    sys_admin = 1 << 21
    got = caps(oci.ok("exec", "--cap", "CAP_SYS_ADMIN", "-c", "CAP_NET_RAW", cid,
                      "cat", "/proc/self/status").stdout)
    assert got["CapBnd"] == got["CapEff"] == got["CapPrm"] == base | sys_admin | (1 << 13)
    r = oci.cmd("exec", "--cap", "CAP_NOPE", cid, "true")
    assert r.returncode == 255 and "CAP_NOPE" in r.stderr
    # the busybox config sets noNewPrivileges; --no-new-privs=false does not clear
    # it for the config, but the flag is accepted either way
    out = oci.ok("exec", "--no-new-privs", cid, "grep", "NoNewPrivs", "/proc/self/status").stdout
    assert out.split() == ["NoNewPrivs:", "1"]
    out = oci.ok("exec", "--no-new-privs=false", cid, "grep", "NoNewPrivs", "/proc/self/status").stdout
    assert out.split() == ["NoNewPrivs:", "0"]
    # LSM labels: as create and runc, refused where the LSM is not enabled
    # (this host has neither AppArmor nor SELinux)
    from ociruntime import lsm
    if not lsm.apparmor_enabled():
        r = oci.cmd("exec", "--apparmor", "unconfined", cid, "true")
        assert r.returncode == 255 and "--apparmor: AppArmor is not enabled" in r.stderr
    if not lsm.selinux_enabled():
        r = oci.cmd("exec", "--process-label", "x", cid, "true")
        assert r.returncode == 255 and "selinux is disabled or not supported" in r.stderr


def test_exec_joins_the_init_namespaces_and_cgroups(oci):
    cid, pid = start(oci)
    script = "for n in %s; do readlink /proc/self/ns/$n; done; cat /proc/self/cgroup; echo; cat /proc/1/cgroup"
    out = oci.ok("exec", cid, *sh(script % " ".join(NS))).stdout.splitlines()
    assert out[:len(NS)] == [ns_inode(pid, n) for n in NS]
    mine, init = "\n".join(out[len(NS):]).split("\n\n")
    assert mine == init
    # from outside: the exec'd process is in the init's cgroups
    p = subprocess.Popen([RUNTIME, "--root", oci.root, "exec", cid, *sh("echo $$; read x")],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        inner = int(p.stdout.readline())
        procs = [int(x) for x in open(_cgroup_dir(pid, "pids") + "/cgroup.procs").read().split()]
        host_pids = [x for x in procs if x != pid]
        assert len(host_pids) == 1
        with open(f"/proc/{host_pids[0]}/status") as f:
            nspid = [l for l in f if l.startswith("NSpid:")][0].split()
        assert int(nspid[-1]) == inner and inner != 1
        p.stdin.write("\n")
        p.stdin.close()
        assert p.wait(timeout=30) == 0
    finally:
        p.kill()
        p.wait()


def _cgroup_dir(pid, ctrl):
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            if ctrl in ctrls.split(","):
                return f"/sys/fs/cgroup/{ctrl}{path}"
    raise AssertionError(f"no {ctrl} cgroup")


def test_exec_with_user_and_time_namespaces(oci):
    """The user namespace is joined first (else joining the others it owns
    fails), and the time namespace too."""
    cfg = userns(busybox_config(["sleep", "1000"]), oci)
    cfg["linux"]["namespaces"].append({"type": "time"})
    cfg["linux"]["timeOffsets"] = {"boottime": {"secs": 86400 * 1000}}
    cid, pid = start(oci, cfg)
    script = "for n in %s; do readlink /proc/self/ns/$n; done; id -u; cat /proc/uptime" % " ".join(NS)
    out = oci.ok("exec", cid, *sh(script)).stdout.splitlines()
    assert out[:len(NS)] == [ns_inode(pid, n) for n in NS]
    assert ns_inode(pid, "user") != ns_inode(os.getpid(), "user")
    assert out[len(NS)] == "0"
    assert float(out[len(NS) + 1].split()[0]) > 86400 * 1000   # the offset applies
    # from outside: root in there is 100000 out here
    detached(oci, "exec", "-d", "--pid-file", oci.tmp / "p.pid", cid, "sleep", "1000")
    inner = int((oci.tmp / "p.pid").read_text())
    with open(f"/proc/{inner}/status") as f:
        uids = [l for l in f if l.startswith("Uid:")][0].split()[1:]
    assert uids == ["100000"] * 4


def test_exec_sub_cgroup(oci):
    cid, pid = start(oci)
    base = _cgroup_dir(pid, "pids")
    sub = base + "/sub"
    os.mkdir(sub)
    try:
        out = oci.ok("exec", "--cgroup", "pids:sub", cid, "cat", "/proc/self/cgroup").stdout
        line = [l for l in out.splitlines() if ":pids:" in l][0]
        assert line.endswith("/sub")
        r = oci.cmd("exec", "--cgroup", "nosuchctrl:sub", cid, "true")
        assert r.returncode == 255 and "unknown controller nosuchctrl in --cgroup" in r.stderr
        r = oci.cmd("exec", "--cgroup", "pids:../../x", cid, "true")
        assert r.returncode == 255 and "is not a sub cgroup path" in r.stderr
    finally:
        wait_for(lambda: not open(sub + "/cgroup.procs").read().strip(), "the sub-cgroup to empty")
        os.rmdir(sub)


# -- detached, pid file, process.json ---------------------------------------

def test_exec_detached_with_pid_file(oci):
    cid, pid = start(oci)
    pid_file = oci.tmp / "exec.pid"
    detached(oci, "exec", "-d", "--pid-file", pid_file, cid, "sleep", "1000")
    text = pid_file.read_text()
    assert text.isdigit()                 # digits only, no newline
    epid = int(text)
    with open(f"/proc/{epid}/cmdline", "rb") as f:
        assert f.read() == b"sleep\x001000\x00"   # written after the exec, not before
    assert ns_inode(epid, "pid") == ns_inode(pid, "pid")
    assert ns_inode(epid, "mnt") == ns_inode(pid, "mnt")
    assert [p for p in os.listdir(oci.tmp) if p.startswith("exec.pid.")] == []
    # a detached exec whose command is missing: an error, and no pid file
    r = oci.cmd("exec", "-d", "--pid-file", oci.tmp / "bad.pid", cid, "no-such", stdin=subprocess.DEVNULL)
    assert r.returncode == 255 and "executable file not found" in r.stderr
    assert not (oci.tmp / "bad.pid").exists()


def test_exec_process_json(oci):
    cid, _ = start(oci)
    proc = {"args": ["sh", "-c", "echo $A; id -u; pwd; grep NoNewPrivs /proc/self/status"],
            "env": ["A=from-json", "PATH=/bin:/usr/bin"], "cwd": "/etc",
            "user": {"uid": 1234, "gid": 1234}, "terminal": False}
    pf = oci.tmp / "process.json"
    pf.write_text(json.dumps(proc))
    out = oci.ok("exec", "--process", pf, cid).stdout
    assert out.split() == ["from-json", "1234", "/etc", "NoNewPrivs:", "0"]
    pf.write_text(json.dumps(dict(proc, args=["sleep", "1000"])))
    detached(oci, "exec", "-p", pf, "--detach", "--pid-file", oci.tmp / "p.pid", cid)
    assert (oci.tmp / "p.pid").read_text().isdigit()
    for bad, words in ((dict(proc, cwd="etc"), "$.cwd: must be an absolute path"),
                       ({"args": ["x"]}, "$: 'cwd' is a required property"),
                       (dict(proc, args=[]), "$.args"),
                       (dict(proc, user={"uid": "a"}), "$.user.uid")):
        pf.write_text(json.dumps(bad))
        r = oci.cmd("exec", "-p", pf, cid)
        assert r.returncode == 255, bad
        assert f"{pf}: {words}" in r.stderr, r.stderr
        assert "Traceback" not in r.stderr
    pf.write_text("{not json")
    r = oci.cmd("exec", "-p", pf, cid)
    assert r.returncode == 255 and "invalid JSON" in r.stderr
    r = oci.cmd("exec", "-p", oci.tmp / "missing.json", cid)
    assert r.returncode == 255 and "no such file or directory" in r.stderr


def test_exec_leaves_no_process_behind(oci):
    cid, pid = start(oci)
    oci.ok("exec", cid, "true")
    oci.cmd("exec", cid, "no-such")
    procs = open(_cgroup_dir(pid, "pids") + "/cgroup.procs").read().split()
    assert procs == [str(pid)]
    # nothing of ours is left a zombie
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    st = f.read()
            except OSError:
                continue
            fields = st[st.rindex(")") + 2:].split()
            assert not (fields[0] == "Z" and int(fields[1]) == os.getpid()), st


def test_no_blocked_or_ignored_signals_reach_the_process(oci):
    """The runtime (Python) ignores SIGPIPE and SIGXFSZ and blocks the
    signals it forwards; the container's processes start with defaults."""
    script = ["grep", "-E", "^Sig(Blk|Ign):", "/proc/self/status"]   # no shell in between
    code, out, err = oci.run_output(script)
    assert code == 0, err
    assert out.split() == ["SigBlk:", "0" * 16, "SigIgn:", "0" * 16]
    cid, _ = start(oci)
    out = oci.ok("exec", cid, *script).stdout
    assert out.split() == ["SigBlk:", "0" * 16, "SigIgn:", "0" * 16]


def test_exec_uses_the_process_create_validated(oci):
    """As runc: exec's defaults are the config create read, not whatever
    config.json holds now (it is neither read nor validated again)."""
    cfg = busybox_config(["sleep", "1000"])
    cfg["process"]["env"].append("FROM_CREATE=yes")
    b = oci.bundle(cfg)
    cid = oci.new_id()
    assert oci.create("-b", b, cid).returncode == 0
    oci.ok("start", cid)
    (b / "config.json").write_text("{ not json any more")
    out = oci.ok("exec", cid, "sh", "-c", "echo $FROM_CREATE").stdout
    assert out == "yes\n"
    oci.ok("delete", "-f", cid)
