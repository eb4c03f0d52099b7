"""Who may do what in a project: every role (and a member of another project, and an admin who
is not a member) against every kind of action, over real HTTP. A refused action changes nothing."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select

from modelworks.platform.db import make_engine, session_factory
from modelworks.platform.db.models import Project
from modelworks.platform.runs import publish_run, record_run
from modelworks.platform.storage import Storage

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
    "list runs": {"owner": 200, "editor": 200, "viewer": 200, "outsider": 404, "admin": 200},
    "read run": {"owner": 200, "editor": 200, "viewer": 200, "outsider": 404, "admin": 200},
    "download run artifact": {"owner": 200, "editor": 200, "viewer": 200, "outsider": 404, "admin": 200},
    "list models": {"owner": 200, "editor": 200, "viewer": 200, "outsider": 404, "admin": 200},
    "read model version": {"owner": 200, "editor": 200, "viewer": 200, "outsider": 404, "admin": 200},
    "download model artifact": {"owner": 200, "editor": 200, "viewer": 200, "outsider": 404, "admin": 200},
    "list jobs": {"owner": 200, "editor": 200, "viewer": 200, "outsider": 404, "admin": 200},
    "read job logs": {"owner": 200, "editor": 200, "viewer": 200, "outsider": 404, "admin": 200},
    "read usage": {"owner": 200, "editor": 200, "viewer": 200, "outsider": 404, "admin": 200},
    "register version": {"owner": 201, "editor": 201, "viewer": 403, "outsider": 404, "admin": 201},
    "set alias": {"owner": 200, "editor": 200, "viewer": 403, "outsider": 404, "admin": 200},
    "delete alias": {"owner": 204, "editor": 204, "viewer": 403, "outsider": 404, "admin": 204},
    "submit job": {"owner": 201, "editor": 201, "viewer": 403, "outsider": 404, "admin": 201},
    "cancel job": {"owner": 200, "editor": 200, "viewer": 403, "outsider": 404, "admin": 200},
    "list deployments": {"owner": 200, "editor": 200, "viewer": 200, "outsider": 404, "admin": 200},
    "list inference keys": {"owner": 200, "editor": 200, "viewer": 403, "outsider": 404, "admin": 200},
    "read inference usage": {"owner": 200, "editor": 200, "viewer": 200, "outsider": 404, "admin": 200},
}
READS = [
    "read project",
    "list projects",
    "list members",
    "read member",
    "read audit",
    "list datasets",
    "read dataset",
    "download dataset",
    "list runs",
    "read run",
    "download run artifact",
    "list models",
    "read model version",
    "download model artifact",
    "list jobs",
    "read job logs",
    "read usage",
    "list deployments",
    "list inference keys",
    "read inference usage",
]
CHANGES = [
    "add member",
    "change role",
    "remove member",
    "delete project",
    "upload dataset",
    "delete dataset",
    "register version",
    "set alias",
    "delete alias",
    "submit job",
    "cancel job",
]
JOB = {
    "data": {"source": "builtin:iris"},
    "model": {"type": "mlp", "hidden": [4]},
    "train": {"epochs": 1, "device": "cpu"},
}
CSV = b"x,y\n1,2\n"


@pytest.fixture(scope="module")
def team(platform):
    """Users reused by every case: an owner, an editor, a viewer, a newcomer to add, and an
    outsider who owns a project of their own."""
    users = {role: platform.new_user(role) for role in ("owner", "editor", "viewer", "newcomer", "outsider")}
    platform.client(users["outsider"][1]).create_project(f"theirs-{uuid.uuid4().hex[:6]}")
    users["admin"] = ("admin", platform.admin_token)
    return users


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A real run folder (iris, one epoch), recorded into each project as its job would."""
    from modelworks.api import train

    out = tmp_path_factory.mktemp("trained")
    return train(
        {**JOB, "runs_dir": str(out), "name": "run", "train": {**JOB["train"], "progress": False}}, progress=False
    ).path


def record(platform, project: str, folder: Path) -> int:
    """Record a copy of ``folder`` as a run of ``project``, where the artifact store keeps runs."""
    storage = Storage(platform.settings.artifacts)
    engine = make_engine(platform.settings.database_url)
    try:
        with session_factory(engine)() as session:
            pid = session.scalar(select(Project.id).where(Project.name == project))
            key = f"{pid}/runs/{uuid.uuid4().hex[:8]}"
            copy = storage.local_path(key)
            shutil.copytree(folder, copy)
            run = record_run(session, pid, copy, key, publish_run(storage, copy, key))
            session.commit()
            return run.id
    finally:
        engine.dispose()


