"""Commands against a platform server, through `modelworks.Client`: the engine verbs' ``--remote``
and ``modelworks remote``'s verbs for jobs, runs, datasets and the model registry.

With ``--remote``, an engine verb queues a job on the server instead of running here and follows
its log; its other options mean the same as locally:

    modelworks train exp.yaml --remote --project P          # a train job; follows its log
    modelworks evaluate JOB --remote --project P             # JOB: a train (tune, compress) job's id
    modelworks tune exp.yaml --remote --project P
    modelworks compress JOB -m prune --set amount=0.5 --remote --project P
    modelworks export JOB -f onnx --remote --project P

and ``modelworks remote ...`` reads and manages what is there:

    modelworks remote upload NAME FILE [--public]   modelworks remote datasets
    modelworks remote submit exp.yaml               modelworks remote jobs [--state S]
    modelworks remote logs JOB [--follow]           modelworks remote runs [--job JOB]
    modelworks remote register RUN_ID NAME          modelworks remote alias NAME ALIAS VERSION

Every one of them takes ``--url`` / ``--project`` / ``--token`` (or MODELWORKS_URL,
MODELWORKS_PROJECT, MODELWORKS_TOKEN): see `modelworks.cli.options`. Projects, members, users and
tokens are in `modelworks.cli.access`.
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from modelworks.cli.options import Limit, Project, Token, Url, connect, need_project
from modelworks.cli.output import Json, err, headline, print_json, print_page, say, user_errors
from modelworks.errors import UserError

app = typer.Typer(
    no_args_is_help=True,
    help="Work with a modelworks platform server (runs, jobs, datasets, the model registry, "
    "projects, members, users, tokens); name it with --url/--project/--token or MODELWORKS_URL/_PROJECT/_TOKEN.",
)

FINISHED = ("succeeded", "failed", "cancelled")
POLL_S = 1.0


# ------------------------------------------------------------------------------ the verbs' --remote


Remote = typer.Option(
    False,
    "--remote",
    help="queue it as a job on the platform server (--url) instead of running it here; follow its log",
)
Wait = typer.Option(True, "--wait/--no-wait", help="with --remote: follow the job's log until it ends")
# The options `remote_verb` adds to a verb: name -> (annotation, typer option).
REMOTE_OPTIONS = {
    "remote": (bool, Remote),
    "url": (str | None, Url),
    "project": (str | None, Project),
    "token": (str | None, Token),
    "wait": (bool, Wait),
}


def remote_verb(kind: str, job_config: Callable[..., dict[str, Any]]) -> Callable[[Callable], Callable]:
    """Give an engine verb ``--remote`` (with ``--url``, ``--project``, ``--token``, ``--wait``).

    Without ``--remote`` the verb runs as written. With it, ``job_config(**the verb's arguments)``
    builds the ``kind`` job's config (raising a `UserError` for an option that only means something
    locally), and the job is queued and followed (`submit_and_follow`); the verb's body does not run.
    """

    def decorate(verb: Callable) -> Callable:
        @functools.wraps(verb)
        def either(*, remote: bool, url: str | None, project: str | None, token: str | None, wait: bool, **kw: Any):
            if not remote:
                return verb(**kw)
            config = job_config(**kw)
            as_json = kw.get("as_json", False)
            submit_and_follow(kind, config, url=url, project=project, token=token, wait=wait, as_json=as_json)

        # Typer reads a command's options from its signature: the verb's own, then these.
        signature = inspect.signature(verb, eval_str=True)
        added = [
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=annotation)
            for name, (annotation, option) in REMOTE_OPTIONS.items()
        ]
        either.__signature__ = signature.replace(parameters=[*signature.parameters.values(), *added])
        either.__annotations__ = {**verb.__annotations__, **{n: a for n, (a, _) in REMOTE_OPTIONS.items()}}
        return either

    return decorate


def submit_and_follow(
    kind: str,
    config: dict[str, Any],
    *,
    url: str | None,
    project: str | None,
    token: str | None,
    wait: bool,
    as_json: bool = False,
) -> None:
    """Queue a ``kind`` job; with ``wait``, print its log as it runs and end with its outcome (a failed
    or cancelled job is a `UserError`: exit status 2). With ``as_json`` the log goes to stderr and
    stdout gets the job (and its recorded run) as one JSON document."""
    project = need_project(project, "--remote")
    with connect(url, token) as client:
        job = client.submit_job(project, kind, config)
        note = err.print if as_json else say
        note(f"job {job['id']} ({kind}) queued in project {project} on {client.url}")
        if wait:
            _follow(client, project, job["id"], as_json=as_json)
        elif as_json:
            print_json({"job": job})
        else:
            say(f"follow it with: modelworks remote logs {job['id']} --follow --project {project} --url {client.url}")


def _follow(client: Any, project: str, job_id: int, *, as_json: bool = False) -> None:
    show = (lambda text: err.print(text, highlight=False, markup=False)) if as_json else say
    since = 0
    try:
        while True:
            state = client.job(project, job_id)  # read before the log, so no line after the end is missed
            for line in client.job_logs(project, job_id, since=since):
                show(line["line"])
                since = line["seq"]
            if state["state"] in FINISHED:
                break
            time.sleep(POLL_S)
    except KeyboardInterrupt:
        err.print(
            f"stopped following; job {job_id} goes on (follow it again with modelworks remote logs {job_id} --follow)",
            highlight=False,
        )
        raise typer.Exit(130) from None
    if state["state"] != "succeeded":
        raise UserError(f"job {job_id} {state['state']}: {state.get('error') or 'no error recorded'}")
    recorded = client.runs(project, job=job_id)["items"]  # recorded by the job itself, with its result
    if as_json:
        print_json({"job": state, "run": recorded[0] if recorded else None})
        return
    metrics = (state.get("result") or {}).get("metrics") or {}
    summary = headline({k: v for k, v in metrics.items() if isinstance(v, (int, float))})
    say(f"job {job_id} succeeded{': ' + summary if summary else ''}")
    if recorded:
        run_id = recorded[0]["id"]
        say(f"run {run_id} recorded; register it with: modelworks remote register {run_id} NAME --project {project}")


# ------------------------------------------------------------------------------ modelworks remote ...


@app.command("runs")
@user_errors
def runs(
    job: int | None = typer.Option(None, "--job", help="only the run of this job"),
    limit: int = Limit,
    as_json: bool = Json,
    url: str | None = Url,
    project: str | None = Project,
    token: str | None = Token,
) -> None:
    """List a project's recorded runs, newest first."""
    with connect(url, token) as client:
        page = client.runs(need_project(project), job=job, limit=limit)

    def line(run: dict[str, Any]) -> str:
        metrics = headline({k: v for k, v in run["metrics"].items() if isinstance(v, (int, float))})
        return f"run {run['id']}  job {run['job_id']}  {run['lineage'].get('source', '')}  {metrics}"

    print_page(page, "runs", line, as_json)


