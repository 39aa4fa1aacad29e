"""The package people install and ship (issue 15).

`python -m build` makes an sdist and, from that sdist, a wheel: so the
sdist must hold every file the build needs.  The wheel and the sdist each
install into a fresh venv without extras and run the busybox container
from there; the two features that need an extra fail with one line naming
it; `pip uninstall` leaves no file behind; the version is one string,
with its CHANGELOG entry, in the metadata and in `--version`.

The builds take about a minute: `python -m build --no-isolation` uses
the build dependencies of .venv (tools/setup.sh installs `build`), while
the sdist's install into a fresh venv is the one a user runs: pip's
isolated build, which fetches setuptools, wheel and cffi from the index.
"""
import json
import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from conftest import REPO

VERSION_FILE = REPO / "ociruntime" / "__init__.py"


def version():
    return re.search(r'^__version__ = "([^"]+)"$', VERSION_FILE.read_text(), re.M).group(1)


def sh(*argv, timeout=600, **kw):
    r = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=timeout, **kw)
    assert r.returncode == 0, f"{' '.join(map(str, argv))} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}"
    return r


def files_of(venv):
    return {str(p.relative_to(venv)) for p in Path(venv).rglob("*")}


def fresh_venv(path):
    # The Python of .venv (Debian's, as tools/setup.sh makes it): a venv
    # made from a venv's python is based on the same interpreter.
    sh(sys.executable, "-m", "venv", path)
    return Path(path)


@pytest.fixture(scope="module")
def dists(tmp_path_factory):
    pytest.importorskip("build", reason="the `build` package (tools/setup.sh installs it)")
    out = tmp_path_factory.mktemp("dist")
    sh(sys.executable, "-m", "build", "--no-isolation", "--outdir", out, REPO)
    sdists, wheels = list(out.glob("*.tar.gz")), list(out.glob("*.whl"))
    assert len(sdists) == 1 and len(wheels) == 1, list(out.iterdir())
    return sdists[0], wheels[0]


