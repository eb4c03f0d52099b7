"""The jobs table's duration sort, done by the database on both backends (SQLite and PostgreSQL):
a running job counts until now, a job not started yet has no duration and comes last either way."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from modelworks.platform.bootstrap import prepare
from modelworks.platform.db import make_engine, session_factory
from modelworks.platform.db.models import Job, Project, User, utcnow
from modelworks.platform.settings import Settings
from modelworks.ui.jobs import job_rows

# name -> (state, seconds since it started or None, seconds it ran or None while running)
JOBS = {"ran-30s": ("succeeded", 100, 30), "running-20s": ("running", 20, None), "ran-10s": ("failed", 50, 10),
        "queued": ("queued", None, None)}  # fmt: skip


def test_jobs_sort_by_duration_in_the_database(database):
    settings = Settings.from_env({}, home=database.home, database_url=database.url, port=0)
    prepare(settings)
    engine = make_engine(settings.database_url)
    try:
        with session_factory(engine)() as session:
            admin = session.scalar(select(User))
            project = Project(name="timing", created_by_id=admin.id)
            session.add(project)
            session.flush()
            now, ids = utcnow(), {}
            for name, (state, ago, ran) in JOBS.items():
                started = None if ago is None else now - timedelta(seconds=ago)
                finished = None if ran is None else started + timedelta(seconds=ran)
                job = Job(project_id=project.id, kind="train", config={"name": name}, state=state,
                          created_by_id=admin.id, started_at=started, finished_at=finished)  # fmt: skip
                session.add(job)
                session.flush()
                ids[job.id] = name
            session.commit()

            def order(descending: bool) -> list[str]:
                page = job_rows(session, settings, project, state=None, kind=None, sort="duration",
                                descending=descending, limit=10, offset=0)  # fmt: skip
                return [ids[row.job.id] for row in page.items]

            assert order(descending=True) == ["ran-30s", "running-20s", "ran-10s", "queued"]
            assert order(descending=False) == ["ran-10s", "running-20s", "ran-30s", "queued"]
    finally:
        engine.dispose()
