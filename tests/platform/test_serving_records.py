"""The platform side of serving, without a server: inference keys, deployments and their plan,
metering (flushes, a failed flush, quotas), the rate limiter and the usage table."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from modelworks.errors import UserError
from modelworks.platform import deployments, inference_keys, inference_usage
from modelworks.platform.access import ProjectAccess
from modelworks.platform.bootstrap import prepare
from modelworks.platform.db import make_engine, session_factory
from modelworks.platform.db.models import (
    ModelAlias,
    ModelVersion,
    Project,
    RegisteredModel,
    User,
    utcnow,
)
from modelworks.platform.db.serving import InferenceKey, InferenceUsage
from modelworks.platform.errors import NotFound, Unauthenticated
from modelworks.platform.roles import Role
from modelworks.platform.settings import Settings
from modelworks.serve.metering import LATENCY_BUCKETS_S, Caller, Meter, RateLimiter, today


@pytest.fixture
def db(tmp_path: Path):
    """A migrated SQLite database with a project, its admin, and model "m" with versions 1-3
    (rows only: nothing here loads a model) and alias "production" -> 1."""
    settings = Settings.from_env({}, home=tmp_path, database_url=f"sqlite:///{tmp_path / 'mw.db'}", port=0)
    prepare(settings)
    engine = make_engine(settings.database_url)
    sessions = session_factory(engine)
    with sessions() as session:
        admin = session.scalar(select(User))
        project = Project(name="shop", created_by_id=admin.id)
        session.add(project)
        session.flush()
        model = RegisteredModel(project_id=project.id, name="m")
        session.add(model)
        session.flush()
        versions = [
            ModelVersion(model_id=model.id, version=v, storage_prefix=f"x/{v}", artifacts=[]) for v in (1, 2, 3)
        ]
        session.add_all(versions)
        session.flush()
        session.add(ModelAlias(model_id=model.id, name="production", version_id=versions[0].id))
        session.commit()
        ids = {"project": project.id, "admin": admin.id}
    yield {"settings": settings, "sessions": sessions, **ids}
    engine.dispose()


def access(session, db) -> ProjectAccess:
    return ProjectAccess(
        project=session.get(Project, db["project"]), user=session.get(User, db["admin"]), role=Role.owner
    )


def test_a_key_is_stored_only_as_its_digest_and_refused_once_revoked_or_expired(db):
    with db["sessions"]() as session:
        row, key = inference_keys.issue_key(session, access(session, db), "customer", rate_limit=60, quota=1000)
        stored = session.get(InferenceKey, row.id)
        assert key.startswith("mwk_") and key not in (stored.secret_sha256, stored.prefix) and len(stored.prefix) < 30
        assert inference_keys.authenticate_key(session, key).id == row.id
        for bad in (key[:-1] + ("A" if key[-1] != "A" else "B"), "mwk_0123456789abcdef_" + "x" * 43, "mw_x"):
            with pytest.raises(Unauthenticated, match="invalid, revoked or expired"):
                inference_keys.authenticate_key(session, bad)
        stored.expires_at = utcnow() - timedelta(seconds=1)
        session.commit()
        with pytest.raises(Unauthenticated):
            inference_keys.authenticate_key(session, key)
        stored.expires_at = None
        inference_keys.revoke_key(session, access(session, db), row.id)
        with pytest.raises(Unauthenticated):
            inference_keys.authenticate_key(session, key)
        with pytest.raises(NotFound):
            inference_keys.revoke_key(session, access(session, db), "0123456789abcdef")


def test_a_key_is_scoped_to_its_project_and_deployments(db):
    with db["sessions"]() as session:
        everywhere, _ = inference_keys.issue_key(session, access(session, db), "all")
        scoped, _ = inference_keys.issue_key(session, access(session, db), "one", deployments=["web", "web"])
        assert scoped.deployments == ["web"]
        assert inference_keys.allows(everywhere, db["project"], "anything")
        assert inference_keys.allows(scoped, db["project"], "web") and not inference_keys.allows(
            scoped, db["project"], "api"
        )
        assert not inference_keys.allows(everywhere, db["project"] + 1, "web")
        with pytest.raises(UserError, match="rate limit"):
            inference_keys.issue_key(session, access(session, db), "zero", rate_limit=0)


def test_deployments_follow_their_alias_and_split_for_a_canary(db):
    with db["sessions"]() as session:
        a = access(session, db)
        with pytest.raises(UserError, match="exactly one"):
            deployments.create_deployment(session, a, "web", "m", alias="production", version=2)
        with pytest.raises(NotFound):
            deployments.create_deployment(session, a, "web", "m", alias="staging")
        deployments.create_deployment(session, a, "web", "m", alias="production")
        deployments.create_deployment(session, a, "pinned", "m", version=3)
        [pinned, web] = sorted(deployments.plan(session), key=lambda t: t.deployment)
        assert (web.served_name, web.weights, pinned.weights) == ("shop.web", {1: 100.0}, {3: 100.0})
        # the alias moves: the plan follows; a canary splits the traffic
        session.execute(ModelAlias.__table__.update().values(version_id=session.scalar(
            select(ModelVersion.id).where(ModelVersion.version == 2))))  # fmt: skip
        session.commit()
        deployments.update_deployment(session, a, "web", canary_version=3, canary_percent=10)
        web = next(t for t in deployments.plan(session) if t.deployment == "web")
        assert web.weights == {2: 90.0, 3: 10.0} and set(web.versions) == {2, 3}
        with pytest.raises(UserError, match="canary_percent"):
            deployments.update_deployment(session, a, "web", canary_percent=120)
        deployments.delete_deployment(session, a, "web")
        assert [t.deployment for t in deployments.plan(session)] == ["pinned"]


def test_the_meter_flushes_what_it_counted_and_keeps_it_when_the_database_fails(db):
    caller = Caller(project_id=db["project"], key_id="0123456789abcdef", quota=100)
    meter = Meter(db["sessions"], "r1", interval_s=3600)
    for latency in (0.001, 0.02, 3.0):
        meter.record(caller, "web", 2, 200, latency)
    meter.record(caller, "web", 5, 429, 0.0)
    meter.watch_quota(caller.key_id)
    assert meter.used_today(caller.key_id) == 3  # a refusal does not use the quota

    def broken():
        raise OperationalError("connect", {}, Exception("the database is away"))

    meter.sessions = broken
    assert meter.flush() == 0  # nothing written, nothing lost
    meter.sessions = db["sessions"]
    assert meter.flush() == 4
    assert meter.flush() == 0
    with db["sessions"]() as session:
        [row] = session.scalars(select(InferenceUsage))
        assert (row.requests, row.answered, row.rows, row.errors) == (4, 3, 6, {"429": 1})
        assert (row.day, row.replica) == (today(), "r1")
        assert sum(row.latency_buckets) == 4 and len(row.latency_buckets) == len(LATENCY_BUCKETS_S) + 1
    assert meter.used_today(caller.key_id) == 3  # now from the database


def test_two_meters_on_one_database_add_up(db):
    caller = Caller(project_id=db["project"], key_id="0123456789abcdef")
    meters = [Meter(db["sessions"], f"r{i}", interval_s=0.05) for i in range(2)]
    for m in meters:
        m.start()
    for i in range(300):
        meters[i % 2].record(caller, "web", 1, 200, 0.001)
    for m in meters:
        m.stop()
    with db["sessions"]() as session:
        assert session.scalar(select(func.sum(InferenceUsage.requests))) == 300


def test_the_rate_limiter_is_a_token_bucket_per_key():
    limiter = RateLimiter()
    assert [limiter.take("k", 3, now=0.0) for _ in range(3)] == [0.0] * 3
    assert limiter.take("k", 3, now=0.0) == pytest.approx(20.0)  # 3 a minute: one every 20 s
    assert limiter.take("other", 3, now=0.0) == 0.0
    assert limiter.take("k", 3, now=20.0) == 0.0


def test_the_usage_table_charges_the_answered_requests_and_rows(db, tmp_path):
    settings = db["settings"].model_copy(update={"price_1k_requests": 2.0, "price_1k_rows": 0.5})
    with db["sessions"]() as session:
        key, _ = inference_keys.issue_key(session, access(session, db), "acme")
    meter = Meter(db["sessions"], "r1")
    caller = Caller(project_id=db["project"], key_id=key.id)
    for _ in range(1000):
        meter.record(caller, "web", 3, 200, 0.01)
    meter.record(caller, "web", 0, 503, 0.01)
    meter.record(Caller(project_id=db["project"], user_id=db["admin"]), "web", 1, 200, 0.01)
    meter.flush()
    with db["sessions"]() as session:
        project = session.get(Project, db["project"])
        table = inference_usage.usage(session, settings, project)
        [keyed] = [r for r in table["rows"] if r["key_id"]]
        assert (keyed["key_name"], keyed["requests"], keyed["rows"], keyed["errors"]) == (
            "acme",
            1001,
            3000,
            {"503": 1},
        )
        assert keyed["charge"] == pytest.approx(1000 / 1000 * 2.0 + 3000 / 1000 * 0.5)
        assert keyed["latency_buckets"][LATENCY_BUCKETS_S.index(0.01)] == 1001  # 10 ms: in the bucket up to 0.01 s
        assert table["latency_bounds_s"] == list(LATENCY_BUCKETS_S)
        [by_user] = [r for r in table["rows"] if r["user"]]
        assert by_user["user"] == "admin" and table["requests"] == 1002
        csv = inference_usage.to_csv(table["rows"]).splitlines()
        assert csv[0] == ",".join(inference_usage.COLUMNS)
        assert f",{key.id},acme,,web,1001,3000,503:1,10.0,3.5" in "\n".join(csv)
        assert inference_usage.usage_rows(session, settings, project, since=utcnow().date() + timedelta(days=1)) == []
