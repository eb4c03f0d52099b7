"""Models: the registry (models, their versions and aliases, and each model's audit history),
registering a run as a new version, and moving an alias — through the same platform functions as
the API's registry routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from modelworks.platform import registry, runs
from modelworks.platform.access import ProjectAccess
from modelworks.platform.db.models import AuditLog
from modelworks.platform.ids import DbId
from modelworks.platform.names import NAME_PATTERN
from modelworks.platform.roles import Role
from modelworks.server.dependencies import UI_PREFIX, DbSession, Editor, Paging, PathName, Viewer
from modelworks.ui.continual import policies_of_model
from modelworks.ui.web import can, render

router = APIRouter(prefix="/p/{project}/models")
RECENT_RUNS = 50  # offered in the "register a run" form
HISTORY = 50  # audit entries shown for a model

Name = Annotated[str, Form(pattern=NAME_PATTERN)]


def model_history(session: Session, access: ProjectAccess, name: str) -> list[AuditLog]:
    """The audit entries about model ``name`` (its versions and aliases), newest first. The audit
    log is for editors and owners, as in the API (``GET /projects/{project}/audit``)."""
    if not can(access, Role.editor):
        return []
    escaped = name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    query = (
        select(AuditLog)
        .where(
            AuditLog.project_id == access.project.id,
            or_(
                AuditLog.target.like(f"model:{escaped}@%", escape="\\"),
                AuditLog.target.like(f"model:{escaped}#%", escape="\\"),
            ),
        )
        .order_by(AuditLog.id.desc())
        .limit(HISTORY)
    )
    return list(session.scalars(query))


@router.get("", response_class=HTMLResponse)
def models_page(request: Request, access: Viewer, session: DbSession, paging: Paging) -> HTMLResponse:
    page = registry.list_models(session, access.project, paging.limit, paging.offset)
    recent = runs.list_runs(session, access.project, None, RECENT_RUNS, 0).items if can(access, Role.editor) else []
    return render(request, "models/list.html", access=access, section="models", page=page, runs=recent)


@router.get("/{name}", response_class=HTMLResponse)
def model_page(request: Request, name: PathName, access: Viewer, session: DbSession) -> HTMLResponse:
    model, versions, aliases = registry.get_model(session, access.project, name)
    return render(
        request,
        "models/model.html",
        access=access,
        section="models",
        model=model,
        versions=versions[::-1],
        aliases=aliases,
        history=model_history(session, access, name),
        policies=policies_of_model(session, access, model.id),
    )


@router.post("/register")
def register(
    request: Request,
    access: Editor,
    session: DbSession,
    name: Name,
    run_id: Annotated[DbId, Form()],
) -> RedirectResponse:
    """Freeze a run as the next version of model ``name`` (created on first use)."""
    run = runs.get_run(session, access.project, run_id)
    registry.register_version(session, request.app.state.datastore.storage, access, name, run)
    return RedirectResponse(f"{UI_PREFIX}/p/{access.project.name}/models/{name}", status_code=303)


@router.post("/{name}/aliases")
def move_alias(
    name: PathName, access: Editor, session: DbSession, alias: Name, version: Annotated[DbId, Form()]
) -> RedirectResponse:
    """Point ``alias`` at ``version``, creating or moving it."""
    registry.set_alias(session, access, name, alias, version)
    return RedirectResponse(f"{UI_PREFIX}/p/{access.project.name}/models/{name}", status_code=303)


@router.post("/{name}/aliases/{alias}/delete")
def delete_alias(name: PathName, alias: PathName, access: Editor, session: DbSession) -> RedirectResponse:
    registry.delete_alias(session, access, name, alias)
    return RedirectResponse(f"{UI_PREFIX}/p/{access.project.name}/models/{name}", status_code=303)
