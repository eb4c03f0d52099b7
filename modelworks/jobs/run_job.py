"""One attempt of one job, in its own process: ``python -m modelworks.jobs.run_job JOB TOKEN``.

Started by a worker (`modelworks.jobs.executor.LocalExecutor`). The job's folder is
``<artifacts>/jobs/<id>``; a train job's run lives in ``runs/`` inside it. When an earlier attempt
left a run with a checkpoint, this attempt resumes it (``train(resume=...)``), and the metric
points that attempt recorded after the checkpoint are dropped first — so a recovered job ends
with the same steps as an uninterrupted one, each recorded once. Every database write names the
attempt's claim token: an attempt whose job was reclaimed by another worker stops.
"""

from __future__ import annotations

import math
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from modelworks.errors import UserError
from modelworks.platform.db import make_engine, session_factory
from modelworks.platform.db.models import Job, JobMetric, Project
from modelworks.platform.settings import Settings
from modelworks.training.callbacks import Callback, TrainState

FLUSH_EVERY_S = 1.0
RUN_NAME = "run"


class LeaseLost(Exception):
    """This attempt no longer owns its job (cancelled or reclaimed elsewhere)."""


def job_folder(settings: Settings, job_id: int) -> Path:
    """Where a job's files live: under the artifacts folder when it is local, else under home."""
    root = settings.artifacts.removeprefix("file://")
    base = Path(root) if "://" not in root else settings.home / "artifacts"
    return base / "jobs" / str(job_id)


class Attempt:
    """The attempt's link to its job row: fenced writes by claim token."""

    def __init__(self, settings: Settings, sessions: sessionmaker[Session], job_id: int, token: str) -> None:
        self.settings, self.sessions, self.job_id, self.token = settings, sessions, job_id, token

    def update(self, session: Session, **values: Any) -> None:
        # With nothing to change, rewrite the token itself: the write is the fence either way.
        values = values or {"claim_token": self.token}
        if not session.execute(update(Job).where(Job.id == self.job_id, Job.claim_token == self.token).values(**values)).rowcount:
            session.rollback()
            raise LeaseLost(f"job {self.job_id}: this attempt lost its claim; stopping")
        session.commit()

    def add_metrics(self, points: list[JobMetric]) -> None:
        with self.sessions() as session:
            session.add_all(points)
            self.update(session)  # the fence: commits the points only while the claim holds


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
            session.execute(delete(JobMetric).where(JobMetric.job_id == self.attempt.job_id, JobMetric.step > state.step))
            run_dir = next(iter(sorted(self.runs.iterdir())), None)  # the one run folder, made by train
            self.attempt.update(session, run_dir=str(run_dir) if run_dir else None)
        print(f"training from step {state.step} (epoch {state.epoch} of {state.total_epochs}, {state.steps_per_epoch} steps each)", flush=True)

    def on_step_end(self, state: TrainState, logs: dict[str, Any]) -> None:
        if "loss" in logs:
            self._add(state, {"loss": logs["loss"]})
        # Flush before a step checkpoint is written (the loop writes it after this hook), so the
        # points up to a checkpoint are stored whenever a resume can start from it.
        at_checkpoint = self.every_steps is not None and state.step % self.every_steps == 0
        if at_checkpoint or time.monotonic() - self.last_flush > FLUSH_EVERY_S:
            self.flush()

    def on_epoch_end(self, state: TrainState, logs: dict[str, Any]) -> None:
        self._add(state, {k: v for k, v in logs.items() if k not in ("kind", "epoch", "step")})
        print(f"epoch {state.epoch}: " + "  ".join(f"{k} {v:.4g}" for k, v in logs.items() if k not in ("kind", "epoch", "step") and isinstance(v, (int, float))), flush=True)
        self.flush()

    def on_train_end(self, state: TrainState) -> None:
        self.flush()

    def _add(self, state: TrainState, values: dict[str, Any]) -> None:
        for name, value in values.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                self.pending.append(JobMetric(job_id=self.attempt.job_id, step=state.step, epoch=state.epoch, name=name, value=float(value)))

    def flush(self) -> None:
        points, self.pending = self.pending, []
        self.attempt.add_metrics(points)
        self.last_flush = time.monotonic()