def run_busybox(oci, venv):
    """`ociruntime run` of the busybox bundle with the venv's command."""
    b = oci.bundle()
    r = subprocess.run([venv / "bin" / "ociruntime", "--root", oci.root, "run", "-b", b, oci.new_id()],
                       capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    assert "hostname: busybox" in r.stdout and "pid: 1" in r.stdout, r.stdout


def test_version_is_one_string_with_a_changelog_entry():
    v = version()
    assert re.fullmatch(r"\d+\.\d+\.\d+", v), f"{v!r} is not MAJOR.MINOR.PATCH"
    changelog = (REPO / "CHANGELOG.md").read_text()
    assert re.search(rf"^## {re.escape(v)} - \d{{4}}-\d{{2}}-\d{{2}}$", changelog, re.M), \
        f"CHANGELOG.md has no '## {v} - DATE' entry"
    # setup.py reads it from ociruntime/__init__.py, it does not repeat it.
    assert v not in (REPO / "setup.py").read_text()
    from conftest import RUNTIME
    out = sh(RUNTIME, "--version").stdout
    assert out.startswith(f"ociruntime version {v}\n"), out
    assert "Apache License" in (REPO / "LICENSE").read_text()


def test_sdist_holds_what_the_build_needs(dists):
    sdist, _ = dists
    top = f"ociruntime-{version()}/"
    with tarfile.open(sdist) as t:
        names = {n[len(top):] for n in t.getnames() if n.startswith(top)}
    for f in (REPO / "csrc").iterdir():
        if f.suffix in (".c", ".h", ".py"):
            assert f"csrc/{f.name}" in names, f"sdist lacks csrc/{f.name}"
    for f in ("bin/ociruntime-py", "setup.py", "pyproject.toml", "LICENSE", "CHANGELOG.md",
              "README.md", "ociruntime/schemas/config.schema.json", "tests/conftest.py",
              "tests/data/oci-runtime-spec/LICENSE", "bundles/make-rootfs.sh"):
        assert f in names, f"sdist lacks {f}"
    assert not [n for n in names if n.endswith((".so", ".pyc", "ociruntime-init")) or "/rootfs/" in n]


def test_wheel_metadata(dists):
    _, wheel = dists
    with zipfile.ZipFile(wheel) as z:
        meta = z.read(f"ociruntime-{version()}.dist-info/METADATA").decode()
    fields = [tuple(line.split(": ", 1)) for line in meta.split("\n\n")[0].splitlines() if ": " in line]
    get = lambda k: [v for key, v in fields if key == k]   # noqa: E731
    assert get("Version") == [version()]
    assert get("License") == ["Apache-2.0"]
    assert get("Project-URL") and get("Home-page") and get("Summary")
    assert "Operating System :: POSIX :: Linux" in get("Classifier")
    assert set(get("Provides-Extra")) == {"validate", "netdev"}
    # jsonschema and pyroute2 only with their extra.
    plain = [r for r in get("Requires-Dist") if "extra ==" not in r]
    assert not [r for r in plain if r.startswith(("jsonschema", "pyroute2"))], plain
    assert any(r.startswith("jsonschema") and 'extra == "validate"' in r for r in get("Requires-Dist"))
    assert any(r.startswith("pyroute2") and 'extra == "netdev"' in r for r in get("Requires-Dist"))


def test_wheel_installs_runs_and_uninstalls_clean(dists, oci, tmp_path):
    _, wheel = dists
    venv = fresh_venv(tmp_path / "venv")
    pip = venv / "bin" / "pip"
    sh(pip, "install", "-q", "cffi")   # the one dependency: it stays after uninstall
    before = files_of(venv)
    sh(pip, "install", "-q", wheel)
    assert not list(venv.glob("lib/python*/site-packages/jsonschema")), "an extra came along"
    run_busybox(oci, venv)
    # The front end ran the launcher's bytecode, which the install made.
    assert (venv / "bin" / "__pycache__" / "ociruntime-py.pyc").is_file()
    # The first call wrote the module bundle in place of the empty one the
    # install recorded (so that uninstall removes it, checked below).
    from ociruntime import bundle
    data = (venv / "bin" / "__pycache__" / bundle.NAME).read_bytes()
    got = bundle.parse(data, (venv / "bin" / "python3").stat().st_ino)
    assert got and got[0] == str(next(venv.glob("lib/python*/site-packages"))), data[:64]
    # README's install: engines call a symlink (/usr/local/bin/ociruntime),
    # with no PATH; the command finds its venv through the link.
    link = tmp_path / "link" / "ociruntime"
    link.parent.mkdir()
    link.symlink_to(venv / "bin" / "ociruntime")
    r = subprocess.run([link, "--root", oci.root, "run", "-b", oci.bundle(), oci.new_id()], env={},
                       capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert r.returncode == 0 and "hostname: busybox" in r.stdout, r.stderr

    # No extras here.  validate runs create's own checks (the compiled
    # schema) without jsonschema, which only lists every schema error at
    # once; a feature that cannot do without its extra says which.
    b = oci.bundle()
    r = subprocess.run([venv / "bin" / "ociruntime", "--root", oci.root, "validate", "-b", b],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.endswith(": valid\n"), r.stderr
    cfg = json.loads((b / "config.json").read_text())
    cfg["linux"]["netDevices"] = {"ocirt-pkg0": {}}
    b2 = oci.bundle(cfg)
    r = subprocess.run([venv / "bin" / "ociruntime", "--root", oci.root, "create", "-b", b2, oci.new_id()],
                       capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 1
    assert r.stderr.count("\n") == 1 and "$.linux.netDevices" in r.stderr \
        and "ociruntime[netdev]" in r.stderr, r.stderr

    sh(pip, "uninstall", "-y", "-q", "ociruntime")
    left = sorted(files_of(venv) - before)
    # pip removes what it installed and the folders that held it (man8,
    # completions); the prefix's standard folders above those stay, empty,
    # as after any package that ships a man page.
    standard = {"share", "share/man", "share/bash-completion"}
    left = [p for p in left
            if not (p in standard and not any(f.is_file() for f in (venv / p).rglob("*")))]
    assert not left, f"pip uninstall left: {left}"


def test_sdist_installs_into_a_fresh_venv_and_runs(dists, oci, tmp_path):
    sdist, _ = dists
    venv = fresh_venv(tmp_path / "venv")
    # What a user runs: pip builds the sdist in an isolated environment.
    sh(venv / "bin" / "pip", "install", "-q", sdist)
    run_busybox(oci, venv)
    r = sh(venv / "bin" / "ociruntime", "--version")
    assert r.stdout.startswith(f"ociruntime version {version()}\n")
