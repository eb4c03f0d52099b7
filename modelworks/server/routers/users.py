"""Users: an admin creates and lists them (a new user gets a first token); everyone can see who they are."""

from __future__ import annotations

from fastapi import APIRouter

from modelworks.platform import users
from modelworks.server.dependencies import Admin, AnyUser, DbSession, Paging
from modelworks.server.schemas import Page, TokenCreated, UserCreate, UserCreated, UserOut

router = APIRouter(prefix="/users", tags=["users"])


@router.post("", status_code=201)
def create_user(body: UserCreate, admin: Admin, session: DbSession) -> UserCreated:
    """Create a user and their first API token (shown in this response only)."""
    user, row, token = users.create_user(session, admin, body.name, body.is_admin)
    return UserCreated(user=UserOut.model_validate(user), token=TokenCreated.of(row, token))


@router.get("")
def list_users(admin: Admin, session: DbSession, paging: Paging) -> Page[UserOut]:
    """Every user, by name (admins only)."""
    return Page[UserOut].of(users.list_users(session, paging.limit, paging.offset), UserOut.model_validate)


@router.get("/me")
def me(user: AnyUser) -> UserOut:
    return UserOut.model_validate(user)
