"""What an upload is and what it holds: its format, then its schema, row count and preview, read
by the engine's own readers.

The upload formats are the engine's data formats that declare an `Upload` in
`modelworks.data.formats` (the name the API and the database use, the file name endings that
imply it, the stored file's extension, whether it arrives as a zip of a folder and whether its
preview counts classes). Declaring one there makes the platform accept it; nothing here lists
formats.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd

from modelworks.config.schema import DataConfig
from modelworks.data.formats import Upload, upload_formats
from modelworks.data.infer import infer_type
from modelworks.data.sources import LoadedData, read_source
from modelworks.errors import UserError
from modelworks.platform.archive import Limits, check_member_name, unpack

UPLOADS = upload_formats()  # upload format -> the engine's data format entry
EXTENSION_FORMATS = {ext: name for name, entry in UPLOADS.items() for ext in entry.meta["upload"].extensions}
PREVIEW_ROWS = 20

Description = tuple[list[dict[str, str]], int, dict[str, Any]]  # schema, row count, preview


def upload_of(fmt: str) -> Upload:
    """How upload format `fmt` (e.g. "images-zip") is stored and read."""
    return UPLOADS[fmt].meta["upload"]


def resolve_format(filename: str, fmt: str | None) -> str:
    """The upload format: given, or from the file name's extension."""
    check_member_name(filename, "file name")
    if "/" in filename:
        raise UserError(f"the file name {filename!r} must be a name, not a path")
    if fmt is None:
        fmt = EXTENSION_FORMATS.get(Path(filename).suffix.lower())
        if fmt is None:
            endings = [f"*{ext}" for ext in EXTENSION_FORMATS]
            raise UserError(
                f"cannot tell the format of {filename!r}; name it {', '.join(endings[:-1])} or {endings[-1]}, "
                f"or pass format= one of {', '.join(UPLOADS)}"
            )
    if fmt not in UPLOADS:
        raise UserError(f"the format must be one of {', '.join(UPLOADS)}; got {fmt!r}")
    return fmt


def json_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as JSON-safe dicts: NaN as null, times as ISO text, anything else odd as text."""
    return json.loads(frame.to_json(orient="records", force_ascii=False, date_format="iso", default_handler=str))


def describe(loaded: LoadedData, base: Path | None = None) -> tuple[list[dict[str, str]], int, list[dict[str, Any]]]:
    """Schema, row count and preview rows of a loaded frame. Image paths the reader made
    absolute are shown relative to ``base`` again (they point into a scratch folder)."""
    frame = loaded.frame
    schema = [
        {"name": str(c), "dtype": str(frame[c].dtype), "type": infer_type(frame[c], loaded.kinds)}
        for c in frame.columns
    ]
    head = frame.head(PREVIEW_ROWS).copy()
    if base is not None:
        for column, kind in loaded.kinds.items():
            if kind == "image" and head[column].map(lambda v: isinstance(v, str)).all():
                head[column] = head[column].map(lambda v: os.path.relpath(v, base))
    return schema, len(frame), json_records(head)


def inspect_file(path: Path, fmt: str, limits: Limits) -> Description:
    """Schema, row count and preview of a staged upload of format `fmt`; an archive is unpacked
    beside it (within `limits`) and the folder it holds is read."""
    entry = UPLOADS[fmt]
    upload: Upload = entry.meta["upload"]
    source = unpack(path, path.parent / "extracted", limits) if upload.archive else path
    base = source if upload.archive else path.parent
    loaded = read_source(DataConfig(source=str(source), format=entry.name), base, require_target=False)
    schema, rows, preview = describe(loaded, base)
    if not upload.classes:
        return schema, rows, {"rows": preview}
    classes = {str(k): int(v) for k, v in loaded.frame[loaded.target].value_counts().sort_index().items()}
    return schema, rows, {"rows": preview, "classes": classes}
