"""``modelworks remote projects|members|users|tokens``: everything one did with curl, from the command
line, against a real server on 127.0.0.1; each checked through the API as well."""

from __future__ import annotations

import json
import uuid

import pytest
from typer.testing import CliRunner

from modelworks.cli import app


@pytest.fixture
def mw(platform):
    """Run ``modelworks remote ...`` against the test server as the admin (or as ``token``)."""

    def run(*args: str, token: str | None = None, project: str | None = None, input: str | None = None):
        env = {
            "MODELWORKS_URL": platform.url,
            "MODELWORKS_TOKEN": token or platform.admin_token,
            **({"MODELWORKS_PROJECT": project} if project else {}),
        }
        return CliRunner().invoke(app, ["remote", *args], env=env, input=input)

    return run


def test_projects_create_list_delete(platform, mw):
    name = f"cli-{uuid.uuid4().hex[:6]}"
    out = mw("projects", "create", name, "--description", "made from the command line")
    assert out.exit_code == 0 and f"project {name} created; you are its owner" in out.stdout, out.output
    assert platform.client().project(name)["description"] == "made from the command line"
    out = mw("projects", "list", "--limit", "500")
    assert out.exit_code == 0 and f"{name}  owner  made from the command line" in out.stdout
    listed = json.loads(mw("projects", "list", "--json", "--limit", "500").stdout)
    assert name in {p["name"] for p in listed["items"]} and listed["total"] >= 1
    out = mw("projects", "create", name)
    assert out.exit_code == 2 and "already exists" in out.output and "Traceback" not in out.output

    out = mw("projects", "delete", name, input="n\n")  # asks first; no: nothing happens
    assert out.exit_code != 0 and platform.client().project(name)["name"] == name
    out = mw("projects", "delete", name, "--yes")
    assert out.exit_code == 0 and f"project {name} deleted" in out.stdout
    assert name not in {p["name"] for p in platform.client().projects(limit=500)["items"]}


def test_members_add_change_list_remove(platform, mw):
    project = f"team-{uuid.uuid4().hex[:6]}"
    platform.client().create_project(project)
    user, user_token = platform.new_user("ada")
    out = mw("members", "add", user, "viewer", project=project)
    assert out.exit_code == 0 and f"{user} is viewer of project {project}" in out.stdout, out.output
    out = mw("members", "add", user, "editor", "--project", project)  # the option, as well as the environment
    assert out.exit_code == 0 and platform.client().member(project, user)["role"] == "editor"
    out = mw("members", "list", project=project)
    assert out.exit_code == 0 and f"{user}  editor" in out.stdout and "2 of 2 members" in out.stdout
    assert {m["user"] for m in json.loads(mw("members", "list", "--json", project=project).stdout)["items"]} == {
        "admin",
        user,
    }
    out = mw("members", "add", user, "boss", project=project)
    assert out.exit_code == 2 and "role" in out.output
    out = mw("members", "remove", "admin", project=project, token=user_token)  # an editor may not
    assert out.exit_code == 2 and "(HTTP 403)" in out.output
    out = mw("members", "remove", user, project=project)
    assert out.exit_code == 0 and f"{user} removed from project {project}" in out.stdout
    assert [m["user"] for m in platform.client().members(project)["items"]] == ["admin"]
    out = mw("members", "list")
    assert out.exit_code == 2 and "needs a project: pass --project P or set MODELWORKS_PROJECT" in out.output


def test_users_create_and_list_are_for_admins(platform, mw):
    name = f"grace-{uuid.uuid4().hex[:6]}"
    out = mw("users", "create", name)
    assert out.exit_code == 0 and f"user {name} created" in out.stdout, out.output
    token = out.stdout.strip().splitlines()[-1]
    assert platform.client(token).me()["name"] == name  # the printed token works
    created = json.loads(mw("users", "create", f"{name}-2", "--admin", "--json").stdout)
    assert created["user"]["is_admin"] is True and created["token"]["token"].startswith("mw_")
    out = mw("users", "list", "--limit", "500")
    assert out.exit_code == 0 and f"{name}  since" in out.stdout and f"{name}-2  admin" in out.stdout
    names = {u["name"] for u in platform.client().users(limit=500)["items"]}
    assert {name, f"{name}-2", "admin"} <= names
    out = mw("users", "list", token=token)
    assert out.exit_code == 2 and "(HTTP 403)" in out.output
    out = mw("users", "create", "x-" + name, token=token)
    assert out.exit_code == 2 and "(HTTP 403)" in out.output


def test_tokens_create_list_revoke(platform, mw):
    _, first = platform.new_user("tok")
    out = mw("tokens", "create", "laptop", "--expires-in", "30", token=first)
    assert out.exit_code == 0 and "(laptop), shown only this once" in out.stdout, out.output
    second = out.stdout.strip().splitlines()[-1]
    token_id = out.stdout.split("token ", 1)[1].split()[0]
    assert platform.client(second).me()["name"].startswith("tok-")
    out = mw("tokens", "list", token=first)
    assert (
        out.exit_code == 0
        and f"{token_id}  laptop" in out.stdout
        and "expires 20" in out.stdout
        and "2 of 2 tokens" in out.stdout
    )
    listed = json.loads(mw("tokens", "list", "--json", token=first).stdout)
    assert {t["name"] for t in listed["items"]} == {"first token", "laptop"} and all(
        "token" not in t for t in listed["items"]
    )
    out = mw("tokens", "revoke", token_id, token=first)
    assert out.exit_code == 0 and f"token {token_id} revoked" in out.stdout
    out = mw("tokens", "list", token=second)  # a revoked token stops working at once
    assert out.exit_code == 2 and "(HTTP 401)" in out.output
    assert "revoked" in mw("tokens", "list", token=first).stdout
    out = mw("tokens", "revoke", "0123456789abcdef", token=first)
    assert out.exit_code == 2 and "no token with id" in out.output


def test_without_a_server_one_clear_message(monkeypatch):
    for name in ("MODELWORKS_URL", "MODELWORKS_TOKEN", "MODELWORKS_PROJECT"):
        monkeypatch.delenv(name, raising=False)
    out = CliRunner().invoke(app, ["remote", "projects", "list"])
    assert (
        out.exit_code == 2
        and "no server given: pass --url URL --token T" in out.output
        and "Traceback" not in out.output
    )
