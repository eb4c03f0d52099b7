"""Request and response bodies of the API. Requests forbid unknown fields, so a typo is a 422
that names the field rather than a setting silently ignored."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictBool, field_validator

from modelworks.job_kinds import JOB_KINDS, KIND_NAMES
from modelworks.platform.ids import DbId
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
    def of(cls, page: Any, convert: Callable[[Any], T]) -> Page[T]:
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
    expires_at: AwareDatetime | None = Field(
        None, description="when the token stops working (ISO 8601 with a zone); none: never"
    )

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
    def of(cls, row: Any, token: str) -> TokenCreated:
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


# --- datasets ---


def _builtin_names(schema: dict[str, Any]) -> None:
    """Name the built-in data sets in the document, which is written on first request: importing
    them loads scikit-learn, kept off the server's start-up (a lazy import for that reason). The
    service checks the name (400, with the choices)."""
    from modelworks.data.builtins import BUILTINS

    schema["enum"] = BUILTINS.names()


class BuiltinRegister(RequestBody):
    builtin: Name = Field(
        description="a built-in data set, e.g. iris (the engine's builtin:NAME)", json_schema_extra=_builtin_names
    )


class DatasetVersionOut(BaseModel):
    dataset: str
    version: int
    sha256: str = Field(description="of the plaintext")
    size: int = Field(description="plaintext bytes")
    format: str
    source: str = Field(description="the uploaded file name, or builtin:NAME")
    schema_: list[dict[str, Any]] = Field(alias="schema", serialization_alias="schema")
    rows: int
    encrypted: bool
    key_id: str | None
    created_by: str | None
    created_at: datetime
    preview: dict[str, Any] | None = Field(
        None, description="first rows (and image classes); in single-version answers only"
    )

    model_config = ConfigDict(populate_by_name=True)


class DatasetOut(BaseModel):
    name: str
    created_by: str | None
    created_at: datetime
    versions: int
    latest: int | None


class DatasetDetail(DatasetOut):
    items: list[DatasetVersionOut] = Field(description="every version, oldest first (without previews)")


class RotateKeyOut(BaseModel):
    reencrypted: int
    key_id: str


# --- jobs ---


class JobCreate(RequestBody):
    kind: Literal[KIND_NAMES] = Field(description="the job's kind (`modelworks.job_kinds`)")  # type: ignore[valid-type]
    config: dict[str, Any] = Field(
        description="; ".join(f"{e.name}: {e.meta['summary']}" for e in JOB_KINDS),
        examples=[e.meta["example"] for e in JOB_KINDS],
    )
    max_attempts: int = Field(3, ge=1, le=10, description="attempts before the job fails (crashes are retried)")
    timeout_s: int | None = Field(None, ge=1, le=7 * 24 * 3600, description="per attempt; none: no limit")


class JobOut(ResponseBody):
    id: int
    kind: str
    state: str
    config: dict[str, Any]
    attempts: int
    max_attempts: int
    timeout_s: int | None
    cancel_requested: bool
    gpus: int
    run_dir: str | None
    result: dict[str, Any] | None
    error: str | None
    worker_id: str | None
    heartbeat_at: datetime | None
    created_by: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    cpu_seconds: float
    gpu_seconds: float
    cost: float


class JobLogOut(ResponseBody):
    seq: int
    at: datetime
    line: str


class JobMetricOut(ResponseBody):
    step: int | None
    epoch: int | None
    name: str
    value: float
    at: datetime


class JobUsageOut(BaseModel):
    id: int
    kind: str
    state: str
    cpu_seconds: float
    gpu_seconds: float
    cost: float


class UsageOut(BaseModel):
    project: str
    prices: dict[str, float]
    jobs: int
    cpu_seconds: float
    gpu_seconds: float
    cost: float
    per_job: list[JobUsageOut]


# --- runs and the model registry ---


class ArtifactOut(BaseModel):
    path: str
    size: int
    sha256: str


class RunOut(ResponseBody):
    id: int
    job_id: int | None
    lineage: dict[str, Any] = Field(
        description="the data it trained on: source, and dataset, version, sha256 for a project dataset; "
        "for a compressed or exported run also parent_job and parent_run"
    )
    code_version: dict[str, Any] = Field(description="git_commit and modelworks version of the code that trained it")
    metrics: dict[str, float] = Field(description="final metrics from the run's report")
    created_at: datetime


class MetricPoint(BaseModel):
    step: int | None
    epoch: int | None
    value: float


class RunDetail(RunOut):
    config: dict[str, Any] = Field(description="the resolved experiment config: every parameter")
    history: dict[str, list[MetricPoint]] = Field(
        description="metrics over time, by name, in streamed order; thinned to ?points= per name"
    )
    history_points: dict[str, int] = Field(
        description="how many points each metric has in all (the full series: /jobs/{job_id}/metrics)"
    )
    artifacts: list[ArtifactOut]


class VersionCreate(RequestBody):
    run_id: DbId


class AliasSet(RequestBody):
    version: DbId


class ModelVersionOut(BaseModel):
    model: str
    version: int
    run_id: int | None
    created_by: str | None
    created_at: datetime
    artifacts: list[ArtifactOut] | None = None


class AliasOut(BaseModel):
    model: str
    alias: str
    version: int
    updated_by: str | None
    updated_at: datetime


class ModelOut(BaseModel):
    name: str
    created_by: str | None
    created_at: datetime


class ModelDetail(ModelOut):
    versions: list[ModelVersionOut]
    aliases: list[AliasOut]
