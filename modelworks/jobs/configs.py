"""What a job may be asked to do: each kind's config, checked before the job is queued.

=========  ==================================================================================
kind       config
=========  ==================================================================================
train      an experiment config (`modelworks.config.schema.ExperimentConfig`) whose data comes
           from the platform: ``builtin:NAME`` or a project dataset ``dataset:NAME@VERSION``,
           never a path on the server's disk
tune       the same, with a ``tune:`` section; trials run one after another (``tune.parallel``
           must be 1)
evaluate   `EvaluateJob`: a succeeded job of the project that made a run, and a split
compress   `CompressJob`: a succeeded train, tune or compress job, a method and its options
export     `ExportJob`: a succeeded train, tune or compress job, a format and its options
=========  ==================================================================================

Where a job's run is written is the platform's choice. A job asks for one GPU when it trains on
``cuda``; compress and export run on the CPU, except a compression method that trains (prune
fine-tuning, distill) on a run that was trained on ``cuda``: it trains there too.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from modelworks.errors import UserError
from modelworks.platform.db.models import Job, Project
from modelworks.platform.errors import Unprocessable
from modelworks.platform.ids import DbId

# At most 9 digits of version: it is looked up in an INTEGER column.
DATASET_REF = re.compile(r"^dataset:(?P<name>[a-z0-9][a-z0-9._-]{0,63})@(?P<version>[0-9]{1,9})$")
RUN_KINDS = ("train", "tune", "compress", "export")  # the kinds whose succeeded jobs leave a run
SOURCE_KINDS = ("train", "tune", "compress")  # what compress and export start from


class EvaluateJob(BaseModel):
    """Evaluate the run of a finished job of the same project on one of its splits."""

    model_config = ConfigDict(extra="forbid")

    job: DbId = Field(description="id of a succeeded train, tune, compress or export job in this project")
    split: Literal["train", "validation", "test"] = "test"


class CompressJob(BaseModel):
    """Compress the run of a finished job of the same project (`modelworks.compression`)."""

    model_config = ConfigDict(extra="forbid")

    job: DbId = Field(description="id of a succeeded train, tune or compress job in this project")
    method: str = Field(description="a compression method: quantize-dynamic, quantize-static, prune, distill, half")
    options: dict[str, Any] = Field(default_factory=dict, description="the method's options, e.g. {amount: 0.5}")


class ExportJob(BaseModel):
    """Export the run of a finished job of the same project (`modelworks.exporting`)."""

    model_config = ConfigDict(extra="forbid")

    job: DbId = Field(description="id of a succeeded train, tune or compress job in this project")
    format: str = Field(description="an export format: onnx or torchscript")
    opset: int | None = Field(None, description="onnx: the opset version; None: the format's default")
    quantize: Literal["int8"] | None = Field(None, description="onnx: int8 also writes model.int8.onnx")


def check_job_config(session: Session, project: Project, kind: str, config: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """The validated config to store and the GPUs the job needs; `Unprocessable` otherwise."""
    if kind == "train":
        return _check_train(config)
    if kind == "tune":
        return _check_tune(config)
    if kind == "evaluate":
        return _check_evaluate(session, project, config), 0
    if kind == "compress":
        return _check_compress(session, project, config)
    return _check_export(session, project, config), 0  # kind is one of JOB_KINDS: checked by queue.submit


def _check_train(config: dict[str, Any]) -> tuple[dict[str, Any], int]:
    return config, _gpus(_experiment(config).train.device)


def _check_tune(config: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """A train config with a search space that `tune` accepts. What needs the data (the default
    metric, from the task) is checked when the job runs."""
    from modelworks.tuning.space import Space, tune_section

    cfg = _experiment(config)
    try:
        tune = tune_section(cfg, "config")
        Space.build(cfg).check({k: v for k, v in config.items() if k != "tune"})
    except UserError as e:
        raise Unprocessable(str(e)) from None
    if tune.parallel != 1:
        raise Unprocessable(f"config: tune.parallel must be 1 for a platform job (its trials run one after another, "
                            f"in the job's one process; submit several jobs to search in parallel); got {tune.parallel}")
    if tune.metric is not None and not tune.metric.startswith("val_"):
        raise Unprocessable(f"config: tune.metric must be a validation metric, logged every epoch; got {tune.metric!r} "
                            f"(did you mean 'val_{tune.metric}'?)")
    if not tune.cv_folds and cfg.data.split.method == "random" and cfg.data.split.validation == 0:
        raise Unprocessable("config: data.split.validation is 0, but tune scores each trial on validation data; set it above 0")
    return config, _gpus(cfg.train.device)


def _check_evaluate(session: Session, project: Project, config: dict[str, Any]) -> dict[str, Any]:
    cfg = _parse(config, EvaluateJob)
    _source_job(session, project, cfg.job, RUN_KINDS)
    return cfg.model_dump()


def _check_compress(session: Session, project: Project, config: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """The method and its options checked by the compression package's own parser."""
    from modelworks.compression import COMPRESSORS, parse_options

    cfg = _parse(config, CompressJob)
    try:
        entry = COMPRESSORS.get(cfg.method, where="config: method")
        options = parse_options(cfg.method, cfg.options, origin="config: options")
    except UserError as e:
        raise Unprocessable(str(e)) from None
    source = _source_job(session, project, cfg.job, SOURCE_KINDS)
    made_by = source.config.get("method") if source.kind == "compress" else None
    if entry.impl.needs_float_parent and made_by is not None and not COMPRESSORS.get(made_by).impl.makes_float:
        raise Unprocessable(f"config: method: {cfg.method} needs a float32 model, but job {source.id} holds a {made_by} "
                            f"model; compress the job it was made from ({source.config['job']}) instead")
    trains = cfg.method == "distill" or getattr(options, "finetune_epochs", 0) > 0
    gpus = _gpus(_trained_on(session, source)) if trains else 0
    return cfg.model_dump(), gpus


