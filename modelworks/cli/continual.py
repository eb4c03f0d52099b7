"""``modelworks remote continue|policies``: continual learning on a platform server.

    modelworks remote continue MODEL@production --data dataset:clicks@7 [--gate gate.yaml] [--set epochs=3]
    modelworks remote policies create NAME MODEL --dataset clicks [--min-rows 500 | --trigger drift] [--gate gate.yaml]
    modelworks remote policies list|show NAME|pause NAME|resume NAME|delete NAME
    modelworks remote policies history [NAME]     # each window: prequential metric, drift, candidate, gate, outcome

The same ``--url`` / ``--project`` / ``--token`` as every remote verb (see `modelworks.cli.options`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
import yaml

from modelworks.cli.options import Limit, Project, Token, Url, connect, need_project
from modelworks.cli.output import Json, print_json, print_page, say, user_errors
from modelworks.cli.remote import Wait, submit_and_follow
from modelworks.errors import UserError

policies_app = typer.Typer(
    no_args_is_help=True, help="Continual policies: continue a model's alias on new data, gate it, promote on a pass."
)
GateFile = typer.Option(None, "--gate", help="gate.yaml: delta, epsilon, alpha, ... (default: the gate's defaults)")
TrainSet = typer.Option([], "--set", help="a change to the parent's train section, KEY=VALUE (e.g. epochs=3)")


def _gate(path: Path | None) -> dict[str, Any] | None:
    if path is None:
        return None
    from modelworks.config.load import read_yaml
    from modelworks.evaluate.gate import load_gate_config

    return load_gate_config(read_yaml(path), str(path)).model_dump()


def _train(changes: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for change in changes:
        key, sep, value = change.partition("=")
        if not sep or not key:
            raise UserError(f"--set takes KEY=VALUE (a train setting, e.g. epochs=3); got {change!r}")
        node = out
        *parents, leaf = key.removeprefix("train.").split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = yaml.safe_load(value)
    return out


def continue_(
    model: str = typer.Argument(..., help="MODEL@ALIAS or MODEL@VERSION, e.g. classifier@production"),
    data: str = typer.Option(..., "--data", help="the new labelled data: dataset:NAME@VERSION"),
    gate: Path | None = GateFile,
    train: list[str] = TrainSet,
    alias: str | None = typer.Option(None, "--alias", help="the alias to move on a pass (default: the one in MODEL)"),
    wait: bool = Wait,
    as_json: bool = Json,
    url: str | None = Url,
    project: str | None = Project,
    token: str | None = Token,
) -> None:
    """Continue MODEL on new data: train a candidate from it, register it, gate it against MODEL on the
    same rows, and move the alias only if it passes (the log shows each check of the gate)."""
    config: dict[str, Any] = {"model": model, "data": data, "train": _train(train)}
    config |= {k: v for k, v in (("gate", _gate(gate)), ("alias", alias)) if v is not None}
    submit_and_follow("continue", config, url=url, project=project, token=token, wait=wait, as_json=as_json)


@policies_app.command("create")
@user_errors
def create(
    name: str,
    model: str = typer.Argument(..., help="a registered model of the project"),
    dataset: str = typer.Option(..., "--dataset", help="the dataset whose new versions are the new windows"),
    alias: str = typer.Option("production", "--alias", help="the alias continued, and moved on a pass"),
    trigger: str = typer.Option("rows", "--trigger", help="rows, drift or interval"),
    min_rows: int = typer.Option(1, "--min-rows", help="rows: new labelled rows that start a continuation"),
    interval_s: int | None = typer.Option(None, "--interval-s", help="interval: seconds between continuations"),
    versioning: str = typer.Option("cumulative", "--versioning", help="cumulative or increments"),
    detector: str = typer.Option("adwin", "--detector", help="the drift detector: adwin or ddm"),
    gate: Path | None = GateFile,
    train: list[str] = TrainSet,
    url: str | None = Url,
    project: str | None = Project,
    token: str | None = Token,
) -> None:
    """Create policy NAME on MODEL's alias, watching DATASET."""
    settings = {"alias": alias, "trigger": trigger, "min_rows": min_rows, "interval_s": interval_s,
                "versioning": versioning, "detector": detector, "train": _train(train)}  # fmt: skip
    if gate is not None:
        settings["gate"] = _gate(gate)
    with connect(url, token) as client:
        row = client.create_policy(need_project(project), name, model, dataset, **settings)
    say(f"policy {row['name']}: {_line(row)}")


