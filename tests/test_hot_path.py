"""The hot path stays lean: what create, start, state, kill and delete
import (no timing: the modules Python reports with PYTHONPROFILEIMPORTTIME),
and jsonlite, which stands in for `json` there, agrees with `json`."""
import json
import math
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ociruntime import jsonlite
from conftest import busybox_config

# Each of these costs milliseconds (re, enum, typing pull in a dozen
# modules) or is a feature's heavy dependency.  A module the default
# config does not need must be imported inside the function using it.
# cffi's backend (the C core's cffi module: hooks, idmapped mounts, v2
# device programs) and _socket (the init's channel is pipes) each cost a
# sizeable part of create's peak RSS: ociruntime-init does the rest.
FORBIDDEN = {"argparse", "logging", "subprocess", "jsonschema", "pyroute2", "re", "enum",
             "json", "typing", "shutil", "signal", "threading", "tempfile", "inspect",
             "dataclasses", "site", "_cffi_backend", "_socket"}


def _imported(result):
    mods = set()
    for line in result.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            name = line.rsplit("|", 1)[1].strip()
            if name != "imported package":
                mods.add(name)
    assert mods, f"no import report in stderr: {result.stderr[-500:]}"
    return mods


# What create (and so run) loads of the package for the default config,
# each one unmarshalled and run on every call (issue 16): a module joins
# this list only when create cannot do without it.
CREATE_MODULES = {
    "ociruntime", "ociruntime.cli", "ociruntime.log", "ociruntime.errors", "ociruntime.container",
    "ociruntime.state", "ociruntime.jsonlite", "ociruntime.namespaces", "ociruntime.config",
    "ociruntime.validate", "ociruntime._config_validator", "ociruntime.init", "ociruntime.mounts",
    "ociruntime.mount_attrs", "ociruntime.plan", "ociruntime.process", "ociruntime.capabilities",
    "ociruntime.core", "ociruntime.imagefile", "ociruntime.exec_template", "ociruntime.cgroups",
    "ociruntime.cgroups.resources", "ociruntime.cgroups.devices",
}


def _check(result, what):
    bad = sorted(_imported(result) & FORBIDDEN)
    assert not bad, f"`{what}` imports {bad}: import them where they are used"
    ours = {m for m in _imported(result) if m.partition(".")[0] == "ociruntime"}
    # ociruntime.bundle: when the call found the module bundle stale (the
    # first after an edit), it brings it up to date, after its own work.
    extra = sorted(ours - CREATE_MODULES - {"ociruntime.bundle"}
                   - ({"ociruntime.execute"} if what == "exec" else set()))
    assert not extra, f"`{what}` imports {extra}: import them where they are used"


# The Python side of each command (OCIRUNTIME_NO_FAST: not the C front
# end's answer), which every fallback of the front end still runs.
ENV = dict(os.environ, PYTHONPROFILEIMPORTTIME="1", OCIRUNTIME_NO_FAST="1")


def test_lifecycle_imports(oci):
    cid = oci.new_id()
    b = oci.bundle(args=["/bin/sleep", "30"])
    r = oci.create("-b", b, cid, env=ENV)
    assert r.returncode == 0, r.stderr
    _check(r, "create")
    for args in (("state", cid), ("start", cid), ("exec", cid, "/bin/true"), ("kill", cid, "KILL")):
        r = oci.cmd(*args, env=ENV)
        assert r.returncode == 0, r.stderr
        _check(r, args[0])
    r = oci.cmd("delete", "--force", cid, env=ENV)
    assert r.returncode == 0, r.stderr
    _check(r, "delete")


def test_state_of_missing_container_imports(oci):
    r = oci.cmd("state", "no-such-container", env=ENV)
    assert r.returncode == 1
    _check(r, "state")


def test_state_output_matches_json_dumps(oci):
    cid = oci.new_id()
    cfg = busybox_config(["/bin/sleep", "10"])
    cfg["annotations"] = {"org.example/é": "x\ny", "b": ""}
    r = oci.create("-b", oci.bundle(cfg), cid)
    assert r.returncode == 0, r.stderr
    out = oci.ok("state", cid).stdout
    assert out == json.dumps(json.loads(out), indent=2) + "\n"
    oci.ok("delete", "--force", cid)


# -- jsonlite against json ------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text()
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(), kids, max_size=4),
    max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_jsonlite_round_trip_matches_json(v):
    assert jsonlite.dumps(v) == json.dumps(v, separators=(",", ":"))
    assert jsonlite.dumps_pretty(v) == json.dumps(v, indent=2)
    text = json.dumps(v, indent=1)
    assert jsonlite.loads(text) == json.loads(text)
    assert jsonlite.loads(text.encode()) == json.loads(text.encode())


@pytest.mark.parametrize("text", ["", " ", "{", "{} x", "[1,]", "nul", '{"a":1}}', b"\xff",
                                  '{"a": 1, }', "\ufeff{}", "[1] [2]"])
def test_jsonlite_errors_are_json_errors(text):
    with pytest.raises(ValueError) as want:
        json.loads(text)
    with pytest.raises(ValueError) as got:
        jsonlite.loads(text)
    assert type(got.value) is type(want.value) and str(got.value) == str(want.value)


def test_jsonlite_specials():
    assert math.isnan(jsonlite.loads("[NaN]")[0])
    assert jsonlite.loads(b' {"a": [Infinity, -Infinity]}\n') == {"a": [math.inf, -math.inf]}
    assert jsonlite.loads('{"a": 1}'.encode("utf-16")) == {"a": 1}
    assert jsonlite.dumps_pretty({1: [], None: {}, "é": "\u2028"}) == \
        json.dumps({1: [], None: {}, "é": "\u2028"}, indent=2)
    with pytest.raises(TypeError):
        jsonlite.dumps({"a": object()})
