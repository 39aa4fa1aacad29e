"""Build and install ociruntime: the Python package, its cffi C core, and
two small C executables (csrc/build_exe.py):

  bin/ociruntime      the command: a C front end that answers state, start,
                      kill and delete itself when the container allows it
                      and runs the Python CLI (bin/ociruntime-py) otherwise
  ociruntime/ociruntime-init
                      the container init (csrc/spawn.c): create and exec
                      start it with the plan, and it clones the init
"""
import os
import sys

from setuptools import find_packages, setup

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "csrc"))
from build_exe import BuildExt, InstallScripts   # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "tools"))
from build_docs import PLACEHOLDER, Distribution, InstallDocs   # noqa: E402

setup(
    name="ociruntime",
    version="0.1.0",
    description="An OCI container runtime: Python with a small C core",
    packages=find_packages(include=["ociruntime", "ociruntime.*"]),
    package_data={"ociruntime": ["schemas/*.json"]},
    python_requires=">=3.9",
    setup_requires=["cffi>=1.15"],
    install_requires=["cffi>=1.15", "jsonschema", "pyroute2"],
    cffi_modules=["csrc/build_core.py:ffibuilder"],
    cmdclass={"build_ext": BuildExt, "install_scripts": InstallScripts,
              "install_data": InstallDocs},
    # The man pages and completions, rendered from ociruntime/help.py
    # (tools/build_docs.py) into share/man/man8 and share/*completion*.
    data_files=PLACEHOLDER, distclass=Distribution,
    # The Python CLI is a script of our own rather than a console_scripts
    # entry point: it starts Python without `site` (see bin/ociruntime-py).
    # The native front end (bin/ociruntime) is built by BuildExt and
    # installed beside it by InstallScripts.
    scripts=["bin/ociruntime-py"],
    zip_safe=False,
)
