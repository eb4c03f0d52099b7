"""Runs: what a succeeded job produced, kept in the artifact store with a manifest of its files.

A job's own process, where the run folder was made, ends with `publish_run` (hash every file and
put it in the artifact store, under ``<project>/jobs/<job>/...``; nothing to copy when the store is
this disk) and `record_run` (the run row: resolved config, final metrics, environment, lineage
to the dataset version or parent run, and the manifest), committed with the job's result. So
the run is readable from any machine that reaches the store, whichever node trained it.

Reading an artifact later (`open_artifact`) copies the object to a spool while hashing it and
hands out the copy only if it still matches the manifest: what is sent is exactly what was
checked. `fetch_run` gives a job a local folder of a recorded run (evaluate, compress, export).
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, TypeVar

import yaml
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, load_only

from modelworks.errors import UserError
from modelworks.platform import audit
from modelworks.platform.archive import check_member_name
from modelworks.platform.db.models import Dataset, DatasetVersion, Job, JobMetric, Project, Run
from modelworks.platform.db.paging import DEFAULT_LIMIT, Page, paginate
from modelworks.platform.errors import NotFound, StoredDataError
from modelworks.platform.storage import Storage
from modelworks.store import run as store
from modelworks.store.digest import file_sha256
from modelworks.store.environment import read_environment
from modelworks.store.jsonfile import numbers
from modelworks.store.report import read_report

CHUNK = 1 << 20
SPOOL_IN_MEMORY = 8 << 20  # artifacts larger than this are spooled to a temporary file


class ArtifactChanged(StoredDataError):
    """A stored file no longer matches the SHA-256 recorded for it (500: the data is not sent)."""


# ------------------------------------------------------------------------------------ hashing


def manifest(folder: Path) -> list[dict[str, Any]]:
    """``[{"path", "size", "sha256"}]`` for every regular file under ``folder``, sorted by path.
    Symbolic links are refused: a run folder that points elsewhere is not recorded."""
    entries = []
    for path in sorted(folder.rglob("*")):
        if path.is_symlink():
            raise UserError(
                f"the run folder {folder} holds a symbolic link {path.relative_to(folder)}; refusing to record it"
            )
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
            raise ArtifactChanged(
                f"artifact changed: {what} no longer matches the SHA-256 recorded for it; refusing to serve it"
            )
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return spool


def read_verified(storage: Storage, key: str, entry: dict[str, Any], what: str) -> IO[bytes]:
    """The object ``key`` as a rewound spool, if it still matches its manifest ``entry``."""
    if not storage.exists(key):
        raise ArtifactChanged(f"artifact changed: {what} is missing from the artifact store")

    def chunks() -> Iterator[bytes]:
        with storage.open(key) as f:
            while chunk := f.read(CHUNK):
                yield chunk

    return verified_copy(chunks(), entry, what)


def run_location(storage: Storage, run: Run) -> tuple[Storage, str]:
    """Where a run's files are: the artifact store and the run's key prefix there (a run
    recorded before revision 0005: its folder on this disk, with an empty prefix)."""
    if run.storage_prefix is not None:
        return storage, run.storage_prefix
    return Storage(run.run_dir), ""


def _join(prefix: str, path: str) -> str:
    return f"{prefix}/{path}" if prefix else path


def publish_run(storage: Storage, run_dir: Path, key: str) -> list[dict[str, Any]]:
    """Hash every file of the local folder ``run_dir`` and put them under ``key`` in the
    artifact store (nothing to copy when that is where they already are); returns the manifest.
    Called where the run was made — a job's own process — so it works on any node of a cluster."""
    entries = manifest(run_dir)
    here = storage.local_path(key)
    if here is not None and here.resolve() == Path(run_dir).resolve():
        return entries
    storage.remove(key)  # leftovers of an upload that failed half-way
    for entry in entries:
        storage.upload(Path(run_dir) / entry["path"], f"{key}/{entry['path']}")
    return entries


