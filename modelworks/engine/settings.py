"""Settings that cannot silently do nothing: checked once the training split's size is known.

`check_settings` turns a warm-up given as a fraction of the run (``warmup_ratio``) into steps and
writes them into the config, and looks at every schedule, early-stopping, checkpoint and pruning
setting that counts epochs or steps against the run it is part of:

- an error where the setting would break what it promises: a warm-up longer than the whole run
  (the learning rate would never reach ``train.lr``);
- a warning (`SettingWarning`, also kept in the report) where the run still trains as asked
  but the setting never takes effect: early-stopping patience >= epochs, a step LR decay or a
  plateau patience that is never reached, a checkpoint interval longer than the run, a pruner
  warm-up that leaves no epoch to prune at.

Validation runs after every epoch, so there is no evaluation interval that could never fire.
"""

from __future__ import annotations

import math
import warnings

from modelworks.config.schema import ExperimentConfig
from modelworks.errors import UserError
from modelworks.training.optim_config import CosineConfig, PlateauConfig, StepConfig, WarmupLinearConfig, warmup_steps


class SettingWarning(UserWarning):
    """A setting that cannot take effect in the configured run (it trains anyway)."""


def run_steps(cfg: ExperimentConfig, train_rows: int, world_size: int = 1) -> tuple[int, int]:
    """(optimizer steps per epoch, total optimizer steps) of the run, as the training loop counts them."""
    t = cfg.train
    batches = math.ceil(math.ceil(train_rows / world_size) / t.batch_size)
    per_epoch = math.ceil(batches / t.grad_accumulation)
    return per_epoch, per_epoch * t.epochs


def check_settings(cfg: ExperimentConfig, train_rows: int, world_size: int = 1) -> tuple[ExperimentConfig, list[str]]:
    """The config with its warm-up in steps, and the warnings (already emitted) about settings that do nothing."""
    t = cfg.train
    per_epoch, total = run_steps(cfg, train_rows, world_size)
    run = f"the run's {total} optimizer steps ({t.epochs} epochs x {per_epoch} steps of {train_rows} training rows)"
    notes: list[str] = []
    schedule = t.scheduler
    if isinstance(schedule, (CosineConfig, WarmupLinearConfig)):
        schedule = schedule.model_copy(update={"warmup_steps": _warmup(schedule, total, run)})
    elif isinstance(schedule, StepConfig) and schedule.step_epochs >= t.epochs:
        notes.append(
            f"train.scheduler.step_epochs ({schedule.step_epochs}) >= train.epochs ({t.epochs}): "
            "the learning rate never decays (warning; training runs with a constant rate)"
        )
    elif isinstance(schedule, PlateauConfig) and schedule.patience + 1 >= t.epochs:
        notes.append(
            f"train.scheduler.patience ({schedule.patience}) leaves no epoch of {t.epochs} at which the "
            "learning rate could drop (warning)"
        )
    if t.early_stopping is not None and t.early_stopping.patience >= t.epochs:
        notes.append(
            f"train.early_stopping.patience ({t.early_stopping.patience}) >= train.epochs ({t.epochs}): "
            "training can never stop early (warning; the best epoch is still restored)"
        )
    if t.checkpoint.every_steps is not None and t.checkpoint.every_steps >= total:
        notes.append(
            f"train.checkpoint.every_steps ({t.checkpoint.every_steps}) is not shorter than {run}: "
            "no mid-epoch checkpoint will be written (warning)"
        )
    if t.checkpoint.every_epochs is not None and t.checkpoint.every_epochs > t.epochs:
        if t.checkpoint.every_seconds is None:
            consequence = "no checkpoint will be written, so the run cannot be resumed"
        else:
            consequence = "only train.checkpoint.every_seconds will write checkpoints"
        notes.append(
            f"train.checkpoint.every_epochs ({t.checkpoint.every_epochs}) > train.epochs ({t.epochs}): {consequence} "
            "(warning)"
        )
    if cfg.tune is not None and cfg.tune.pruner.warmup_epochs >= t.epochs:
        notes.append(
            f"tune.pruner.warmup_epochs ({cfg.tune.pruner.warmup_epochs}) >= train.epochs ({t.epochs}): "
            "no trial can be pruned (warning)"
        )
    for note in notes:
        warnings.warn(note, SettingWarning, stacklevel=2)
    train = t.model_copy(update={"scheduler": schedule})
    return cfg.model_copy(update={"train": train}), notes


def _warmup(schedule: CosineConfig | WarmupLinearConfig, total: int, run: str) -> int:
    """The warm-up in steps (an explicit warmup_steps wins over warmup_ratio); an error when it cannot fit."""
    steps = warmup_steps(schedule, total)
    if steps > total:
        raise UserError(
            f"train.scheduler.warmup_steps ({steps}) is more than {run}: the learning rate would never reach "
            "train.lr; lower it, or give train.scheduler.warmup_ratio (a fraction of the run) instead"
        )
    return steps
