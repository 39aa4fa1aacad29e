"""Build and install ociruntime: the Python package and its cffi C core."""
from setuptools import find_packages, setup

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
    # A script of our own rather than a console_scripts entry point: it
    # starts Python without `site` (see bin/ociruntime).
    scripts=["bin/ociruntime"],
    zip_safe=False,
)
