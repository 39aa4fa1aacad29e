"""`ociruntime features`: valid against the spec's schema, only properties the
spec defines, and truthful: what it lists works in a real container."""
import json
import os
from pathlib import Path

import pytest

from conftest import busybox_config
from ociruntime import features as F
from ociruntime import validate as V
from specdata import SCHEMA_DIR as SPEC_SCHEMA

REPO = Path(__file__).resolve().parents[1]

TOP_KEYS = {"ociVersionMin", "ociVersionMax", "hooks", "mountOptions", "linux",
            "annotations", "potentiallyUnsafeConfigAnnotations"}
LINUX_KEYS = {"namespaces", "capabilities", "cgroup", "seccomp", "apparmor", "selinux",
              "memoryPolicy", "intelRdt", "mountExtensions", "netDevices"}


@pytest.fixture(scope="module")
def doc():
    import subprocess
    from conftest import RUNTIME
    r = subprocess.run([RUNTIME, "features"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def schema_errors(document):
    v = V._reference_validator("features.schema.json")
    return [e.message for e in v.iter_errors(document)]


def test_cli_output_is_the_module_output(doc):
    assert doc == F.features()


def test_valid_against_bundled_schema(doc):
    assert schema_errors(doc) == []


def test_bundled_schema_accepts_and_rejects_the_spec_examples():
    d = SPEC_SCHEMA / "test" / "features"
    for p in sorted((d / "good").glob("*.json")):
        assert schema_errors(json.loads(p.read_text())) == [], p.name
    for p in sorted((d / "bad").glob("*.json")):
        assert schema_errors(json.loads(p.read_text())), p.name


def test_valid_against_spec_schema_files(doc):
    """The spec's own schema files, $refs resolved between them."""
    import jsonschema
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT4
    resources = []
    for p in SPEC_SCHEMA.glob("*.json"):
        contents = json.loads(p.read_text())
        resources.append((p.name, Resource.from_contents(contents, default_specification=DRAFT4)))
    registry = Registry().with_resources(resources)
    schema = json.loads((SPEC_SCHEMA / "features-schema.json").read_text())
    validator = jsonschema.Draft4Validator(schema, registry=registry)
    assert [e.message for e in validator.iter_errors(doc)] == []


def test_bundled_schema_is_up_to_date():
    import importlib.util
    spec = importlib.util.spec_from_file_location("bundle", REPO / "tools" / "bundle_features_schema.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    want = json.dumps(mod.bundle(SPEC_SCHEMA), indent=2, sort_keys=True) + "\n"
    for out in mod.OUTPUTS:
        assert out.read_text() == want, f"{out} is stale: run tools/bundle_features_schema.py"


def test_only_properties_the_spec_defines(doc):
    assert set(doc) <= TOP_KEYS
    assert set(doc["linux"]) <= LINUX_KEYS
    assert set(doc["linux"]["cgroup"]) <= {"v1", "v2", "systemd", "systemdUser", "rdma"}
    assert doc["ociVersionMin"] <= doc["ociVersionMax"]
    assert doc["ociVersionMax"] == __import__("ociruntime").SPEC_VERSION


def test_unimplemented_features_are_reported_off(doc):
    linux = doc["linux"]
    for key in ("apparmor", "selinux", "intelRdt"):
        assert linux[key] == {"enabled": False}
    assert linux["netDevices"] == {"enabled": True}   # tests/test_network.py
    # not implemented: must not be claimed
    opts = set(doc["mountOptions"])
    for opt in ("acl", "noacl", "mode=755"):
        assert opt not in opts
    # implemented (tests/test_mount_attrs.py): claimed
    for opt in ("idmap", "ridmap", "rro", "rnodev", "tmpcopyup", "nosymfollow"):
        assert opt in opts, opt
    assert linux["mountExtensions"] == {"idmap": {"enabled": True}}


def test_mount_options_are_what_parse_options_takes(doc):
    from ociruntime import mounts
    for opt in doc["mountOptions"]:
        _flags, _prop, data = mounts.parse_options([opt], "test")
        assert data == "", opt
    assert "rbind" in doc["mountOptions"] and "symfollow" in doc["mountOptions"]


def test_listed_mount_options_work_in_a_container(oci, doc):
    from ociruntime import mounts
    flags = [o for o in doc["mountOptions"]
             if o not in mounts.PROPAGATION and o not in ("bind", "rbind", "remount", "idmap", "ridmap")]
    cfg = busybox_config(["sh", "-c", "grep ' /listed ' /proc/mounts"])
    # last word wins, as in mount(8): finish with the ones we check
    cfg["mounts"].append({"destination": "/listed", "type": "tmpfs", "source": "tmpfs",
                          "options": flags + ["rprivate", "ro", "nosuid", "nodev", "noexec"]})
    code, out, err = oci.run_output(cfg=cfg)
    assert code == 0, err
    mount_opts = out.split()[3].split(",")
    for want in ("ro", "nosuid", "nodev", "noexec"):
        assert want in mount_opts, out


def test_listed_namespaces_are_made(oci, doc):
    host = {ns: os.readlink(f"/proc/self/ns/{F_ns(ns)}") for ns in doc["linux"]["namespaces"]}
    cfg = busybox_config(["sh", "-c", "for n in " + " ".join(F_ns(n) for n in sorted(host)) +
                          "; do echo $n $(readlink /proc/self/ns/$n); done"])
    cfg["linux"]["namespaces"] = [{"type": ns} for ns in doc["linux"]["namespaces"]]
    cfg["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 0, "size": 65536}]
    cfg["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 0, "size": 65536}]
    code, out, err = oci.run_output(cfg=cfg)
    assert code == 0, err
    got = dict(line.split(" ", 1) for line in out.splitlines())
    for ns in host:
        assert got[F_ns(ns)] != host[ns], ns


def F_ns(kind):
    from ociruntime.namespaces import NAMESPACES
    return NAMESPACES[kind][1]


def test_listed_capabilities_are_accepted(oci, doc):
    """Every listed name goes into the bounding set; the container keeps
    those the host has (this host lacks CAP_SYS_RESOURCE)."""
    cfg = busybox_config(["sh", "-c", "grep CapBnd /proc/self/status"])
    cfg["process"]["capabilities"]["bounding"] = doc["linux"]["capabilities"]
    code, out, err = oci.run_output(cfg=cfg)
    assert code == 0, err
    with open("/proc/self/status") as f:
        host = next(l for l in f if l.startswith("CapBnd"))
    assert int(out.split()[1], 16) == int(host.split()[1], 16)


def test_seccomp_when_listed_filters(oci, doc):
    sc = doc["linux"]["seccomp"]
    if not sc.get("enabled"):
        assert set(sc) == {"enabled"}   # nothing else claimed
        return
    cfg = busybox_config(["sh", "-c", "grep Seccomp: /proc/self/status; mkdir /tmp/d || echo denied"])
    cfg["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW",
                               "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}
    code, out, err = oci.run_output(cfg=cfg)
    assert code == 0, err
    assert out.split("\n")[0].split() == ["Seccomp:", "2"] and "denied" in out, out
