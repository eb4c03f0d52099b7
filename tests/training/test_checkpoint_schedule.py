"""Issue 9, finding 6: every checkpoint schedule writes what it promises.

The property, over a grid of small (every_steps, every_epochs, batches per epoch, gradient
accumulation, epochs): the real training loop writes a checkpoint exactly once after every
`every_steps`-th optimizer step and at the end of every `every_epochs`-th epoch, and a checkpoint
at an epoch's last step holds that epoch as completed (so resuming does not repeat its end).
Issue 14: the default time schedule (`every_seconds`) writes one checkpoint for a short run, at
its end, and one per interval at epoch ends for a long one.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch import nn

import modelworks
from modelworks.config.schema import CheckpointConfig, TrainConfig
from modelworks.data.batches import TensorBatches
from modelworks.data.schema import TARGET, InputSchema
from modelworks.store import files
from modelworks.training import loop
from modelworks.training.callbacks import Callback
from modelworks.training.checkpoint import Checkpointer, CheckpointSchedule
from modelworks.training.distributed import World


class _Linear(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(2, 1)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.linear(batch["x"])


def _promised(every_steps, every_epochs, steps_per_epoch: int, epochs: int) -> list[tuple[int, int, int]]:
    """(step, epochs completed, batch in epoch) of every checkpoint the schedule promises, in order."""
    total = steps_per_epoch * epochs
    points = set()
    if every_steps:
        for step in range(every_steps, total + 1, every_steps):
            ends_epoch = step % steps_per_epoch == 0
            points.add((step, step // steps_per_epoch, 0 if ends_epoch else None))
    if every_epochs:
        for epoch in range(every_epochs, epochs + 1, every_epochs):
            points.add((epoch * steps_per_epoch, epoch, 0))
    return sorted(points)


GRID = list(itertools.product([None, 1, 2, 3, 4], [None, 1, 2], [1, 2, 3, 4], [1, 2], [1, 2, 3]))


def test_finding6_every_schedule_writes_exactly_the_promised_checkpoints(tmp_path, monkeypatch):
    written: list[tuple[int, int, int]] = []

    def record(self, model, optimizer, scheduler, scaler, state, stopper, aug_gen) -> None:
        written.append((state.step, state.epoch, state.batch_in_epoch))

    monkeypatch.setattr(Checkpointer, "save", record)
    schema = InputSchema(task="regression", num_classes=1)
    failures = []
    for every_steps, every_epochs, batches, accumulation, epochs in GRID:
        written.clear()
        data = TensorBatches({"x": torch.randn(batches, 2), TARGET: torch.randn(batches)})
        cfg = TrainConfig(
            epochs=epochs, batch_size=1, grad_accumulation=accumulation, progress=False,
            checkpoint=CheckpointConfig(every_steps=every_steps, every_epochs=every_epochs, every_seconds=None),
        )  # fmt: skip
        loop.fit(_Linear(), data, None, cfg, schema, device=torch.device("cpu"), world=World(), run_dir=tmp_path)
        steps_per_epoch = math.ceil(batches / accumulation)
        promised = _promised(every_steps, every_epochs, steps_per_epoch, epochs)
        # the batch position is compared where the promise fixes it: at an epoch's end
        got = [(s, e, b if s % steps_per_epoch == 0 else None) for s, e, b in written]
        if got != promised:
            failures.append(((every_steps, every_epochs, batches, accumulation, epochs), promised, list(written)))
    assert not failures, f"{len(failures)} of {len(GRID)} schedules; first: {failures[0]}"


def _latest_run(path):
    return max((path.parent / "runs").iterdir(), key=lambda p: p.stat().st_mtime)


class _Interrupt(Callback):
    def __init__(self, at_step: int) -> None:
        self.at_step = at_step

    def on_step_end(self, state, logs) -> None:
        if state.step >= self.at_step:
            raise KeyboardInterrupt


def test_finding6_step_checkpoints_on_epoch_ends_resume_where_they_were(make_config, blobs_csv):
    # the reported case: every_steps a multiple of the steps per epoch, no epoch checkpoints
    data = {"source": str(blobs_csv), "target": "label", "split": {"column": "split"}}
    train = {"epochs": 3, "batch_size": 32, "checkpoint": {"every_steps": 4, "every_epochs": None}, "seed": 1}
    straight = modelworks.train(make_config(data, None, train))  # 128 training rows: 4 steps per epoch
    path = make_config(data, None, train)
    with pytest.raises(KeyboardInterrupt):
        modelworks.train(path, callbacks=[_Interrupt(at_step=10)])  # last checkpoint: the end of epoch 2
    run_dir = _latest_run(path)
    assert (run_dir / files.CHECKPOINT).exists()
    resumed_from = []

    class _From(Callback):
        def on_train_begin(self, state) -> None:
            resumed_from.append((state.step, state.epoch))

    resumed = modelworks.train(None, resume=run_dir, callbacks=[_From()])
    assert resumed_from == [(8, 2)]
    assert [h["step"] for h in resumed.history] == [h["step"] for h in straight.history] == [4, 8, 12]
    assert [h["train_loss"] for h in resumed.history] == pytest.approx([h["train_loss"] for h in straight.history])


def _fit_recording(tmp_path, monkeypatch, checkpoint: CheckpointConfig, **train) -> list[tuple[int, int]]:
    """(step, epoch) of every checkpoint a real `fit` of a tiny regression writes."""
    written: list[tuple[int, int]] = []
    monkeypatch.setattr(Checkpointer, "save", lambda self, *a: written.append((a[4].step, a[4].epoch)))
    data = TensorBatches({"x": torch.randn(8, 2), TARGET: torch.randn(8)})
    cfg = TrainConfig(batch_size=4, progress=False, checkpoint=checkpoint, **train)
    schema = InputSchema(task="regression", num_classes=1)
    loop.fit(_Linear(), data, data, cfg, schema, device=torch.device("cpu"), world=World(), run_dir=tmp_path)
    return written


def test_issue14_default_schedule_checkpoints_a_short_run_once_at_its_end(tmp_path, monkeypatch):
    assert _fit_recording(tmp_path, monkeypatch, CheckpointConfig(), epochs=6) == [(12, 6)]
    early = {"metric": "val_loss", "patience": 1, "min_delta": 1e9}  # no epoch improves enough: stops at epoch 2
    assert _fit_recording(tmp_path, monkeypatch, CheckpointConfig(), epochs=6, early_stopping=early) == [(4, 2)]
    off = CheckpointConfig(every_seconds=None)
    assert _fit_recording(tmp_path, monkeypatch, off, epochs=6) == []


def test_issue14_time_schedule_is_due_at_the_first_epoch_end_after_each_interval():
    now = [0.0]
    schedule = CheckpointSchedule(CheckpointConfig(every_seconds=10), clock=lambda: now[0])
    due = []
    for epoch, at in enumerate([3, 8, 12, 15, 21, 23, 24], start=1):
        now[0] = at
        assert not schedule.after_step(epoch * 5, epoch_ends=True)  # no step schedule
        if schedule.after_epoch(epoch, epoch * 5, last=epoch == 7):
            due.append(epoch)
    assert due == [3, 6, 7]  # 12 s after the start, 23 s (11 s after 12), and the end of training
