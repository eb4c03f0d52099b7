"""Migrations on both databases: the migrated schema is exactly the models, upgrading twice is a
no-op that keeps the data, downgrade-then-upgrade round-trips, and the server and
`modelworks db upgrade` apply them."""

from __future__ import annotations

import httpx
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select
from typer.testing import CliRunner

from modelworks.cli import app as cli
from modelworks.platform.db import make_engine, session_factory, upgrade
from modelworks.platform.db.migrate import current_revision, downgrade, head_revision
from modelworks.platform.db.models import Base, User
from modelworks.platform.settings import Settings

TABLES = {"users", "api_tokens", "projects", "memberships", "audit_log"}


def schema(engine) -> dict:
    """Tables with their columns, indexes, unique and foreign keys: enough to see any change."""
    insp = inspect(engine)
    return {
        t: (
            [(c["name"], str(c["type"]), c["nullable"]) for c in insp.get_columns(t)],
            sorted(i["name"] for i in insp.get_indexes(t)),
            sorted(str(u["name"]) for u in insp.get_unique_constraints(t)),
            sorted(str(f["name"]) for f in insp.get_foreign_keys(t)),
        )
        for t in sorted(insp.get_table_names())
    }


def test_migrated_schema_matches_the_models(database):
    engine = make_engine(database.url)
    upgrade(engine)
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection, opts={"compare_type": True}), Base.metadata)
    engine.dispose()
    assert diff == [], f"models and migrations differ; add a revision: {diff}"


def test_upgrading_twice_is_a_no_op_and_keeps_data(database):
    engine = make_engine(database.url)
    assert current_revision(engine) is None
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    with session_factory(engine)() as session:
        session.add(User(name="kept"))
        session.commit()
    before = schema(engine)
    assert TABLES <= set(before)
    upgrade(engine)
    assert schema(engine) == before
    assert current_revision(engine) == head_revision()
    with session_factory(engine)() as session:
        assert session.scalars(select(User.name)).all() == ["kept"]
    engine.dispose()


def test_downgrade_to_base_and_back(database):
    engine = make_engine(database.url)
    upgrade(engine)
    migrated = schema(engine)
    downgrade(engine, "base")
    assert set(inspect(engine).get_table_names()) & TABLES == set()
    assert current_revision(engine) is None
    upgrade(engine)
    assert schema(engine) == migrated
    engine.dispose()


def test_sqlite_connections_use_wal_and_foreign_keys(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'sub' / 'x.db'}")
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    engine.dispose()


def test_db_upgrade_command(database, monkeypatch):
    monkeypatch.setenv("MODELWORKS_DATABASE_URL", database.url)
    runner = CliRunner()
    first = runner.invoke(cli, ["db", "upgrade", "--data-dir", str(database.home)], catch_exceptions=False)
    assert first.exit_code == 0, first.output
    assert f"revision {head_revision()} (was empty)" in first.stdout
    second = runner.invoke(cli, ["db", "upgrade", "--data-dir", str(database.home)], catch_exceptions=False)
    assert second.exit_code == 0 and f"revision {head_revision()}" in second.stdout and "was" not in second.stdout


def test_db_upgrade_reports_a_bad_url_as_a_user_error(monkeypatch, tmp_path):
    monkeypatch.setenv("MODELWORKS_DATABASE_URL", "mysql://somewhere/db")
    result = CliRunner().invoke(cli, ["db", "upgrade", "--data-dir", str(tmp_path)])
    assert result.exit_code == 2 and "unsupported database 'mysql'" in result.stderr


def test_server_start_applies_migrations(database, live_server):
    settings = Settings.from_env({}, home=database.home, database_url=database.url)
    with live_server(settings) as server:
        assert httpx.get(f"{server.url}/health").json()["status"] == "ok"
    engine = make_engine(database.url)
    assert current_revision(engine) == head_revision()
    engine.dispose()
