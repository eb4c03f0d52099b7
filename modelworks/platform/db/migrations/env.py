"""Alembic environment: migrate the engine handed over by `modelworks.platform.db.migrate`.

Run through `modelworks db upgrade` (or `upgrade()` in Python), not the ``alembic`` command: the
engine and URL come from the platform settings, not from an alembic.ini.
"""

from __future__ import annotations

import re
from typing import Any

from alembic import context
from alembic.operations import Operations
from sqlalchemy import Connection, inspect

from modelworks.platform.db import continual, serving, streams  # noqa: F401  (their tables join Base.metadata)
from modelworks.platform.db.models import JOB_KINDS, Base, UTCDateTime, job_kind_check


def render_item(kind: str, obj: Any, autogen_context: Any) -> str | bool:
    """Write our UTC column type as the plain type it stores, so revisions import only sqlalchemy."""
    if kind == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying them
        compare_type=True,
        render_item=render_item,
    )
    with context.begin_transaction():
        context.run_migrations()
        migration = context.get_context()
        if migration.get_current_revision() == context.get_head_revision():
            sync_job_kinds(connection, Operations(migration))


def sync_job_kinds(connection: Connection, operations: Operations) -> None:
    """A repeatable step after the revisions: the ``jobs.kind`` check constraint lists exactly the
    kinds declared in `modelworks.job_kinds`, so that adding a job kind needs no revision. A no-op
    while they agree; otherwise the constraint is recreated (on SQLite by copying the table, in
    this same transaction, keeping its AUTOINCREMENT counter)."""
    checks = {c["name"]: c["sqltext"] for c in inspect(connection).get_check_constraints("jobs")}
    if set(re.findall(r"'([^']*)'", checks.get("ck_jobs_kind", ""))) == set(JOB_KINDS):
        return
    sqlite = connection.dialect.name == "sqlite"
    counter = None
    if sqlite:
        counter = connection.exec_driver_sql("SELECT seq FROM sqlite_sequence WHERE name = 'jobs'").scalar()
    with operations.batch_alter_table("jobs", table_kwargs={"sqlite_autoincrement": True}) as batch:
        if "ck_jobs_kind" in checks:
            batch.drop_constraint(operations.f("ck_jobs_kind"), type_="check")
        batch.create_check_constraint(operations.f("ck_jobs_kind"), job_kind_check())
    if counter is not None:
        connection.exec_driver_sql(f"UPDATE sqlite_sequence SET seq = {int(counter)} WHERE name = 'jobs'")


# Any constant works, as long as every migrator uses the same one.
PG_MIGRATION_LOCK = 0x6D77_6462  # "mwdb"


def migrate(connection: Connection) -> None:
    """Run the migrations in one transaction, one migrator at a time: a second server starting
    at the same moment waits here, then finds the schema current and does nothing."""
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        # SQLite's table rebuilds (batch mode) drop tables; with foreign keys on, that would
        # cascade-delete child rows. The pragma only takes effect outside a transaction.
        connection.exec_driver_sql("PRAGMA foreign_keys = OFF")
        connection.exec_driver_sql("BEGIN IMMEDIATE")  # take the write lock now, and make the DDL atomic
    elif connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({PG_MIGRATION_LOCK})")
    try:
        run_migrations(connection)
        if sqlite and connection.exec_driver_sql("PRAGMA foreign_key_check").first() is not None:
            raise RuntimeError("a migration left rows that break a foreign key; nothing was changed")
        connection.commit()
    except BaseException:
        connection.rollback()
        raise
    finally:
        if sqlite:
            connection.exec_driver_sql("PRAGMA foreign_keys = ON")
            connection.commit()


engine = context.config.attributes.get("engine")
if engine is None or context.is_offline_mode():
    raise RuntimeError(
        "run migrations with `modelworks db upgrade` (or modelworks.platform.db.upgrade), not the alembic command"
    )
with engine.connect() as connection:
    migrate(connection)
