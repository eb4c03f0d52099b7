"""The one authorization decision for project-scoped actions.

A member may act when their role is at least the one the action needs; an admin may do
anything. Anyone else is told the project does not exist — the same answer as for a project
that really does not exist — so names of other teams' projects do not leak.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from modelworks.platform.db.models import Membership, Project, User
from modelworks.platform.errors import Forbidden, NotFound
from modelworks.platform.names import is_valid_name
from modelworks.platform.roles import Role


@dataclass(frozen=True)
class ProjectAccess:
    """A project as one user sees it: their role in it (None for an admin who is not a member)."""

    project: Project
    user: User
    role: Role | None


def role_in(session: Session, user: User, project: Project) -> Role | None:
    membership = session.get(Membership, (project.id, user.id))
    return Role(membership.role) if membership is not None else None


def authorize_project(session: Session, user: User, name: str, minimum: Role) -> ProjectAccess:
    """``user``'s access to project ``name`` if it allows ``minimum``; else `NotFound` for
    non-members (and unknown projects) or `Forbidden` for members with too small a role."""
    project = session.scalar(select(Project).where(Project.name == name)) if is_valid_name(name) else None
    role = role_in(session, user, project) if project is not None else None
    if project is None or (role is None and not user.is_admin):
        raise NotFound(f"no project named {name!r}")
    if not user.is_admin and not role.allows(minimum):
        raise Forbidden(f"this needs the {minimum.value} role in project {name!r}; you are {role.value}")
    return ProjectAccess(project=project, user=user, role=role)
