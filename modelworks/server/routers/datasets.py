"""Datasets: viewers read, list and download; editors upload and register built-ins; owners
delete; admins rotate the data key."""

from __future__ import annotations

from typing import Annotated, Literal

import anyio
from fastapi import APIRouter, Path, Query, Request, Response

from modelworks.platform import dataset_files, datasets
from modelworks.platform.datasets import DataStore
from modelworks.platform.db.models import Dataset, DatasetVersion
from modelworks.platform.errors import TooLarge
from modelworks.platform.ids import DbId
from modelworks.platform.names import check_name
from modelworks.platform.previews import preview_of
from modelworks.platform.uploads import UPLOADS
from modelworks.server.dependencies import Admin, DbSession, Editor, Owner, Paging, PathName, Viewer
from modelworks.server.downloads import Download
from modelworks.server.schemas import BuiltinRegister, DatasetDetail, DatasetOut, DatasetVersionOut, Page, RotateKeyOut

router = APIRouter(prefix="/projects/{project}/datasets", tags=["datasets"])
admin_router = APIRouter(prefix="/datasets", tags=["datasets"])
UPLOAD_PATH = router.prefix + "/{name}/versions"  # its body is streamed to disk, bounded by the upload limit

Version = Annotated[DbId, Path(description="1, 2, ...")]
Format = Literal[tuple(UPLOADS)]  # type: ignore[valid-type]  # the engine's uploadable data formats


def store_of(request: Request) -> DataStore:
    return request.app.state.datastore


def version_out(v: DatasetVersion, *, opened_by: DataStore | None = None) -> DatasetVersionOut:
    """A version's answer; with its preview (opened with the store's keyring) when `opened_by` is given."""
    return DatasetVersionOut(
        dataset=v.dataset.name,
        version=v.version,
        sha256=v.sha256,
        size=v.size,
        format=v.format,
        source=v.source,
        schema=v.schema,
        rows=v.rows,
        encrypted=v.encrypted,
        key_id=v.key_id,
        created_by=v.created_by.name if v.created_by else None,
        created_at=v.created_at,
        preview=preview_of(v, opened_by.keyring) if opened_by is not None else None,
    )


def dataset_out(d: Dataset, versions: int, latest: int | None) -> DatasetOut:
    return DatasetOut(
        name=d.name,
        created_by=d.created_by.name if d.created_by else None,
        created_at=d.created_at,
        versions=versions,
        latest=latest,
    )


# The route reads the raw body itself, so FastAPI cannot see it: declared here.
RAW_BODY = {
    "requestBody": {
        "required": True,
        "description": "the file's bytes",
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}


@router.post("/{name}/versions", status_code=201, openapi_extra=RAW_BODY)
async def upload_version(
    name: PathName,
    request: Request,
    access: Editor,
    session: DbSession,
    filename: Annotated[
        str, Query(min_length=1, max_length=200, description="the file's name; its extension gives the format")
    ],
    format: Annotated[Format | None, Query(description="default: from the file name")] = None,
    public: Annotated[bool, Query(description="store unencrypted")] = False,
) -> DatasetVersionOut:
    """Upload the request body (raw bytes, streamed to disk) as the next version of ``name``."""
    check_name("dataset", name)
    datasets.resolve_format(filename, format)
    store = store_of(request)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > store.max_upload_bytes:
        raise TooLarge(
            f"the upload is larger than the limit of {store.max_upload_bytes / (1 << 20):g} MB "
            "(MODELWORKS_MAX_UPLOAD_MB)"
        )
    with store.stage() as staged:
        async for chunk in request.stream():
            staged.write(chunk)
        row = await anyio.to_thread.run_sync(
            lambda: datasets.add_version(session, store, access, name, staged, filename, format, public=public)
        )
    return version_out(row, opened_by=store)


@router.post("/{name}/builtin", status_code=201)
def register_builtin(
    name: PathName, body: BuiltinRegister, request: Request, access: Editor, session: DbSession
) -> DatasetVersionOut:
    """Register a built-in data set as the next version of ``name`` (no upload, not encrypted)."""
    store = store_of(request)
    return version_out(datasets.register_builtin(session, store, access, name, body.builtin), opened_by=store)


@router.get("")
def list_datasets(access: Viewer, session: DbSession, paging: Paging) -> Page[DatasetOut]:
    page = datasets.list_datasets(session, access.project, paging.limit, paging.offset)
    return Page[DatasetOut].of(page, lambda s: dataset_out(s.dataset, s.versions, s.latest))


@router.get("/{name}")
def get_dataset(name: PathName, access: Viewer, session: DbSession) -> DatasetDetail:
    dataset, versions = datasets.get_dataset(session, access.project, name)
    summary = dataset_out(dataset, len(versions), versions[-1].version if versions else None)
    return DatasetDetail(**summary.model_dump(), items=[version_out(v) for v in versions])


@router.get("/{name}/versions/{version}")
def get_version(
    name: PathName, version: Version, request: Request, access: Viewer, session: DbSession
) -> DatasetVersionOut:
    return version_out(datasets.get_version(session, access.project, name, version), opened_by=store_of(request))


@router.get("/{name}/versions/{version}/download", response_class=Download)
def download_version(
    name: PathName, version: Version, request: Request, access: Viewer, session: DbSession
) -> Download:
    """The version's plaintext, checked against its tags and SHA-256 before it is sent."""
    row = datasets.get_version(session, access.project, name, version)
    return Download(
        dataset_files.read_chunks(store_of(request), row), size=row.size, sha256=row.sha256, filename=row.source
    )


@router.delete("/{name}", status_code=204)
def delete_dataset(name: PathName, request: Request, access: Owner, session: DbSession) -> Response:
    """Delete the dataset, every version and their files."""
    datasets.delete_dataset(session, store_of(request), access, name)
    return Response(status_code=204)


@admin_router.post("/rotate-key")
def rotate_key(request: Request, user: Admin, session: DbSession) -> RotateKeyOut:
    """Re-encrypt every dataset version with the current data key (the first in the keyring)."""
    store = store_of(request)
    return RotateKeyOut(reencrypted=dataset_files.rotate_key(session, store, user), key_id=store.keyring.current)
