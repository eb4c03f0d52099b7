"""Experiment files in, one validated `ExperimentConfig` out, with errors that name the key path."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, get_args

import yaml
from pydantic import BaseModel, ValidationError

from modelworks.config.schema import ExperimentConfig
from modelworks.errors import UserError


def read_yaml(path: Path) -> dict[str, Any]:
    """`yaml.safe_load` of an experiment file (UTF-8 with or without BOM), as a mapping."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError as e:
        raise UserError(f"config file {path} does not exist") from e
    except UnicodeDecodeError as e:
        raise UserError(f"config file {path} is not UTF-8 text (byte {e.start})") from e
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise UserError(f"config file {path}{where}: invalid YAML: {getattr(e, 'problem', e)}") from e
    if not isinstance(raw, dict):
        raise UserError(f"config file {path} must hold a mapping with sections data, model, train, ...")
    return raw


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``a.b.c=value`` overrides (value parsed as YAML) to a copy of `raw`."""
    raw = yaml.safe_load(yaml.safe_dump(raw))  # deep copy of plain data
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--set {item!r}: expected KEY.PATH=VALUE, e.g. train.lr=0.003")
        parts = key.strip().split(".")
        node = raw
        for depth, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise UserError(f"--set {item!r}: {'.'.join(parts[: depth + 1])} is a value, not a section")
            node = child
        node[parts[-1]] = _override_value(value)
    return raw


def _override_value(value: str) -> Any:
    """An override's value parsed as YAML; text that is not a YAML value (a tab typed on the command
    line, an unclosed ``[``) stays the string it is, for the schema to accept or name the key."""
    if not value:
        return None
    if not value.strip():
        return value
    try:
        return yaml.safe_load(value)
    except yaml.YAMLError:
        return value


MAX_PROBLEMS = 20  # listed with their key path (and a "did you mean"); the rest only counted


def validate(raw: dict[str, Any], origin: str, schema: type[BaseModel] = ExperimentConfig) -> BaseModel:
    """Validate `raw` against `schema`; the first `MAX_PROBLEMS` problems are listed with their
    key path and value (a config with 20,000 unknown keys costs 20 suggestions, not 20,000)."""
    try:
        return schema.model_validate(raw)
    except ValidationError as e:
        errors = e.errors(include_url=False, include_context=True, include_input=True)
        lines = list(dict.fromkeys(_describe(err, raw) for err in errors[:MAX_PROBLEMS]))
        if len(errors) > MAX_PROBLEMS:
            lines.append(f"... and {len(errors) - MAX_PROBLEMS} more problems")
        raise UserError(f"{origin}: invalid config\n  " + "\n  ".join(lines)) from e


def load_config(path: Path, overrides: list[str] = ()) -> ExperimentConfig:
    raw = apply_overrides(read_yaml(path), list(overrides))
    return validate(raw, str(path))


def _describe(err: dict[str, Any], raw: dict[str, Any]) -> str:
    """One line per pydantic error: the path as the user wrote it (union tags dropped)."""
    path, node = [], raw
    loc = err["loc"]
    for i, part in enumerate(loc):
        if isinstance(node, dict) and part in node:
            node = node[part]
            path.append(str(part))
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
            path.append(str(part))
        elif i == len(loc) - 1 and err["type"] in ("extra_forbidden", "missing"):
            path.append(str(part))
        # otherwise `part` is a union member's tag, not a key the user wrote
    where = ".".join(path) or "(top level)"
    if err["type"] == "extra_forbidden":
        return f"{where}: unknown key{_suggest(path[-1], err)}"
    if err["type"] == "missing":
        return f"{where}: required key is missing"
    return f"{where}: {err['msg']} (got {_short(err.get('input'))})"


def _suggest(key: str, err: dict[str, Any]) -> str:
    known = err.get("ctx", {}).get("known") if isinstance(err.get("ctx"), dict) else None
    close = difflib.get_close_matches(key, known or _ALL_KEYS, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _collect_keys(model: type[BaseModel], out: set[str]) -> set[str]:
    for name, field in model.model_fields.items():
        out.add(name)
        for arg in _model_types(field.annotation):
            if arg.__name__ not in out:
                out.add(arg.__name__)
                _collect_keys(arg, out)
    return out


def _model_types(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [t for a in get_args(annotation) for t in _model_types(a)]


_ALL_KEYS = sorted(k for k in _collect_keys(ExperimentConfig, set()) if not k[0].isupper())
