"""The training loop: one flat function split by comment headers, built from small objects.

`fit` trains `model` on in-memory batches and returns the per-epoch history. It handles gradient
accumulation, clipping, autocast, data-parallel ranks, schedules, early stopping, checkpoints
by steps, epochs or time, and exact resumption; everything else is a callback.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from modelworks.config.schema import EvaluateConfig, TrainConfig
from modelworks.data.batches import TensorBatches
from modelworks.data.schema import TARGET, InputSchema
from modelworks.errors import UserError
from modelworks.evaluate.metrics import epoch_metrics
from modelworks.store import files
from modelworks.store.metrics import MetricsLog
from modelworks.training.callbacks import Callback, TrainState
from modelworks.training.checkpoint import Checkpointer, CheckpointSchedule, EarlyStopper
from modelworks.training.distributed import World, all_mean
from modelworks.training.losses import TaskLoss, outputs_to_predictions, resolve_loss
from modelworks.training.optim import build_optimizer, build_scheduler, schedule_per_epoch
from modelworks.training.runtime import autocast, forward_all, to_device
from modelworks.training.speed import compile_model, configure_threads, format_batch, prepare_model

Augment = Callable[[dict[str, torch.Tensor], torch.Generator], dict[str, torch.Tensor]]
# (outputs, target, inputs) -> scalar loss: replaces the task loss in training steps (distillation).
LossHook = Callable[[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]], torch.Tensor]

STEP_LOG_EVERY = 50  # steps between loss records: reading the loss waits for the device


@dataclass
class FitResult:
    history: list[dict[str, Any]]
    state: TrainState
    best_epoch: int


def fit(
    model: nn.Module,
    train: TensorBatches,
    val: TensorBatches | None,
    cfg: TrainConfig,
    schema: InputSchema,
    *,
    device: torch.device,
    world: World,
    run_dir: Path,
    class_counts: np.ndarray | None = None,
    augment: Augment | None = None,
    callbacks: list[Callback] = (),
    resume: bool = False,
    loss_fn: LossHook | None = None,
    penalty: Callable[[], torch.Tensor] | None = None,
    eval_batch_size: int = EvaluateConfig.model_fields["batch_size"].default,
) -> FitResult:
    """Train `model` (already on `device`) and leave it holding the best (or last) weights.

    `loss_fn`, when given, is the training loss instead of the task's (it also sees the batch's
    inputs, e.g. to ask a teacher model); validation always reports the task loss, in batches of
    at least `eval_batch_size` rows (``evaluate.batch_size``). `penalty`, when given, is added to
    every training step's loss (a continuation's pull toward its parent's weights).
    """
    # ---- setup: model wrapper, loss, optimizer, schedule, state
    if cfg.early_stopping is not None and (val is None or not len(val)):
        raise UserError("train.early_stopping needs validation data; set data.split.validation > 0")
    configure_threads(cfg.speed)
    net = compile_model(_wrap(prepare_model(model, cfg.speed), device, world), cfg.speed)
    task_loss = TaskLoss(resolve_loss(cfg.loss, schema.task), schema.num_classes, class_counts).to(device)
    criterion = loss_fn if loss_fn is not None else lambda outputs, target, inputs: task_loss(outputs, target)
    if penalty is not None:
        criterion = _with_penalty(criterion, penalty)
    optimizer = build_optimizer(
        cfg.optimizer, [p for p in model.parameters() if p.requires_grad], cfg.lr, cfg.weight_decay
    )
    batches_per_epoch = train.num_batches(cfg.batch_size, world.size)
    steps_per_epoch = -(-batches_per_epoch // cfg.grad_accumulation)
    scheduler = build_scheduler(cfg.scheduler, optimizer, cfg.epochs * steps_per_epoch, steps_per_epoch)
    per_epoch_schedule = schedule_per_epoch(cfg.scheduler)
    scaler = torch.amp.GradScaler("cuda") if cfg.precision == "fp16" and device.type == "cuda" else None
    stopper = EarlyStopper(cfg.early_stopping)
    aug_gen = torch.Generator().manual_seed(cfg.seed + 7919 * (world.rank + 1))
    checkpointer = Checkpointer(run_dir / files.CHECKPOINT)
    schedule = CheckpointSchedule(cfg.checkpoint)
    log = MetricsLog(run_dir / files.METRICS, enabled=world.is_main)
    watched = _watched(cfg, callbacks)
    state = TrainState(total_epochs=cfg.epochs, steps_per_epoch=steps_per_epoch)
    if resume and checkpointer.exists():
        state = checkpointer.load(model, optimizer, scheduler, scaler, stopper, aug_gen)
        state.total_epochs, state.stop_training = cfg.epochs, False
        log.truncate_after(state.step)
    history = [r for r in log.read() if r.get("kind") == "epoch"]

    def save_checkpoint() -> None:
        if world.is_main:
            log.sync()  # the records up to the checkpoint's step are on disk before it is
            checkpointer.save(model, optimizer, scheduler, scaler, state, stopper, aug_gen)

    for cb in callbacks:
        cb.on_train_begin(state)
    started = time.perf_counter()
    # ---- epochs
    while state.epoch < cfg.epochs and not state.stop_training:
        net.train()
        loss_sum = torch.tensor(state.epoch_loss_sum, device=device)
        for batch in _epoch_batches(train, cfg, state, world):
            if augment is not None:
                batch = augment(batch, aug_gen)
            batch = format_batch(to_device(batch, device), cfg.speed)
            state.batch_in_epoch += 1
            boundary = state.batch_in_epoch % cfg.grad_accumulation == 0 or state.batch_in_epoch == batches_per_epoch
            loss = _forward_backward(
                net, model, batch, criterion, cfg, device, scaler, sync=boundary or not world.distributed
            )
            loss_sum += loss.detach()
            if not boundary:
                continue
            # ---- optimizer step
            _optimizer_step(model, optimizer, scaler, cfg.grad_clip)
            state.step += 1
            if scheduler is not None and not per_epoch_schedule:
                scheduler.step()
            logs = {"kind": "step", "epoch": state.epoch, "step": state.step, "lr": optimizer.param_groups[0]["lr"]}
            if state.step % STEP_LOG_EVERY == 0 or state.step == 1:
                logs["loss"] = loss.item()
                log.append(logs)
            for cb in callbacks:
                cb.on_step_end(state, logs)
            if schedule.after_step(state.step, epoch_ends=state.batch_in_epoch == batches_per_epoch):
                state.epoch_loss_sum = loss_sum.item()
                save_checkpoint()
            if state.stop_training:
                break
        # ---- end of epoch: validate, log, schedule, stop, checkpoint
        train_loss = all_mean(loss_sum / max(state.batch_in_epoch, 1), world).item()
        state.epoch += 1
        state.batch_in_epoch, state.epoch_loss_sum = 0, 0.0
        logs = _epoch_record(state, optimizer, time.perf_counter() - started, train_loss)
        if val is not None and len(val):
            logs.update(validate(model, val, task_loss, schema, cfg, device, eval_batch_size, watched))
        if per_epoch_schedule:
            scheduler.step(logs.get("val_loss", logs["train_loss"]))
        if stopper.update(logs, state.epoch, model):
            state.stop_training = True
        history.append(logs)
        log.append(logs)
        for cb in callbacks:
            cb.on_epoch_end(state, logs)
        if schedule.after_epoch(state.epoch, state.step, last=state.epoch >= cfg.epochs or state.stop_training):
            save_checkpoint()
    log.sync()
    # ---- finish: the best weights, when asked for
    for cb in callbacks:
        cb.on_train_end(state)
    if stopper.best_weights is not None:
        model.load_state_dict(stopper.best_weights)
    best_epoch = stopper.best_epoch if stopper.best_weights is not None else state.epoch
    return FitResult(history=history, state=state, best_epoch=best_epoch)


def _with_penalty(criterion: LossHook, penalty: Callable[[], torch.Tensor]) -> LossHook:
    return lambda outputs, target, inputs: criterion(outputs, target, inputs) + penalty()


def _wrap(model: nn.Module, device: torch.device, world: World) -> nn.Module:
    """The model as the loop calls it: wrapped by DDP when training data-parallel."""
    if not world.distributed:
        return model
    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def _epoch_batches(train: TensorBatches, cfg: TrainConfig, state: TrainState, world: World):
    """This epoch's batches for this process, from where a resumed epoch stopped."""
    return train.iterate(
        cfg.batch_size,
        shuffle=True,
        seed=cfg.seed,
        epoch=state.epoch,
        rank=world.rank,
        world_size=world.size,
        start_batch=state.batch_in_epoch,
    )