def make_project(platform, team, trained: Path) -> str:
    """A project the owner created, with the editor and viewer added, a dataset, a recorded run
    registered as version 1 of model "m" with alias "live", and a queued job (no worker runs)."""
    name = f"p-{uuid.uuid4().hex[:8]}"
    owner = platform.client(team["owner"][1])
    owner.create_project(name)
    owner.set_member(name, team["editor"][0], "editor")
    owner.set_member(name, team["viewer"][0], "viewer")
    owner.upload_dataset(name, "data", CSV, filename="data.csv")
    run_id = record(platform, name, trained)
    owner.register_model(name, run_id, "m")
    owner.set_alias(name, "m", "live", 1)
    owner.submit_job(name, "train", JOB)
    return name


@pytest.fixture(scope="module")
def shared_project(platform, team, trained):
    """One project for the read-only actions."""
    return make_project(platform, team, trained)


@pytest.fixture
def fresh_project(platform, team, trained):
    """A project per case, for actions that change it."""
    return make_project(platform, team, trained)


def ids(platform, project: str) -> tuple[int, int]:
    """The project's (run id, job id), as the admin sees them."""
    http = platform.http(platform.admin_token)
    run = http.get(f"/api/v1/projects/{project}/runs").json()["items"][0]["id"]
    job = http.get(f"/api/v1/projects/{project}/jobs").json()["items"][0]["id"]
    return run, job


def act(http, action: str, project: str, team: dict, run: int, job: int):
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
        "upload dataset": lambda: http.post(
            f"{base}/datasets/data/versions", params={"filename": "data.csv"}, content=CSV
        ),
        "delete dataset": lambda: http.delete(f"{base}/datasets/data"),
        "list runs": lambda: http.get(f"{base}/runs"),
        "read run": lambda: http.get(f"{base}/runs/{run}"),
        "download run artifact": lambda: http.get(f"{base}/runs/{run}/artifacts/config.yaml"),
        "list models": lambda: http.get(f"{base}/models"),
        "read model version": lambda: http.get(f"{base}/models/m/versions/1"),
        "download model artifact": lambda: http.get(f"{base}/models/m/versions/1/artifacts/config.yaml"),
        "list jobs": lambda: http.get(f"{base}/jobs"),
        "read job logs": lambda: http.get(f"{base}/jobs/{job}/logs"),
        "read usage": lambda: http.get(f"{base}/usage"),
        "register version": lambda: http.post(f"{base}/models/m/versions", json={"run_id": run}),
        "set alias": lambda: http.put(f"{base}/models/m/aliases/next", json={"version": 1}),
        "delete alias": lambda: http.delete(f"{base}/models/m/aliases/live"),
        "submit job": lambda: http.post(f"{base}/jobs", json={"kind": "train", "config": JOB}),
        "cancel job": lambda: http.post(f"{base}/jobs/{job}/cancel"),
        "list deployments": lambda: http.get(f"{base}/deployments"),
        "list inference keys": lambda: http.get(f"{base}/inference-keys"),
        "read inference usage": lambda: http.get(f"{base}/inference-usage"),
    }[action]()


def state(platform, project: str) -> dict | None:
    """The project's members and roles, its datasets' versions, its model versions and aliases,
    and its jobs' states, as the admin sees them; None once it is gone."""
    http = platform.http(platform.admin_token)
    base = f"/api/v1/projects/{project}"
    r = http.get(f"{base}/members")
    if r.status_code == 404:
        return None
    members = {m["user"]: m["role"] for m in r.json()["items"]}
    data = {d["name"]: d["versions"] for d in http.get(f"{base}/datasets").json()["items"]}
    model = http.get(f"{base}/models/m").json()
    jobs = {j["id"]: j["state"] for j in http.get(f"{base}/jobs").json()["items"]}
    return {
        "members": members,
        "datasets": data,
        "versions": [v["version"] for v in model["versions"]],
        "aliases": {a["alias"]: a["version"] for a in model["aliases"]},
        "jobs": jobs,
    }


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("action", READS)
def test_read_access(platform, team, shared_project, action, role):
    r = act(platform.http(team[role][1]), action, shared_project, team, *ids(platform, shared_project))
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
    r = act(platform.http(team[role][1]), action, fresh_project, team, *ids(platform, fresh_project))
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
