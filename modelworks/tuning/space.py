"""The search space: config paths checked against the schema, values drawn by Optuna, and
sampled values written into an experiment.

A dimension's name is its config path (``train.lr``, ``model.hidden``, ``train.optimizer.type``).
`Space.check` runs before any trial: every path must be a field of the experiment schema (walking
into the configured member of a discriminated union), and each dimension's values — every choice,
both bounds and one interior point of a range — must give a valid experiment when written into
it. Values go into the plain config dict directly rather than through ``--set`` strings, so a
float such as 1e-05 stays a float instead of being re-read by YAML as a string.

Choices that Optuna cannot store (lists, mappings) are stored as their JSON text, e.g. ``"[64, 64]"``,
and decoded when a trial's experiment is built.
"""

from __future__ import annotations

import copy
import difflib
import json
import math
import types
import typing
from dataclasses import dataclass
from typing import Any

import optuna
from pydantic import BaseModel, ValidationError

from modelworks.config.load import validate
from modelworks.config.schema import ChoiceParam, ExperimentConfig, IntParam, LogUniformParam, TuneConfig, UniformParam
from modelworks.errors import UserError

# Top-level keys that a search cannot vary: tune writes them itself, or they are not for users.
NOT_SEARCHABLE = {
    "tune": "the search's own settings",
    "runs_dir": "set by tune (trials go to the study folder)",
    "name": "set by tune (one name per trial)",
    "compression": "written by modelworks compress",
}
# Paths whose value confines what a run may open (the platform sets them for its jobs): never varied.
CONFINING = {"data.root": "where data paths may lead", "model.allowed": "the pretrained models offered"}
_PLAIN = (type(None), bool, int, float, str)  # what Optuna stores as a categorical value
_INTERIOR = 0.381966  # a point inside a float range that is not a round number


@dataclass(frozen=True)
class Space:
    """The validated search dimensions of one experiment, by config path."""

    params: dict[str, Any]  # path -> LogUniformParam | UniformParam | IntParam | ChoiceParam
    unions: dict[str, dict[str, type[BaseModel]]]  # path of a union's `type` -> member class by type name

    @classmethod
    def build(cls, config: ExperimentConfig) -> Space:
        """Walk each path of ``config.tune.space`` through the schema; a UserError names a bad one."""
        unions = {}
        for path in config.tune.space:
            members = _walk(path, config)
            if members:
                unions[path] = members
        return cls(dict(config.tune.space), unions)

    # ---- checks before any trial
    def check(self, raw: dict[str, Any]) -> None:
        """Every value of every dimension (the others at their first value) must give a valid experiment."""
        first = {path: _samples(p)[0] for path, p in self.params.items()}
        for path, param in self.params.items():
            for value in _samples(param):
                params = {**first, path: value}
                shown = ", ".join(f"{k}={v!r}" for k, v in params.items())
                sample = self.apply(raw, params, origin=f"tune.space {path}={value!r}")
                validate(sample, f"tune.space: the experiment with {shown}")

    # ---- sampling
    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        """Draw one value per dimension; returns them decoded (lists stay lists)."""
        values = {}
        for path, p in self.params.items():
            if isinstance(p, LogUniformParam):
                values[path] = trial.suggest_float(path, *p.loguniform, log=True)
            elif isinstance(p, UniformParam):
                values[path] = trial.suggest_float(path, *p.uniform, step=p.step)
            elif isinstance(p, IntParam):
                values[path] = trial.suggest_int(path, *p.int, step=p.step, log=p.log)
            else:
                values[path] = decode(trial.suggest_categorical(path, encode_choices(p)), p)
        return values

    def grid(self) -> dict[str, list[Any]]:
        """The search space as GridSampler wants it (only choice and int dimensions; the schema checks)."""
        return {
            path: encode_choices(p) if isinstance(p, ChoiceParam) else list(range(p.int[0], p.int[1] + 1, p.step))
            for path, p in self.params.items()
        }

    def decode_params(self, params: dict[str, Any]) -> dict[str, Any]:
        """A stored trial's params (JSON text for list choices) as config values."""
        return {
            k: decode(v, self.params[k]) if isinstance(self.params.get(k), ChoiceParam) else v
            for k, v in params.items()
        }

    # ---- writing values into an experiment
    def apply(self, raw: dict[str, Any], params: dict[str, Any], origin: str = "tune.space") -> dict[str, Any]:
        """A copy of `raw` with each path set to its value.

        Setting a union's ``type`` (``train.optimizer.type: sgd``) switches the member: the section's
        keys that the new member lacks are dropped when they only repeat the old member's defaults
        (as in a fully dumped config); one set to anything else is an error, never silently lost.
        """
        raw = copy.deepcopy(raw)
        for path in params:
            parts = path.split(".")
            node = raw
            for depth, part in enumerate(parts[:-1]):
                child = node.get(part)
                if child is None:
                    child = node[part] = {}
                elif not isinstance(child, dict):
                    raise UserError(
                        f"{origin}: {'.'.join(parts[: depth + 1])} is a value in the experiment, not a section"
                    )
                node = child
            if path in self.unions:
                _switch_member(
                    node,
                    params[path],
                    self.unions[path],
                    {p for p in params if p.startswith(path[: -len("type")])},
                    path,
                    origin,
                )
            node[parts[-1]] = params[path]
        return raw


# ------------------------------------------------------------------------------------ encoding


def encode_choices(param: ChoiceParam) -> list[Any]:
    return [v if isinstance(v, _PLAIN) else json.dumps(v) for v in param.choice]


def decode(value: Any, param: ChoiceParam) -> Any:
    """The choice that `value` (as Optuna stored it) stands for."""
    for choice, stored in zip(param.choice, encode_choices(param), strict=False):
        if stored == value and type(stored) is type(value):  # 1, 1.0 and True are different choices
            return choice
    return value


