"""The audit log: who did what, when. Each record is written in the same transaction as the
change it describes, so there is never a change without its record or a record without its change."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from modelworks.platform.db.models import AuditLog, User
from modelworks.platform.db.paging import DEFAULT_LIMIT, Page, paginate

SYSTEM_ACTOR = "system"


def record(
    session: Session,
    actor: User | None,
    action: str,
    target: str,
    *,
    project_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditLog:
    """Add an audit record to the session; the caller commits it with the change itself.
    ``actor`` None means the service acted on its own (e.g. the first-start admin)."""
    entry = AuditLog(
        actor_id=actor.id if actor is not None else None,
        actor=actor.name if actor is not None else SYSTEM_ACTOR,
        action=action,
        target=target,
        project_id=project_id,
        detail=detail or {},
    )
    session.add(entry)
    return entry


def list_entries(
    session: Session, *, project_id: int | None = None, limit: int = DEFAULT_LIMIT, offset: int = 0
) -> Page[AuditLog]:
    """Newest first; one project's entries, or (``project_id`` None) every entry."""
    query = select(AuditLog).order_by(AuditLog.id.desc())
    if project_id is not None:
        query = query.where(AuditLog.project_id == project_id)
    return paginate(session, query, limit, offset)
