"""What the run page shows, gathered from the platform: a job (live while it trains) and the run it
recorded — its report, config, artifacts and lineage — and what a live poll returns.

Every read goes through the platform's own functions (`modelworks.jobs.queue`,
`modelworks.platform.runs`) on a project the caller was already authorized for; paths on the
server's disk are rewritten out of configs and log lines as the API does (`modelworks.server.redact`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from modelworks.jobs import queue
from modelworks.platform import runs
from modelworks.platform.db.models import Job, JobLog, Project, Run
from modelworks.platform.settings import Settings
from modelworks.platform.storage import Storage
from modelworks.server.redact import redact
from modelworks.ui.runs_report import ReportView, run_report_view
from modelworks.ui.series import job_series

LOG_TAIL = 200  # lines on the page and at most per poll
LIVE_STATES = ("queued", "running")


def config_yaml(config: dict[str, Any], settings: Settings) -> str:
    """A config as the page shows it: YAML in its own key order, Chinese as is, server paths redacted."""
    return yaml.safe_dump(redact(config, settings), sort_keys=False, allow_unicode=True)


def run_name(run: Run | None, job: Job | None) -> str:
    """The experiment's name (``name`` in its config), else a number."""
    config = (run.config if run is not None else None) or (job.config if job is not None else None) or {}
    name = config.get("name") if isinstance(config, dict) else None
    if name:
        return str(name)
    return f"run {run.id}" if run is not None else f"job {job.id}" if job is not None else ""


@dataclass
class LogLine:
    seq: int
    line: str


def log_tail(session: Session, settings: Settings, job: Job, lines: int = LOG_TAIL, since: int = 0) -> list[LogLine]:
    """The last ``lines`` lines of the job's log after ``since``, oldest first, redacted."""
    last = session.scalar(select(func.max(JobLog.seq)).where(JobLog.job_id == job.id)) or 0
    rows = queue.read_logs(session, job, max(since, last - lines), lines)
    return [LogLine(row.seq, redact(row.line, settings)) for row in rows]


@dataclass
class RunPage:
    project: Project
    name: str
    job: Job | None
    run: Run | None
    report: ReportView | None = None
    config: str = ""
    artifacts: list[dict[str, Any]] = field(default_factory=list)
    lineage: dict[str, Any] = field(default_factory=dict)
    logs: list[LogLine] = field(default_factory=list)
    cost: float | None = None
    series: dict[str, Any] | None = None  # the job's metric series, cut down: drawn without another request

    @property
    def live(self) -> bool:
        return self.job is not None and self.job.state in LIVE_STATES

    @property
    def parent_run(self) -> int | None:
        return self.lineage.get("parent_run")


def run_page(
    session: Session,
    storage: Storage,
    settings: Settings,
    project: Project,
    *,
    job_id: int | None = None,
    run_id: int | None = None,
) -> RunPage:
    """The page of job ``job_id`` or of run ``run_id`` (one of them) of ``project``; NotFound
    for one that is not the project's."""
    if run_id is not None:
        run = runs.get_run(session, project, run_id)
        job = session.get(Job, run.job_id) if run.job_id is not None else None
    else:
        job = queue.get_job(session, project, int(job_id or 0))
        run = runs.job_run(session, job.id)
    page = RunPage(project=project, name=run_name(run, job), job=job, run=run)
    if job is not None:
        page.logs = log_tail(session, settings, job)
        page.series = job_series(session, job.id).as_json()
        page.cost = queue.cost(settings, job.cpu_seconds, job.gpu_seconds)
        page.config = config_yaml(job.config, settings)
    if run is not None:
        page.config = config_yaml(run.config, settings)
        page.artifacts = run.artifacts
        page.lineage = redact(run.lineage, settings)
        page.report = run_report_view(storage, run)
    return page


def live_update(session: Session, settings: Settings, job: Job, after: int, log_after: int) -> dict[str, Any]:
    """What a live chart's poll gets: the job's state, the metric points after ``after`` (or the
    whole series again, cut down; see `modelworks.ui.series.job_series`) and the log lines after
    ``log_after``. ``done`` tells the page to stop polling."""
    run = runs.job_run(session, job.id)
    series = job_series(session, job.id, after=after)
    logs = log_tail(session, settings, job, since=log_after)
    return {
        "state": job.state,
        "done": job.state not in LIVE_STATES,
        "run": run.id if run is not None else None,
        **series.as_json(),
        "logs": [{"seq": line.seq, "line": line.line} for line in logs],
    }
