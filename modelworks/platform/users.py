"""Users. A user acts through API tokens; there are no passwords."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from modelworks.platform import audit, tokens
from modelworks.platform.db.models import ApiToken, User
from modelworks.platform.db.paging import DEFAULT_LIMIT, Page, paginate
from modelworks.platform.errors import Conflict, NotFound
from modelworks.platform.names import check_name, is_valid_name


def get_user(session: Session, name: str) -> User:
    user = session.scalar(select(User).where(User.name == name)) if is_valid_name(name) else None
    if user is None:
        raise NotFound(f"no user named {name!r}")
    return user


def list_users(session: Session, limit: int = DEFAULT_LIMIT, offset: int = 0) -> Page[User]:
    """Every user, by name (for admins: the route checks)."""
    return paginate(session, select(User).order_by(User.name), limit, offset)


def count_users(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(User)) or 0


def create_user(session: Session, actor: User | None, name: str, is_admin: bool = False) -> tuple[User, ApiToken, str]:
    """Create a user with a first API token (returned once, as for any token). ``actor`` None
    is the service itself, creating the first admin."""
    check_name("user", name)
    if session.scalar(select(User.id).where(User.name == name)) is not None:
        raise Conflict(f"a user named {name!r} already exists")
    user = User(name=name, is_admin=is_admin)
    session.add(user)
    try:
        session.flush()
    except IntegrityError as e:  # created by a concurrent request since the check above
        session.rollback()
        raise Conflict(f"a user named {name!r} already exists") from e
    audit.record(session, actor, "user.create", f"user:{name}", detail={"is_admin": is_admin})
    row, token = tokens.issue_token(session, user, "first token", actor=actor, commit=False)
    session.commit()
    return user, row, token
