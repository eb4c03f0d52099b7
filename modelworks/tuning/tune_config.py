"""The experiment file's ``tune:`` section: a search space over config paths, the sampler, the
pruner and the budget (`modelworks tune`). Torch- and Optuna-free, beside the tuning package
that runs it, as the other components' configs are; the experiment schema includes it.
"""

from __future__ import annotations

import builtins  # `int` is a search-dimension key below
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag, field_validator, model_validator

from modelworks.config.base import Section
from modelworks.tuning.declarations import PRUNER_NAMES, SAMPLER_NAMES


class LogUniformParam(Section):
    """A float drawn on a log scale from [lo, hi]; both bounds positive."""

    loguniform: tuple[float, float]

    @model_validator(mode="after")
    def _bounds(self) -> LogUniformParam:
        lo, hi = self.loguniform
        if lo <= 0 or hi <= 0:
            raise ValueError(f"loguniform bounds must be positive; got [{lo}, {hi}]")
        _check_order(lo, hi)
        return self


class UniformParam(Section):
    """A float drawn uniformly from [lo, hi], optionally on a grid of `step`."""

    uniform: tuple[float, float]
    step: float | None = Field(None, gt=0.0)

    @model_validator(mode="after")
    def _bounds(self) -> UniformParam:
        _check_order(*self.uniform)
        return self


class IntParam(Section):
    """An integer from [lo, hi] (both included), every `step`, or on a log scale."""

    int: tuple[builtins.int, builtins.int]
    step: builtins.int = Field(1, ge=1)
    log: bool = False

    @model_validator(mode="after")
    def _bounds(self) -> IntParam:
        lo, hi = self.int
        _check_order(lo, hi)
        if self.log and self.step != 1:
            raise ValueError(f"log: true cannot be combined with step {self.step}")
        if self.log and lo < 1:
            raise ValueError(f"log-scale int bounds must be at least 1; got [{lo}, {hi}]")
        return self


class ChoiceParam(Section):
    """One of a list of values; a value may be anything the config path accepts (e.g. [64, 64])."""

    choice: list[Any]

    @model_validator(mode="after")
    def _not_empty(self) -> ChoiceParam:
        if not self.choice:
            raise ValueError("the choice list is empty; give at least one value")
        return self


def _check_order(lo: float, hi: float) -> None:
    if lo > hi:
        raise ValueError(f"lower bound {lo} is greater than upper bound {hi}")


_PARAM_KINDS = ("loguniform", "uniform", "int", "choice")


def _param_kind(value: Any) -> str | None:
    keys = value.keys() if isinstance(value, dict) else [k for k in _PARAM_KINDS if hasattr(value, k)]
    kinds = [k for k in _PARAM_KINDS if k in keys]
    return kinds[0] if len(kinds) == 1 else None


SearchParam = Annotated[
    Annotated[LogUniformParam, Tag("loguniform")]
    | Annotated[UniformParam, Tag("uniform")]
    | Annotated[IntParam, Tag("int")]
    | Annotated[ChoiceParam, Tag("choice")],
    Discriminator(
        _param_kind,
        custom_error_type="search_param",
        custom_error_message="a search dimension needs exactly one of the keys loguniform, uniform, int, choice",
    ),
]


class PrunerConfig(Section):
    """Early stopping of poor trials from the metric reported every epoch (`pruner: median` for short)."""

    type: Literal[PRUNER_NAMES] = "median"  # type: ignore[valid-type]  # modelworks.tuning.declarations
    startup_trials: builtins.int = Field(5, ge=0, description="median: trials that finish before any is pruned")
    warmup_epochs: builtins.int = Field(
        1, ge=0, description="median: a trial can be pruned from epoch warmup_epochs + 1 on"
    )
    min_epochs: builtins.int = Field(1, ge=1, description="hyperband, successive_halving: epochs of the first rung")
    reduction_factor: builtins.int = Field(3, ge=2, description="hyperband, successive_halving")


class TuneConfig(Section):
    """Hyperparameter search over config paths (`modelworks tune`)."""

    metric: str | None = Field(
        None, description="a validation metric logged every epoch; None: val_ + the task's main metric"
    )
    direction: Literal["auto", "max", "min"] = Field("auto", description="auto: the direction the metric declares")
    space: dict[str, SearchParam] = Field(description="config path (e.g. train.lr) -> search dimension")
    sampler: Literal[SAMPLER_NAMES] = "tpe"  # type: ignore[valid-type]  # modelworks.tuning.declarations
    pruner: PrunerConfig = Field(default_factory=PrunerConfig)
    trials: builtins.int = Field(20, ge=1, description="total trials in the study, resumed ones included")
    parallel: builtins.int = Field(1, ge=1, description="trials at a time, each in its own worker process")
    timeout_s: float | None = Field(None, gt=0.0, description="no new trial starts after this many seconds")
    cv_folds: builtins.int | None = Field(
        None, ge=2, description="k-fold cross-validation per trial (disables pruning)"
    )
    seed: builtins.int = Field(0, description="sampler seed; each worker and each resumed session offsets it")
    keep: Literal["best", "all"] = Field("best", description="best: delete the weights of every trial run but the best")

    @field_validator("pruner", mode="before")
    @classmethod
    def _pruner_shorthand(cls, value: Any) -> Any:
        return {"type": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _space(self) -> TuneConfig:
        if not self.space:
            raise ValueError("space is empty; map at least one config path to a search dimension")
        if self.sampler == "grid":
            for path, param in self.space.items():
                if not isinstance(param, (ChoiceParam, IntParam)):
                    kind = "loguniform" if isinstance(param, LogUniformParam) else "uniform"
                    raise ValueError(f"sampler 'grid' needs choice or int dimensions; {path} is {kind}")
        return self
