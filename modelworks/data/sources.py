"""Reading a data source into one pandas frame.

`read_source` resolves the path, picks the reader from `FORMATS` (data.format, or inferred from
the name when "auto"; see `modelworks.data.formats`), applies data.limit and checks that the
frame has rows and a target column. Readers take the resolved location and the data config and
return a `LoadedData`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from modelworks.config.schema import DataConfig
from modelworks.data.formats import FORMATS, IMAGE_EXTENSIONS, infer_format, named_format
from modelworks.errors import UserError


@dataclass
class LoadedData:
    """One data source as a frame, with what the source itself knows about its columns."""

    frame: pd.DataFrame  # one row per example
    target: str  # target column name
    origin: str  # the file path or "builtin:NAME", for messages
    kinds: dict[str, str]  # column -> feature type the source knows, e.g. {"image": "image"}
    split_column: str | None  # column of "train"/"validation"/"test" for an official split
    encoding: str | None = None  # the text encoding read with (a detected one for data.encoding: auto)
    dropped: dict[str, int] = field(default_factory=dict)  # rows left out, by reason (data.missing_target)


def read_source(
    cfg: DataConfig, base_dir: Path, source: str | None = None, *, require_target: bool = True
) -> LoadedData:
    """Read `source` (default cfg.source); relative paths resolve against `base_dir`.

    With ``require_target=False`` a frame without the target column is accepted (prediction).
    """
    source = source or cfg.source
    named = named_format(source, cfg.format)
    if named is not None:
        location, fmt = source.removeprefix(named.meta["prefix"]), named.name
    else:
        path = Path(source).expanduser()
        path = (path if path.is_absolute() else Path(base_dir) / path).resolve()
        if cfg.root is not None and (not inside(path, cfg.root) or not path.exists()):
            raise UserError(f"data source {source!r} not found in this job's data")  # the same answer either way
        if not path.exists():
            raise UserError(f"data source {source!r} not found (looked for {path})")
        location, fmt = str(path), cfg.format if cfg.format != "auto" else infer_format(path)
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
    if require_target:
        _missing_targets(loaded, cfg.missing_target)
    return loaded


def _missing_targets(loaded: LoadedData, policy: str) -> None:
    """Apply data.missing_target: rows whose target is empty are dropped and counted, or an error."""
    target = loaded.frame[loaded.target]
    blank = target.isna() | target.map(lambda v: isinstance(v, str) and not v.strip())
    count = int(blank.sum())
    if not count:
        return
    rows = ", ".join(str(i) for i in loaded.frame.index[blank][:5]) + (", ..." if count > 5 else "")
    if policy == "error":
        raise UserError(
            f"{count} row(s) of {loaded.origin} have no value in the target column {loaded.target!r} (rows {rows}); "
            "fill them in, or set data.missing_target: drop"
        )
    loaded.frame = loaded.frame[~blank.to_numpy()]
    loaded.dropped = {**loaded.dropped, "missing target": count}
    if loaded.frame.empty:
        raise UserError(f"every row of {loaded.origin} lacks a value in the target column {loaded.target!r}")


def _head(frame: pd.DataFrame, limit: int, split_column: str | None) -> pd.DataFrame:
    """The first `limit` rows; with an official split, the first rows of each split in proportion."""
    if split_column is None:
        return frame.head(limit)
    keep = (frame[split_column].value_counts(normalize=True) * limit).round().clip(lower=1)
    return frame[frame.groupby(split_column).cumcount() < frame[split_column].map(keep)]


def inside(path: Path, root: str) -> bool:
    """Whether `path`, symlinks resolved, lies inside the folder `root` (also resolved)."""
    return Path(path).resolve().is_relative_to(Path(root).resolve())


def table_data(frame: pd.DataFrame, path: Path, cfg: DataConfig) -> LoadedData:
    """A table read from a file; string columns of image file names (and columns declared as
    images) become paths relative to the file's folder, made absolute. With ``data.root`` set,
    each must resolve inside it: one outside is a `UserError` naming its column and row, and is
    never opened."""
    declared = {f.name for f in cfg.features or [] if f.type == "image"}
    kinds = {}
    for column in frame.columns:
        values = frame[column].dropna()
        if not len(values) or not isinstance(values.iloc[0], str):
            continue
        if column in declared or values.astype(str).str.lower().str.endswith(IMAGE_EXTENSIONS).all():
            frame[column] = frame[column].map(lambda v: str(path.parent / v) if isinstance(v, str) else v)
            kinds[column] = "image"
            if cfg.root is not None:
                _confine_column(frame[column], cfg.root)
    return LoadedData(frame, cfg.target or "", str(path), kinds, None)


def _confine_column(column: pd.Series, root: str) -> None:
    for row, value in column.items():
        if isinstance(value, str) and not inside(Path(value), root):
            raise UserError(f"image column {column.name!r}, row {row}: the path must stay inside the dataset's folder")
