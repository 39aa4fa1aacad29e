"""Build and install ociruntime: the Python package, its cffi C core, and
two small C executables (csrc/build_exe.py):

  bin/ociruntime      the command: a C front end that answers state, start,
                      kill, delete and exec itself when the container allows
                      it and runs the Python CLI (bin/ociruntime-py)
                      otherwise (links libjson-c for exec's process.json)
  ociruntime/ociruntime-init
                      the container init (csrc/spawn.c): create and exec
                      start it with the plan, and it clones the init

The version lives in one place, ociruntime/__init__.py (read here without
importing the package); CHANGELOG.md has an entry for each release.
"""
import os
import re
import sys

from setuptools import find_packages, setup

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "csrc"))
from build_exe import BuildExt, InstallScripts   # noqa: E402


def read(name):
    with open(os.path.join(HERE, name), encoding="utf-8") as f:
        return f.read()


VERSION = re.search(r'^__version__ = "([^"]+)"$', read("ociruntime/__init__.py"), re.M).group(1)
URL = "https://github.com/ociruntime/ociruntime"

sys.path.insert(0, os.path.join(HERE, "tools"))
from build_docs import PLACEHOLDER, Distribution, InstallDocs   # noqa: E402

setup(
    name="ociruntime",
    version=VERSION,
    description="An OCI container runtime like runc and crun: Python with a small C core",
    long_description=read("README.md"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    url=URL,
    project_urls={
        "Source": URL,
        "Changelog": URL + "/blob/main/CHANGELOG.md",
        "Security": URL + "/blob/main/SECURITY.md",
        "Issues": URL + "/issues",
    },
    keywords=["oci", "container", "runtime", "runc", "linux", "cgroups", "seccomp"],
    classifiers=[
        "Development Status :: 3 - Alpha",
        "Environment :: Console",
        "Intended Audience :: System Administrators",
        "Operating System :: POSIX :: Linux",
        "Programming Language :: C",
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3 :: Only",
        "Programming Language :: Python :: Implementation :: CPython",
        "Topic :: System :: Operating System Kernels :: Linux",
        "Topic :: System :: Systems Administration",
    ],
    packages=find_packages(include=["ociruntime", "ociruntime.*"]),
    package_data={"ociruntime": ["schemas/*.json"]},
    python_requires=">=3.10",   # zip(strict=) in cgroups/dbus.py; tested on 3.11
    setup_requires=["cffi>=1.15"],
    install_requires=["cffi>=1.15"],
    # Only two features need more, and they import it when used
    # (ociruntime/validate.py, netdev.py); without it they fail with a
    # one-line error naming the extra.
    extras_require={
        "validate": ["jsonschema>=4.18"],   # `ociruntime validate`
        "netdev": ["pyroute2"],             # linux.netDevices
    },
    cffi_modules=["csrc/build_core.py:ffibuilder"],
    cmdclass={"build_ext": BuildExt, "install_scripts": InstallScripts,
              "install_data": InstallDocs},
    # The man pages and completions, rendered from ociruntime/help.py
    # (tools/build_docs.py) into share/man/man8 and share/*completion*.
    data_files=PLACEHOLDER, distclass=Distribution,
    # The Python CLI is a script of our own rather than a console_scripts
    # entry point: it starts Python without `site` (see bin/ociruntime-py).
    # The native front end (bin/ociruntime) is built by BuildExt and
    # installed beside it by InstallScripts, with the script's bytecode.
    scripts=["bin/ociruntime-py"],
    zip_safe=False,
)
