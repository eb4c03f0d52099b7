"""Signing in and out, and the CSRF check every UI route runs.

Sign-in: the page's script sends the token the user pasted as ``Authorization: Bearer`` to
``POST /ui/session`` (so it is checked, and rate-limited, exactly like an API call, and never
appears in a URL or a form post); the answer sets the session cookie to a fresh token of its own,
valid for `SESSION_HOURS`. Sign-out revokes that token and clears the cookie.
"""

from __future__ import annotations

import hmac
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from modelworks.platform import tokens
from modelworks.platform.db.models import ApiToken, utcnow
from modelworks.platform.errors import Conflict, Forbidden
from modelworks.server.dependencies import SESSION_COOKIE, UI_PREFIX, AnyUser, CurrentUser, DbSession
from modelworks.ui.web import CSRF_FIELD, CSRF_HEADER, csrf_for, render

SESSION_HOURS = 12
SESSION_TOKEN_NAME = "web session"
NextPage = Annotated[str, Query(alias="next", max_length=2000, description="a path inside the UI")]
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")

public = APIRouter(prefix=UI_PREFIX)  # the sign-in page: on the guard's public allow-list
router = APIRouter()


async def csrf_protect(request: Request, user: CurrentUser) -> None:
    """Refuse (403) a state-changing request authenticated by the session cookie unless it
    carries the session's CSRF token, in the ``X-CSRF-Token`` header or the ``csrf_token`` form
    field. A request with an Authorization header is not cookie-authenticated: a cross-site page
    cannot send one. Also makes the user available to `render` (the page header)."""
    request.state.user = user
    if request.method in SAFE_METHODS or "authorization" in request.headers:
        return
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(FORM_TYPES):
        field = (await request.form()).get(CSRF_FIELD)
        sent = field if isinstance(field, str) else None
    cookie = request.cookies.get(SESSION_COOKIE, "")
    if not sent or not hmac.compare_digest(sent.encode(), csrf_for(cookie).encode()):
        raise Forbidden("missing or wrong CSRF token: reload the page and try again")


@public.get("/signin", response_class=HTMLResponse)
def signin_page(request: Request, next_page: NextPage = "") -> HTMLResponse:
    """The sign-in form (public). ``next`` is where to go after, a path inside the UI only."""
    return render(request, "signin.html", next=safe_next(next_page))


def safe_next(target: str) -> str:
    """``target`` if it is a path inside the UI, else the UI's start page (no open redirect)."""
    ok = target.startswith(UI_PREFIX + "/") and not target.startswith("//") and "\\" not in target
    return target if ok else UI_PREFIX + "/"


@router.post("/session")
def sign_in(request: Request, user: AnyUser, session: DbSession, next_page: NextPage = "") -> JSONResponse:
    """Start a session for the bearer of the Authorization header: a cookie holding a new token."""
    expires = utcnow() + timedelta(hours=SESSION_HOURS)
    _, token = tokens.issue_token(session, user, SESSION_TOKEN_NAME, expires)
    response = JSONResponse({"next": safe_next(next_page)})
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=SESSION_HOURS * 3600,
        path=UI_PREFIX,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@router.post("/signout")
def sign_out(request: Request, user: AnyUser, session: DbSession) -> Response:
    """End the session: its token is revoked and the cookie cleared."""
    cookie = request.cookies.get(SESSION_COOKIE, "")
    match = tokens.TOKEN_FORMAT.fullmatch(cookie)
    row = session.get(ApiToken, match["id"]) if match else None
    if row is not None and row.user_id == user.id and row.name == SESSION_TOKEN_NAME:
        try:
            tokens.revoke_token(session, user, row.id)
        except Conflict:  # the last admin token: kept valid (it expires on its own), the cookie still goes
            pass
    response = RedirectResponse(UI_PREFIX + "/signin", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path=UI_PREFIX, httponly=True, samesite="lax")
    return response
