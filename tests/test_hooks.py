"""Hooks, config.md "POSIX-platform Hooks": order, stdin, namespace,
args/env, timeout and failure of each of the six kinds, in real containers.

Every hook is a small shell script that appends one line to a log:
    kind <TAB> state JSON (its stdin) <TAB> mnt ns <TAB> pid ns <TAB> $FOO <TAB> cwd
The runtime-namespace hooks and createContainer (which runs before
pivot_root, when the host's tree is still visible) are host scripts that
write to a host path; startContainer resolves and runs in the container,
so its script lives in the rootfs and writes to /out, a bind of the host
directory that holds the log.
"""
import json
import os
import time

import pytest

from conftest import busybox_config

KINDS = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")
RUNTIME_NS = ("prestart", "createRuntime", "poststart", "poststop")

SCRIPT = """#!/bin/sh
st=$(cat)
printf '%s\\t%s\\t%s\\t%s\\t%s\\t%s\\n' "$1" "$st" "$(readlink /proc/self/ns/mnt)" \
    "$(readlink /proc/self/ns/pid)" "$FOO" "$(pwd)" >> LOG
"""


class Hooks:
    """A bundle whose config has hooks writing to one log."""

    def __init__(self, oci, args=("sleep", "30")):
        self.oci = oci
        self.out = oci.tmp / "out"
        self.out.mkdir(exist_ok=True)
        self.log = self.out / "log"
        self.host_script = oci.tmp / "hook.sh"
        self.host_script.write_text(SCRIPT.replace("LOG", str(self.log)))
        self.host_script.chmod(0o755)
        self.cfg = busybox_config(list(args))
        self.cfg["mounts"].append({"destination": "/out", "type": "bind", "source": str(self.out),
                                   "options": ["rbind"]})
        self.cfg["hooks"] = {}

    def add(self, kind, label=None, path=None, **extra):
        if path is None:
            path = "/hook.sh" if kind == "startContainer" else str(self.host_script)
        h = {"path": path, "args": ["hook", label or kind], "env": ["FOO=bar"]}
        h.update(extra)
        self.cfg["hooks"].setdefault(kind, []).append(h)
        return self

    def add_all(self):
        for k in KINDS:
            self.add(k)
        return self

    def bundle(self):
        b = self.oci.bundle(self.cfg)
        (b / "rootfs" / "hook.sh").write_text(SCRIPT.replace("LOG", "/out/log"))
        (b / "rootfs" / "hook.sh").chmod(0o755)
        return b

    def lines(self):
        if not self.log.exists():
            return []
        out = []
        for line in self.log.read_text().splitlines():
            kind, st, mnt, pidns, foo, cwd = line.split("\t")
            out.append({"kind": kind, "state": json.loads(st), "mnt": mnt, "pidns": pidns,
                        "foo": foo, "cwd": cwd})
        return out

    def kinds(self):
        return [line["kind"] for line in self.lines()]


def _ns(pid, name):
    return os.readlink(f"/proc/{pid}/ns/{name}")


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] not in "ZX"
    except FileNotFoundError:
        return False


