"""The config/state schemas, the validator compiled from the config schema,
and its agreement with the jsonschema package run on the same schema."""

import copy
import importlib.util
import json
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ociruntime import validate as V
from ociruntime._config_validator import validate as compiled
from ociruntime.errors import ConfigError, OciError
from specdata import SPEC_DIR

REPO = Path(__file__).resolve().parents[1]
SPEC = SPEC_DIR   # tests/specdata.py: the vendored copy or $OCIRUNTIME_SPEC_DIR


def spec_files(kind, verdict):
    """The spec's schema/test/<kind>/<verdict>/*.json, as pytest params."""
    d = SPEC / "schema" / "test" / kind / verdict
    assert d.is_dir(), f"OCI runtime-spec test documents not found at {d} (tests/specdata.py)"
    return [pytest.param(p, id=p.name) for p in sorted(d.glob("*.json"))]


def load(path):
    return json.loads(path.read_text())


def reference(doc):
    """(path, message) from jsonschema, or None."""
    return V._reference_error("config.schema.json", doc)


def reference_error_count(doc):
    return sum(1 for _ in V._reference_validator("config.schema.json").iter_errors(doc))


# --- The spec's own test documents -------------------------------------------

@pytest.mark.parametrize("path", spec_files("config", "good"))
def test_good_configs_are_accepted(path):
    doc = load(path)
    assert compiled(doc) is None
    V.validate_config(doc)
    V.validate_config_reference(doc)


@pytest.mark.parametrize("path", spec_files("config", "bad"))
def test_bad_configs_are_rejected(path):
    if path.name == "invalid-json.json":
        with pytest.raises(json.JSONDecodeError):
            load(path)
        return
    doc = load(path)
    assert compiled(doc) is not None
    with pytest.raises(ConfigError):
        V.validate_config(doc)
    with pytest.raises(ConfigError):
        V.validate_config_reference(doc)


@pytest.mark.parametrize("path", spec_files("state", "good"))
def test_good_states_are_accepted(path):
    V.validate_state(load(path))


@pytest.mark.parametrize("path", spec_files("state", "bad"))
def test_bad_states_are_rejected(path):
    try:
        doc = load(path)
    except json.JSONDecodeError:
        assert path.name == "invalid-json.json"
        return
    with pytest.raises(OciError):
        V.validate_state(doc)


# --- Compiled validator == jsonschema, on mutations of the good configs ------

def _nodes(doc, path=()):
    yield path, doc
    items = doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else ()
    for k, v in items:
        yield from _nodes(v, path + (k,))


def _replace(doc, path, value):
    doc = copy.deepcopy(doc)
    if not path:
        return value
    parent = doc
    for k in path[:-1]:
        parent = parent[k]
    if value is _DELETE:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return doc


_DELETE = object()


def _variants(value):
    """Wrong (and a few right) values to put where `value` is."""
    if isinstance(value, bool):
        return ["true", 1, None]
    if isinstance(value, int):
        return [-1, 2**31, 2**32, 2**63, 2**64, -(2**63) - 1, 1.0, 1.5, True, str(value), None]
    if isinstance(value, str):
        return ["", "bogus", value + "\n", value.lower(), 7, None, [value]]
    if isinstance(value, list):
        return [[], {}, "x", value + [None], value + [{}]]
    if isinstance(value, dict):
        return [[], "x", 0, dict(value, **{"x-unknown-key": 1}), {}]
    return [{}]


def mutations(doc):
    for path, value in _nodes(doc):
        if path:
            yield path, _DELETE
        for v in _variants(value):
            yield path, v


