"""What every page uses: `render` (a template with the layout's context), the session cookie and
its CSRF token, the content-security policy, and `wants_html` (a browser, not an API client).

The session is an API token of its own ("web session", 12 hours), issued at sign-in and kept in an
HttpOnly, SameSite=Lax cookie scoped to ``/ui``; `modelworks.server.dependencies.current_user`
reads it there, so every page is authorized by the same dependencies as the API. The CSRF token is
derived from the session (an HMAC of it), so it needs no storage and dies with the session.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from modelworks.platform import projects
from modelworks.platform.access import ProjectAccess
from modelworks.platform.roles import Role
from modelworks.server.dependencies import SESSION_COOKIE, UI_PREFIX
from modelworks.ui import i18n

HERE = Path(__file__).parent
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
# Scripts, styles and images from this server only; forms post back to it; never framed.
POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SWITCHER_SIZE = 100  # projects listed in the header's switcher

# Autoescape everything (every template is HTML); a name that is not defined is an error, not "".
templates = Jinja2Templates(
    env=jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True, undefined=jinja2.StrictUndefined
    )
)


def csrf_for(session_token: str) -> str:
    """The CSRF token of a session: an HMAC of the session's secret, so it cannot be forged without it."""
    return hmac.new(session_token.encode(), b"modelworks-ui-csrf", hashlib.sha256).hexdigest()


def csrf_token(request: Request) -> str:
    """This session's CSRF token ('' when the request carries no session cookie)."""
    cookie = request.cookies.get(SESSION_COOKIE)
    return csrf_for(cookie) if cookie else ""


def language(request: Request) -> str:
    return i18n.negotiate(request.cookies.get(i18n.LANG_COOKIE), request.headers.get("accept-language"))


def wants_html(request: Request) -> bool:
    """A browser asking for a page (its Accept names text/html), not an API client."""
    return "text/html" in request.headers.get("accept", "")


def can(access: ProjectAccess | None, role: Role | str) -> bool:
    """Whether the signed-in user may do what needs ``role`` in the page's project."""
    if access is None:
        return False
    return access.user.is_admin or (access.role is not None and access.role.allows(Role(role)))


def _switcher(request: Request) -> list[str]:
    user = getattr(request.state, "user", None)
    if user is None:
        return []
    with request.app.state.sessions() as session:
        page = projects.list_projects(session, user, SWITCHER_SIZE, 0)
        return [access.project.name for access in page.items]


def when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "—"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes} min {secs} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"


templates.env.filters["when"] = when
templates.env.filters["duration"] = duration


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """``template`` rendered in the page layout, in the request's language.

    The layout gets: ``_`` (the translator), ``lang``, ``languages``, ``user`` (or None),
    ``projects`` (the switcher), ``access`` (a `ProjectAccess` when the page is in a project),
    ``can(role)``, ``csrf_token`` and ``csrf_field``, ``ui`` (the prefix) and ``query(**changes)`` (this
    page's query string with some parameters changed); pages add their own ``context``."""
    lang = language(request)
    access = context.get("access")
    ctx = {
        "_": i18n.translator(lang),
        "lang": lang,
        "languages": i18n.LANGUAGES,
        "user": getattr(request.state, "user", None),
        "projects": _switcher(request),
        "access": access,
        "project": access.project.name if access is not None else None,
        "can": lambda role: can(access, role),
        "csrf_token": csrf_token(request),
        "csrf_field": CSRF_FIELD,
        "section": None,
        "ui": UI_PREFIX,
        "query": lambda **changes: urlencode({**request.query_params, **changes}),
        **context,
    }
    response = templates.TemplateResponse(request, template, ctx, status_code=status_code)
    response.headers["Content-Security-Policy"] = POLICY
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Language"] = lang
    return response
