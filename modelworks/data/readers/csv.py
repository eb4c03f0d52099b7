"""CSV and TSV: delimited text in the encoding of ``data.encoding`` (UTF-8 with or without a byte
order mark by default, or detected), LF or CRLF line ends, the delimiter named or sniffed
(`modelworks.data.encoding`)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from modelworks.config.schema import DataConfig
from modelworks.data.encoding import detect_encoding, python_codec, sniff_delimiter
from modelworks.data.sources import LoadedData, table_data
from modelworks.errors import UserError


def read_csv(location: str, cfg: DataConfig) -> LoadedData:
    path = Path(location)
    encoding = detect_encoding(path) if cfg.encoding == "auto" else cfg.encoding
    codec = python_codec(encoding)
    try:
        sep = sniff_delimiter(path, encoding) if cfg.csv_delimiter == "auto" else cfg.csv_delimiter
        frame = pd.read_csv(path, sep=sep, encoding=codec, nrows=cfg.limit, low_memory=False)
    except UnicodeDecodeError as e:
        raise UserError(_not_text(path, encoding, codec)) from e
    except pd.errors.EmptyDataError as e:
        raise UserError(f"{path} holds no rows") from e
    except pd.errors.ParserError as e:
        raise UserError(f"malformed CSV {path}: {e}".strip()) from e
    loaded = table_data(frame, path, cfg)
    loaded.encoding = encoding
    return loaded


def _not_text(path: Path, encoding: str, codec: str) -> str:
    """Where the file stops being `encoding`, and what to do about it."""
    raw = path.read_bytes()
    try:
        raw.decode(codec)
        where = ""
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        where = f" (line {line}: {e.reason})"
    name = "UTF-8" if codec == "utf-8-sig" else encoding
    return (
        f"{path} is not {name} text{where}; set data.encoding to the file's encoding "
        "(e.g. gb18030, big5, cp1252) or to auto, or save it as UTF-8"
    )
