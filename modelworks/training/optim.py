"""Optimizers and learning-rate schedules: PyTorch's own implementations, built from their configs.

The configs and the two registries are in `modelworks.training.optim_config` (torch-free); each
function below is declared there by its import path. Scheduler builders take
(cfg, optimizer, total_steps, steps_per_epoch) and return a scheduler or None.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch

from modelworks.config.base import Section
from modelworks.errors import UserError
from modelworks.training.optim_config import (  # noqa: F401  (the registries are re-exported for callers)
    OPTIMIZERS,
    SCHEDULERS,
    AdadeltaConfig,
    AdagradConfig,
    AdamConfig,
    AdamWConfig,
    CosineConfig,
    NoScheduleConfig,
    OneCycleConfig,
    PlateauConfig,
    RMSpropConfig,
    SGDConfig,
    StepConfig,
    WarmupLinearConfig,
    warmup_steps,
)

Params = Iterable[torch.nn.Parameter]

# ---------------------------------------------------------------------------------- optimizers


def sgd(cfg: SGDConfig, params: Params, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    if cfg.nesterov and cfg.momentum == 0:
        raise UserError("train.optimizer.nesterov needs train.optimizer.momentum > 0")
    return torch.optim.SGD(params, lr=lr, momentum=cfg.momentum, nesterov=cfg.nesterov, weight_decay=weight_decay)


def adam(cfg: AdamConfig, params: Params, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=lr, betas=cfg.betas, eps=cfg.eps, amsgrad=cfg.amsgrad, weight_decay=weight_decay)


def adamw(cfg: AdamWConfig, params: Params, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    return torch.optim.AdamW(
        params, lr=lr, betas=cfg.betas, eps=cfg.eps, amsgrad=cfg.amsgrad, weight_decay=weight_decay
    )


def adagrad(cfg: AdagradConfig, params: Params, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    return torch.optim.Adagrad(params, lr=lr, lr_decay=cfg.lr_decay, eps=cfg.eps, weight_decay=weight_decay)


def adadelta(cfg: AdadeltaConfig, params: Params, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    return torch.optim.Adadelta(params, lr=lr, rho=cfg.rho, eps=cfg.eps, weight_decay=weight_decay)


def rmsprop(cfg: RMSpropConfig, params: Params, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    return torch.optim.RMSprop(
        params,
        lr=lr,
        alpha=cfg.alpha,
        momentum=cfg.momentum,
        eps=cfg.eps,
        centered=cfg.centered,
        weight_decay=weight_decay,
    )


# ---------------------------------------------------------------------------------- schedulers


def no_schedule(cfg: NoScheduleConfig, opt: torch.optim.Optimizer, total_steps: int, steps_per_epoch: int) -> None:
    return None


def step_schedule(cfg: StepConfig, opt: torch.optim.Optimizer, total_steps: int, steps_per_epoch: int):
    return torch.optim.lr_scheduler.StepLR(opt, step_size=cfg.step_epochs * steps_per_epoch, gamma=cfg.gamma)


def cosine_schedule(cfg: CosineConfig, opt: torch.optim.Optimizer, total_steps: int, steps_per_epoch: int):
    warmup = warmup_steps(cfg, total_steps)
    decay = max(1, total_steps - warmup)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / decay)
        return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)


def onecycle_schedule(cfg: OneCycleConfig, opt: torch.optim.Optimizer, total_steps: int, steps_per_epoch: int):
    max_lr = [g["lr"] * cfg.max_lr_factor for g in opt.param_groups]
    return torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=max_lr, total_steps=max(2, total_steps), pct_start=cfg.pct_start
    )


def warmup_linear_schedule(cfg: WarmupLinearConfig, opt: torch.optim.Optimizer, total_steps: int, steps_per_epoch: int):
    warmup = warmup_steps(cfg, total_steps)
    decay = max(1, total_steps - warmup)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, 1.0 - (step - warmup) / decay)

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)


def plateau_schedule(cfg: PlateauConfig, opt: torch.optim.Optimizer, total_steps: int, steps_per_epoch: int):
    return torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=cfg.factor, patience=cfg.patience, min_lr=cfg.min_lr)


def build_optimizer(cfg: Section, params: Params, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    return OPTIMIZERS.get(cfg.type).impl(cfg, params, lr, weight_decay)


def build_scheduler(cfg: Section, opt: torch.optim.Optimizer, total_steps: int, steps_per_epoch: int):
    return SCHEDULERS.get(cfg.type).impl(cfg, opt, total_steps, steps_per_epoch)


def schedule_per_epoch(cfg: Section) -> bool:
    """True for a schedule that steps once per epoch on the validation loss (declared ``per_epoch``)."""
    return SCHEDULERS.get(cfg.type).meta["per_epoch"]
