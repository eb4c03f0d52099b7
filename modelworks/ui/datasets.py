"""Datasets: the list, a dataset's versions, a version's schema and preview (rows, or image
thumbnails: drawn from the preview's pixels for a built-in, served from the archive for an uploaded
zip of images, `modelworks.ui.thumbs`), upload with a progress bar, register a built-in,
delete (owners). Uploads go through the API's own upload route function."""

from __future__ import annotations

import base64
import io
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from modelworks.platform import datasets
from modelworks.platform.names import NAME_PATTERN
from modelworks.platform.previews import preview_of
from modelworks.platform.roles import Role
from modelworks.platform.uploads import EXTENSION_FORMATS
from modelworks.server.dependencies import UI_PREFIX, DbSession, Editor, Owner, Paging, PathName, Viewer
from modelworks.server.routers import datasets as api
from modelworks.ui import thumbs
from modelworks.ui.web import can, render

router = APIRouter(prefix="/p/{project}/datasets")
CELL_CHARS = 120  # a preview cell longer than this is cut, with an ellipsis
THUMB_MAX_SIDE = 256  # larger images in a preview are shown as text


def _builtin_names() -> list[str]:
    from modelworks.data.builtins import BUILTINS  # loads scikit-learn: only when the page is shown

    return BUILTINS.names()


@router.get("", response_class=HTMLResponse)
def list_page(request: Request, access: Viewer, session: DbSession, paging: Paging) -> HTMLResponse:
    page = datasets.list_datasets(session, access.project, paging.limit, paging.offset)
    return render(
        request,
        "datasets/list.html",
        access=access,
        section="datasets",
        page=page,
        builtins=_builtin_names() if can(access, Role.editor) else [],  # the form is for editors
        formats=", ".join(sorted(EXTENSION_FORMATS)),
        max_upload_mb=request.app.state.datastore.max_upload_bytes / (1 << 20),
    )


@router.get("/{name}", response_class=HTMLResponse)
def dataset_page(request: Request, name: PathName, access: Viewer, session: DbSession) -> HTMLResponse:
    dataset, versions = datasets.get_dataset(session, access.project, name)
    return render(
        request, "datasets/dataset.html", access=access, section="datasets", dataset=dataset, versions=versions[::-1]
    )


@router.get("/{name}/versions/{version}", response_class=HTMLResponse)
def version_page(request: Request, name: PathName, version: api.Version, access: Viewer, session: DbSession):
    row = datasets.get_version(session, access.project, name, version)
    preview = preview_of(row, request.app.state.datastore.keyring)
    columns = [c["name"] for c in row.schema]
    images = {c["name"] for c in row.schema if c.get("type") == "image"}
    cells = [[cell(r.get(c), c in images) for c in columns] for r in preview.get("rows", [])]
    if thumbs.is_image_archive(row):  # the images are files in the archive: a route serves them
        for r, line in zip(preview.get("rows", []), cells, strict=True):
            for i, c in enumerate(columns):
                if c in images and isinstance(r.get(c), str):
                    line[i] = {"image": thumbs.url(access.project.name, row, r[c]), "text": r[c]}
    return render(
        request,
        "datasets/version.html",
        access=access,
        section="datasets",
        row=row,
        columns=columns,
        cells=cells,
        classes=preview.get("classes"),
        target=preview.get("target"),
    )


def cell(value: Any, image: bool) -> dict[str, str]:
    """One preview cell: ``image``, a PNG data URI for an image given as pixels (else ""), or ``text``."""
    if image and isinstance(value, list):
        uri = thumbnail(value)
        if uri is not None:
            return {"image": uri, "text": ""}
    text = "" if value is None else str(value)
    return {"image": "", "text": text if len(text) <= CELL_CHARS else text[: CELL_CHARS - 1] + "…"}


def thumbnail(pixels: list) -> str | None:
    """A PNG data URI of an image stored as nested lists of 0..255 (H, W) or (H, W, C); None if it is not one."""
    import numpy as np
    from PIL import Image

    try:
        array = np.asarray(pixels, dtype=np.float64)
    except ValueError:
        return None
    if array.ndim == 3 and array.shape[0] in (1, 3) and array.shape[-1] not in (1, 3):
        array = array.transpose(1, 2, 0)  # (C, H, W) -> (H, W, C)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or max(array.shape[:2]) > THUMB_MAX_SIDE or (array.ndim == 3 and array.shape[-1] != 3):
        return None
    if array.size and array.max() <= 1.0:
        array = array * 255
    image = Image.fromarray(np.clip(np.round(array), 0, 255).astype(np.uint8))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode("ascii")


@router.get("/{name}/versions/{version}/thumbnails/{path:path}", response_class=Response)
def thumbnail_image(
    request: Request, name: PathName, version: api.Version, path: str, access: Viewer, session: DbSession
) -> Response:
    """A thumbnail (PNG) of an image the preview of an uploaded image archive names."""
    row = datasets.get_version(session, access.project, name, version)
    store = request.app.state.datastore
    png = thumbs.thumbnail(store, row, preview_of(row, store.keyring), path)
    return Response(png, media_type="image/png", headers={"Cache-Control": "private, no-store"})


@router.post("/{name}/upload")
async def upload(
    request: Request,
    name: PathName,
    access: Editor,
    session: DbSession,
    filename: Annotated[str, Query(min_length=1, max_length=200)],
    public: bool = False,
) -> JSONResponse:
    """The upload form's target (ui.js sends the file as the raw body, with the CSRF header):
    the API's upload route does the work; the answer names the new version's page."""
    out = await api.upload_version(name, request, access, session, filename, None, public)
    return JSONResponse({"next": f"{UI_PREFIX}/p/{access.project.name}/datasets/{name}/versions/{out.version}"})


@router.post("/builtin")
def register_builtin(
    request: Request,
    access: Editor,
    session: DbSession,
    name: Annotated[str, Form(pattern=NAME_PATTERN)],
    builtin: Annotated[str, Form(min_length=1, max_length=100)],
) -> RedirectResponse:
    row = datasets.register_builtin(session, request.app.state.datastore, access, name, builtin)
    target = f"{UI_PREFIX}/p/{access.project.name}/datasets/{name}/versions/{row.version}"
    return RedirectResponse(target, status_code=303)


@router.post("/{name}/delete")
def delete(request: Request, name: PathName, access: Owner, session: DbSession) -> RedirectResponse:
    datasets.delete_dataset(session, request.app.state.datastore, access, name)
    return RedirectResponse(f"{UI_PREFIX}/p/{access.project.name}/datasets", status_code=303)
