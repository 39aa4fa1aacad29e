"""Errors the runtime reports to its caller.

Every failure a user can cause or meet ends up as one of these; cli.main turns
it into a single line on stderr (and a JSON line in --log), exit status 1.
Nothing else should escape to the user as a traceback.
"""


class OciError(Exception):
    """A failure with a message fit for the user, one line."""


class ConfigError(OciError):
    """config.json (or process.json) is missing, unreadable or invalid.

    The message names the file and, where there is one, the JSON path,
    e.g. ``config.json: $.linux.namespaces[2].type: 'foo' is not one of ...``.
    """


class ContainerNotFound(OciError):
    def __init__(self, cid):
        # runc's wording: engines match "does not exist".
        super().__init__(f'container "{cid}" does not exist')


class ContainerNotRunning(OciError):
    """Engines (containerd) match the text "container not running"."""


class WaitTimeout(OciError, TimeoutError):
    """The API's wait() ran out of time; the process still runs."""
