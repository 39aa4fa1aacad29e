"""cffi builder for ociruntime._core (setup.py's cffi_modules points here).

API mode: the runtime's C files in csrc/ are compiled into one extension
module (hooks, idmapped trees, cgroup2 device programs, the subreaper).
The cdef is the public part of core.h, kept in the one place it lives.
"""
import os
import re

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))
# What the runtime itself calls in C; the init's code is ociruntime-init's
# (build_exe.py), so importing this module maps neither it nor libseccomp.
SOURCES = ["hooks.c", "idmap.c", "bpf_devices.c", "subreaper.c"]


def _public_cdef():
    # cffi cannot read preprocessor lines: keep the enums, struct and protos.
    with open(os.path.join(HERE, "core.h")) as f:
        text = f.read()
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return "\n".join(l for l in text.splitlines() if not l.startswith("#"))


ffibuilder = FFI()
ffibuilder.cdef(_public_cdef())
ffibuilder.set_source(
    "ociruntime._core",
    '#include "core.h"',
    sources=[os.path.relpath(os.path.join(HERE, s)) for s in SOURCES],
    include_dirs=[os.path.relpath(HERE)],
    extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-std=gnu11"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
