"""``modelworks remote deploy|deployments|undeploy|keys|usage``: serving on a platform server.

    modelworks remote deploy NAME MODEL --alias production [--canary-version 4 --canary-percent 10]
    modelworks remote deploy NAME --canary-percent 0          # change an existing deployment
    modelworks remote deployments                             modelworks remote undeploy NAME
    modelworks remote keys create NAME [--deployment D] [--rate-limit 600] [--quota 100000] [--expires ISO]
    modelworks remote keys list                               modelworks remote keys revoke ID
    modelworks remote usage [--since DAY] [--until DAY] [--key ID] [--csv]

The same ``--url`` / ``--project`` / ``--token`` as every remote verb (see `modelworks.cli.options`).
"""

from __future__ import annotations

from datetime import datetime, timezone

import typer

from modelworks.cli.options import Limit, Project, Token, Url, connect, need_project
from modelworks.cli.output import Json, print_json, print_page, say, user_errors
from modelworks.errors import UserError

keys_app = typer.Typer(no_args_is_help=True, help="Inference keys: what the project's customers call deployments with.")


def _line(d: dict) -> str:
    follows = f"alias {d['alias']} (v{d['current_version']})" if d["alias"] else f"version {d['version']}"
    canary = f", canary v{d['canary_version']} at {d['canary_percent']:g}%" if d["canary_version"] else ""
    form = d["runtime"] + (f" {d['precision']}" if d.get("precision", "fp32") != "fp32" else "")
    return f"{d['name']}  {d['model']} {follows}{canary}  {form}  /v2/models/{d['served_name']}"


def deploy(
    name: str = typer.Argument(..., help="the deployment's name"),
    model: str | None = typer.Argument(None, help="the registered model (only when creating the deployment)"),
    alias: str | None = typer.Option(None, "--alias", help="follow this alias of the model"),
    version: int | None = typer.Option(None, "--version", help="or stay on this version"),
    canary_version: int | None = typer.Option(None, "--canary-version", help="a second version for a share of traffic"),
    canary_percent: float | None = typer.Option(None, "--canary-percent", help="the canary's share, in percent"),
    runtime: str = typer.Option("torch", "--runtime", help="torch or onnx"),
    precision: str = typer.Option("fp32", "--precision", help="torch: fp32, or bf16 (autocast; faster on AMX CPUs)"),
    max_batch: int = typer.Option(32, "--max-batch", help="rows per forward pass, at most"),
    max_delay_ms: float = typer.Option(5.0, "--max-delay-ms", help="how long a request waits for a batch to fill"),
    as_json: bool = Json,
    url: str | None = Url,
    project: str | None = Project,
    token: str | None = Token,
) -> None:
    """Deploy MODEL as NAME (an alias or a version); without MODEL, change deployment NAME."""
    project = need_project(project)
    with connect(url, token) as client:
        if model is not None:
            row = client.deploy(project, name, model, alias=alias, version=version, canary_version=canary_version,
                                canary_percent=canary_percent or 0.0, runtime=runtime, precision=precision,
                                max_batch=max_batch, max_delay_ms=max_delay_ms)  # fmt: skip
        else:
            changes = {"alias": alias, "version": version, "canary_version": canary_version,
                       "canary_percent": canary_percent}  # fmt: skip
            changes = {k: v for k, v in changes.items() if v is not None}
            if not changes:
                raise UserError(
                    "give MODEL to create a deployment, or an option to change (--alias, --canary-percent…)"
                )
            row = client.update_deployment(project, name, **changes)
    if as_json:
        print_json(row)
        return
    say(_line(row))


def deployments(
    limit: int = Limit, as_json: bool = Json, url: str | None = Url, project: str | None = Project,
    token: str | None = Token,
) -> None:  # fmt: skip
    """The project's deployments: what each follows, its canary, where it answers."""
    with connect(url, token) as client:
        page = client.deployments(need_project(project), limit=limit)
    print_page(page, "deployments", _line, as_json)


def undeploy(name: str, url: str | None = Url, project: str | None = Project, token: str | None = Token) -> None:
    """Stop serving deployment NAME."""
    project = need_project(project)
    with connect(url, token) as client:
        client.undeploy(project, name)
    say(f"deployment {name} removed")


