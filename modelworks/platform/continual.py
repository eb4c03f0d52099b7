"""Continual learning on the platform: policies on registered models, and the windows they saw.

A policy says "when ``min_rows`` new labelled rows have arrived in dataset D (``trigger: rows``),
or on every new version while testing it for drift (``drift``: train only when the detector flags
one), or at most every ``interval_s`` seconds (``interval``), continue the version ``alias`` points
at on the newest version of D, gate the candidate and move the alias if it passes". `due` says which
policies have a window ready; the job layer (`modelworks.jobs.policies`) queues their continue jobs
from the worker's loop, and each continue job writes its window (`record_window`): the prequential
metric, the drift verdict, the candidate and the gate's decision with all its numbers, audited.

Datasets are read as they are versioned today: ``versioning: cumulative`` (each version holds every
row so far, new rows appended: the new window starts at the previous version's row count) or
``increments`` (each version holds only new rows).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from modelworks.evaluate.gate_config import GateConfig
from modelworks.platform import audit
from modelworks.platform.access import ProjectAccess
from modelworks.platform.datasets import get_dataset
from modelworks.platform.db.continual import TRIGGERS, VERSIONING, ContinualPolicy, ContinualWindow
from modelworks.platform.db.lookup import find_named
from modelworks.platform.db.models import DatasetVersion, Job, ModelVersion, Project, utcnow
from modelworks.platform.db.paging import DEFAULT_LIMIT, Page, paginate
from modelworks.platform.errors import Conflict, NotFound, Unprocessable
from modelworks.platform.names import check_name
from modelworks.platform.registry import get_alias, get_model, get_version

FINISHED = ("succeeded", "failed", "cancelled")
DAY_S = 86_400  # an interval policy's default: once a day


# ------------------------------------------------------------------------------- model versions


def resolve_model(session: Session, project: Project, name: str, ref: str) -> ModelVersion:
    """The version ``MODEL@ref`` names: a version number, or the version an alias points at."""
    if ref.isdigit():
        return get_version(session, project, name, int(ref))
    return get_alias(session, project, name, ref).version


# ------------------------------------------------------------------------------------- policies


def create_policy(
    session: Session, access: ProjectAccess, name: str, *, model: str, alias: str, dataset: str, trigger: str,
    min_rows: int = 1, interval_s: int | None = None, versioning: str = "cumulative", detector: str = "adwin",
    gate: dict[str, Any] | None = None, train: dict[str, Any] | None = None,
) -> ContinualPolicy:  # fmt: skip
    """A policy on model ``model``'s ``alias`` (which must exist) watching dataset ``dataset`` of the
    same project; only versions of the dataset made after now count as new."""
    check_name("policy", name)
    if trigger not in TRIGGERS or versioning not in VERSIONING:
        raise Unprocessable(f"trigger must be one of {TRIGGERS} and versioning one of {VERSIONING}")
    if trigger == "interval" and not interval_s:
        interval_s = DAY_S  # "every day"
    GateConfig.model_validate(gate or {})
    project = access.project
    registered = get_model(session, project, model)[0]
    get_alias(session, project, model, alias)  # a policy continues what an alias points at
    data, versions = get_dataset(session, project, dataset)
    latest = versions[-1] if versions else None
    if session.scalar(select(ContinualPolicy.id).where(ContinualPolicy.project_id == project.id,
                                                       ContinualPolicy.name == name)) is not None:  # fmt: skip
        raise Conflict(f"project {project.name!r} already has a policy named {name!r}")
    row = ContinualPolicy(
        project_id=project.id, name=name, model_id=registered.id, alias=alias, dataset_id=data.id, trigger=trigger,
        min_rows=min_rows, interval_s=interval_s, versioning=versioning, detector=detector, gate=gate or {},
        train=train or {}, last_version=latest.version if latest else 0, last_rows=latest.rows if latest else 0,
        errors=[], created_by_id=access.user.id,
    )  # fmt: skip
    session.add(row)
    session.flush()
    audit.record(session, access.user, "policy.create", f"policy:{name}", project_id=project.id,
                 detail={"model": model, "alias": alias, "dataset": dataset, "trigger": trigger})  # fmt: skip
    session.commit()
    return row


def get_policy(session: Session, project: Project, name: str) -> ContinualPolicy:
    return find_named(session, ContinualPolicy, "policy", project, name)


def list_policies(
    session: Session, project: Project, limit: int = DEFAULT_LIMIT, offset: int = 0
) -> Page[ContinualPolicy]:
    query = select(ContinualPolicy).where(ContinualPolicy.project_id == project.id).order_by(ContinualPolicy.name)
    return paginate(session, query, limit, offset)


def set_enabled(session: Session, access: ProjectAccess, name: str, enabled: bool) -> ContinualPolicy:
    row = get_policy(session, access.project, name)
    row.enabled = enabled
    audit.record(session, access.user, "policy.enable" if enabled else "policy.disable", f"policy:{name}",
                 project_id=access.project.id)  # fmt: skip
    session.commit()
    return row


def delete_policy(session: Session, access: ProjectAccess, name: str) -> None:
    """Remove a policy and its history (the versions it registered stay)."""
    row = get_policy(session, access.project, name)
    session.delete(row)
    audit.record(session, access.user, "policy.delete", f"policy:{name}", project_id=access.project.id)
    session.commit()


def list_windows(
    session: Session, project: Project, policy: str | None = None, limit: int = DEFAULT_LIMIT, offset: int = 0
) -> Page[ContinualWindow]:
    """A project's windows (one policy's when named), newest first."""
    query = select(ContinualWindow).where(ContinualWindow.project_id == project.id)
    if policy is not None:
        query = query.where(ContinualWindow.policy_id == get_policy(session, project, policy).id)
    return paginate(session, query.order_by(ContinualWindow.id.desc()), limit, offset)


# ---------------------------------------------------------------------------------- scheduling


@dataclass(frozen=True)
class Window:
    """A policy's next window: the dataset version to continue on, where its new rows start, how many."""

    policy_id: int
    version: int
    rows: int
    window_start: int
    new_rows: int


