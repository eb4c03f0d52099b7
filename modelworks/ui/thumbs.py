"""Thumbnails of an uploaded image archive (a zip of class folders of image files): the images its
preview rows name, read from the stored archive (decrypted and checked against its SHA-256 through
`modelworks.platform.dataset_files`) and served as small PNGs by an access-checked route of the
datasets pages. Only paths the version's (possibly sealed) preview names are ever read, so a request
cannot reach any other member. The thumbnails of a version are made together, once, and kept in a
small in-process cache keyed by the version and its SHA-256."""

from __future__ import annotations

import hashlib
import io
import tempfile
import threading
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any
from urllib.parse import quote

from modelworks.platform.crypto import TamperedData
from modelworks.platform.dataset_files import raw_chunks
from modelworks.platform.datasets import DataStore
from modelworks.platform.db.models import DatasetVersion
from modelworks.platform.errors import NotFound
from modelworks.platform.uploads import upload_of
from modelworks.server.dependencies import UI_PREFIX

SIDE = 96  # a thumbnail's longest side, in pixels
MAX_MEMBER_BYTES = 32 << 20  # an image file larger than this is not thumbnailed
CACHED_VERSIONS = 32
_cache: OrderedDict[tuple[int, str], dict[str, bytes]] = OrderedDict()
_lock = threading.Lock()  # the first page load asks for every thumbnail at once: make them once


def is_image_archive(row: DatasetVersion) -> bool:
    return row.format != "builtin" and upload_of(row.format).archive


def preview_images(row: DatasetVersion, preview: dict[str, Any]) -> set[str]:
    """The image paths (relative to the archive's folder) the preview rows name."""
    columns = [c["name"] for c in row.schema if c.get("type") == "image"]
    return {r[c] for r in preview.get("rows", []) for c in columns if isinstance(r.get(c), str)}


def url(project: str, row: DatasetVersion, path: str) -> str:
    base = f"{UI_PREFIX}/p/{quote(project)}/datasets/{quote(row.dataset.name)}/versions/{row.version}"
    return f"{base}/thumbnails/{quote(path)}"


def thumbnail(store: DataStore, row: DatasetVersion, preview: dict[str, Any], path: str) -> bytes:
    """The PNG thumbnail of image ``path`` of an image-archive version's preview; NotFound for a
    path the preview does not name or an archive member that is no readable image."""
    wanted = preview_images(row, preview) if is_image_archive(row) else set()
    if path not in wanted:
        raise NotFound(f"dataset {row.dataset.name!r} version {row.version} shows no image {path!r} in its preview")
    key = (row.id, row.sha256)
    with _lock:
        if key not in _cache:
            _cache[key] = _make_all(store, row, wanted)
            while len(_cache) > CACHED_VERSIONS:
                _cache.popitem(last=False)
        _cache.move_to_end(key)
        made = _cache[key]
    if path not in made:
        raise NotFound(f"image {path!r} of dataset {row.dataset.name!r} version {row.version} cannot be read")
    return made[path]


def _make_all(store: DataStore, row: DatasetVersion, wanted: set[str]) -> dict[str, bytes]:
    with tempfile.TemporaryDirectory(prefix="mw-thumbs-") as tmp:
        data = Path(tmp) / "data.zip"
        sha = hashlib.sha256()
        with open(data, "xb") as out:
            for chunk in raw_chunks(store, row):
                sha.update(chunk)
                out.write(chunk)
        if sha.hexdigest() != row.sha256:
            raise TamperedData(f"dataset {row.dataset.name!r} version {row.version} does not match its SHA-256")
        with zipfile.ZipFile(data) as zf:
            members = sorted((i for i in zf.infolist() if not i.is_dir()), key=lambda i: len(i.filename))
            made = {}
            for path in wanted:
                info = next((i for i in members if i.filename == path or i.filename.endswith("/" + path)), None)
                if info is not None and info.file_size <= MAX_MEMBER_BYTES:
                    png = _png(zf.read(info))
                    if png is not None:
                        made[path] = png
            return made


def _png(data: bytes) -> bytes | None:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            image.draft("RGB", (SIDE, SIDE))
            image.thumbnail((SIDE, SIDE))
            small = image.convert("RGBA" if "A" in image.getbands() else "RGB")
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError):
        return None
    out = io.BytesIO()
    small.save(out, format="PNG")
    return out.getvalue()
