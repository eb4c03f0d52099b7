"""The platform database: SQLite (one file, WAL) by default, PostgreSQL by URL; same models,
same Alembic migrations.

    engine = make_engine(settings.database_url)
    upgrade(engine)                       # apply migrations up to head (a no-op when current)
    with session_factory(engine)() as session: ...
"""

from modelworks.platform.db.engine import make_engine, session_factory
from modelworks.platform.db.migrate import upgrade

__all__ = ["make_engine", "session_factory", "upgrade"]