def fetch_run(storage: Storage, run: Run, dest: Path) -> Path:
    """A local folder holding the run's files, ready for `modelworks.api.load_run`: the run's own
    folder when the store is this disk, else ``dest``, filled with files checked against the
    manifest."""
    store, prefix = run_location(storage, run)
    here = store.local_path(prefix) if prefix else Path(run.run_dir)
    if here is not None and here.is_dir():
        return here
    dest.mkdir(parents=True, exist_ok=True)
    for entry in run.artifacts:
        target = dest / entry["path"]
        if target.is_file() and target.stat().st_size == entry["size"] and file_sha256(target) == entry["sha256"]:
            continue  # fetched by an earlier attempt
        target.parent.mkdir(parents=True, exist_ok=True)
        with read_verified(store, _join(prefix, entry["path"]), entry, f"{entry['path']!r} of run {run.id}") as spool:
            with open(target, "wb") as out:
                shutil.copyfileobj(spool, out, CHUNK)
    return dest


# ---------------------------------------------------------------------------------- recording


def _lineage(session: Session, project_id: int, source: str) -> dict[str, Any]:
    from modelworks.job_kinds import DATASET_REF

    ref = DATASET_REF.match(source)
    if ref is None:
        return {"source": source}
    row = session.scalar(
        select(DatasetVersion)
        .join(Dataset)
        .where(
            Dataset.project_id == project_id, Dataset.name == ref["name"], DatasetVersion.version == int(ref["version"])
        )
    )
    return {
        "source": source,
        "dataset": ref["name"],
        "version": int(ref["version"]),
        "sha256": row.sha256 if row is not None else None,
    }


T = TypeVar("T")


def _optional(read: Callable[[Path], T], run_dir: Path) -> T | None:
    """A run file read through its typed model, or None where the run has none (or a damaged one:
    a run is recorded all the same, without the facts that file would give)."""
    try:
        return read(run_dir)
    except UserError:
        return None


def record_run(
    session: Session,
    project_id: int,
    run_dir: Path,
    key: str,
    artifacts: list[dict[str, Any]],
    *,
    job: Job | None = None,
    source: str | None = None,
    parent: dict[str, Any] | None = None,
) -> Run:
    """Add the row of the run folder ``run_dir`` (made by ``job``, if any), published under
    ``key`` with manifest ``artifacts`` (see `publish_run`), and its audit entry; the caller
    commits. The run of a compress or export job inherits its parent run's data lineage and
    names it (``parent_job``, ``parent_run``). ``source`` names the data the run was trained on
    when the job's config does not (a continue job), ``parent`` adds lineage facts (its parent version)."""
    run_dir = Path(run_dir)
    if not (run_dir / store.CONFIG).is_file():
        raise UserError(f"{run_dir} is not a run folder: it has no {store.CONFIG}")
    config = yaml.safe_load((run_dir / store.CONFIG).read_text(encoding="utf-8")) or {}
    environment = _optional(read_environment, run_dir)
    report = _optional(read_report, run_dir)
    parent_job = job.config.get("job") if job is not None and job.kind in ("compress", "export") else None
    if parent_job is not None:
        parent = session.scalar(select(Run).where(Run.job_id == parent_job))
        lineage = {
            **(parent.lineage if parent is not None else {}),
            "parent_job": parent_job,
            "parent_run": parent.id if parent is not None else None,
        }
    else:
        job_data = job.config.get("data") if job is not None else None
        job_source = source or (job_data.get("source") if isinstance(job_data, dict) else None)
        job_source = job_source or (config.get("data") or {}).get("source", "")
        lineage = {**_lineage(session, project_id, str(job_source)), **(parent or {})}
    run = Run(
        project_id=project_id,
        job_id=job.id if job is not None else None,
        run_dir=str(run_dir),
        storage_prefix=key,
        config=config,
        lineage=lineage,
        code_version={
            "git_commit": environment.git_commit if environment else None,
            "modelworks": environment.packages.get("modelworks") if environment else None,
        },
        metrics=numbers(report.metrics if report else {}),
        artifacts=artifacts,
    )
    session.add(run)
    session.flush()
    audit.record(
        session,
        None,
        "run.record",
        f"run:{run.id}",
        project_id=project_id,
        detail={"job": run.job_id, "files": len(run.artifacts)},
    )
    return run


