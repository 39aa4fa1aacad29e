"""The Python API (issue 15, item 3): ociruntime.Container over the same
lifecycle as the CLI, real containers made from this process, checked
from outside (the CLI, /proc, the cgroup files) and inside (exit codes)."""
import os
import re
import select
import subprocess
import sys

import pytest

from conftest import REPO, busybox_config

PYTHON = str(REPO / ".venv" / "bin" / "python")


def _readme_example():
    text = (REPO / "README.md").read_text()
    part = text[text.index("## Python API"):]
    return re.search(r"```python\n(.*?)```", part, re.S).group(1)


def test_readme_example_runs_as_written(oci):
    """The README's example, with only the bundle, root and id swapped in."""
    code = _readme_example()
    assert 'Container.create("web", bundle="/srv/web", root="/run/ociruntime")' in code
    cid = oci.new_id()
    b = oci.bundle(args=["sh", "-c", "exit 7"])
    code = (code.replace('"/srv/web"', repr(str(b))).replace('"/run/ociruntime"', repr(oci.root))
            .replace('"web"', repr(cid)))
    # the expression of line 3 printed, and the exit code wait() returned
    code = code.replace('c.state()["status"]   # "created"', 'print(c.state()["status"])')
    code += "\nprint(code)\n"
    r = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["created", "7"], r.stdout
    assert oci.cmd("state", cid).returncode == 1   # deleted


def test_lifecycle_in_process(oci):
    from ociruntime import Container, ContainerNotFound
    cid = oci.new_id()
    b = oci.bundle(args=["sleep", "100"])
    c = Container.create(cid, bundle=str(b), root=oci.root)
    try:
        st = c.state()
        assert st["status"] == "created" and st["id"] == cid and st["pid"] > 0
        assert oci.state(cid) == st   # the CLI sees the same container
        assert [x.id for x in Container.list(root=oci.root)] == [cid]
        assert Container.load(cid, root=oci.root).pid == st["pid"]
        # the init is our child: its parent is this process
        with open(f"/proc/{st['pid']}/stat") as f:
            assert int(f.read().rsplit(")", 1)[1].split()[1]) == os.getpid()
        c.start()
        assert c.status == "running"
        c.kill("KILL")   # (pid 1 of its namespace: only SIGKILL is sure to kill it)
        assert c.wait() == 128 + 9
        assert c.status == "stopped"
        c.delete()
        with pytest.raises(ContainerNotFound):
            Container.load(cid, root=oci.root)
        assert not os.path.exists(f"/proc/{st['pid']}")   # reaped, no zombie
    finally:
        if os.path.isdir(os.path.join(oci.root, cid)):
            c.delete(force=True)


def test_wait_returns_exit_code_and_delete_reaps(oci):
    from ociruntime import Container
    with Container.run(oci.new_id(), bundle=str(oci.bundle(args=["sh", "-c", "exit 42"])),
                       root=oci.root) as c:
        assert c.wait() == 42
        assert c.wait() == 42   # remembered
    # delete without wait reaps too: no zombie of ours is left
    c = Container.create(oci.new_id(), bundle=str(oci.bundle(args=["true"])), root=oci.root)
    pid = c.pid
    c.start()
    fd = os.pidfd_open(pid)
    try:
        select.select([fd], [], [])   # readable once it has exited (a zombie of ours)
    finally:
        os.close(fd)
    assert _ppid(pid) == os.getpid() and c.status == "stopped"
    c.delete()
    assert not os.path.exists(f"/proc/{pid}")
    c = Container.run(oci.new_id(), bundle=str(oci.bundle(args=["sleep", "100"])), root=oci.root)
    pid = c.pid
    c.delete(force=True)   # killed, and reaped
    assert not os.path.exists(f"/proc/{pid}")