def test_all_six_in_order_with_the_state_of_the_moment(oci):
    """config.md: "Hooks MUST be called in the listed order" and "The state
    of the container MUST be passed to hooks over stdin"; runtime.md
    lifecycle steps 3-5 (create), 7 (start, before the program), 9 (after
    it), 13 (after delete)."""
    h = Hooks(oci).add_all()
    b = h.bundle()
    cid = oci.new_id()
    r = oci.create("-b", b, cid)
    assert r.returncode == 0, r.stderr
    pid = oci.state(cid)["pid"]
    assert h.kinds() == ["prestart", "createRuntime", "createContainer"]
    oci.ok("start", cid)
    # poststart: the process has executed by then (it is sleep, not the init).
    assert h.kinds() == ["prestart", "createRuntime", "createContainer", "startContainer", "poststart"]
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        assert f.read().split(b"\0")[0] == b"sleep"
    assert oci.state(cid)["status"] == "running"
    oci.ok("kill", cid, "KILL")
    for _ in range(500):
        if oci.state(cid)["status"] == "stopped":
            break
        time.sleep(0.01)
    oci.ok("delete", cid)
    lines = h.lines()
    assert [l["kind"] for l in lines] == list(KINDS)
    want_status = {"prestart": "creating", "createRuntime": "creating", "createContainer": "creating",
                   "startContainer": "created", "poststart": "running", "poststop": "stopped"}
    for l in lines:
        st = l["state"]
        assert st["status"] == want_status[l["kind"]], l
        assert st["id"] == cid and st["bundle"] == str(b) and st["ociVersion"]
        # runtime.md: the pid as seen in the hook's namespace.
        assert st["pid"] == (pid if l["kind"] in RUNTIME_NS else 1), l
        assert l["foo"] == "bar"   # env
    assert not (oci.tmp / "out" / "never").exists()


def test_namespaces_of_each_hook(oci):
    """config.md: prestart, createRuntime, poststart, poststop "MUST be
    executed in the runtime namespace"; createContainer and startContainer
    "MUST be executed in the container namespace"; the createContainer
    path resolves in the runtime namespace, the startContainer one in the
    container's."""
    h = Hooks(oci).add_all()
    # Only the container has /hook.sh: startContainer must resolve there.
    assert not os.path.exists("/hook.sh")
    b = h.bundle()
    cid = oci.new_id()
    assert oci.create("-b", b, cid).returncode == 0
    pid = oci.state(cid)["pid"]
    cmnt, cpid = _ns(pid, "mnt"), _ns(pid, "pid")
    oci.ok("start", cid)
    oci.ok("delete", "--force", cid)
    mine = _ns("self", "mnt"), _ns("self", "pid")
    assert cmnt != mine[0] and cpid != mine[1]
    for l in h.lines():
        if l["kind"] in RUNTIME_NS:
            assert (l["mnt"], l["pidns"]) == mine, l
        else:
            assert (l["mnt"], l["pidns"]) == (cmnt, cpid), l
    by = {l["kind"]: l for l in h.lines()}
    # createContainer runs before pivot_root, from the rootfs (as runc).
    assert by["createContainer"]["cwd"] == str(b / "rootfs")
    assert by["startContainer"]["cwd"] == "/"


def test_create_time_hooks_see_the_mounts_done(oci):
    """config.md: createRuntime/createContainer may expect "that the mount
    namespace have been created and the mount operations performed";
    prestart "before the pivot_root"."""
    h = Hooks(oci)
    probe = oci.tmp / "probe.sh"
    probe.write_text(f"#!/bin/sh\ngrep -c 'rootfs/out ' /proc/$1/mountinfo > {oci.tmp}/seen.$2 || true\n"
                     f"test -d {oci.tmp}/out && echo host > {oci.tmp}/host.$2\n")
    probe.chmod(0o755)
    b = h.bundle()
    cfg = json.loads((b / "config.json").read_text())
    cfg["hooks"] = {"createRuntime": [{"path": "/bin/sh", "args": [
        "sh", "-c", f"pid=$(sed 's/.*\"pid\":\\([0-9]*\\).*/\\1/'); {probe} $pid cr"]}],
        "createContainer": [{"path": str(probe), "args": ["probe", "self", "cc"]}]}
    (b / "config.json").write_text(json.dumps(cfg))
    cid = oci.new_id()
    assert oci.create("-b", b, cid).returncode == 0
    oci.ok("delete", "--force", cid)
    assert int((oci.tmp / "seen.cr").read_text()) >= 1
    assert int((oci.tmp / "seen.cc").read_text()) >= 1
    # createContainer still sees the host's tree: pivot_root is yet to come.
    assert (oci.tmp / "host.cc").read_text() == "host\n"


