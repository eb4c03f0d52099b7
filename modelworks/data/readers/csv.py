"""CSV and TSV: delimited text in the encoding of ``data.encoding`` (UTF-8 with or without a byte
order mark by default, or detected), LF or CRLF line ends, the delimiter named or sniffed
(`modelworks.data.encoding`)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from modelworks.config.schema import DataConfig
from modelworks.data.encoding import detect_encoding, not_text, python_codec, sniff_delimiter
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
        raise UserError(not_text(path, encoding, codec)) from e
    except pd.errors.EmptyDataError as e:
        raise UserError(f"{path} holds no rows") from e
    except pd.errors.ParserError as e:
        raise UserError(f"malformed CSV {path}: {e}".strip()) from e
    loaded = table_data(frame, path, cfg)
    loaded.encoding = encoding
    return loaded
