"""Optimizers and learning-rate schedules: two registries of PyTorch's own implementations.

The learning rate and weight decay live in `train` (``train.lr``, ``train.weight_decay``) since
every optimizer takes them; each config class below holds only what is particular to one
optimizer or schedule. Schedules step once per optimizer step, except ``plateau``, which steps
once per epoch on the validation loss.
"""

from __future__ import annotations

import math
from typing import Callable, Iterable, Literal

import torch
from pydantic import Field

from modelworks.config.base import Section
from modelworks.errors import UserError
from modelworks.registry import Registry

OPTIMIZERS: Registry[Callable[..., torch.optim.Optimizer]] = Registry("optimizer")
SCHEDULERS: Registry[Callable[..., object]] = Registry("scheduler")

Params = Iterable[torch.nn.Parameter]

# ---------------------------------------------------------------------------------- optimizers


class SGDConfig(Section):
    type: Literal["sgd"] = "sgd"
    momentum: float = Field(0.0, ge=0.0, lt=1.0)
    nesterov: bool = False


@OPTIMIZERS.register("sgd", SGDConfig)
def _sgd(cfg: SGDConfig, params: Params, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    if cfg.nesterov and cfg.momentum == 0:
        raise UserError("train.optimizer.nesterov needs train.optimizer.momentum > 0")
    return torch.optim.SGD(params, lr=lr, momentum=cfg.momentum, nesterov=cfg.nesterov, weight_decay=weight_decay)


class AdamConfig(Section):
    type: Literal["adam"] = "adam"
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = Field(1e-8, gt=0.0)
    amsgrad: bool = False


@OPTIMIZERS.register("adam", AdamConfig)
def _adam(cfg: AdamConfig, params: Params, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=lr, betas=cfg.betas, eps=cfg.eps, amsgrad=cfg.amsgrad, weight_decay=weight_decay)


class AdamWConfig(Section):
    type: Literal["adamw"] = "adamw"
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = Field(1e-8, gt=0.0)
    amsgrad: bool = False


@OPTIMIZERS.register("adamw", AdamWConfig)
def _adamw(cfg: AdamWConfig, params: Params, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=lr, betas=cfg.betas, eps=cfg.eps, amsgrad=cfg.amsgrad, weight_decay=weight_decay)


class AdagradConfig(Section):
    type: Literal["adagrad"] = "adagrad"
    lr_decay: float = Field(0.0, ge=0.0)
    eps: float = Field(1e-10, gt=0.0)


@OPTIMIZERS.register("adagrad", AdagradConfig)
def _adagrad(cfg: AdagradConfig, params: Params, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    return torch.optim.Adagrad(params, lr=lr, lr_decay=cfg.lr_decay, eps=cfg.eps, weight_decay=weight_decay)


class AdadeltaConfig(Section):
    type: Literal["adadelta"] = "adadelta"
    rho: float = Field(0.9, gt=0.0, lt=1.0)
    eps: float = Field(1e-6, gt=0.0)


@OPTIMIZERS.register("adadelta", AdadeltaConfig)
def _adadelta(cfg: AdadeltaConfig, params: Params, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    return torch.optim.Adadelta(params, lr=lr, rho=cfg.rho, eps=cfg.eps, weight_decay=weight_decay)


class RMSpropConfig(Section):
    type: Literal["rmsprop"] = "rmsprop"
    alpha: float = Field(0.99, gt=0.0, lt=1.0)
    momentum: float = Field(0.0, ge=0.0, lt=1.0)
    eps: float = Field(1e-8, gt=0.0)
    centered: bool = False


@OPTIMIZERS.register("rmsprop", RMSpropConfig)
def _rmsprop(cfg: RMSpropConfig, params: Params, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    return torch.optim.RMSprop(
        params, lr=lr, alpha=cfg.alpha, momentum=cfg.momentum, eps=cfg.eps, centered=cfg.centered, weight_decay=weight_decay
    )


# ---------------------------------------------------------------------------------- schedulers
# Each builder takes (cfg, optimizer, total_steps, steps_per_epoch) and returns a scheduler or None.


class NoScheduleConfig(Section):
    type: Literal["none"] = "none"


@SCHEDULERS.register("none", NoScheduleConfig)
def _none(cfg: NoScheduleConfig, opt: torch.optim.Optimizer, total_steps: int, steps_per_epoch: int) -> None:
    return None


class StepConfig(Section):
    type: Literal["step"] = "step"
    step_epochs: int = Field(10, ge=1, description="multiply the LR by gamma every this many epochs")
    gamma: float = Field(0.1, gt=0.0, le=1.0)


@SCHEDULERS.register("step", StepConfig)
def _step(cfg: StepConfig, opt: torch.optim.Optimizer, total_steps: int, steps_per_epoch: int):
    return torch.optim.lr_scheduler.StepLR(opt, step_size=cfg.step_epochs * steps_per_epoch, gamma=cfg.gamma)


class CosineConfig(Section):
    type: Literal["cosine"] = "cosine"
    warmup_steps: int = Field(0, ge=0)
    min_lr_ratio: float = Field(0.0, ge=0.0, le=1.0)


@SCHEDULERS.register("cosine", CosineConfig)
def _cosine(cfg: CosineConfig, opt: torch.optim.Optimizer, total_steps: int, steps_per_epoch: int):
    decay = max(1, total_steps - cfg.warmup_steps)

    def factor(step: int) -> float:
        if step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        progress = min(1.0, (step - cfg.warmup_steps) / decay)
        return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)


class OneCycleConfig(Section):
    type: Literal["onecycle"] = "onecycle"
    max_lr_factor: float = Field(10.0, ge=1.0, description="peak LR = train.lr * this")
    pct_start: float = Field(0.3, gt=0.0, lt=1.0)


@SCHEDULERS.register("onecycle", OneCycleConfig)
def _onecycle(cfg: OneCycleConfig, opt: torch.optim.Optimizer, total_steps: int, steps_per_epoch: int):
    max_lr = [g["lr"] * cfg.max_lr_factor for g in opt.param_groups]
    return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=max_lr, total_steps=max(2, total_steps), pct_start=cfg.pct_start)


class WarmupLinearConfig(Section):
    type: Literal["warmup_linear"] = "warmup_linear"
    warmup_steps: int = Field(100, ge=0)


@SCHEDULERS.register("warmup_linear", WarmupLinearConfig)
def _warmup_linear(cfg: WarmupLinearConfig, opt: torch.optim.Optimizer, total_steps: int, steps_per_epoch: int):
    decay = max(1, total_steps - cfg.warmup_steps)

    def factor(step: int) -> float:
        if step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        return max(0.0, 1.0 - (step - cfg.warmup_steps) / decay)

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)


class PlateauConfig(Section):
    type: Literal["plateau"] = "plateau"
    factor: float = Field(0.1, gt=0.0, lt=1.0)
    patience: int = Field(2, ge=0, description="epochs without validation-loss improvement")
    min_lr: float = Field(0.0, ge=0.0)


@SCHEDULERS.register("plateau", PlateauConfig)
def _plateau(cfg: PlateauConfig, opt: torch.optim.Optimizer, total_steps: int, steps_per_epoch: int):
    return torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=cfg.factor, patience=cfg.patience, min_lr=cfg.min_lr)


def build_optimizer(cfg: Section, params: Params, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    return OPTIMIZERS.get(cfg.type).impl(cfg, params, lr, weight_decay)


def build_scheduler(cfg: Section, opt: torch.optim.Optimizer, total_steps: int, steps_per_epoch: int):
    return SCHEDULERS.get(cfg.type).impl(cfg, opt, total_steps, steps_per_epoch)