def test_args_are_argv_and_env_replaces_the_environment(oci):
    """config.md: args "with the same semantics as execv's argv", env "the
    same semantics as environ"."""
    out = oci.tmp / "args"
    cfg = busybox_config(["true"])
    cfg["hooks"] = {"prestart": [{"path": "/bin/sh", "args": [
        "zero", "-c", f'echo "$0 $1 ${{A}} ${{HOME-unset}}" > {out}; cat /proc/$$/cmdline > {out}.argv',
        "one", "two"],
        "env": ["A=b"]}]}
    b = oci.bundle(cfg)
    cid = oci.new_id()
    assert oci.create("-b", b, cid).returncode == 0
    oci.ok("delete", "--force", cid)
    assert out.read_text() == "one two b unset\n"
    assert (oci.tmp / "args.argv").read_bytes().split(b"\0")[:2] == [b"zero", b"-c"]


def test_path_must_be_absolute(oci):
    """config.md: "path MUST be absolute"."""
    cfg = busybox_config(["true"])
    cfg["hooks"] = {"poststart": [{"path": "bin/true"}]}
    b = oci.bundle(cfg)
    r = oci.create("-b", b, oci.new_id())
    assert r.returncode == 1
    assert "hooks.poststart[0].path" in r.stderr and "absolute" in r.stderr
    assert oci.ok("list", "-q").stdout == ""


@pytest.mark.parametrize("kind", ["prestart", "createRuntime", "createContainer"])
@pytest.mark.parametrize("how", ["fails", "times out"])
def test_failing_create_hook_fails_create_and_leaves_nothing(oci, kind, how):
    """runtime.md 3-5: if a prestart/createRuntime/createContainer hook
    fails, "generate an error, stop the container, and continue the
    lifecycle at step 12" (so poststop hooks run); config.md: timeout is
    "the number of seconds before aborting the hook"."""
    h = Hooks(oci)
    if how == "fails":
        bad = {"path": "/bin/sh", "args": ["sh", "-c", "echo oops >&2; exit 7"]}
    else:
        bad = {"path": "/bin/sh", "args": ["sh", "-c", f"echo $$ > {oci.tmp}/sleeper; exec sleep 60"],
               "timeout": 1}
    h.cfg["hooks"][kind] = [bad]
    h.add(kind, "after-the-failure").add("poststop")
    b = h.bundle()
    cid = oci.new_id()
    r = oci.create("-b", b, cid)
    assert r.returncode == 1
    assert f"{kind} hook #0" in r.stderr
    if how == "fails":
        assert "exit status 7" in r.stderr and "oops" in r.stderr
    else:
        assert "timeout of 1s" in r.stderr
        if kind in RUNTIME_NS:   # (createContainer's pid is one of the container's)
            assert not _alive(int((oci.tmp / "sleeper").read_text()))   # killed
    assert h.kinds() == ["poststop"]    # the next hook did not run
    assert oci.cmd("state", cid).returncode == 1
    assert oci.ok("list", "-q").stdout == ""


@pytest.mark.parametrize("how", ["fails", "times out"])
def test_failing_start_container_hook_fails_start(oci, how):
    """runtime.md 7: a failing startContainer hook: "generate an error,
    stop the container"; the program is never run."""
    h = Hooks(oci, args=["sh", "-c", "touch /out/ran; sleep 30"])
    script = "exit 4" if how == "fails" else "sleep 60"
    h.cfg["hooks"]["startContainer"] = [{"path": "/bin/sh", "args": ["sh", "-c", script],
                                         **({"timeout": 1} if how != "fails" else {})}]
    h.add("poststart").add("poststop")
    b = h.bundle()
    cid = oci.new_id()
    assert oci.create("-b", b, cid).returncode == 0
    r = oci.cmd("start", cid)
    assert r.returncode == 1
    assert "startContainer hook #0" in r.stderr
    assert ("exit status 4" if how == "fails" else "timeout of 1s") in r.stderr
    assert oci.state(cid)["status"] == "stopped"
    assert not (h.out / "ran").exists()
    assert h.kinds() == []          # no poststart
    oci.ok("delete", cid)
    assert h.kinds() == ["poststop"]


