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
