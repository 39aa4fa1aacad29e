"""The module bundle (ociruntime/bundle.py, read by bin/ociruntime-py):
create loads the package's modules from it, not one .pyc each; it never
runs stale code (an edited, added or removed module takes effect on the
next call) nor a bundle another interpreter wrote; without one (missing,
unreadable, a read-only install) the command imports the normal way.

The tests that edit modules do it in a private environment: a bin/ with
the front end, the launcher and a python3 link, and a copy of the
package that a .pth file points to, as `pip install -e .` lays it out.
"""
import os
import re
import shutil
import subprocess
import sys

import pytest

from conftest import REPO, RUNTIME

from ociruntime import bundle

MESSAGE = '$: must be a JSON object")'


class Env:
    """A private environment of the runtime (see the module's doc)."""

    def __init__(self, tmp):
        self.bin = tmp / "env" / "bin"
        self.bin.mkdir(parents=True)
        v = "python%d.%d" % sys.version_info[:2]
        sp = tmp / "env" / "lib" / v / "site-packages"
        sp.mkdir(parents=True)
        self.src = tmp / "src"
        shutil.copytree(REPO / "ociruntime", self.src / "ociruntime",
                        ignore=shutil.ignore_patterns("__pycache__"))
        (sp / "__editable__.ociruntime-0.pth").write_text(f"{self.src}\n")
        (self.bin / "python3").symlink_to(os.path.realpath(REPO / ".venv" / "bin" / "python3"))
        shutil.copy2(REPO / "bin" / "ociruntime-py", self.bin / "ociruntime-py")
        shutil.copy2(RUNTIME, self.bin / "ociruntime")
        self.path = self.bin / "__pycache__" / bundle.NAME

    def run(self, oci, *args, **kw):
        return subprocess.run([self.bin / "ociruntime", "--root", oci.root, *map(str, args)],
                              capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL, **kw)

    def index(self):
        got = bundle.parse(self.path.read_bytes(), os.stat(sys.executable).st_ino)
        assert got is not None, "no valid bundle"
        return got[1]

    def edit(self, module, old, new):
        f = self.src / "ociruntime" / module
        text = f.read_text()
        assert old in text
        f.write_text(text.replace(old, new))


@pytest.fixture
def env(tmp_path):
    return Env(tmp_path)


def not_an_object(oci):
    """A bundle whose config.json is a list: create fails in config.py,
    one of the modules it loads."""
    b = oci.bundle()
    (b / "config.json").write_text("[]")
    return b


def failed_create(oci, env, b):
    r = env.run(oci, "create", "-b", b, oci.new_id())
    assert r.returncode == 1
    return r.stderr


def test_edited_module_takes_effect_on_the_next_call(oci, env):
    b = not_an_object(oci)
    assert "$: must be a JSON object" in failed_create(oci, env, b)
    before = env.index()["ociruntime.config"]   # the first call wrote the bundle
    env.edit("config.py", MESSAGE, '$: must be an object (edited)")')
    assert "$: must be an object (edited)" in failed_create(oci, env, b)
    # That call brought the bundle up to date, and the next one reads it.
    after = env.index()["ociruntime.config"]
    assert after[2:4] != before[2:4]
    assert "$: must be an object (edited)" in failed_create(oci, env, b)


def test_added_and_removed_modules_take_effect(oci, env):
    b = not_an_object(oci)
    failed_create(oci, env, b)
    (env.src / "ociruntime" / "bnd_added.py").write_text('WORDS = "an added module"\n')
    env.edit("config.py", MESSAGE, '$: " + __import__("ociruntime.bnd_added").bnd_added.WORDS)')
    assert "$: an added module" in failed_create(oci, env, b)
    assert "ociruntime.bnd_added" in env.index()
    (env.src / "ociruntime" / "bnd_added.py").unlink()
    err = failed_create(oci, env, b)
    assert "bnd_added" in err and "an added module" not in err, err


