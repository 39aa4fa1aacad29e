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
    root = cfg.get("root") or {}
    if not root.get("path"):
        raise ConfigError(f"{path}: $.root.path: required on Linux")
    rootfs = os.path.join(bundle, root["path"])
    if not os.path.isdir(rootfs):
        raise ConfigError(f"{path}: $.root.path: {rootfs} is not a directory")
    root["path"] = os.path.realpath(rootfs)
    return cfg


def parse(raw, path, validate=True):
    try:
        cfg = jsonlite.loads(raw)
    except ValueError as e:
        raise ConfigError(f"{path}: invalid JSON: {e}") from None
    if not isinstance(cfg, dict):
        raise ConfigError(f"{path}: $: must be a JSON object")
    if validate:
        from ociruntime.validate import validate_config
        validate_config(cfg, path)
    return cfg
