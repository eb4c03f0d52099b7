"""Runs: what a succeeded train job produced, recorded once with a manifest of its files.

`record_run` is called by the worker when a train job succeeds (and is a no-op the second
time). It reads the run folder's resolved config, final metrics and environment, notes the
dataset version the job trained on, and hashes every file of the folder. Reading an artifact
later (`open_artifact`) copies the file to a spool while hashing it and hands out the copy only
if it still matches the manifest: what is sent is exactly what was checked.
"""

from __future__ import annotations

import hashlib
import math
import tempfile
from pathlib import Path
from typing import IO, Any, Iterator

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from modelworks.errors import UserError
from modelworks.platform import audit
from modelworks.platform.archive import check_member_name
from modelworks.platform.db.models import Dataset, DatasetVersion, Job, JobMetric, Project, Run
from modelworks.platform.db.paging import DEFAULT_LIMIT, Page, paginate
from modelworks.platform.errors import NotFound, StoredDataError
from modelworks.store import run as store

CHUNK = 1 << 20
SPOOL_IN_MEMORY = 8 << 20  # artifacts larger than this are spooled to a temporary file


class ArtifactChanged(StoredDataError):
    """A stored file no longer matches the SHA-256 recorded for it (500: the data is not sent)."""


# ------------------------------------------------------------------------------------ hashing


def file_sha256(path: Path) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            sha.update(chunk)
    return sha.hexdigest()


def manifest(folder: Path) -> list[dict[str, Any]]:
    """``[{"path", "size", "sha256"}]`` for every regular file under ``folder``, sorted by path.
    Symbolic links are refused: a run folder that points elsewhere is not recorded."""
    entries = []
    for path in sorted(folder.rglob("*")):
        if path.is_symlink():
            raise UserError(f"the run folder {folder} holds a symbolic link {path.relative_to(folder)}; refusing to record it")
        if path.is_file():
            rel = path.relative_to(folder).as_posix()
            entries.append({"path": rel, "size": path.stat().st_size, "sha256": file_sha256(path)})
    return entries


def verified_copy(chunks: Iterator[bytes], entry: dict[str, Any], what: str) -> IO[bytes]:
    """The bytes of ``chunks`` in a spooled temporary file, rewound, if they match ``entry``'s
    size and SHA-256; else `ArtifactChanged` (and the spool is discarded)."""
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)
    sha, size = hashlib.sha256(), 0
    try:
        for chunk in chunks:
            sha.update(chunk)
            size += len(chunk)
            if size > entry["size"]:
                break
            spool.write(chunk)
        if size != entry["size"] or sha.hexdigest() != entry["sha256"]:
            raise ArtifactChanged(f"artifact changed: {what} no longer matches the SHA-256 recorded for it; refusing to serve it")
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return spool


def _local_chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            yield chunk


# ---------------------------------------------------------------------------------- recording


