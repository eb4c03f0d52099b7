"""What a job may be asked to do: each kind's config, checked before the job is queued.

A train job's config is an experiment config (`modelworks.config.schema.ExperimentConfig`) whose
data comes from the platform: ``builtin:NAME`` or a project dataset ``dataset:NAME@VERSION``,
never a path on the server's disk. Where its run is written is the platform's choice.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from modelworks.errors import UserError
from modelworks.platform.db.models import Job, Project
from modelworks.platform.errors import Unprocessable

DATASET_REF = re.compile(r"^dataset:(?P<name>[a-z0-9][a-z0-9._-]{0,63})@(?P<version>[0-9]+)$")


class EvaluateJob(BaseModel):
    """Evaluate the run of a finished train job of the same project on one of its splits."""

    model_config = ConfigDict(extra="forbid")

    job: int = Field(ge=1, description="id of a succeeded train job in this project")
    split: Literal["train", "validation", "test"] = "test"


def check_job_config(session: Session, project: Project, kind: str, config: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """The validated config to store and the GPUs the job needs; `Unprocessable` otherwise."""
    if kind == "train":
        return _check_train(config)
    if kind == "evaluate":
        return _check_evaluate(session, project, config), 0
    raise Unprocessable(f"{kind} jobs are not yet supported")


def _check_train(config: dict[str, Any]) -> tuple[dict[str, Any], int]:
    from modelworks.config.load import validate

    try:
        cfg = validate(config, "config")
    except UserError as e:
        raise Unprocessable(str(e)) from None
    source = cfg.data.source
    if not (source.startswith("builtin:") or DATASET_REF.match(source)):
        raise Unprocessable(f"config: data.source must be builtin:NAME or dataset:NAME@VERSION on the platform; got {source!r}")
    for key in ("validation_source", "test_source"):
        if getattr(cfg.data.split, key) is not None:
            raise Unprocessable(f"config: data.split.{key} is not supported for platform jobs; use data.split fractions")
    gpus = 1 if cfg.train.device.startswith("cuda") else 0
    return config, gpus


def _check_evaluate(session: Session, project: Project, config: dict[str, Any]) -> dict[str, Any]:
    from modelworks.config.load import validate

    try:
        cfg = validate(config, "config", EvaluateJob)
    except UserError as e:
        raise Unprocessable(str(e)) from None
    source = session.get(Job, cfg.job)
    if source is None or source.project_id != project.id or source.kind != "train":
        raise Unprocessable(f"config: job: no train job {cfg.job} in project {project.name!r}")
    if source.state != "succeeded":
        raise Unprocessable(f"config: job: train job {cfg.job} is {source.state}, not succeeded")
    return cfg.model_dump()
