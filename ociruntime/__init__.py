"""ociruntime: an OCI runtime in Python with a small C core.

The Python API (ociruntime/api.py):

    from ociruntime import Container
    with Container.run("job", bundle="/srv/job") as c:
        code = c.wait()

Names are imported when first used: the command line, which imports this
package too, pays nothing for them.
"""

__version__ = "0.1.0"
SPEC_VERSION = "1.3.0"

_LAZY = {
    "Container": "ociruntime.api", "validate_config": "ociruntime.api",
    "Problem": "ociruntime.checks",
    "OciError": "ociruntime.errors", "ConfigError": "ociruntime.errors",
    "ContainerNotFound": "ociruntime.errors", "ContainerNotRunning": "ociruntime.errors",
    "WaitTimeout": "ociruntime.errors",
}
__all__ = ["SPEC_VERSION", "__version__", *_LAZY]


def __getattr__(name):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ociruntime' has no attribute {name!r}")
    value = getattr(__import__(module, fromlist=["_"]), name)
    globals()[name] = value
    return value