@app.command("submit")
@user_errors
def submit(
    config: Path = typer.Argument(..., help="experiment YAML (data.source builtin:NAME or dataset:NAME@VERSION)"),
    url: str | None = Url,
    project: str | None = Project,
    token: str | None = Token,
) -> None:
    """Queue a train job from an experiment file (as `modelworks train exp.yaml --remote --no-wait`)."""
    from modelworks.config.load import read_yaml

    with connect(url, token) as client:
        job = client.submit_job(need_project(project), "train", read_yaml(config))
    say(f"job {job['id']} queued")


@app.command("register")
@user_errors
def register(
    run_id: int, name: str, url: str | None = Url, project: str | None = Project, token: str | None = Token
) -> None:
    """Register a run as the next version of model NAME."""
    with connect(url, token) as client:
        version = client.register_model(need_project(project), run_id, name)
    say(f"model {name} version {version['version']} (run {run_id})")


@app.command("alias")
@user_errors
def alias(
    name: str,
    alias: str,
    version: int,
    url: str | None = Url,
    project: str | None = Project,
    token: str | None = Token,
) -> None:
    """Point ALIAS of model NAME at VERSION."""
    with connect(url, token) as client:
        moved = client.set_alias(need_project(project), name, alias, version)
    say(f"model {name}: {alias} -> version {moved['version']}")


@app.command("upload")
@user_errors
def upload(
    name: str,
    file: Path = typer.Argument(..., help="CSV, Parquet, JSONL, or a zip of image folders"),
    public: bool = typer.Option(False, "--public", help="store it unencrypted"),
    as_json: bool = Json,
    url: str | None = Url,
    project: str | None = Project,
    token: str | None = Token,
) -> None:
    """Upload FILE (streamed) as the next version of dataset NAME.

    Train on it with data.source: dataset:NAME@VERSION."""
    if not file.is_file():
        raise UserError(f"{file} is not a file")
    with connect(url, token) as client:
        version = client.upload_dataset(need_project(project), name, file, public=public)
    if as_json:
        print_json(version)
        return
    rows = f"{version['rows']} rows, " if version.get("rows") is not None else ""
    say(
        f"dataset {name} version {version['version']}: {rows}{version['size']} bytes, sha256 {version['sha256'][:12]}, "
        f"{'encrypted' if version['encrypted'] else 'not encrypted'}; "
        f"use data.source: dataset:{name}@{version['version']}"
    )


@app.command("datasets")
@user_errors
def datasets(
    limit: int = Limit,
    as_json: bool = Json,
    url: str | None = Url,
    project: str | None = Project,
    token: str | None = Token,
) -> None:
    """List a project's datasets."""
    with connect(url, token) as client:
        page = client.datasets(need_project(project), limit=limit)
    print_page(
        page,
        "datasets",
        lambda d: f"{d['name']}  {d['versions']} version{'s' if d['versions'] != 1 else ''}, latest {d['latest']}",
        as_json,
    )


@app.command("jobs")
@user_errors
def jobs(
    state: str | None = typer.Option(None, "--state", help="queued, running, succeeded, failed or cancelled"),
    limit: int = Limit,
    as_json: bool = Json,
    url: str | None = Url,
    project: str | None = Project,
    token: str | None = Token,
) -> None:
    """List a project's jobs, newest first."""
    with connect(url, token) as client:
        page = client.jobs(need_project(project), state=state, limit=limit)
    print_page(
        page,
        "jobs",
        lambda j: (
            f"job {j['id']}  {j['kind']}  {j['state']}  attempts {j['attempts']}"
            + (f"  {j['error']}" if j.get("error") else "")
        ),
        as_json,
    )


@app.command("logs")
@user_errors
def logs(
    job: int,
    follow: bool = typer.Option(False, "--follow", "-f", help="keep printing until the job ends"),
    url: str | None = Url,
    project: str | None = Project,
    token: str | None = Token,
) -> None:
    """Print a job's log (and, with --follow, its outcome)."""
    project = need_project(project)
    with connect(url, token) as client:
        if follow:
            _follow(client, project, job)
        else:
            for line in client.job_logs(project, job):
                say(line["line"])


@app.command("cancel")
@user_errors
def cancel(job: int, url: str | None = Url, project: str | None = Project, token: str | None = Token) -> None:
    """Cancel a queued or running job."""
    with connect(url, token) as client:
        state = client.cancel_job(need_project(project), job)
    done = state["state"] in FINISHED
    say(f"job {job} {state['state']}" + ("" if done else "; its worker has been asked to stop it"))
