"""Callbacks: a no-op base class with a handful of hooks.

They talk back only through the `logs` dict they receive and `state.stop_training`. Progress in
the terminal, the job runner or a UI is just another callback.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class TrainState:
    """Counters that a checkpoint carries so that `--resume` continues exactly."""

    epoch: int = 0  # epochs completed
    step: int = 0  # optimizer steps taken
    batch_in_epoch: int = 0  # micro-batches done in the current epoch
    epoch_loss_sum: float = 0.0  # sum of their losses, for the epoch's mean train loss
    total_epochs: int = 0
    steps_per_epoch: int = 0
    stop_training: bool = False

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class Callback:
    """Hooks called by `fit`. `on_step_end` runs after every optimizer step; its logs carry the
    loss only every few steps (reading it waits for the GPU). Set `state.stop_training` to stop.

    Each epoch's logs hold the validation loss and the metrics declared ``per_epoch`` (the task's
    headline metric among them); a callback that reads another names it in `monitors`
    (e.g. ``("val_f1_macro",)``), and validation computes it too."""

    monitors: tuple[str, ...] = ()

    def on_train_begin(self, state: TrainState) -> None: ...

    def on_step_end(self, state: TrainState, logs: dict[str, Any]) -> None: ...

    def on_epoch_end(self, state: TrainState, logs: dict[str, Any]) -> None: ...

    def on_train_end(self, state: TrainState) -> None: ...


class ProgressBar(Callback):
    """A live rich progress bar with the latest loss and validation metrics; with output that is not
    a terminal (a log file, a pipe), one plain line per epoch instead of bar fragments."""

    def __init__(self, main_metric: str, plain: bool | None = None) -> None:
        self.main_metric = main_metric
        self.progress = None
        self.plain = plain  # None: plain unless stdout is a terminal

    def on_train_begin(self, state: TrainState) -> None:
        # imported here to keep start-up light: only a run that shows progress needs rich's bars
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        if self.plain is None:
            self.plain = not Console().is_terminal
        self.started = time.perf_counter()
        if self.plain:
            return

        self.progress = Progress(
            TextColumn("epoch {task.fields[epoch]}/{task.fields[epochs]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[info]}"),
        )
        self.progress.start()
        self.task = self.progress.add_task(
            "train",
            total=state.total_epochs * state.steps_per_epoch,
            completed=state.step,
            epoch=state.epoch + 1,
            epochs=state.total_epochs,
            info="",
        )

    def on_step_end(self, state: TrainState, logs: dict[str, Any]) -> None:
        if self.plain:
            return
        info = {"info": f"loss {logs['loss']:.4f}"} if "loss" in logs else {}
        self.progress.update(self.task, completed=state.step, epoch=state.epoch + 1, **info)

    def on_epoch_end(self, state: TrainState, logs: dict[str, Any]) -> None:
        metric = logs.get(f"val_{self.main_metric}")
        info = f"train_loss {logs['train_loss']:.4f}  val_loss {logs.get('val_loss', float('nan')):.4f}"
        if metric is not None:
            info += f"  val_{self.main_metric} {metric:.4f}"
        if self.plain:
            seconds = time.perf_counter() - self.started
            print(f"epoch {state.epoch}/{state.total_epochs}: {info}  ({seconds:.1f}s)", flush=True)
            return
        self.progress.update(self.task, completed=state.step, info=info)
        self.progress.console.print(f"epoch {state.epoch}: {info}")

    def on_train_end(self, state: TrainState) -> None:
        if self.progress is not None:
            self.progress.stop()
