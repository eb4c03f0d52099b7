"""The API's behaviour over real HTTP on both databases: tokens, users, projects, members,
audit, pagination, the Python client, and bad requests that must get a 4xx with a message."""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select, update

from modelworks.client import ApiError, Client
from modelworks.errors import UserError
from modelworks.platform.db import make_engine, session_factory
from modelworks.platform.db.models import ApiToken


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def rows(platform, model):
    engine = make_engine(platform.settings.database_url)
    try:
        with session_factory(engine)() as session:
            return list(session.scalars(select(model)))
    finally:
        engine.dispose()


# --- tokens --------------------------------------------------------------------------------------


def test_token_lifecycle(platform):
    name, token = platform.new_user("tok")
    me = platform.client(token)
    expires = datetime.now(timezone.utc) + timedelta(days=30)
    created = me.create_token("laptop", expires_at=expires)
    secret = created["token"]
    assert secret.startswith("mw_") and created["prefix"] == secret[: len(created["prefix"])]
    assert datetime.fromisoformat(created["expires_at"]) == expires

    second = Client(platform.url, secret)
    assert second.me()["name"] == name
    listed = me.tokens()
    assert listed["total"] == 2 and all("token" not in t for t in listed["items"])
    assert {t["id"] for t in listed["items"]} >= {created["id"]}
    assert next(t for t in listed["items"] if t["id"] == created["id"])["last_used_at"] is not None

    me.revoke_token(created["id"])
    me.revoke_token(created["id"])  # revoking twice is fine
    with pytest.raises(ApiError) as e:
        second.me()
    assert e.value.status == 401
    assert next(t for t in me.tokens()["items"] if t["id"] == created["id"])["revoked_at"] is not None
    second.close()


def test_tokens_are_stored_as_digests_only(platform):
    _, token = platform.new_user("digest")
    row = next(r for r in rows(platform, ApiToken) if token.startswith(f"mw_{r.id}_"))
    assert row.secret_sha256 == hashlib.sha256(token.encode()).hexdigest()
    assert token not in {getattr(row, c) for c in ("id", "name", "secret_sha256", "prefix")}
    assert len(row.prefix) < len(token) - 30


def test_cannot_revoke_someone_elses_token(platform):
    _, alice = platform.new_user("alice")
    _, bob = platform.new_user("bob")
    bobs = platform.client(bob).tokens()["items"][0]["id"]
    with pytest.raises(ApiError, match="no token with id") as e:
        platform.client(alice).revoke_token(bobs)
    assert e.value.status == 404
    assert platform.client(bob).me()


def test_an_expiring_token_stops_at_its_expiry(platform):
    """The token works until its expiry and not after. Time passing is simulated by moving the
    stored expiry into the past, so neither a sleep nor a slow machine decides the outcome."""
    _, token = platform.new_user("expiry")
    soon = platform.client(token).create_token("short", expires_at=datetime.now(timezone.utc) + timedelta(hours=1))
    short = platform.http(soon["token"])
    assert short.get("/api/v1/users/me").status_code == 200
    engine = make_engine(platform.settings.database_url)
    try:
        with session_factory(engine)() as session:
            session.execute(
                update(ApiToken)
                .where(ApiToken.id == soon["id"])
                .values(expires_at=datetime.now(timezone.utc) - timedelta(seconds=1))
            )
            session.commit()
    finally:
        engine.dispose()
    assert short.get("/api/v1/users/me").status_code == 401


# --- users -------------------------------------------------------------------------------------


def test_only_admins_create_users(platform):
    name, token = platform.new_user("plain")
    r = platform.http(token).post("/api/v1/users", json={"name": unique("x")})
    assert r.status_code == 403 and r.json()["error"] == {"code": "forbidden", "message": "only an admin can do this"}
    with pytest.raises(ApiError, match="already exists") as e:
        platform.client().create_user(name)
    assert e.value.status == 409
    admin2, token2 = platform.new_user("boss", is_admin=True)
    assert platform.client(token2).me() | {"created_at": None} == {"name": admin2, "is_admin": True, "created_at": None}
    assert platform.client(token2).create_user(unique("made-by-boss"))["user"]["is_admin"] is False


# --- projects and members ------------------------------------------------------------------


