"""The job-kind contract, over every entry of `modelworks.job_kinds.JOB_KINDS`: its config class
validates its example, the facade check accepts it, its runner and facade call exist, and the
database (migrated to head) accepts the kind. A kind added without these fails here."""

from __future__ import annotations

import inspect as pyinspect
import re

import pytest
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.exc import IntegrityError

from modelworks import api
from modelworks.errors import UserError
from modelworks.job_kinds import JOB_KINDS, SourceJob, leaves_run, starts_from
from modelworks.platform.db import make_engine, session_factory, upgrade
from modelworks.platform.db.models import Job, Project
from modelworks.server.schemas import JobCreate

KINDS = [e.name for e in JOB_KINDS]


@pytest.fixture(scope="module")
def sessions(tmp_path_factory):
    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('kinds') / 'modelworks.db'}")
    upgrade(engine)
    yield session_factory(engine)
    engine.dispose()


def _source(job_id: int, kinds: tuple[str, ...]) -> SourceJob:
    """A succeeded source job as the platform would find it: a train job on the CPU."""
    assert kinds, "a kind that starts from a job names the kinds it may start from"
    return SourceJob(id=job_id, kind=kinds[0], config={}, device="cpu")


@pytest.mark.parametrize("kind", KINDS)
def test_config_class_validates_the_example(kind):
    entry = JOB_KINDS.get(kind)
    entry.meta["config"].model_validate(entry.meta["example"])


@pytest.mark.parametrize("kind", KINDS)
def test_the_facade_check_accepts_the_example(kind):
    entry = JOB_KINDS.get(kind)
    checked = api.check_job_config(kind, entry.meta["example"], find_source=_source)
    assert checked.kind == kind and checked.gpus == 0
    assert (checked.source is not None) == (entry.meta["starts_from"] is not None)
    assert JobCreate.model_validate({"kind": kind, "config": checked.config}).kind == kind


@pytest.mark.parametrize("kind", KINDS)
def test_runner_and_facade_call_exist(kind):
    entry = JOB_KINDS.get(kind)
    runner = entry.impl
    assert callable(runner) and list(pyinspect.signature(runner).parameters) == ["attempt", "job", "project", "folder"]
    assert callable(getattr(api, entry.meta["facade"]))
    assert isinstance(leaves_run(kind), bool)
    assert set(starts_from(kind)) <= set(KINDS)


@pytest.mark.parametrize("kind", KINDS)
def test_the_database_accepts_the_kind(sessions, kind):
    with sessions() as session:
        project = Project(name=f"p-{kind}")
        session.add(project)
        session.flush()
        session.add(Job(project_id=project.id, kind=kind, config=JOB_KINDS.get(kind).meta["example"]))
        session.commit()


def test_the_database_refuses_an_undeclared_kind(sessions):
    with sessions() as session:
        project = Project(name="p-undeclared")
        session.add(project)
        session.flush()
        session.add(Job(project_id=project.id, kind="paint", config={}))
        with pytest.raises(IntegrityError):
            session.commit()


def test_an_unknown_kind_is_a_user_error_listing_the_kinds():
    assert KINDS[:5] == ["train", "evaluate", "tune", "compress", "export"]  # in declaration order
    with pytest.raises(UserError, match=f"kind must be one of {', '.join(KINDS)}; got 'paint'"):
        api.check_job_config("paint", {})


def test_tune_checks_are_the_ones_tune_makes():
    """One home: the job check refuses what `tune` refuses, with the same message."""
    example = JOB_KINDS.get("tune").meta["example"]
    bad = {**example, "tune": {**example["tune"], "metric": "accuracy"}}
    with pytest.raises(UserError, match="tune.metric must be a validation metric.*did you mean 'val_accuracy'"):
        api.check_job_config("tune", bad)
    cv = {**example, "tune": {**example["tune"], "metric": "val_loss", "cv_folds": 2}}
    with pytest.raises(UserError, match="val_loss is not measured by cross-validation"):
        api.check_job_config("tune", cv)
    no_validation = {**example, "data": {**example["data"], "split": {"method": "random", "validation": 0}}}
    with pytest.raises(UserError, match="data.split.validation is 0"):
        api.check_job_config("tune", no_validation)
    with pytest.raises(UserError, match="tune.parallel must be 1"):
        api.check_job_config("tune", {**example, "tune": {**example["tune"], "parallel": 2}})


def test_compress_checks_its_source_when_the_platform_finds_it():
    quantized = SourceJob(id=7, kind="compress", config={"job": 3, "method": "quantize-dynamic"}, device="cpu")
    refused = r"prune needs a float32 model, but job 7 holds a quantize-dynamic model; compress the job it was made"
    with pytest.raises(UserError, match=refused):
        api.check_job_config("compress", {"job": 7, "method": "prune"}, find_source=lambda job, kinds: quantized)
    on_gpu = SourceJob(id=1, kind="train", config={}, device="cuda")
    finetune = {"job": 1, "method": "prune", "options": {"amount": 0.5, "finetune_epochs": 1}}
    assert api.check_job_config("compress", finetune, find_source=lambda job, kinds: on_gpu).gpus == 1
    half = {"job": 1, "method": "half"}
    assert api.check_job_config("compress", half, find_source=lambda job, kinds: on_gpu).gpus == 0


def test_upgrading_a_database_that_lists_fewer_kinds_widens_its_constraint(tmp_path):
    """A kind added after a database was made needs no revision: `upgrade` brings the check
    constraint in step with the registry, keeping the rows and the id counter."""
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    upgrade(engine)
    sessions = session_factory(engine)
    with sessions() as session:
        project = Project(name="p")
        session.add(project)
        session.flush()
        session.add_all(Job(project_id=project.id, kind="train", config={}) for _ in range(3))
        session.commit()
        session.delete(session.get(Job, 3))
        session.commit()
    with engine.connect() as connection:  # as a database made before the other kinds existed
        connection.exec_driver_sql("PRAGMA foreign_keys = OFF")
        operations = Operations(MigrationContext.configure(connection))
        with operations.batch_alter_table("jobs", table_kwargs={"sqlite_autoincrement": True}) as batch:
            batch.drop_constraint(operations.f("ck_jobs_kind"), type_="check")
            batch.create_check_constraint(operations.f("ck_jobs_kind"), "kind IN ('train')")
        connection.exec_driver_sql("UPDATE sqlite_sequence SET seq = 3 WHERE name = 'jobs'")  # job 3 was made
        connection.commit()
    with sessions() as session:
        session.add(Job(project_id=1, kind="export", config={}))
        with pytest.raises(IntegrityError):
            session.commit()
    upgrade(engine)
    checks = {c["name"]: c["sqltext"] for c in inspect(engine).get_check_constraints("jobs")}
    assert set(re.findall(r"'([^']*)'", checks["ck_jobs_kind"])) == set(KINDS) and "ck_jobs_state" in checks
    with sessions() as session:
        assert [j.id for j in session.query(Job).order_by(Job.id)] == [1, 2]
        job = Job(project_id=1, kind="export", config={})
        session.add(job)
        session.commit()
        assert job.id == 4  # AUTOINCREMENT: a deleted job's id is not reused
    engine.dispose()
