"""Users: an admin creates them (with a first token); everyone can see who they are."""

from __future__ import annotations

from fastapi import APIRouter

from modelworks.platform import users
from modelworks.server.dependencies import Admin, AnyUser, DbSession
from modelworks.server.schemas import TokenCreated, UserCreate, UserCreated, UserOut

router = APIRouter(prefix="/users", tags=["users"])


@router.post("", status_code=201)
def create_user(body: UserCreate, admin: Admin, session: DbSession) -> UserCreated:
    """Create a user and their first API token (shown in this response only)."""
    user, row, token = users.create_user(session, admin, body.name, body.is_admin)
    return UserCreated(user=UserOut.model_validate(user), token=TokenCreated.of(row, token))


@router.get("/me")
def me(user: AnyUser) -> UserOut:
    return UserOut.model_validate(user)
