"""Bad input: each gets exit status 1, one line on stderr, no traceback, a
JSON error line in --log, and leaves nothing behind (no state dir,
process, cgroup or mount: the `oci` fixture checks the last two)."""
import json
import os
import time

import pytest

from ocihelpers import assert_one_line_error, config, json_log_errors, leftover_processes


def bundle_with(oci, mutate=None, args=None, raw=None, files=(), rootfs=False):
    """A bundle whose config is the busybox one changed by mutate(cfg)
    (or the raw text); files: {path in rootfs: (content, mode)}.  Without
    rootfs=True its rootfs is an empty directory: enough for errors found
    before anything runs, and much cheaper than a copy of busybox."""
    cfg = config(args or ["true"])
    if mutate:
        mutate(cfg)
    if rootfs:
        b = oci.bundle(cfg)
    else:
        oci._n += 1
        b = oci.tmp / f"bundle{oci._n}"
        (b / "rootfs").mkdir(parents=True)
        (b / "config.json").write_text(json.dumps(cfg))
    if raw is not None:
        (b / "config.json").write_text(raw)
    for path, (content, mode) in dict(files).items():
        p = b / "rootfs" / path.lstrip("/")
        p.write_text(content)
        os.chmod(p, mode)
    return b


def check_failed(oci, r, cid, log, *needles):
    line = assert_one_line_error(r, *needles)
    records = json_log_errors(log)
    assert len(records) == 1, records
    assert records[0]["msg"] in line
    assert time.strptime(records[0]["time"][:19], "%Y-%m-%dT%H:%M:%S")
    if cid:
        assert not os.path.exists(os.path.join(oci.root, cid)), os.listdir(oci.root)
    assert not leftover_processes(oci)
    return line


def create_fails(oci, bundle, *needles, cid=None, command="create"):
    cid = oci.new_id() if cid is None else cid
    log = oci.tmp / f"log-{len(oci.ids)}.json"
    args = (command, "-b", bundle, cid)
    glob = ("--log", log, "--log-format", "json")
    r = oci.create(*args[1:], global_args=glob) if command == "create" else \
        oci.cmd(*args, global_args=glob)
    return check_failed(oci, r, cid, log, *needles)


def set_args(value):
    def m(cfg):
        cfg["process"]["args"] = value
    return m


def test_missing_bundle(oci):
    line = create_fails(oci, oci.tmp / "no-such-bundle", "no-such-bundle", "no such file or directory")
    assert "config.json" in line


def test_config_is_a_directory(oci):
    b = oci.tmp / "dirbundle"
    (b / "config.json").mkdir(parents=True)
    create_fails(oci, b, "config.json")


def test_config_is_a_dangling_symlink(oci):
    b = oci.tmp / "linkbundle"
    b.mkdir()
    os.symlink("/nonexistent/config.json", b / "config.json")
    create_fails(oci, b, "config.json", "no such file or directory")


@pytest.mark.parametrize("raw", ["", "{", "{\"ociVersion\": \"1.0.0\",}", "[]", "null", "\xff"])
def test_invalid_json(oci, raw):
    b = bundle_with(oci, raw=raw)
    create_fails(oci, b, "config.json")


@pytest.mark.parametrize("mutate,path", [
    (set_args("sh"), "$.process.args"),
    (lambda c: c["process"]["user"].update(uid=-1), "$.process.user.uid"),
    (lambda c: c.update(ociVersion=7), "$.ociVersion"),
    (lambda c: c["linux"]["namespaces"].append({"type": "pid", "path": 3}), "$.linux.namespaces[6]"),
    (lambda c: c["mounts"][0].pop("destination"), "$.mounts[0]"),
    (lambda c: c["process"]["rlimits"][0].update(type="RLIMIT_BOGUS"), "$.process.rlimits[0].type"),
])
def test_schema_violation_names_the_json_path(oci, mutate, path):
    b = bundle_with(oci, mutate)
    create_fails(oci, b, "config.json", path)


def test_unknown_namespace_type(oci):
    b = bundle_with(oci, lambda c: c["linux"]["namespaces"].append({"type": "bogus"}))
    create_fails(oci, b, "$.linux.namespaces[6]", "bogus")


def test_namespace_listed_twice(oci):
    b = bundle_with(oci, lambda c: c["linux"]["namespaces"].append({"type": "pid"}))
    create_fails(oci, b, "$.linux.namespaces")


def test_unsupported_oci_version(oci):
    b = bundle_with(oci, lambda c: c.update(ociVersion="2.0.0"))
    create_fails(oci, b, "ociVersion")


def test_missing_rootfs(oci):
    b = bundle_with(oci, lambda c: c["root"].update(path="no-rootfs"))
    create_fails(oci, b, "$.root.path")


