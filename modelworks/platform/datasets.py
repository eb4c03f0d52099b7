"""Datasets: a project's named data, each upload an immutable, numbered version.

An upload is staged to a local scratch file as it streams in (size limit enforced chunk by
chunk, SHA-256 computed on the way), described with the engine's own readers (schema, row
count, a 20-row preview, sealed when the data is: `modelworks.platform.previews`; see
`modelworks.platform.uploads`, which also says what formats an
upload may have), then written to the artifact store at
``<project-id>/datasets/<dataset-id>/<version>/<random>-data.<ext>[.enc]`` — encrypted with the
keyring's current key unless the data set is public — and recorded with its audit entry in one
transaction. The scratch file is always removed; a failed upload leaves nothing behind.

Built-ins (``builtin:iris``) are registered as versions without a file: the engine reads them by
name. Reading a stored version's plaintext (download, a job's working copy, key rotation) is
`modelworks.platform.dataset_files`.
"""

from __future__ import annotations

import hashlib
import secrets
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from modelworks.config.schema import DataConfig
from modelworks.data.sources import read_source
from modelworks.errors import UserError
from modelworks.platform import audit
from modelworks.platform.access import ProjectAccess
from modelworks.platform.archive import Limits
from modelworks.platform.crypto import DEFAULT_CHUNK, EncryptingWriter, Keyring
from modelworks.platform.db.lookup import find_named
from modelworks.platform.db.models import Dataset, DatasetVersion, Project
from modelworks.platform.db.paging import DEFAULT_LIMIT, Page, paginate
from modelworks.platform.errors import Conflict, NotFound, TooLarge
from modelworks.platform.names import check_name
from modelworks.platform.previews import seal_preview
from modelworks.platform.settings import Settings
from modelworks.platform.storage import Storage
from modelworks.platform.uploads import describe, inspect_file, resolve_format, upload_of

COPY_CHUNK = 1 << 20


@dataclass
class DataStore:
    """Where dataset files go and how they are sealed; one per server (see `from_settings`)."""

    storage: Storage
    keyring: Keyring
    scratch: Path  # local folder for uploads being staged and archives being inspected
    max_upload_bytes: int
    archive_limits: Limits = field(default_factory=Limits)
    chunk_size: int = DEFAULT_CHUNK

    @classmethod
    def from_settings(cls, settings: Settings) -> DataStore:
        key = settings.data_key.get_secret_value() if settings.data_key else None
        max_bytes = int(settings.max_upload_mb * (1 << 20))
        return cls(
            storage=Storage(settings.artifacts),
            keyring=Keyring.load(key, settings.data_key_file, settings.home),
            scratch=settings.home / "scratch",
            max_upload_bytes=max_bytes,
            archive_limits=Limits(max_bytes=settings.max_extract_bytes),
        )

    def stage(self) -> StagedUpload:
        return StagedUpload(self)


class StagedUpload:
    """An upload being received: `write` its chunks (refused past the size limit with
    `TooLarge`), then hand it to `add_version`; `discard` (or leaving the ``with``) removes it."""

    def __init__(self, store: DataStore) -> None:
        self.limit = store.max_upload_bytes
        self.folder = store.scratch / secrets.token_hex(8)
        self.folder.mkdir(parents=True, mode=0o700)
        self.path = self.folder / "upload"
        self._file = open(self.path, "xb")
        self._sha = hashlib.sha256()
        self.size = 0

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.limit:
            self.discard()
            raise TooLarge(
                f"the upload is larger than the limit of {self.limit / (1 << 20):g} MB (MODELWORKS_MAX_UPLOAD_MB)"
            )
        self._sha.update(chunk)
        self._file.write(chunk)

    def finish(self) -> str:
        """Close the file; returns the hex SHA-256 of what was written."""
        self._file.close()
        return self._sha.hexdigest()

    def discard(self) -> None:
        self._file.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> StagedUpload:
        return self

    def __exit__(self, *exc: object) -> None:
        self.discard()


# ------------------------------------------------------------------------------- storing versions


def _find(session: Session, project: Project, name: str) -> Dataset:
    return find_named(session, Dataset, "dataset", project, name)


def _get_or_create(session: Session, access: ProjectAccess, name: str) -> Dataset:
    check_name("dataset", name)
    dataset = session.scalar(select(Dataset).where(Dataset.project_id == access.project.id, Dataset.name == name))
    if dataset is None:
        dataset = Dataset(project_id=access.project.id, name=name, created_by=access.user)
        session.add(dataset)
        session.flush()
    return dataset


def _next_version(session: Session, dataset: Dataset) -> int:
    return (
        session.scalar(select(func.max(DatasetVersion.version)).where(DatasetVersion.dataset_id == dataset.id)) or 0
    ) + 1


def write_chunks(store: DataStore, key: str, chunks: Iterator[bytes], encrypt: bool) -> None:
    with store.storage.open(key, "wb") as out:
        sink = EncryptingWriter(out, store.keyring, store.chunk_size) if encrypt else out
        for chunk in chunks:
            sink.write(chunk)
        if encrypt:
            sink.close()


def _file_chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while chunk := f.read(COPY_CHUNK):
            yield chunk


def _commit_version(
    session: Session, store: DataStore, row: DatasetVersion, key: str | None, action: str, detail: dict[str, Any]
) -> DatasetVersion:
    project_id = row.dataset.project_id
    session.add(row)
    audit.record(
        session,
        row.created_by,
        action,
        f"dataset:{row.dataset.name}@{row.version}",
        project_id=project_id,
        detail=detail,
    )
    try:
        session.commit()
    except IntegrityError as e:
        session.rollback()
        if key is not None:
            store.storage.remove(key)
        raise Conflict(f"another version of dataset {row.dataset.name!r} was added at the same moment; retry") from e
    return row


