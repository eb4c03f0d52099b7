"""Request and response bodies of the API. Requests forbid unknown fields, so a typo is a 422
that names the field rather than a setting silently ignored."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any, Callable, Generic, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictBool, field_validator

from modelworks.platform.names import NAME_PATTERN
from modelworks.platform.roles import Role

T = TypeVar("T")

Name = Annotated[str, Field(pattern=NAME_PATTERN, description="lowercase letters, digits, '-', '_', '.'; at most 64")]
# Free text: no NUL or other control characters (PostgreSQL refuses NUL in text).
Text = Annotated[str, Field(pattern=r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$")]


class RequestBody(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ResponseBody(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    error: ErrorDetail


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int = Field(description="rows in all, across every page")
    limit: int
    offset: int

    @classmethod
    def of(cls, page: Any, convert: Callable[[Any], T]) -> "Page[T]":
        """Convert a `modelworks.platform.db.paging.Page` of rows; call as ``Page[Out].of(...)``."""
        return cls(items=[convert(row) for row in page.items], total=page.total, limit=page.limit, offset=page.offset)


# --- users and tokens ---


class UserCreate(RequestBody):
    name: Name
    is_admin: StrictBool = False


class UserOut(ResponseBody):
    name: str
    is_admin: bool
    created_at: datetime


class TokenCreate(RequestBody):
    name: Annotated[Text, Field(min_length=1, max_length=100)]
    expires_at: AwareDatetime | None = Field(None, description="when the token stops working (ISO 8601 with a zone); none: never")

    @field_validator("expires_at")
    @classmethod
    def _in_the_future(cls, value: datetime | None) -> datetime | None:
        if value is not None and value <= datetime.now(timezone.utc):
            raise ValueError("must be in the future")
        return value


class TokenOut(ResponseBody):
    id: str
    name: str
    prefix: str = Field(description="the token's first characters, to recognise it")
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


class TokenCreated(TokenOut):
    token: str = Field(description="the token itself: shown this once, never stored")

    @classmethod
    def of(cls, row: Any, token: str) -> "TokenCreated":
        return cls(**TokenOut.model_validate(row).model_dump(), token=token)


class UserCreated(BaseModel):
    user: UserOut
    token: TokenCreated


# --- projects, members, audit ---


class ProjectCreate(RequestBody):
    name: Name
    description: Annotated[Text, Field(max_length=500)] = ""


class ProjectOut(BaseModel):
    name: str
    description: str
    created_at: datetime
    created_by: str | None
    role: Role | None = Field(description="your role in the project (none: you are an admin, not a member)")


class MemberSet(RequestBody):
    role: Role


class MemberOut(BaseModel):
    user: str
    role: Role
    created_at: datetime
    updated_at: datetime


class AuditEntryOut(ResponseBody):
    at: datetime
    actor: str
    action: str
    target: str
    detail: dict[str, Any]
