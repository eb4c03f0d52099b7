"""Inference keys: what a project gives its own customers to call its deployments.

A key is ``mwk_<id>_<secret>``, shown once and stored only as a SHA-256 digest (the scheme of
`modelworks.platform.tokens`, with its own prefix so the serving process tells the two apart).
A key belongs to one project and, optionally, to a list of its deployments; it may expire, be
revoked, and carry a rate limit (requests per minute) and a quota (requests per UTC day), which
the serving process enforces. A refused key always gets the same message.
"""

from __future__ import annotations

import re
import secrets
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from modelworks.errors import UserError
from modelworks.platform import audit
from modelworks.platform.access import ProjectAccess
from modelworks.platform.db.models import utcnow
from modelworks.platform.db.paging import DEFAULT_LIMIT, Page, paginate
from modelworks.platform.db.serving import InferenceKey
from modelworks.platform.errors import NotFound, Unauthenticated
from modelworks.platform.names import check_name
from modelworks.platform.tokens import digest, is_live

KEY_FORMAT = re.compile(r"mwk_(?P<id>[0-9a-f]{16})_[A-Za-z0-9_-]{32,128}")
KEY_PREFIX = "mwk_"
PREFIX_LENGTH = len(KEY_PREFIX) + 16 + 1 + 4
REFUSED = "invalid, revoked or expired inference key"


def issue_key(
    session: Session,
    access: ProjectAccess,
    name: str,
    *,
    deployments: list[str] | None = None,
    expires_at: datetime | None = None,
    rate_limit: int | None = None,
    quota: int | None = None,
) -> tuple[InferenceKey, str]:
    """A new key of ``access.project``; returns the row and the key, which is never stored."""
    if not name or len(name) > 100:
        raise UserError("an inference key's name must be 1 to 100 characters")
    if expires_at is not None and expires_at.tzinfo is None:
        raise UserError("a key's expiry must carry a time zone, e.g. 2027-01-31T00:00:00Z")
    for limit, what in ((rate_limit, "rate limit"), (quota, "quota")):
        if limit is not None and limit < 1:
            raise UserError(f"the {what} of an inference key must be at least 1; got {limit}")
    if deployments is not None:
        deployments = sorted({check_name("deployment", d) for d in deployments})
    key_id = secrets.token_hex(8)
    key = f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    row = InferenceKey(
        id=key_id,
        project_id=access.project.id,
        name=name,
        secret_sha256=digest(key),
        prefix=key[:PREFIX_LENGTH],
        deployments=deployments,
        rate_limit=rate_limit,
        quota=quota,
        created_by_id=access.user.id,
        expires_at=expires_at,
    )
    session.add(row)
    detail = {
        "name": name,
        "deployments": deployments,
        "rate_limit": rate_limit,
        "quota": quota,
        "expires_at": expires_at.isoformat() if expires_at else None,
    }
    audit.record(
        session,
        access.user,
        "inference_key.create",
        f"inference_key:{key_id}",
        project_id=access.project.id,
        detail=detail,
    )
    session.commit()
    return row, key


def is_inference_key(credential: str) -> bool:
    return credential.startswith(KEY_PREFIX)


def authenticate_key(session: Session, key: str, now: datetime | None = None) -> InferenceKey:
    """The row of a valid key, or `Unauthenticated` (malformed, unknown, revoked or expired).
    Whether it may call a given deployment is `allows`' question."""
    now = now or utcnow()
    match = KEY_FORMAT.fullmatch(key)
    row = session.get(InferenceKey, match["id"]) if match else None
    if not is_live(row, key, now):
        raise Unauthenticated(REFUSED)
    return row


def allows(row: InferenceKey, project_id: int, deployment: str) -> bool:
    """Whether the key may call ``deployment`` of project ``project_id``."""
    return row.project_id == project_id and (row.deployments is None or deployment in row.deployments)


def list_keys(
    session: Session, access: ProjectAccess, limit: int = DEFAULT_LIMIT, offset: int = 0
) -> Page[InferenceKey]:
    """The project's keys, newest first, revoked and expired ones included."""
    query = select(InferenceKey).where(InferenceKey.project_id == access.project.id)
    return paginate(session, query.order_by(InferenceKey.created_at.desc(), InferenceKey.id), limit, offset)


def revoke_key(session: Session, access: ProjectAccess, key_id: str) -> InferenceKey:
    """Revoke a key of the project (twice is a no-op); another project's key is not found."""
    row = session.get(InferenceKey, key_id) if re.fullmatch(r"[0-9a-f]{16}", key_id) else None
    if row is None or row.project_id != access.project.id:
        raise NotFound(f"no inference key with id {key_id!r} in project {access.project.name!r}")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        audit.record(
            session,
            access.user,
            "inference_key.revoke",
            f"inference_key:{key_id}",
            project_id=access.project.id,
            detail={"name": row.name},
        )
        session.commit()
    return row