def test_project_and_member_lifecycle(platform):
    owner_name, owner_token = platform.new_user("own")
    ada, ada_token = platform.new_user("ada")
    owner = platform.client(owner_token)
    name = unique("vision")
    created = owner.create_project(name, description="image models")
    assert created["role"] == "owner" and created["created_by"] == owner_name

    assert owner.set_member(name, ada, "editor")["role"] == "editor"
    assert owner.set_member(name, ada, "viewer")["role"] == "viewer"
    assert platform.client(ada_token).project(name)["role"] == "viewer"
    members = owner.members(name)
    assert members["total"] == 2 and {m["user"]: m["role"] for m in members["items"]} == {
        owner_name: "owner",
        ada: "viewer",
    }
    assert owner.member(name, ada)["role"] == "viewer"

    with pytest.raises(ApiError, match="no user named 'nobody-here'") as e:
        owner.set_member(name, "nobody-here", "viewer")
    assert e.value.status == 404
    with pytest.raises(ApiError, match="must keep at least one owner") as e:
        owner.set_member(name, owner_name, "editor")
    assert e.value.status == 409
    with pytest.raises(ApiError, match="must keep at least one owner"):
        owner.remove_member(name, owner_name)

    owner.set_member(name, ada, "owner")  # now two owners: one may step down
    owner.set_member(name, owner_name, "viewer")
    assert platform.client(ada_token).member(name, owner_name)["role"] == "viewer"

    platform.client(ada_token).remove_member(name, owner_name)
    with pytest.raises(ApiError) as e:
        owner.project(name)
    assert e.value.status == 404
    with pytest.raises(ApiError, match="already exists") as e:
        owner.create_project(name)
    assert e.value.status == 409


def test_deleting_a_project_keeps_its_audit_and_a_new_one_starts_clean(platform):
    _, token = platform.new_user("del")
    me = platform.client(token)
    name = unique("tmp")
    me.create_project(name)
    viewer, _ = platform.new_user("v")
    me.set_member(name, viewer, "viewer")
    me.delete_project(name)

    me.create_project(name)  # same name, a new project: no members or history carried over
    assert [m["user"] for m in me.members(name)["items"]] != [viewer] and me.members(name)["total"] == 1
    assert [e["action"] for e in me.audit(name)["items"]] == ["project.create"]
    everything = platform.client().audit(limit=500)["items"]
    assert [e["action"] for e in everything if e["target"] == f"project:{name}"] == [
        "project.create",
        "project.delete",
        "project.create",
    ]


def test_audit_records_who_and_when(platform):
    owner_name, token = platform.new_user("aud")
    me = platform.client(token)
    name = unique("audited")
    before = datetime.now(timezone.utc) - timedelta(seconds=1)
    me.create_project(name)
    other, _ = platform.new_user("other")
    me.set_member(name, other, "editor")
    me.set_member(name, other, "viewer")
    me.remove_member(name, other)
    t = me.create_token("ci")
    me.revoke_token(t["id"])

    entries = me.audit(name)["items"]  # newest first
    assert [(e["action"], e["actor"], e["target"]) for e in entries] == [
        ("member.remove", owner_name, f"user:{other}"),
        ("member.set", owner_name, f"user:{other}"),
        ("member.set", owner_name, f"user:{other}"),
        ("project.create", owner_name, f"project:{name}"),
    ]
    assert entries[1]["detail"] == {"user": other, "role": "viewer", "previous": "editor"}
    assert all(before <= datetime.fromisoformat(e["at"]) <= datetime.now(timezone.utc) for e in entries)

    everything = platform.client().audit(limit=500)["items"]
    token_events = [(e["action"], e["actor"]) for e in everything if e["target"] == f"token:{t['id']}"]
    assert token_events == [("token.revoke", owner_name), ("token.create", owner_name)]
    r = platform.http(token).get("/api/v1/audit")
    assert r.status_code == 403  # the global log is for admins


def test_pagination(platform):
    _, token = platform.new_user("pager")
    me = platform.client(token)
    names = sorted(unique(f"page{i}") for i in range(5))
    for n in names:
        me.create_project(n)
    page = me.projects(limit=2, offset=1)
    assert page["total"] == 5 and page["limit"] == 2 and page["offset"] == 1
    assert [p["name"] for p in page["items"]] == names[1:3]
    assert me.projects(limit=2, offset=4)["items"][0]["name"] == names[4]
    assert me.projects(offset=10)["items"] == []
    r = platform.http(token).get("/api/v1/projects", params={"limit": 501})
    assert r.status_code == 422 and "query.limit" in r.json()["error"]["message"]


# --- the Python client ---------------------------------------------------------------------


def test_client_raises_user_errors_with_the_servers_message(platform):
    with pytest.raises(ApiError, match=r"no project named 'nope' \(HTTP 404\)") as e:
        platform.client().project("nope")
    assert isinstance(e.value, UserError) and e.value.code == "not_found"
    with pytest.raises(ApiError, match="invalid, revoked or expired token"):
        Client(platform.url, "mw_0000000000000000_" + "x" * 43).me()
    with pytest.raises(UserError, match="cannot reach the modelworks server"):
        Client("http://127.0.0.1:1", "t", timeout=2).me()


def test_client_escapes_names_into_single_path_segments(platform):
    for name in ["..", "../users/me", "a/b", "%2e%2e", "."]:
        with pytest.raises(ApiError) as e:
            platform.client().project(name)
        assert e.value.status == 404, name


