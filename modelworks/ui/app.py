"""`install_ui`: the web UI's routes, static files and error pages, added to the platform app.

Every page is a FastAPI route under ``/ui`` with the same access declarations as the API
(`modelworks.server.dependencies`), so the startup guard and the route-enumeration test cover it;
the UI router adds `csrf_protect` to all of them. Only the sign-in page and ``/ui/static`` are
public. Errors on UI routes are HTML pages for a browser, the API's JSON shape for anyone else;
a browser without a session is sent to the sign-in page.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from importlib import import_module
from urllib.parse import quote

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from modelworks.errors import UserError
from modelworks.platform.errors import Unauthenticated
from modelworks.server.dependencies import UI_PREFIX
from modelworks.server.errors import http_error, user_error, validation_error
from modelworks.server.redact import redact
from modelworks.ui import session
from modelworks.ui.web import HERE, render, wants_html

STATIC_PATH = UI_PREFIX + "/static"
UPLOAD_PATH = UI_PREFIX + "/p/{project}/datasets/{name}/upload"  # streamed: bounded by the upload limit
# The modules whose `router` holds pages (each route declares its access like an API route).
PAGES = (
    "modelworks.ui.session",
    "modelworks.ui.projects",
    "modelworks.ui.datasets",
    "modelworks.ui.jobs",
    "modelworks.ui.experiment",
    "modelworks.ui.models",
    "modelworks.ui.continual",
    "modelworks.ui.deployments",
    "modelworks.ui.usage",
    "modelworks.ui.runs",
)

Handler = Callable[[Request, Exception], Awaitable[Response]]


def install_ui(app: FastAPI) -> None:
    """Add the UI to ``app`` (before `check_routes` runs)."""
    ui = APIRouter(prefix=UI_PREFIX, dependencies=[Depends(session.csrf_protect)], include_in_schema=False)
    for name in PAGES:
        ui.include_router(import_module(name).router)
    app.include_router(session.public, include_in_schema=False)
    app.include_router(ui)
    app.mount(STATIC_PATH, StaticFiles(directory=HERE / "static"), name="ui-static")
    for exc, api_handler in (
        (UserError, user_error),
        (HTTPException, http_error),
        (RequestValidationError, validation_error),
    ):
        app.add_exception_handler(exc, _html_for_browsers(api_handler))


def _html_for_browsers(api_handler: Handler) -> Handler:
    """The API's handler, except for a browser on a UI page: an error page, or sign-in."""

    async def handle(request: Request, exc: Exception) -> Response:
        path = request.url.path
        if not (path.startswith(UI_PREFIX + "/") or path == UI_PREFIX) or not wants_html(request):
            return await api_handler(request, exc)
        if isinstance(exc, Unauthenticated):
            target = quote(path + (f"?{request.url.query}" if request.url.query else ""), safe="/?=&")
            return RedirectResponse(f"{UI_PREFIX}/signin?next={target}", status_code=303)
        api_answer = await api_handler(request, exc)
        message = redact(str(getattr(exc, "detail", None) or exc), request.app.state.settings)
        if isinstance(exc, RequestValidationError):
            message = "; ".join(f"{'.'.join(map(str, e.get('loc', ())))}: {e.get('msg')}" for e in exc.errors())
        return render(request, "error.html", status_code=api_answer.status_code, message=message)

    return handle