def job_run(session: Session, job_id: int) -> Run | None:
    """The run recorded by job ``job_id``, if any."""
    return session.scalar(select(Run).where(Run.job_id == job_id))


# ------------------------------------------------------------------------------------ reading


def list_runs(
    session: Session, project: Project, job_id: int | None = None, limit: int = DEFAULT_LIMIT, offset: int = 0
) -> Page[Run]:
    """A project's runs, newest first; only ``job_id``'s when given."""
    # Only what a listing shows: configs and manifests are the bulk of a run row.
    query = select(Run).options(
        load_only(Run.id, Run.job_id, Run.lineage, Run.code_version, Run.metrics, Run.created_at)
    )
    query = query.where(Run.project_id == project.id).order_by(Run.id.desc())
    if job_id is not None:
        query = query.where(Run.job_id == job_id)
    return paginate(session, query, limit, offset)


def get_run(session: Session, project: Project, run_id: int) -> Run:
    run = session.get(Run, run_id)
    if run is None or run.project_id != project.id:
        raise NotFound(f"no run {run_id} in project {project.name!r}")
    return run


HISTORY_POINTS = 500  # per metric in a run's detail; the whole series is paged at /jobs/{id}/metrics


def metric_history(
    session: Session, run: Run, points: int = HISTORY_POINTS
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, int]]:
    """A run's metrics over time, by name, in the order its job streamed them, thinned in the
    database to at most about ``points`` per name (every k-th point, and always the last), and
    how many points each name has in all. A 10,000-step history costs one indexed scan, not
    10,000 rows sent to a browser."""
    if run.job_id is None:
        return {}, {}
    ranked = (
        select(
            JobMetric.id,
            JobMetric.name,
            JobMetric.step,
            JobMetric.epoch,
            JobMetric.value,
            func.row_number().over(partition_by=JobMetric.name, order_by=JobMetric.id).label("rank"),
            func.count().over(partition_by=JobMetric.name).label("total"),
        )
        .where(JobMetric.job_id == run.job_id)
        .subquery()
    )
    stride = (ranked.c.total + (points - 1)) // points  # ceil(total / points); `//`: integer division in SQL too
    rows = session.execute(
        select(ranked.c.name, ranked.c.step, ranked.c.epoch, ranked.c.value, ranked.c.total)
        .where(or_((ranked.c.rank - 1) % stride == 0, ranked.c.rank == ranked.c.total))
        .order_by(ranked.c.name, ranked.c.id)
    )
    history: dict[str, list[dict[str, Any]]] = {}
    totals: dict[str, int] = {}
    for name, step, epoch, value, total in rows:
        history.setdefault(name, []).append({"step": step, "epoch": epoch, "value": value})
        totals[name] = total
    return history, totals


def find_entry(artifacts: list[dict[str, Any]], path: str, owner: str) -> dict[str, Any]:
    """The manifest entry for ``path`` (checked first: no '..', absolute or encoded paths)."""
    check_member_name(path, "artifact path")
    entry = next((e for e in artifacts if e["path"] == path), None)
    if entry is None:
        raise NotFound(f"{owner} has no artifact {path!r}")
    return entry


def open_artifact(storage: Storage, run: Run, path: str) -> tuple[dict[str, Any], IO[bytes]]:
    """A run's file, checked against its manifest entry, as (entry, rewound spool)."""
    entry = find_entry(run.artifacts, path, f"run {run.id}")
    store, prefix = run_location(storage, run)
    return entry, read_verified(store, _join(prefix, entry["path"]), entry, f"{path!r} of run {run.id}")
