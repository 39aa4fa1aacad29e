"""The user's surface: a help page per command listing every flag the
parser accepts, man pages and bash completion rendered from the same table
and installed by pip, and no Python internals reaching the user (a closed
pipe, a foreign or unwritable bytecode cache, a caller who is not root,
exec's flags)."""
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import RUNTIME
from ocihelpers import assert_one_line_error, config, json_log_errors, Running
from ociruntime import cli, help as helptable
from ociruntime.cgroups.commands import CLI_FLAGS

PREFIX = Path(os.path.realpath(RUNTIME)).parent.parent   # the environment pip installed into
MAN8 = PREFIX / "share" / "man" / "man8"
BASH_COMPLETION = PREFIX / "share" / "bash-completion" / "completions" / "ociruntime"


def rt(*args, **kw):
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    kw.setdefault("timeout", 60)
    return subprocess.run([RUNTIME, *map(str, args)], **kw)


def parser_flags(command):
    """Every spelling the parser accepts for command's flags: {'--bundle', '-b', ...}."""
    spec = cli.GLOBAL if command is None else (
        dict(CLI_FLAGS, help=False, h="help") if command == "update" else cli.COMMANDS[command])
    return {("-" if len(n) == 1 else "--") + n for n in spec}


def documented_flags(page):
    """The flags listed in a help page's FLAGS section (each line: the
    flag's spellings, its metavar, then what it does)."""
    section = page.split("FLAGS", 1)[1].split("\n\n", 1)[0]
    heads = [l.split("  ", 2)[1] if l.startswith("   -") else "" for l in section.splitlines()]
    return {f for h in heads for f in re.findall(r"(?<![\w-])(--?[a-z][a-z0-9-]*)", h)}


@pytest.mark.parametrize("command", [None, *cli.COMMANDS])
def test_every_flag_the_parser_accepts_is_in_its_help(command):
    """Failed before: every command printed the same global page, without
    --rootless, --criu, run's --no-pivot/--no-new-keyring, update's flags."""
    r = rt(*([command, "--help"] if command else ["--help"]))
    assert r.returncode == 0 and r.stderr == "", r.stderr
    page = r.stdout
    assert documented_flags(page) == parser_flags(command)
    if command:
        assert page.startswith(f"NAME:\n   ociruntime {command} - ")
        for section in ("USAGE:", "DESCRIPTION:", "FLAGS:", "EXAMPLES:"):
            assert section in page
        assert f"ociruntime {command}" in page.split("EXAMPLES:")[1]
        # `help CMD` and `h CMD` print the same page (failed before: "unknown command")
        assert rt("help", command).stdout == page
        assert rt("h", command).stdout == page
    else:
        for c in cli.COMMANDS:
            assert re.search(rf"^   {c} +\S", page, re.M), f"{c} not in the command list"


def test_help_lists_defaults_and_global_flags():
    page = rt("--help").stdout
    assert "(default: /run/ociruntime)" in page and "(default: text)" in page
    page = rt("run", "--help").stdout
    assert "(default: the current directory)" in page and "(default: 0)" in page
    assert "--no-pivot" in page and "--no-new-keyring" in page
    page = rt("update", "--help").stdout
    for f in ("--cpu-rt-period", "--cpu-rt-runtime", "--cpu-burst", "--cpu-idle", "--kernel-memory",
              "--kernel-memory-tcp"):
        assert f in page


def test_every_documented_flag_is_accepted():
    """The other way round: the table documents nothing the parser refuses."""
    for command, c in helptable.TABLE.items():
        for flag in c["flags"]:
            for name in flag[0]:
                spec = cli.COMMANDS[command] if command != "update" else dict(CLI_FLAGS, h="help", help=False)
                assert name in spec, f"{command}: {name} is documented but not accepted"


@pytest.mark.parametrize("args,needle", [
    (("help", "nope"), "nope"),
    (("help", "exec", "run"), "help"),
    (("help", "--bogus"), "-bogus"),
])
def test_help_usage_errors(args, needle):
    assert_one_line_error(rt(*args), needle)