@pytest.mark.parametrize("how", ["fails", "times out"])
def test_failing_poststart_hook_warns_and_goes_on(oci, how):
    """config.md/issue: a failing poststart hook logs a warning; the rest of
    the hooks and the lifecycle go on."""
    h = Hooks(oci)
    bad = ({"path": "/bin/false"} if how == "fails"
           else {"path": "/bin/sleep", "args": ["sleep", "60"], "timeout": 1})
    h.cfg["hooks"]["poststart"] = [bad]
    h.add("poststart", "second")
    b = h.bundle()
    cid = oci.new_id()
    assert oci.create("-b", b, cid).returncode == 0
    r = oci.cmd("start", cid)
    assert r.returncode == 0, r.stderr
    assert "warning" in r.stderr and "poststart hook #0" in r.stderr
    assert h.kinds() == ["second"]
    assert oci.state(cid)["status"] == "running"
    oci.ok("delete", "--force", cid)


@pytest.mark.parametrize("how", ["fails", "times out"])
def test_failing_poststop_hook_warns_and_delete_goes_on(oci, how):
    """runtime.md 13: "If any poststop hook fails, the runtime MUST log a
    warning, but the remaining hooks and lifecycle continue"."""
    h = Hooks(oci, args=["true"])
    bad = ({"path": "/bin/false"} if how == "fails"
           else {"path": "/bin/sleep", "args": ["sleep", "60"], "timeout": 1})
    h.cfg["hooks"]["poststop"] = [bad]
    h.add("poststop", "second")
    b = h.bundle()
    cid = oci.new_id()
    assert oci.create("-b", b, cid).returncode == 0
    oci.ok("start", cid)
    for _ in range(500):
        if oci.state(cid)["status"] == "stopped":
            break
        time.sleep(0.01)
    r = oci.cmd("delete", cid)
    assert r.returncode == 0, r.stderr
    assert "warning" in r.stderr and "poststop hook #0" in r.stderr
    assert h.kinds() == ["second"]
    assert oci.cmd("state", cid).returncode == 1


def test_hooks_in_run_and_the_log_file(oci):
    """`run` goes through the whole lifecycle: all six hooks; a warning also
    lands in --log as JSON."""
    h = Hooks(oci, args=["true"]).add_all()
    h.cfg["hooks"]["poststop"].insert(0, {"path": "/bin/false"})
    b = h.bundle()
    logf = oci.tmp / "log.json"
    r = oci.cmd("run", "-b", b, oci.new_id(), global_args=("--log", logf, "--log-format", "json"))
    assert r.returncode == 0, r.stderr
    assert h.kinds() == list(KINDS)
    entries = [json.loads(l) for l in logf.read_text().splitlines()]
    assert any(e["level"] == "warning" and "poststop hook #0" in e["msg"] for e in entries)


def test_hooks_module_is_not_imported_without_hooks(oci):
    """The hot path stays lean: ociruntime.hooks only loads for configs with hooks."""
    import subprocess
    import sys
    from conftest import REPO
    b = oci.bundle(busybox_config(["true"]))
    cid = oci.new_id()
    code = ("import sys; from ociruntime import cli; rc = cli.main(['--root', sys.argv[1], 'create', "
            "'-b', sys.argv[2], sys.argv[3]]); print('ociruntime.hooks' in sys.modules, rc, file=sys.stderr)")
    with open(oci.tmp / "o", "w") as o, open(oci.tmp / "e", "w") as e:
        subprocess.run([str(REPO / ".venv/bin/python"), "-c", code, oci.root, str(b), cid],
                       stdout=o, stderr=e, stdin=subprocess.DEVNULL, timeout=60)
    assert (oci.tmp / "e").read_text().strip().splitlines()[-1] == "False 0"
    oci.ok("delete", "--force", cid)
