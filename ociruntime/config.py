"""Reading config.json: parse, validate, resolve paths."""
import os

from ociruntime import jsonlite
from ociruntime.errors import ConfigError


def load(bundle):
    """The validated config of a bundle, with root.path made absolute."""
    path = os.path.join(bundle, "config.json")
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise ConfigError(f"{path}: {e.strerror.lower()}") from None
    cfg = parse(raw, path)
    check_root(cfg, bundle, path)
    return cfg


def check_root(cfg, bundle, source):
    """root.path names a directory (made absolute in cfg)."""
    root = cfg.get("root") or {}
    if not root.get("path"):
        raise ConfigError(f"{source}: $.root.path: required on Linux")
    rootfs = os.path.join(bundle, root["path"])
    if not os.path.isdir(rootfs):
        raise ConfigError(f"{source}: $.root.path: {rootfs} is not a directory")
    root["path"] = os.path.realpath(rootfs)


def parse(raw, path, validate=True):
    try:
        cfg = jsonlite.loads(raw)
    except ValueError as e:
        raise ConfigError(f"{path}: invalid JSON: {e}") from None
    if not isinstance(cfg, dict):
        raise ConfigError(f"{path}: $: must be a JSON object")
    check_strings(raw, cfg, path)
    if validate:
        from ociruntime.validate import validate_config
        validate_config(cfg, path)
    return cfg


def check_strings(raw, doc, source):
    """Every string of a config (or process.json, --resources) goes to C
    as a C string and to the kernel as UTF-8: a NUL byte would cut it
    short, and a lone surrogate ("\\ud800") has no UTF-8 at all.  Either
    is refused here, named by its JSON path, before anything is made.
    Only a document that could hold one is walked: one with a \\u escape,
    or not plain ASCII (UTF-16, or surrogates as raw bytes, which json
    lets through)."""
    if isinstance(raw, str):
        raw = raw.encode(errors="surrogatepass")
    if b"\\u" not in raw and raw.isascii() and b"\0" not in raw:
        return
    todo = [((), doc)]
    while todo:
        parts, v = todo.pop()
        if isinstance(v, str):
            _check_string(v, parts, source)
        elif isinstance(v, dict):
            for k, x in v.items():
                _check_string(k, parts, source, key=True)
                todo.append(((*parts, k), x))
        elif isinstance(v, list):
            todo.extend(((*parts, i), x) for i, x in enumerate(v))


def _check_string(s, parts, source, key=False):
    if "\0" in s:
        problem = "must not contain a NUL byte (\\u0000)"
    else:
        try:
            s.encode()
            return
        except UnicodeEncodeError as e:
            problem = f"a lone surrogate (\\u{ord(s[e.start]):04x}) is not valid Unicode"
    # The path spelled as the validator spells it: a key with a line break
    # or a quote comes out through repr(), so the error stays one line.
    from ociruntime.validate import json_path
    raise ConfigError(f"{source}: {json_path(parts)}{' (a key)' if key else ''}: {problem}")
