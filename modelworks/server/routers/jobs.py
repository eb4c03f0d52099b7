"""Jobs: editors submit and cancel, viewers read the queue, logs, metrics and usage."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request

from modelworks.jobs import queue
from modelworks.platform.db.models import JOB_STATES, Job
from modelworks.platform.ids import DbId, Offset, SeqNo
from modelworks.platform.limits import check_config
from modelworks.server.dependencies import DbSession, Editor, Paging, Viewer
from modelworks.server.redact import redact
from modelworks.server.schemas import JobCreate, JobLogOut, JobMetricOut, JobOut, Page, UsageOut

router = APIRouter(prefix="/projects/{project}", tags=["jobs"])
JobState = Literal[JOB_STATES]  # type: ignore[valid-type]


def job_out(job: Job, request: Request) -> JobOut:
    settings = request.app.state.settings
    return JobOut.model_validate(
        redact(
            {
                **{k: getattr(job, k) for k in JobOut.model_fields if k not in ("created_by", "cost")},
                "created_by": job.created_by.name if job.created_by else None,
                "cost": queue.cost(settings, job.cpu_seconds, job.gpu_seconds),
            },
            settings,
        )
    )


@router.post("/jobs", status_code=201)
def submit_job(body: JobCreate, access: Editor, session: DbSession, request: Request) -> JobOut:
    """Queue a job; its config is validated first (422 naming the bad key)."""
    check_config(body.config, request.app.state.settings)
    job = queue.submit(
        session,
        access.user,
        access.project,
        body.kind,
        body.config,
        max_attempts=body.max_attempts,
        timeout_s=body.timeout_s,
        pretrained=request.app.state.settings.pretrained,
    )
    return job_out(job, request)


@router.get("/jobs")
def list_jobs(
    access: Viewer,
    session: DbSession,
    paging: Paging,
    request: Request,
    state: Annotated[JobState | None, Query(description="only jobs in this state")] = None,
) -> Page[JobOut]:
    """The project's jobs, newest first."""
    page = queue.list_jobs(session, access.project, state, paging.limit, paging.offset)
    return Page[JobOut].of(page, lambda job: job_out(job, request))


@router.get("/jobs/{job_id}")
def get_job(job_id: DbId, access: Viewer, session: DbSession, request: Request) -> JobOut:
    return job_out(queue.get_job(session, access.project, job_id), request)


@router.post("/jobs/{job_id}/cancel")
def cancel_job(job_id: DbId, access: Editor, session: DbSession, request: Request) -> JobOut:
    """Cancel a queued job now, or ask the worker of a running one to stop it."""
    job = queue.cancel(session, access.user, queue.get_job(session, access.project, job_id))
    return job_out(job, request)


@router.get("/jobs/{job_id}/logs")
def job_logs(
    job_id: DbId,
    access: Viewer,
    session: DbSession,
    request: Request,
    since: Annotated[SeqNo, Query(description="only lines after this seq")] = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> list[JobLogOut]:
    job = queue.get_job(session, access.project, job_id)
    settings = request.app.state.settings
    rows = queue.read_logs(session, job, since, limit)
    return [JobLogOut(seq=row.seq, at=row.at, line=redact(row.line, settings)) for row in rows]


@router.get("/jobs/{job_id}/metrics")
def job_metrics(
    job_id: DbId,
    access: Viewer,
    session: DbSession,
    name: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 10_000,
    offset: Annotated[Offset, Query()] = 0,
) -> Page[JobMetricOut]:
    job = queue.get_job(session, access.project, job_id)
    return Page[JobMetricOut].of(queue.read_metrics(session, job, name, limit, offset), JobMetricOut.model_validate)


@router.get("/usage")
def project_usage(access: Viewer, session: DbSession, request: Request) -> UsageOut:
    """Compute per job and in total, with a cost estimate from the configured prices."""
    return UsageOut.model_validate(queue.usage(session, request.app.state.settings, access.project))