def usage(
    since: str | None = typer.Option(None, "--since", help="first UTC day, YYYY-MM-DD"),
    until: str | None = typer.Option(None, "--until", help="last UTC day, YYYY-MM-DD"),
    key: str | None = typer.Option(None, "--key", help="only this inference key's usage (its id)"),
    csv: bool = typer.Option(False, "--csv", help="the table as CSV on stdout"),
    as_json: bool = Json,
    url: str | None = Url,
    project: str | None = Project,
    token: str | None = Token,
) -> None:
    """Inference requests per key, deployment and day with their estimated charge, and the compute cost."""
    project = need_project(project)
    with connect(url, token) as client:
        if csv:
            typer.echo(client.inference_usage_csv(project, since=since, until=until, key=key), nl=False)
            return
        table = client.inference_usage(project, since=since, until=until, key=key)
    if as_json:
        print_json(table)
        return
    for r in table["rows"]:
        caller = f"key {r['key_id']} ({r['key_name']})" if r["key_id"] else f"user {r['user']}"
        errors = sum(r["errors"].values())
        say(f"{r['day']}  {caller}  {r['deployment']}  {r['requests']} requests  {r['rows']} rows  "
            f"{errors} errors  {r['mean_latency_ms']:.1f} ms  charge {r['charge']:g}")  # fmt: skip
    compute = table["compute"]
    say(f"inference: {table['requests']} requests, charge {table['charge']:g}; "
        f"compute: {compute['cpu_seconds']:.0f} CPU s, {compute['gpu_seconds']:.0f} GPU s, "
        f"cost {compute['cost']:g}")  # fmt: skip


@keys_app.command("create")
@user_errors
def create_key(
    name: str = typer.Argument(..., help="a name to recognise the key by (e.g. the customer)"),
    deployment: list[str] = typer.Option(
        None, "--deployment", help="only this deployment (repeat for more); none: all"
    ),
    rate_limit: int | None = typer.Option(None, "--rate-limit", help="requests per minute"),
    quota: int | None = typer.Option(None, "--quota", help="requests per UTC day"),
    expires: datetime | None = typer.Option(
        None, "--expires", help="when it stops working (UTC unless a zone is given)"
    ),
    as_json: bool = Json,
    url: str | None = Url,
    project: str | None = Project,
    token: str | None = Token,
) -> None:
    """Issue an inference key; it is shown only this once."""
    expires_at = expires.replace(tzinfo=expires.tzinfo or timezone.utc) if expires else None
    with connect(url, token) as client:
        created = client.create_inference_key(need_project(project), name, deployments=deployment or None,
                                              expires_at=expires_at, rate_limit=rate_limit, quota=quota)  # fmt: skip
    if as_json:
        print_json(created)
        return
    say(f"inference key {created['id']} ({created['name']}), shown only this once:")
    say(created["key"])


@keys_app.command("list")
@user_errors
def list_keys(
    limit: int = Limit, as_json: bool = Json, url: str | None = Url, project: str | None = Project,
    token: str | None = Token,
) -> None:  # fmt: skip
    """The project's inference keys (never the keys themselves)."""
    with connect(url, token) as client:
        page = client.inference_keys(need_project(project), limit=limit)

    def line(k: dict) -> str:
        state = "revoked" if k["revoked_at"] else (f"expires {k['expires_at']}" if k["expires_at"] else "active")
        scope = ",".join(k["deployments"]) if k["deployments"] else "all deployments"
        return f"{k['id']}  {k['name']}  {k['prefix']}…  {scope}  {state}"

    print_page(page, "inference keys", line, as_json)


@keys_app.command("revoke")
@user_errors
def revoke_key(
    key_id: str = typer.Argument(..., metavar="ID", help="the key's id (keys list)"),
    url: str | None = Url,
    project: str | None = Project,
    token: str | None = Token,
) -> None:
    """Revoke an inference key; serving refuses it within a few seconds."""
    with connect(url, token) as client:
        client.revoke_inference_key(need_project(project), key_id)
    say(f"inference key {key_id} revoked")


def add_to(app: typer.Typer) -> None:
    """Attach the serving verbs to ``modelworks remote``."""
    for verb in (deploy, deployments, undeploy, usage):
        app.command(verb.__name__)(user_errors(verb))
    app.add_typer(keys_app, name="keys")