TARGETED = [
    (("ociVersion",), v) for v in [
        "2.0.0", "0.9", "1.4.0", "1.3", "v1.0.0", "1.0", "", "1.0.0-", "01.0.0", "1.00.0",
        "1.0.0\n", "1.0.2-dev", "1.3.0+dev", "1.2.0-rc.1", "0.5.0-dev", "1.3.99", "1.1.0-rc.1+g1a2b"]
] + [
    (("linux", "namespaces", 0, "type"), v) for v in ["foo", "net", "time", "PID", "cgroup"]
] + [
    (("process", "user", "uid"), v) for v in [-1, 4294967296, 4294967295, 0.0, 1e3, False]
] + [
    (("process", "rlimits", 0, "type"), v) for v in ["RLIMIT_nofile", "RLIMIT_", "RLIMIT_AS", "X"]
] + [
    (("hooks", "poststart", 0, "timeout"), v) for v in [0, 1, -5]
] + [
    (("annotations", ""), "empty key"), (("annotations", "k"), 1),
    (("linux", "seccomp", "syscalls", 0, "names"), []),
    (("linux", "devices", 0, "type"), "x"),
    (("linux", "resources", "devices", 1, "access"), "rwx"),
    (("linux", "resources", "hugepageLimits", 0, "pageSize"), "1GB"),
    (("linux", "resources", "hugepageLimits", 0, "pageSize"), "02MB"),
    (("linux", "memoryPolicy"), {"nodes": "0-3"}),
    (("linux", "memoryPolicy"), {"mode": "MPOL_BIND", "nodes": "0-3"}),
    (("linux", "personality"), {"domain": "LINUX64"}),
    (("linux", "intelRdt"), {"memBwSchema": "MB:0=20;1=70"}),
    (("linux", "intelRdt"), {"memBwSchema": "MB:0=20\n1=70"}),
    (("process", "execCPUAffinity"), {"initial": "0-3,7", "final": "a"}),
    (("process", "scheduler"), {"policy": "SCHED_RR", "flags": ["SCHED_FLAG_BOGUS"]}),
    (("process", "ioPriority"), {"class": "IOPRIO_CLASS_RT", "priority": 2**31}),
    (("linux", "resources", "blockIO", "throttleReadBpsDevice", 0), {"major": 8, "minor": 0}),
    (("linux", "timeOffsets", "boottime", "nanosecs"), -1),
    (("freebsd",), {"jail": {"ip4": "disable", "vnet": "inherit"}}),
    (("zos",), {"namespaces": [{"type": "user"}]}),
    (("windows",), []), (("solaris",), {"anything": 1}),
]


def _spec_example():
    return load(SPEC / "schema" / "test" / "config" / "good" / "spec-example.json")


def _check_agreement(cases):
    """Both validators agree on validity; the path (and message) too when
    jsonschema sees exactly one error, so that "first" is unambiguous."""
    disagreements = []
    for doc, label in cases:
        mine, ref = compiled(doc), reference(doc)
        if (mine is None) != (ref is None):
            disagreements.append((label, mine, ref))
        elif mine is not None and reference_error_count(doc) == 1:
            same_message = mine[1] == ref[1] or mine[1].endswith("...") or len(ref[1]) >= 200
            if mine[0] != ref[0] or not same_message:
                disagreements.append((label, mine, ref))
    assert not disagreements, "\n".join(map(repr, disagreements[:20]))


@pytest.mark.parametrize("path", spec_files("config", "good"))
def test_compiled_matches_jsonschema_on_mutations(path):
    doc = load(path)
    every = list(mutations(doc))
    # A deterministic sample keeps the run short; small configs are done whole.
    sample = random.Random(path.name).sample(every, min(len(every), 120))
    cases = [(_replace(doc, p, v), (path.name, p, v)) for p, v in sample]
    assert len(cases) >= min(len(every), 120)
    _check_agreement(cases)


def test_compiled_matches_jsonschema_on_targeted_mutations():
    doc = _spec_example()
    doc["linux"]["memoryPolicy"] = {"mode": "MPOL_DEFAULT"}
    cases = []
    for path, value in TARGETED:
        mutated = copy.deepcopy(doc)
        parent = mutated
        for k in path[:-1]:
            parent = parent.setdefault(k, {}) if isinstance(parent, dict) else parent[k]
        parent[path[-1]] = value
        cases.append((mutated, (path, value)))
    _check_agreement(cases)