def _line(p: dict[str, Any]) -> str:
    when = {"rows": f"every {p['min_rows']} new rows", "drift": "on drift", "interval": f"every {p['interval_s']} s"}
    state = "" if p["enabled"] else "  (paused)"
    pending = f"  job {p['pending_job_id']} running" if p["pending_job_id"] else ""
    return (f"{p['model']}@{p['alias']} on dataset {p['dataset']} {when[p['trigger']]}, seen up to "
            f"v{p['last_version']}{pending}{state}")  # fmt: skip


@policies_app.command("list")
@user_errors
def list_(
    limit: int = Limit, as_json: bool = Json, url: str | None = Url, project: str | None = Project,
    token: str | None = Token,
) -> None:  # fmt: skip
    """List the project's policies."""
    with connect(url, token) as client:
        page = client.policies(need_project(project), limit=limit)
    print_page(page, "policies", lambda p: f"{p['name']}  {_line(p)}", as_json)


@policies_app.command("show")
@user_errors
def show(name: str, as_json: bool = Json, url: str | None = Url, project: str | None = Project,
         token: str | None = Token) -> None:  # fmt: skip
    """Show one policy."""
    with connect(url, token) as client:
        row = client.policy(need_project(project), name)
    print_json(row) if as_json else say(f"{row['name']}  {_line(row)}")


def _enable(name: str, enabled: bool, url: str | None, project: str | None, token: str | None) -> None:
    with connect(url, token) as client:
        row = client.set_policy_enabled(need_project(project), name, enabled)
    say(f"policy {row['name']} {'resumed' if row['enabled'] else 'paused'}")


@policies_app.command("pause")
@user_errors
def pause(name: str, url: str | None = Url, project: str | None = Project, token: str | None = Token) -> None:
    """Pause a policy: it queues nothing until resumed."""
    _enable(name, False, url, project, token)


@policies_app.command("resume")
@user_errors
def resume(name: str, url: str | None = Url, project: str | None = Project, token: str | None = Token) -> None:
    """Resume a paused policy."""
    _enable(name, True, url, project, token)


@policies_app.command("delete")
@user_errors
def delete(name: str, url: str | None = Url, project: str | None = Project, token: str | None = Token) -> None:
    """Delete a policy and its history (the versions it registered stay)."""
    with connect(url, token) as client:
        client.delete_policy(need_project(project), name)
    say(f"policy {name} deleted")


@policies_app.command("history")
@user_errors
def history(
    name: str | None = typer.Argument(None, help="one policy's windows (default: every continue job's)"),
    limit: int = Limit, as_json: bool = Json, url: str | None = Url, project: str | None = Project,
    token: str | None = Token,
) -> None:  # fmt: skip
    """Each window, newest first: the current version's prequential metric, drift, the candidate, the
    gate's numbers, promoted or rejected."""
    with connect(url, token) as client:
        page = client.windows(need_project(project), policy=name, limit=limit)
    print_page(page, "windows", _window, as_json)


def _window(w: dict[str, Any]) -> str:
    pre = f"{w['metric']} {w['prequential']:.4f}" if w["prequential"] is not None else "untested"
    cand = f" -> v{w['candidate_version']}" if w["candidate_version"] else ""
    gate = ""
    if w["decision"]:
        new, old = w["decision"]["new"], w["decision"]["old"]
        gate = f"  new {new['current']:.4f}->{new['candidate']:.4f} (p {new['test']['p_value']:.3g})"
        gate += f"  old {old['current']:.4f}->{old['candidate']:.4f}" if old else ""
    why = f"  {w['error']}" if w["error"] else ""
    return (f"{w['created_at'][:19]}  {w['dataset']} rows {w['window_start']}+{w['rows']}  {pre}"
            f"{'  DRIFT' if w['drift'] else ''}  v{w['parent_version']}{cand}{gate}  {w['outcome']}{why}")  # fmt: skip


def add_to(app: typer.Typer) -> None:
    """Attach ``continue`` and ``policies`` to ``modelworks remote``."""
    app.command("continue")(user_errors(continue_))
    app.add_typer(policies_app, name="policies")
