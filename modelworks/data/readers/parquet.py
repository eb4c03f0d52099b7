"""Parquet, read with pyarrow."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow

from modelworks.config.schema import DataConfig
from modelworks.data.sources import LoadedData, table_data
from modelworks.errors import UserError


def read_parquet(location: str, cfg: DataConfig) -> LoadedData:
    path = Path(location)
    try:
        frame = pd.read_parquet(path)
    except (pyarrow.ArrowException, OSError, ValueError, KeyError, TypeError) as e:
        # pyarrow raises ArrowInvalid or OSError for a damaged file; pandas raises ValueError (JSON,
        # UTF-8), KeyError or TypeError when the pandas metadata stored in the file is damaged
        raise UserError(f"cannot read parquet file {path}: {e}") from e
    return table_data(frame, path, cfg)
