"""Appending rows to a dataset: each append is the next immutable version, holding the previous
version's rows followed by the new ones.

The new rows are checked against the previous version's schema (`modelworks.streams.rows`); the
combined table is written in the previous version's format (JSON Lines, or CSV from a CSV body,
for a dataset's first rows) and stored exactly as an upload is (`datasets.add_version`: the same
description, size limit, encryption at rest and audit), with a `DatasetAppend` that records the
parent, the number of rows and the window's offsets in the same transaction. A consumer that
reads the last window of its source (`last_window`, `holds_offset`) after a crash therefore
knows exactly what is stored.
"""

from __future__ import annotations

import io
import secrets
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from modelworks.config.schema import DataConfig
from modelworks.data.sources import read_source
from modelworks.platform import dataset_files, datasets
from modelworks.platform.access import ProjectAccess
from modelworks.platform.datasets import DataStore
from modelworks.platform.db.models import Dataset, DatasetVersion, Project
from modelworks.platform.db.streams import DatasetAppend
from modelworks.platform.errors import Unprocessable
from modelworks.platform.names import check_name
from modelworks.platform.uploads import UPLOADS
from modelworks.streams.rows import Schema, check_records

APPENDABLE = ("csv", "jsonl", "parquet")  # table formats; an image archive or a built-in is not appended to


@dataclass(frozen=True)
class Window:
    """Where appended rows come from: ``origin`` (http, redis, folder, feedback), the source
    (``source_key``) and the offsets they span there (a stream's entry ids, a file's name)."""

    origin: str
    source_key: str
    first_offset: str | None = None
    last_offset: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


def _dataset(session: Session, project: Project, name: str) -> Dataset | None:
    check_name("dataset", name)
    return session.scalar(select(Dataset).where(Dataset.project_id == project.id, Dataset.name == name))


def latest_version(session: Session, project: Project, name: str) -> DatasetVersion | None:
    """The newest version of dataset ``name``, or None when it has none (or does not exist)."""
    dataset = _dataset(session, project, name)
    if dataset is None:
        return None
    return session.scalar(
        select(DatasetVersion).where(DatasetVersion.dataset_id == dataset.id).order_by(DatasetVersion.version.desc())
    )


def latest_schema(session: Session, project: Project, name: str) -> Schema | None:
    latest = latest_version(session, project, name)
    return latest.schema if latest is not None else None


def append_rows(
    session: Session,
    store: DataStore,
    access: ProjectAccess,
    name: str,
    records: list[dict[str, Any]],
    window: Window,
    *,
    new_format: str = "jsonl",
    public: bool = False,
    also: Callable[[DatasetVersion], None] | None = None,
) -> DatasetVersion:
    """Store ``records`` after the rows of dataset ``name``'s newest version as its next version
    (the dataset and its first version are made when it has none; ``public`` only counts then).
    ``also`` is called with the new version before it commits, for changes that commit with it."""
    latest = latest_version(session, access.project, name)
    schema = latest.schema if latest is not None else None
    if latest is not None:
        _check_appendable(latest)
    records = check_records(records, schema)
    fmt = latest.format if latest is not None else new_format
    filename = latest.source if latest is not None else f"{name}.{UPLOADS[fmt].meta['upload'].stored_as}"
    encrypt = latest.encrypted if latest is not None else not public
    work = store.scratch / f"append-{secrets.token_hex(8)}"
    work.mkdir(parents=True, mode=0o700)
    try:
        frame = _combined(session, store, access.project, latest, records, work)
        with store.stage() as staged:
            staged.write(_serialized(frame, fmt))

            def attach(row: DatasetVersion) -> dict[str, Any]:
                session.add(
                    DatasetAppend(
                        version=row, dataset_id=row.dataset.id, base_version=latest.version if latest else None,
                        rows_appended=len(records), origin=window.origin, source_key=window.source_key,
                        first_offset=window.first_offset, last_offset=window.last_offset, detail=window.detail,
                    )
                )  # fmt: skip
                if also is not None:
                    also(row)
                return {"rows_appended": len(records), "base_version": latest.version if latest else None,
                        "origin": window.origin, "first_offset": window.first_offset,
                        "last_offset": window.last_offset}  # fmt: skip

            return datasets.add_version(
                session, store, access, name, staged, filename, fmt, public=not encrypt,
                action="dataset.append", attach=attach,
            )  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _check_appendable(latest: DatasetVersion) -> None:
    where = f"dataset {latest.dataset.name!r} version {latest.version}"
    if latest.format not in APPENDABLE:
        raise Unprocessable(
            f"{where} is {latest.format}: rows can only be appended to a table ({', '.join(APPENDABLE)})"
        )
    images = [c["name"] for c in latest.schema if c.get("type") == "image"]
    if images:
        raise Unprocessable(f"{where} has image columns ({', '.join(images)}): upload a new version instead")