def _ppid(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except OSError:
        return None


def test_run_context_manager_deletes_on_error(oci):
    from ociruntime import Container
    cid = oci.new_id()
    with pytest.raises(RuntimeError):
        with Container.run(cid, bundle=str(oci.bundle(args=["sleep", "100"])), root=oci.root) as c:
            assert c.status == "running"
            pid = c.pid
            raise RuntimeError("the caller's own failure")
    assert oci.cmd("state", cid).returncode == 1
    assert not os.path.exists(f"/proc/{pid}")   # killed and reaped


def test_wait_for_a_container_of_another_process(oci):
    """Created by the CLI: not our child, so wait() waits and says None;
    a timeout is WaitTimeout, an OciError."""
    from ociruntime import Container, OciError, WaitTimeout
    cid = oci.new_id()
    assert oci.create("-b", oci.bundle(args=["sleep", "100"]), cid).returncode == 0
    oci.ok("start", cid)
    c = Container.load(cid, root=oci.root)
    with pytest.raises(WaitTimeout) as e:
        c.wait(timeout=0.1)
    assert isinstance(e.value, OciError)
    c.kill(9)
    assert c.wait() is None
    c.delete()
    assert oci.cmd("state", cid).returncode == 1


def test_exec(oci):
    from ociruntime import Container, ConfigError
    with Container.run(oci.new_id(), bundle=str(oci.bundle(args=["sleep", "100"])), root=oci.root) as c:
        assert c.exec(["sh", "-c", "exit 5"]) == 5
        # env, cwd and user as the CLI's flags (the rootfs is read-only: /dev/shm)
        assert c.exec(["sh", "-c", "echo $FOO $(pwd) $(id -u) > /dev/shm/o"],
                      env=["FOO=bar"], cwd="/dev", user="1000:1000") == 0
        assert open(f"/proc/{c.pid}/root/dev/shm/o").read().split() == ["bar", "/dev", "1000"]
        proc = dict(busybox_config()["process"], args=["sh", "-c", "exit 9"])
        assert c.exec(process=proc) == 9
        pid = c.exec(["sleep", "100"], detach=True)
        assert _ppid(pid) == os.getpid() and pid in c.processes()
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        with pytest.raises(ConfigError, match=r"\$\.cwd"):
            c.exec(process=dict(proc, cwd="rel"))


def test_pause_resume_update_stats(oci):
    from ociruntime import Container, ContainerNotRunning, OciError
    with Container.run(oci.new_id(), bundle=str(oci.bundle(args=["sleep", "100"])), root=oci.root) as c:
        c.pause()
        assert c.status == "paused" and oci.state(c.id)["status"] == "paused"
        with pytest.raises(ContainerNotRunning):
            c.pause()
        c.resume()
        assert c.status == "running"
        c.update(pids={"limit": 77})
        st = c.stats()
        assert st["pids"]["limit"] == 77 and st["pids"]["current"] >= 1, st["pids"]
        with pytest.raises(OciError, match="linux.resources.pids"):
            c.update({"pids": {"limit": "many"}})
        c.kill("KILL")
        c.wait()
        with pytest.raises(ContainerNotRunning):
            c.stats()


def test_errors_are_ocierrors(oci):
    from ociruntime import ConfigError, Container, ContainerNotFound, OciError
    cfg = busybox_config()
    cfg["process"]["cwd"] = "tmp"
    cid = oci.new_id()
    with pytest.raises(ConfigError) as e:
        Container.create(cid, bundle=str(oci.bundle(cfg)), root=oci.root)
    assert "$.process.cwd" in str(e.value) and str(e.value).endswith("(config.md#process)")
    assert not os.path.exists(os.path.join(oci.root, cid))
    with pytest.raises(ContainerNotFound):
        Container.load("no-such-" + cid, root=oci.root)
    with pytest.raises(OciError, match="invalid container id"):
        Container.create("../x", bundle=str(oci.bundle()), root=oci.root)
    with pytest.raises(OciError, match="unknown signal"):
        Container(cid, oci.root).kill("SIGBOGUS")
    with Container.run(cid, bundle=str(oci.bundle(args=["sleep", "100"])), root=oci.root):
        with pytest.raises(OciError, match="already exists"):
            Container.create(cid, bundle=str(oci.bundle()), root=oci.root)


def test_import_is_lazy():
    """`import ociruntime` (the CLI's first import) loads none of the API."""
    code = ("import sys, ociruntime; print('ociruntime.api' in sys.modules);"
            "ociruntime.Container; print('ociruntime.api' in sys.modules)")
    r = subprocess.run([PYTHON, "-S", "-c", code], capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert r.stdout.split() == ["False", "True"], r.stderr
    with pytest.raises(AttributeError):
        import ociruntime
        ociruntime.NoSuchThing
    assert sys.modules.get("ociruntime") is not None
