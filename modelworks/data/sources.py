"""Reading a data source into one pandas frame.

`read_source` resolves the path, picks the reader from `FORMATS` (data.format, or inferred from
the name when "auto"), applies data.limit and checks that the frame has rows and a target
column. Readers take the resolved location and the data config and return a `LoadedData`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from modelworks.config.schema import DataConfig
from modelworks.data.idx import read_idx_frame
from modelworks.errors import UserError
from modelworks.registry import Registry

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
EXTENSIONS = {
    ".csv": "csv",
    ".txt": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}


@dataclass
class LoadedData:
    """One data source as a frame, with what the source itself knows about its columns."""

    frame: pd.DataFrame  # one row per example
    target: str  # target column name
    origin: str  # the file path or "builtin:NAME", for messages
    kinds: dict[str, str]  # column -> feature type the source knows, e.g. {"image": "image"}
    split_column: str | None  # column of "train"/"validation"/"test" for an official split


Reader = Callable[[str, DataConfig], LoadedData]
FORMATS: Registry[Reader] = Registry("data format")


def read_source(
    cfg: DataConfig, base_dir: Path, source: str | None = None, *, require_target: bool = True
) -> LoadedData:
    """Read `source` (default cfg.source); relative paths resolve against `base_dir`.

    With ``require_target=False`` a frame without the target column is accepted (prediction).
    """
    source = source or cfg.source
    if source.startswith("builtin:") or cfg.format == "builtin":
        location, fmt = source.removeprefix("builtin:"), "builtin"
    else:
        path = Path(source).expanduser()
        path = (path if path.is_absolute() else Path(base_dir) / path).resolve()
        if not path.exists():
            raise UserError(f"data source {source!r} not found (looked for {path})")
        location, fmt = str(path), cfg.format if cfg.format != "auto" else _infer_format(path)
    loaded = FORMATS.get(fmt, where="data.format").impl(location, cfg)
    if cfg.limit is not None:
        loaded.frame = _head(loaded.frame, cfg.limit, loaded.split_column)
    if loaded.frame.empty:
        raise UserError(f"{loaded.origin} holds no rows")
    if cfg.target is not None:
        loaded.target = cfg.target
    if require_target and loaded.target not in loaded.frame.columns:
        what = f"target column {loaded.target!r}" if loaded.target else "data.target (the target column)"
        raise UserError(
            f"{what} is not in {loaded.origin}; set data.target to one of: {', '.join(map(str, loaded.frame.columns))}"
        )
    return loaded


def _infer_format(path: Path) -> str:
    if path.is_dir():
        return "idx" if any("idx3-ubyte" in p.name for p in path.iterdir()) else "images"
    if "idx3-ubyte" in path.name:
        return "idx"
    fmt = EXTENSIONS.get(path.suffix.lower())
    if fmt is None:
        raise UserError(
            f"cannot tell the format of {path} from its extension; set data.format to one of: "
            f"{', '.join(FORMATS.names())}"
        )
    return fmt


def _head(frame: pd.DataFrame, limit: int, split_column: str | None) -> pd.DataFrame:
    """The first `limit` rows; with an official split, the first rows of each split in proportion."""
    if split_column is None:
        return frame.head(limit)
    keep = (frame[split_column].value_counts(normalize=True) * limit).round().clip(lower=1)
    return frame[frame.groupby(split_column).cumcount() < frame[split_column].map(keep)]


def _tabular(frame: pd.DataFrame, path: Path, cfg: DataConfig) -> LoadedData:
    """A table read from a file; string columns of image file names become absolute paths."""
    kinds = {}
    for column in frame.columns:
        values = frame[column].dropna()
        if not len(values) or not isinstance(values.iloc[0], str):
            continue
        if values.astype(str).str.lower().str.endswith(IMAGE_EXTENSIONS).all():
            frame[column] = frame[column].map(lambda v: str(path.parent / v) if isinstance(v, str) else v)
            kinds[column] = "image"
    return LoadedData(frame, cfg.target or "", str(path), kinds, None)


# ------------------------------------------------------------------------------------- readers


@FORMATS.register("csv")
def read_csv(location: str, cfg: DataConfig) -> LoadedData:
    """UTF-8 text with or without a byte order mark; LF or CRLF line ends."""
    path = Path(location)
    try:
        frame = pd.read_csv(path, sep=cfg.csv_delimiter, encoding="utf-8-sig", nrows=cfg.limit, low_memory=False)
    except UnicodeDecodeError:
        raw = path.read_bytes()
        try:
            raw.decode("utf-8-sig")
        except UnicodeDecodeError as e:
            line = raw[: e.start].count(b"\n") + 1
            raise UserError(f"{path} is not UTF-8 text (line {line}: {e.reason}); save it as UTF-8") from None
        raise
    except pd.errors.EmptyDataError:
        raise UserError(f"{path} holds no rows") from None
    except pd.errors.ParserError as e:
        raise UserError(f"malformed CSV {path}: {e}".strip()) from None
    return _tabular(frame, path, cfg)


@FORMATS.register("parquet")
def read_parquet(location: str, cfg: DataConfig) -> LoadedData:
    path = Path(location)
    try:
        frame = pd.read_parquet(path)
    except Exception as e:  # pyarrow raises several unrelated types for damaged files
        raise UserError(f"cannot read parquet file {path}: {e}") from None
    return _tabular(frame, path, cfg)


@FORMATS.register("jsonl")
def read_jsonl(location: str, cfg: DataConfig) -> LoadedData:
    """One JSON object per line; blank lines are skipped."""
    path = Path(location)
    rows = []
    with path.open(encoding="utf-8-sig") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise UserError(f"{path} line {number} is not valid JSON: {e.msg}") from None
            if not isinstance(row, dict):
                raise UserError(f"{path} line {number} must be a JSON object; got {type(row).__name__}")
            rows.append(row)
            if cfg.limit is not None and len(rows) >= cfg.limit:
                break
    return _tabular(pd.DataFrame.from_records(rows), path, cfg)


@FORMATS.register("images")
def read_image_folder(location: str, cfg: DataConfig) -> LoadedData:
    """A folder with one sub-folder of images per class: columns "image" (path) and "label"."""
    root = Path(location)
    if not root.is_dir():
        raise UserError(f"{root} must be a folder with one sub-folder of images per class")
    rows = [
        (str(file.resolve()), class_dir.name)
        for class_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        for file in sorted(class_dir.rglob("*"))
        if file.is_file() and file.suffix.lower() in IMAGE_EXTENSIONS
    ]
    if not rows:
        raise UserError(
            f"{root} holds no images; expected one sub-folder per class with "
            f"{'/'.join(e[1:] for e in IMAGE_EXTENSIONS)} files"
        )
    frame = pd.DataFrame(rows, columns=["image", "label"])
    return LoadedData(frame, "label", str(root), {"image": "image"}, None)


@FORMATS.register("idx")
def read_idx_source(location: str, cfg: DataConfig) -> LoadedData:
    """MNIST-style IDX files: a folder of train-*/t10k-* pairs, or one images file."""
    frame = read_idx_frame(Path(location))
    frame["label"] = frame["label"].astype(np.int64).astype(str)
    split = "split" if "split" in frame.columns else None
    return LoadedData(frame, "label", location, {"image": "image"}, split)


@FORMATS.register("builtin")
def read_builtin(location: str, cfg: DataConfig) -> LoadedData:
    """``builtin:NAME``; see `modelworks.data.builtins`."""
    from modelworks.data.builtins import (
        load_builtin,  # builtins imports LoadedData from here
    )

    return load_builtin(location)
