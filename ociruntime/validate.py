"""Validate config.json and state documents against ociruntime's JSON schemas.

validate_config is the one `create` uses: the validator compiled from
schemas/config.schema.json by tools/compile_schema.py, builtins only.
The *_reference functions run the `jsonschema` package on the same schemas
(shipped in ociruntime/schemas/); they are for tests and `ociruntime validate`,
and import jsonschema only when called.

Every function but reference_errors raises on the first error, with a
one-line message "<source>: <json path>: <what is wrong>", and returns
None otherwise.  ociruntime/checks.py runs them and create's semantic
checks for `validate`.
"""

import os

from ociruntime._config_validator import validate as _compiled_validate
from ociruntime.errors import ConfigError, OciError

SCHEMA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "schemas")


def validate_config(doc, source="config.json"):
    error = _compiled_validate(doc)
    if error is not None:
        raise ConfigError(f"{source}: {error[0]}: {error[1]}")


def validate_config_reference(doc, source="config.json"):
    error = _reference_error("config.schema.json", doc)
    if error is not None:
        raise ConfigError(f"{source}: {error[0]}: {error[1]}")


def validate_state(doc, source="state.json"):
    error = _reference_error("state.schema.json", doc)
    if error is not None:
        raise OciError(f"{source}: {error[0]}: {error[1]}")


def json_path(parts):
    """$-rooted JSONPath of a sequence of member names and array indexes,
    spelled as the compiled validator spells it: $.linux.sysctl['net.ipv4.ip_forward']."""
    out = ["$"]
    for p in parts:
        if isinstance(p, int):
            out.append(f"[{p}]")
        else:
            out.append("." + p if p.isidentifier() else "[" + repr(p) + "]")
    return "".join(out)


_validators = {}


def _jsonschema():
    try:
        import jsonschema
    except ImportError:
        raise OciError("validate needs the jsonschema package: pip install 'ociruntime[validate]'") from None
    return jsonschema


def _reference_validator(name):
    if name not in _validators:
        import json

        jsonschema = _jsonschema()
        with open(os.path.join(SCHEMA_DIR, name), encoding="utf-8") as f:
            schema = json.load(f)
        cls = jsonschema.validators.validator_for(schema)
        cls.check_schema(schema)
        # JSON Schema calls 1.0 an integer; Go's encoding/json (runc) and our
        # compiled validator do not.  Make the reference agree with them.
        strict = cls.TYPE_CHECKER.redefine(
            "integer", lambda _checker, v: isinstance(v, int) and not isinstance(v, bool))
        _validators[name] = jsonschema.validators.extend(
            cls, {"pattern": _ecma_pattern}, type_checker=strict)(schema)
    return _validators[name]


def _ecma_pattern(validator, pattern, instance, schema):
    # JSON Schema patterns are ECMA-262, whose final `$` matches only at the
    # very end; Python's also matches before a trailing newline.
    import re

    python = pattern[:-1] + r"\Z" if pattern.endswith("$") and not pattern.endswith("\\$") else pattern
    if validator.is_type(instance, "string") and not re.search(python, instance):
        yield _jsonschema().ValidationError(f"{instance!r} does not match {pattern!r}")


def _reference_error(name, doc):
    """(json_path, message) of jsonschema's most relevant error, or None."""
    validator = _reference_validator(name)
    error = _jsonschema().exceptions.best_match(validator.iter_errors(doc))
    if error is None:
        return None
    return json_path(error.absolute_path), _one_line(error.message)


def reference_errors(name, doc):
    """[(json_path, message)] of every error jsonschema finds, in document
    order (for `validate`, which reports them all)."""
    out = []
    for error in _reference_validator(name).iter_errors(doc):
        # Of a oneOf/anyOf, the branch that went furthest says the most.
        best = _jsonschema().exceptions.best_match([error]) if error.context else error
        item = (json_path(best.absolute_path), _one_line(best.message))
        if item not in out:
            out.append(item)
    return sorted(out, key=lambda e: e[0])


def _one_line(message):
    message = message.replace("\n", " ")  # one line, whatever the value
    return message[:197] + "..." if len(message) > 200 else message
