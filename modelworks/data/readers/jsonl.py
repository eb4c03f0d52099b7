"""JSON Lines: one JSON object per line; blank lines are skipped."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from modelworks.config.schema import DataConfig
from modelworks.data.sources import LoadedData, table_data
from modelworks.errors import UserError


def read_jsonl(location: str, cfg: DataConfig) -> LoadedData:
    path = Path(location)
    rows = []
    with path.open("rb") as f:
        for number, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as e:
                raise UserError(f"{path} is not UTF-8 text (line {number}: {e.reason}); save it as UTF-8") from e
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise UserError(f"{path} line {number} is not valid JSON: {e.msg}") from e
            if not isinstance(row, dict):
                raise UserError(f"{path} line {number} must be a JSON object; got {type(row).__name__}")
            rows.append(row)
            if cfg.limit is not None and len(rows) >= cfg.limit:
                break
    return table_data(pd.DataFrame.from_records(rows), path, cfg)
