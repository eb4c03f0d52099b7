"""`create_app`: the API assembled from its routers. No endpoint logic lives here."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from fastapi import APIRouter, Depends, FastAPI

from modelworks import __version__
from modelworks.platform.datasets import DataStore
from modelworks.platform.db import make_engine, session_factory, upgrade
from modelworks.platform.settings import Settings
from modelworks.server.dependencies import current_user
from modelworks.server.docs import install_docs
from modelworks.server.errors import error_response, install_error_handlers
from modelworks.server.guard import check_routes
from modelworks.server.middleware import BodyLimits, SecurityHeaders
from modelworks.server.openapi import install_openapi
from modelworks.server.ratelimit import AuthFailures
from modelworks.server.routers import audit, datasets, health, jobs, members, projects, registry, serving, tokens, users

API_PREFIX = "/api/v1"


def create_app(settings: Settings) -> FastAPI:
    """The platform API for ``settings``; migrations are applied when the server starts."""
    # Here, not at the top: the UI's modules import the server's (a browser-facing layer on top of it).
    from modelworks.ui.app import UPLOAD_PATH as UI_UPLOAD_PATH
    from modelworks.ui.app import install_ui

    engine = make_engine(settings.database_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await anyio.to_thread.run_sync(upgrade, engine)
        yield
        engine.dispose()

    # FastAPI's /docs and /redoc load scripts from a CDN: modelworks.server.docs serves /docs locally.
    app = FastAPI(title="modelworks", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.settings = settings
    app.state.sessions = session_factory(engine)
    app.state.datastore = DataStore.from_settings(settings)
    app.state.auth_failures = AuthFailures(settings.auth_failures, settings.auth_window_s)
    install_error_handlers(app)
    install_docs(app)

    app.include_router(health.router)
    # Every API route authenticates: the dependency is attached once, here, to the whole tree.
    api = APIRouter(prefix=API_PREFIX, dependencies=[Depends(current_user)])
    for module in (users, tokens, projects, members, audit, jobs, registry, serving):
        api.include_router(module.router)
    api.include_router(datasets.router)
    api.include_router(datasets.admin_router)
    app.include_router(api)
    install_ui(app)  # the web UI at /ui: pages with the same access declarations as the API

    check_routes(app)  # and each declares its authorization, or the app is not built
    install_openapi(app)  # the document declares what each route really answers
    # Outermost last: the security headers also go on the body limits' refusals.
    app.add_middleware(
        BodyLimits,
        max_body=int(settings.max_body_mb * (1 << 20)),
        max_stream=app.state.datastore.max_upload_bytes,
        idle_timeout_s=settings.body_timeout_s,
        refuse=error_response,
        streamed=[API_PREFIX + datasets.UPLOAD_PATH, UI_UPLOAD_PATH],
    )
    app.add_middleware(SecurityHeaders, api_prefix=API_PREFIX + "/")
    return app
