"""GET /health: is the server up and its database reachable (public; used by `modelworks up` checks
and load balancers)."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import text

from modelworks import __version__
from modelworks.server.dependencies import DbSession

router = APIRouter(tags=["health"])


@router.get("/health")
def health(session: DbSession) -> dict[str, str]:
    session.execute(text("SELECT 1"))
    return {"status": "ok", "version": __version__}
