"""The one error of serving: a server could not be started, reached or stopped."""


class ServerError(RuntimeError):
    """A server could not be started, reached or stopped; the message says what to do."""
