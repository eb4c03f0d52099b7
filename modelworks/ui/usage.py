"""Usage: the project's compute time and cost (in all, per job and its run) and its inference
usage and charge per caller (inference key or user) — the figures of the API's usage routes."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select

from modelworks.jobs import queue
from modelworks.platform import inference_usage
from modelworks.platform.db.models import Run
from modelworks.server.dependencies import DbSession, Viewer
from modelworks.ui.web import render

router = APIRouter(prefix="/p/{project}/usage")


def per_caller(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Inference usage rows (per day, caller and deployment) summed per caller."""
    callers: dict[tuple[str | None, str | None], dict[str, Any]] = {}
    for r in rows:
        who = callers.setdefault(
            (r["key_id"], r["user"]),
            {"key": r["key_name"], "key_id": r["key_id"], "user": r["user"], "requests": 0, "rows": 0, "charge": 0.0},
        )
        who["requests"] += r["requests"]
        who["rows"] += r["rows"]
        who["charge"] = round(who["charge"] + r["charge"], 6)
    return sorted(callers.values(), key=lambda c: -c["charge"])


@router.get("", response_class=HTMLResponse)
def usage_page(
    request: Request,
    access: Viewer,
    session: DbSession,
    since: Annotated[date | None, Query()] = None,
    until: Annotated[date | None, Query()] = None,
) -> HTMLResponse:
    settings = request.app.state.settings
    compute = queue.usage(session, settings, access.project)
    ids = [j["id"] for j in compute["per_job"]]
    runs = dict(session.execute(select(Run.job_id, Run.id).where(Run.job_id.in_(ids))).all()) if ids else {}
    inference = inference_usage.usage(session, settings, access.project, since, until)
    return render(
        request,
        "usage.html",
        access=access,
        section="usage",
        compute=compute,
        runs=runs,
        inference=inference,
        callers=per_caller(inference["rows"]),
        since=since.isoformat() if since else "",
        until=until.isoformat() if until else "",
    )
