"""Alembic migrations shipped inside the package, run against our own engine.

The revisions live in ``migrations/versions``; `upgrade` applies them up to head (a no-op when
the database is current) and runs on every server start and on ``modelworks db upgrade``.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(engine: Engine) -> Config:
    """An Alembic config pointing at the packaged migrations; env.py uses ``engine``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate the database up to ``revision`` in one transaction (where the backend allows)."""
    command.upgrade(alembic_config(engine), revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Migrate the database down to ``revision`` ("base" removes every table)."""
    command.downgrade(alembic_config(engine), revision)


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None for an empty database."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str:
    """The newest revision shipped with this version of modelworks."""
    head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
    assert head is not None, f"no migrations found in {MIGRATIONS}"
    return head
