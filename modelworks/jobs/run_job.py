"""One attempt of one job, in its own process: ``python -m modelworks.jobs.run_job JOB TOKEN``.

Started by a worker (`modelworks.jobs.executor.LocalExecutor`). The job's folder is
``<artifacts>/jobs/<id>``; what each kind leaves there:

=========  =========================================================================================
train      ``runs/run-DATE/``: the run. When an earlier attempt left it with a checkpoint, this
           attempt resumes it (``train(resume=...)``), and the metric points that attempt recorded
           after the checkpoint are dropped first — so a recovered job ends with the same steps as
           an uninterrupted one, each recorded once
tune       ``study/``: the study folder, its trial runs in ``study/trials/``; a later attempt resumes
           the study; the best trial's run is the job's run
compress   ``runs/``: a copy of the source job's run and, beside it, the compressed run
export     ``runs/run/``: a copy of the source job's run with the export in ``export/<format>/``
=========  =========================================================================================

A job that starts from another job's run finds it through `source_run`. Every database write
names the attempt's claim token: an attempt whose job was reclaimed by another worker stops.
"""

from __future__ import annotations

import math
import shutil
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import yaml
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from modelworks.errors import UserError
from modelworks.jobs.configs import DATASET_REF, RUN_KINDS
from modelworks.platform.db import make_engine, session_factory
from modelworks.platform.db.models import Job, JobMetric, Project
from modelworks.platform.settings import Settings
from modelworks.training.callbacks import Callback, TrainState

if TYPE_CHECKING:
    from modelworks.tuning import TuneResult

FLUSH_EVERY_S = 1.0
RUN_NAME = "run"
COUNTED_TRIALS = ("COMPLETE", "PRUNED")  # the trials that count towards tune.trials


class LeaseLost(Exception):
    """This attempt no longer owns its job (cancelled or reclaimed elsewhere)."""


def job_key(project_id: int, job_id: int) -> str:
    """A job's files in the artifact store; under its project's prefix, so they go with it."""
    return f"{project_id}/jobs/{job_id}"


def job_folder(settings: Settings, project_id: int, job_id: int) -> Path:
    """Where a job works on this machine: its key inside ``settings.work_dir`` (the artifact
    folder itself when that is local, so publishing its run there copies nothing)."""
    return settings.work_dir / job_key(project_id, job_id)


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
    from modelworks.platform.datasets import DataStore, engine_source

    ref = DATASET_REF.match(source)
    if ref is None:
        return source
    with attempt.sessions() as session:
        return engine_source(session, project, ref["name"], int(ref["version"]), folder / "data", store=DataStore.from_settings(attempt.settings))


def run_evaluate(attempt: Attempt, job: Job, project: Project, folder: Path) -> dict[str, Any]:
    from modelworks.api import load_run

    run_dir, data = source_run(attempt, project, job.config["job"], folder)
    clear_metrics(attempt)
    metrics = _numbers(load_run(run_dir, device="cpu", source=data).evaluate(split=job.config["split"]))
    attempt.add_metrics([JobMetric(job_id=job.id, step=None, epoch=None, name=k, value=v) for k, v in metrics.items()])
    return {"run": str(run_dir), "split": job.config["split"], "metrics": metrics}


def run_tune(attempt: Attempt, job: Job, project: Project, folder: Path) -> dict[str, Any]:
    """Search in ``study/`` of the job's folder, one trial per `tune` session so that each finished
    trial is streamed as it ends (name: the tuned metric, step: the trial's number, epoch: the
    epochs it trained; pruned trials have no final value and are not streamed). A later attempt
    resumes the study: trials already counted are not run again."""
    from modelworks.api import tune
    from modelworks.config.load import validate
    from modelworks.tuning import finish

    study = folder / "study"
    config = dict(job.config)
    config["data"] = dict(config["data"], source=resolve_source(attempt, project, config["data"]["source"], folder))
    config["train"] = dict(config.get("train") or {}, progress=False)
    budget = validate(config, "config").tune
    clear_metrics(attempt)  # every finished trial is streamed again below, earlier attempts' included
    streamed: set[int] = set()
    counted = _counted_trials(study)
    if counted:
        print(f"resuming the study in {study.name}/: {counted} of {budget.trials} trials done", flush=True)
    deadline = time.monotonic() + budget.timeout_s if budget.timeout_s else None
    result = None
    for _ in range(max(budget.trials - counted, 0)):  # as many trials as `tune` would start for the rest
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            print(f"tune.timeout_s of {budget.timeout_s:g} s reached: no new trial starts", flush=True)
            break
        result = tune(config, trials=counted + 1, parallel=1, timeout=left, study=study)
        counted = _stream_trials(attempt, result, streamed)
        if counted >= budget.trials:
            break
    if result is None:  # the study had every trial already: only its results are written again
        result = finish(study)
        counted = _stream_trials(attempt, result, streamed)
    if result.best_run is None:
        raise UserError(f"no trial of the search completed ({counted} finished); there is no best run to record")
    failed = int((result.trials["state"] == "FAIL").sum())
    return {"run": str(result.best_run), "study": str(result.study_dir), "metric": result.metric, "direction": result.direction,
            "best_value": result.best_value, "best_params": _finite(result.best_params), "best_trial": result.best_trial,
            "trials": counted, "failed_trials": failed, "metrics": _numbers({result.metric: result.best_value})}