@pytest.mark.parametrize("cid", ["../x", "a/b", "", ".", "..", "x y", "a\nb"])
def test_bad_id(oci, cid):
    b = bundle_with(oci)
    before = os.listdir(oci.root) if os.path.isdir(oci.root) else []
    line = create_fails(oci, b, cid=cid)
    assert "invalid" in line and "id" in line
    after = os.listdir(oci.root) if os.path.isdir(oci.root) else []
    assert before == after
    assert not os.path.exists(os.path.join(oci.tmp, "x"))


@pytest.mark.parametrize("command", ["start", "state", "kill", "delete"])
def test_bad_id_in_other_commands(oci, command):
    r = oci.cmd(command, "../etc")
    assert_one_line_error(r, "invalid")


def test_existing_id(oci):
    b = bundle_with(oci, args=["sleep", "1000"], rootfs=True)
    cid = oci.new_id()
    r = oci.create("-b", b, cid)
    assert r.returncode == 0, r.stderr
    first = oci.state(cid)
    log = oci.tmp / "log.json"
    r2 = oci.create("-b", bundle_with(oci), cid, global_args=("--log", log, "--log-format", "json"))
    line = assert_one_line_error(r2, "already exists", cid)
    assert json_log_errors(log)[0]["msg"] in line
    assert oci.state(cid) == first          # the first one is untouched
    assert [p for p, _ in leftover_processes(oci)] == [first["pid"]]
    oci.ok("delete", cid)


def test_failing_mount(oci):
    b = bundle_with(oci, lambda c: c["mounts"].append(
        {"destination": "/x", "type": "nonexistentfs", "source": "none"}), rootfs=True)
    create_fails(oci, b, "/x", "nonexistentfs", "no such device")


def test_missing_bind_source(oci):
    b = bundle_with(oci, lambda c: c["mounts"].append(
        {"destination": "/x", "type": "bind", "source": "/no/such/source", "options": ["rbind"]}))
    create_fails(oci, b, "/no/such/source", "$.mounts[7]")


def test_failing_mount_late_in_the_plan(oci):
    """A failure after namespaces, cgroups and earlier mounts exist."""
    b = bundle_with(oci, lambda c: c["mounts"].append(
        {"destination": "/proc/sys/kernel/x", "type": "tmpfs", "source": "tmpfs"}), rootfs=True)
    create_fails(oci, b, "/proc/sys/kernel/x")


def test_failing_sysctl(oci):
    b = bundle_with(oci, lambda c: c["linux"].update(sysctl={"net.no.such.key": "1"}), rootfs=True)
    create_fails(oci, b, "/proc/sys/net/no/such/key")


@pytest.mark.parametrize("command", ["create", "run"])
def test_missing_executable(oci, command):
    b = bundle_with(oci, args=["no-such-command", "arg"], rootfs=True)
    create_fails(oci, b, 'exec: "no-such-command": executable file not found in $PATH', command=command)


def test_missing_executable_by_path(oci):
    b = bundle_with(oci, args=["/bin/no-such-command"], rootfs=True)
    create_fails(oci, b, "/bin/no-such-command", "no such file or directory")


@pytest.mark.parametrize("argv0", ["/noexec.sh", "noexec.sh"])
def test_permission_denied_executable(oci, argv0):
    def m(cfg):
        cfg["process"]["env"] = ["PATH=/"]
    b = bundle_with(oci, m, args=[argv0], files={"/noexec.sh": ("#!/bin/sh\necho hi\n", 0o644)},
                    rootfs=True)
    create_fails(oci, b, f'exec: "{argv0}": permission denied')


def test_directory_as_executable(oci):
    b = bundle_with(oci, args=["/etc"], rootfs=True)
    create_fails(oci, b, "/etc", "permission denied")


def test_bad_cgroups_path(oci):
    b = bundle_with(oci, lambda c: c["linux"].update(cgroupsPath="../../../../escape-" + oci.new_id()))
    create_fails(oci, b, "cgroupsPath")


