"""The audit log: a project's entries for its editors and owners; every entry for admins."""

from __future__ import annotations

from fastapi import APIRouter

from modelworks.platform import audit
from modelworks.server.dependencies import Admin, DbSession, Editor, Paging
from modelworks.server.schemas import AuditEntryOut, Page

router = APIRouter(tags=["audit"])


@router.get("/projects/{project}/audit")
def project_audit(access: Editor, session: DbSession, paging: Paging) -> Page[AuditEntryOut]:
    """Who changed what in the project, newest first."""
    page = audit.list_entries(session, project_id=access.project.id, limit=paging.limit, offset=paging.offset)
    return Page[AuditEntryOut].of(page, AuditEntryOut.model_validate)


@router.get("/audit")
def all_audit(admin: Admin, session: DbSession, paging: Paging) -> Page[AuditEntryOut]:
    """Every audit entry (tokens, users, all projects), newest first."""
    page = audit.list_entries(session, limit=paging.limit, offset=paging.offset)
    return Page[AuditEntryOut].of(page, AuditEntryOut.model_validate)