def _counted_trials(study: Path) -> int:
    """Trials of the study that count towards ``tune.trials`` (complete or pruned), from the
    trials.csv of its last session; 0 for a new study."""
    import pandas as pd

    table = study / "trials.csv"
    if not table.exists():
        return 0
    return int(pd.read_csv(table)["state"].isin(COUNTED_TRIALS).sum())


def _stream_trials(attempt: Attempt, result: "TuneResult", streamed: set[int]) -> int:
    """Stream the completed trials of ``result`` not yet in ``streamed``;
    returns the number of trials that count towards ``tune.trials``."""
    points = []
    for row in result.trials.to_dict("records"):
        value, epochs = row[result.metric], row["epochs"]
        if row["state"] != "COMPLETE" or row["number"] in streamed or not _is_number(value):
            continue
        streamed.add(row["number"])
        points.append(JobMetric(job_id=attempt.job_id, step=int(row["number"]), epoch=int(epochs) if _is_number(epochs) else None,
                                name=result.metric, value=float(value)))
        print(f"trial {row['number']}: {result.metric} {value:.4g}", flush=True)
    attempt.add_metrics(points)
    return int(result.trials["state"].isin(COUNTED_TRIALS).sum())


def run_compress(attempt: Attempt, job: Job, project: Project, folder: Path) -> dict[str, Any]:
    """Compress a copy of the source job's run; the new run is written beside the copy, in ``runs/``
    of this job's folder, and its comparison with the parent (compression.json) goes in the result."""
    from modelworks.api import compress
    from modelworks.compression import COMPRESSION_JSON
    from modelworks.store import run as store

    parent = copy_source_run(attempt, project, job.config["job"], folder)
    clear_metrics(attempt)
    print(f"compressing the run of job {job.config['job']} ({parent.name}) with {job.config['method']}", flush=True)
    child = compress(parent, job.config["method"], **job.config["options"])
    record = store.read_json(child.path / COMPRESSION_JSON)
    metrics = _numbers(record["compressed"]["metrics"])
    attempt.add_metrics([JobMetric(job_id=job.id, step=None, epoch=None, name=k, value=v) for k, v in metrics.items()])
    comparison = {key: record[key] for key in ("measured_on", "parent_stats", "compressed", "change")}
    return {"run": str(child.path), "method": record["method"], "options": _finite(record["options"]),
            "comparison": _finite(comparison), "metrics": metrics}


def run_export(attempt: Attempt, job: Job, project: Project, folder: Path) -> dict[str, Any]:
    """Export a copy of the source job's run, into that copy (``RUN/export/<format>/``): the run
    this job records holds the weights, config and preprocessing beside the exported model."""
    from modelworks.api import export

    run_dir = copy_source_run(attempt, project, job.config["job"], folder, RUN_NAME)
    clear_metrics(attempt)
    print(f"exporting the run of job {job.config['job']} to {job.config['format']}", flush=True)
    exported = export(run_dir, job.config["format"], opset=job.config.get("opset"), quantize=job.config.get("quantize"))
    check = exported.record["check"]
    metrics = _numbers({"max_abs_diff": check.get("max_abs_diff")})
    attempt.add_metrics([JobMetric(job_id=job.id, step=None, epoch=None, name=k, value=v) for k, v in metrics.items()])
    return {"run": str(run_dir), "format": job.config["format"], "file": exported.file.relative_to(run_dir).as_posix(),
            "check": _finite(check), "passed": bool(check.get("passed")), "max_abs_diff": check.get("max_abs_diff"), "metrics": metrics}