def _samples(param: Any) -> list[Any]:
    """The values `check` tries: every choice; both bounds and an interior point of a range
    (the interior point catches a float range over an integer field)."""
    if isinstance(param, ChoiceParam):
        return list(param.choice)
    if isinstance(param, IntParam):
        return list(param.int)
    if isinstance(param, LogUniformParam):
        lo, hi = param.loguniform
        return [lo, hi, math.exp(math.log(lo) + _INTERIOR * (math.log(hi) - math.log(lo)))]
    lo, hi = param.uniform
    inner = lo + _INTERIOR * (hi - lo)
    if param.step:
        inner = lo + round((inner - lo) / param.step) * param.step
    return [lo, hi, inner]


# ---------------------------------------------------------------------------------- schema walk


def _walk(path: str, config: ExperimentConfig) -> dict[str, type[BaseModel]] | None:
    """Check that `path` is a field of the schema, following each union into the member that
    `config` holds — or, where the union's ``type`` is itself searched, into every member chosen.
    Returns the union's members by type name when `path` is a union's ``type``."""
    parts = path.split(".")
    if parts[0] in NOT_SEARCHABLE:
        raise UserError(f"tune.space: {path} cannot be searched ({NOT_SEARCHABLE[parts[0]]})")
    if ".".join(parts[:2]) in CONFINING:
        raise UserError(f"tune.space: {path} cannot be searched ({CONFINING['.'.join(parts[:2])]})")
    space = config.tune.space
    value: Any = config
    classes: list[type[BaseModel]] = [type(config)]  # the section(s) the next part must be a key of
    union: list[type[BaseModel]] = []  # every member of the union we are in, if any
    for depth, part in enumerate(parts):
        where = ".".join(parts[:depth])
        for cls in classes:
            if part not in cls.model_fields:
                close = difflib.get_close_matches(part, list(cls.model_fields), n=1)
                hint = f" (did you mean {'.'.join([*parts[:depth], close[0]])!r}?)" if close else ""
                kind = cls.model_fields["type"].default if "type" in cls.model_fields else None
                owner = (f"{where} of type {kind!r}" if isinstance(kind, str) else where) if where else "the experiment"
                raise UserError(f"tune.space: {path} is not a config path: {owner} has no key {part!r}{hint}")
        if depth == len(parts) - 1:
            return _members(union) if part == "type" and len(union) > 1 else None
        annotation = _strip(classes[0].model_fields[part].annotation)
        origin = typing.get_origin(annotation)
        here = ".".join(parts[: depth + 1])
        if origin in (list, tuple, dict, set):
            raise UserError(
                f"tune.space: {path} is not a config path: {here} is a {origin.__name__}, "
                "and a search path cannot go inside one"
            )
        union = _models(annotation)
        if not union:
            raise UserError(f"tune.space: {path} is not a config path: {here} is a value, not a section")
        value = getattr(value, part, None) if value is not None else None
        chosen = space.get(f"{here}.type")
        members = _members(union) or {}
        if isinstance(chosen, ChoiceParam) and path != f"{here}.type":
            classes = [members[t] for t in chosen.choice if t in members]  # unknown names: the sample check names them
        else:
            classes = [type(value) if isinstance(value, BaseModel) else union[0]]
    return None


def _members(models: list[type[BaseModel]]) -> dict[str, type[BaseModel]] | None:
    out = {}
    for m in models:
        field = m.model_fields.get("type")
        if field is not None and isinstance(field.default, str):
            out[field.default] = m
    return out or None


def _strip(annotation: Any) -> Any:
    """`X | None` and `Annotated[X, ...]` down to X (a union of models stays a union)."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(args) != 1:
                return annotation
            annotation = args[0]
        else:
            return annotation


def _models(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models a (possibly union) annotation allows, in order."""
    annotation = _strip(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return [m for a in typing.get_args(annotation) for m in _models(a)]
    return []


def _switch_member(
    section: dict, new_type: Any, members: dict[str, type[BaseModel]], searched: set[str], path: str, origin: str
) -> None:
    """Drop from `section` the keys that member `new_type` lacks, if they only restate defaults."""
    new_cls = members.get(new_type)
    if new_cls is None:
        return  # an unknown type name: validation names it
    old_type = section.get("type")
    old_cls = members.get(old_type) if old_type is not None else None
    prefix = path[: -len("type")]
    for key in [k for k in section if k != "type" and k not in new_cls.model_fields]:
        if prefix + key in searched:
            continue  # a searched key: validation of the sample reports the conflict
        if old_cls is not None and _is_default(old_cls, section, key):
            del section[key]
            continue
        raise UserError(
            f"{origin}: {prefix.rstrip('.')} sets {key}={section[key]!r}, which type {new_type!r} does not accept; "
            f"remove it from the experiment or search only types that have it"
        )


def _is_default(cls: type[BaseModel], section: dict, key: str) -> bool:
    try:
        given = cls.model_validate(section).model_dump(mode="json")[key]
        default = cls.model_validate({"type": section["type"]}).model_dump(mode="json")[key]
    except (ValidationError, KeyError):  # an invalid section: not ours to judge here (validation reports it)
        return False
    return given == default


def tune_section(config: ExperimentConfig, origin: str) -> TuneConfig:
    if config.tune is None:
        raise UserError(
            f"{origin} has no tune: section; add one with a search space, e.g.\n"
            "  tune:\n    space:\n      train.lr: {loguniform: [1.0e-4, 1.0e-1]}\n"
            "      model.hidden: {choice: [[64], [128]]}"
        )
    return config.tune
