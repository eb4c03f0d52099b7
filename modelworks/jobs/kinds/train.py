"""train: ``runs/run-DATE/`` in the job's folder, resumed from its last checkpoint after a crash.

When an earlier attempt left the run with a checkpoint, this attempt resumes it
(``train(resume=...)``), and the metric points that attempt recorded after the checkpoint are
dropped first, so a recovered job ends with the same steps as an uninterrupted one, each
recorded once.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from sqlalchemy import delete

from modelworks.api import Callback, TrainState, train
from modelworks.jobs.attempt import RUN_NAME, Attempt, platform_experiment
from modelworks.platform.db.models import Job, JobMetric, Project
from modelworks.store.files import CHECKPOINT
from modelworks.store.jsonfile import is_number, numbers

FLUSH_EVERY_S = 1.0


class MetricsToDb(Callback):
    """Streams the loss every few steps and every epoch's metrics into ``job_metrics``."""

    def __init__(self, attempt: Attempt, runs: Path, checkpoint_every_steps: int | None) -> None:
        self.attempt = attempt
        self.runs = runs
        self.every_steps = checkpoint_every_steps
        self.pending: list[JobMetric] = []
        self.last_flush = time.monotonic()

    def on_train_begin(self, state: TrainState) -> None:
        # Resuming from a checkpoint at state.step: the steps after it run again, so drop what
        # the interrupted attempt recorded for them.
        with self.attempt.sessions() as session:
            after = delete(JobMetric).where(JobMetric.job_id == self.attempt.job_id, JobMetric.step > state.step)
            session.execute(after)
            run_dir = next(iter(sorted(self.runs.iterdir())), None)  # the one run folder, made by train
            self.attempt.update(session, run_dir=str(run_dir) if run_dir else None)
        print(
            f"training from step {state.step} (epoch {state.epoch} of {state.total_epochs}, "
            f"{state.steps_per_epoch} steps each)",
            flush=True,
        )

    def on_step_end(self, state: TrainState, logs: dict[str, Any]) -> None:
        if "loss" in logs:
            self._add(state, {"loss": logs["loss"]})
        # Flush before a step checkpoint is written (the loop writes it after this hook), so the
        # points up to a checkpoint are stored whenever a resume can start from it.
        at_checkpoint = self.every_steps is not None and state.step % self.every_steps == 0
        if at_checkpoint or time.monotonic() - self.last_flush > FLUSH_EVERY_S:
            self.flush()

    def on_epoch_end(self, state: TrainState, logs: dict[str, Any]) -> None:
        values = {k: v for k, v in logs.items() if k not in ("kind", "epoch", "step")}
        self._add(state, values)
        shown = "  ".join(f"{k} {v:.4g}" for k, v in values.items() if isinstance(v, (int, float)))
        print(f"epoch {state.epoch}: {shown}", flush=True)
        self.flush()

    def on_train_end(self, state: TrainState) -> None:
        self.flush()

    def _add(self, state: TrainState, values: dict[str, Any]) -> None:
        for name, value in values.items():
            if is_number(value):
                self.pending.append(
                    JobMetric(
                        job_id=self.attempt.job_id, step=state.step, epoch=state.epoch, name=name, value=float(value)
                    )
                )

    def flush(self) -> None:
        points, self.pending = self.pending, []
        self.attempt.add_metrics(points)
        self.last_flush = time.monotonic()


def run_train(attempt: Attempt, job: Job, project: Project, folder: Path) -> dict[str, Any]:
    runs = folder / "runs"
    resume = None
    for previous in sorted(runs.iterdir()) if runs.exists() else []:
        if resume is None and (previous / CHECKPOINT).exists():
            resume = previous
            print(f"resuming {previous.name} from its last checkpoint", flush=True)
        else:
            shutil.rmtree(previous)  # an attempt that died before its first checkpoint: start over
    config = platform_experiment(attempt, project, job.config, folder)
    config.update(runs_dir=str(runs), name=RUN_NAME)
    every_steps = (config["train"].get("checkpoint") or {}).get("every_steps")
    callbacks = [MetricsToDb(attempt, runs, every_steps)]
    run = train(config, resume=resume, callbacks=callbacks, progress=False, base_dir=folder)
    history = run.history
    return {
        "run": str(run.path),
        "steps": history[-1].step if history else 0,
        "epochs": len(history),
        "metrics": numbers(run.report.metrics),
    }
