"""What the platform's jobs can be asked to do: one declaration per job kind.

=========  ==================================================================================
kind       config
=========  ==================================================================================
train      an experiment config (`modelworks.config.schema.ExperimentConfig`) whose data comes
           from the platform: ``builtin:NAME`` or a project dataset ``dataset:NAME@VERSION``,
           never a path on the server's disk
evaluate   `EvaluateJob`: a succeeded job of the project that made a run, and a split
tune       the same as train, with a ``tune:`` section; trials run one after another
           (``tune.parallel`` must be 1)
compress   `CompressJob`: a succeeded train, tune or compress job, a method and its options
export     `ExportJob`: a succeeded train, tune or compress job, a format and its options
continue   `ContinueJob`: a registered model ``MODEL@ALIAS|VERSION`` continued on a project dataset
           ``dataset:NAME@VERSION``, gated against that version, the alias moved if it passes
=========  ==================================================================================

Each entry of `JOB_KINDS` holds the kind's runner (the function that runs one attempt in the job's
child process, declared by import path: it lives in `modelworks.jobs.kinds` and is imported there
only) and these facts (``entry.meta``):

``config``       the pydantic class its config validates against
``check``        the engine-side check of a config (`Check`), what `modelworks.api.check_job_config`
                 calls: the config to store and the GPUs the job needs
``facade``       the `modelworks.api` function its runner calls
``leaves_run``   whether a succeeded job records a run (that other jobs can start from)
``starts_from``  "runs": the run of any kind that leaves one; "models": of train, tune or compress
                 (the kinds with ``model=True``); None: starts from its config alone
``example``      a config it accepts, for the contract test and the API's documentation
``summary``      its config in a line, for the API's documentation

This module is light (pydantic and the config schema, which imports no torch): the database
models read the kind names from it, the server its schema, the queue and the worker its
declarations. The checks import what they need (optuna, the compression and export packages) on
first use, to keep it so. Adding a job kind is one declaration here plus its runner module and
its test; the database's check constraint, the server's schema and the worker follow.

Where a job's run is written is the platform's choice. A job asks for one GPU when it trains on
``cuda``; compress and export run on the CPU, except a compression method that trains (prune
fine-tuning, distill) on a run that was trained on ``cuda``: it trains there too.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from modelworks.config.load import validate
from modelworks.config.schema import ExperimentConfig
from modelworks.errors import UserError
from modelworks.evaluate.gate_config import GateConfig
from modelworks.platform.ids import DbId
from modelworks.registry import Registry

# A version number of at most 9 digits: anything larger could never be a stored version (ids.DbId).
DATASET_REF = re.compile(r"^dataset:(?P<name>[a-z0-9][a-z0-9._-]{0,63})@(?P<version>[0-9]{1,9})$")
# A registered model's version by number or by alias: MODEL@3, MODEL@production.
MODEL_REF = re.compile(r"^(?P<name>[a-z0-9][a-z0-9._-]{0,63})@(?P<ref>[a-z0-9][a-z0-9._-]{0,63})$")


# ------------------------------------------------------------------------------ what a check gives


@dataclass(frozen=True)
class SourceJob:
    """The succeeded job a config starts from, as the platform found it: its kind and stored
    config, and the ``train.device`` of the train or tune job at the root of its lineage."""

    id: int
    kind: str
    config: dict[str, Any]
    device: str


# How the platform finds the job a config names: (job id, the kinds it may be) -> that job; it
# raises a UserError naming ``config: job`` when there is no such succeeded job in the project.
FindSource = Callable[[int, tuple[str, ...]], SourceJob]


@dataclass(frozen=True)
class CheckedJob:
    """A job config that passed its kind's checks: the config to store (validated, normalized),
    the GPUs the job needs, and the job it starts from (None for train and tune)."""

    kind: str
    config: dict[str, Any]
    gpus: int = 0
    source: SourceJob | None = None


class Check(Protocol):
    def __call__(self, config: dict[str, Any], find_source: FindSource | None) -> CheckedJob: ...


# ------------------------------------------------------------------------------------ the configs


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


class ContinueJob(BaseModel):
    """Continue a registered model on new data (`modelworks.jobs.kinds.continue_`): test the current
    version on the new window (prequential), train a candidate from it (``train.init_from``), register
    the candidate as the next version without the alias, gate it against the current version on the
    same rows, and move the alias only if it passes."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(description="the registered model to continue: MODEL@ALIAS or MODEL@VERSION")
    data: str = Field(description="the new labelled data: dataset:NAME@VERSION of this project")
    alias: str | None = Field(
        None, description="the alias to move if the candidate passes; default: the alias in model, else production"
    )
    gate: GateConfig = Field(default_factory=GateConfig, description="the promotion gate's settings (gate.yaml)")
    train: dict[str, Any] = Field(
        default_factory=dict, description="changes to the parent's train section, e.g. {epochs: 3, lr: 0.0005}"
    )
    window_start: int = Field(0, ge=0, description="the new window's first row in the data (earlier rows seen before)")
    train_on: Literal["always", "drift"] = Field("always", description="drift: train only if drift is detected")
    detector: Literal["adwin", "ddm"] = Field("adwin", description="the drift detector on the live error stream")
    policy: DbId | None = Field(None, description="the continual policy that queued it (set by the platform)")

    def target(self) -> tuple[str, str, str]:
        """(model name, alias or version, alias to move)."""
        ref = MODEL_REF.match(self.model)
        assert ref is not None  # checked by check_continue
        alias = self.alias or (ref["ref"] if not ref["ref"].isdigit() else "production")
        return ref["name"], ref["ref"], alias


