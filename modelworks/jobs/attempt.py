"""One attempt's link to its job, and what every kind's runner shares.

`Attempt` fences every database write by the attempt's claim token: an attempt whose job was
reclaimed by another worker gets `LeaseLost` and stops. A job that starts from another job's run
finds it through `source_run` (or a fresh copy through `copy_source_run`).
"""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import delete, update
from sqlalchemy.orm import Session, sessionmaker

from modelworks.errors import UserError
from modelworks.job_kinds import DATASET_REF
from modelworks.models.pretrained_config import offer_only
from modelworks.platform.dataset_files import engine_source
from modelworks.platform.datasets import DataStore
from modelworks.platform.db.models import Job, JobMetric, Project
from modelworks.platform.runs import fetch_run, job_run
from modelworks.platform.settings import Settings
from modelworks.platform.storage import Storage
from modelworks.store.files import CONFIG
from modelworks.store.run import write_config

RUN_NAME = "run"
WORKING_DATA = "data"  # in a job's folder: its datasets, decrypted, for one attempt's lifetime


class LeaseLost(Exception):
    """This attempt no longer owns its job (cancelled or reclaimed elsewhere)."""


def job_key(project_id: int, job_id: int) -> str:
    """A job's files in the artifact store; under its project's prefix, so they go with it."""
    return f"{project_id}/jobs/{job_id}"


def job_folder(settings: Settings, project_id: int, job_id: int) -> Path:
    """Where a job works on this machine: its key inside ``settings.work_dir`` (the artifact
    folder itself when that is local, so publishing its run there copies nothing)."""
    return settings.work_dir / job_key(project_id, job_id)


def working_data(folder: Path) -> Path:
    """Where an attempt's datasets lie decrypted: a 0700 folder in the job's folder, the one place
    its data paths may lead (``data.root``), removed by `clear_working_data` when the attempt ends."""
    return folder / WORKING_DATA


def clear_working_data(folder: Path) -> None:
    """Remove an attempt's decrypted working copies: at its end however it ends (the attempt
    itself, or its worker after a kill) and, for leftovers of a killed one, at the next start."""
    shutil.rmtree(working_data(folder), ignore_errors=True)


class Attempt:
    """The attempt's link to its job row: fenced writes by claim token."""

    def __init__(self, settings: Settings, sessions: sessionmaker[Session], job_id: int, token: str) -> None:
        self.settings, self.sessions, self.job_id, self.token = settings, sessions, job_id, token

    def update(self, session: Session, **values: Any) -> None:
        # With nothing to change, rewrite the token itself: the write is the fence either way.
        values = values or {"claim_token": self.token}
        fenced = update(Job).where(Job.id == self.job_id, Job.claim_token == self.token).values(**values)
        if not session.execute(fenced).rowcount:
            session.rollback()
            raise LeaseLost(f"job {self.job_id}: this attempt lost its claim; stopping")
        session.commit()

    def add_metrics(self, points: list[JobMetric]) -> None:
        with self.sessions() as session:
            session.add_all(points)
            self.update(session)  # the fence: commits the points only while the claim holds

    def add_final_metrics(self, metrics: dict[str, float]) -> None:
        """Whole-run values (no step, no epoch)."""
        points = [JobMetric(job_id=self.job_id, step=None, epoch=None, name=k, value=v) for k, v in metrics.items()]
        self.add_metrics(points)

    def clear_metrics(self) -> None:
        """Drop the metric points an earlier attempt recorded: this one records them all again."""
        with self.sessions() as session:
            session.execute(delete(JobMetric).where(JobMetric.job_id == self.job_id))
            self.update(session)  # the fence: commits the delete only while the claim holds


# ----------------------------------------------------------------------------------- data, runs


def resolve_source(attempt: Attempt, project: Project, source: str, folder: Path) -> str:
    """builtin:NAME as is; dataset:NAME@VERSION through the datasets service (a registered
    built-in stays ``builtin:NAME``; an upload is decrypted, checked and written into the job's folder)."""
    ref = DATASET_REF.match(source)
    if ref is None:
        return source
    target = working_data(folder)
    target.mkdir(mode=0o700, parents=True, exist_ok=True)
    target.chmod(0o700)  # whatever made it before, and whatever the umask
    with attempt.sessions() as session:
        store = DataStore.from_settings(attempt.settings)
        return engine_source(session, project, ref["name"], int(ref["version"]), target, store=store)


def platform_experiment(attempt: Attempt, project: Project, config: dict[str, Any], folder: Path) -> dict[str, Any]:
    """A train or tune job's experiment as the engine runs it: its data made available here, every
    data path confined to it (``data.root``), pretrained models to those offered, no progress bars."""
    config = dict(config)
    source = resolve_source(attempt, project, config["data"]["source"], folder)
    config["data"] = dict(config["data"], source=source, root=str(working_data(folder)))
    config["model"] = copy.deepcopy(config["model"])
    offer_only(config["model"], attempt.settings.pretrained)  # a pretrained model: only one the platform offers
    config["train"] = dict(config.get("train") or {}, progress=False)
    return config


def source_run(attempt: Attempt, project: Project, job_id: int, folder: Path) -> tuple[Path, str]:
    """The run that job ``job_id`` recorded, ready on this machine: a local folder holding it (its
    own folder when the artifact store is this disk, else a copy fetched from the store and checked
    file by file) and the data source to read its splits from. The run's config names the data
    file the training job decrypted into its own folder, which need not exist here, so the
    dataset of its lineage is made available again in ``folder``. Every job that starts from
    another job's run (evaluate, compress, export) goes through here."""
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
    source, data = source_run(attempt, project, job_id, folder)
    runs = folder / "runs"
    if runs.exists():
        shutil.rmtree(runs)
    runs.mkdir(parents=True)
    copy = Path(shutil.copytree(source, runs / (name or source.name)))
    config = yaml.safe_load((copy / CONFIG).read_text(encoding="utf-8"))
    config["data"] = dict(config["data"], source=data, root=str(working_data(folder)))
    write_config(copy, config)
    return copy


# --------------------------------------------------------------------------------------- values
