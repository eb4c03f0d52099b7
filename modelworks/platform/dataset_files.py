"""The plaintext of stored dataset versions: read and verified for a download, decrypted into a
job's working folder (`materialize`, `engine_source`), and re-encrypted when the data key rotates.

Every read authenticates each chunk (encrypted data) and checks the whole file's SHA-256 before
the plaintext is used; see `modelworks.platform.datasets` for how versions are stored.
"""

from __future__ import annotations

import hashlib
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from modelworks.errors import UserError
from modelworks.platform import audit
from modelworks.platform.archive import folder_root, safe_extract
from modelworks.platform.crypto import TamperedData, decrypt_chunks
from modelworks.platform.datasets import COPY_CHUNK, DataStore, get_version, write_chunks
from modelworks.platform.db.models import DatasetVersion, Project, User
from modelworks.platform.errors import StoredDataError
from modelworks.platform.previews import reseal_preview
from modelworks.platform.uploads import UPLOADS, upload_of


def _stored_path(row: DatasetVersion) -> str:
    if row.storage_path is None:
        raise UserError(f"{row.source} is a built-in: it has no file; the engine reads it by name")
    return row.storage_path


def raw_chunks(store: DataStore, row: DatasetVersion) -> Iterator[bytes]:
    """The plaintext of a stored version, chunk by chunk, each chunk authenticated first."""
    try:
        f = store.storage.open(_stored_path(row), "rb")
    except FileNotFoundError as e:
        raise StoredDataError(
            f"the file of dataset {row.dataset.name!r} version {row.version} is missing from the artifact store"
        ) from e
    with f:
        if row.encrypted:
            yield from decrypt_chunks(f, store.keyring)
        else:
            while chunk := f.read(COPY_CHUNK):
                yield chunk


def verify(store: DataStore, row: DatasetVersion) -> None:
    """Read a version through, checking every chunk's tag and the whole file's SHA-256."""
    sha = hashlib.sha256()
    for chunk in raw_chunks(store, row):
        sha.update(chunk)
    if sha.hexdigest() != row.sha256:
        raise TamperedData(f"dataset {row.dataset.name!r} version {row.version} does not match its recorded SHA-256")


def read_chunks(store: DataStore, row: DatasetVersion) -> Iterator[bytes]:
    """The plaintext of a version for download: verified whole first, then streamed (each
    chunk authenticated again, so a change in between cuts the stream rather than alter it)."""
    verify(store, row)
    return raw_chunks(store, row)


def materialize(
    session: Session, project: Project, name: str, version: int, target_dir: Path, *, store: DataStore
) -> Path:
    """Decrypt a version into ``target_dir`` for a job and return what the engine reads: the
    data file, or the folder of class folders for an image archive. The SHA-256 is checked
    before anything is returned; a built-in has no file (use `engine_source`)."""
    row = get_version(session, project, name, version)
    _stored_path(row)  # a built-in has no file: a UserError saying so
    upload, unpacked = upload_of(row.format), UPLOADS[row.format].name  # e.g. images-zip -> images
    target = Path(target_dir) / f"{row.dataset.name}-v{row.version}"
    partial = target.with_name(target.name + f".partial-{secrets.token_hex(4)}")
    partial.mkdir(parents=True)
    try:
        data = partial / f"data.{upload.stored_as}"
        sha = hashlib.sha256()
        with open(data, "xb") as out:
            for chunk in raw_chunks(store, row):
                sha.update(chunk)
                out.write(chunk)
        if sha.hexdigest() != row.sha256:
            raise TamperedData(f"dataset {name!r} version {version} does not match its recorded SHA-256")
        if upload.archive:
            safe_extract(data, partial / unpacked, store.archive_limits)
            data.unlink()
        shutil.rmtree(target, ignore_errors=True)
        partial.rename(target)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return folder_root(target / unpacked) if upload.archive else target / data.name


def engine_source(
    session: Session, project: Project, name: str, version: int, target_dir: Path, *, store: DataStore
) -> str:
    """What a job's ``data.source`` should be: ``builtin:NAME``, or the materialized path."""
    row = get_version(session, project, name, version)
    if row.format == "builtin":
        return row.source
    return str(materialize(session, project, name, version, target_dir, store=store))


# ------------------------------------------------------------------------------- key rotation


def rotate_key(session: Session, store: DataStore, actor: User | None) -> int:
    """Re-encrypt every encrypted version not sealed with the keyring's current key; returns
    how many. Each version is written beside the old file, verified, recorded, and only then
    is the old file removed, so a crash midway leaves every version readable."""
    rows = list(
        session.scalars(
            select(DatasetVersion).where(
                DatasetVersion.encrypted.is_(True), DatasetVersion.key_id != store.keyring.current
            )
        )
    )
    for row in rows:
        old_key, old_id = row.storage_path, row.key_id
        assert old_key is not None
        folder, filename = old_key.rsplit("/", 1)
        new_key = f"{folder}/{secrets.token_hex(6)}-{filename.split('-', 1)[1]}"
        try:
            write_chunks(store, new_key, raw_chunks(store, row), encrypt=True)
            row.storage_path, row.key_id = new_key, store.keyring.current
            reseal_preview(row, store.keyring)
            verify(store, row)
        except BaseException:
            session.rollback()
            store.storage.remove(new_key)
            raise
        audit.record(
            session,
            actor,
            "dataset.rotate_key",
            f"dataset:{row.dataset.name}@{row.version}",
            project_id=row.dataset.project_id,
            detail={"from": old_id, "to": row.key_id},
        )
        session.commit()
        store.storage.remove(old_key)
    return len(rows)
