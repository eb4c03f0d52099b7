"""New experiment: pick a dataset version and a starter config, edit the YAML, check it and submit
it as a train or tune job. The check is the one every submission goes through
(`modelworks.jobs.check.check_job`, i.e. `modelworks.api.check_job_config`, as the CLI's); its
problems are shown at the line of the key they name."""

from __future__ import annotations

import re
from importlib import resources
from typing import Annotated, Literal

import yaml
from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from modelworks.errors import UserError
from modelworks.jobs import queue
from modelworks.platform.access import ProjectAccess
from modelworks.platform.db.models import Dataset, DatasetVersion
from modelworks.platform.limits import check_config
from modelworks.server.dependencies import UI_PREFIX, DbSession, Editor
from modelworks.ui.web import render
from modelworks.ui.yaml_lines import Problem, problems_in, yaml_error_problem

router = APIRouter(prefix="/p/{project}/new")
STARTERS = "modelworks.config.templates"
SOURCE_LINE = re.compile(r"^(?P<indent>\s+)source:.*$", re.MULTILINE)
TUNE_SECTION = """
tune:                      # a tune job: trials run one after another
  trials: 4
  space:
    train.lr: {loguniform: [0.0001, 0.01]}
"""
Kind = Literal["train", "tune"]


def starters() -> list[str]:
    folder = resources.files(STARTERS)
    return sorted(p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml"))


def starter_text(name: str, source: str | None, kind: str) -> str:
    """A starter config's text with ``data.source`` set to ``source`` (and a tune section for tune)."""
    if name not in starters():
        raise UserError(f"no starter config {name!r}; choose one of: {', '.join(starters())}")
    text = resources.files(STARTERS).joinpath(f"{name}.yaml").read_text(encoding="utf-8")
    if source:
        text = SOURCE_LINE.sub(lambda m: f"{m['indent']}source: {source}", text, count=1)
    return text + TUNE_SECTION if kind == "tune" else text


def sources(session, access: ProjectAccess) -> list[str]:
    """What ``data.source`` may name here: the project's dataset versions, newest first."""
    rows = session.execute(
        select(Dataset.name, DatasetVersion.version)
        .join(DatasetVersion, DatasetVersion.dataset_id == Dataset.id)
        .where(Dataset.project_id == access.project.id)
        .order_by(Dataset.name, DatasetVersion.version.desc())
    )
    return [f"dataset:{name}@{version}" for name, version in rows]


def _page(request: Request, access: ProjectAccess, session, text: str, kind: str, **extra) -> HTMLResponse:
    problems: list[Problem] = extra.pop("problems", [])
    bad = {p.line for p in problems if p.line}
    return render(
        request,
        "experiment.html",
        status_code=422 if problems else 200,
        access=access,
        section="new",
        text=text,
        kind=kind,
        lines=[(i, line, i in bad) for i, line in enumerate(text.split("\n"), start=1)],
        problems=problems,
        sources=sources(session, access),
        starters=starters(),
        **extra,
    )


@router.get("", response_class=HTMLResponse)
def new_page(
    request: Request,
    access: Editor,
    session: DbSession,
    source: Annotated[str, Query(max_length=200, description="data.source: dataset:NAME@VERSION")] = "",
    starter: Annotated[str, Query(max_length=100)] = "",
    kind: Kind = "train",
) -> HTMLResponse:
    """The editor, filled with a starter config whose ``data.source`` is ``source``."""
    starter = starter or "tabular-classification"
    text = starter_text(starter, source or None, kind)
    return _page(request, access, session, text, kind, source=source, starter=starter)


@router.post("", response_class=HTMLResponse)
def submit(
    request: Request,
    access: Editor,
    session: DbSession,
    config: Annotated[str, Form(max_length=256 * 1024)],
    kind: Annotated[Kind, Form()] = "train",
    action: Annotated[Literal["check", "submit"], Form()] = "submit",
) -> Response:
    """Check the YAML (``action=check``) or submit it as a job; problems come back at their lines."""
    settings = request.app.state.settings
    again = {"source": "", "starter": ""}
    try:
        parsed = yaml.safe_load(config)
    except yaml.YAMLError as e:
        return _page(request, access, session, config, kind, problems=[yaml_error_problem(e)], **again)
    try:
        if not isinstance(parsed, dict):
            raise UserError("config: the YAML must be a mapping of sections (data, model, train, ...)")
        check_config(parsed, settings)
        if action == "check":
            from modelworks.jobs.check import check_job  # the facade imports torch: not at the server's start

            check_job(session, access.project, kind, parsed, pretrained=settings.pretrained)
            return _page(request, access, session, config, kind, valid=True, **again)
        job = queue.submit(session, access.user, access.project, kind, parsed, pretrained=settings.pretrained)
    except UserError as e:
        return _page(request, access, session, config, kind, problems=problems_in(config, str(e)), **again)
    return RedirectResponse(f"{UI_PREFIX}/p/{access.project.name}/jobs?submitted={job.id}", status_code=303)