def test_bundle_of_another_interpreter_is_not_run(oci, env):
    """A bundle whose code says TAMPERED for config.py and whose index
    matches the source's mtime and size: trusted with this interpreter's
    header (which shows the test can fail), ignored with another's."""
    tampered_message = MESSAGE.replace("must be a JSON object", "TAMPERED".ljust(21, "!"))
    b = not_an_object(oci)
    failed_create(oci, env, b)
    f = env.src / "ociruntime" / "config.py"
    st = f.stat()
    original = f.read_text()
    env.edit("config.py", MESSAGE, tampered_message)
    assert f.stat().st_size == st.st_size
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    ino = os.stat(sys.executable).st_ino
    tampered = bundle.build(str(env.src), ino)
    f.write_text(original)
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))

    env.path.write_bytes(tampered)
    assert "TAMPERED" in failed_create(oci, env, b)
    other = bytearray(tampered)
    other[4:8] = ((ino + 1) & 0xFFFFFFFF).to_bytes(4, "little")
    env.path.write_bytes(other)
    assert "$: must be a JSON object" in failed_create(oci, env, b)
    assert env.path.read_bytes()[4:8] == (ino & 0xFFFFFFFF).to_bytes(4, "little"), "not rewritten"


def test_launcher_of_another_layout_imports_the_normal_way(oci, env):
    """A launcher older or newer than the package (an editable install
    after a pull, before reinstalling) neither reads the bundle nor
    rewrites it on every call."""
    launcher = env.bin / "ociruntime-py"
    text = launcher.read_text()
    assert f"_BUNDLE_FORMAT = {bundle.FORMAT} " in text
    launcher.write_text(text.replace(f"_BUNDLE_FORMAT = {bundle.FORMAT} ", f"_BUNDLE_FORMAT = {bundle.FORMAT + 1} "))
    b = not_an_object(oci)
    assert "$: must be a JSON object" in failed_create(oci, env, b)
    assert not env.path.exists()
    env.path.write_bytes(bundle.build(str(env.src), os.stat(sys.executable).st_ino))
    before = env.path.stat().st_mtime_ns
    assert "$: must be a JSON object" in failed_create(oci, env, b)
    assert env.path.stat().st_mtime_ns == before


