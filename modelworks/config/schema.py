"""The experiment file's one typed schema.

YAML -> ``yaml.safe_load`` -> `ExperimentConfig`. Every section forbids unknown keys; feature,
model, optimizer and scheduler sections are discriminated unions on ``type`` assembled from their
registries, whose config classes live beside their components in torch-free modules
(`data.feature_types`, `models.<name>_config`, `training.optim_config`, `training.loss_config`),
so that loading this schema never imports torch. Defaults live here (and in the registered config
classes) alone. Choices that depend on the data ("auto") are made once, in the resolve step, which
writes them back so that the stored config says exactly what ran.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import AfterValidator, Field, model_validator

from modelworks.config.base import Section
from modelworks.continual.config import ParentPenaltyConfig, ReplayConfig
from modelworks.data.encoding import check_delimiter, check_encoding
from modelworks.data.feature_types import (  # noqa: F401  (re-exported: the schema's feature sections)
    AutoFeature,
    CategoricalFeature,
    Feature,
    FeatureSpec,
    ImageFeature,
    NumericFeature,
    TextFeature,
)
from modelworks.data.formats import DataFormat
from modelworks.models import MODELS
from modelworks.training.loss_config import LossConfig
from modelworks.training.optim_config import OPTIMIZERS, SCHEDULERS
from modelworks.training.speed_config import SpeedConfig
from modelworks.tuning.tune_config import (  # noqa: F401  (re-exported: the tune section's classes)
    ChoiceParam,
    IntParam,
    LogUniformParam,
    PrunerConfig,
    SearchParam,
    TuneConfig,
    UniformParam,
)

# ---------------------------------------------------------------------------------------- data


class SplitConfig(Section):
    method: Literal["auto", "random", "column", "files"] = "auto"
    validation: float = Field(0.1, ge=0.0, lt=1.0, description="fraction of the data (random)")
    test: float = Field(0.2, ge=0.0, lt=1.0, description="fraction of the data (random)")
    stratify: bool | None = Field(None, description="None: stratify classification targets")
    seed: int = 42
    column: str | None = Field(None, description="column with train/validation/test per row")
    validation_source: str | None = None
    test_source: str | None = None

    @model_validator(mode="after")
    def _fractions(self) -> SplitConfig:
        if self.validation + self.test >= 1.0:
            raise ValueError(f"validation ({self.validation}) + test ({self.test}) must leave rows for training")
        return self


class DataConfig(Section):
    source: str = Field(description="a file or folder path, or builtin:NAME")
    format: DataFormat = "auto"  # "auto" (from the name) or a format of modelworks.data.formats
    target: str | None = Field(None, description="target column; built-ins and image data know theirs")
    task: Literal["auto", "binary", "multiclass", "regression"] = "auto"
    features: list[FeatureSpec] | None = Field(
        None, description="None: every column except the target and `exclude`, types inferred"
    )
    exclude: list[str] = Field(default_factory=list)
    split: SplitConfig = Field(default_factory=SplitConfig)
    csv_delimiter: Annotated[str, AfterValidator(check_delimiter)] = Field(
        "auto",
        description="one character, \\t (or tab) for a tab, or auto: tab for .tsv, else sniffed (comma when unsure)",
    )
    encoding: Annotated[str, AfterValidator(check_encoding)] = Field(
        "utf-8",
        description="of CSV/TSV/JSONL files: utf-8 (a byte order mark is fine), gb18030, gbk, big5, cp1252, ... "
        "or auto (detected; the resolved config records the encoding found)",
    )
    missing_target: Literal["drop", "error"] = Field(
        "drop", description="rows without a target value: dropped (and counted in the report) or an error"
    )
    limit: int | None = Field(None, ge=1, description="use only the first N rows (quick trials)")
    classes: list[str | int] | None = Field(
        None,
        description="every class label, in output order, declared up front (labels a later continuation "
        "brings, class-incremental learning); default: the training split's classes, sorted",
    )
    root: str | None = Field(
        None, description="a folder every data file and image path must resolve inside (the platform sets it for jobs)"
    )


# --------------------------------------------------------------------------------------- model

ModelConfig = Annotated[Union[MODELS.config_classes()], Field(discriminator="type")]  # type: ignore[valid-type]  # noqa: UP007 (a Union of a runtime tuple)
OptimizerConfig = Annotated[Union[OPTIMIZERS.config_classes()], Field(discriminator="type")]  # type: ignore[valid-type]  # noqa: UP007 (a Union of a runtime tuple)
SchedulerConfig = Annotated[Union[SCHEDULERS.config_classes()], Field(discriminator="type")]  # type: ignore[valid-type]  # noqa: UP007 (a Union of a runtime tuple)

# --------------------------------------------------------------------------------------- train


class EarlyStoppingConfig(Section):
    metric: str = Field("val_loss", description="a validation metric from the log, e.g. val_accuracy")
    mode: Literal["auto", "min", "max"] = "auto"
    patience: int = Field(5, ge=1)
    min_delta: float = Field(0.0, ge=0.0)
    restore_best: bool = True


class CheckpointConfig(Section):
    """When training writes ``checkpoint.safetensors``, what ``--resume`` continues from: whenever
    any of the schedules set here is due. All three ``null``: no checkpoint at all."""

    every_seconds: float | None = Field(
        60.0,
        gt=0.0,
        description="at the end of the first epoch this long after the last checkpoint (or the start), and at the "
        "end of training: a crash costs at most about this much work, and a run of a few seconds writes one "
        "checkpoint instead of one per epoch (each waits for the disk)",
    )
    every_epochs: int | None = Field(None, ge=1, description="at the end of every N-th epoch")
    every_steps: int | None = Field(None, ge=1, description="after every N-th optimizer step (mid-epoch resume)")


class TrainConfig(Section):
    epochs: int = Field(10, ge=0, description="0 only with init_from: the parent's model, evaluated on the new data")
    batch_size: int = Field(32, ge=1)
    lr: float = Field(1e-3, gt=0.0)
    weight_decay: float = Field(0.0, ge=0.0)
    l1: float = Field(0.0, ge=0.0)
    optimizer: OptimizerConfig = Field(default_factory=lambda: OPTIMIZERS.get("adam").config_cls())
    scheduler: SchedulerConfig = Field(default_factory=lambda: SCHEDULERS.get("none").config_cls())
    loss: LossConfig = Field(default_factory=LossConfig)
    grad_clip: float | None = Field(None, gt=0.0, description="max global gradient norm")
    grad_accumulation: int = Field(1, ge=1)
    precision: Literal["fp32", "bf16", "fp16"] = Field(
        "fp32", description="autocast dtype: bf16 on CUDA or CPU (pays on CPUs with avx512_bf16/AMX), fp16 on CUDA"
    )
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    seed: int = 0
    deterministic: bool = False
    early_stopping: EarlyStoppingConfig | None = None
    checkpoint: CheckpointConfig = Field(default_factory=CheckpointConfig)
    progress: bool = True
    speed: SpeedConfig = Field(default_factory=SpeedConfig)
    init_from: str | None = Field(
        None, description="a run folder to continue from: its weights and fitted preprocessing (continual learning)"
    )
    replay: ReplayConfig | None = None
    parent_penalty: ParentPenaltyConfig | None = None

    @model_validator(mode="after")
    def _continuation(self) -> TrainConfig:
        if self.epochs == 0 and self.init_from is None:
            raise ValueError("epochs must be >= 1 (0 is only for a continuation, with init_from)")
        if self.parent_penalty is not None and self.init_from is None:
            raise ValueError("parent_penalty needs init_from: the parent whose weights it keeps the model near")
        return self


Split = Literal["test", "validation", "train"]  # the splits a run is evaluated on


class EvaluateConfig(Section):
    split: Split = "test"
    threshold: float = Field(0.5, gt=0.0, lt=1.0, description="binary decision threshold")
    batch_size: int = Field(256, ge=1, description="rows per forward pass when predicting and evaluating")
    flip_average: bool = Field(
        False,
        description="test-time augmentation: average the model's outputs on each image and on its horizontal "
        "mirror in the report, evaluate, predict and cross-validation (twice the forward passes; for images whose "
        "mirror means the same). Serving and exported models score the plain model",
    )
    baselines: list[Literal["dummy", "linear"]] = Field(
        default_factory=lambda: ["dummy", "linear"],
        description="classical baselines fitted on the same training split and reported beside the model: "
        "dummy (majority class or mean), linear (TF-IDF / columns / pixels + a linear model); [] for none",
    )


# ------------------------------------------------------------------------------ compression


class CompressionRecord(Section):
    """Written by `modelworks compress` into the run it creates: how the model was derived, so
    that loading the run rebuilds the same compressed model. Not for users to write."""

    method: str
    parent: str = Field(description="the run folder this one was made from")
    options: dict[str, Any] = Field(default_factory=dict)


# ---------------------------------------------------------------------------------- experiment


class ExperimentConfig(Section):
    name: str | None = Field(None, description="run name prefix; default: the YAML file's stem")
    runs_dir: str = "runs"
    data: DataConfig
    model: ModelConfig  # type: ignore[valid-type]
    train: TrainConfig = Field(default_factory=TrainConfig)
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig)
    # --- tune field (issue 3) ---
    tune: TuneConfig | None = None
    compression: CompressionRecord | None = None
