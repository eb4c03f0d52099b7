"""Serving's tables on both databases (SQLite and PostgreSQL): two meters flushing at once into
one database add up, a quota reads the day's total back, deployments' constraints and plan hold."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from modelworks.platform import deployments, inference_keys
from modelworks.platform.access import ProjectAccess
from modelworks.platform.bootstrap import prepare
from modelworks.platform.db import make_engine, session_factory
from modelworks.platform.db.models import (
    ModelAlias,
    ModelVersion,
    Project,
    RegisteredModel,
    User,
)
from modelworks.platform.db.serving import Deployment, InferenceUsage
from modelworks.platform.roles import Role
from modelworks.platform.settings import Settings
from modelworks.serve.metering import Caller, Meter


def test_meters_plan_and_constraints_on_each_backend(database):
    settings = Settings.from_env({}, home=database.home, database_url=database.url, port=0)
    prepare(settings)
    engine = make_engine(settings.database_url)
    sessions = session_factory(engine)
    try:
        with sessions() as session:
            admin = session.scalar(select(User))
            project = Project(name="shop", created_by_id=admin.id)
            session.add(project)
            session.flush()
            model = RegisteredModel(project_id=project.id, name="m")
            session.add(model)
            session.flush()
            v1, v2 = ModelVersion(model_id=model.id, version=1, storage_prefix="a", artifacts=[]), ModelVersion(
                model_id=model.id, version=2, storage_prefix="b", artifacts=[])  # fmt: skip
            session.add_all([v1, v2])
            session.flush()
            session.add(ModelAlias(model_id=model.id, name="production", version_id=v1.id))
            session.commit()
            access = ProjectAccess(project=project, user=admin, role=Role.owner)
            key_id = inference_keys.issue_key(session, access, "acme", quota=10_000)[0].id
            deployments.create_deployment(session, access, "web", "m", alias="production", canary_version=2,
                                          canary_percent=25)  # fmt: skip
            [target] = deployments.plan(session)
            project_id = target.project_id
            assert target.weights == {1: 75.0, 2: 25.0}
            session.add(Deployment(project_id=project.id, name="bad", model_id=model.id, alias="production", version=1))
            with pytest.raises(IntegrityError):  # an alias and a version at once: the database refuses it too
                session.commit()
            session.rollback()

        caller = Caller(project_id=project_id, key_id=key_id, quota=10_000)
        meters = [Meter(sessions, f"replica-{i}", interval_s=0.02) for i in range(2)]
        for m in meters:
            m.start()

        def traffic(meter: Meter) -> None:
            for _ in range(500):
                meter.record(caller, "web", 2, 200, 0.003)

        threads = [threading.Thread(target=traffic, args=(m,)) for m in meters]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for m in meters:
            m.stop()
        with sessions() as session:
            total = session.execute(select(func.sum(InferenceUsage.requests), func.sum(InferenceUsage.rows))).one()
        assert tuple(total) == (1000, 2000)
        fresh = Meter(sessions, "replica-new")
        fresh.watch_quota(key_id)
        assert fresh.used_today(key_id) == 1000
    finally:
        engine.dispose()
