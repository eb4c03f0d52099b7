"""Request and response bodies of the serving routes: deployments, inference keys, inference usage."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StrictFloat,
    Tag,
    field_validator,
    model_validator,
)

from modelworks.errors import UserError
from modelworks.platform.ids import DbId
from modelworks.serve.precision import Precision, check_precision
from modelworks.server.schemas import Name, RequestBody, ResponseBody, Text, UsageOut

# bf16 is a precision of the torch runtime: the document says so (if runtime is onnx, precision is fp32).
TORCH_ONLY_PRECISION = {
    "if": {"properties": {"runtime": {"const": "onnx"}}, "required": ["runtime"]},
    "then": {"properties": {"precision": {"const": "fp32"}}},
}


class _DeploymentCreate(RequestBody):
    model_config = ConfigDict(json_schema_extra=TORCH_ONLY_PRECISION)

    name: Name
    model: Name
    canary_version: DbId | None = Field(None, description="a second version for a share of requests")
    canary_percent: StrictFloat = Field(0.0, ge=0.0, le=100.0, description="the canary's share of requests, in percent")
    runtime: Literal["torch", "onnx"] = "torch"
    precision: Precision = Field(
        "fp32", description="torch: bf16 runs the forward pass under bfloat16 autocast (faster on AMX CPUs and GPUs)"
    )
    max_batch: int = Field(32, ge=1, le=4096)
    max_delay_ms: StrictFloat = Field(5.0, ge=0.0, le=1000.0)

    @model_validator(mode="after")
    def _torch_only_precision(self) -> _DeploymentCreate:
        try:
            check_precision(self.runtime, self.precision)
        except UserError as e:  # pydantic reports a ValueError as a 422 naming the body
            raise ValueError(str(e)) from None
        return self


class AliasDeploymentCreate(_DeploymentCreate):
    alias: Name = Field(description="follow this alias of the model (moving it rolls the deployment)")
    version: None = None


class VersionDeploymentCreate(_DeploymentCreate):
    version: DbId = Field(description="stay on this version of the model")
    alias: None = None


def _follows(body: Any) -> str | None:
    """Which of alias or version a deployment's body gives (a null counts as not given); None: not exactly one."""
    given = {k for k in ("alias", "version") if isinstance(body, dict) and body.get(k) is not None}
    return given.pop() if len(given) == 1 else None


ONE_OF = "a deployment follows either an alias or a version: give exactly one"

# A deployment follows an alias or stays on a version: exactly one, in the document as in the server.
DeploymentCreate = Annotated[
    Annotated[AliasDeploymentCreate, Tag("alias")] | Annotated[VersionDeploymentCreate, Tag("version")],
    Discriminator(_follows, custom_error_type="alias_or_version", custom_error_message=ONE_OF),
]


class CanaryUpdate(RequestBody):
    canary_version: DbId | None = Field(None, description="null: no canary")
    canary_percent: StrictFloat | None = Field(None, ge=0.0, le=100.0, description="null: 0, no canary traffic")


class AliasUpdate(CanaryUpdate):
    alias: Name = Field(description="follow this alias of the model from now on")
    version: None = None


class VersionUpdate(CanaryUpdate):
    version: DbId = Field(description="stay on this version of the model from now on")
    alias: None = None


def _changes(body: Any) -> str | None:
    """``canary`` for a body that names neither alias nor version, else as `_follows`."""
    if isinstance(body, dict) and not {"alias", "version"} & body.keys():
        return "canary"
    return _follows(body)


# A change of the canary alone, or also of what the deployment follows: then exactly one of alias or version.
DeploymentUpdate = Annotated[
    Annotated[CanaryUpdate, Tag("canary")]
    | Annotated[AliasUpdate, Tag("alias")]
    | Annotated[VersionUpdate, Tag("version")],
    Discriminator(_changes, custom_error_type="alias_or_version", custom_error_message=ONE_OF),
]


class DeploymentOut(BaseModel):
    name: str
    model: str
    served_name: str = Field(description="the model name on the serving endpoint: /v2/models/<served_name>/...")
    alias: str | None
    version: int | None
    current_version: int | None = Field(description="the version the deployment follows now")
    canary_version: int | None
    canary_percent: float
    runtime: str
    precision: str
    max_batch: int
    max_delay_ms: float
    created_by: str | None
    created_at: datetime
    updated_at: datetime


class InferenceKeyCreate(RequestBody):
    name: Annotated[Text, Field(min_length=1, max_length=100)]
    deployments: list[Name] | None = Field(None, max_length=100, description="only these deployments; none: all")
    expires_at: AwareDatetime | None = Field(None, description="when the key stops working (ISO 8601 with a zone)")
    rate_limit: int | None = Field(None, ge=1, le=10**9, description="requests per minute")
    quota: int | None = Field(None, ge=1, le=10**12, description="requests per UTC day")

    @field_validator("expires_at")
    @classmethod
    def _in_the_future(cls, value: datetime | None) -> datetime | None:
        if value is not None and value <= datetime.now(timezone.utc):
            raise ValueError("must be in the future")
        return value


class InferenceKeyOut(ResponseBody):
    id: str
    name: str
    prefix: str = Field(description="the key's first characters, to recognise it")
    deployments: list[str] | None
    rate_limit: int | None
    quota: int | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


class InferenceKeyCreated(InferenceKeyOut):
    key: str = Field(description="the key itself: shown this once, never stored")


class InferenceUsageRow(BaseModel):
    day: str
    key_id: str | None
    key_name: str | None
    user: str | None
    deployment: str
    requests: int
    rows: int
    errors: dict[str, int]
    mean_latency_ms: float
    latency_buckets: list[int] = Field(
        description="requests per latency bucket: upper bounds latency_bounds_s, then the rest"
    )
    charge: float


class InferenceUsageOut(BaseModel):
    project: str
    prices: dict[str, float]
    latency_bounds_s: list[float]
    rows: list[InferenceUsageRow]
    requests: int
    charge: float
    compute: UsageOut = Field(description="the project's training compute and its cost, as GET /usage")
