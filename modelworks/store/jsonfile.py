"""Strict JSON files, and the typed base that every JSON artifact of a run is declared with.

Every JSON file the project writes is strict JSON: NaN and infinity (an undefined metric, a
diverged loss) are written as ``null``, never as the ``NaN`` token other parsers refuse.
An artifact is a pydantic model (`Stored`) read and written through `read_model`/`write_model`,
so a missing, damaged or mistyped file is a `UserError` that names the file.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError

from modelworks.errors import UserError
from modelworks.store.atomic import atomic_write_text


def json_safe(value: Any) -> Any:
    """``value`` with numpy types, paths and tuples made plain, and NaN/inf as ``None`` (strict JSON)."""
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json", by_alias=True)
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def is_number(value: Any) -> bool:
    """A finite int or float (not a bool): a value a metric series can hold."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def numbers(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The finite scalar metrics of `metrics`, as floats (curves, tables and undefined ones left out)."""
    return {str(k): float(v) for k, v in metrics.items() if is_number(v)}


def dumps(obj: Any, indent: int | None = 2) -> str:
    """Strict JSON text of `obj` (see `json_safe`); the ``NaN`` token is never written."""
    return json.dumps(json_safe(obj), indent=indent, ensure_ascii=False, allow_nan=False)


def write_json(path: Path, obj: Any) -> None:
    """`obj` as strict, indented JSON at `path`, written atomically."""
    atomic_write_text(path, dumps(obj) + "\n")


def read_json(path: Path) -> Any:
    """The JSON value in `path`; a missing or unparsable file is a `UserError` naming it."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise UserError(f"{path} is missing: the run folder is incomplete (did training finish?)") from e
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        where = f" (line {e.lineno})" if isinstance(e, json.JSONDecodeError) else ""
        raise UserError(f"{path} is not valid JSON{where}: the run folder is damaged") from e


class Stored(BaseModel):
    """Base of the typed artifacts. Fields are read as attributes; read-only mapping access
    (``record["key"]``, ``.get``, ``in``, ``keys()``, iterating over the keys) also works, for
    callers written against the plain dicts these files used to be."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, protected_namespaces=())

    def __getitem__(self, key: str) -> Any:
        if key not in type(self).model_fields and key not in (self.model_extra or {}):
            raise KeyError(key)
        return getattr(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key) if key in self else default

    def __contains__(self, key: object) -> bool:
        """As for a dict of what the file holds: a key it has, or a field with a value."""
        if not isinstance(key, str):
            return False
        if key in (self.model_extra or {}) or key in self.model_fields_set:
            return True
        return key in type(self).model_fields and getattr(self, key) is not None

    def keys(self) -> list[str]:
        """The keys the file holds (fields with a value, and any extra keys), as a dict's would be."""
        return [k for k in (*type(self).model_fields, *(self.model_extra or {})) if k in self]

    def __iter__(self) -> Iterator[str]:  # type: ignore[override]  # a mapping's keys, not pydantic's pairs
        return iter(self.keys())

    def to_json(self) -> dict[str, Any]:
        """The plain, strict-JSON form that is written to disk."""
        return json_safe(self.model_dump(mode="json", by_alias=True))


S = TypeVar("S", bound=Stored)


def read_model(path: Path, model: type[S]) -> S:
    """`path` parsed as `model`; a file that does not fit is a `UserError` naming it and the field."""
    raw = read_json(path)
    try:
        return model.model_validate(raw)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise UserError(f"{path} is damaged: {where}: {first['msg']}") from e


def write_model(path: Path, record: Stored) -> None:
    """`record` as strict JSON at `path`, written atomically."""
    write_json(path, record.to_json())
