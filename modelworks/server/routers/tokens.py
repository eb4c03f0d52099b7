"""API tokens: each user makes, lists and revokes their own."""

from __future__ import annotations

from fastapi import APIRouter, Response

from modelworks.platform import tokens
from modelworks.server.dependencies import AnyUser, DbSession, Paging
from modelworks.server.schemas import Page, TokenCreate, TokenCreated, TokenOut

router = APIRouter(prefix="/tokens", tags=["tokens"])


@router.post("", status_code=201)
def create_token(body: TokenCreate, user: AnyUser, session: DbSession) -> TokenCreated:
    """A new token for yourself; the response is the only time the token is shown."""
    row, token = tokens.issue_token(session, user, body.name, body.expires_at)
    return TokenCreated.of(row, token)


@router.get("")
def list_tokens(user: AnyUser, session: DbSession, paging: Paging) -> Page[TokenOut]:
    page = tokens.list_tokens(session, user, paging.limit, paging.offset)
    return Page[TokenOut].of(page, TokenOut.model_validate)


@router.delete("/{token_id}", status_code=204)
def revoke_token(token_id: str, user: AnyUser, session: DbSession) -> Response:
    """Revoke one of your tokens; it stops working at once."""
    tokens.revoke_token(session, user, token_id)
    return Response(status_code=204)
