"""Projects: create, list yours, read, delete (owners)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from modelworks.platform import projects
from modelworks.platform.access import ProjectAccess
from modelworks.server.dependencies import AnyUser, DbSession, Owner, Paging, Viewer
from modelworks.server.schemas import Page, ProjectCreate, ProjectOut

router = APIRouter(prefix="/projects", tags=["projects"])


def project_out(access: ProjectAccess) -> ProjectOut:
    p = access.project
    return ProjectOut(
        name=p.name,
        description=p.description,
        created_at=p.created_at,
        created_by=p.created_by.name if p.created_by else None,
        role=access.role,
    )


@router.post("", status_code=201)
def create_project(body: ProjectCreate, user: AnyUser, session: DbSession) -> ProjectOut:
    """Create a project; you become its owner."""
    return project_out(projects.create_project(session, user, body.name, body.description))


@router.get("")
def list_projects(user: AnyUser, session: DbSession, paging: Paging) -> Page[ProjectOut]:
    """The projects you are a member of (all of them, for an admin)."""
    page = projects.list_projects(session, user, paging.limit, paging.offset)
    return Page[ProjectOut].of(page, project_out)


@router.get("/{project}")
def get_project(access: Viewer) -> ProjectOut:
    return project_out(access)


@router.delete("/{project}", status_code=204)
def delete_project(access: Owner, session: DbSession, request: Request) -> Response:
    """Delete the project with its members, datasets, jobs, runs, models and their files (its
    audit log stays); 409 while one of its jobs is running."""
    projects.delete_project(
        session, access.user, access.project, request.app.state.datastore.storage, request.app.state.settings.work_dir
    )
    return Response(status_code=204)
