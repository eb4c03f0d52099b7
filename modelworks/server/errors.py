"""One error shape for the whole API: ``{"error": {"code": ..., "message": ...}}``.

User errors map to their status (401, 403, 404, 408, 409, 413, 422, 429 with Retry-After, 500 for
stored data that fails its integrity check, else 400); request validation errors to
422 with each field's path in the message; anything unexpected to a 500 that says nothing of
the internals (the traceback goes to the server log). No message names a place on the server's
disk: the data folder in a message is replaced by ``$MODELWORKS_HOME`` (`modelworks.server.redact`).
"""

from __future__ import annotations

import logging
from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from starlette.exceptions import HTTPException

from modelworks.errors import UserError
from modelworks.platform.errors import (
    Conflict,
    Forbidden,
    NotFound,
    RequestTimeout,
    StoredDataError,
    TooLarge,
    TooManyRequests,
    Unauthenticated,
    Unprocessable,
)
from modelworks.server.guard import allowed_methods
from modelworks.server.redact import redact

log = logging.getLogger("modelworks.server")

MAX_PROBLEMS = 20  # validation problems listed in one answer; the rest are counted
STATUS = {
    Unauthenticated: 401,
    Forbidden: 403,
    NotFound: 404,
    RequestTimeout: 408,
    Conflict: 409,
    TooLarge: 413,
    Unprocessable: 422,
    TooManyRequests: 429,
    StoredDataError: 500,
}
# The headers an error answer carries, by status, as OpenAPI header objects (`modelworks.server.openapi`).
ERROR_HEADERS = {
    401: {
        "WWW-Authenticate": {
            "description": "the scheme to authenticate with",
            "schema": {"type": "string", "const": "Bearer"},
        }
    },
    429: {
        "Retry-After": {"description": "seconds to wait before retrying", "schema": {"type": "integer", "minimum": 1}}
    },
}


def error_response(
    status: int, message: str, code: str | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    code = code or HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
    if status == 401:
        headers = {"WWW-Authenticate": "Bearer", **(headers or {})}
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


async def user_error(request: Request, exc: UserError) -> JSONResponse:
    status = next((s for cls, s in STATUS.items() if isinstance(exc, cls)), 400)
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, TooManyRequests) else None
    return error_response(status, redact(str(exc), request.app.state.settings), headers=headers)


async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
    headers = exc.headers
    if exc.status_code == 405:  # Starlette's Allow names one route's methods; a path may have several routes
        headers = {**(headers or {}), "Allow": ", ".join(allowed_methods(request.app, request.scope["path"]))}
    return error_response(exc.status_code, str(exc.detail), headers=headers)


async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    problems = []
    for err in errors[:MAX_PROBLEMS]:
        where = ".".join(str(part) for part in err.get("loc", ()))
        problems.append(f"{where}: {err.get('msg', 'invalid')}" if where else err.get("msg", "invalid"))
    if len(errors) > MAX_PROBLEMS:
        problems.append(f"... and {len(errors) - MAX_PROBLEMS} more problems")
    return error_response(422, "invalid request: " + "; ".join(problems), code="validation_error")


async def integrity_error(request: Request, exc: IntegrityError) -> JSONResponse:
    # A uniqueness race the services did not catch; the change was not made.
    return error_response(409, "the change conflicts with the current state; reload and retry")


async def data_error(request: Request, exc: DataError) -> JSONResponse:
    return error_response(400, "the database refused a value in the request")


async def operational_error(request: Request, exc: OperationalError) -> JSONResponse:
    if "locked" in str(exc.orig).lower():  # SQLite: another writer held the lock too long
        return error_response(503, "the database is busy; retry in a moment", headers={"Retry-After": "1"})
    return await internal_error(request, exc)


async def internal_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal server error; the server log has the details")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(UserError, user_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(IntegrityError, integrity_error)
    app.add_exception_handler(DataError, data_error)
    app.add_exception_handler(OperationalError, operational_error)
    app.add_exception_handler(Exception, internal_error)
