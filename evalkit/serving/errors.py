"""The one error of serving: a server could not be started, reached or stopped."""

from evalkit.core.errors import EvalkitError


class ServerError(EvalkitError, RuntimeError):
    """A server could not be started, reached or stopped; the message says what to do."""
