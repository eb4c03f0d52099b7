"""Serving: deployments (editors create, change and remove them; viewers read), inference keys
(editors issue, list and revoke them) and the inference usage behind an invoice (viewers).
The inference itself is answered by the serving process, never here."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BeforeValidator
from sqlalchemy.orm import Session

from modelworks.jobs import queue
from modelworks.platform import deployments, inference_keys, inference_usage
from modelworks.platform.db.serving import Deployment
from modelworks.server.dependencies import DbSession, Editor, Paging, PathName, Viewer
from modelworks.server.schemas import Page, UsageOut
from modelworks.server.serving_schemas import (
    DeploymentCreate,
    DeploymentOut,
    DeploymentUpdate,
    InferenceKeyCreate,
    InferenceKeyCreated,
    InferenceKeyOut,
    InferenceUsageOut,
)

router = APIRouter(prefix="/projects/{project}", tags=["serving"])


def _iso_day(value: object) -> object:
    """Only ``YYYY-MM-DD`` (what the document's ``format: date`` allows): pydantic alone would also
    read ``0`` or ``1700000000`` as a Unix time."""
    if isinstance(value, str) and not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
        raise ValueError("must be a day, YYYY-MM-DD")
    return value


Day = Annotated[date, BeforeValidator(_iso_day)]


def deployment_out(session: Session, row: Deployment, project: str) -> DeploymentOut:
    return DeploymentOut(
        name=row.name, model=row.model.name, served_name=deployments.served_name(project, row.name), alias=row.alias,
        version=row.version, current_version=deployments.current_version(session, row),
        canary_version=row.canary_version, canary_percent=row.canary_percent, runtime=row.runtime,
        precision=row.precision, max_batch=row.max_batch, max_delay_ms=row.max_delay_ms,
        created_by=row.created_by.name if row.created_by else None, created_at=row.created_at,
        updated_at=row.updated_at,
    )  # fmt: skip


# --- deployments


@router.post("/deployments", status_code=201)
def create_deployment(body: DeploymentCreate, access: Editor, session: DbSession) -> DeploymentOut:
    """Serve a registered model's alias (it follows the alias as it moves) or version."""
    row = deployments.create_deployment(session, access, **body.model_dump())
    return deployment_out(session, row, access.project.name)


@router.get("/deployments")
def list_deployments(access: Viewer, session: DbSession, paging: Paging) -> Page[DeploymentOut]:
    page = deployments.list_deployments(session, access.project, paging.limit, paging.offset)
    return Page[DeploymentOut].of(page, lambda row: deployment_out(session, row, access.project.name))


@router.get("/deployments/{name}")
def get_deployment(name: PathName, access: Viewer, session: DbSession) -> DeploymentOut:
    return deployment_out(session, deployments.get_deployment(session, access.project, name), access.project.name)


@router.patch("/deployments/{name}")
def update_deployment(name: PathName, body: DeploymentUpdate, access: Editor, session: DbSession) -> DeploymentOut:
    """Change the canary (``canary_version``, ``canary_percent``) or what the deployment follows
    (``alias`` or ``version``, one of them); only the fields sent change."""
    row = deployments.update_deployment(session, access, name, **body.model_dump(exclude_unset=True))
    return deployment_out(session, row, access.project.name)


@router.delete("/deployments/{name}", status_code=204)
def delete_deployment(name: PathName, access: Editor, session: DbSession) -> Response:
    """Stop serving it (the serving processes drop it within a second or two)."""
    deployments.delete_deployment(session, access, name)
    return Response(status_code=204)


# --- inference keys


@router.post("/inference-keys", status_code=201)
def create_key(body: InferenceKeyCreate, access: Editor, session: DbSession) -> InferenceKeyCreated:
    """A key for the project's customers; the response is the only time the key is shown."""
    row, key = inference_keys.issue_key(session, access, **body.model_dump())
    return InferenceKeyCreated(**InferenceKeyOut.model_validate(row).model_dump(), key=key)


@router.get("/inference-keys")
def list_keys(access: Editor, session: DbSession, paging: Paging) -> Page[InferenceKeyOut]:
    page = inference_keys.list_keys(session, access, paging.limit, paging.offset)
    return Page[InferenceKeyOut].of(page, InferenceKeyOut.model_validate)


@router.delete("/inference-keys/{key_id}", status_code=204)
def revoke_key(key_id: str, access: Editor, session: DbSession) -> Response:
    """Revoke a key; the serving processes refuse it within a few seconds."""
    inference_keys.revoke_key(session, access, key_id)
    return Response(status_code=204)


# --- usage


@router.get("/inference-usage", response_model=InferenceUsageOut, responses={200: {"content": {"text/csv": {}}}})
def get_usage(
    access: Viewer,
    session: DbSession,
    request: Request,
    since: Annotated[Day | None, Query(description="first UTC day, YYYY-MM-DD")] = None,
    until: Annotated[Day | None, Query(description="last UTC day, YYYY-MM-DD")] = None,
    key: Annotated[str | None, Query(pattern=r"^[0-9a-f]{16}$", description="only this inference key's usage")] = None,
    format: Annotated[Literal["json", "csv"], Query(description="json, or csv: the rows only")] = "json",
) -> InferenceUsageOut | Response:
    """Inference requests per caller, deployment and UTC day with their estimated charge, beside
    the project's training compute and its cost."""
    settings = request.app.state.settings
    usage = inference_usage.usage(session, settings, access.project, since, until, key)
    if format == "csv":
        return Response(inference_usage.to_csv(usage["rows"]), media_type="text/csv")
    compute = UsageOut.model_validate(queue.usage(session, settings, access.project))
    return InferenceUsageOut(**usage, compute=compute)