# ---------------------------------------------------------------------------------- helpers


def source_run(attempt: Attempt, project: Project, job_id: int, folder: Path) -> tuple[Path, str]:
    """The run that job ``job_id`` recorded, ready on this machine: a local folder holding it (its
    own folder when the artifact store is this disk, else a copy fetched from the store and checked
    file by file) and the data source to read its splits from. The run's config names the data
    file the training job decrypted into its own folder, which need not exist here, so the
    dataset of its lineage is made available again in ``folder``. Every job that starts from
    another job's run (evaluate, compress, export) goes through here."""
    from modelworks.platform.runs import fetch_run, job_run
    from modelworks.platform.storage import Storage

    with attempt.sessions() as session:
        run = job_run(session, job_id)
        if run is None:
            raise UserError(f"job {job_id} has no recorded run")
        lineage_source = run.lineage.get("source")
    run_dir = fetch_run(Storage(attempt.settings.artifacts), run, folder / "sources" / str(job_id))
    data = resolve_source(attempt, project, lineage_source, folder) if lineage_source else None
    return run_dir, data or (run.config.get("data") or {}).get("source", "")


def copy_source_run(attempt: Attempt, project: Project, job_id: int, folder: Path, name: str | None = None) -> Path:
    """A fresh copy of job ``job_id``'s run as ``folder/runs/<name>`` (default: the run's own name),
    its config pointing at the data as made available here; what an earlier attempt left in
    ``runs/`` is removed first, so each attempt starts over."""
    from modelworks.config.load import read_yaml
    from modelworks.store import run as store
    from modelworks.store.atomic import atomic_write_text

    source, data = source_run(attempt, project, job_id, folder)
    runs = folder / "runs"
    if runs.exists():
        shutil.rmtree(runs)
    runs.mkdir(parents=True)
    copy = Path(shutil.copytree(source, runs / (name or source.name)))
    config = read_yaml(copy / store.CONFIG)
    config["data"] = dict(config["data"], source=data)
    atomic_write_text(copy / store.CONFIG, yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    return copy


def clear_metrics(attempt: Attempt) -> None:
    """Drop the metric points an earlier attempt recorded: this one records them all again."""
    with attempt.sessions() as session:
        session.execute(delete(JobMetric).where(JobMetric.job_id == attempt.job_id))
        attempt.update(session)  # the fence: commits the delete only while the claim holds


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _numbers(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if _is_number(v)}


def _finite(value: Any) -> Any:
    """``value`` ready for a JSON column: NaN and infinities become None (PostgreSQL refuses them)."""
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


RUNNERS: dict[str, Callable[[Attempt, Job, Project, Path], dict[str, Any]]] = {
    "train": run_train, "tune": run_tune, "evaluate": run_evaluate, "compress": run_compress, "export": run_export,
}


def publish(session: Session, settings: Settings, job: Job, run_dir: Path, folder: Path) -> Any:
    """Put the job's run in the artifact store and add its row (uncommitted): the key mirrors
    where it lies in the job's folder. An attempt that finds its job's run already recorded (it
    died between the commit and its exit) keeps that one."""
    from modelworks.platform.runs import job_run, publish_run, record_run
    from modelworks.platform.storage import Storage

    existing = job_run(session, job.id)
    if existing is not None:
        return existing
    key = f"{job_key(job.project_id, job.id)}/{run_dir.resolve().relative_to(folder.resolve()).as_posix()}"
    artifacts = publish_run(Storage(settings.artifacts), run_dir, key)
    return record_run(session, job.project_id, run_dir, key, artifacts, job=job)


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
        folder = job_folder(settings, project.id, job_id)
        folder.mkdir(parents=True, exist_ok=True)
        print(f"job {job_id} ({job.kind}), attempt {job.attempts} of {job.max_attempts}", flush=True)
        result = RUNNERS[job.kind](attempt, job, project, folder)
        with attempt.sessions() as session:
            if job.kind in RUN_KINDS:
                run = publish(session, settings, job, Path(result["run"]), folder)
                print(f"recorded run {run.id} ({len(run.artifacts)} files)", flush=True)
            # The fence commits the run with the result: both, or neither if the claim was lost.
            attempt.update(session, result=result, **({"run_dir": result["run"]} if job.kind in RUN_KINDS else {}))
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