def test_front_end_hands_help_to_python():
    """The commands the C front end answers itself still have their page."""
    for command in ("state", "start", "kill", "delete"):
        r = rt(command, "--help")
        assert r.returncode == 0 and r.stdout.startswith(f"NAME:\n   ociruntime {command} - ")
        r = rt("--root", "/nonexistent", command, "-h")
        assert r.returncode == 0 and f"ociruntime {command} - " in r.stdout


# -- man pages and completion ---------------------------------------------------

def _without_date(roff):
    return "\n".join(l for l in roff.splitlines() if not l.startswith(".TH "))


@pytest.mark.skipif(not shutil.which("man"), reason="man (man-db) is not installed")
@pytest.mark.parametrize("command", [None, *cli.COMMANDS])
def test_man_page_installed_and_renders(command):
    """pip installed ociruntime(8) and ociruntime-CMD(8) (an editable install
    too); man renders them without warnings; each is the help table's
    (a stale page: re-run tools/setup.sh) and lists every flag."""
    name = "ociruntime" + (f"-{command}" if command else "")
    path = MAN8 / f"{name}.8"
    assert path.is_file(), f"{path} not installed"
    assert _without_date(path.read_text()) == _without_date(helptable.man_page(command))
    r = subprocess.run(["man", "-l", "--warnings", "-E", "UTF-8", str(path)], capture_output=True,
                       text=True, env=dict(os.environ, MANWIDTH="100", MAN_KEEP_FORMATTING="0"))
    assert r.returncode == 0 and r.stderr == "", r.stderr
    text = re.sub(r".\x08", "", r.stdout)   # any overstrike
    assert re.search(rf"^NAME\n +{name} - ", text, re.M), text[:300]
    for flag in parser_flags(command):
        assert re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", text), f"{flag} not in {name}(8)"


def test_no_stray_man_pages():
    want = {"ociruntime.8"} | {f"ociruntime-{c}.8" for c in cli.COMMANDS}
    assert {p.name for p in MAN8.glob("ociruntime*")} == want


def _complete(words, env=None):
    """What bash completes for `words` (the last one being typed)."""
    script = f"""source {BASH_COMPLETION}
COMP_WORDS=({' '.join("'" + w + "'" for w in words)})
COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1))
COMPREPLY=()
_ociruntime
printf '%s\\n' "${{COMPREPLY[@]}}"
"""
    env = dict(os.environ, PATH=f"{Path(RUNTIME).parent}:{os.environ['PATH']}", **(env or {}))
    r = subprocess.run(["bash", "--norc", "--noprofile", "-c", script], capture_output=True,
                       text=True, env=env, timeout=60)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    return [w for w in r.stdout.splitlines() if w]


