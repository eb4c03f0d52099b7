"""The durable job queue: rows of the ``jobs`` table, moved between states by atomic updates.

A claim is one conditional UPDATE (``WHERE state = 'queued'``): of two workers racing for a
job, exactly one sees a changed row. On PostgreSQL the candidate is picked with ``FOR UPDATE
SKIP LOCKED`` and the project row is locked while its running jobs are counted; on SQLite the
single UPDATE statement holds the database's write lock. Each claim gets a fresh
``claim_token``: every later write of that attempt (heartbeat, outcome) names it, so a worker
that lost its lease can never overwrite the work of the one that reclaimed the job.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from modelworks.errors import UserError
from modelworks.platform import audit
from modelworks.platform.db.models import JOB_STATES, Job, JobLog, JobMetric, Project, User, utcnow
from modelworks.platform.db.paging import DEFAULT_LIMIT, Page, paginate
from modelworks.platform.errors import Conflict, NotFound
from modelworks.platform.settings import Settings

FINISHED = ("succeeded", "failed", "cancelled")
DEFAULT_MAX_ATTEMPTS = 3
DEFAULT_PROJECT_LIMIT = 4  # running jobs per project, across all workers


# ------------------------------------------------------------------------------------- submit


def submit(
    session: Session,
    user: User,
    project: Project,
    kind: str,
    config: dict[str, Any],
    *,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    timeout_s: int | None = None,
    pretrained: Sequence[str] = (),
) -> Job:
    """Check ``config`` for ``kind`` (`modelworks.jobs.check`) and queue it; `Unprocessable` (422) names the bad key.
    `pretrained`: the only pretrained models the job may name (the ``pretrained`` setting)."""
    from modelworks.jobs.check import check_job  # the facade imports torch: not before the first submit

    checked = check_job(session, project, kind, config, pretrained=pretrained)
    job = Job(
        project_id=project.id,
        kind=kind,
        config=checked.config,
        gpus=checked.gpus,
        max_attempts=max_attempts,
        timeout_s=timeout_s,
        created_by_id=user.id,
    )
    session.add(job)
    session.flush()
    audit.record(session, user, "job.submit", f"job:{job.id}", project_id=project.id, detail={"kind": kind})
    session.commit()
    return job


def get_job(session: Session, project: Project, job_id: int) -> Job:
    job = session.get(Job, job_id)
    if job is None or job.project_id != project.id:
        raise NotFound(f"no job {job_id} in project {project.name!r}")
    return job


def list_jobs(
    session: Session, project: Project, state: str | None = None, limit: int = DEFAULT_LIMIT, offset: int = 0
) -> Page[Job]:
    """Newest first; only jobs in ``state`` when given."""
    query = select(Job).where(Job.project_id == project.id).order_by(Job.id.desc())
    if state is not None:
        if state not in JOB_STATES:
            raise UserError(f"state must be one of {', '.join(JOB_STATES)}; got {state!r}")
        query = query.where(Job.state == state)
    return paginate(session, query, limit, offset)


def cancel(session: Session, user: User, job: Job) -> Job:
    """A queued job is cancelled now; a running one is marked, and its worker stops the process."""
    if job.state in FINISHED:
        raise Conflict(f"job {job.id} already {job.state}")
    now = utcnow()
    # Conditional, so a claim racing with the cancel cannot be lost: one of the two updates wins.
    done = session.execute(
        update(Job)
        .where(Job.id == job.id, Job.state == "queued")
        .values(state="cancelled", finished_at=now, error="cancelled before it started")
    ).rowcount
    if not done:
        session.execute(update(Job).where(Job.id == job.id, Job.state == "running").values(cancel_requested=True))
    audit.record(session, user, "job.cancel", f"job:{job.id}", project_id=job.project_id)
    session.commit()
    session.refresh(job)
    return job


# -------------------------------------------------------------------------------------- claim


@dataclass(frozen=True)
class Claim:
    """A worker's hold on one attempt of a job."""

    job_id: int
    token: str
    attempt: int