@pytest.mark.parametrize("version,ok", [
    ("1.0.0", True), ("1.3.0", True), ("1.0.2-dev", True), ("1.3.0+dev", True),
    ("0.5.0-dev", True), ("2.0.0", False), ("0.9", False), ("1.4.0", False), ("1.0.0\n", False),
])
def test_oci_version(version, ok):
    doc = {"ociVersion": version}
    assert (compiled(doc) is None) == ok
    assert (reference(doc) is None) == ok


# --- Error reporting ---------------------------------------------------------

def test_error_names_json_path_on_one_line():
    doc = {"ociVersion": "1.3.0", "linux": {"namespaces": [
        {"type": "pid"}, {"type": "mount"}, {"type": "foo\nbar"}]}}
    with pytest.raises(ConfigError) as exc:
        V.validate_config(doc, source="/b/config.json")
    msg = str(exc.value)
    assert msg.startswith("/b/config.json: $.linux.namespaces[2].type: 'foo\\nbar' is not one of [")
    assert "\n" not in msg
    with pytest.raises(ConfigError) as exc:
        V.validate_config_reference(doc, source="/b/config.json")
    assert str(exc.value) == msg


@pytest.mark.parametrize("doc,path,message", [
    ({}, "$", "'ociVersion' is a required property"),
    ([], "$", "[] is not of type 'object'"),
    ({"ociVersion": "1.0.0", "process": {"cwd": "/", "user": {"uid": 1.0}}},
     "$.process.user.uid", "1.0 is not of type 'integer'"),
    ({"ociVersion": "1.0.0", "process": {"cwd": "/", "user": {"gid": True}}},
     "$.process.user.gid", "True is not of type 'integer'"),
    ({"ociVersion": "1.0.0", "linux": {"uidMappings": [{"containerID": 0, "hostID": -1, "size": 1}]}},
     "$.linux.uidMappings[0].hostID", "-1 is less than the minimum of 0"),
    ({"ociVersion": "1.0.0", "linux": {"sysctl": {"net.ipv4.ip_forward": 1}}},
     "$.linux.sysctl['net.ipv4.ip_forward']", "1 is not of type 'string'"),
    ({"ociVersion": "1.0.0", "process": {"args": ["sh"]}}, "$.process", "'cwd' is a required property"),
    ({"ociVersion": "1.0.0", "annotations": {"a": "b", "c": "d" * 100}, "hostname": ["x" * 100]},
     "$.hostname", "['" + "x" * 59 + "... is not of type 'string'"),
])
def test_error_messages(doc, path, message):
    assert compiled(doc) == (path, message)


def test_json_path():
    assert V.json_path([]) == "$"
    assert V.json_path(["linux", "sysctl", "net.ipv4.ip_forward", 3]) == \
        "$.linux.sysctl['net.ipv4.ip_forward'][3]"


def test_unknown_properties_are_ignored():
    # config.md, Extensibility: runtimes MUST NOT error on unknown properties.
    doc = {"ociVersion": "1.3.0", "future": {"x": 1}, "linux": {"newThing": [1]},
           "process": {"cwd": "/", "user": {"uid": 0, "gid": 0, "sid": "x"}}}
    assert compiled(doc) is None
    assert reference(doc) is None


def test_state_schema():
    good = {"ociVersion": "1.3.0", "id": "c1", "status": "created", "pid": 42, "bundle": "/b"}
    V.validate_state(good)
    V.validate_state({**{k: v for k, v in good.items() if k != "pid"}, "status": "stopped"})
    for bad in ({**good, "status": "paused"}, {**good, "pid": -1}, {**good, "id": ""},
                {k: v for k, v in good.items() if k != "pid"},
                {k: v for k, v in good.items() if k != "bundle"}):
        with pytest.raises(OciError, match=r"^state\.json: \$"):
            V.validate_state(bad)


# --- The compiler and the generated module -----------------------------------

