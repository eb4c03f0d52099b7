"""Data formats: every format the engine reads, declared once with what the rest of the system
needs to know about it.

A format is one ``FORMATS.declare`` below, naming its reader (``modelworks.data.readers.*``,
imported the first time it reads), plus that reader. The facts in ``entry.meta``:

``extensions``  file name endings that mean this format when ``data.format`` is "auto"
``marker``      text in a file's name (or in a name inside a folder) that means this format
``folder``      a folder without a marker is read in this format
``prefix``      a source starting with it names data rather than a path (``builtin:iris``)
``upload``      how the platform accepts an upload of it (`Upload`), or None: not uploadable

The config schema checks ``data.format`` against this table (`DataFormat`) and the platform
derives its upload formats from it, so this module imports neither torch nor pandas.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

from pydantic import AfterValidator

from modelworks.errors import UserError
from modelworks.registry import Entry, Registry

if TYPE_CHECKING:
    from modelworks.config.schema import DataConfig
    from modelworks.data.sources import LoadedData

Reader = Callable[[str, "DataConfig"], "LoadedData"]  # (resolved location, data config) -> frame

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


@dataclass(frozen=True)
class Upload:
    """How the platform accepts a format: under which name, from which file names, stored how."""

    name: str  # the upload format, as the platform's API and its database name it
    extensions: tuple[str, ...]  # an uploaded file name ending so is of this format
    stored_as: str  # extension of the stored file
    archive: bool = False  # a zip of the folder the reader reads: extracted safely, then read
    classes: bool = False  # the preview counts the rows of each class (value of the target)


FORMATS: Registry[Reader] = Registry("data format")

FORMATS.declare(
    "csv",
    impl="modelworks.data.readers.csv:read_csv",
    extensions=(".csv", ".tsv", ".tab", ".txt"),
    upload=Upload("csv", (".csv",), "csv"),
)
FORMATS.declare(
    "parquet",
    impl="modelworks.data.readers.parquet:read_parquet",
    extensions=(".parquet", ".pq"),
    upload=Upload("parquet", (".parquet", ".pq"), "parquet"),
)
FORMATS.declare(
    "jsonl",
    impl="modelworks.data.readers.jsonl:read_jsonl",
    extensions=(".jsonl", ".ndjson"),
    upload=Upload("jsonl", (".jsonl", ".ndjson"), "jsonl"),
)
FORMATS.declare(
    "images",
    impl="modelworks.data.readers.images:read_image_folder",
    folder=True,
    upload=Upload("images-zip", (".zip",), "zip", archive=True, classes=True),
)
FORMATS.declare("idx", impl="modelworks.data.readers.idx:read_idx_source", marker="idx3-ubyte")
FORMATS.declare("builtin", impl="modelworks.data.readers.builtin:read_builtin", prefix="builtin:")


def check_format(name: str) -> str:
    """``data.format``: "auto" or a declared format (a ValueError otherwise, for pydantic)."""
    if name != "auto" and name not in FORMATS:
        raise ValueError(f"choose auto or one of: {', '.join(e.name for e in FORMATS)}")
    return name


DataFormat = Annotated[str, AfterValidator(check_format)]


def named_format(source: str, fmt: str) -> Entry[Reader] | None:
    """The format of a source that names its data (``builtin:iris``), or None for a path."""
    for entry in FORMATS:
        prefix = entry.meta.get("prefix")
        if prefix and (source.startswith(prefix) or fmt == entry.name):
            return entry
    return None


def infer_format(path: Path) -> str:
    """The format of an existing file or folder, from its name (or the names inside it)."""
    names = [p.name for p in path.iterdir()] if path.is_dir() else [path.name]
    for entry in FORMATS:
        marker = entry.meta.get("marker")
        if marker and any(marker in name for name in names):
            return entry.name
    if path.is_dir():
        return next(e.name for e in FORMATS if e.meta.get("folder"))
    for entry in FORMATS:
        if path.suffix.lower() in entry.meta.get("extensions", ()):
            return entry.name
    raise UserError(
        f"cannot tell the format of {path} from its extension; set data.format to one of: {', '.join(FORMATS.names())}"
    )


def upload_formats() -> dict[str, Entry[Reader]]:
    """Upload format name -> the format's entry, for every format the platform accepts."""
    return {e.meta["upload"].name: e for e in FORMATS if e.meta.get("upload") is not None}
