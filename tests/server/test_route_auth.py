"""Every route refuses a missing token, a bad token and a user of another project — proven by
enumerating the app's routes, so a route added later is covered without touching this file.

Fail closed: a route whose path parameter this test cannot fill, or a non-public route that
lets an outsider through without being on the short self-service list, fails the test.
"""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
from fastapi import APIRouter, Depends, FastAPI
from sqlalchemy import select

from modelworks.platform import tokens
from modelworks.platform.db import make_engine, session_factory
from modelworks.platform.db.models import User, utcnow
from modelworks.server.dependencies import any_user, current_user, require_role
from modelworks.server.guard import PUBLIC_PATHS, check_routes, served_routes

# Routes any authenticated user may call about themselves. Everything else must refuse a
# valid user who is neither an admin nor a member: 404 on project routes, 403 elsewhere.
SELF_SERVICE = {
    ("GET", "/api/v1/users/me"),
    ("POST", "/api/v1/tokens"),
    ("GET", "/api/v1/tokens"),
    ("GET", "/api/v1/projects"),
    ("POST", "/api/v1/projects"),
    # the web UI: your projects, the switcher (a redirect), signing in and out
    ("GET", "/ui/"),
    ("GET", "/ui/go"),
    ("POST", "/ui/session"),
    ("POST", "/ui/signout"),
}


@pytest.fixture(scope="module")
def world(platform):
    """A project with a member, an outsider who owns another project, and bad admin tokens."""
    admin = platform.client()
    project = f"secret-{uuid.uuid4().hex[:6]}"
    admin.create_project(project)
    member, _ = platform.new_user("member")
    admin.set_member(project, member, "viewer")
    outsider, outsider_token = platform.new_user("outsider")
    platform.client(outsider_token).create_project(f"other-{uuid.uuid4().hex[:6]}")

    revoked = admin.create_token("to revoke")
    admin.revoke_token(revoked["id"])
    engine = make_engine(platform.settings.database_url)
    with session_factory(engine)() as session:  # the API refuses past expiries, so write one directly
        admin_user = session.scalar(select(User).where(User.name == "admin"))
        _, expired = tokens.issue_token(session, admin_user, "expired", utcnow() - timedelta(seconds=1))
    engine.dispose()
    valid = platform.admin_token
    return {
        "fill": {
            "project": project,
            "user": member,
            "token_id": admin.tokens()["items"][0]["id"],
            "job_id": "1",
            "name": "data",
            "version": "1",
            "run_id": "1",
            "alias": "staging",
            "path": "model.safetensors",
            "key_id": "0123456789abcdef",
        },
        "outsider": outsider_token,
        "bad_headers": {
            "no header": None,
            "basic auth": "Basic YWRtaW46YWRtaW4=",
            "bare scheme": "Bearer",
            "not a token": "Bearer hello",
            "unknown token": "Bearer mw_0123456789abcdef_" + "A" * 43,
            "wrong secret": "Bearer " + valid[:-1] + ("A" if valid[-1] != "A" else "B"),
            "revoked token": f"Bearer {revoked['token']}",
            "expired token": f"Bearer {expired}",
        },
    }


def api_routes(app) -> list[tuple[str, str]]:
    routes = [(m, r.path) for r in served_routes(app) if r.path not in PUBLIC_PATHS for m in sorted(r.methods)]
    assert len(routes) >= 15, routes
    return routes


def fill(path: str, values: dict[str, str]) -> str:
    def one(match: re.Match) -> str:
        name = match.group(1)
        if name not in values:
            pytest.fail(f"route {path} has a path parameter {{{name}}} this test does not know; add a value for it")
        return values[name]

    return re.sub(r"\{(\w+)(?::\w+)?\}", one, path)


def test_public_allow_list_is_what_we_think():
    # Widening the allow-list must be a conscious change to this test too.
    assert PUBLIC_PATHS == {
        "/health",
        "/openapi.json",
        "/docs",
        "/docs/oauth2-redirect",
        "/redoc",
        "/ui/signin",
        "/ui/static",
    }


def test_enumeration_sees_every_documented_route(platform):
    documented = {(m.upper(), path) for path, ops in platform.app.openapi()["paths"].items() for m in ops}
    # OpenAPI writes a converter-typed parameter ({path:path}) without its converter
    served = {(m, re.sub(r"\{(\w+):\w+\}", r"{\1}", r.path)) for r in served_routes(platform.app) for m in r.methods}
    assert documented <= served


