"""Commands against a platform server, through `modelworks.Client`.

The engine's verbs take ``--remote URL`` and then queue a job on the server instead of running
here (`submit_and_follow`); their other options mean the same as locally:

    modelworks train exp.yaml --remote URL --project P     # a train job; follows its log
    modelworks evaluate JOB --remote URL --project P        # JOB: a train (tune, compress) job's id
    modelworks tune exp.yaml --remote URL --project P
    modelworks compress JOB -m prune --set amount=0.5 --remote URL --project P
    modelworks export JOB -f onnx --remote URL --project P

and ``modelworks remote ...`` reads and manages what is there:

    modelworks remote upload PROJECT NAME FILE       --url URL --token T   [--public]
    modelworks remote datasets PROJECT
    modelworks remote jobs PROJECT
    modelworks remote logs PROJECT JOB [--follow]
    modelworks remote runs PROJECT
    modelworks remote submit PROJECT exp.yaml
    modelworks remote register PROJECT RUN_ID NAME
    modelworks remote alias PROJECT NAME ALIAS VERSION

``--token`` defaults to MODELWORKS_TOKEN, ``--project`` to MODELWORKS_PROJECT; ``remote``'s
``--url`` (alias ``--remote``) to MODELWORKS_URL. The verbs never read MODELWORKS_URL: a local
``modelworks train`` stays local whatever the environment holds.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Optional

import typer
from modelworks.cli_output import console, err, user_errors
from modelworks.errors import UserError

app = typer.Typer(no_args_is_help=True, help="Work with a modelworks platform server (runs, jobs, the model registry).")

Url = typer.Option(None, "--remote", "--url", envvar="MODELWORKS_URL", help="the server, e.g. http://127.0.0.1:8000 [env MODELWORKS_URL]")
Token = typer.Option(None, "--token", envvar="MODELWORKS_TOKEN", help="an API token [env MODELWORKS_TOKEN]")


FINISHED = ("succeeded", "failed", "cancelled")
POLL_S = 1.0

# Options the engine's verbs add for --remote.
RemoteUrl = typer.Option(None, "--remote", help="queue the work as a job on this platform server instead of running it here")
RemoteProject = typer.Option(None, "--project", envvar="MODELWORKS_PROJECT", help="with --remote: the project [env MODELWORKS_PROJECT]")
RemoteWait = typer.Option(True, "--wait/--no-wait", help="with --remote: follow the job's log until it ends")


def _client(url: str | None, token: str | None):
    from modelworks.client import Client

    if not url or not token:
        raise UserError("no server given: pass --remote URL --token T, or set MODELWORKS_URL and MODELWORKS_TOKEN")
    return Client(url, token)


def _print_page(page: dict[str, Any], noun: str, line: Callable[[dict[str, Any]], str]) -> None:
    """One line per item of an API page, then how many of how many."""
    for item in page["items"]:
        console.print(line(item), highlight=False, soft_wrap=True)
    console.print(f"{len(page['items'])} of {page['total']} {noun}", highlight=False)


@app.command("runs")
@user_errors
def runs(project: str, job: Optional[int] = typer.Option(None, "--job", help="only the run of this job"),
         limit: int = typer.Option(50, "--limit", min=1, max=500), url: Optional[str] = Url, token: Optional[str] = Token) -> None:
    """List a project's recorded runs, newest first."""
    with _client(url, token) as client:
        page = client.runs(project, job=job, limit=limit)

    def line(run: dict[str, Any]) -> str:
        metrics = "  ".join(f"{k} {v:.4g}" for k, v in sorted(run["metrics"].items()))
        return f"run {run['id']}  job {run['job_id']}  {run['lineage'].get('source', '')}  {metrics}"

    _print_page(page, "runs", line)


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


@app.command("upload")
@user_errors
def upload(project: str, name: str, file: Path = typer.Argument(..., help="CSV, Parquet, JSONL, or a zip of image folders"),
           public: bool = typer.Option(False, "--public", help="store it unencrypted"), url: Optional[str] = Url, token: Optional[str] = Token) -> None:
    """Upload FILE (streamed) as the next version of dataset NAME; train on it with data.source: dataset:NAME@VERSION."""
    if not file.is_file():
        raise UserError(f"{file} is not a file")
    with _client(url, token) as client:
        version = client.upload_dataset(project, name, file, public=public)
    rows = f"{version['rows']} rows, " if version.get("rows") is not None else ""
    console.print(f"dataset {name} version {version['version']}: {rows}{version['size']} bytes, sha256 {version['sha256'][:12]}, "
                  f"{'encrypted' if version['encrypted'] else 'not encrypted'}; use data.source: dataset:{name}@{version['version']}",
                  highlight=False, soft_wrap=True)


