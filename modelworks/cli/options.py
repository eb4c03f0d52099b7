"""How every verb names the platform server, the project and the token: the same three options,
each with its environment variable, never positionals.

    --url URL        the server, e.g. http://127.0.0.1:8000     [env MODELWORKS_URL]
    --project NAME   the project the command works in           [env MODELWORKS_PROJECT]
    --token TOKEN    an API token                               [env MODELWORKS_TOKEN]

The engine's verbs (train, evaluate, tune, compress, export) run here unless given ``--remote``;
only then do they read these (so a local ``modelworks train`` stays local whatever the
environment holds).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from modelworks.errors import UserError

if TYPE_CHECKING:
    from modelworks.client import Client

Url = typer.Option(
    None, "--url", envvar="MODELWORKS_URL", help="the server, e.g. http://127.0.0.1:8000 [env MODELWORKS_URL]"
)
Project = typer.Option(None, "--project", envvar="MODELWORKS_PROJECT", help="the project [env MODELWORKS_PROJECT]")
Token = typer.Option(None, "--token", envvar="MODELWORKS_TOKEN", help="an API token [env MODELWORKS_TOKEN]")
Limit = typer.Option(50, "--limit", min=1, max=500, help="at most this many items")


def connect(url: str | None, token: str | None) -> Client:
    """A client for the server named by ``--url`` and ``--token`` (or their environment variables)."""
    from modelworks.client import Client  # httpx: only the commands that talk to a server load it

    if not url or not token:
        raise UserError("no server given: pass --url URL --token T, or set MODELWORKS_URL and MODELWORKS_TOKEN")
    return Client(url, token)


def need_project(project: str | None, what: str = "this command") -> str:
    if not project:
        raise UserError(f"{what} needs a project: pass --project P or set MODELWORKS_PROJECT")
    return project