def add_version(
    session: Session,
    store: DataStore,
    access: ProjectAccess,
    name: str,
    staged: StagedUpload,
    filename: str,
    fmt: str | None = None,
    *,
    public: bool = False,
    action: str = "dataset.upload",
    attach: Callable[[DatasetVersion], dict[str, Any]] | None = None,
) -> DatasetVersion:
    """Describe a staged upload and store it as the next version of dataset ``name``.

    ``attach`` is called with the new version before it commits, to add rows that must commit with
    it (an append's record: `modelworks.streams.append`); what it returns joins the audit detail,
    recorded as ``action``."""
    check_name("dataset", name)
    fmt = resolve_format(filename, fmt)
    sha256 = staged.finish()
    try:
        schema, rows, preview = inspect_file(staged.path, fmt, store.archive_limits)
    except UserError as e:  # the engine names the staged file; the uploader knows it by its own name
        e.args = (str(e).replace(str(staged.path), filename),)
        raise
    dataset = _get_or_create(session, access, name)
    version = _next_version(session, dataset)
    suffix = upload_of(fmt).stored_as + ("" if public else ".enc")
    key = f"{access.project.id}/datasets/{dataset.id}/{version}/{secrets.token_hex(6)}-data.{suffix}"
    try:
        write_chunks(store, key, _file_chunks(staged.path), encrypt=not public)
    except BaseException:
        session.rollback()
        store.storage.remove(key)
        raise
    row = DatasetVersion(
        dataset=dataset,
        version=version,
        sha256=sha256,
        size=staged.size,
        format=fmt,
        source=filename,
        schema=schema,
        rows=rows,
        encrypted=not public,
        preview=preview if public else seal_preview(preview, store.keyring),
        key_id=store.keyring.current if not public else None,
        storage_path=key,
        created_by=access.user,
    )
    detail = {"version": version, "sha256": sha256, "size": staged.size, "format": fmt}
    if attach is not None:
        detail.update(attach(row))
    return _commit_version(session, store, row, key, action, detail)


def register_builtin(
    session: Session, store: DataStore, access: ProjectAccess, name: str, builtin: str
) -> DatasetVersion:
    """Record built-in data set ``builtin`` (e.g. "iris") as the next version of ``name``. No
    file is stored; the SHA-256 is that of the frame as CSV, so a changed built-in shows."""
    check_name("dataset", name)
    check_name("built-in", builtin)
    loaded = read_source(DataConfig(source=f"builtin:{builtin}"), Path("."), require_target=False)
    schema, rows, preview = describe(loaded)
    text = loaded.frame.to_csv(index=False).encode()
    dataset = _get_or_create(session, access, name)
    version = _next_version(session, dataset)
    row = DatasetVersion(
        dataset=dataset,
        version=version,
        sha256=hashlib.sha256(text).hexdigest(),
        size=len(text),
        format="builtin",
        source=f"builtin:{builtin}",
        schema=schema,
        rows=rows,
        preview={"rows": preview, "target": loaded.target},
        encrypted=False,
        key_id=None,
        storage_path=None,
        created_by=access.user,
    )
    return _commit_version(session, store, row, None, "dataset.register", {"version": version, "builtin": builtin})


# ------------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class DatasetSummary:
    dataset: Dataset
    versions: int
    latest: int | None


def list_datasets(
    session: Session, project: Project, limit: int = DEFAULT_LIMIT, offset: int = 0
) -> Page[DatasetSummary]:
    """A project's datasets by name, with their version counts."""
    page = paginate(
        session, select(Dataset).where(Dataset.project_id == project.id).order_by(Dataset.name), limit, offset
    )
    counts = {
        dataset_id: (n, latest)
        for dataset_id, n, latest in session.execute(
            select(DatasetVersion.dataset_id, func.count(), func.max(DatasetVersion.version))
            .where(DatasetVersion.dataset_id.in_([d.id for d in page.items]))
            .group_by(DatasetVersion.dataset_id)
        )
    }
    items = [DatasetSummary(d, *counts.get(d.id, (0, None))) for d in page.items]
    return Page(items=items, total=page.total, limit=page.limit, offset=page.offset)


def get_dataset(session: Session, project: Project, name: str) -> tuple[Dataset, list[DatasetVersion]]:
    dataset = _find(session, project, name)
    versions = list(
        session.scalars(
            select(DatasetVersion).where(DatasetVersion.dataset_id == dataset.id).order_by(DatasetVersion.version)
        )
    )
    return dataset, versions


def get_version(session: Session, project: Project, name: str, version: int) -> DatasetVersion:
    dataset = _find(session, project, name)
    row = session.scalar(
        select(DatasetVersion).where(DatasetVersion.dataset_id == dataset.id, DatasetVersion.version == version)
    )
    if row is None:
        raise NotFound(f"dataset {name!r} has no version {version}")
    return row


# ------------------------------------------------------------------------------- changing


def delete_dataset(session: Session, store: DataStore, access: ProjectAccess, name: str) -> None:
    """Delete a dataset, every version and their files."""
    dataset = _find(session, access.project, name)
    folder = f"{access.project.id}/datasets/{dataset.id}"
    audit.record(session, access.user, "dataset.delete", f"dataset:{name}", project_id=access.project.id)
    session.delete(dataset)
    session.commit()
    store.storage.remove(folder)