# ------------------------------------------------------------------------------------- the checks


def check_train(config: dict[str, Any], find_source: FindSource | None) -> CheckedJob:
    return CheckedJob("train", config, gpus=_gpus(_experiment(config).train.device))


def check_tune(config: dict[str, Any], find_source: FindSource | None) -> CheckedJob:
    """A train config with a search space that `tune` accepts: `modelworks.tuning.check_search`,
    the same checks `tune` makes. What needs the data (the default metric) is checked when the job
    runs."""
    from modelworks.tuning.study import check_search  # optuna: imported when a tune job is checked

    cfg = _experiment(config)
    tune = check_search(cfg, config, cfg.tune.metric if cfg.tune else None, origin="config")
    if tune.parallel != 1:
        raise UserError(
            f"config: tune.parallel must be 1 for a platform job (its trials run one after another, "
            f"in the job's one process; submit several jobs to search in parallel); got {tune.parallel}"
        )
    return CheckedJob("tune", config, gpus=_gpus(cfg.train.device))


def check_evaluate(config: dict[str, Any], find_source: FindSource | None) -> CheckedJob:
    cfg = validate(config, "config", EvaluateJob)
    source = find_source(cfg.job, starts_from("evaluate")) if find_source else None
    return CheckedJob("evaluate", cfg.model_dump(), source=source)


def check_compress(config: dict[str, Any], find_source: FindSource | None) -> CheckedJob:
    """The method and its options checked by the compression package's own parser; with the
    source job known, whether the method can start from its model, and where it trains."""
    from modelworks.compression.methods import COMPRESSORS, parent_refusal, parse_options  # torch: on first use

    cfg = validate(config, "config", CompressJob)
    COMPRESSORS.get(cfg.method, where="config: method")
    options = parse_options(cfg.method, cfg.options, origin="config: options")
    source = find_source(cfg.job, starts_from("compress")) if find_source else None
    if source is None:
        return CheckedJob("compress", cfg.model_dump())
    made_by = source.config.get("method") if source.kind == "compress" else None
    if parent_refusal(cfg.method, made_by) is not None:
        raise UserError(
            f"config: method: {cfg.method} needs a float32 model, but job {source.id} holds a {made_by} "
            f"model; compress the job it was made from ({source.config['job']}) instead"
        )
    gpus = _gpus(source.device) if options.trains() else 0
    return CheckedJob("compress", cfg.model_dump(), gpus=gpus, source=source)


def check_export(config: dict[str, Any], find_source: FindSource | None) -> CheckedJob:
    """The format and its options checked by the format's own options class."""
    from modelworks.exporting.formats import FORMATS  # the export formats' options: imported on first use

    cfg = validate(config, "config", ExportJob)
    entry = FORMATS.get(cfg.format, where="config: format")
    given = {k: v for k, v in (("opset", cfg.opset), ("quantize", cfg.quantize)) if v is not None}
    validate({"type": cfg.format, **given}, f"config: {cfg.format} export options", entry.config_cls)
    source = find_source(cfg.job, starts_from("export")) if find_source else None
    return CheckedJob("export", cfg.model_dump(), source=source)


def check_continue(config: dict[str, Any], find_source: FindSource | None) -> CheckedJob:
    """The model and data references, the gate's settings and the train changes (checked against the
    train section's schema here; against the parent's whole config when the job runs)."""
    from modelworks.config.schema import TrainConfig

    cfg = validate(config, "config", ContinueJob)
    if not MODEL_REF.match(cfg.model):
        raise UserError(f"config: model must be MODEL@ALIAS or MODEL@VERSION; got {cfg.model!r}")
    if not DATASET_REF.match(cfg.data):
        raise UserError(f"config: data must be dataset:NAME@VERSION of this project; got {cfg.data!r}")
    validate(cfg.train, "config: train", TrainConfig)  # an unknown key is named
    if "init_from" in cfg.train:
        raise UserError("config: train.init_from is set by the job (the parent version's run); leave it out")
    return CheckedJob("continue", cfg.model_dump(mode="json"), gpus=_gpus(str(cfg.train.get("device", "cpu"))))


