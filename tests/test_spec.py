"""ociruntime.spec (what `ociruntime spec` writes) and bundles/make-rootfs.sh."""

import json
import os
import pathlib
import shutil
import subprocess

import pytest

from ociruntime import SPEC_VERSION
from ociruntime.errors import OciError
from ociruntime.spec import default_spec, write_spec
from specdata import SCHEMA_DIR

REPO = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def config_validator():
    import jsonschema
    import referencing
    import referencing.jsonschema

    # config-schema.json refers to its siblings by relative name
    # ("defs.json#/..."), so register every file under its file: URI.
    draft4 = referencing.jsonschema.DRAFT4
    resources = []
    for path in SCHEMA_DIR.glob("*.json"):
        contents = json.loads(path.read_text())
        resources.append((path.as_uri(), draft4.create_resource(contents)))
    registry = referencing.Registry().with_resources(resources)
    main = SCHEMA_DIR / "config-schema.json"
    # Without an id of its own the root schema has no base to resolve against.
    schema = dict(json.loads(main.read_text()), id=main.as_uri())
    return jsonschema.Draft4Validator(schema, registry=registry)


@pytest.mark.parametrize("rootless", [False, True])
def test_default_spec_validates_against_reference_schema(config_validator, rootless):
    errors = [
        f"{e.json_path}: {e.message}"
        for e in config_validator.iter_errors(default_spec(rootless))
    ]
    assert errors == []


def test_busybox_bundle_config_validates(config_validator):
    config = json.loads((REPO / "bundles" / "busybox" / "config.json").read_text())
    assert [e.message for e in config_validator.iter_errors(config)] == []
    assert config["ociVersion"] == SPEC_VERSION


@pytest.mark.parametrize("rootless", [False, True])
def test_write_spec_matches_runc_spec(tmp_path, rootless):
    if shutil.which("runc") is None:
        pytest.skip("runc not installed")
    flags = ["--rootless"] if rootless else []
    (tmp_path / "runc").mkdir()
    (tmp_path / "ours").mkdir()
    subprocess.run(["runc", "spec", *flags], cwd=tmp_path / "runc", check=True)
    write_spec(str(tmp_path / "ours"), rootless=rootless)

    theirs_text = (tmp_path / "runc" / "config.json").read_text()
    ours_text = (tmp_path / "ours" / "config.json").read_text()
    theirs, ours = json.loads(theirs_text), json.loads(ours_text)
    assert ours["ociVersion"] == SPEC_VERSION
    # The spec version is the one intended difference.
    theirs_version = theirs.pop("ociVersion")
    ours.pop("ociVersion")
    assert ours == theirs
    # Same layout too (tabs, key order), so diffs against runc's stay small.
    assert ours_text == theirs_text.replace(
        f'"ociVersion": "{theirs_version}"', f'"ociVersion": "{SPEC_VERSION}"'
    )


def test_write_spec_refuses_to_overwrite(tmp_path):
    (tmp_path / "config.json").write_text("mine")
    with pytest.raises(OciError, match="^File config.json exists. Remove it first$"):
        write_spec(str(tmp_path))
    assert (tmp_path / "config.json").read_text() == "mine"


def test_write_spec_missing_bundle_is_an_oci_error(tmp_path):
    with pytest.raises(OciError):
        write_spec(str(tmp_path / "absent"))


def test_rootless_spec_maps_the_caller():
    linux = default_spec(rootless=True)["linux"]
    assert linux["uidMappings"] == [{"containerID": 0, "hostID": os.geteuid(), "size": 1}]
    assert linux["gidMappings"] == [{"containerID": 0, "hostID": os.getegid(), "size": 1}]
    types = [ns["type"] for ns in linux["namespaces"]]
    assert "user" in types and "network" not in types


def test_make_rootfs_builds_and_is_idempotent(tmp_path):
    if not os.path.exists("/bin/busybox"):
        pytest.skip("busybox-static not installed")
    rootfs = tmp_path / "rootfs"
    script = REPO / "bundles" / "make-rootfs.sh"

    def build_and_list():
        subprocess.run([str(script), str(rootfs)], check=True)
        return sorted(
            (str(p.relative_to(rootfs)), os.readlink(p) if p.is_symlink() else None)
            for p in rootfs.rglob("*")
        )

    first = build_and_list()
    assert os.readlink(rootfs / "bin" / "sh") == "busybox"
    assert (rootfs / "tmp").stat().st_mode & 0o7777 == 0o1777
    passwd = (rootfs / "etc" / "passwd").read_text()
    assert passwd.startswith("root:x:0:0:")
    assert "\nuser:x:1000:1000:" in passwd
    assert "nobody:x:65534:65534:" in passwd
    # Static, so it runs outside a chroot too; sh through its applet link.
    out = subprocess.run(
        [str(rootfs / "bin" / "sh"), "-c", "echo ok"],
        capture_output=True, text=True, check=True,
    )
    assert out.stdout == "ok\n"

    assert build_and_list() == first