def due(session: Session, now: datetime) -> list[Window]:
    """The enabled policies without a job in flight whose trigger fires on the versions that arrived."""
    windows = []
    for policy in session.scalars(select(ContinualPolicy).where(ContinualPolicy.enabled.is_(True),
                                                                ContinualPolicy.pending_job_id.is_(None))):  # fmt: skip
        versions = list(session.scalars(
            select(DatasetVersion).where(DatasetVersion.dataset_id == policy.dataset_id,
                                         DatasetVersion.version > policy.last_version)
            .order_by(DatasetVersion.version)
        ))  # fmt: skip
        if not versions:
            continue
        latest = versions[-1]
        if policy.versioning == "cumulative":
            start, new_rows = policy.last_rows, latest.rows - policy.last_rows
        else:
            start, new_rows = 0, sum(v.rows for v in versions)
        if new_rows <= 0:
            continue
        elapsed = (now - policy.last_run_at).total_seconds() if policy.last_run_at else None
        fires = {
            "rows": new_rows >= policy.min_rows,
            "drift": True,  # every new window is tested; the job trains only on drift
            "interval": elapsed is None or elapsed >= (policy.interval_s or 0),
        }[policy.trigger]
        if fires:
            windows.append(Window(policy.id, latest.version, latest.rows, start, new_rows))
    return windows


def claim(session: Session, window: Window, now: datetime) -> bool:
    """Take ``window`` for one worker: a conditional update (of two workers, one wins); committed."""
    taken = session.execute(
        update(ContinualPolicy)
        .where(
            ContinualPolicy.id == window.policy_id,
            ContinualPolicy.pending_job_id.is_(None),
            ContinualPolicy.last_version < window.version,
        )  # fmt: skip
        .values(last_version=window.version, last_rows=window.rows, last_run_at=now)
    ).rowcount
    session.commit()
    return bool(taken)


def job_config(policy: ContinualPolicy, window: Window) -> dict[str, Any]:
    """The continue job a policy's window runs."""
    return {
        "model": f"{policy.model.name}@{policy.alias}",
        "data": f"dataset:{policy.dataset.name}@{window.version}",
        "alias": policy.alias,
        "gate": policy.gate,
        "train": policy.train,
        "window_start": window.window_start,
        "train_on": "drift" if policy.trigger == "drift" else "always",
        "detector": policy.detector,
        "policy": policy.id,
    }


def settle(session: Session) -> None:
    """Clear the job in flight of policies whose job ended; one that ended without writing its window
    (failed, cancelled) leaves a ``failed`` window saying why."""
    for policy in session.scalars(select(ContinualPolicy).where(ContinualPolicy.pending_job_id.is_not(None))):
        job = session.get(Job, policy.pending_job_id)
        if job is not None and job.state not in FINISHED:
            continue
        written = job is None or session.scalar(select(ContinualWindow.id).where(ContinualWindow.job_id == job.id))
        if not written:
            session.add(ContinualWindow(
                project_id=policy.project_id, policy_id=policy.id, job_id=job.id, model=policy.model.name,
                alias=policy.alias, dataset=str(job.config.get("data", "")), rows=0, drift=False, drift_rows=[],
                window_start=int(job.config.get("window_start", 0)), outcome="failed",
                error=(job.error or job.state)[:1000],
            ))  # fmt: skip
        policy.pending_job_id = None
    session.commit()


# ------------------------------------------------------------------------------------- windows


def record_window(session: Session, project_id: int, *, policy_id: int | None, errors: list[float] | None,
                  actor: Any, **fields: Any) -> ContinualWindow:  # fmt: skip
    """Add a continue job's window and its audit entry (the caller commits, fenced by the job's claim);
    a policy's window also keeps the policy's error stream (``errors``) for the next one (a policy
    deleted while its job ran leaves a window of no policy)."""
    policy = session.get(ContinualPolicy, policy_id) if policy_id is not None else None
    if policy is not None and policy.project_id != project_id:
        raise NotFound(f"no policy {policy_id} in this job's project")
    row = ContinualWindow(project_id=project_id, policy_id=policy.id if policy is not None else None, **fields)
    session.add(row)
    if policy is not None and errors is not None:
        policy.errors = errors
    decision = fields.get("decision") or {}
    audit.record(
        session, actor, "model.gate", f"model:{fields['model']}#{fields['alias']}", project_id=project_id,
        detail={"outcome": fields["outcome"], "parent": fields.get("parent_version"),
                "candidate": fields.get("candidate_version"), "dataset": fields["dataset"], "drift": fields["drift"],
                "prequential": fields.get("prequential"),
                "passed": decision.get("passed"), "reasons": decision.get("reasons", []), "policy": policy_id},
    )  # fmt: skip
    return row


def now() -> datetime:
    return utcnow()