def _experiment(config: dict[str, Any]) -> ExperimentConfig:
    """The validated experiment config of a train or tune job, its data from the platform."""
    cfg = validate(config, "config", ExperimentConfig)
    source = cfg.data.source
    if not (source.startswith("builtin:") or DATASET_REF.match(source)):
        raise UserError(
            f"config: data.source must be builtin:NAME or dataset:NAME@VERSION on the platform; got {source!r}"
        )
    for key in ("validation_source", "test_source"):
        if getattr(cfg.data.split, key) is not None:
            raise UserError(f"config: data.split.{key} is not supported for platform jobs; use data.split fractions")
    return cfg


def _gpus(device: str) -> int:
    return 1 if device.startswith("cuda") else 0


# ------------------------------------------------------------------------------------- the kinds

JOB_KINDS: Registry = Registry("job kind")

_TINY = {"data": {"source": "builtin:iris"}, "model": {"type": "mlp", "hidden": [8]}, "train": {"epochs": 1}}

JOB_KINDS.declare(
    "train",
    impl="modelworks.jobs.kinds.train:run_train",
    config=ExperimentConfig,
    check=check_train,
    facade="train",
    leaves_run=True,
    model=True,
    starts_from=None,
    example=_TINY,
    summary="an experiment config (data.source builtin:NAME or dataset:NAME@VERSION)",
)
JOB_KINDS.declare(
    "evaluate",
    impl="modelworks.jobs.kinds.evaluate:run_evaluate",
    config=EvaluateJob,
    check=check_evaluate,
    facade="load_run",
    leaves_run=False,
    model=False,
    starts_from="runs",
    example={"job": 1, "split": "test"},
    summary="{job, split}, job a succeeded train, tune, compress or export job of the project",
)
JOB_KINDS.declare(
    "tune",
    impl="modelworks.jobs.kinds.tune:run_tune",
    config=ExperimentConfig,
    check=check_tune,
    facade="tune",
    leaves_run=True,
    model=True,
    starts_from=None,
    example={**_TINY, "tune": {"trials": 2, "space": {"train.lr": {"loguniform": [1.0e-3, 1.0e-1]}}}},
    summary="the same as train with a tune: section (tune.parallel 1: trials run one after another)",
)
JOB_KINDS.declare(
    "compress",
    impl="modelworks.jobs.kinds.compress:run_compress",
    config=CompressJob,
    check=check_compress,
    facade="compress",
    leaves_run=True,
    model=True,
    starts_from="models",
    example={"job": 1, "method": "prune", "options": {"amount": 0.5}},
    summary="{job, method, options}, job a succeeded train, tune or compress job of the project",
)
JOB_KINDS.declare(
    "export",
    impl="modelworks.jobs.kinds.export:run_export",
    config=ExportJob,
    check=check_export,
    facade="export",
    leaves_run=True,
    model=False,
    starts_from="models",
    example={"job": 1, "format": "onnx"},
    summary="{job, format, opset, quantize}, job a succeeded train, tune or compress job of the project",
)

JOB_KINDS.declare(
    "continue",
    impl="modelworks.jobs.kinds.continue_:run_continue",
    config=ContinueJob,
    check=check_continue,
    facade="train",
    leaves_run=True,
    model=False,  # not (yet) a job that compress and export start from; evaluate does
    starts_from=None,
    example={"model": "classifier@production", "data": "dataset:clicks@2", "gate": {"epsilon": 0.02}},
    summary="{model: MODEL@ALIAS|VERSION, data: dataset:NAME@VERSION, gate, train}: continue, gate, promote",
)

KIND_NAMES = tuple(e.name for e in JOB_KINDS)  # in declaration order: train, evaluate, tune, compress, export, ...


def starts_from(kind: str) -> tuple[str, ...]:
    """The kinds whose succeeded jobs a job of `kind` may start from, in declaration order."""
    wanted = JOB_KINDS.get(kind).meta["starts_from"]
    fact = {"runs": "leaves_run", "models": "model"}.get(wanted)
    return tuple(e.name for e in JOB_KINDS if fact and e.meta[fact])


def leaves_run(kind: str) -> bool:
    return bool(JOB_KINDS.get(kind).meta["leaves_run"])
