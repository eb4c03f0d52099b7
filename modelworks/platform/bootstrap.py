"""First start: migrate the database and, when it has no users yet, create the admin and issue
its token. The token is returned once, for the caller to show; only its digest is kept."""

from __future__ import annotations

from sqlalchemy.orm import Session

from modelworks.platform.db import make_engine, session_factory, upgrade
from modelworks.platform.errors import Conflict
from modelworks.platform.settings import Settings
from modelworks.platform.users import count_users, create_user

ADMIN_NAME = "admin"


def prepare(settings: Settings) -> str | None:
    """Create the data folder, apply migrations, and return the first admin token on the very
    first start (None on every later start)."""
    settings.home.mkdir(parents=True, exist_ok=True, mode=0o700)
    engine = make_engine(settings.database_url)
    try:
        upgrade(engine)
        with session_factory(engine)() as session:
            return create_first_admin(session)
    finally:
        engine.dispose()


def create_first_admin(session: Session) -> str | None:
    """The admin's token if the database had no users, else None."""
    if count_users(session) > 0:
        return None
    try:
        _, _, token = create_user(session, None, ADMIN_NAME, is_admin=True)
    except Conflict:  # another process created it a moment ago
        return None
    return token
