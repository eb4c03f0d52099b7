"""Who may do what in a project: every role (and a member of another project, and an admin who
is not a member) against every kind of action, over real HTTP. A refused action changes nothing."""

from __future__ import annotations

import uuid

import pytest

ROLES = ["owner", "editor", "viewer", "outsider", "admin"]

# action: expected status per role
EXPECTED = {
    "read project": {"owner": 200, "editor": 200, "viewer": 200, "outsider": 404, "admin": 200},
    "list projects": {"owner": 200, "editor": 200, "viewer": 200, "outsider": 200, "admin": 200},
    "list members": {"owner": 200, "editor": 200, "viewer": 200, "outsider": 404, "admin": 200},
    "read member": {"owner": 200, "editor": 200, "viewer": 200, "outsider": 404, "admin": 200},
    "read audit": {"owner": 200, "editor": 200, "viewer": 403, "outsider": 404, "admin": 200},
    "add member": {"owner": 200, "editor": 403, "viewer": 403, "outsider": 404, "admin": 200},
    "change role": {"owner": 200, "editor": 403, "viewer": 403, "outsider": 404, "admin": 200},
    "remove member": {"owner": 204, "editor": 403, "viewer": 403, "outsider": 404, "admin": 204},
    "delete project": {"owner": 204, "editor": 403, "viewer": 403, "outsider": 404, "admin": 204},
    "list datasets": {"owner": 200, "editor": 200, "viewer": 200, "outsider": 404, "admin": 200},
    "read dataset": {"owner": 200, "editor": 200, "viewer": 200, "outsider": 404, "admin": 200},
    "download dataset": {"owner": 200, "editor": 200, "viewer": 200, "outsider": 404, "admin": 200},
    "upload dataset": {"owner": 201, "editor": 201, "viewer": 403, "outsider": 404, "admin": 201},
    "delete dataset": {"owner": 204, "editor": 403, "viewer": 403, "outsider": 404, "admin": 204},
}
READS = ["read project", "list projects", "list members", "read member", "read audit", "list datasets", "read dataset", "download dataset"]
CHANGES = ["add member", "change role", "remove member", "delete project", "upload dataset", "delete dataset"]
CSV = b"x,y\n1,2\n"


@pytest.fixture(scope="module")
def team(platform):
    """Users reused by every case: an owner, an editor, a viewer, a newcomer to add, and an
    outsider who owns a project of their own."""
    users = {role: platform.new_user(role) for role in ("owner", "editor", "viewer", "newcomer", "outsider")}
    platform.client(users["outsider"][1]).create_project(f"theirs-{uuid.uuid4().hex[:6]}")
    users["admin"] = ("admin", platform.admin_token)
    return users


def make_project(platform, team) -> str:
    """A project the owner created, with the editor and viewer added."""
    name = f"p-{uuid.uuid4().hex[:8]}"
    owner = platform.client(team["owner"][1])
    owner.create_project(name)
    owner.set_member(name, team["editor"][0], "editor")
    owner.set_member(name, team["viewer"][0], "viewer")
    owner.upload_dataset(name, "data", CSV, filename="data.csv")
    return name


@pytest.fixture(scope="module")
def shared_project(platform, team):
    """One project for the read-only actions."""
    return make_project(platform, team)


@pytest.fixture
def fresh_project(platform, team):
    """A project per case, for actions that change it."""
    return make_project(platform, team)


def act(http, action: str, project: str, team: dict):
    base = f"/api/v1/projects/{project}"
    viewer = team["viewer"][0]
    return {
        "read project": lambda: http.get(base),
        "list projects": lambda: http.get("/api/v1/projects", params={"limit": 500}),
        "list members": lambda: http.get(f"{base}/members"),
        "read member": lambda: http.get(f"{base}/members/{viewer}"),
        "read audit": lambda: http.get(f"{base}/audit"),
        "add member": lambda: http.put(f"{base}/members/{team['newcomer'][0]}", json={"role": "viewer"}),
        "change role": lambda: http.put(f"{base}/members/{viewer}", json={"role": "editor"}),
        "remove member": lambda: http.delete(f"{base}/members/{viewer}"),
        "delete project": lambda: http.delete(base),
        "list datasets": lambda: http.get(f"{base}/datasets"),
        "read dataset": lambda: http.get(f"{base}/datasets/data/versions/1"),
        "download dataset": lambda: http.get(f"{base}/datasets/data/versions/1/download"),
        "upload dataset": lambda: http.post(f"{base}/datasets/data/versions", params={"filename": "data.csv"}, content=CSV),
        "delete dataset": lambda: http.delete(f"{base}/datasets/data"),
    }[action]()


def state(platform, project: str) -> dict | None:
    """The project's members and roles, and its datasets' versions, as the admin sees them;
    None once it is gone."""
    http = platform.http(platform.admin_token)
    r = http.get(f"/api/v1/projects/{project}/members")
    if r.status_code == 404:
        return None
    members = {m["user"]: m["role"] for m in r.json()["items"]}
    data = {d["name"]: d["versions"] for d in http.get(f"/api/v1/projects/{project}/datasets").json()["items"]}
    return {"members": members, "datasets": data}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("action", READS)
def test_read_access(platform, team, shared_project, action, role):
    r = act(platform.http(team[role][1]), action, shared_project, team)
    expected = EXPECTED[action][role]
    assert r.status_code == expected, f"{role} {action}: {r.status_code} {r.text}"
    if expected >= 400:
        assert r.json()["error"]["message"]
    if action == "list projects":
        names = [p["name"] for p in r.json()["items"]]
        assert (shared_project in names) == (role != "outsider")


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("action", CHANGES)
def test_change_access(platform, team, fresh_project, action, role):
    before = state(platform, fresh_project)
    r = act(platform.http(team[role][1]), action, fresh_project, team)
    expected = EXPECTED[action][role]
    assert r.status_code == expected, f"{role} {action}: {r.status_code} {r.text}"
    after = state(platform, fresh_project)
    if expected >= 400:
        assert r.json()["error"]["message"]
        assert after == before, "a refused action changed the project"
    elif action == "delete project":
        assert after is None
    else:
        assert after != before