def _combined(
    session: Session, store: DataStore, project: Project, latest: DatasetVersion | None,
    records: list[dict[str, Any]], work: Path,
) -> pd.DataFrame:  # fmt: skip
    """The previous version's rows (read by the engine's own reader, checked against their
    SHA-256 on the way) followed by ``records``, in the previous version's column order."""
    new = pd.DataFrame.from_records(records)
    if latest is None:
        return new
    path = dataset_files.materialize(session, project, latest.dataset.name, latest.version, work, store=store)
    config = DataConfig(source=str(path), format=UPLOADS[latest.format].name)
    old = read_source(config, work, require_target=False).frame
    return pd.concat([old, new[list(old.columns)]], ignore_index=True)


def _serialized(frame: pd.DataFrame, fmt: str) -> bytes:
    if fmt == "csv":
        return frame.to_csv(index=False).encode("utf-8")
    if fmt == "jsonl":
        text = frame.to_json(orient="records", lines=True, force_ascii=False, date_format="iso")
        return (text if text.endswith("\n") else text + "\n").encode("utf-8")
    out = io.BytesIO()
    frame.to_parquet(out, index=False)
    return out.getvalue()


# ------------------------------------------------------------------------------- what is stored


def windows(session: Session, project: Project, name: str, limit: int = 50, offset: int = 0
            ) -> tuple[list[DatasetAppend], int]:  # fmt: skip
    """Dataset ``name``'s appended versions, newest first, with their total count."""
    dataset = _dataset(session, project, name)
    if dataset is None:
        return [], 0
    where = DatasetAppend.dataset_id == dataset.id
    total = session.scalar(select(func.count()).select_from(DatasetAppend).where(where)) or 0
    query = select(DatasetAppend).where(where).order_by(DatasetAppend.id.desc()).limit(limit).offset(offset)
    rows = session.scalars(query)
    return list(rows), total


def window_of(session: Session, version: DatasetVersion) -> DatasetAppend | None:
    """The window an appended version added (its offsets), or None for an uploaded version."""
    return session.scalar(select(DatasetAppend).where(DatasetAppend.version_id == version.id))


def last_window(session: Session, project: Project, name: str, source_key: str) -> DatasetAppend | None:
    """The newest window stored from ``source_key`` into dataset ``name``."""
    dataset = _dataset(session, project, name)
    if dataset is None:
        return None
    return session.scalar(
        select(DatasetAppend)
        .where(DatasetAppend.dataset_id == dataset.id, DatasetAppend.source_key == source_key)
        .order_by(DatasetAppend.id.desc())
    )


def holds_offset(session: Session, project: Project, name: str, source_key: str, first_offset: str) -> bool:
    """Whether a window from ``source_key`` starting at ``first_offset`` (a file's name) is stored."""
    dataset = _dataset(session, project, name)
    return (
        dataset is not None
        and session.scalar(
            select(DatasetAppend.id).where(
                DatasetAppend.dataset_id == dataset.id,
                DatasetAppend.source_key == source_key,
                DatasetAppend.first_offset == first_offset,
            )
        )
        is not None
    )
