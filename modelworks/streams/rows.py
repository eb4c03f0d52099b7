"""Rows checked against a dataset's schema before they are appended.

A dataset version's schema (``[{"name", "dtype", "type"}]``, as `modelworks.platform.uploads.describe`
wrote it) says which columns a row must have and what each holds. JSON records must have exactly
those columns, with a number in a numeric column (or null: a missing value), text in a text
column, true/false in a boolean one; CSV text holds strings, which are read as the column's type.
Each refusal is one `Unprocessable` naming the row (counted from 1) and the column.
"""

from __future__ import annotations

import csv
import io
import json
import math
from typing import Any

from modelworks.platform.errors import Unprocessable

Schema = list[dict[str, str]]
MAX_LISTED = 8


def kind_of(dtype: str) -> str:
    """What a stored dtype holds: number, bool or text."""
    if dtype.startswith(("int", "uint", "float", "Int", "UInt", "Float")):
        return "number"
    if dtype in ("bool", "boolean"):
        return "bool"
    return "text"


def _columns(schema: Schema) -> str:
    return _names([c["name"] for c in schema])


def _names(names: list[str]) -> str:
    return ", ".join(names[:MAX_LISTED]) + (", ..." if len(names) > MAX_LISTED else "")


def check_records(records: Any, schema: Schema | None, *, start: int = 1) -> list[dict[str, Any]]:
    """``records`` (a list of JSON objects) checked against ``schema``; None: the first rows of a
    new dataset, which only need the same columns in every row. Returns the rows as dicts."""
    if not isinstance(records, list) or not records:
        raise Unprocessable("send at least one row: a JSON list of objects, one per row")
    expected = [c["name"] for c in schema] if schema is not None else None
    kinds = {c["name"]: kind_of(c["dtype"]) for c in schema or []}
    for i, record in enumerate(records, start):
        if not isinstance(record, dict):
            raise Unprocessable(f"row {i} must be an object of column: value; got {type(record).__name__}")
        if expected is None:
            expected = list(record)
            if not expected:
                raise Unprocessable(f"row {i} has no columns")
        for column in record:
            if column not in kinds and column not in expected:
                where = f"the dataset's columns are {_columns(schema)}" if schema else f"row 1 has {_names(expected)}"
                raise Unprocessable(f"row {i}: unknown column {column!r}; {where}")
        for column in expected:
            if column not in record:
                raise Unprocessable(f"row {i}: column {column!r} is missing")
            if column in kinds:
                _check_value(record[column], kinds[column], i, column)
    return records


def _check_value(value: Any, kind: str, row: int, column: str) -> None:
    if value is None:
        return
    if isinstance(value, (dict, list)):
        got = type(value).__name__
        raise Unprocessable(f"row {row}, column {column!r}: a {kind} value is expected; got a JSON {got}")
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise Unprocessable(f"row {row}, column {column!r}: a number is expected; got {json.dumps(value)}")
    elif kind == "bool":
        if not isinstance(value, bool):
            raise Unprocessable(f"row {row}, column {column!r}: true or false is expected; got {json.dumps(value)}")
    elif not isinstance(value, str):
        raise Unprocessable(
            f"row {row}, column {column!r}: text is expected; got {json.dumps(value)} (send it as a JSON string)"
        )


def typed(value: str, kind: str, row: int, column: str) -> Any:
    """A text cell (CSV, a stream entry's field) read as ``kind``; empty is a missing value."""
    if value == "":
        return None
    if kind == "number":
        try:
            number = float(value)
        except ValueError:
            raise Unprocessable(f"row {row}, column {column!r}: a number is expected; got {value!r}") from None
        if not math.isfinite(number):
            raise Unprocessable(f"row {row}, column {column!r}: a finite number is expected; got {value!r}")
        return int(number) if number.is_integer() and "." not in value and "e" not in value.lower() else number
    if kind == "bool":
        lowered = value.strip().lower()
        if lowered not in ("true", "false", "1", "0"):
            raise Unprocessable(f"row {row}, column {column!r}: true or false is expected; got {value!r}")
        return lowered in ("true", "1")
    return value


def typed_record(fields: dict[str, str], schema: Schema | None, row: int) -> dict[str, Any]:
    """A row of text cells read by the schema's types (as they are, for a new dataset)."""
    kinds = {c["name"]: kind_of(c["dtype"]) for c in schema or []}
    return {k: typed(v, kinds[k], row, k) if k in kinds else v for k, v in fields.items()}


def records_from_csv(data: bytes, schema: Schema | None) -> list[dict[str, Any]]:
    """CSV text (a header line, then rows; UTF-8, with or without a BOM) as checked records."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise Unprocessable(f"the CSV is not UTF-8 text (byte {e.start})") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if not header:
        raise Unprocessable("the CSV is empty: send a header line, then the rows")
    if len(set(header)) != len(header):
        raise Unprocessable(f"the CSV header names a column twice: {', '.join(header)}")
    records = []
    for i, cells in enumerate(reader, 1):
        if not cells:
            continue
        if len(cells) != len(header):
            raise Unprocessable(f"row {i} has {len(cells)} cells; the header has {len(header)}")
        records.append(typed_record(dict(zip(header, cells, strict=True)), schema, i))
    return check_records(records, schema)
