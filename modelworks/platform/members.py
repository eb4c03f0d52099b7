"""Project memberships: who has which role. A project always keeps at least one owner.

User names are secret to non-admins. Reading or removing a member answers the same 404 ("no user
named X is a member") whether no user has that name or the user is not in the project, so the member routes
cannot be used to learn who has an account. Adding a member (`set_member`, owners only) must
name an existing user and says so when there is none: that is the one place where a project
owner learns that a name exists, the least that inviting someone by name needs.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from modelworks.platform import audit
from modelworks.platform.db.models import Membership, Project, User
from modelworks.platform.db.paging import DEFAULT_LIMIT, Page, paginate
from modelworks.platform.errors import Conflict, NotFound
from modelworks.platform.names import is_valid_name
from modelworks.platform.roles import Role
from modelworks.platform.users import get_user


def list_members(session: Session, project: Project, limit: int = DEFAULT_LIMIT, offset: int = 0) -> Page[Membership]:
    query = (
        select(Membership)
        .join(User, Membership.user_id == User.id)
        .where(Membership.project_id == project.id)
        .order_by(User.name)
    )
    return paginate(session, query, limit, offset)


def get_member(session: Session, project: Project, user_name: str) -> Membership:
    """The membership of ``user_name``; `NotFound` alike for an unknown user and a non-member."""
    user = session.scalar(select(User).where(User.name == user_name)) if is_valid_name(user_name) else None
    membership = session.get(Membership, (project.id, user.id)) if user is not None else None
    if membership is None:
        raise NotFound(f"no user named {user_name!r} is a member of project {project.name!r}")
    return membership


def set_member(session: Session, actor: User, project: Project, user_name: str, role: Role) -> Membership:
    """Add ``user_name`` to the project with ``role``, or change their role."""
    user = get_user(session, user_name)
    _lock(session, project)
    membership = session.get(Membership, (project.id, user.id))
    previous = membership.role if membership is not None else None
    if membership is None:
        membership = Membership(project_id=project.id, user_id=user.id, role=role.value)
        session.add(membership)
    else:
        membership.role = role.value
    _keep_an_owner(session, project)
    audit.record(
        session,
        actor,
        "member.set",
        f"user:{user_name}",
        project_id=project.id,
        detail={"user": user_name, "role": role.value, "previous": previous},
    )
    session.commit()
    return membership


def remove_member(session: Session, actor: User, project: Project, user_name: str) -> None:
    membership = get_member(session, project, user_name)
    _lock(session, project)
    role = membership.role
    session.delete(membership)
    _keep_an_owner(session, project)
    audit.record(
        session,
        actor,
        "member.remove",
        f"user:{user_name}",
        project_id=project.id,
        detail={"user": user_name, "role": role},
    )
    session.commit()


def _lock(session: Session, project: Project) -> None:
    """Serialize membership changes of one project (PostgreSQL row lock; SQLite has one writer)."""
    session.execute(select(Project.id).where(Project.id == project.id).with_for_update())


def _keep_an_owner(session: Session, project: Project) -> None:
    """Refuse a change that leaves the project without an owner (checked after the write, in
    the same transaction, so two concurrent demotions cannot both pass)."""
    session.flush()
    owners = session.scalar(
        select(func.count())
        .select_from(Membership)
        .where(Membership.project_id == project.id, Membership.role == Role.owner.value)
    )
    if not owners:
        session.rollback()
        raise Conflict(f"project {project.name!r} must keep at least one owner; make someone else owner first")
