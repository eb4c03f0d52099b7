"""Checkpoints and early stopping: the two small stateful objects of the training loop."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from modelworks.config.schema import CheckpointConfig, EarlyStoppingConfig
from modelworks.errors import UserError
from modelworks.evaluate.metrics import direction
from modelworks.store.tensorio import load_state, save_state
from modelworks.training.callbacks import TrainState


class EarlyStopper:
    """Tracks the best value of one validation metric and says when patience has run out."""

    def __init__(self, cfg: EarlyStoppingConfig | None) -> None:
        self.cfg = cfg
        watched = cfg or EarlyStoppingConfig()  # without early stopping, the schema's default metric is tracked
        self.metric = watched.metric
        self.mode = watched.mode
        if self.mode == "auto":
            try:
                self.mode = direction(self.metric)
            except UserError as e:
                raise UserError(f"train.early_stopping.metric: {e}") from e
        self.min_delta = watched.min_delta
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_epoch = 0
        self.bad_epochs = 0
        self.best_weights: dict[str, torch.Tensor] | None = None

    def update(self, logs: dict[str, Any], epoch: int, model: nn.Module) -> bool:
        """Record this epoch's value; True when training should stop."""
        if self.cfg is None and self.metric not in logs:
            return False  # nothing to track: no validation split and no early stopping asked for
        if self.metric not in logs:
            known = ", ".join(k for k in logs if k.startswith("val_"))
            raise UserError(f"train.early_stopping.metric {self.metric!r} is not logged; choose one of: {known}")
        value = logs[self.metric]
        improved = value < self.best - self.min_delta if self.mode == "min" else value > self.best + self.min_delta
        if improved:
            self.best, self.best_epoch, self.bad_epochs = value, epoch, 0
            if self.cfg and self.cfg.restore_best:
                self.best_weights = copy.deepcopy({k: v.detach().cpu() for k, v in model.state_dict().items()})
        else:
            self.bad_epochs += 1
        return self.cfg is not None and self.bad_epochs >= self.cfg.patience

    def state_dict(self) -> dict[str, Any]:
        return {
            "best": self.best,
            "best_epoch": self.best_epoch,
            "bad_epochs": self.bad_epochs,
            "best_weights": self.best_weights,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.best_epoch, self.bad_epochs = state["best"], state["best_epoch"], state["bad_epochs"]
        self.best_weights = state["best_weights"]


def rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class CheckpointSchedule:
    """When the loop writes its checkpoint: after every `every_steps` optimizer steps, at the end of
    every `every_epochs` epochs, and with `every_seconds` at the end of the first epoch that long
    after the last checkpoint (or the start) and at the end of training.

    A step checkpoint due on an epoch's last step is written once, after that epoch ends (with its
    validation and history), so that resuming from it does not repeat the epoch's end. The time
    schedule is checked at epoch ends only, after the callbacks' `on_epoch_end`, which is where
    they flush what a resume must find (e.g. the job runner's metrics).
    """

    def __init__(self, cfg: CheckpointConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self.every_steps = cfg.every_steps
        self.every_epochs = cfg.every_epochs
        self.every_seconds = cfg.every_seconds
        self.clock = clock
        self.last_written = clock()
        self.written_step: int | None = None  # the step of the last checkpoint written after a step

    def after_step(self, step: int, epoch_ends: bool) -> bool:
        """True when a checkpoint is due now, after optimizer step `step` (`epoch_ends`: its epoch's last)."""
        due = self._step_due(step) and not epoch_ends
        if due:
            self.written_step = step
            self.last_written = self.clock()
        return due

    def after_epoch(self, epoch: int, step: int, last: bool = False) -> bool:
        """True when a checkpoint is due at the end of `epoch` (1-based), whose last step was `step`;
        `last`: training ends with this epoch (its last one, or it stops early)."""
        epoch_due = bool(self.every_epochs) and epoch % self.every_epochs == 0
        step_due = self._step_due(step) and self.written_step != step
        timed = self.every_seconds is not None and (last or self.clock() - self.last_written >= self.every_seconds)
        due = epoch_due or step_due or timed
        if due:
            self.last_written = self.clock()
        return due

    def _step_due(self, step: int) -> bool:
        return bool(self.every_steps) and step > 0 and step % self.every_steps == 0


class Checkpointer:
    """Everything `--resume` needs, in one safetensors file replaced atomically."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def exists(self) -> bool:
        return self.path.exists()

    def save(self, model, optimizer, scheduler, scaler, state: TrainState, stopper: EarlyStopper, aug_gen) -> None:
        save_state(
            self.path,
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict() if scheduler is not None else None,
                "scaler": scaler.state_dict() if scaler is not None else None,
                "state": state.to_json(),
                "stopper": stopper.state_dict(),
                "rng": rng_state(),
                "augment_rng": aug_gen.get_state(),
            },
        )

    def load(self, model, optimizer, scheduler, scaler, stopper: EarlyStopper, aug_gen) -> TrainState:
        ckpt = load_state(self.path)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        if scheduler is not None and ckpt["scheduler"] is not None:
            scheduler.load_state_dict(ckpt["scheduler"])
        if scaler is not None and ckpt["scaler"] is not None:
            scaler.load_state_dict(ckpt["scaler"])
        stopper.load_state_dict(ckpt["stopper"])
        set_rng_state(ckpt["rng"])
        aug_gen.set_state(ckpt["augment_rng"])
        return TrainState(**ckpt["state"])
