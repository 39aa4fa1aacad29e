"""Capabilities that cannot be mapped fail (the spec's MUST), in every
set; AppArmor/SELinux labels on a host without the LSM fail as in runc."""
import pytest

from conftest import busybox_config
from ociruntime import lsm

SETS = ("bounding", "effective", "permitted", "inheritable", "ambient")


def _clean_error(r):
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 1 and len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    return lines[0]


@pytest.mark.parametrize("which", SETS)
def test_unknown_capability_in_any_set_is_an_error(oci, which):
    cfg = busybox_config(["true"])
    caps = cfg["process"].setdefault("capabilities", {})
    caps[which] = list(caps.get(which) or ()) + ["CAP_NOT_A_THING"]
    b = oci.bundle(cfg)
    cid = oci.new_id()
    line = _clean_error(oci.create("-b", b, cid))
    assert f"$.process.capabilities.{which}" in line and "CAP_NOT_A_THING" in line, line
    assert oci.cmd("state", cid).returncode != 0


def test_lowercase_or_unprefixed_names_are_not_mapped(oci):
    for name in ("cap_chown", "CHOWN"):
        cfg = busybox_config(["true"])
        cfg["process"]["capabilities"]["bounding"].append(name)
        line = _clean_error(oci.create("-b", oci.bundle(cfg), oci.new_id()))
        assert name in line


def test_known_capabilities_are_applied(oci):
    cfg = busybox_config(["sh", "-c", "grep Cap /proc/self/status"])
    cfg["process"]["capabilities"] = {s: ["CAP_CHOWN", "CAP_KILL"] for s in SETS}
    code, out, err = oci.run_output(cfg=cfg)
    assert code == 0, err
    want = f"{(1 << 0) | (1 << 5):016x}"
    for field in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert f"{field}:\t{want}" in out, out


@pytest.mark.skipif(lsm.apparmor_enabled(), reason="AppArmor is enabled here")
def test_apparmor_profile_without_apparmor_fails_like_runc(oci):
    """runc 1.1: "unable to apply apparmor profile: ... write
    /proc/self/attr/exec: invalid argument".  We fail before anything is
    made, naming the field."""
    cfg = busybox_config(["true"])
    cfg["process"]["apparmorProfile"] = "docker-default"
    cid = oci.new_id()
    line = _clean_error(oci.create("-b", oci.bundle(cfg), cid))
    assert "$.process.apparmorProfile" in line and "AppArmor is not enabled" in line
    assert oci.cmd("state", cid).returncode != 0


@pytest.mark.skipif(lsm.selinux_enabled(), reason="SELinux is enabled here")
@pytest.mark.parametrize("field", ["selinuxLabel", "mountLabel"])
def test_selinux_labels_without_selinux_fail_like_runc(oci, field):
    """runc: "selinux label is specified in config, but selinux is
    disabled or not supported" (and a mountLabel breaks its tmpfs mounts)."""
    cfg = busybox_config(["true"])
    if field == "selinuxLabel":
        cfg["process"]["selinuxLabel"] = "system_u:system_r:container_t:s0:c1,c2"
    else:
        cfg["linux"]["mountLabel"] = "system_u:object_r:container_file_t:s0:c1,c2"
    cid = oci.new_id()
    line = _clean_error(oci.create("-b", oci.bundle(cfg), cid))
    assert field in line and "selinux is disabled or not supported" in line
    assert oci.cmd("state", cid).returncode != 0


def test_empty_labels_are_fine(oci):
    cfg = busybox_config(["true"])
    cfg["process"]["apparmorProfile"] = ""
    cfg["process"]["selinuxLabel"] = ""
    cfg["linux"]["mountLabel"] = ""
    code, out, err = oci.run_output(cfg=cfg)
    assert code == 0, err


def test_label_plan_writes_attr_exec():
    from ociruntime.plan import Plan
    p = Plan()
    lsm.plan_labels(p, {"apparmorProfile": "prof", "selinuxLabel": "a:b:c:s0"})
    paths = [s[1][0] for s in p.steps]
    assert p.steps[0][1][1] == "exec prof" and paths[0].startswith("/proc/self/attr/")
    assert p.steps[1][1] == ("/proc/self/attr/exec", "a:b:c:s0")