def _epoch_record(state: TrainState, optimizer, elapsed_s: float, train_loss: float) -> dict[str, Any]:
    """The epoch's line of metrics.jsonl, before validation adds its metrics."""
    return {
        "kind": "epoch",
        "epoch": state.epoch,
        "step": state.step,
        "lr": optimizer.param_groups[0]["lr"],
        "elapsed_s": round(elapsed_s, 3),
        "train_loss": train_loss,
    }


def _forward_backward(
    net, model, batch, criterion: LossHook, cfg: TrainConfig, device, scaler, sync: bool
) -> torch.Tensor:
    """One micro-batch: forward under autocast, loss (+ L1), scaled backward; DDP syncs only when `sync`."""
    target = batch.pop(TARGET)
    context = net.no_sync() if isinstance(net, DistributedDataParallel) and not sync else contextlib.nullcontext()
    with context:
        with autocast(device, cfg.precision):
            outputs = net(batch)  # (batch, out_dim)
        loss = criterion(outputs, target, batch)
        if cfg.l1:
            loss = loss + cfg.l1 * sum(p.abs().sum() for p in model.parameters() if p.requires_grad and p.dim() > 1)
        scaled = loss / cfg.grad_accumulation
        (scaler.scale(scaled) if scaler is not None else scaled).backward()
    return loss


def _optimizer_step(model, optimizer, scaler, grad_clip: float | None) -> None:
    if scaler is not None:
        scaler.unscale_(optimizer)
    if grad_clip:
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def _watched(cfg: TrainConfig, callbacks: list[Callback]) -> set[str]:
    """The validation metrics (without ``val_``) that early stopping and the callbacks read each epoch."""
    names = [cfg.early_stopping.metric] if cfg.early_stopping is not None else []
    names += [name for cb in callbacks for name in cb.monitors]
    return {name.removeprefix("val_") for name in names}


def validate(
    model, data: TensorBatches, loss_fn, schema: InputSchema, cfg: TrainConfig, device, eval_batch_size: int,
    watched: set[str] = frozenset(),
) -> dict[str, float]:  # fmt: skip
    """Validation loss and the epoch's scalar metrics (those declared ``per_epoch`` and the `watched`
    ones), prefixed ``val_``; every rank computes the same numbers."""
    outputs = forward_all(model, data, max(cfg.batch_size, eval_batch_size), device, cfg.precision)
    target = data.tensors[TARGET]
    loss = loss_fn(outputs.to(device), target.to(device)).item()
    metrics = epoch_metrics(schema.task, target.numpy(), outputs_to_predictions(schema.task, outputs), watched)
    return {"val_loss": loss, **{f"val_{k}": v for k, v in metrics.items()}}