def claim(
    session: Session, worker_id: str, *, free_gpus: int = 0, project_limit: int = DEFAULT_PROJECT_LIMIT
) -> Claim | None:
    """Atomically take the oldest queued job this worker can run, or None."""
    postgres = session.get_bind().dialect.name == "postgresql"
    running = (
        select(Job.project_id, func.count().label("n"))
        .where(Job.state == "running")
        .group_by(Job.project_id)
        .subquery()
    )
    query = (
        select(Job.id, Job.project_id)
        .outerjoin(running, running.c.project_id == Job.project_id)
        .where(Job.state == "queued", Job.gpus <= free_gpus, func.coalesce(running.c.n, 0) < project_limit)
        .order_by(Job.id)
        .limit(1)
    )
    if postgres:
        query = query.with_for_update(of=Job, skip_locked=True)
    row = session.execute(query).first()
    if row is None:
        session.rollback()
        return None
    if postgres:  # serialize the per-project count between workers
        session.execute(select(Project.id).where(Project.id == row.project_id).with_for_update())
    token = uuid.uuid4().hex
    now = utcnow()
    other = Job.__table__.alias("other")
    claimed = session.execute(
        update(Job)
        .where(
            Job.id == row.id,
            Job.state == "queued",
            select(func.count())
            .select_from(other)
            .where(other.c.project_id == row.project_id, other.c.state == "running")
            .scalar_subquery()
            < project_limit,
        )
        .values(
            state="running",
            worker_id=worker_id,
            claim_token=token,
            heartbeat_at=now,
            attempt_started_at=now,
            attempts=Job.attempts + 1,
            started_at=func.coalesce(Job.started_at, now),
            pid=None,
        )
    ).rowcount
    session.commit()
    if claimed != 1:
        return None  # another worker was faster; the caller simply tries again
    return Claim(row.id, token, session.scalar(select(Job.attempts).where(Job.id == row.id)))


def heartbeat(session: Session, claim: Claim, pid: int | None = None) -> Job | None:
    """Renew the lease; returns the job (to read ``cancel_requested``), or None if the lease is lost."""
    values: dict[str, Any] = {"heartbeat_at": utcnow()}
    if pid is not None:
        values["pid"] = pid
    changed = session.execute(
        update(Job)
        .where(Job.id == claim.job_id, Job.claim_token == claim.token, Job.state == "running")
        .values(**values)
    ).rowcount
    session.commit()
    return session.get(Job, claim.job_id, populate_existing=True) if changed else None


def finish(
    session: Session,
    claim: Claim,
    outcome: str,
    *,
    error: str | None = None,
    cpu_seconds: float = 0.0,
    gpu_seconds: float = 0.0,
    retry: bool = False,
) -> str | None:
    """Record an attempt's end. A failed attempt with ``retry`` and attempts left goes back to the
    queue (its run folder is kept, so training resumes). Returns the job's new state, or None if
    this worker no longer held it."""
    job = session.get(Job, claim.job_id, populate_existing=True)
    if job is None or job.claim_token != claim.token or job.state != "running":
        session.rollback()
        return None
    state = outcome
    if outcome == "failed" and retry and job.attempts < job.max_attempts and not job.cancel_requested:
        state = "queued"
    values: dict[str, Any] = {
        "state": state,
        "error": error,
        "cpu_seconds": Job.cpu_seconds + cpu_seconds,
        "gpu_seconds": Job.gpu_seconds + gpu_seconds,
        "claim_token": None,
        "pid": None,
        "worker_id": None,
    }
    if state != "queued":
        values["finished_at"] = utcnow()
    session.execute(update(Job).where(Job.id == claim.job_id, Job.claim_token == claim.token).values(**values))
    session.commit()
    return state


