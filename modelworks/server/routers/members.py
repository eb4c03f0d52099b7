"""Project members: anyone in the project can see them; owners change them."""

from __future__ import annotations

from fastapi import APIRouter, Response

from modelworks.platform import members
from modelworks.platform.db.models import Membership
from modelworks.server.dependencies import DbSession, Owner, Paging, Viewer
from modelworks.server.schemas import MemberOut, MemberSet, Page

router = APIRouter(prefix="/projects/{project}/members", tags=["members"])


def member_out(m: Membership) -> MemberOut:
    return MemberOut(user=m.user.name, role=m.role, created_at=m.created_at, updated_at=m.updated_at)


@router.get("")
def list_members(access: Viewer, session: DbSession, paging: Paging) -> Page[MemberOut]:
    page = members.list_members(session, access.project, paging.limit, paging.offset)
    return Page[MemberOut].of(page, member_out)


@router.get("/{user}")
def get_member(user: str, access: Viewer, session: DbSession) -> MemberOut:
    return member_out(members.get_member(session, access.project, user))


@router.put("/{user}")
def set_member(user: str, body: MemberSet, access: Owner, session: DbSession) -> MemberOut:
    """Add a user to the project with a role, or change their role."""
    return member_out(members.set_member(session, access.user, access.project, user, body.role))


@router.delete("/{user}", status_code=204)
def remove_member(user: str, access: Owner, session: DbSession) -> Response:
    members.remove_member(session, access.user, access.project, user)
    return Response(status_code=204)
