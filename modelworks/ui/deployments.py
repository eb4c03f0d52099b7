"""Deployments: their status (what each serves now), create and remove them, a try-it form, and
the inference keys (issue, revoke). Everything goes through the platform functions the API's
serving routes call; the try-it form asks the serving process itself, as the signed-in user."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

import httpx
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.orm import Session

from modelworks.errors import UserError
from modelworks.platform import deployments, inference_keys, inference_usage, registry
from modelworks.platform.access import ProjectAccess
from modelworks.platform.inference_usage import LATENCY_BUCKETS_S
from modelworks.platform.names import NAME_PATTERN
from modelworks.platform.roles import Role
from modelworks.server.dependencies import SESSION_COOKIE, UI_PREFIX, DbSession, Editor, Paging, PathName, Viewer
from modelworks.ui import latency
from modelworks.ui.web import can, render

router = APIRouter(prefix="/p/{project}")
TRY_TIMEOUT_S = 30.0
MODELS_OFFERED = 200  # in the "new deployment" form
EXAMPLE = '[\n  {"column": "value"}\n]'


def _home(access: ProjectAccess) -> str:
    return f"{UI_PREFIX}/p/{access.project.name}/deployments"


def serving_url(request: Request) -> str:
    settings = request.app.state.settings
    return f"http://{settings.serving_host}:{settings.serving_port}"


@router.get("/deployments", response_class=HTMLResponse)
def deployments_page(request: Request, access: Viewer, session: DbSession, paging: Paging) -> HTMLResponse:
    return _list(request, access, session, paging, new_key=None)


def _list(request: Request, access: ProjectAccess, session: Session, paging: Any, new_key: str | None) -> HTMLResponse:
    """The deployments with what each serves now; for editors, the forms and the inference keys."""
    page = deployments.list_deployments(session, access.project, paging.limit, paging.offset)
    editor = can(access, Role.editor)
    return render(
        request,
        "deployments/list.html",
        access=access,
        section="deployments",
        page=page,
        rows=[(row, deployments.current_version(session, row)) for row in page.items],
        models=registry.list_models(session, access.project, MODELS_OFFERED, 0).items if editor else [],
        keys=inference_keys.list_keys(session, access, 100, 0).items if editor else [],
        new_key=new_key,
    )


@router.get("/deployments/{name}", response_class=HTMLResponse)
def deployment_page(request: Request, name: PathName, access: Viewer, session: DbSession) -> HTMLResponse:
    return _deployment(request, access, session, name)


def _deployment(request: Request, access: ProjectAccess, session: Session, name: str, **tried: Any) -> HTMLResponse:
    row = deployments.get_deployment(session, access.project, name)
    usage = [
        u
        for u in inference_usage.usage_rows(session, request.app.state.settings, access.project)
        if u["deployment"] == name
    ]
    traffic = latency.per_day(usage)
    return render(
        request,
        "deployments/deployment.html",
        access=access,
        section="deployments",
        row=row,
        served_name=deployments.served_name(access.project.name, row.name),
        current=deployments.current_version(session, row),
        usage=usage,
        traffic=traffic,
        chart={"x": list(range(len(traffic))), "labels": [t["day"] for t in traffic],
               "requests": [t["requests"] for t in traffic], "latency": [t["mean_latency_ms"] for t in traffic],
               "p50": [t["p50_ms"] for t in traffic], "p99": [t["p99_ms"] for t in traffic]},
        bounds_ms=[f"{1000 * b:g}" for b in LATENCY_BUCKETS_S],
        instances=tried.pop("instances", EXAMPLE),
        answer=tried.pop("answer", None),
        problem=tried.pop("problem", None),
    )  # fmt: skip


@router.post("/deployments")
def create(
    access: Editor,
    session: DbSession,
    name: Annotated[str, Form(pattern=NAME_PATTERN)],
    model: Annotated[str, Form(pattern=NAME_PATTERN)],
    follows: Annotated[Literal["alias", "version"], Form()],
    target: Annotated[str, Form(min_length=1, max_length=64)],
    runtime: Annotated[Literal["torch", "onnx"], Form()] = "torch",
) -> RedirectResponse:
    """Serve ``model``'s alias (followed as it moves) or a fixed version."""
    chosen = {"alias": target} if follows == "alias" else {"version": _version(target)}
    deployments.create_deployment(session, access, name, model, runtime=runtime, **chosen)
    return RedirectResponse(f"{_home(access)}/{name}", status_code=303)


def _version(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 999_999_999:
        raise UserError(f"a version is a number 1, 2, ...; got {text!r}")
    return int(text)


@router.post("/deployments/{name}/delete")
def delete(name: PathName, access: Editor, session: DbSession) -> RedirectResponse:
    deployments.delete_deployment(session, access, name)
    return RedirectResponse(_home(access), status_code=303)


@router.post("/deployments/{name}/try", response_class=HTMLResponse)
def try_it(
    request: Request,
    name: PathName,
    access: Viewer,
    session: DbSession,
    instances: Annotated[str, Form(max_length=64 * 1024)],
) -> HTMLResponse:
    """Send the instances (JSON rows) to the serving process as the signed-in user (a viewer may
    call a deployment of the project), and show its answer."""
    row = deployments.get_deployment(session, access.project, name)
    try:
        records = json.loads(instances)
    except json.JSONDecodeError as e:
        return _deployment(request, access, session, name, instances=instances, problem=f"JSON: {e}")
    if isinstance(records, dict):
        records = [records]
    url = f"{serving_url(request)}/v2/models/{deployments.served_name(access.project.name, row.name)}/predict"
    token = request.headers.get("authorization", "").removeprefix("Bearer ") or request.cookies.get(SESSION_COOKIE, "")
    try:
        answer = httpx.post(
            url, json={"instances": records}, headers={"Authorization": f"Bearer {token}"}, timeout=TRY_TIMEOUT_S
        )
    except httpx.HTTPError as e:
        problem = f"the serving process at {serving_url(request)} did not answer ({type(e).__name__})"
        return _deployment(request, access, session, name, instances=instances, problem=problem)
    body = answer.text
    try:
        body = json.dumps(answer.json(), ensure_ascii=False, indent=2)
    except ValueError:
        pass
    return _deployment(request, access, session, name, instances=instances, answer={"status": answer.status_code,
                                                                                     "body": body})  # fmt: skip


@router.post("/keys", response_class=HTMLResponse)
def issue_key(
    request: Request,
    access: Editor,
    session: DbSession,
    paging: Paging,
    key_name: Annotated[str, Form(min_length=1, max_length=100)],
) -> HTMLResponse:
    """A new inference key, shown this once on the page that answers."""
    _, key = inference_keys.issue_key(session, access, key_name)
    return _list(request, access, session, paging, new_key=key)


@router.post("/keys/{key_id}/revoke")
def revoke_key(key_id: str, access: Editor, session: DbSession) -> RedirectResponse:
    inference_keys.revoke_key(session, access, key_id)
    return RedirectResponse(_home(access), status_code=303)
