"""Shared dependencies: the database session, authentication, and the access declarations.

Every route under /api/v1 names exactly how it is authorized by depending on one of

* `any_user`            — any authenticated user (their own account, tokens, project list);
* `admin_user`          — an admin;
* `require_role(role)`  — a member of the ``{project}`` in the path with at least ``role``.

Each of these depends on `current_user`, which turns the ``Authorization: Bearer <token>``
header into a `User` or answers 401. Under ``/ui`` (the web UI) the token may instead come from the
session cookie, which the browser sends only there (`modelworks.ui.web`; the UI checks a CSRF token
on every state-changing request it authenticates that way). `modelworks.server.guard` refuses to start an app with a
route that declares none of them. Each also declares the refusals it answers (`ANSWERS`), which
`modelworks.server.openapi` writes into every operation that depends on it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Path, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from modelworks.platform import tokens
from modelworks.platform.access import ProjectAccess, authorize_project
from modelworks.platform.db.models import User
from modelworks.platform.db.paging import DEFAULT_LIMIT, MAX_LIMIT
from modelworks.platform.errors import Forbidden, Unauthenticated
from modelworks.platform.ids import Offset
from modelworks.platform.names import NAME_PATTERN, NAME_RULE
from modelworks.platform.roles import Role

# The access declarations, by the dependency that enforces them; read by the startup guard.
ACCESS_RULES: dict[Callable[..., object], str] = {}
# What a dependency answers when it refuses, by status; read by `modelworks.server.openapi`.
ANSWERS: dict[Callable[..., object], dict[int, str]] = {}


def answers(refusals: dict[int, str]) -> Callable[[Callable], Callable]:
    """Declare the statuses a dependency answers when it refuses a request, and why."""

    def mark(dependency: Callable) -> Callable:
        ANSWERS[dependency] = refusals
        return dependency

    return mark


def access_rule(description: str, refusals: dict[int, str] | None = None) -> Callable[[Callable], Callable]:
    """Mark a dependency as an access declaration (see the module docstring), with the
    statuses it answers when it refuses (besides `current_user`'s)."""

    def mark(dependency: Callable) -> Callable:
        ACCESS_RULES[dependency] = description
        return answers(refusals or {})(dependency)

    return mark


def get_session(request: Request) -> Iterator[Session]:
    """One database session per request, closed (and rolled back if uncommitted) at the end."""
    with request.app.state.sessions() as session:
        yield session


DbSession = Annotated[Session, Depends(get_session)]

UI_PREFIX = "/ui"
SESSION_COOKIE = "mw_session"  # the web UI's session: an API token of its own, HttpOnly, Path=/ui

_bearer = HTTPBearer(
    auto_error=False, description="an API token: modelworks up prints the first; POST /api/v1/tokens makes more"
)


@answers(
    {
        401: "missing, malformed, unknown, revoked or expired token",
        429: "too many refused tokens from this address; retry after Retry-After seconds",
    }
)
def current_user(
    request: Request, session: DbSession, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> User:
    """The user whose token is in the Authorization header; 401 for a missing, malformed,
    unknown, revoked or expired token, 429 once the client's address has had too many tokens
    refused (`modelworks.server.ratelimit`)."""
    presented = credentials.credentials if credentials is not None else session_cookie(request)
    if presented is None:
        raise Unauthenticated("missing or malformed credentials: send the header 'Authorization: Bearer <token>'")
    try:
        return tokens.authenticate(session, presented)
    except Unauthenticated:
        request.app.state.auth_failures.refused(request.client.host if request.client else "unknown")
        raise


def session_cookie(request: Request) -> str | None:
    """The web UI's session token, on a request to the UI that carries no Authorization header."""
    if request.url.path != UI_PREFIX and not request.url.path.startswith(UI_PREFIX + "/"):
        return None
    if "authorization" in request.headers:  # a malformed header is refused as such, not replaced
        return None
    return request.cookies.get(SESSION_COOKIE)


CurrentUser = Annotated[User, Depends(current_user)]


@access_rule("any authenticated user")
def any_user(user: CurrentUser) -> User:
    return user


@access_rule("admin", {403: "only an admin can do this"})
def admin_user(user: CurrentUser) -> User:
    if not user.is_admin:
        raise Forbidden("only an admin can do this")
    return user


def require_role(minimum: Role | str) -> Callable[..., ProjectAccess]:
    """A dependency that authorizes the caller for the ``{project}`` path parameter with at
    least the ``minimum`` role, and returns their `ProjectAccess`."""
    minimum = Role(minimum)

    def project_access(
        project: Annotated[str, Path(description="project name")], user: CurrentUser, session: DbSession
    ) -> ProjectAccess:
        return authorize_project(session, user, project, minimum)

    project_access.__name__ = f"require_{minimum.value}"
    refusals = {404: "no such project, or you are not a member of it"}
    if not all(role.allows(minimum) for role in Role):  # some member's role falls short
        refusals[403] = f"you are a member with a role below {minimum.value}"
    return access_rule(f"project role >= {minimum.value}", refusals)(project_access)


Viewer = Annotated[ProjectAccess, Depends(require_role(Role.viewer))]
Editor = Annotated[ProjectAccess, Depends(require_role(Role.editor))]
Owner = Annotated[ProjectAccess, Depends(require_role(Role.owner))]
AnyUser = Annotated[User, Depends(any_user)]
Admin = Annotated[User, Depends(admin_user)]


# A dataset, model or alias name in a path: one that breaks the naming rule is a 422 (it cannot exist).
PathName = Annotated[str, Path(pattern=NAME_PATTERN, description=NAME_RULE)]


@dataclass(frozen=True)
class PageParams:
    limit: int
    offset: int


def page_params(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description=f"rows per page, at most {MAX_LIMIT}")] = DEFAULT_LIMIT,
    offset: Annotated[Offset, Query(description="rows to skip")] = 0,
) -> PageParams:
    return PageParams(limit=limit, offset=offset)


Paging = Annotated[PageParams, Depends(page_params)]