def _check_export(session: Session, project: Project, config: dict[str, Any]) -> dict[str, Any]:
    """The format and its options checked by the format's own options class."""
    from modelworks.config.load import validate
    from modelworks.exporting import FORMATS

    cfg = _parse(config, ExportJob)
    try:
        entry = FORMATS.get(cfg.format, where="config: format")
        given = {k: v for k, v in (("opset", cfg.opset), ("quantize", cfg.quantize)) if v is not None}
        validate({"type": cfg.format, **given}, f"config: {cfg.format} export options", entry.config_cls)
    except UserError as e:
        raise Unprocessable(str(e)) from None
    _source_job(session, project, cfg.job, SOURCE_KINDS)
    return cfg.model_dump()


# ---------------------------------------------------------------------------------- helpers


def _experiment(config: dict[str, Any]) -> Any:
    """The validated experiment config of a train or tune job, its data from the platform."""
    from modelworks.config.schema import ExperimentConfig

    cfg = _parse(config, ExperimentConfig)
    source = cfg.data.source
    if not (source.startswith("builtin:") or DATASET_REF.match(source)):
        raise Unprocessable(f"config: data.source must be builtin:NAME or dataset:NAME@VERSION on the platform; got {source!r}")
    for key in ("validation_source", "test_source"):
        if getattr(cfg.data.split, key) is not None:
            raise Unprocessable(f"config: data.split.{key} is not supported for platform jobs; use data.split fractions")
    return cfg


def _gpus(device: str) -> int:
    return 1 if device.startswith("cuda") else 0


def _parse(config: dict[str, Any], schema: type[BaseModel]) -> Any:
    """``config`` validated against ``schema``; a bad key is a 422 that names it."""
    from modelworks.config.load import validate

    try:
        return validate(config, "config", schema)
    except UserError as e:
        raise Unprocessable(str(e)) from None


def _source_job(session: Session, project: Project, job_id: int, kinds: tuple[str, ...]) -> Job:
    """The succeeded job ``job_id`` of ``project``, of one of ``kinds``, that a job starts from."""
    source = session.get(Job, job_id)
    if source is None or source.project_id != project.id or source.kind not in kinds:
        raise Unprocessable(f"config: job: no {', '.join(kinds[:-1])} or {kinds[-1]} job {job_id} in project {project.name!r}")
    if source.state != "succeeded":
        raise Unprocessable(f"config: job: {source.kind} job {job_id} is {source.state}, not succeeded")
    return source


def _trained_on(session: Session, source: Job) -> str:
    """The ``train.device`` of the train or tune job at the root of ``source``'s compress chain."""
    seen: set[int] = set()
    while source is not None and source.kind == "compress" and source.id not in seen:
        seen.add(source.id)
        source = session.get(Job, source.config["job"])
    if source is None or source.kind not in ("train", "tune"):
        return "cpu"
    return str((source.config.get("train") or {}).get("device", "auto"))
