"""The startup check that makes "every route is authorized" a property of the app, not a habit.

`check_routes` walks every route of an assembled app, through included routers. A route passes
if its path is on the public allow-list and it only reads (GET, HEAD), or if its dependency tree contains
`current_user` and
an access declaration from `modelworks.server.dependencies` — and, when its path has a
``{project}`` parameter, a project-role declaration. Anything else, including a kind of route
this module does not know, fails closed: `create_app` raises before the server ever listens.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.routing import compile_path

from modelworks.server.dependencies import ACCESS_RULES, current_user

# The web UI's sign-in page and its static files (modelworks.ui) are public too: read-only like the rest.
PUBLIC_PATHS = frozenset(
    {"/health", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc", "/ui/signin", "/ui/static"}
)
READ_METHODS = frozenset({"GET", "HEAD"})


@dataclass(frozen=True)
class RouteInfo:
    """A route as served: its full path (router prefixes included), its methods, and the
    dependency tree it runs with (None for a route that is not an API route)."""

    path: str
    methods: frozenset[str]
    kind: str
    dependant: Dependant | None
    response_class: type | None = None


def served_routes(app: FastAPI) -> list[RouteInfo]:
    """Every route of ``app``, with included routers flattened and their dependencies applied."""
    try:  # FastAPI >= 0.16x resolves included routers lazily; this is how its OpenAPI walks them
        from fastapi.routing import iter_route_contexts
    except ImportError:  # older FastAPI: app.routes is already flat
        return [_info(route, route) for route in app.routes]
    return [_info(ctx.original_route, ctx) for ctx in iter_route_contexts(app.routes)]


def _info(original: object, served: object) -> RouteInfo:
    dependant = getattr(served, "dependant", None) if isinstance(original, APIRoute) else None
    response_class = getattr(served, "response_class", None)
    return RouteInfo(
        path=str(getattr(served, "path", None) or repr(original)),
        methods=frozenset(getattr(served, "methods", None) or ()),
        kind=type(original).__name__,
        dependant=dependant,
        response_class=getattr(response_class, "value", response_class),  # unwrap FastAPI's DefaultPlaceholder
    )


def allowed_methods(app: FastAPI, path: str) -> list[str]:
    """Every method some route of ``app`` serves at ``path`` (what a 405's ``Allow`` lists)."""
    methods = {m for route in served_routes(app) if compile_path(route.path)[0].match(path) for m in route.methods}
    return sorted(methods)


def dependency_calls(dependant: Dependant) -> Iterator[object]:
    """Every dependency a route runs, depth first (a dependency used twice is named twice)."""
    for sub in dependant.dependencies:
        yield sub.call
        yield from dependency_calls(sub)


def declared_access(route: RouteInfo) -> list[str]:
    """The access declarations a route depends on, directly or through other dependencies."""
    if route.dependant is None:
        return []
    return [ACCESS_RULES[call] for call in dependency_calls(route.dependant) if call in ACCESS_RULES]


def route_problem(route: RouteInfo) -> str | None:
    """Why a route would be unprotected, or None when it is public or properly declared."""
    if route.path in PUBLIC_PATHS:
        writes = route.methods - READ_METHODS
        return f"{','.join(sorted(writes))} {route.path}: public routes are read-only (GET, HEAD)" if writes else None
    if route.dependant is None:
        return (
            f"{route.path}: a {route.kind} outside the public allow-list; "
            "only API routes with an access declaration are served"
        )
    label = f"{','.join(sorted(route.methods))} {route.path}"
    rules = declared_access(route)
    if current_user not in set(dependency_calls(route.dependant)) or not rules:
        return f"{label}: declares no access; depend on any_user, admin_user or require_role(...)"
    if "{project}" in route.path and not any(rule.startswith("project role") for rule in rules):
        return f"{label}: a project route must depend on require_role(...)"
    return None


def check_routes(app: FastAPI) -> None:
    """Raise if any route of ``app`` lacks an access declaration (see the module docstring)."""
    problems = [p for p in map(route_problem, served_routes(app)) if p is not None]
    if problems:
        raise RuntimeError("routes without authorization:\n  " + "\n  ".join(problems))
