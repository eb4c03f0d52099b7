"""User errors that carry an HTTP meaning: the server maps each to its status code, the CLI and
the Python API treat them as any other `UserError` (one message, no traceback)."""

from __future__ import annotations

from modelworks.errors import UserError


class Unauthenticated(UserError):
    """No credentials, or credentials that are malformed, unknown, revoked or expired (401)."""


class Forbidden(UserError):
    """Authenticated, but the role or admin right the action needs is missing (403)."""


class NotFound(UserError):
    """The resource does not exist, or the caller may not know that it exists (404)."""


class Conflict(UserError):
    """The change clashes with the current state: a taken name, the last owner leaving (409)."""


class Unprocessable(UserError):
    """The request is well-formed but its content cannot be acted on, e.g. an invalid experiment
    config or a job kind not supported yet (422)."""


class TooLarge(UserError):
    """An upload or archive beyond the configured size limits (413)."""


class StoredDataError(UserError):
    """Stored data failed its integrity check, or no key can decrypt it (500, with the reason:
    it is the operator's problem, and the reader must not get the data)."""


class RequestTimeout(UserError):
    """A request body that stalled: nothing arrived for the configured time (408)."""


class TooManyRequests(UserError):
    """Too many refused attempts from one client address; retry after ``retry_after`` seconds (429)."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
