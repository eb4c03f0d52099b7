"""Request and response bodies of the continual-learning routes: policies and their windows."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field, StrictBool, ValidationError, field_validator

from modelworks.evaluate.gate_config import GateConfig
from modelworks.platform.ids import MAX_ID
from modelworks.server.schemas import Name, RequestBody, ResponseBody


class PolicyCreate(RequestBody):
    name: Name
    model: Name = Field(description="a registered model of the project")
    alias: Name = Field("production", description="the alias whose version is continued, and moved on a pass")
    dataset: Name = Field(description="the project dataset whose new versions are the new windows")
    trigger: Literal["rows", "drift", "interval"] = Field(
        "rows",
        description="rows: min_rows new rows; drift: test every new version, train on drift; interval: at most "
        "every interval_s seconds",
    )
    min_rows: int = Field(1, ge=1, le=MAX_ID, description="rows: new labelled rows that start a continuation")
    interval_s: int | None = Field(
        None, ge=60, le=366 * 24 * 3600, description="interval: seconds between continuations (default 86400, a day)"
    )
    versioning: Literal["cumulative", "increments"] = Field(
        "cumulative", description="cumulative: each dataset version holds every row so far; increments: new rows only"
    )
    detector: Literal["adwin", "ddm"] = Field("adwin", description="the drift detector on the live error stream")
    gate: GateConfig = Field(default_factory=GateConfig, description="the promotion gate's settings (gate.yaml)")
    train: dict[str, Any] = Field(default_factory=dict, description="changes to the parent's train section")

    @field_validator("train")
    @classmethod
    def _train_keys(cls, value: dict[str, Any]) -> dict[str, Any]:
        from modelworks.config.schema import TrainConfig

        if "init_from" in value:
            raise ValueError("init_from is set by each continuation (the version it continues); leave it out")
        try:
            TrainConfig.model_validate(value)
        except ValidationError as e:  # an unknown key or a bad value: a 422 naming it
            problems = (f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors())
            raise ValueError("; ".join(problems)) from None
        return value


class PolicyUpdate(RequestBody):
    enabled: StrictBool = Field(description="false: the policy queues nothing until enabled again")


class PolicyOut(ResponseBody):
    name: str
    model: str
    alias: str
    dataset: str
    trigger: str
    min_rows: int
    interval_s: int | None
    versioning: str
    detector: str
    gate: dict[str, Any]
    train: dict[str, Any]
    enabled: bool
    last_version: int = Field(description="the dataset version consumed up to")
    last_rows: int
    last_run_at: datetime | None
    pending_job_id: int | None = Field(description="the continue job in flight, if any")
    stream_rows: int = Field(description="rows of the live error stream kept for the drift detector")
    created_by: str | None
    created_at: datetime


class WindowOut(ResponseBody):
    id: int
    policy: str | None
    job_id: int | None
    model: str
    alias: str
    parent_version: int | None
    candidate_version: int | None
    dataset: str
    window_start: int
    rows: int
    metric: str | None
    prequential: float | None = Field(description="the current version on the window, tested before training")
    sliding: float | None = Field(description="the same over the latest rows of the live stream")
    drift: bool
    drift_rows: list[int]
    outcome: Literal["promoted", "rejected", "tested", "failed"]
    decision: dict[str, Any] | None = Field(description="the promotion gate's decision with all its numbers")
    error: str | None
    created_at: datetime
