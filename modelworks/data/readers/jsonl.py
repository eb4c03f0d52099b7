"""JSON Lines: one JSON object per line in the encoding of ``data.encoding``; blank lines are skipped."""

from __future__ import annotations

import codecs
import json
from pathlib import Path

import pandas as pd

from modelworks.config.schema import DataConfig
from modelworks.data.encoding import detect_encoding, not_text, python_codec
from modelworks.data.sources import LoadedData, table_data
from modelworks.errors import UserError


def read_jsonl(location: str, cfg: DataConfig) -> LoadedData:
    path = Path(location)
    rows = []
    encoding = detect_encoding(path) if cfg.encoding == "auto" else cfg.encoding
    decoder = codecs.getincrementaldecoder(python_codec(encoding))()  # a BOM is skipped once, at the start
    with path.open("rb") as f:
        for number, raw in enumerate(f, start=1):
            try:
                line = decoder.decode(raw)
            except UnicodeDecodeError as e:
                raise UserError(not_text(path, encoding, python_codec(encoding))) from e
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
    loaded = table_data(pd.DataFrame.from_records(rows), path, cfg)
    loaded.encoding = encoding
    return loaded