def reclaim_expired(session: Session, lease_s: float) -> list[int]:
    """Put running jobs whose worker stopped heartbeating back in the queue (or fail them when
    they have no attempts left); returns their ids. Safe to call from every worker."""
    cutoff = utcnow() - timedelta(seconds=lease_s)
    stale = list(session.scalars(select(Job).where(Job.state == "running", Job.heartbeat_at < cutoff)))
    ids = []
    for job in stale:
        retry = job.attempts < job.max_attempts and not job.cancel_requested
        values: dict[str, Any] = {"claim_token": None, "pid": None, "worker_id": None}
        if retry:
            values.update(state="queued", error=f"worker {job.worker_id} stopped heartbeating; requeued")
        elif job.cancel_requested:
            values.update(state="cancelled", finished_at=utcnow(), error="cancelled")
        else:
            values.update(
                state="failed",
                finished_at=utcnow(),
                error=f"worker {job.worker_id} stopped heartbeating after {job.attempts} attempts",
            )
        # Conditional on the token seen, so a heartbeat that just arrived keeps the job.
        if session.execute(
            update(Job)
            .where(Job.id == job.id, Job.claim_token == job.claim_token, Job.heartbeat_at < cutoff)
            .values(**values)
        ).rowcount:
            ids.append(job.id)
    session.commit()
    return ids


# ------------------------------------------------------------------------------- logs, metrics


def append_logs(session: Session, job_id: int, lines: list[str]) -> None:
    """Append lines, numbered after the job's last one (one writer per job: its current attempt)."""
    if not lines:
        return
    last = session.scalar(select(func.max(JobLog.seq)).where(JobLog.job_id == job_id)) or 0
    session.add_all(JobLog(job_id=job_id, seq=last + i, line=line[:10_000]) for i, line in enumerate(lines, 1))
    session.commit()


def read_logs(session: Session, job: Job, since: int = 0, limit: int = 1000) -> list[JobLog]:
    """Lines with ``seq > since``, oldest first."""
    return list(
        session.scalars(
            select(JobLog).where(JobLog.job_id == job.id, JobLog.seq > since).order_by(JobLog.seq).limit(limit)
        )
    )


def read_metrics(
    session: Session, job: Job, name: str | None = None, limit: int = 10_000, offset: int = 0
) -> Page[dict[str, Any]]:
    """A page of the job's metric points, in the order they were recorded (plain rows, not ORM
    objects: a 10,000-point page is mostly serialization)."""
    query = select(JobMetric.step, JobMetric.epoch, JobMetric.name, JobMetric.value, JobMetric.at).where(
        JobMetric.job_id == job.id
    )
    if name is not None:
        query = query.where(JobMetric.name == name)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.execute(query.order_by(JobMetric.id).limit(limit).offset(offset)).mappings()
    return Page(items=[dict(row) for row in rows], total=total, limit=limit, offset=offset)


# --------------------------------------------------------------------------------------- usage


def cost(settings: Settings, cpu_seconds: float, gpu_seconds: float) -> float:
    return round(cpu_seconds / 3600 * settings.price_cpu_hour + gpu_seconds / 3600 * settings.price_gpu_hour, 6)


def usage(session: Session, settings: Settings, project: Project) -> dict[str, Any]:
    """A project's compute: totals, a cost estimate from the configured prices, and per job."""
    jobs = list(session.scalars(select(Job).where(Job.project_id == project.id).order_by(Job.id)))
    cpu, gpu = sum(j.cpu_seconds for j in jobs), sum(j.gpu_seconds for j in jobs)
    return {
        "project": project.name,
        "prices": {"cpu_hour": settings.price_cpu_hour, "gpu_hour": settings.price_gpu_hour},
        "jobs": len(jobs),
        "cpu_seconds": cpu,
        "gpu_seconds": gpu,
        "cost": cost(settings, cpu, gpu),
        "per_job": [
            {
                "id": j.id,
                "kind": j.kind,
                "state": j.state,
                "cpu_seconds": j.cpu_seconds,
                "gpu_seconds": j.gpu_seconds,
                "cost": cost(settings, j.cpu_seconds, j.gpu_seconds),
            }
            for j in jobs
        ],
    }


def release(session: Session, claim: Claim) -> None:
    """Give a job back to the queue (its worker is shutting down); the attempt does not count."""
    session.execute(
        update(Job)
        .where(Job.id == claim.job_id, Job.claim_token == claim.token, Job.state == "running")
        .values(state="queued", attempts=Job.attempts - 1, claim_token=None, pid=None, worker_id=None)
    )
    session.commit()
