"""The container process: capabilities, rlimits, user and groups, umask,
env and cwd, noNewPrivileges, oomScoreAdj."""
import os

import pytest

from ocihelpers import (Running, assert_one_line_error, config, leftover_processes,
                        proc_status, sh, status_fields)
from ociruntime.capabilities import CAP_NUMBER


def mask(names):
    m = 0
    for n in names:
        m |= 1 << CAP_NUMBER[n]
    return m


def caps_of(status):
    return {k: int(status[k], 16) for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")}


def run_ok(oci, cfg):
    code, out, err = oci.run_output(cfg=cfg)
    assert code == 0, (code, out, err)
    return out


SOME = ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SETUID", "CAP_SETGID"]


def test_caps_of_the_waiting_init_are_the_config(oci):
    """Before exec (state created) the init holds exactly the five sets."""
    cfg = config(["true"])
    cfg["process"]["capabilities"] = {
        "bounding": SOME + ["CAP_SYS_ADMIN"], "effective": SOME[:2], "permitted": SOME,
        "inheritable": SOME[1:3], "ambient": SOME[1:3]}
    with Running(oci, cfg, start=False) as c:
        got = caps_of(proc_status(c.pid))
    assert got == {"CapBnd": mask(SOME + ["CAP_SYS_ADMIN"]), "CapEff": mask(SOME[:2]),
                   "CapPrm": mask(SOME), "CapInh": mask(SOME[1:3]), "CapAmb": mask(SOME[1:3])}


def test_caps_of_root_after_exec(oci):
    sets = ["CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_AUDIT_WRITE"]
    cfg = config(["cat", "/proc/self/status"])
    cfg["process"]["capabilities"] = {k: sets for k in
                                      ("bounding", "effective", "permitted", "inheritable", "ambient")}
    got = caps_of(status_fields(run_ok(oci, cfg)))
    assert got == {k: mask(sets) for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")}


def test_caps_of_the_busybox_bundle(oci):
    """The bundle as shipped: no inheritable set, so (as in runc) the
    ambient set stays empty; root's exec keeps the bounding set."""
    cfg = config(["cat", "/proc/self/status"])
    caps = cfg["process"]["capabilities"]
    got = caps_of(status_fields(run_ok(oci, cfg)))
    assert got["CapBnd"] == mask(caps["bounding"])
    assert got["CapEff"] == got["CapPrm"] == mask(caps["permitted"])
    assert got["CapInh"] == 0 and got["CapAmb"] == 0


def test_caps_of_a_non_root_user(oci):
    """For non-root, exec keeps only the ambient set (kernel rules)."""
    cfg = config(["cat", "/proc/self/status"])
    cfg["process"]["user"] = {"uid": 1000, "gid": 1000}
    cfg["process"]["capabilities"] = {
        "bounding": SOME, "effective": SOME, "permitted": SOME,
        "inheritable": ["CAP_KILL", "CAP_NET_BIND_SERVICE"], "ambient": ["CAP_NET_BIND_SERVICE"]}
    st = status_fields(run_ok(oci, cfg))
    got = caps_of(st)
    assert got == {"CapBnd": mask(SOME), "CapInh": mask(["CAP_KILL", "CAP_NET_BIND_SERVICE"]),
                   "CapPrm": mask(["CAP_NET_BIND_SERVICE"]), "CapEff": mask(["CAP_NET_BIND_SERVICE"]),
                   "CapAmb": mask(["CAP_NET_BIND_SERVICE"])}
    assert st["Uid"].split() == ["1000"] * 4
    # and without ambient capabilities a non-root process has none
    del cfg["process"]["capabilities"]["ambient"]
    got = caps_of(status_fields(run_ok(oci, cfg)))
    assert got["CapEff"] == got["CapPrm"] == got["CapAmb"] == 0


def test_no_capabilities_at_all(oci):
    cfg = config(["cat", "/proc/self/status"])
    del cfg["process"]["capabilities"]
    got = caps_of(status_fields(run_ok(oci, cfg)))
    assert got == {k: 0 for k in got}


def test_unknown_capability_is_an_error(oci):
    cfg = config(["true"])
    cfg["process"]["capabilities"]["bounding"].append("CAP_NOT_A_THING")
    b = oci.bundle(cfg)
    r = oci.cmd("run", "-b", b, oci.new_id())
    assert_one_line_error(r, "CAP_NOT_A_THING", "$.process.capabilities.bounding[3]")


def test_rlimits(oci):
    cfg = config(sh("ulimit -n; ulimit -Hn; ulimit -c; ulimit -Hc; grep 'Max processes' /proc/self/limits"))
    cfg["process"]["rlimits"] = [
        {"type": "RLIMIT_NOFILE", "soft": 777, "hard": 2048},
        {"type": "RLIMIT_CORE", "soft": 0, "hard": 18446744073709551615},
        {"type": "RLIMIT_NPROC", "soft": 300, "hard": 400},
    ]
    out = run_ok(oci, cfg).split("\n")
    assert out[:4] == ["777", "2048", "0", "unlimited"]
    assert out[4].split()[2:4] == ["300", "400"]


def test_rlimit_above_the_hard_limit_is_a_clean_error(oci):
    """Raising a hard limit needs CAP_SYS_RESOURCE, which this host's
    bounding set lacks; the failure names the step."""
    with open("/proc/self/limits") as f:
        line = next(l for l in f if l.startswith("Max open files"))
    hard = line.split()[4]
    if hard == "unlimited" or caps_of(proc_status("self"))["CapEff"] & mask(["CAP_SYS_RESOURCE"]):
        pytest.skip("the host can raise limits")
    cfg = config(["true"])
    cfg["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": int(hard) * 4}]
    b = oci.bundle(cfg)
    r = oci.create("-b", b, oci.new_id())
    assert_one_line_error(r, "setrlimit")
    assert not leftover_processes(oci)


def test_user_and_groups(oci):
    cfg = config(sh("id -u; id -g; grep -E '^(Uid|Gid|Groups):' /proc/self/status; echo $HOME"))
    cfg["process"]["user"] = {"uid": 1234, "gid": 1001, "additionalGids": [10, 20, 30000]}
    out = run_ok(oci, cfg).split("\n")
    assert out[0:2] == ["1234", "1001"]
    st = status_fields("\n".join(out[2:5]))
    assert st["Uid"].split() == ["1234"] * 4
    assert st["Gid"].split() == ["1001"] * 4
    assert st["Groups"].split() == ["10", "20", "30000"]
    assert out[5] == "/"   # not in the image's /etc/passwd


def test_root_has_no_supplementary_groups_and_home_from_passwd(oci):
    out = run_ok(oci, config(sh("grep Groups: /proc/self/status; echo $HOME"))).split("\n")
    assert out[0].split() == ["Groups:"]
    assert out[1] == "/root"


@pytest.mark.parametrize("umask,want", [(None, "0022"), (0o027, "0027"), (0, "0000")])
def test_umask(oci, umask, want):
    cfg = config(sh("umask; touch /tmp/f; stat -c %a /tmp/f"))
    cfg["root"]["readonly"] = False
    if umask is not None:
        cfg["process"]["user"]["umask"] = umask
    out = run_ok(oci, cfg).split()
    assert out[0] == want
    assert int(out[1], 8) == 0o666 & ~int(want, 8)


def test_env_cwd_and_args(oci):
    cfg = config(["sh", "-c", 'pwd; echo "$FOO|$EMPTY|$HOME|$PATH"; printf "[%s]" "$@"', "zero",
                  "two words", "", "*"])
    cfg["process"]["env"] = ["FOO=bar=baz", "EMPTY=", "PATH=/bin:/usr/bin", "HOME=/custom"]
    cfg["process"]["cwd"] = "/tmp"
    out = run_ok(oci, cfg).split("\n")
    assert out[0] == "/tmp"
    assert out[1] == "bar=baz||/custom|/bin:/usr/bin"
    assert out[2] == "[two words][][*]"


@pytest.mark.parametrize("readonly", [True, False])
def test_missing_cwd_is_made(oci, readonly):
    """Like runc: a cwd missing from the image is made (as root, 0755),
    even on a read-only root; an existing one keeps its mode."""
    cfg = config(sh("pwd; stat -c '%a %u' /no/such/dir /tmp"))
    cfg["process"]["cwd"] = "/no/such/dir"
    cfg["process"]["user"] = {"uid": 1000, "gid": 1000}
    cfg["root"]["readonly"] = readonly
    assert run_ok(oci, cfg).split("\n")[:3] == ["/no/such/dir", "755 0", "1777 0"]
    cfg["process"]["cwd"] = "/tmp"
    cfg["process"]["args"] = sh("pwd; stat -c %a /tmp")
    assert run_ok(oci, cfg) == "/tmp\n1777\n"


def test_cwd_that_is_a_file_is_an_error(oci):
    cfg = config(["true"])
    cfg["process"]["cwd"] = "/etc/passwd"
    b = oci.bundle(cfg)
    r = oci.create("-b", b, oci.new_id())
    assert_one_line_error(r, "/etc/passwd", "not a directory")
    assert not leftover_processes(oci)


def test_env_is_exactly_the_config(oci):
    cfg = config(["env"])
    cfg["process"]["env"] = ["A=1", "PATH=/bin"]
    assert sorted(run_ok(oci, cfg).split()) == ["A=1", "HOME=/root", "PATH=/bin"]


def test_missing_path_uses_the_default(oci):
    cfg = config(["env"])
    cfg["process"]["env"] = []
    # env is found on the default PATH; the process gets no PATH of ours
    assert run_ok(oci, cfg) == "HOME=/root\n"


@pytest.mark.parametrize("nnp,want", [(True, "1"), (False, "0")])
def test_no_new_privileges(oci, nnp, want):
    cfg = config(["grep", "NoNewPrivs", "/proc/self/status"])
    cfg["process"]["noNewPrivileges"] = nnp
    assert run_ok(oci, cfg).split() == ["NoNewPrivs:", want]


def test_oom_score_adj_raised(oci):
    cfg = config(["cat", "/proc/self/oom_score_adj"])
    cfg["process"]["oomScoreAdj"] = 500
    assert run_ok(oci, cfg) == "500\n"
    with open("/proc/self/oom_score_adj") as f:
        assert f.read().strip() != "500"   # ours is untouched


def test_oom_score_adj_lowered_without_cap_sys_resource_is_a_clean_error(oci, tmp_path):
    with open("/proc/self/oom_score_adj") as f:
        mine = int(f.read())
    cfg = config(["true"])
    cfg["process"]["oomScoreAdj"] = mine - 500 if mine > -500 else -1000
    b = oci.bundle(cfg)
    log = tmp_path / "log.json"
    cid = oci.new_id()
    r = oci.create("-b", b, cid, global_args=("--log", log, "--log-format", "json"))
    if r.returncode == 0:
        oci.ok("delete", "--force", cid)
        pytest.skip("this host lets us lower oom_score_adj (CAP_SYS_RESOURCE)")
    assert_one_line_error(r, "oomScoreAdj")
    assert not leftover_processes(oci)
    assert not os.path.exists(os.path.join(oci.root, cid))


def test_process_is_in_its_own_session(oci):
    out = run_ok(oci, config(["cat", "/proc/self/stat"]))
    fields = out[out.rindex(")") + 2:].split()
    # pid 1, its own process group and session, no controlling terminal
    assert fields[2:5] == ["1", "1", "0"]


def test_no_fd_of_the_runtime_reaches_the_process(oci):
    out = run_ok(oci, config(sh("ls /proc/self/fd | tr '\\n' ' '")))
    # 0 1 2 and the fd ls itself opens to read the directory
    assert len(out.split()) <= 4 and {"0", "1", "2"} <= set(out.split())


@pytest.mark.parametrize("detached", [False, True])
def test_signal_dispositions_are_reset(oci, detached):
    """Nothing of the runtime's (Python's) signal set-up reaches the
    process: no ignored (SIGPIPE), blocked or caught signals."""
    cfg = config(sh("grep -E '^Sig(Ign|Blk|Cgt):' /proc/self/status > /tmp/sig; cat /tmp/sig"))
    cfg["root"]["readonly"] = False
    if not detached:
        out = run_ok(oci, cfg)
    else:
        with Running(oci, cfg) as c:
            from ocihelpers import wait_status
            assert wait_status(oci, c.cid, "stopped")["status"] == "stopped"
            out = (c.bundle / "rootfs" / "tmp" / "sig").read_text()
    st = status_fields(out)
    assert {k: int(v, 16) for k, v in st.items() if k} == {"SigIgn": 0, "SigBlk": 0, "SigCgt": 0}


def test_home_is_never_read_from_the_hosts_passwd(oci):
    """An image whose /etc is a symlink to /etc would make a naive lookup
    read the host's passwd (HOME of uid 1 is /usr/sbin on Debian): the
    lookup goes one component at a time and finds nothing: HOME=/."""
    cfg = config(["sh", "-c", "echo $HOME"])
    cfg["process"]["env"] = ["PATH=/bin"]
    cfg["process"]["user"] = {"uid": 1, "gid": 1}
    b = oci.bundle(cfg)
    etc = b / "rootfs" / "etc"
    if etc.exists():
        os.rename(etc, b / "rootfs" / "etc.orig")
    os.symlink("/etc", etc)
    cid = oci.new_id()
    r = oci.cmd("run", "-b", b, cid)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "/\n"