def run_train(attempt: Attempt, job: Job, project: Project, folder: Path) -> dict[str, Any]:
    from modelworks.api import train

    runs = folder / "runs"
    resume = None
    for previous in sorted(runs.iterdir()) if runs.exists() else []:
        if resume is None and (previous / "checkpoint.safetensors").exists():
            resume = previous
            print(f"resuming {previous.name} from its last checkpoint", flush=True)
        else:
            shutil.rmtree(previous)  # an attempt that died before its first checkpoint: start over
    config = dict(job.config)
    config["data"] = dict(config["data"], source=resolve_source(attempt, project, config["data"]["source"], folder))
    config["train"] = dict(config.get("train") or {}, progress=False)
    config.update(runs_dir=str(runs), name=RUN_NAME)
    every_steps = ((config["train"].get("checkpoint") or {}).get("every_steps"))
    run = train(config, resume=resume, callbacks=[MetricsToDb(attempt, runs, every_steps)], progress=False)
    history = run.history
    report = run.report
    return {"run": str(run.path), "steps": history[-1]["step"] if history else 0, "epochs": len(history),
            "metrics": _numbers(report.get("metrics", {}))}


def resolve_source(attempt: Attempt, project: Project, source: str, folder: Path) -> str:
    """builtin:NAME as is; dataset:NAME@VERSION through the datasets service (a registered
    built-in stays ``builtin:NAME``; an upload is decrypted, checked and written into the job's folder)."""
    from modelworks.jobs.configs import DATASET_REF
    from modelworks.platform.datasets import DataStore, engine_source

    ref = DATASET_REF.match(source)
    if ref is None:
        return source
    with attempt.sessions() as session:
        return engine_source(session, project, ref["name"], int(ref["version"]), folder / "data", store=DataStore.from_settings(attempt.settings))


def run_evaluate(attempt: Attempt, job: Job, folder: Path) -> dict[str, Any]:
    from modelworks.api import load_run

    with attempt.sessions() as session:
        source = session.get(Job, job.config["job"])
        run_dir = source.run_dir if source is not None else None
    if not run_dir:
        raise UserError(f"train job {job.config['job']} has no run")
    metrics = _numbers(load_run(run_dir, device="cpu").evaluate(split=job.config["split"]))
    attempt.add_metrics([JobMetric(job_id=job.id, step=None, epoch=None, name=k, value=v) for k, v in metrics.items()])
    return {"run": run_dir, "split": job.config["split"], "metrics": metrics}


def _numbers(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}


def main(argv: list[str]) -> int:
    job_id, token = int(argv[1]), argv[2]
    settings = Settings.from_env()
    engine = make_engine(settings.database_url)
    attempt = Attempt(settings, session_factory(engine), job_id, token)
    try:
        with attempt.sessions() as session:
            job = session.scalar(select(Job).where(Job.id == job_id, Job.claim_token == token))
            if job is None:
                raise LeaseLost(f"job {job_id}: not claimed with this token")
            project = session.get(Project, job.project_id)
        folder = job_folder(settings, job_id)
        folder.mkdir(parents=True, exist_ok=True)
        print(f"job {job_id} ({job.kind}), attempt {job.attempts} of {job.max_attempts}", flush=True)
        result = run_train(attempt, job, project, folder) if job.kind == "train" else run_evaluate(attempt, job, folder)
        with attempt.sessions() as session:
            attempt.update(session, result=result)
        print(f"done: {result.get('metrics')}", flush=True)
        return 0
    except LeaseLost as e:
        print(str(e), file=sys.stderr, flush=True)
        return 3
    except UserError as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        return 2
    finally:
        engine.dispose()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
