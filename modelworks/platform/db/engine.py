"""Engines and sessions for the two supported databases.

SQLite gets WAL journaling (readers do not block the writer), foreign keys (off by default in
SQLite, and our deletes cascade through them) and a busy timeout, on every new connection.
``postgresql://`` URLs use the psycopg 3 driver.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session, sessionmaker

from modelworks.errors import UserError

SQLITE_BUSY_TIMEOUT_MS = 10_000


def make_engine(url: str | URL) -> Engine:
    """An engine for an ``sqlite:///PATH`` or ``postgresql://…`` URL (the SQLite file's folder
    is created if missing)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        # Neither the URL nor the parser's message (which quotes it) is passed on: it may hold a password.
        raise UserError(
            "the database URL (MODELWORKS_DATABASE_URL) is not a URL such as sqlite:///PATH or postgresql://USER@HOST/DB"
        ) from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if backend == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        try:
            return create_engine(parsed, pool_pre_ping=True)
        except ModuleNotFoundError as e:
            raise UserError(
                f"PostgreSQL needs its driver ({e.name} is missing): pip install 'modelworks[postgres]'"
            ) from e
    raise UserError(
        f"unsupported database {backend!r} in the database URL; use sqlite:///PATH or postgresql://USER@HOST/DB"
    )


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions whose objects stay readable after commit (responses are built after it)."""
    return sessionmaker(engine, expire_on_commit=False)


def _sqlite_pragmas(dbapi_connection: sqlite3.Connection, _record: object) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()