# --- bad requests: always a 4xx with a message, never a 500 -----------------------------------------

BAD_REQUESTS = [
    # (method, path, keyword arguments for httpx, expected status, text expected in the message)
    ("POST", "/api/v1/projects", {}, 422, "body: Field required"),
    ("POST", "/api/v1/projects", {"json": {}}, 422, "body.name: Field required"),
    ("POST", "/api/v1/projects", {"json": {"name": 123}}, 422, "body.name: Input should be a valid string"),
    ("POST", "/api/v1/projects", {"json": {"name": "Bad Name"}}, 422, "body.name: String should match pattern"),
    ("POST", "/api/v1/projects", {"json": {"name": "../etc"}}, 422, "body.name"),
    ("POST", "/api/v1/projects", {"json": {"name": "x" * 65}}, 422, "body.name"),
    (
        "POST",
        "/api/v1/projects",
        {"json": {"name": "ok-name", "colour": "red"}},
        422,
        "body.colour: Extra inputs are not permitted",
    ),
    ("POST", "/api/v1/projects", {"json": {"name": "ok-name", "description": "a\u0000b"}}, 422, "body.description"),
    ("POST", "/api/v1/projects", {"json": {"name": "ok-name", "description": "x" * 501}}, 422, "body.description"),
    ("POST", "/api/v1/projects", {"json": ["name"]}, 422, "body"),
    (
        "POST",
        "/api/v1/projects",
        {"content": b"{not json", "headers": {"content-type": "application/json"}},
        422,
        "JSON decode error",
    ),
    ("POST", "/api/v1/projects", {"content": b"name=x", "headers": {"content-type": "text/plain"}}, 422, "body"),
    (
        "POST",
        "/api/v1/users",
        {"json": {"name": "new-user", "is_admin": "yes"}},
        422,
        "body.is_admin: Input should be a valid boolean",
    ),
    ("POST", "/api/v1/tokens", {"json": {"name": ""}}, 422, "body.name"),
    ("POST", "/api/v1/tokens", {"json": {"name": "t", "expires_at": "tomorrow"}}, 422, "body.expires_at"),
    ("POST", "/api/v1/tokens", {"json": {"name": "t", "expires_at": "2030-01-01T00:00:00"}}, 422, "timezone"),
    (
        "POST",
        "/api/v1/tokens",
        {"json": {"name": "t", "expires_at": "2001-01-01T00:00:00Z"}},
        422,
        "must be in the future",
    ),
    (
        "PUT",
        "/api/v1/projects/{p}/members/admin",
        {"json": {"role": "god"}},
        422,
        "body.role: Input should be 'viewer', 'editor' or 'owner'",
    ),
    ("PUT", "/api/v1/projects/{p}/members/admin", {"json": {"role": 3}}, 422, "body.role"),
    ("PUT", "/api/v1/projects/{p}/members/admin", {"json": {}}, 422, "body.role: Field required"),
    ("PUT", "/api/v1/projects/{p}/members/nobody%00x", {"json": {"role": "viewer"}}, 404, "no user named"),
    ("GET", "/api/v1/projects/{p}/members/%00", {}, 404, "no user named"),
    ("GET", "/api/v1/projects/a%00b", {}, 404, "no project named"),
    ("GET", "/api/v1/projects/%2E%2E", {}, 404, "no project named"),
    ("GET", "/api/v1/projects/" + "x" * 5000, {}, 404, "no project named"),
    ("DELETE", "/api/v1/tokens/%00", {}, 404, "no token with id"),
    ("DELETE", "/api/v1/tokens/" + "f" * 16, {}, 404, "no token with id"),
    ("GET", "/api/v1/projects", {"params": {"limit": "abc"}}, 422, "query.limit: Input should be a valid integer"),
    ("GET", "/api/v1/projects", {"params": {"limit": 0}}, 422, "query.limit"),
    ("GET", "/api/v1/projects", {"params": {"offset": -1}}, 422, "query.offset"),
    ("GET", "/api/v1/projects", {"params": {"offset": 10**20}}, 422, "query.offset"),
    ("PATCH", "/api/v1/projects", {}, 405, "Method Not Allowed"),
    ("GET", "/api/v1/nothing-here", {}, 404, "Not Found"),
]


@pytest.fixture(scope="module")
def bad_request_project(platform):
    name = unique("badreq")
    platform.client().create_project(name)
    return name


@pytest.mark.parametrize(
    "method,path,kwargs,status,text",
    BAD_REQUESTS,
    ids=[f"{m} {p[:40]} {str(k)[:40]}" for m, p, k, _, _ in BAD_REQUESTS],
)
def test_bad_requests_get_a_4xx_with_a_message(platform, bad_request_project, method, path, kwargs, status, text):
    r = platform.http(platform.admin_token).request(method, path.replace("{p}", bad_request_project), **kwargs)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert set(error) == {"code", "message"} and text in error["message"], error
