"""The command line, as runc's callers use it: global flags before the
command, `--flag value`, `--flag=value` and Go's `-flag`, errors."""
import json
import os
import subprocess
import sys

import pytest

from conftest import REPO, RUNTIME
from ocihelpers import Running, assert_one_line_error, config
from ociruntime import SPEC_VERSION


def rt(*args, **kw):
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    kw.setdefault("timeout", 60)
    return subprocess.run([RUNTIME, *map(str, args)], **kw)


@pytest.mark.parametrize("flag", ["--version", "-v", "-version"])
def test_version(flag):
    r = rt(flag)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("ociruntime version ") and len(lines[0].split()) == 3
    assert f"spec: {SPEC_VERSION}" in lines


def test_python_dash_m():
    r = subprocess.run([sys.executable, "-m", "ociruntime", "--version"], capture_output=True,
                       text=True, cwd="/", env={"PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("ociruntime version ")


def test_installed_script_with_an_empty_environment(tmp_path):
    r = subprocess.run(["env", "-i", RUNTIME, "--root", str(tmp_path), "state", "nope"],
                       capture_output=True, text=True, cwd="/")
    assert_one_line_error(r, 'container "nope" does not exist')


def test_help():
    r = rt("--help")
    assert r.returncode == 0 and "usage" in r.stdout.lower()
    r = rt()
    assert r.returncode != 0


@pytest.mark.parametrize("args,needle", [
    (("--bogus",), "flag provided but not defined: -bogus"),
    (("--root",), "flag needs an argument"),
    (("state", "--bogus", "x"), "flag provided but not defined: -bogus"),
    (("create", "--bundle"), "flag needs an argument"),
    (("no-such-command",), "no-such-command"),
    (("--log-format", "yaml", "list"), "yaml"),
    (("state",), "state"),
    (("state", "a", "b"), "state"),
    (("kill", "a", "KILL", "extra"), "kill"),
    (("kill", "a", "NOTASIGNAL"), "NOTASIGNAL"),
    (("create", "--preserve-fds", "many", "x"), "preserve-fds"),
])
def test_usage_errors(tmp_path, args, needle):
    r = rt("--root", tmp_path / "root", *args)
    assert_one_line_error(r, needle)


def test_checkpoint_help_is_success():
    """checkpoint and restore exist now (criu): their help succeeds."""
    for command in ("checkpoint", "restore"):
        r = rt(command, "--help")
        assert r.returncode == 0 and "--image-path" in r.stdout, r.stderr


@pytest.mark.parametrize("spelling", [("--root", "{}"), ("--root={}",), ("-root", "{}"), ("-root={}",)])
def test_global_flag_spellings(oci, spelling):
    with Running(oci, config(["sleep", "1000"]), start=False) as c:
        flags = [s.format(oci.root) for s in spelling]
        r = subprocess.run([RUNTIME, *flags, "state", c.cid], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["id"] == c.cid


@pytest.mark.parametrize("form", ["--bundle={b}", "--bundle {b}", "-b {b}", "-bundle {b}", "-bundle={b}"])
def test_command_flag_spellings(oci, form):
    b = oci.bundle(args=["echo", "hi"])
    cid = oci.new_id()
    r = oci.cmd("run", *form.format(b=b).split(" "), cid)
    assert (r.returncode, r.stdout) == (0, "hi\n"), r.stderr


def test_default_bundle_is_the_current_directory(oci):
    b = oci.bundle(args=["echo", "from cwd"])
    r = oci.cmd("run", oci.new_id(), cwd=b)
    assert (r.returncode, r.stdout) == (0, "from cwd\n"), r.stderr


def test_flags_after_the_id(oci):
    with Running(oci, config(["sleep", "1000"])) as c:
        oci.ok("delete", c.cid, "--force")
        assert oci.cmd("state", c.cid).returncode == 1


def test_pid_file_equals_form(oci):
    b = oci.bundle(args=["true"])
    cid = oci.new_id()
    r = oci.create(f"--pid-file={oci.tmp / 'p'}", f"--bundle={b}", cid)
    assert r.returncode == 0, r.stderr
    assert (oci.tmp / "p").read_text() == str(oci.state(cid)["pid"])
    oci.ok("delete", cid)


def test_spec(tmp_path):
    r = rt("spec", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["ociVersion"] == SPEC_VERSION
    assert cfg["root"]["path"] == "rootfs" and cfg["process"]["args"] == ["sh"]
    kinds = {n["type"] for n in cfg["linux"]["namespaces"]}
    assert {"pid", "network", "ipc", "uts", "mount"} <= kinds and "user" not in kinds
    r = rt("validate", cwd=tmp_path)   # as strict as create: the rootfs must be there
    assert_one_line_error(r, "$.root.path: ", "(config.md#root)")
    (tmp_path / "rootfs").mkdir()
    r = rt("validate", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    # never over an existing config
    r = rt("spec", cwd=tmp_path)
    assert_one_line_error(r, "exists")


def test_spec_rootless_and_bundle_flag(tmp_path):
    r = rt("spec", "--rootless", "--bundle", tmp_path)
    assert r.returncode == 0, r.stderr
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert "user" in {n["type"] for n in cfg["linux"]["namespaces"]}
    assert cfg["linux"]["uidMappings"] and cfg["linux"]["gidMappings"]


def test_spec_config_runs(oci, tmp_path):
    """`spec` + a rootfs is a bundle that runs (with args changed)."""
    r = rt("spec", "-b", tmp_path)
    assert r.returncode == 0
    cfg = json.loads((tmp_path / "config.json").read_text())
    cfg["process"]["terminal"] = False
    cfg["process"]["args"] = ["sh", "-c", "echo $(hostname) $$"]
    rc, out, err = oci.run_output(cfg=cfg)
    assert (rc, out) == (0, "runc 1\n"), err


def test_list_of_an_empty_root(tmp_path):
    r = rt("--root", tmp_path / "never-made", "list")
    assert r.returncode == 0 and r.stdout.split() == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    assert not os.path.exists(tmp_path / "never-made") or os.listdir(tmp_path / "never-made") == []


def test_repo_layout():
    for p in ("setup.py", "README.md", ".ci/run", "csrc", "schemas", "bundles", "tests"):
        assert (REPO / p).exists(), p
