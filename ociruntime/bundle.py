"""The module bundle: every module of the package compiled into one file,
which bin/ociruntime-py reads through a finder of its own instead of
Python's path finder (issue 16: the import system was two thirds of
`run`'s Python time, most of it finding and opening one .pyc per module).

This module writes the bundle; the launcher reads it (the two agree on
the layout below).  It lives beside the launcher's bytecode, in
bin/__pycache__/ociruntime.bundle: one per environment, written by the
interpreter that runs the command, so a source tree shared by two
environments (an editable install) gets a bundle in each.

Layout (integers little-endian):

    magic     importlib's MAGIC_NUMBER (4 bytes): the bytecode format
    inode     the inode of the interpreter that wrote it (4 bytes): never
              run by another Python (the launcher's .pyc header does the same)
    version   FORMAT (4 bytes)
    length    of the index (4 bytes)
    index     marshal of (root, size, {module: (path, is_package, mtime_ns,
              size, offset, length)}, {extension: (path, mtime_ns, size)}):
              root is the directory holding the package, size the bundle's
              (a truncated one is not used), path each module's source
              relative to it, offset from the end of the index; extensions
              are C modules of the standard library that the package
              imports (EXTENSIONS), found where the path finder found them
    code      each module's code object, marshalled on its own

The launcher trusts an entry only while its source has the recorded mtime
(in ns) and size: one stat per module loaded, as Python's own cache check.
An edited, new or removed module is imported the normal way, and at the
end of that call the launcher runs write() in a Python of its own to bring
the bundle up to date (only changed modules are compiled again).

Code is compiled with optimize=2 (no docstrings: nothing in the package
reads __doc__ or relies on an assert), in a Python started with
-X no_debug_ranges (no column tables): the code create loads takes 640 kB
of memory instead of 714 kB.  Each code object keeps its file name and
line table, so tracebacks name the source file and line.
"""
import marshal
import os

from _frozen_importlib_external import MAGIC_NUMBER

# C modules of the standard library the package imports, which some
# builds make shared objects (lib-dynload): create's `_json` cost 0.1 ms
# of path search on every call.
EXTENSIONS = ("_json", "fcntl", "select", "termios", "array")
NAME = "ociruntime.bundle"
FORMAT = 2   # bin/ociruntime-py's _BUNDLE_FORMAT: the launcher reads this layout
HEADER = 16
PACKAGE = "ociruntime"


def header(interpreter_inode, index_length):
    return MAGIC_NUMBER + b"".join(
        (n & 0xFFFFFFFF).to_bytes(4, "little") for n in (interpreter_inode, FORMAT, index_length))


def parse(data, interpreter_inode):
    """(root, entries, where the code starts) of a bundle this interpreter
    wrote, else None.  An entry's offset counts from where the code starts."""
    n = int.from_bytes(data[12:HEADER], "little")
    if len(data) < HEADER + n or data[:HEADER] != header(interpreter_inode, n):
        return None
    try:
        root, size, entries, _ = marshal.loads(data[HEADER:HEADER + n])
    except (ValueError, EOFError, TypeError):
        return None
    return (root, entries, HEADER + n) if size == len(data) else None


def sources(root):
    """{module name: source path relative to root} of the package's modules."""
    found = {}
    top = os.path.join(root, PACKAGE)
    for dirpath, dirnames, filenames in os.walk(top):
        # Only packages: a folder without __init__.py (schemas/) holds no modules.
        dirnames[:] = sorted(d for d in dirnames
                             if os.path.isfile(os.path.join(dirpath, d, "__init__.py")))
        pkg = os.path.relpath(dirpath, root).replace(os.sep, ".")
        for name in sorted(filenames):
            if name.endswith(".py") and name[:-3].isidentifier():
                mod = pkg if name == "__init__.py" else f"{pkg}.{name[:-3]}"
                found[mod] = os.path.relpath(os.path.join(dirpath, name), root)
    return found


def extensions():
    """{name: (path, mtime_ns, size)} of the EXTENSIONS that are shared
    objects here, where this interpreter's path finder finds them."""
    from importlib.machinery import ExtensionFileLoader, PathFinder
    found = {}
    for name in EXTENSIONS:
        spec = PathFinder.find_spec(name)
        if spec is not None and isinstance(spec.loader, ExtensionFileLoader):
            st = os.stat(spec.origin)
            found[name] = (spec.origin, st.st_mtime_ns, st.st_size)
    return found


def _reusable(path, root, interpreter_inode):
    """{module: (entry, code)} of an earlier bundle of the same tree, so
    that only changed modules are compiled again."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return {}
    got = parse(data, interpreter_inode)
    if got is None or got[0] != root:
        return {}
    _, entries, base = got
    return {m: (e, data[base + e[4]:base + e[4] + e[5]]) for m, e in entries.items()}


def build(root, interpreter_inode, old_path=None):
    """The bundle's bytes for the package under root."""
    old = _reusable(old_path, root, interpreter_inode) if old_path else {}
    entries, blobs, offset = {}, [], 0
    for mod, rel in sources(root).items():
        src = os.path.join(root, rel)
        try:
            with open(src, "rb") as f:
                st = os.fstat(f.fileno())
                entry, code = old.get(mod, ((), b""))
                if entry[:4] != (rel, rel.endswith("__init__.py"), st.st_mtime_ns, st.st_size):
                    code = marshal.dumps(compile(f.read(), src, "exec", dont_inherit=True, optimize=2))
        except (OSError, SyntaxError, ValueError):
            continue   # not importable either: the normal import says why
        entries[mod] = (rel, rel.endswith("__init__.py"), st.st_mtime_ns, st.st_size, offset, len(code))
        blobs.append(code)
        offset += len(code)
    ext = extensions()
    # The index holds the bundle's size, which depends on the index's:
    # marshal writes an int of this range in 4 bytes, whatever its value.
    index = marshal.dumps((root, 0x7FFFFFFF, entries, ext))
    size = HEADER + len(index) + offset
    index = marshal.dumps((root, size, entries, ext))
    if HEADER + len(index) + offset != size:
        raise ValueError("the bundle's index changed size")
    return header(interpreter_inode, len(index)) + index + b"".join(blobs)


def write(path, root, interpreter_inode):
    """Write the bundle atomically (a reader sees the old file or the new
    one); quietly nothing when the folder is read-only."""
    data = build(root, interpreter_inode, old_path=path)
    tmp = f"{path}.{os.getpid()}"
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(tmp, "wb") as f:
            f.write(data)
        os.rename(tmp, path)
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        return False
    return True