@app.command("datasets")
@user_errors
def datasets(project: str, limit: int = typer.Option(50, "--limit", min=1, max=500), url: Optional[str] = Url, token: Optional[str] = Token) -> None:
    """List a project's datasets."""
    with _client(url, token) as client:
        page = client.datasets(project, limit=limit)
    _print_page(page, "datasets", lambda d: f"{d['name']}  {d['versions']} version{'s' if d['versions'] != 1 else ''}, latest {d['latest']}")


@app.command("jobs")
@user_errors
def jobs(project: str, state: Optional[str] = typer.Option(None, "--state", help="queued, running, succeeded, failed or cancelled"),
         limit: int = typer.Option(50, "--limit", min=1, max=500), url: Optional[str] = Url, token: Optional[str] = Token) -> None:
    """List a project's jobs, newest first."""
    with _client(url, token) as client:
        page = client.jobs(project, state=state, limit=limit)
    _print_page(page, "jobs", lambda j: f"job {j['id']}  {j['kind']}  {j['state']}  attempts {j['attempts']}" + (f"  {j['error']}" if j.get("error") else ""))


@app.command("logs")
@user_errors
def logs(project: str, job: int, follow: bool = typer.Option(False, "--follow", "-f", help="keep printing until the job ends"),
         url: Optional[str] = Url, token: Optional[str] = Token) -> None:
    """Print a job's log (and, with --follow, its outcome)."""
    with _client(url, token) as client:
        if follow:
            _follow(client, project, job)
        else:
            for line in client.job_logs(project, job):
                console.print(line["line"], highlight=False, markup=False, soft_wrap=True)


# ------------------------------------------------------------------------------ the verbs' --remote


def submit_and_follow(kind: str, config: dict[str, Any], *, url: str, project: str | None, token: str | None, wait: bool) -> None:
    """Queue a ``kind`` job on the server at ``url``; with ``wait``, print its log as it runs and
    end with its outcome (a failed or cancelled job is a `UserError`: exit status 2)."""
    if not project:
        raise UserError("--remote needs a project: pass --project P or set MODELWORKS_PROJECT")
    with _client(url, token) as client:
        job = client.submit_job(project, kind, config)
        console.print(f"job {job['id']} ({kind}) queued in project {project} on {url}", highlight=False)
        if wait:
            _follow(client, project, job["id"])
        else:
            console.print(f"follow it with: modelworks remote logs {project} {job['id']} --follow --url {url}", highlight=False, soft_wrap=True)


def _follow(client: Any, project: str, job_id: int) -> None:
    since = 0
    try:
        while True:
            state = client.job(project, job_id)  # read before the log, so no line after the end is missed
            for line in client.job_logs(project, job_id, since=since):
                console.print(line["line"], highlight=False, markup=False, soft_wrap=True)
                since = line["seq"]
            if state["state"] in FINISHED:
                break
            time.sleep(POLL_S)
    except KeyboardInterrupt:
        err.print(f"stopped following; job {job_id} goes on (cancel it with the API, or follow it again with modelworks remote logs)", highlight=False)
        raise typer.Exit(130) from None
    if state["state"] != "succeeded":
        raise UserError(f"job {job_id} {state['state']}: {state.get('error') or 'no error recorded'}")
    metrics = (state.get("result") or {}).get("metrics") or {}
    summary = "  ".join(f"{k} {v:.4g}" for k, v in sorted(metrics.items()) if isinstance(v, (int, float)))
    console.print(f"job {job_id} succeeded{': ' + summary if summary else ''}", highlight=False, soft_wrap=True)
    recorded = client.runs(project, job=job_id)["items"]  # recorded by the job itself, with its result
    if recorded:
        console.print(f"run {recorded[0]['id']} recorded; register it with: modelworks remote register {project} {recorded[0]['id']} NAME", highlight=False, soft_wrap=True)