def _compiler():
    spec = importlib.util.spec_from_file_location("compile_schema", REPO / "tools" / "compile_schema.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_files_are_up_to_date():
    r = subprocess.run([sys.executable, "tools/compile_schema.py", "--check"], cwd=REPO,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_generation_is_deterministic():
    c = _compiler()
    schema = json.loads((REPO / "schemas" / "config.schema.json").read_text())
    assert c.generate(schema) == c.generate(copy.deepcopy(schema))


@pytest.mark.parametrize("pattern", [
    r"^(0\.(0|[1-9][0-9]*)|1\.[0-3])\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$",
    r"^RLIMIT_[A-Z]+$", r"^[0-9, -]*$", r"^[1-9][0-9]*[KMG]B$", r"^MB:[^\n]*$", r"^[rwm]*$",
    r"ab*c", r"^a{2,3}(b|cd)?$", r"x$", r"^[^a-c]+.$", r"(a|b)*abb", r"^a*b*$", r"^\d{2}\w\s?$",
])
def test_pattern_dfa_matches_re(pattern):
    c = _compiler()
    dfa = c.compile_pattern(pattern)
    # ECMA `$` is the very end: Python's \Z.
    python = re.compile(pattern[:-1] + r"\Z" if pattern.endswith("$") else pattern, re.ASCII)
    rnd = random.Random(pattern)
    alphabet = "abcdxMBRLIMT_:KG0129.-+, \n\u00e9"
    samples = ["", "1.0.0", "1.3.0-rc.1+x", "RLIMIT_NOFILE", "2MB", "MB:0=20", "abb", "aab"]
    samples += ["".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 8))) for _ in range(400)]
    for s in samples:
        assert c.dfa_match(dfa, s) == bool(python.search(s)), (pattern, s)


def test_compiler_keywords_the_config_schema_does_not_use():
    # Supported but unused by config.schema.json: check them against jsonschema.
    import jsonschema

    schema = {"type": "object", "additionalProperties": False, "properties": {
        "any": {"anyOf": [{"type": "string", "minLength": 2}, {"type": "integer", "maximum": 3}]},
        "one": {"oneOf": [{"type": ["integer", "null"]}, {"type": "integer", "minimum": 0}]},
        "not": {"not": {"const": "x"}},
        "cond": {"if": {"required": ["a"]}, "then": {"required": ["b"]}, "else": {"minItems": 1}},
        "all": {"allOf": [{"type": "number", "minimum": 0}, {"maximum": 1.5}]},
        "tuple": {"type": "array", "items": {"type": "boolean"}},
    }}
    namespace = {}
    exec(_compiler().generate(schema), namespace)
    cls = jsonschema.Draft202012Validator
    checker = cls.TYPE_CHECKER.redefine(
        "integer", lambda _c, v: isinstance(v, int) and not isinstance(v, bool))
    ref = jsonschema.validators.extend(cls, type_checker=checker)(schema)
    values = [None, True, 0, -1, 2, 5, 1.5, 2.5, "", "x", "xy", [], [True], [1], {}, {"a": 1},
              {"a": 1, "b": 2}]
    for key in schema["properties"]:
        for value in values:
            doc = {key: value}
            assert (namespace["validate"](doc) is None) == ref.is_valid(doc), doc
    assert namespace["validate"]({"other": 1}) == ("$", "Additional properties are not allowed "
                                                        "('other' was unexpected)")


def test_compiler_rejects_what_it_does_not_support():
    c = _compiler()
    for schema in ({"patternProperties": {"a": {}}}, {"enum": [1]}, {"$ref": "other.json"},
                   {"pattern": "(?=a)"}, {"pattern": r"\1"}):
        with pytest.raises(c.SchemaError):
            c.generate(schema)


def test_light_imports():
    # create imports these on every run: neither may pull in re or jsonschema.
    code = ("import sys, ociruntime._config_validator, ociruntime.validate; "
            "print(sorted(m for m in ('re', 'jsonschema', 'json') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-S", "-c", code], cwd=REPO, capture_output=True,
                       text=True, check=True)
    assert r.stdout.strip() == "[]"
