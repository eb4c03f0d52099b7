"""Who may do what on a platform server: ``modelworks remote projects|members|users|tokens ...``.

    modelworks remote projects list                    modelworks remote projects create NAME [--description D]
    modelworks remote projects delete NAME [--yes]
    modelworks remote members list --project P         modelworks remote members add USER ROLE --project P
    modelworks remote members remove USER --project P
    modelworks remote users list                       modelworks remote users create NAME [--admin]   (admins)
    modelworks remote tokens list                      modelworks remote tokens create NAME [--expires-in DAYS]
    modelworks remote tokens revoke ID

The server and token come from ``--url``/``--token`` (MODELWORKS_URL, MODELWORKS_TOKEN) as in every
verb; the project a member command works in from ``--project`` (MODELWORKS_PROJECT). ``projects
create`` and ``projects delete`` take the project they make or delete as their argument: deleting
never falls back to the project named in the environment.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import typer

from modelworks.cli.options import Limit, Project, Token, Url, connect, need_project
from modelworks.cli.output import Json, print_json, print_page, say, user_errors

projects_app = typer.Typer(no_args_is_help=True, help="Projects: list yours, create one, delete one (owners).")
members_app = typer.Typer(no_args_is_help=True, help="A project's members and their roles (viewer, editor, owner).")
users_app = typer.Typer(no_args_is_help=True, help="Users (admins list and create them; each gets a first token).")
tokens_app = typer.Typer(no_args_is_help=True, help="Your API tokens: list, create (shown once), revoke.")


def _at(value: str | None) -> str:
    return value[:19].replace("T", " ") if value else "-"


# --- projects


@projects_app.command("list")
@user_errors
def list_projects(limit: int = Limit, as_json: bool = Json, url: str | None = Url, token: str | None = Token) -> None:
    """The projects you are a member of (all of them, for an admin), with your role."""
    with connect(url, token) as client:
        page = client.projects(limit=limit)
    print_page(page, "projects", lambda p: f"{p['name']}  {p['role'] or 'admin'}  {p['description']}".rstrip(), as_json)


@projects_app.command("create")
@user_errors
def create_project(
    name: str,
    description: str = typer.Option("", "--description", help="a line about it"),
    url: str | None = Url,
    token: str | None = Token,
) -> None:
    """Create project NAME; you become its owner."""
    with connect(url, token) as client:
        created = client.create_project(name, description=description)
    say(f"project {created['name']} created; you are its {created['role']}")


@projects_app.command("delete")
@user_errors
def delete_project(
    name: str,
    yes: bool = typer.Option(False, "--yes", help="do not ask for confirmation"),
    url: str | None = Url,
    token: str | None = Token,
) -> None:
    """Delete project NAME with its members, datasets, jobs, runs and models (its audit log stays)."""
    if not yes:
        typer.confirm(f"delete project {name!r} and everything in it?", abort=True)
    with connect(url, token) as client:
        client.delete_project(name)
    say(f"project {name} deleted")


# --- members


@members_app.command("list")
@user_errors
def list_members(
    limit: int = Limit,
    as_json: bool = Json,
    url: str | None = Url,
    project: str | None = Project,
    token: str | None = Token,
) -> None:
    """The project's members and their roles."""
    with connect(url, token) as client:
        page = client.members(need_project(project), limit=limit)
    print_page(page, "members", lambda m: f"{m['user']}  {m['role']}", as_json)


@members_app.command("add")
@user_errors
def add_member(
    user: str,
    role: str = typer.Argument(..., help="viewer, editor or owner"),
    url: str | None = Url,
    project: str | None = Project,
    token: str | None = Token,
) -> None:
    """Add USER to the project as ROLE, or change their role (owners)."""
    project = need_project(project)
    with connect(url, token) as client:
        member = client.set_member(project, user, role)
    say(f"{member['user']} is {member['role']} of project {project}")


@members_app.command("remove")
@user_errors
def remove_member(user: str, url: str | None = Url, project: str | None = Project, token: str | None = Token) -> None:
    """Remove USER from the project (owners; the last owner cannot leave)."""
    project = need_project(project)
    with connect(url, token) as client:
        client.remove_member(project, user)
    say(f"{user} removed from project {project}")


# --- users


@users_app.command("list")
@user_errors
def list_users(limit: int = Limit, as_json: bool = Json, url: str | None = Url, token: str | None = Token) -> None:
    """Every user (admins only)."""
    with connect(url, token) as client:
        page = client.users(limit=limit)
    print_page(
        page,
        "users",
        lambda u: f"{u['name']}{'  admin' if u['is_admin'] else ''}  since {_at(u['created_at'])}",
        as_json,
    )


@users_app.command("create")
@user_errors
def create_user(
    name: str,
    admin: bool = typer.Option(False, "--admin", help="an administrator"),
    as_json: bool = Json,
    url: str | None = Url,
    token: str | None = Token,
) -> None:
    """Create user NAME (admins only) and print their first token, shown this once."""
    with connect(url, token) as client:
        created = client.create_user(name, is_admin=admin)
    if as_json:
        print_json(created)
        return
    say(
        f"user {created['user']['name']} created{' (admin)' if created['user']['is_admin'] else ''}; "
        "their first token, shown only this once:"
    )
    say(created["token"]["token"])


# --- tokens


@tokens_app.command("list")
@user_errors
def list_tokens(limit: int = Limit, as_json: bool = Json, url: str | None = Url, token: str | None = Token) -> None:
    """Your tokens, newest first (revoked and expired ones too)."""
    with connect(url, token) as client:
        page = client.tokens(limit=limit)

    def line(t: dict[str, Any]) -> str:
        state = "revoked" if t["revoked_at"] else f"expires {_at(t['expires_at'])}" if t["expires_at"] else "no expiry"
        return f"{t['id']}  {t['name']}  {t['prefix']}…  {state}  last used {_at(t['last_used_at'])}"

    print_page(page, "tokens", line, as_json)


@tokens_app.command("create")
@user_errors
def create_token(
    name: str,
    expires_in: float | None = typer.Option(
        None, "--expires-in", min=0, help="days until it stops working (default: never)"
    ),
    as_json: bool = Json,
    url: str | None = Url,
    token: str | None = Token,
) -> None:
    """Create a token for yourself and print it, shown this once."""
    expires_at = datetime.now(timezone.utc) + timedelta(days=expires_in) if expires_in is not None else None
    with connect(url, token) as client:
        created = client.create_token(name, expires_at=expires_at)
    if as_json:
        print_json(created)
        return
    say(f"token {created['id']} ({created['name']}), shown only this once:")
    say(created["token"])


@tokens_app.command("revoke")
@user_errors
def revoke_token(
    token_id: str = typer.Argument(..., metavar="ID", help="the token's id (tokens list)"),
    url: str | None = Url,
    token: str | None = Token,
) -> None:
    """Revoke one of your tokens; it stops working at once."""
    with connect(url, token) as client:
        client.revoke_token(token_id)
    say(f"token {token_id} revoked")


def add_to(app: typer.Typer) -> None:
    """Attach the four groups to ``modelworks remote``."""
    app.add_typer(projects_app, name="projects")
    app.add_typer(members_app, name="members")
    app.add_typer(users_app, name="users")
    app.add_typer(tokens_app, name="tokens")
