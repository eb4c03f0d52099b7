"""CSV: UTF-8 text with or without a byte order mark; LF or CRLF line ends."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from modelworks.config.schema import DataConfig
from modelworks.data.sources import LoadedData, table_data
from modelworks.errors import UserError


def read_csv(location: str, cfg: DataConfig) -> LoadedData:
    path = Path(location)
    try:
        frame = pd.read_csv(path, sep=cfg.csv_delimiter, encoding="utf-8-sig", nrows=cfg.limit, low_memory=False)
    except UnicodeDecodeError:
        raw = path.read_bytes()
        try:
            raw.decode("utf-8-sig")
        except UnicodeDecodeError as e:
            line = raw[: e.start].count(b"\n") + 1
            raise UserError(f"{path} is not UTF-8 text (line {line}: {e.reason}); save it as UTF-8") from e
        raise
    except pd.errors.EmptyDataError as e:
        raise UserError(f"{path} holds no rows") from e
    except pd.errors.ParserError as e:
        raise UserError(f"malformed CSV {path}: {e}".strip()) from e
    return table_data(frame, path, cfg)
