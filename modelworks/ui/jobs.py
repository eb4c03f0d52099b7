"""Jobs and runs: one server-paged table (state, progress, key metrics, duration, compute cost;
filter by state and kind, sort by a column), cancel and retry. Running jobs refresh their rows
by polling this same page while it is visible (ui.js)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import extract, func, literal, select
from sqlalchemy.orm import Session, load_only

from modelworks.job_kinds import JOB_KINDS
from modelworks.jobs import queue
from modelworks.platform.db.models import JOB_STATES, Job, JobMetric, Project, Run, UTCDateTime, utcnow
from modelworks.platform.db.paging import Page, paginate
from modelworks.platform.ids import DbId
from modelworks.platform.settings import Settings
from modelworks.server.dependencies import UI_PREFIX, DbSession, Editor, Paging, Viewer
from modelworks.ui.web import render

router = APIRouter(prefix="/p/{project}/jobs")
ACTIVE = ("queued", "running")
# Shown first among a run's final metrics, when present; then any others, up to KEY_METRICS in all.
HEADLINE = ("accuracy", "f1_macro", "roc_auc", "rmse", "mae", "r2", "loss")
KEY_METRICS = 3
SORTS = ("created", "state", "kind", "duration", "cost")
Sort = Literal[SORTS]  # type: ignore[valid-type]
State = Literal[JOB_STATES]  # type: ignore[valid-type]
Kind = Literal[tuple(e.name for e in JOB_KINDS)]  # type: ignore[valid-type]


@dataclass(frozen=True)
class JobRow:
    """One line of the table: a job, the run it recorded (if any) and what the table shows of them."""

    job: Job
    run_id: int | None
    metrics: list[tuple[str, float]]
    epoch: int | None
    epochs: int | None
    duration_s: float | None
    cost: float


def job_rows(
    session: Session,
    settings: Settings,
    project: Project,
    *,
    state: str | None,
    kind: str | None,
    sort: str,
    descending: bool,
    limit: int,
    offset: int,
) -> Page[JobRow]:
    """A page of the project's jobs, filtered and sorted in the database, with their runs and progress."""
    query = select(Job).where(Job.project_id == project.id)
    if state:
        query = query.where(Job.state == state)
    if kind:
        query = query.where(Job.kind == kind)
    column = sort_column(sort, settings, session.get_bind().dialect.name)
    column = column.desc() if descending else column.asc()
    query = query.order_by(column.nulls_last() if sort == "duration" else column, Job.id.desc())
    page = paginate(session, query, limit, offset)
    ids = [job.id for job in page.items]
    only = load_only(Run.id, Run.job_id, Run.metrics)  # not the configs and manifests
    runs = {run.job_id: run for run in session.scalars(select(Run).options(only).where(Run.job_id.in_(ids)))}
    last_epoch = select(JobMetric.job_id, func.max(JobMetric.epoch)).where(JobMetric.job_id.in_(ids))
    epochs = {job_id: epoch for job_id, epoch in session.execute(last_epoch.group_by(JobMetric.job_id))}
    now = utcnow()
    rows = []
    for job in page.items:
        run = runs.get(job.id)
        rows.append(
            JobRow(
                job=job,
                run_id=run.id if run else None,
                metrics=key_metrics(run.metrics if run else {}),
                epoch=epochs.get(job.id),
                epochs=_planned_epochs(job),
                duration_s=_duration(job.started_at, job.finished_at, now),
                cost=queue.cost(settings, job.cpu_seconds, job.gpu_seconds),
            )
        )
    return Page(items=rows, total=page.total, limit=page.limit, offset=page.offset)


def sort_column(sort: str, settings: Settings, dialect: str = "sqlite") -> Any:
    """The SQL expression a sort key orders by; cost is computed from the prices, as `queue.cost` does,
    duration as `_duration` does (a job still running counts until now; one not started has none)."""
    if sort == "duration":
        end = func.coalesce(Job.finished_at, literal(utcnow(), UTCDateTime()))
        if dialect == "sqlite":
            return (func.julianday(end) - func.julianday(Job.started_at)) * 86400.0
        return extract("epoch", end - Job.started_at)
    if sort == "cost":
        return Job.cpu_seconds * settings.price_cpu_hour + Job.gpu_seconds * settings.price_gpu_hour
    return {"created": Job.id, "state": Job.state, "kind": Job.kind}[sort]


def key_metrics(metrics: dict[str, Any]) -> list[tuple[str, float]]:
    numeric = {k: v for k, v in metrics.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    ordered = [k for k in HEADLINE if k in numeric] + sorted(k for k in numeric if k not in HEADLINE)
    return [(k, numeric[k]) for k in ordered[:KEY_METRICS]]


def _planned_epochs(job: Job) -> int | None:
    epochs = (job.config.get("train") or {}).get("epochs") if job.kind in ("train", "tune") else None
    return epochs if isinstance(epochs, int) else None


def _duration(started: datetime | None, finished: datetime | None, now: datetime) -> float | None:
    return None if started is None else ((finished or now) - started).total_seconds()


@router.get("", response_class=HTMLResponse)
def jobs_page(
    request: Request,
    access: Viewer,
    session: DbSession,
    paging: Paging,
    state: Annotated[State | Literal[""], Query()] = "",
    kind: Annotated[Kind | Literal[""], Query()] = "",
    sort: Annotated[Sort, Query()] = "created",
    order: Annotated[Literal["asc", "desc"], Query()] = "desc",
) -> HTMLResponse:
    page = job_rows(
        session,
        request.app.state.settings,
        access.project,
        state=state,
        kind=kind,
        sort=sort,
        descending=order == "desc",
        limit=paging.limit,
        offset=paging.offset,
    )
    return render(
        request,
        "jobs.html",
        access=access,
        section="jobs",
        page=page,
        states=JOB_STATES,
        kinds=[e.name for e in JOB_KINDS],
        state=state,
        kind=kind,
        sort=sort,
        order=order,
        active=any(row.job.state in ACTIVE for row in page.items),
        finished_states=queue.FINISHED,
    )


@router.post("/{job_id}/cancel")
def cancel(job_id: DbId, access: Editor, session: DbSession) -> RedirectResponse:
    queue.cancel(session, access.user, queue.get_job(session, access.project, job_id))
    return RedirectResponse(f"{UI_PREFIX}/p/{access.project.name}/jobs", status_code=303)


@router.post("/{job_id}/retry")
def retry(job_id: DbId, request: Request, access: Editor, session: DbSession) -> RedirectResponse:
    """Queue the job's config again as a new job (checked again, as any submission)."""
    job = queue.get_job(session, access.project, job_id)
    queue.submit(
        session,
        access.user,
        access.project,
        job.kind,
        dict(job.config),
        max_attempts=job.max_attempts,
        timeout_s=job.timeout_s,
        pretrained=request.app.state.settings.pretrained,
    )
    return RedirectResponse(f"{UI_PREFIX}/p/{access.project.name}/jobs", status_code=303)
