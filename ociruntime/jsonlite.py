"""JSON for the hot path, without importing the `json` package.

`import json` pulls in `re`, `enum`, `functools` and `collections`: about
10 ms of a command that should take 10 ms in all.  CPython's C accelerator
`_json` (which `json` itself uses) needs none of them.  The results are
byte for byte those of `json.loads`, `json.dumps(obj, separators=(",", ":"))`
and `json.dumps(obj, indent=2)`.  Anything unusual -- an error, a byte
order mark, UTF-16 -- goes to the `json` package, so its messages are kept.
"""
try:
    from _json import encode_basestring_ascii as _enc_str
    from _json import make_encoder as _make_encoder
    from _json import make_scanner as _make_scanner
except ImportError:   # not CPython: the json package
    _make_scanner = None

_WS = " \t\n\r"


class _Context:
    # The attributes _json.make_scanner reads (json.decoder.JSONDecoder's).
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = {"-Infinity": float("-inf"), "Infinity": float("inf"),
                      "NaN": float("nan")}.__getitem__
    memo = None


if _make_scanner is not None:
    _scan = _make_scanner(_Context())
    # markers=None: no cycle check, our documents are trees.
    _compact = _make_encoder(None, None, _enc_str, None, ":", ",", False, False, True)


def loads(raw):
    """json.loads of bytes (UTF-8) or str."""
    if _make_scanner is not None:
        try:
            s = raw.decode() if isinstance(raw, (bytes, bytearray)) else raw
            if not s.startswith("\ufeff"):
                start = len(s) - len(s.lstrip(_WS))
                obj, end = _scan(s, start)
                if len(s[end:].lstrip(_WS)) == 0:
                    return obj
        except (ValueError, StopIteration, TypeError, AttributeError, RecursionError,
                SystemError):   # _json raises this when json.decoder is not imported
            pass
    import json   # the slow path, for its verdict and its error message
    try:
        return json.loads(raw)
    except RecursionError:   # arrays or objects nested a thousand deep
        raise ValueError("nested too deeply") from None


def dumps(obj):
    """json.dumps(obj, separators=(",", ":"))."""
    if _make_scanner is None:
        import json
        return json.dumps(obj, separators=(",", ":"))
    try:
        return "".join(_compact(obj, 0))
    except TypeError:   # not serialisable: json's message
        import json
        return json.dumps(obj, separators=(",", ":"))


def dumps_pretty(obj, indent=2, _level=0):
    """json.dumps(obj, indent=2): what runc's `state` prints."""
    if isinstance(obj, dict) and obj:
        pad = "\n" + " " * (indent * (_level + 1))
        items = [pad + _key(k) + ": " + dumps_pretty(v, indent, _level + 1) for k, v in obj.items()]
        return "{" + ",".join(items) + "\n" + " " * (indent * _level) + "}"
    if isinstance(obj, (list, tuple)) and obj:
        pad = "\n" + " " * (indent * (_level + 1))
        items = [pad + dumps_pretty(v, indent, _level + 1) for v in obj]
        return "[" + ",".join(items) + "\n" + " " * (indent * _level) + "]"
    return dumps(obj)


def _key(k):
    # json.dumps turns int, float, bool and None keys into strings.
    if isinstance(k, str):
        return dumps(k)
    if k is True or k is False or k is None:
        return '"' + dumps(k) + '"'
    if isinstance(k, (int, float)):
        return '"' + dumps(k) + '"'
    import json
    return json.dumps({k: 0})   # raises json's TypeError
