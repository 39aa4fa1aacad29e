"""ociruntime: an OCI runtime in Python with a small C core."""

__version__ = "0.1.0"
SPEC_VERSION = "1.3.0"