def test_every_route_refuses_bad_credentials(platform, world):
    http = platform.http()
    for method, path in api_routes(platform.app):
        url = fill(path, world["fill"])
        for case, header in world["bad_headers"].items():
            headers = {"Authorization": header} if header is not None else {}
            r = http.request(method, url, headers=headers)
            assert r.status_code == 401, f"{method} {path} with {case}: {r.status_code} {r.text}"
            assert r.json()["error"]["code"] == "unauthorized" and r.json()["error"]["message"]
            assert r.headers["www-authenticate"] == "Bearer"


def test_every_route_refuses_an_outsider(platform, world):
    http = platform.http(world["outsider"])
    for method, path in api_routes(platform.app):
        r = http.request(method, fill(path, world["fill"]))
        if (method, path) in SELF_SERVICE:
            assert r.status_code not in (401, 403, 404), f"{method} {path}: {r.status_code} {r.text}"
        elif "{project}" in path:
            assert r.status_code == 404, f"{method} {path} let an outsider through: {r.status_code} {r.text}"
            assert "no project named" in r.json()["error"]["message"]
        else:
            assert r.status_code in (403, 404), f"{method} {path} let an outsider through: {r.status_code} {r.text}"


def test_outsider_cannot_tell_a_hidden_project_from_a_missing_one(platform, world):
    http = platform.http(world["outsider"])
    hidden = http.get(f"/api/v1/projects/{world['fill']['project']}")
    missing = http.get("/api/v1/projects/no-such-project")
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["error"]["message"].replace(world["fill"]["project"], "X") == missing.json()["error"][
        "message"
    ].replace("no-such-project", "X")


def test_public_routes_answer_without_a_token(platform):
    http = platform.http()
    assert http.get("/health").json()["status"] == "ok"
    assert http.get("/openapi.json").status_code == 200
    assert http.get("/docs").status_code == 200
    assert http.get("/ui/signin").status_code == 200
    assert http.get("/ui/static/ui.js").status_code == 200
    assert http.post("/ui/static/ui.js").status_code == 405  # public means read-only


# --- the startup guard itself ------------------------------------------------------------------


def _app_with(router: APIRouter) -> FastAPI:
    app = FastAPI()
    app.include_router(router, prefix="/api/v1")
    return app


def test_guard_refuses_a_route_without_an_access_declaration():
    router = APIRouter()

    @router.get("/things")
    def things() -> dict:
        return {}

    with pytest.raises(RuntimeError, match=r"GET /api/v1/things: declares no access"):
        check_routes(_app_with(router))


def test_guard_refuses_authentication_without_authorization():
    router = APIRouter()

    @router.get("/things", dependencies=[Depends(current_user)])
    def things() -> dict:
        return {}

    with pytest.raises(RuntimeError, match="declares no access"):
        check_routes(_app_with(router))


def test_guard_refuses_a_project_route_without_a_role():
    router = APIRouter()

    @router.get("/projects/{project}/secrets", dependencies=[Depends(any_user)])
    def secrets(project: str) -> dict:
        return {}

    with pytest.raises(RuntimeError, match="must depend on require_role"):
        check_routes(_app_with(router))


def test_guard_refuses_a_write_on_a_public_path():
    app = FastAPI()

    @app.delete("/health")
    def wipe() -> dict:
        return {}

    with pytest.raises(RuntimeError, match="DELETE /health: public routes are read-only"):
        check_routes(app)


def test_guard_refuses_a_mounted_app():
    app = FastAPI()
    app.mount("/files", FastAPI())
    with pytest.raises(RuntimeError, match="/files: a Mount outside the public allow-list"):
        check_routes(app)


def test_guard_accepts_declared_routes_through_nested_routers():
    inner = APIRouter(prefix="/projects/{project}")

    @inner.get("/things")
    def things(access=Depends(require_role("editor"))) -> dict:
        return {}

    outer = APIRouter(prefix="/api/v1")
    outer.include_router(inner)
    app = FastAPI()
    app.include_router(outer)
    check_routes(app)
    assert [r.path for r in served_routes(app) if r.path.startswith("/api")] == ["/api/v1/projects/{project}/things"]


def test_create_app_refuses_to_build_with_an_unguarded_route(monkeypatch, tmp_path):
    from types import SimpleNamespace

    from modelworks.platform.settings import Settings
    from modelworks.server import main

    careless = APIRouter(prefix="/projects/{project}")

    @careless.get("/export")
    def export(project: str) -> dict:
        return {}

    monkeypatch.setattr(main, "audit", SimpleNamespace(router=careless))
    with pytest.raises(RuntimeError, match=r"GET /api/v1/projects/\{project\}/export"):
        main.create_app(Settings.from_env({}, home=tmp_path))