@pytest.mark.parametrize("damage", ["missing", "directory", "truncated", "garbage"])
def test_unusable_bundle_falls_back_to_normal_imports(oci, env, damage):
    b = not_an_object(oci)
    failed_create(oci, env, b)
    data = env.path.read_bytes()
    env.path.unlink()
    if damage == "directory":   # unreadable, even for root
        env.path.mkdir()
    elif damage == "truncated":
        env.path.write_bytes(data[:len(data) // 2])
    elif damage == "garbage":
        env.path.write_bytes(os.urandom(len(data)))
    assert "$: must be a JSON object" in failed_create(oci, env, b)
    r = env.run(oci, "run", "-b", oci.bundle(args=["/bin/true"]), oci.new_id())
    assert r.returncode == 0, r.stderr
    if damage == "directory":
        assert env.path.is_dir()
    else:
        env.index()   # written again


def test_read_only_install_imports_the_normal_way(oci, env):
    """bin/__pycache__ read-only (a bind mount in a mount namespace of
    the command's own): no bundle is written, and the command works."""
    if not shutil.which("unshare"):
        pytest.skip("needs unshare(1)")
    env.path.unlink(missing_ok=True)
    env.path.parent.mkdir(exist_ok=True)
    d = env.path.parent
    script = f'mount --bind "{d}" "{d}" && mount -o remount,bind,ro "{d}" && exec "$@"'
    r = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh",
                        env.bin / "ociruntime", "--root", oci.root, "run", "-b",
                        oci.bundle(args=["/bin/true"]), oci.new_id()],
                       capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    assert not env.path.exists()


def opened(oci, *args):
    """The files `ociruntime ARGS` opened (its own process, not the
    init's: no -f), and its stderr.  Output on files: the init holds
    them until the container is deleted."""
    if not shutil.which("strace"):
        pytest.skip("needs strace")
    trace, err = oci.tmp / "strace.out", oci.tmp / "stderr"
    with open(err, "w") as e:
        r = subprocess.run(["strace", "-qq", "-o", trace, "-e", "trace=openat", "-e", "signal=none",
                            RUNTIME, "--root", oci.root, *map(str, args)],
                           stdout=e, stderr=e, timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, err.read_text()
    return re.findall(r'openat\(\w+, "([^"]+)"', trace.read_text())


def test_create_opens_no_module_of_the_package(oci):
    """With the bundle fresh (the first create writes it when it is not),
    create opens the bundle and no .py or .pyc of the package."""
    b = oci.bundle()
    for _ in range(2):
        cid = oci.new_id()
        files = opened(oci, "create", "-b", b, cid)
        oci.ok("delete", "--force", cid)
    ours = [f for f in files if re.search(r"/ociruntime/.*\.pyc?$", f)]
    assert not ours, f"create opened {ours}"
    assert any(f.endswith("/" + bundle.NAME) for f in files), files


def test_modules_from_the_bundle_are_like_imported_ones():
    """__file__, __spec__, a package's __path__, importlib.resources (the
    schemas), tracebacks naming the source line, cffi's _core (not in
    the bundle): what the launcher's finder gives, checked in a Python
    that runs the launcher up to its import of the CLI."""
    launcher = REPO / ".venv" / "bin" / "ociruntime-py"
    subprocess.run([RUNTIME, "--version"], capture_output=True, timeout=60)   # the bundle up to date
    code = f"""
import sys, os
sys.argv = [{str(launcher)!r}, "--version"]
src = open(sys.argv[0]).read()
exec(compile(src[:src.index("from ociruntime.cli import main")], sys.argv[0], "exec"))
assert _bundled, "the bundle is not used"
import importlib.resources, linecache, traceback
import ociruntime, ociruntime.cgroups.v1, ociruntime.validate, ociruntime._core
for m in (ociruntime, ociruntime.cgroups.v1, ociruntime.validate):
    assert type(m.__spec__.loader).__name__ == "_BundleLoader", m
    assert m.__spec__.origin == m.__file__ and os.path.isfile(m.__file__), m.__file__
    assert m.__spec__.name == m.__name__
assert ociruntime.__path__ == [os.path.dirname(ociruntime.__file__)]
assert ociruntime.cgroups.__path__ == [os.path.dirname(ociruntime.cgroups.__file__)]
assert (importlib.resources.files("ociruntime") / "schemas" / "config.schema.json").is_file()
assert os.path.isdir(ociruntime.validate.SCHEMA_DIR)
assert type(ociruntime._core.__spec__.loader).__name__ == "ExtensionFileLoader"
import _json, importlib.machinery
found = importlib.machinery.PathFinder.find_spec("_json")
if found is not None:   # a shared object here, found through the bundle's record
    assert _json.__spec__.origin == found.origin and _json.__file__ == found.origin
from ociruntime import jsonlite
assert jsonlite.loads(jsonlite.dumps({{"a": [1]}})) == {{"a": [1]}}
import ociruntime.config
try:
    ociruntime.config.load("/nonexistent")
except Exception:
    tb = traceback.format_exc()
    assert f'File "{{ociruntime.config.__file__}}", line ' in tb and "raise ConfigError" in tb, tb
print("ok")
"""
    r = subprocess.run([REPO / ".venv" / "bin" / "python3", "-S", "-c", code],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout == "ok\n", r.stderr


def test_python_m_ociruntime_imports_the_normal_way():
    r = subprocess.run([REPO / ".venv" / "bin" / "python3", "-m", "ociruntime", "--version"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.startswith("ociruntime version "), r.stderr


def test_bundle_holds_every_module_compiled_without_docstrings(tmp_path):
    data = bundle.build(str(REPO), 1)
    root, entries, base = bundle.parse(data, 1)
    assert root == str(REPO)
    assert set(entries) == {m for m in bundle.sources(str(REPO))} >= {"ociruntime", "ociruntime.cli",
                                                                     "ociruntime.cgroups.v1"}
    import marshal
    rel, is_package, mtime_ns, size, offset, length = entries["ociruntime"]
    assert (rel, is_package) == ("ociruntime/__init__.py", True)
    code = marshal.loads(data[base + offset:base + offset + length])
    assert code.co_filename == str(REPO / rel)
    assert "an OCI runtime in Python" not in repr(code.co_consts)   # no docstring
    assert bundle.parse(data, 2) is None   # another interpreter's
