"""The error of a user command: a request that cannot be done, with the HTTP status to answer."""

from __future__ import annotations


class CommandError(Exception):
    """A request that cannot be done; ``status`` is the HTTP status the web side answers."""

    def __init__(self, code: str, message: str, status: int = 400,
                 retry_after: int | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.retry_after = retry_after  # seconds, for a 429 or 503
