"""Every start: make the home folder private, migrate the database, seal what earlier versions
left in plaintext; on the first start (no users yet) create the admin and issue its token. The
token is returned once, for the caller to show; only its digest is kept.

Recovery: `recovery_token` issues a fresh token for an admin straight from the database, for
whoever runs it on the server's machine (``modelworks admin token NAME``), when no admin has a
working token left.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from modelworks.errors import UserError
from modelworks.platform.crypto import Keyring
from modelworks.platform.db import make_engine, session_factory, upgrade
from modelworks.platform.db.models import User
from modelworks.platform.errors import Conflict
from modelworks.platform.names import is_valid_name
from modelworks.platform.previews import seal_plain_previews
from modelworks.platform.settings import Settings
from modelworks.platform.tokens import issue_token
from modelworks.platform.users import count_users, create_user

ADMIN_NAME = "admin"


def prepare(settings: Settings) -> str | None:
    """Create the data folder, apply migrations, and return the first admin token on the very
    first start (None on every later start)."""
    secure_home(settings.home)
    engine = make_engine(settings.database_url)
    try:
        upgrade(engine)
        with session_factory(engine)() as session:
            keyring = partial(
                Keyring.load,
                settings.data_key.get_secret_value() if settings.data_key else None,
                settings.data_key_file,
                settings.home,
            )
            seal_plain_previews(session, keyring)  # of encrypted versions stored before previews were sealed
            return create_first_admin(session)
    finally:
        engine.dispose()


def secure_home(home: Path) -> None:
    """Make the home folder (keys, database, working copies of data) 0700, whether or not
    modelworks created it; a `UserError` saying so when it cannot."""
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        home.chmod(0o700)
    except OSError as e:
        raise UserError(
            f"the home folder {home} (MODELWORKS_HOME) must be private to the server's user (mode 0700), "
            f"and cannot be made so: {e.strerror}; use a folder this user owns"
        ) from e


def create_first_admin(session: Session) -> str | None:
    """The admin's token if the database had no users, else None."""
    if count_users(session) > 0:
        return None
    try:
        _, _, token = create_user(session, None, ADMIN_NAME, is_admin=True)
    except Conflict:  # another process created it a moment ago
        return None
    return token


def recovery_token(settings: Settings, name: str) -> str:
    """A new token for the admin ``name``, issued directly in the database (audited as any token
    the admin creates, named "recovery token"). Reaching the database is the authorization: only
    someone with access to the server's data can run this."""
    engine = make_engine(settings.database_url)
    try:
        upgrade(engine)
        with session_factory(engine)() as session:
            user = session.scalar(select(User).where(User.name == name)) if is_valid_name(name) else None
            if user is None or not user.is_admin:
                admins = session.scalars(select(User.name).where(User.is_admin.is_(True)).order_by(User.name)).all()
                known = ", ".join(admins) or "none"
                raise UserError(f"{name!r} is not an admin of the platform at {settings.home}; admins: {known}")
            _, token = issue_token(session, user, "recovery token", actor=None)
            return token
    finally:
        engine.dispose()
