"""API tokens: ``mw_<id>_<secret>``, shown once, stored only as a SHA-256 digest.

The id (16 hex digits) finds the row; the digest of the whole token is then compared in
constant time. A token is refused when it is malformed, unknown, revoked or expired, always
with the same message, so a caller learns nothing about which.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from modelworks.errors import UserError
from modelworks.platform import audit
from modelworks.platform.db.models import ApiToken, User, utcnow
from modelworks.platform.db.paging import DEFAULT_LIMIT, Page, paginate
from modelworks.platform.errors import Conflict, NotFound, Unauthenticated

TOKEN_FORMAT = re.compile(r"mw_(?P<id>[0-9a-f]{16})_[A-Za-z0-9_-]{32,128}")
PREFIX_LENGTH = len("mw_") + 16 + 1 + 4  # the id and four characters of the secret, for display
LAST_USED_RESOLUTION = timedelta(minutes=1)  # write last_used_at at most this often per token
REFUSED = "invalid, revoked or expired token"
_NO_DIGEST = "0" * 64


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def is_live(row: Any, presented: str, now: datetime) -> bool:
    """Whether `presented` is the secret of `row` (an API token or an inference key: a row with
    ``secret_sha256``, ``revoked_at`` and ``expires_at``, or None), neither revoked nor expired.
    The digests are compared even when there is no row, so a miss costs about as long as a wrong
    secret."""
    matches = hmac.compare_digest(row.secret_sha256 if row else _NO_DIGEST, digest(presented))
    return row is not None and matches and row.revoked_at is None and (row.expires_at is None or row.expires_at > now)


def issue_token(
    session: Session,
    user: User,
    name: str,
    expires_at: datetime | None = None,
    *,
    actor: User | None = None,
    commit: bool = True,
) -> tuple[ApiToken, str]:
    """Create a token for ``user``; returns the row and the token itself, which is never stored
    and cannot be shown again. ``actor`` (default: the user) is who the audit log names."""
    if not name or len(name) > 100:
        raise UserError("a token name must be 1 to 100 characters")
    if expires_at is not None and expires_at.tzinfo is None:
        raise UserError("a token's expiry must carry a time zone, e.g. 2027-01-31T00:00:00Z")
    token_id = secrets.token_hex(8)
    token = f"mw_{token_id}_{secrets.token_urlsafe(32)}"
    row = ApiToken(
        id=token_id,
        user_id=user.id,
        name=name,
        secret_sha256=digest(token),
        prefix=token[:PREFIX_LENGTH],
        expires_at=expires_at,
    )
    session.add(row)
    detail = {"name": name, "user": user.name, "expires_at": expires_at.isoformat() if expires_at else None}
    audit.record(session, actor or user, "token.create", f"token:{token_id}", detail=detail)
    if commit:
        session.commit()
    return row, token


def authenticate(session: Session, token: str, now: datetime | None = None) -> User:
    """The user a token belongs to, or `Unauthenticated`."""
    now = now or utcnow()
    match = TOKEN_FORMAT.fullmatch(token)
    row = session.get(ApiToken, match["id"]) if match else None
    if not is_live(row, token, now):
        raise Unauthenticated(REFUSED)
    user = session.get(User, row.user_id)
    if user is None:
        raise Unauthenticated(REFUSED)
    if row.last_used_at is None or now - row.last_used_at >= LAST_USED_RESOLUTION:
        row.last_used_at = now
        session.commit()
    return user


def list_tokens(session: Session, user: User, limit: int = DEFAULT_LIMIT, offset: int = 0) -> Page[ApiToken]:
    """The user's own tokens, newest first, revoked and expired ones included."""
    query = select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.created_at.desc(), ApiToken.id)
    return paginate(session, query, limit, offset)


def revoke_token(session: Session, user: User, token_id: str) -> ApiToken:
    """Revoke one of the user's own tokens (revoking twice is a no-op). Another user's token
    is reported as not found, the same as a token that does not exist. The last valid token of
    the last admin is refused (409): without it nobody could manage the server through the API
    (the way back is ``modelworks admin token NAME`` on the server's machine)."""
    row = session.get(ApiToken, token_id) if re.fullmatch(r"[0-9a-f]{16}", token_id) else None
    if row is None or row.user_id != user.id:
        raise NotFound(f"no token with id {token_id!r}")
    if row.revoked_at is None:
        if user.is_admin:
            _keep_an_admin_token(session, row)
        row.revoked_at = utcnow()
        audit.record(session, user, "token.revoke", f"token:{token_id}", detail={"name": row.name, "user": user.name})
        session.commit()
    return row


def _keep_an_admin_token(session: Session, revoking: ApiToken) -> None:
    """Refuse to revoke ``revoking`` when no other admin token would remain valid. The admins'
    rows are locked first (PostgreSQL), so two admins revoking at once cannot both pass."""
    now = utcnow()
    session.execute(select(User.id).where(User.is_admin.is_(True)).with_for_update())
    others = session.scalar(
        select(func.count())
        .select_from(ApiToken)
        .join(User, ApiToken.user_id == User.id)
        .where(
            User.is_admin.is_(True),
            ApiToken.id != revoking.id,
            ApiToken.revoked_at.is_(None),
            or_(ApiToken.expires_at.is_(None), ApiToken.expires_at > now),
        )
    )
    if not others:
        raise Conflict(
            "this is the last valid token of the last admin: revoking it would lock every admin out. "
            "Create another token first (POST /api/v1/tokens), or recover later with "
            "'modelworks admin token NAME' on the server's machine"
        )
