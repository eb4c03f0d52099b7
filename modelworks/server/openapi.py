"""The OpenAPI document, told true: what each operation can answer, derived from what it is built of.

FastAPI documents an operation's success and a 422 in a shape the API never sends. Everything
else an operation answers comes from the machinery around its function, so it is declared here,
once, from that machinery, for every route (those added later included):

* the dependencies it runs (`modelworks.server.dependencies.ANSWERS`): authentication's 401 and
  429, an admin's 403, a project role's 404 (and 403 where a member's role can fall short);
* its path: a path parameter names something that may not exist (404);
* its parameters and body: a request that does not validate (422), or that cannot be acted on as
  sent (400: a body that is not JSON, a value the database refuses, a file the engine cannot read);
* its body: `BodyLimits`' 413 (too large) and 408 (stalled);
* its method: a change that conflicts with the current state (409, `errors.integrity_error`);
* a download (`Download` as its response class): its media type and headers, and the 500 of a
  stored file that fails its integrity check (`StoredDataError`).

Every error answer has the API's one error body (`ErrorBody`), with the headers that
`modelworks.server.errors` sets on it (``WWW-Authenticate``, ``Retry-After``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from modelworks.server.dependencies import ANSWERS
from modelworks.server.downloads import Download
from modelworks.server.errors import ERROR_HEADERS
from modelworks.server.guard import RouteInfo, dependency_calls, served_routes
from modelworks.server.schemas import ErrorBody

REF = "#/components/schemas/{model}"
WRITES = frozenset({"post", "put", "patch", "delete"})
ERROR_CONTENT = {"application/json": {"schema": {"$ref": REF.format(model=ErrorBody.__name__)}}}


def install_openapi(app: FastAPI) -> None:
    """Make ``app.openapi()`` (and /openapi.json) the document FastAPI writes, told true."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = tell_the_truth(generate(), served_routes(app))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to extend the document


def tell_the_truth(doc: dict[str, Any], routes: list[RouteInfo]) -> dict[str, Any]:
    """``doc`` with every operation's error answers declared (see the module docstring)."""
    by_operation = {(_documented_path(r.path), method.lower()): r for r in routes for method in r.methods}
    for path, operations in doc.get("paths", {}).items():
        for method, operation in operations.items():
            route = by_operation.get((path, method))
            if route is None or route.dependant is None:
                continue
            responses = operation.get("responses", {})
            for status, why in error_answers(route, method, operation).items():
                responses[str(status)] = _error_response(status, why)
            if route.response_class is not None and issubclass(route.response_class, Download):
                responses["200"]["content"] = {Download.media_type: {"schema": {"type": "string", "format": "binary"}}}
                responses["200"]["headers"] = Download.HEADERS
                responses["500"] = _error_response(
                    500, "the stored file failed its integrity check, or no key decrypts it: nothing of it is sent"
                )
            operation["responses"] = dict(sorted(responses.items()))
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):  # FastAPI's 422 body, which the API never sends
        schemas.pop(unused, None)
    error_schema = ErrorBody.model_json_schema(ref_template=REF)
    schemas.update(error_schema.pop("$defs", {}))
    schemas[ErrorBody.__name__] = error_schema
    return doc


def error_answers(route: RouteInfo, method: str, operation: dict[str, Any]) -> dict[int, str]:
    """The error statuses ``route`` can answer for ``method``, each with why."""
    answers: dict[int, list[str]] = {}

    def add(status: int, why: str) -> None:
        if why not in answers.setdefault(status, []):
            answers[status].append(why)

    calls: list[Callable[..., object]] = list(dependency_calls(route.dependant)) if route.dependant else []
    for call in calls:
        for status, why in ANSWERS.get(call, {}).items():
            add(status, why)
    names = re.findall(r"\{(\w+)", route.path)
    if names:
        add(404, f"what the path names does not exist ({', '.join(names)})")
    if operation.get("parameters") or "requestBody" in operation:
        add(422, "the request does not validate: the message names each field and why")
        add(
            400,
            "the request cannot be acted on as sent (e.g. a body that is not JSON, a value the database "
            "refuses, a file the engine cannot read): the message says why",
        )
    if "requestBody" in operation:
        add(413, "the request body is larger than the server's limit")
        add(408, "the request body stalled: nothing arrived for the server's body timeout")
    if method in WRITES:
        add(409, "the change conflicts with the current state")
    return {status: "; ".join(whys) for status, whys in answers.items()}


def _error_response(status: int, why: str) -> dict[str, Any]:
    response: dict[str, Any] = {"description": why, "content": ERROR_CONTENT}
    if status in ERROR_HEADERS:
        response["headers"] = ERROR_HEADERS[status]
    return response


def _documented_path(path: str) -> str:
    return re.sub(r"\{(\w+):\w+\}", r"{\1}", path)  # OpenAPI writes {path:path} without its converter
