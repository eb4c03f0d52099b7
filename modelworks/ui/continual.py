"""Continual learning: the project's policies, and each policy's history — every window it saw,
the candidate it trained, the gate's decision with its numbers, promoted or rejected — with
pause and resume for editors. Through the same platform functions as the API's continual routes
(`modelworks.platform.continual`); the candidates' runs come from the registry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.orm import Session

from modelworks.evaluate.gate_config import GateConfig
from modelworks.platform import continual, registry
from modelworks.platform.access import ProjectAccess
from modelworks.platform.db.continual import ContinualPolicy, ContinualWindow
from modelworks.platform.db.paging import MAX_LIMIT
from modelworks.server.dependencies import UI_PREFIX, DbSession, Editor, Paging, PathName, Viewer
from modelworks.ui.web import render

router = APIRouter(prefix="/p/{project}/continual")


@dataclass(frozen=True)
class Gate:
    """A stored gate decision (`modelworks.evaluate.gate.GateDecision` as JSON), read for a table row.
    ``old`` is None when no old holdout was measured; a number the JSON could not hold is None."""

    checks: dict[str, bool]
    new: dict[str, Any]
    old: dict[str, Any] | None
    baselines: dict[str, float | None]
    config: GateConfig  # the settings it was judged by
    reasons: list[str]

    @classmethod
    def of(cls, decision: dict[str, Any] | None) -> Gate | None:
        if not decision:
            return None
        return cls(
            checks=dict(decision.get("checks") or {}), new=dict(decision.get("new") or {}), old=decision.get("old"),
            baselines=dict(decision.get("baselines") or {}),
            config=GateConfig.model_validate(decision.get("config") or {}), reasons=list(decision.get("reasons") or []),
        )  # fmt: skip


def policies_of_model(session: Session, access: ProjectAccess, model_id: int) -> list[ContinualPolicy]:
    """The policies on one model, for its page (of the project's first `MAX_LIMIT` policies)."""
    return [p for p in continual.list_policies(session, access.project, MAX_LIMIT, 0).items if p.model_id == model_id]


def _last_window(session: Session, access: ProjectAccess, policy: ContinualPolicy) -> ContinualWindow | None:
    page = continual.list_windows(session, access.project, policy.name, limit=1)
    return page.items[0] if page.items else None


@router.get("", response_class=HTMLResponse)
def policies_page(request: Request, access: Viewer, session: DbSession, paging: Paging) -> HTMLResponse:
    page = continual.list_policies(session, access.project, paging.limit, paging.offset)
    rows = [(p, _last_window(session, access, p)) for p in page.items]
    return render(request, "continual/list.html", access=access, section="continual", page=page, rows=rows)


@router.get("/{name}", response_class=HTMLResponse)
def policy_page(request: Request, name: PathName, access: Viewer, session: DbSession, paging: Paging) -> HTMLResponse:
    """The policy's settings and state, and its history, newest window first."""
    policy = continual.get_policy(session, access.project, name)
    page = continual.list_windows(session, access.project, name, paging.limit, paging.offset)
    _, versions, _ = registry.get_model(session, access.project, policy.model.name)
    return render(
        request,
        "continual/policy.html",
        access=access,
        section="continual",
        policy=policy,
        page=page,
        windows=[(w, Gate.of(w.decision)) for w in page.items],
        runs={v.version: v.run_id for v in versions},
        gate_config=GateConfig.model_validate(policy.gate),
    )


def _set_enabled(access: ProjectAccess, session: Session, name: str, enabled: bool) -> RedirectResponse:
    continual.set_enabled(session, access, name, enabled)
    return RedirectResponse(f"{UI_PREFIX}/p/{access.project.name}/continual/{name}", status_code=303)


@router.post("/{name}/pause")
def pause(name: PathName, access: Editor, session: DbSession) -> RedirectResponse:
    """The policy queues nothing until resumed."""
    return _set_enabled(access, session, name, False)


@router.post("/{name}/resume")
def resume(name: PathName, access: Editor, session: DbSession) -> RedirectResponse:
    return _set_enabled(access, session, name, True)
