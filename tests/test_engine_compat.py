"""What podman and containerd rely on beyond the spec, as runc does it
(recorded from runc under both engines; see tests/test_podman.py and
tests/test_containerd.py for the engines themselves)."""
import json
import os
import subprocess

from conftest import RUNTIME, busybox_config

SLEEP = ["sleep", "300"]


def create(oci, *args, global_args=()):
    r = oci.create(*args, global_args=global_args)
    assert r.returncode == 0, r.stderr
    return r


def test_containerd_global_flags_and_json_log(oci, tmp_path):
    """containerd: `--root R --log B/log.json --log-format json` before the
    command; the last error's msg is what the user sees."""
    log = tmp_path / "log.json"
    g = ("--log", log, "--log-format", "json")
    b = oci.bundle(args=SLEEP)
    cid = oci.new_id()
    create(oci, "--bundle", b, "--pid-file", b / "init.pid", cid, global_args=g)
    assert not log.exists() or log.read_text() == ""   # only warnings and errors by default
    r = oci.cmd("kill", "no-such-container", "9", global_args=g)
    assert r.returncode == 1
    lines = log.read_text().splitlines()
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert set(entry) == {"level", "msg", "time"}
    assert entry["level"] == "error" and "does not exist" in entry["msg"]
    oci.ok("delete", "--force", cid)


def test_pid_file_is_digits_only(oci):
    b = oci.bundle(args=SLEEP)
    cid = oci.new_id()
    create(oci, "--bundle", b, "--pid-file", b / "init.pid", cid)
    text = (b / "init.pid").read_text()
    assert text.isdigit() and int(text) == oci.state(cid)["pid"]
    assert [n for n in os.listdir(b) if n.startswith("init.pid")] == ["init.pid"]   # no temp left
    oci.ok("delete", "--force", cid)


def test_delete_of_a_created_container_needs_no_force(oci):
    """containerd deletes a task that never started with plain `delete ID`."""
    b = oci.bundle(args=SLEEP)
    cid = oci.new_id()
    create(oci, "--bundle", b, cid)
    pid = oci.state(cid)["pid"]
    oci.ok("delete", cid)
    assert not os.path.exists(f"/proc/{pid}/status") or "Z" in open(f"/proc/{pid}/stat").read().split(")")[1][:3]
    r = oci.cmd("state", cid)
    assert r.returncode == 1 and "does not exist" in r.stderr


def test_delete_force_of_a_missing_container_succeeds(oci):
    """podman runs `delete --force ID` after a create that failed."""
    assert oci.cmd("delete", "--force", "ociruntime-test-missing").returncode == 0
    r = oci.cmd("delete", "ociruntime-test-missing")
    assert r.returncode == 1 and "does not exist" in r.stderr


def test_kill_by_number_and_all(oci):
    b = oci.bundle(args=SLEEP)
    cid = oci.new_id()
    r = oci.cmd("run", "-d", "--bundle", b, cid, capture_output=False, stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert r.returncode == 0
    oci.ok("kill", cid, "9")
    import time
    for _ in range(200):
        if oci.state(cid)["status"] == "stopped":
            break
        time.sleep(0.02)
    assert oci.state(cid)["status"] == "stopped"
    r = oci.cmd("kill", cid, "9")
    assert r.returncode == 1 and "container not running" in r.stderr
    # --all on a stopped container signals what is left (nothing): fine, as in runc
    oci.ok("kill", "--all", cid, "9")
    oci.ok("delete", cid)


def test_single_dash_long_flags(oci):
    """Go's flag syntax: go-runc sends `-no-subreaper`, people write -bundle."""
    b = oci.bundle(args=["true"])
    cid = oci.new_id()
    r = oci.cmd("run", "-no-subreaper", "-bundle", b, cid)
    assert r.returncode == 0, r.stderr


def test_state_without_path(oci):
    """podman calls `state` with an environment of only XDG_RUNTIME_DIR."""
    b = oci.bundle(args=SLEEP)
    cid = oci.new_id()
    create(oci, "--bundle", b, cid)
    env = {"XDG_RUNTIME_DIR": "/run/user/0"}
    r = subprocess.run([RUNTIME, "--root", oci.root, "state", cid], env=env,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["status"] == "created"
    r = subprocess.run([RUNTIME, "--root", oci.root, "state", "ociruntime-test-missing"], env=env,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "does not exist" in r.stderr
    oci.ok("delete", "--force", cid)


def test_launcher_through_a_symlink(tmp_path):
    """containerd's daemon PATH holds `runc -> ociruntime`."""
    link = tmp_path / "runc"
    link.symlink_to(RUNTIME)
    r = subprocess.run([str(link), "--version"], env={}, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("ociruntime version ")


def test_checkpoint_help_succeeds_now_that_checkpoint_works():
    """podman takes exit 0 of `checkpoint --help` as checkpoint support
    (ociruntime/checkpoint.py; criu's own check decides the rest)."""
    r = subprocess.run([RUNTIME, "checkpoint", "--help"], capture_output=True, timeout=30)
    assert r.returncode == 0


def test_exec_errors_use_runc_wording(oci):
    """podman maps these texts to exit codes 127 and 126."""
    for args, text in ((["no-such-cmd"], "executable file not found in $PATH"),
                       (["/no/such/file"], "no such file or directory"),
                       (["/etc/passwd"], "permission denied")):
        b = oci.bundle(args=args)
        r = oci.create("--bundle", b, oci.new_id())
        assert r.returncode == 1 and text in r.stderr, (args, r.stderr)


def test_features_command(oci):
    r = oci.ok("features")
    doc = json.loads(r.stdout)
    assert doc["ociVersionMin"] and doc["ociVersionMax"]
    assert "mount" in doc["linux"]["namespaces"]