def test_mappings_without_a_user_namespace(oci):
    def m(cfg):
        cfg["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 1000, "size": 1}]
        cfg["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 1000, "size": 1}]
    create_fails(oci, bundle_with(oci, m), "uidMappings")


def test_bad_uid_mapping_fails_cleanly(oci):
    def m(cfg):
        cfg["linux"]["namespaces"].append({"type": "user"})
        # two overlapping ranges: the kernel refuses the write
        cfg["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 10},
                                       {"containerID": 5, "hostID": 200000, "size": 10}]
        cfg["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 10}]
    create_fails(oci, bundle_with(oci, m), "uidMappings")


def test_hostname_without_uts_namespace(oci):
    b = bundle_with(oci, lambda c: c["linux"].update(
        namespaces=[n for n in c["linux"]["namespaces"] if n["type"] != "uts"]))
    create_fails(oci, b, "$.hostname")


def test_text_log_format(oci):
    b = oci.tmp / "missing"
    log = oci.tmp / "log.txt"
    r = oci.create("-b", b, oci.new_id(), global_args=("--log", log, "--log-format", "text"))
    assert_one_line_error(r)
    text = log.read_text()
    assert "level=error" in text and "missing" in text


def test_errors_append_to_the_log(oci):
    log = oci.tmp / "log.json"
    log.write_text(json.dumps({"level": "info", "msg": "earlier", "time": "x"}) + "\n")
    for _ in range(2):
        r = oci.cmd("state", oci.new_id(), global_args=("--log", log, "--log-format", "json"))
        assert_one_line_error(r, "does not exist")
    lines = log.read_text().splitlines()
    assert len(lines) == 3 and json.loads(lines[0])["msg"] == "earlier"
    assert [json.loads(l)["level"] for l in lines[1:]] == ["error", "error"]


def test_corrupt_state(oci):
    cid = oci.new_id()
    os.makedirs(os.path.join(oci.root, cid))
    with open(os.path.join(oci.root, cid, "state.json"), "w") as f:
        f.write("{not json")
    assert_one_line_error(oci.cmd("state", cid), cid)
    assert oci.ok("list", "-q").stdout == ""
    assert_one_line_error(oci.cmd("delete", cid))
    oci.ok("delete", "--force", cid)
    assert not os.path.exists(os.path.join(oci.root, cid))


def test_leftover_dir_without_state(oci):
    """A create that died before writing its state leaves a bare dir:
    `delete --force` clears it, as runc does."""
    cid = oci.new_id()
    os.makedirs(os.path.join(oci.root, cid))
    r = oci.cmd("state", cid)
    assert_one_line_error(r, "does not exist")
    oci.ok("delete", "--force", cid)
    assert not os.path.exists(os.path.join(oci.root, cid))


@pytest.mark.parametrize("variant", ["joined-net", "userns", "timens"])
def test_failing_mount_in_other_set_ups(oci, variant):
    """The same failure through an intermediate process (a joined
    namespace), with a user namespace, with a time namespace."""
    import subprocess
    from ocihelpers import add_userns, set_ns
    holder = subprocess.Popen(["unshare", "--net", "sleep", "1000"])
    try:
        def m(cfg):
            cfg["mounts"].append({"destination": "/tmp", "type": "nonexistentfs", "source": "none"})
            if variant == "joined-net":
                set_ns(cfg, "network", f"/proc/{holder.pid}/ns/net")
            elif variant == "userns":
                add_userns(cfg, oci=oci)
            else:
                set_ns(cfg, "time")
                cfg["linux"]["timeOffsets"] = {"boottime": {"secs": 100}}
        cfg = config(["true"])
        m(cfg)
        b = oci.bundle(cfg)
        create_fails(oci, b, "/tmp", "nonexistentfs")
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.parametrize("sysctl,needle", [
    ({"vm.swappiness": "60"}, "not in a separate kernel namespace"),
    ({"net/../../../tmp/x": "1"}, "not a sysctl name"),
    ({"kernel.hostname": "other"}, "conflicts with the OCI 'hostname' field"),
    ({"kernel.hostname": "busybox"}, "conflicts with the OCI 'hostname' field"),
])
def test_sysctl_runc_refuses(oci, sysctl, needle):
    """Sysctls that would change the host, escape /proc/sys, or fight a
    config field are refused before anything runs."""
    b = bundle_with(oci, lambda c: c["linux"].update(sysctl=sysctl))
    create_fails(oci, b, "$.linux.sysctl[", needle)


def test_hostname_sysctl_is_refused_without_a_hostname_field(oci):
    """runc 1.1.5 refuses kernel.hostname whenever there is a uts
    namespace, hostname field or not (it has one: `hostname`)."""
    def m(cfg):
        cfg.pop("hostname", None)
        cfg["linux"]["sysctl"] = {"kernel.hostname": "x"}
    create_fails(oci, bundle_with(oci, m), "$.linux.sysctl[", "conflicts with the OCI 'hostname' field")


def test_sysctl_of_the_host_net_namespace_is_refused(oci):
    def m(cfg):
        cfg["linux"]["namespaces"] = [n for n in cfg["linux"]["namespaces"] if n["type"] != "network"]
        cfg["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1"}
    create_fails(oci, bundle_with(oci, m), "net.ipv4.ip_forward")


def test_rlimit_soft_above_hard(oci):
    b = bundle_with(oci, lambda c: c["process"].update(
        rlimits=[{"type": "RLIMIT_NOFILE", "soft": 2048, "hard": 1024}]), rootfs=True)
    create_fails(oci, b, "rlimit")


def test_hostname_too_long(oci):
    b = bundle_with(oci, lambda c: c.update(hostname="h" * 100), rootfs=True)
    create_fails(oci, b, "hostname")