def _lineage(session: Session, project_id: int, source: str) -> dict[str, Any]:
    from modelworks.jobs.configs import DATASET_REF

    ref = DATASET_REF.match(source)
    if ref is None:
        return {"source": source}
    row = session.scalar(
        select(DatasetVersion).join(Dataset).where(Dataset.project_id == project_id, Dataset.name == ref["name"], DatasetVersion.version == int(ref["version"]))
    )
    return {"source": source, "dataset": ref["name"], "version": int(ref["version"]), "sha256": row.sha256 if row is not None else None}


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = store.read_json(path)
    except (UserError, OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _numbers(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}


def record_run(session: Session, project_id: int, run_dir: Path, *, job: Job | None = None) -> Run:
    """Record the run folder ``run_dir`` (of ``job``, if any) and commit it with its audit entry;
    a job whose run is already recorded returns that run unchanged."""
    if job is not None:
        existing = session.scalar(select(Run).where(Run.job_id == job.id))
        if existing is not None:
            return existing
    run_dir = Path(run_dir)
    if not (run_dir / store.CONFIG).is_file():
        raise UserError(f"{run_dir} is not a run folder: it has no {store.CONFIG}")
    config = yaml.safe_load((run_dir / store.CONFIG).read_text(encoding="utf-8")) or {}
    job_source = ((job.config.get("data") or {}).get("source") if job is not None else None) or (config.get("data") or {}).get("source", "")
    environment = _read_json(run_dir / store.ENVIRONMENT)
    report = _read_json(run_dir / store.REPORT_JSON)
    run = Run(
        project_id=project_id, job_id=job.id if job is not None else None, run_dir=str(run_dir), config=config,
        lineage=_lineage(session, project_id, str(job_source)),
        code_version={"git_commit": environment.get("git_commit"), "modelworks": (environment.get("packages") or {}).get("modelworks")},
        metrics=_numbers(report.get("metrics") or {}), artifacts=manifest(run_dir),
    )
    session.add(run)
    session.flush()
    audit.record(session, None, "run.record", f"run:{run.id}", project_id=project_id,
                 detail={"job": run.job_id, "files": len(run.artifacts)})
    session.commit()
    return run


def record_job_run(session: Session, job_id: int) -> Run | None:
    """Record the run of train job ``job_id`` once it has succeeded; None for other jobs."""
    job = session.get(Job, job_id, populate_existing=True)
    if job is None or job.kind != "train" or job.state != "succeeded":
        return None
    run_dir = (job.result or {}).get("run") or job.run_dir
    if not run_dir:
        raise UserError(f"job {job_id} succeeded without a run folder")
    return record_run(session, job.project_id, Path(run_dir), job=job)


# ------------------------------------------------------------------------------------ reading


def list_runs(session: Session, project: Project, job_id: int | None = None, limit: int = DEFAULT_LIMIT, offset: int = 0) -> Page[Run]:
    """A project's runs, newest first; only ``job_id``'s when given."""
    query = select(Run).where(Run.project_id == project.id).order_by(Run.id.desc())
    if job_id is not None:
        query = query.where(Run.job_id == job_id)
    return paginate(session, query, limit, offset)


def get_run(session: Session, project: Project, run_id: int) -> Run:
    run = session.get(Run, run_id)
    if run is None or run.project_id != project.id:
        raise NotFound(f"no run {run_id} in project {project.name!r}")
    return run


def metric_history(session: Session, run: Run) -> dict[str, list[dict[str, Any]]]:
    """Every metric point its job streamed, by name, in the order they were recorded."""
    history: dict[str, list[dict[str, Any]]] = {}
    if run.job_id is None:
        return history
    for m in session.scalars(select(JobMetric).where(JobMetric.job_id == run.job_id).order_by(JobMetric.id)):
        history.setdefault(m.name, []).append({"step": m.step, "epoch": m.epoch, "value": m.value})
    return history


def find_entry(artifacts: list[dict[str, Any]], path: str, owner: str) -> dict[str, Any]:
    """The manifest entry for ``path`` (checked first: no '..', absolute or encoded paths)."""
    check_member_name(path, "artifact path")
    entry = next((e for e in artifacts if e["path"] == path), None)
    if entry is None:
        raise NotFound(f"{owner} has no artifact {path!r}")
    return entry


def open_artifact(run: Run, path: str) -> tuple[dict[str, Any], IO[bytes]]:
    """A run's file, checked against its manifest entry, as (entry, rewound spool)."""
    entry = find_entry(run.artifacts, path, f"run {run.id}")
    folder = Path(run.run_dir).resolve()
    target = (folder / entry["path"]).resolve()
    if not target.is_relative_to(folder) or not target.is_file():
        raise ArtifactChanged(f"artifact changed: {path!r} of run {run.id} is missing or no longer a plain file in the run folder")
    return entry, verified_copy(_local_chunks(target), entry, f"{path!r} of run {run.id}")
