"""The run views: a job's run page (live curves and log while it trains, then its report, config,
artifacts and lineage), comparing runs, and a tuning study.

Every route is a project route authorized by the API's own dependency (`Viewer`: a member of
the project, any role), so a user who cannot read a run through the API cannot see its page
(404 for another team's project). Pages are server-rendered; the charts and the live poll are
``static/runs.js``: the pages carry their series as JSON data, and live pages poll ``.../live``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse

from modelworks.jobs import queue
from modelworks.platform import runs
from modelworks.platform.ids import DbId
from modelworks.platform.storage import Storage
from modelworks.server.dependencies import DbSession, Viewer
from modelworks.server.downloads import Download
from modelworks.server.routers.registry import send
from modelworks.ui import runs_compare, runs_study
from modelworks.ui.runs_report import BOX
from modelworks.ui.runs_view import live_update, run_page
from modelworks.ui.series import job_series
from modelworks.ui.web import render

router = APIRouter(prefix="/p/{project}")

After = Annotated[int, Query(ge=0, le=2**62, description="only points after this id")]


def _storage(request: Request) -> Storage:
    return request.app.state.datastore.storage


def _json(data: object) -> JSONResponse:
    response = JSONResponse(data)
    response.headers["Cache-Control"] = "no-store"
    return response


# --- the run page


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
def job_page(job_id: DbId, access: Viewer, session: DbSession, request: Request) -> HTMLResponse:
    """A job's run page: live while it trains, with the run's report once it is recorded.
    A tune job's page is its study."""
    job = queue.get_job(session, access.project, job_id)
    if job.kind == "tune":
        return study_page(job_id, access, session, request)
    page = run_page(session, _storage(request), request.app.state.settings, access.project, job_id=job_id)
    return render(request, "runs/run.html", access=access, section="jobs", page=page, box=BOX, title=page.name)


@router.get("/runs/{run_id}", response_class=HTMLResponse)
def recorded_run_page(run_id: DbId, access: Viewer, session: DbSession, request: Request) -> HTMLResponse:
    """A recorded run's page (the same page as its job's)."""
    page = run_page(session, _storage(request), request.app.state.settings, access.project, run_id=run_id)
    return render(request, "runs/run.html", access=access, section="jobs", page=page, box=BOX, title=page.name)


@router.get("/runs/{run_id}/report", response_class=HTMLResponse)
def report_fragment(run_id: DbId, access: Viewer, session: DbSession, request: Request) -> HTMLResponse:
    """The report part of a run page alone: what the page inserts when its job has just finished."""
    page = run_page(session, _storage(request), request.app.state.settings, access.project, run_id=run_id)
    return render(request, "runs/_finished.html", access=access, page=page, box=BOX)


@router.get("/jobs/{job_id}/series")
def series(
    job_id: DbId,
    access: Viewer,
    session: DbSession,
    after: After = 0,
) -> JSONResponse:
    """The job's metric series, each cut down to its min/max envelope (`modelworks.ui.series`)."""
    job = queue.get_job(session, access.project, job_id)
    return _json(job_series(session, job.id, after=after).as_json())


@router.get("/jobs/{job_id}/live")
def live(
    job_id: DbId,
    access: Viewer,
    session: DbSession,
    request: Request,
    after: After = 0,
    log_after: Annotated[int, Query(ge=0, le=2**62, description="only log lines after this seq")] = 0,
) -> JSONResponse:
    """What a live page polls for: state, new metric points, new log lines."""
    job = queue.get_job(session, access.project, job_id)
    return _json(live_update(session, request.app.state.settings, job, after, log_after))


@router.get("/runs/{run_id}/files/{path:path}", response_class=Download)
def download(run_id: DbId, path: str, access: Viewer, session: DbSession, request: Request) -> Download:
    """A run's file, through the API's download (checked against its SHA-256 first)."""
    return send(*runs.open_artifact(_storage(request), runs.get_run(session, access.project, run_id), path))


# --- compare


@router.get("/compare", response_class=HTMLResponse, response_model=None)
def compare_page(
    access: Viewer,
    session: DbSession,
    request: Request,
    runs_: Annotated[list[str], Query(alias="runs", description="2 to 5 run ids, e.g. 3,7")] = [],  # noqa: B006
) -> HTMLResponse | RedirectResponse:
    """2 to 5 runs: overlaid curves, their parameters and metrics, and a diff of their configs
    (``runs=3&runs=7`` is what the jobs table's checkboxes send)."""
    ids = runs_compare.parse_ids(",".join(runs_))
    view = runs_compare.compare(session, request.app.state.settings, access.project, ids)
    series = runs_compare.compare_series(session, access.project, ids)
    return render(
        request,
        "runs/compare.html",
        access=access,
        section="jobs",
        view=view,
        ids=",".join(map(str, ids)),
        series=series,
    )


@router.get("/compare/series")
def compare_series(
    access: Viewer,
    session: DbSession,
    runs_: Annotated[str, Query(alias="runs", max_length=200)] = "",
) -> JSONResponse:
    return _json(runs_compare.compare_series(session, access.project, runs_compare.parse_ids(runs_)))


# --- tuning study


@router.get("/jobs/{job_id}/study", response_class=HTMLResponse)
def study_page(job_id: DbId, access: Viewer, session: DbSession, request: Request) -> HTMLResponse:
    """A tune job's trials, optimization history and parameter importance."""
    job = runs_study.tune_job(queue.get_job(session, access.project, job_id))
    study = runs_study.study(session, request.app.state.settings, job)
    run = runs.job_run(session, job.id)
    series = job_series(session, job.id).as_json()
    return render(
        request,
        "runs/study.html",
        access=access,
        section="jobs",
        study=study,
        run=run,
        series=series,
        title=f"study {job.id}",
    )


@router.get("/jobs/{job_id}/study/importance")
def study_importance(job_id: DbId, access: Viewer, session: DbSession, request: Request) -> JSONResponse:
    """The study's parameter importance, computed on first request (per number of finished trials)."""
    job = runs_study.tune_job(queue.get_job(session, access.project, job_id))
    return _json(runs_study.importance(request.app.state.settings, job))
