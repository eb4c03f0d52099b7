"""Continual learning: policies on registered models (editors create, pause and remove them;
viewers read them) and the windows they and the continue jobs saw (viewers). A one-off
continuation is a job of kind ``continue`` (``POST /jobs``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from sqlalchemy.orm import Session

from modelworks.platform import continual
from modelworks.platform.db.continual import ContinualPolicy, ContinualWindow
from modelworks.platform.names import NAME_PATTERN
from modelworks.server.continual_schemas import PolicyCreate, PolicyOut, PolicyUpdate, WindowOut
from modelworks.server.dependencies import DbSession, Editor, Paging, PathName, Viewer
from modelworks.server.schemas import Page

router = APIRouter(prefix="/projects/{project}/continual", tags=["continual learning"])


def policy_out(row: ContinualPolicy) -> PolicyOut:
    return PolicyOut(
        name=row.name, model=row.model.name, alias=row.alias, dataset=row.dataset.name, trigger=row.trigger,
        min_rows=row.min_rows, interval_s=row.interval_s, versioning=row.versioning, detector=row.detector,
        gate=row.gate, train=row.train, enabled=row.enabled, last_version=row.last_version, last_rows=row.last_rows,
        last_run_at=row.last_run_at, pending_job_id=row.pending_job_id, stream_rows=len(row.errors or []),
        created_by=row.created_by.name if row.created_by else None, created_at=row.created_at,
    )  # fmt: skip


def window_out(session: Session, row: ContinualWindow) -> WindowOut:
    policy = session.get(ContinualPolicy, row.policy_id) if row.policy_id is not None else None
    fields = {k: getattr(row, k) for k in WindowOut.model_fields if k != "policy"}
    return WindowOut(**fields, policy=policy.name if policy is not None else None)


@router.post("/policies", status_code=201)
def create_policy(body: PolicyCreate, access: Editor, session: DbSession) -> PolicyOut:
    """A policy on a model's alias: new rows in the dataset start a continuation, gated and promoted on a pass."""
    fields = body.model_dump(mode="json")
    return policy_out(continual.create_policy(session, access, fields.pop("name"), **fields))


@router.get("/policies")
def list_policies(access: Viewer, session: DbSession, paging: Paging) -> Page[PolicyOut]:
    return Page[PolicyOut].of(continual.list_policies(session, access.project, paging.limit, paging.offset), policy_out)


@router.get("/policies/{name}")
def get_policy(name: PathName, access: Viewer, session: DbSession) -> PolicyOut:
    return policy_out(continual.get_policy(session, access.project, name))


@router.patch("/policies/{name}")
def update_policy(name: PathName, body: PolicyUpdate, access: Editor, session: DbSession) -> PolicyOut:
    """Pause or resume a policy."""
    return policy_out(continual.set_enabled(session, access, name, body.enabled))


@router.delete("/policies/{name}", status_code=204)
def delete_policy(name: PathName, access: Editor, session: DbSession) -> Response:
    """Remove a policy and its history; the versions it registered stay."""
    continual.delete_policy(session, access, name)
    return Response(status_code=204)


@router.get("/windows")
def list_windows(
    access: Viewer,
    session: DbSession,
    paging: Paging,
    policy: Annotated[str | None, Query(pattern=NAME_PATTERN, description="only this policy's windows")] = None,
) -> Page[WindowOut]:
    """Each window of new data a continue job saw, newest first: the prequential metric, drift, the
    candidate and the gate's decision with its numbers, promoted or rejected."""
    page = continual.list_windows(session, access.project, policy, paging.limit, paging.offset)
    return Page[WindowOut].of(page, lambda row: window_out(session, row))
