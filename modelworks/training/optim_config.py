"""Optimizer and learning-rate schedule configs, and their two registries (torch-free).

The learning rate and weight decay live in `train` (``train.lr``, ``train.weight_decay``) since
every optimizer takes them; each config class below holds only what is particular to one
optimizer or schedule. The implementations are in `modelworks.training.optim`, imported when
training builds them. Schedules step once per optimizer step, except those declared
``per_epoch`` (``plateau``), which step once per epoch on the validation loss.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from modelworks.config.base import Section
from modelworks.registry import Registry

OPTIMIZERS: Registry[Any] = Registry("optimizer")
SCHEDULERS: Registry[Any] = Registry("scheduler")

# ---------------------------------------------------------------------------------- optimizers


class SGDConfig(Section):
    type: Literal["sgd"] = "sgd"
    momentum: float = Field(0.0, ge=0.0, lt=1.0)
    nesterov: bool = False


OPTIMIZERS.declare("sgd", SGDConfig, impl="modelworks.training.optim:sgd")


class AdamConfig(Section):
    type: Literal["adam"] = "adam"
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = Field(1e-8, gt=0.0)
    amsgrad: bool = False


OPTIMIZERS.declare("adam", AdamConfig, impl="modelworks.training.optim:adam")


class AdamWConfig(Section):
    type: Literal["adamw"] = "adamw"
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = Field(1e-8, gt=0.0)
    amsgrad: bool = False


OPTIMIZERS.declare("adamw", AdamWConfig, impl="modelworks.training.optim:adamw")


class AdagradConfig(Section):
    type: Literal["adagrad"] = "adagrad"
    lr_decay: float = Field(0.0, ge=0.0)
    eps: float = Field(1e-10, gt=0.0)


OPTIMIZERS.declare("adagrad", AdagradConfig, impl="modelworks.training.optim:adagrad")


class AdadeltaConfig(Section):
    type: Literal["adadelta"] = "adadelta"
    rho: float = Field(0.9, gt=0.0, lt=1.0)
    eps: float = Field(1e-6, gt=0.0)


OPTIMIZERS.declare("adadelta", AdadeltaConfig, impl="modelworks.training.optim:adadelta")


class RMSpropConfig(Section):
    type: Literal["rmsprop"] = "rmsprop"
    alpha: float = Field(0.99, gt=0.0, lt=1.0)
    momentum: float = Field(0.0, ge=0.0, lt=1.0)
    eps: float = Field(1e-8, gt=0.0)
    centered: bool = False


OPTIMIZERS.declare("rmsprop", RMSpropConfig, impl="modelworks.training.optim:rmsprop")


# ---------------------------------------------------------------------------------- schedulers


class NoScheduleConfig(Section):
    type: Literal["none"] = "none"


SCHEDULERS.declare("none", NoScheduleConfig, impl="modelworks.training.optim:no_schedule", per_epoch=False)


class StepConfig(Section):
    type: Literal["step"] = "step"
    step_epochs: int = Field(10, ge=1, description="multiply the LR by gamma every this many epochs")
    gamma: float = Field(0.1, gt=0.0, le=1.0)


SCHEDULERS.declare("step", StepConfig, impl="modelworks.training.optim:step_schedule", per_epoch=False)


class CosineConfig(Section):
    type: Literal["cosine"] = "cosine"
    warmup_steps: int | None = Field(
        None, ge=0, description="explicit warm-up steps (wins over warmup_ratio); None: warmup_ratio of the run"
    )
    warmup_ratio: float = Field(0.0, ge=0.0, lt=1.0, description="warm-up as a fraction of the run's optimizer steps")
    min_lr_ratio: float = Field(0.0, ge=0.0, le=1.0)


SCHEDULERS.declare("cosine", CosineConfig, impl="modelworks.training.optim:cosine_schedule", per_epoch=False)


class OneCycleConfig(Section):
    type: Literal["onecycle"] = "onecycle"
    max_lr_factor: float = Field(10.0, ge=1.0, description="peak LR = train.lr * this")
    pct_start: float = Field(0.3, gt=0.0, lt=1.0)


SCHEDULERS.declare("onecycle", OneCycleConfig, impl="modelworks.training.optim:onecycle_schedule", per_epoch=False)


class WarmupLinearConfig(Section):
    type: Literal["warmup_linear"] = "warmup_linear"
    warmup_steps: int | None = Field(
        None, ge=0, description="explicit warm-up steps (wins over warmup_ratio); None: warmup_ratio of the run"
    )
    warmup_ratio: float = Field(0.1, ge=0.0, lt=1.0, description="warm-up as a fraction of the run's optimizer steps")


SCHEDULERS.declare(
    "warmup_linear", WarmupLinearConfig, impl="modelworks.training.optim:warmup_linear_schedule", per_epoch=False
)


def warmup_steps(cfg: CosineConfig | WarmupLinearConfig, total_steps: int) -> int:
    """The warm-up of a schedule in optimizer steps: its explicit warmup_steps, else warmup_ratio of the run.

    The resolve step writes the result into the stored config, so it says what ran."""
    if cfg.warmup_steps is not None:
        return cfg.warmup_steps
    return round(cfg.warmup_ratio * total_steps)


class PlateauConfig(Section):
    type: Literal["plateau"] = "plateau"
    factor: float = Field(0.1, gt=0.0, lt=1.0)
    patience: int = Field(2, ge=0, description="epochs without validation-loss improvement")
    min_lr: float = Field(0.0, ge=0.0)


SCHEDULERS.declare("plateau", PlateauConfig, impl="modelworks.training.optim:plateau_schedule", per_epoch=True)
