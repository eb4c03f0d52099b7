"""``modelworks remote ...``: a few verbs against a platform server, through `modelworks.Client`.

    modelworks remote runs PROJECT                   --url URL --token T
    modelworks remote submit PROJECT exp.yaml
    modelworks remote register PROJECT RUN_ID NAME
    modelworks remote alias PROJECT NAME ALIAS VERSION

``--url``/``--token`` (alias ``--remote``) default to MODELWORKS_URL and MODELWORKS_TOKEN.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from modelworks.cli_output import console, user_errors
from modelworks.errors import UserError

app = typer.Typer(no_args_is_help=True, help="Work with a modelworks platform server (runs, jobs, the model registry).")

Url = typer.Option(None, "--remote", "--url", envvar="MODELWORKS_URL", help="the server, e.g. http://127.0.0.1:8000 [env MODELWORKS_URL]")
Token = typer.Option(None, "--token", envvar="MODELWORKS_TOKEN", help="an API token [env MODELWORKS_TOKEN]")


def _client(url: str | None, token: str | None):
    from modelworks.client import Client

    if not url or not token:
        raise UserError("no server given: pass --remote URL --token T, or set MODELWORKS_URL and MODELWORKS_TOKEN")
    return Client(url, token)


@app.command("runs")
@user_errors
def runs(project: str, job: Optional[int] = typer.Option(None, "--job", help="only the run of this job"),
         limit: int = typer.Option(50, "--limit", min=1, max=500), url: Optional[str] = Url, token: Optional[str] = Token) -> None:
    """List a project's recorded runs, newest first."""
    with _client(url, token) as client:
        page = client.runs(project, job=job, limit=limit)
    for run in page["items"]:
        metrics = "  ".join(f"{k} {v:.4g}" for k, v in sorted(run["metrics"].items()))
        console.print(f"run {run['id']}  job {run['job_id']}  {run['lineage'].get('source', '')}  {metrics}", highlight=False, soft_wrap=True)
    console.print(f"{len(page['items'])} of {page['total']} runs", highlight=False)


@app.command("submit")
@user_errors
def submit(project: str, config: Path = typer.Argument(..., help="experiment YAML (data.source builtin:NAME or dataset:NAME@VERSION)"),
           url: Optional[str] = Url, token: Optional[str] = Token) -> None:
    """Queue a train job from an experiment file."""
    from modelworks.config.load import read_yaml

    with _client(url, token) as client:
        job = client.submit_job(project, "train", read_yaml(config))
    console.print(f"job {job['id']} queued", highlight=False)


@app.command("register")
@user_errors
def register(project: str, run_id: int, name: str, url: Optional[str] = Url, token: Optional[str] = Token) -> None:
    """Register a run as the next version of model NAME."""
    with _client(url, token) as client:
        version = client.register_model(project, run_id, name)
    console.print(f"model {name} version {version['version']} (run {run_id})", highlight=False)


@app.command("alias")
@user_errors
def alias(project: str, name: str, alias: str, version: int, url: Optional[str] = Url, token: Optional[str] = Token) -> None:
    """Point ALIAS of model NAME at VERSION."""
    with _client(url, token) as client:
        moved = client.set_alias(project, name, alias, version)
    console.print(f"model {name}: {alias} -> version {moved['version']}", highlight=False)
