"""Projects: a team's shared space. The creator becomes its first owner.

Project names are secret to non-members: a project you are not in answers exactly as one that
does not exist (`modelworks.platform.access`). Names are unique across the server, so creating
a project must fail when the name is taken, whoever took it; it fails with the same 409 ("not
available") whether the taken name is a project you can see or one you cannot, so the answer
says nothing about the other project beyond the unavoidable: that its name is not free.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from modelworks.errors import UserError
from modelworks.platform import audit
from modelworks.platform.access import ProjectAccess
from modelworks.platform.db.models import Job, Membership, Project, User
from modelworks.platform.db.paging import DEFAULT_LIMIT, Page, paginate
from modelworks.platform.errors import Conflict
from modelworks.platform.names import check_name
from modelworks.platform.roles import Role
from modelworks.platform.storage import Storage

MAX_DESCRIPTION = 500


def not_available(name: str) -> Conflict:
    """The one answer for a taken project name (see the module docstring)."""
    return Conflict(
        f"the project name {name!r} is not available (a project of that name already exists, perhaps one "
        f"you cannot see); choose another"
    )


def create_project(session: Session, user: User, name: str, description: str = "") -> ProjectAccess:
    check_name("project", name)
    if len(description) > MAX_DESCRIPTION:
        raise UserError(f"a project description must be at most {MAX_DESCRIPTION} characters")
    project = Project(name=name, description=description, created_by=user)
    session.add(project)
    try:
        session.flush()
    except IntegrityError as e:
        session.rollback()
        raise not_available(name) from e
    session.add(Membership(project_id=project.id, user_id=user.id, role=Role.owner.value))
    audit.record(
        session, user, "project.create", f"project:{name}", project_id=project.id, detail={"description": description}
    )
    session.commit()
    return ProjectAccess(project=project, user=user, role=Role.owner)


def list_projects(session: Session, user: User, limit: int = DEFAULT_LIMIT, offset: int = 0) -> Page[ProjectAccess]:
    """The projects the user is a member of (every project, for an admin), by name."""
    query = select(Project).order_by(Project.name)
    if not user.is_admin:
        query = query.join(Membership, Membership.project_id == Project.id).where(Membership.user_id == user.id)
    page = paginate(session, query, limit, offset)
    ids = [p.id for p in page.items]
    roles = dict(
        session.execute(
            select(Membership.project_id, Membership.role).where(
                Membership.user_id == user.id, Membership.project_id.in_(ids)
            )
        ).all()
    )
    items = [ProjectAccess(project=p, user=user, role=Role(roles[p.id]) if p.id in roles else None) for p in page.items]
    return Page(items=items, total=page.total, limit=page.limit, offset=page.offset)


def delete_project(session: Session, actor: User, project: Project, storage: Storage, work_dir: Path) -> None:
    """Delete the project with everything in it: memberships, datasets, jobs, runs and models in
    the database, then their files (``<project-id>/`` in the artifact store and in ``work_dir``,
    where its jobs wrote). Its audit entries stay. Refused while a job of it runs: the job's
    process would go on writing files nobody owns."""
    running = session.scalar(
        select(func.count()).select_from(Job).where(Job.project_id == project.id, Job.state == "running")
    )
    if running:
        raise Conflict(
            f"project {project.name!r} has {running} running job{'s' if running > 1 else ''}; "
            f"cancel {'them' if running > 1 else 'it'} first"
        )
    audit.record(session, actor, "project.delete", f"project:{project.name}", project_id=project.id)
    session.delete(project)
    session.commit()
    # After the commit: a failure here leaves unreachable files, never rows without their files.
    storage.remove(str(project.id))
    shutil.rmtree(work_dir / str(project.id), ignore_errors=True)
