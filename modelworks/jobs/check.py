"""A job's config, checked before the job is queued: the engine-side checks of its kind through
the facade (`modelworks.api.check_job_config`, the same the CLI's ``--remote`` can make), and the
platform-side ones here, which need the database: the job a config starts from exists in the
project, succeeded, and is of a kind it may start from; the device its lineage trained on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy.orm import Session

from modelworks.api import CheckedJob, SourceJob, check_job_config
from modelworks.errors import UserError
from modelworks.platform.db.models import Job, Project
from modelworks.platform.errors import Unprocessable


def check_job(
    session: Session, project: Project, kind: str, config: dict[str, Any], *, pretrained: Sequence[str] = ()
) -> CheckedJob:
    """The checked config to store and the GPUs the job needs; `Unprocessable` (422) naming the key otherwise.
    `pretrained`: the only pretrained models the job may name (the ``pretrained`` setting)."""

    def find_source(job_id: int, kinds: tuple[str, ...]) -> SourceJob:
        source = _source_job(session, project, job_id, kinds)
        device = _trained_on(session, source)
        return SourceJob(id=source.id, kind=source.kind, config=dict(source.config), device=device)

    try:
        checked = check_job_config(kind, config, find_source=find_source, pretrained=pretrained)
        if kind == "continue":
            checked = _continued(session, project, checked)
        return checked
    except Unprocessable:
        raise
    except UserError as e:
        raise Unprocessable(str(e)) from e


def _continued(session: Session, project: Project, checked: CheckedJob) -> CheckedJob:
    """A continue job's model version and dataset version exist in the project (else a 422 naming
    the key); it asks for a GPU when the parent trained on one (or its ``train.device`` says cuda)."""
    from modelworks.job_kinds import DATASET_REF, MODEL_REF
    from modelworks.platform.continual import resolve_model
    from modelworks.platform.datasets import get_version
    from modelworks.platform.db.models import Run

    config = checked.config
    model, data = MODEL_REF.match(config["model"]), DATASET_REF.match(config["data"])
    try:
        version = resolve_model(session, project, model["name"], model["ref"])
    except UserError as e:
        raise Unprocessable(f"config: model: {e}") from e
    try:
        get_version(session, project, data["name"], int(data["version"]))
    except UserError as e:
        raise Unprocessable(f"config: data: {e}") from e
    run = session.get(Run, version.run_id) if version.run_id is not None else None
    device = config["train"].get("device") or ((run.config.get("train") or {}).get("device") if run else None)
    return replace(checked, gpus=1 if str(device or "cpu").startswith("cuda") else 0)


def _source_job(session: Session, project: Project, job_id: int, kinds: tuple[str, ...]) -> Job:
    """The succeeded job ``job_id`` of ``project``, of one of ``kinds``, that a job starts from."""
    source = session.get(Job, job_id)
    if source is None or source.project_id != project.id or source.kind not in kinds:
        named = f"{', '.join(kinds[:-1])} or {kinds[-1]}" if len(kinds) > 1 else kinds[0]
        raise Unprocessable(f"config: job: no {named} job {job_id} in project {project.name!r}")
    if source.state != "succeeded":
        raise Unprocessable(f"config: job: {source.kind} job {job_id} is {source.state}, not succeeded")
    return source


def _trained_on(session: Session, source: Job) -> str:
    """The ``train.device`` of the train or tune job at the root of ``source``'s compress chain."""
    seen: set[int] = set()
    while source is not None and source.kind == "compress" and source.id not in seen:
        seen.add(source.id)
        source = session.get(Job, source.config["job"])
    if source is None or source.kind not in ("train", "tune"):
        return "cpu"
    return str((source.config.get("train") or {}).get("device", "auto"))
