"""Limit/offset pagination: one page of a query plus the total, so clients know when to stop."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from modelworks.errors import UserError
from modelworks.platform.ids import MAX_OFFSET

T = TypeVar("T")

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


def paginate(session: Session, query: Select[tuple[T]], limit: int = DEFAULT_LIMIT, offset: int = 0) -> Page[T]:
    """Rows ``offset .. offset + limit`` of an ordered ``query``, and how many rows it has in all."""
    if not 1 <= limit <= MAX_LIMIT:
        raise UserError(f"limit must be between 1 and {MAX_LIMIT}; got {limit}")
    if not 0 <= offset <= MAX_OFFSET:
        raise UserError(f"offset must be between 0 and {MAX_OFFSET}; got {offset}")
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    items = list(session.scalars(query.limit(limit).offset(offset)))
    return Page(items=items, total=total, limit=limit, offset=offset)