def test_bash_completion(oci):
    assert BASH_COMPLETION.is_file(), f"{BASH_COMPLETION} not installed"
    r = subprocess.run(["bash", "-n", str(BASH_COMPLETION)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    r = subprocess.run(["bash", "-c", f"source {BASH_COMPLETION}; complete -p ociruntime"],
                       capture_output=True, text=True)
    assert r.stdout.strip() == "complete -F _ociruntime ociruntime"
    assert _complete(["ociruntime", "ex"]) == ["exec"]
    assert _complete(["ociruntime", "--root", "/x", "--log-format", "j"]) == ["json"]
    assert _complete(["ociruntime", "--ro"]) == ["--root", "--rootless"]
    assert _complete(["ociruntime", "exec", "--cw"]) == ["--cwd"]
    assert _complete(["ociruntime", "update", "--cpu-rt"]) == ["--cpu-rt-period", "--cpu-rt-runtime"]
    assert _complete(["ociruntime", "help", "up"]) == ["update"]
    assert _complete(["ociruntime", "exec", "--cap", "CAP_NET_A"]) == ["CAP_NET_ADMIN"]
    # every flag of every command is offered
    for command in cli.COMMANDS:
        assert set(_complete(["ociruntime", command, "-"])) == parser_flags(command), command
    # container ids, from the --root given
    with Running(oci, config(["sleep", "1000"]), start=False) as c:
        assert _complete(["ociruntime", "--root", oci.root, "kill", c.cid[:-3]]) == [c.cid]
        assert _complete(["ociruntime", f"--root={oci.root}", "state", ""]) == [c.cid]
        assert "KILL" in _complete(["ociruntime", "--root", oci.root, "kill", c.cid, "K"])


# -- no Python internals reach the user -------------------------------------------

def _closed_pipe_run(args, which="stdout", ignore_sigpipe=False):
    r, w = os.pipe()
    os.close(r)   # the reader is gone before we write: `| head -0`
    try:
        kw = {which: w, "stderr" if which == "stdout" else "stdout":
              subprocess.PIPE if which == "stdout" else subprocess.DEVNULL}
        pre = (lambda: signal.signal(signal.SIGPIPE, signal.SIG_IGN)) if ignore_sigpipe else None
        return subprocess.run([RUNTIME, *args], preexec_fn=pre, timeout=60, **kw)
    finally:
        os.close(w)


@pytest.mark.parametrize("args", [["features"], ["--help"], ["exec", "--help"], ["--version"],
                                  ["list", "--format", "json"], ["spec", "--help"]])
@pytest.mark.parametrize("ignore_sigpipe", [False, True])
def test_closed_stdout_dies_of_sigpipe_like_runc(tmp_path, args, ignore_sigpipe):
    """`ociruntime features | head -1`: runc dies of SIGPIPE, silently (the
    shell's 141), even when its caller ignores SIGPIPE.  Failed before:
    "internal error: BrokenPipeError", exit 1."""
    r = _closed_pipe_run(["--root", str(tmp_path), *args], ignore_sigpipe=ignore_sigpipe)
    assert r.returncode == -signal.SIGPIPE, (r.returncode, r.stderr)
    assert r.stderr == b""


def test_closed_stderr_dies_of_sigpipe(tmp_path):
    r = _closed_pipe_run(["--root", str(tmp_path), "state", "nope"], which="stderr")
    assert r.returncode == -signal.SIGPIPE


@pytest.fixture
def pyc():
    """The front end's cache of bin/ociruntime-py, put back afterwards."""
    path = Path(os.path.realpath(RUNTIME)).parent / "__pycache__" / "ociruntime-py.pyc"
    rt("--version")   # written if missing
    saved = path.read_bytes() if path.exists() else None
    yield path
    if saved is None:
        path.unlink(missing_ok=True)
    else:
        path.write_bytes(saved)


def _foreign_pyc(path):
    """A .pyc of bin/ociruntime-py as another Python version writes it:
    flags 0, the script's mtime and size, another magic number."""
    import importlib.util
    script = path.parent.parent / "ociruntime-py"
    st = script.stat()
    magic = (int.from_bytes(importlib.util.MAGIC_NUMBER[:2], "little") + 7).to_bytes(2, "little") + b"\r\n"
    path.write_bytes(magic + bytes(4) + (int(st.st_mtime) & 0xFFFFFFFF).to_bytes(4, "little")
                     + (st.st_size & 0xFFFFFFFF).to_bytes(4, "little") + b"\xe3" + bytes(40))
    os.utime(path)   # newer than the interpreter: it looks fresh


def test_foreign_bytecode_falls_back_to_the_script(pyc, tmp_path):
    """Failed before: "RuntimeError: Bad magic number in .pyc file"."""
    import importlib.util
    _foreign_pyc(pyc)
    r = rt("--version")
    assert r.returncode == 0 and r.stdout.startswith("ociruntime version"), r.stderr
    assert_one_line_error(rt("--root", tmp_path, "state", "nope"), 'container "nope" does not exist')
    # and the script left its own in its place
    assert pyc.read_bytes()[:4] == importlib.util.MAGIC_NUMBER


NOBODY = ["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups"]


@pytest.mark.skipif(not shutil.which("setpriv"), reason="setpriv (util-linux) is not installed")
def test_non_root_with_foreign_unwritable_bytecode(pyc):
    """A caller who is not root, a root-owned __pycache__ holding another
    Python's .pyc it cannot replace: the command still answers."""
    _foreign_pyc(pyc)
    assert pyc.stat().st_uid == 0 and pyc.parent.stat().st_uid == 0
    r = subprocess.run([*NOBODY, RUNTIME, "--root", "/nonexistent-root", "state", "nope"],
                       capture_output=True, text=True, timeout=60)
    assert_one_line_error(r, 'container "nope" does not exist')
    r = subprocess.run([*NOBODY, RUNTIME, "exec", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "--process" in r.stdout


@pytest.mark.skipif(not shutil.which("setpriv"), reason="setpriv (util-linux) is not installed")
def test_non_root_who_cannot_run_the_environments_python():
    """An environment whose python3 links into a directory the caller
    cannot enter (pyenv under /root): one line naming the interpreter, not
    another Python running the environment's bytecode ("Bad magic number")."""
    base = Path(tempfile.mkdtemp(prefix="ociruntime-test-env-"))
    try:
        os.chmod(base, 0o755)
        private = base / "private"
        private.mkdir(mode=0o700)
        os.symlink(os.path.realpath("/usr/bin/python3"), private / "python3")
        env_bin = base / "env" / "bin"
        (env_bin / "__pycache__").mkdir(parents=True)
        real_bin = Path(os.path.realpath(RUNTIME)).parent
        for name in ("ociruntime", "ociruntime-py"):
            shutil.copy2(real_bin / name, env_bin / name)
        os.symlink(private / "python3", env_bin / "python3")
        _foreign_pyc(env_bin / "__pycache__" / "ociruntime-py.pyc")
        for cmd in ([str(env_bin / "ociruntime")], [str(env_bin / "ociruntime-py")]):
            r = subprocess.run([*NOBODY, *cmd, "--root", "/nonexistent-root", "state", "nope"],
                               capture_output=True, text=True, timeout=60)
            assert r.returncode != 0 and "Traceback" not in r.stderr, r.stderr
            lines = r.stderr.splitlines()
            assert len(lines) == 1 and "python3" in lines[0] and "ermission denied" in lines[0], lines
    finally:
        shutil.rmtree(base)


def test_exec_flag_errors_name_the_flag(oci):
    """Failed before: --cap CAP_FOO and --apparmor were blamed on the
    bundle's config.json, which is fine."""
    from ociruntime import lsm
    cases = [(["--cap", "CAP_FOO"], "--cap: unknown capability 'CAP_FOO'"),
             (["-c", "CAP_NET_ADMIN", "-c", "cap_bogus"], "--cap: unknown capability 'cap_bogus'"),
             (["--cwd", "relative"], "--cwd: must be an absolute path"),
             (["-u", "abc"], "--user: parsing abc as int for uid failed"),
             (["-u", "0:x"], "--user: parsing x as int for gid failed"),
             (["-g", "x"], "--additional-gids: parsing x as int")]
    if not lsm.apparmor_enabled():
        cases.append((["--apparmor", "unconfined"], "--apparmor: AppArmor is not enabled"))
    if not lsm.selinux_enabled():
        cases.append((["--process-label", "system_u:system_r:x:s0"], "--process-label: selinux"))
    with Running(oci, config(["sleep", "1000"])) as c:
        log = oci.tmp / "log.json"
        for flags, needle in cases:
            r = oci.cmd("exec", *flags, c.cid, "true", global_args=("--log", log, "--log-format", "json"))
            assert r.returncode == 255, (flags, r.returncode, r.stderr)   # runc's "exec failed"
            lines = r.stderr.splitlines()
            assert len(lines) == 1 and "Traceback" not in r.stderr, lines
            assert needle in lines[0] and "config.json" not in lines[0], lines[0]
            assert needle in json_log_errors(log)[-1]["msg"]
        # the container is untouched and exec still works
        assert oci.ok("exec", c.cid, "echo", "ok").stdout == "ok\n"
        assert oci.state(c.cid)["status"] == "running"


def test_help_is_not_on_the_hot_path(oci):
    env = dict(os.environ, PYTHONPROFILEIMPORTTIME="1", OCIRUNTIME_NO_FAST="1")
    r = oci.cmd("state", "nope", env=env)
    assert "ociruntime.help" not in r.stderr and "ociruntime.help" not in json.dumps(r.stdout)
    r = oci.cmd("--help", env=env)
    assert "ociruntime.help" in r.stderr   # the check can fail
