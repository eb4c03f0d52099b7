"""The start page (your projects) and the project switcher."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from modelworks.platform import projects
from modelworks.platform.names import NAME_PATTERN
from modelworks.server.dependencies import UI_PREFIX, AnyUser, DbSession, Paging, Viewer
from modelworks.ui.web import render

router = APIRouter()


@router.get("/", response_class=HTMLResponse)
def home(request: Request, user: AnyUser, session: DbSession, paging: Paging) -> HTMLResponse:
    """Your projects and your role in each."""
    page = projects.list_projects(session, user, paging.limit, paging.offset)
    return render(request, "projects.html", page=page)


@router.get("/go")
def switch(user: AnyUser, project: Annotated[str, Query(pattern=NAME_PATTERN)]) -> RedirectResponse:
    """The switcher's target: the project's first page (which checks access)."""
    return RedirectResponse(f"{UI_PREFIX}/p/{project}/datasets", status_code=303)


@router.get("/p/{project}")
def project_home(access: Viewer) -> RedirectResponse:
    return RedirectResponse(f"{UI_PREFIX}/p/{access.project.name}/datasets", status_code=303)
