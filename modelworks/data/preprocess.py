"""Turning frames into model batches: fit on the training split, transform any split.

`Preprocessor` follows scikit-learn: ``__init__`` stores the feature configs, `fit` learns the
per-feature state (fill values, scaling, vocabularies, tokenizers, pixel statistics) and the
target classes into ``state_`` and the model-facing `InputSchema` into ``schema_``; `transform`
builds the batch layout of `modelworks.data.schema`. The state is plain JSON (`state_dict`), saved
with the model and reloaded with `from_state` so that training and serving transform alike.

Each feature type's state and transform live in its fitter (`modelworks.data.fitters`), found
through the feature-type registry (`modelworks.data.feature_types.FEATURES`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch

from modelworks.data.batches import TensorBatches
from modelworks.data.feature_types import FEATURES, Feature
from modelworks.data.fitters import Fitter, as_numbers, category_keys
from modelworks.data.schema import CATEGORICAL, NUMERIC, TARGET, InputSchema, Task, input_key
from modelworks.errors import UserError

STACKED = {NUMERIC: np.float32, CATEGORICAL: np.int64}  # input kinds stacked into one (N, n) tensor


class Preprocessor:
    """Fitted feature and target transformations; see the module docstring."""

    def __init__(self, features: list[Feature], target: str, task: Task, classes: list[Any] | None = None) -> None:
        self.features = list(features)
        self.target = target
        self.task = task
        self.classes = classes  # declared up front (data.classes); None: the training split's

    # ------------------------------------------------------------------------------ fit

    def fit(self, frame: pd.DataFrame) -> Preprocessor:
        """Learn the state from `frame`, the training split only."""
        frame = frame[~self.drop_mask(frame)]
        if frame.empty:
            raise UserError("no training rows are left after dropping rows with missing values")
        self.fitters_ = {f.name: _fitter_class(f)(f).fit(_column(frame, f.name)) for f in self.features}
        self.state_ = {
            "features": {name: fitter.state_ for name, fitter in self.fitters_.items()},
            "target": _fit_target(_column(frame, self.target), self.task, self.classes),
        }
        self.schema_ = self._schema()
        return self

    def _schema(self) -> InputSchema:
        classes = self.state_["target"]["classes"]
        inputs: dict[str, Any] = {NUMERIC: [], CATEGORICAL: {}, "text": {}, "image": {}}
        for f in self.features:
            kind = _input_kind(f)
            if kind == NUMERIC:
                inputs[NUMERIC].append(f.name)
            else:
                inputs[kind][f.name] = self.fitters_[f.name].spec()
        return InputSchema(
            task=self.task,
            num_classes=len(classes) if classes is not None else 1,
            class_names=classes,
            **inputs,
        )

    # ------------------------------------------------------------------------- transform

    def drop_mask(self, frame: pd.DataFrame, with_target: bool = True) -> np.ndarray:
        """Rows that transform removes: a missing value where missing="drop", or a missing target."""
        mask = np.zeros(len(frame), dtype=bool)
        for f in self.features:
            if getattr(f, "missing", None) == "drop":
                mask |= _column(frame, f.name).isna().to_numpy()
        if with_target and self.target in frame.columns:
            mask |= frame[self.target].isna().to_numpy()
        return mask

    def transform(self, frame: pd.DataFrame, with_target: bool = True, stored: bool = False) -> dict[str, torch.Tensor]:
        """The batch layout of `modelworks.data.schema` for every row not in `drop_mask`.

        With `stored`, each feature is in the form training holds in memory (uint8 pixels for images
        with ``storage: uint8``); `decode` turns a batch of it into the model's input.
        """
        if not hasattr(self, "state_"):
            raise RuntimeError("this Preprocessor is not fitted yet; call fit on the training split first")
        frame = frame[~self.drop_mask(frame, with_target)]
        stacked: dict[str, list[np.ndarray]] = {kind: [] for kind in STACKED}
        own: dict[str, torch.Tensor] = {}
        for f in self.features:
            fitter = self.fitters_[f.name]
            values = (fitter.store if stored else fitter.transform)(_column(frame, f.name))
            kind = _input_kind(f)
            if kind in STACKED:
                stacked[kind].append(values)  # (N,)
            else:
                own[input_key(kind, f.name)] = torch.as_tensor(values)  # (N, ...)
        batch = {
            kind: torch.from_numpy(np.stack(columns, axis=1).astype(STACKED[kind]))  # (N, n_kind)
            for kind, columns in stacked.items()
            if columns
        }
        batch.update(own)
        if with_target:
            batch[TARGET] = _target_values(self.state_["target"], _column(frame, self.target), self.task)
        return batch

    def batches(self, frame: pd.DataFrame) -> TensorBatches:
        """`frame` transformed and held as each feature's storage says, decoded batch by batch as drawn."""
        return TensorBatches(self.transform(frame, stored=True), decode=self.decode)

    def decode(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """A batch of ``transform(..., stored=True)`` output as the model takes it (`transform`'s output)."""
        out = dict(batch)
        for f in self.features:
            kind = _input_kind(f)
            if kind not in STACKED:
                key = input_key(kind, f.name)
                out[key] = self.fitters_[f.name].decode(out[key])
        return out

    def augment(self, batch: dict[str, torch.Tensor], generator: torch.Generator) -> dict[str, torch.Tensor]:
        """`batch` with each feature's random training-time augmentation (image flips, shifts, rotations)."""
        out = dict(batch)
        for f in self.features:
            kind = _input_kind(f)
            if kind not in STACKED:
                key = input_key(kind, f.name)
                out[key] = self.fitters_[f.name].augment(out[key], generator)
        return out

    def decode_target(self, y: np.ndarray) -> np.ndarray:
        """Class indices -> the original labels (classification); values unchanged (regression)."""
        values = self.state_["target"]["values"]
        if values is None:
            return np.asarray(y)
        return np.asarray(values, dtype=object)[np.asarray(y).astype(np.int64)]

    # ----------------------------------------------------------------------------- state

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to transform later, as JSON-serializable values."""
        return {"features": self.state_["features"], "target": self.state_["target"], "schema": self.schema_.to_json()}

    @classmethod
    def from_state(cls, features: list[Feature], target: str, task: Task, state: dict[str, Any]) -> Preprocessor:
        """A fitted Preprocessor rebuilt from `state_dict()` output."""
        self = cls(features, target, task)
        missing = [f.name for f in features if f.name not in state["features"]]
        if missing:
            raise UserError(
                f"the saved preprocessing state has no feature(s) {', '.join(missing)}; it belongs to another config"
            )
        self.state_ = {"features": state["features"], "target": state["target"]}
        self.fitters_ = {f.name: _fitter_class(f).from_state(f, state["features"][f.name]) for f in features}
        self.schema_ = InputSchema.from_json(state["schema"])
        return self


# ---------------------------------------------------------------------------------- helpers


def _fitter_class(f: Feature) -> type[Fitter]:
    return FEATURES.get(f.type, where=f"data.features ({f.name})").impl


def _input_kind(f: Feature) -> str:
    return FEATURES.get(f.type).meta["input"]


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    if name not in frame.columns:
        raise UserError(f"column {name!r} is missing; the data has: {', '.join(map(str, frame.columns))}")
    return frame[name]


def _jsonable(value: Any) -> Any:
    value = value.item() if isinstance(value, np.generic) else value
    return value if isinstance(value, (str, int, float, bool)) else str(value)


# --------------------------------------------------------------------------------- target


def _fit_target(column: pd.Series, task: Task, declared: list[Any] | None = None) -> dict[str, Any]:
    """Classification: the declared classes in their order, else the training classes, sorted
    (numerically when they are all numbers)."""
    if task == "regression":
        as_numbers(str(column.name), column)
        return {"classes": None, "values": None}
    present = column.dropna()
    if declared is not None:
        state = {"classes": list(category_keys(pd.Series(declared, dtype=object))), "values": declared}
        _target_values(state, present, task)  # every training label must be declared
        if len(declared) < 2 or (task == "binary" and len(declared) != 2):
            raise UserError(f"data.classes declares {len(declared)} class(es); task {task} needs {_needs(task)}")
        return state
    keys = category_keys(present)
    first = dict(zip(keys, present, strict=False))  # key -> an original value, for decode_target
    classes = sorted(first, key=lambda k: (0, float(k), k) if _is_number(k) else (1, 0.0, k))
    if len(classes) < 2 or (task == "binary" and len(classes) != 2):
        raise UserError(
            f"target column {column.name!r} has {len(classes)} class(es) in the training split "
            f"({', '.join(classes[:10])}); task {task} needs {_needs(task)}"
        )
    return {"classes": classes, "values": [_jsonable(first[k]) for k in classes]}


def _needs(task: Task) -> str:
    return "exactly 2" if task == "binary" else "at least 2"


def _is_number(key: str) -> bool:
    try:
        return bool(np.isfinite(float(key)))
    except ValueError:
        return False


def _target_values(state: dict[str, Any], column: pd.Series, task: Task) -> torch.Tensor:
    """Binary: float32 0./1.; multiclass: int64 class index; regression: float32 value."""
    if task == "regression":
        return torch.from_numpy(as_numbers(str(column.name), column).to_numpy(dtype=np.float32))
    keys = category_keys(column)
    index = pd.Index(state["classes"]).get_indexer(keys)
    if (index < 0).any():
        label = column.iloc[int(np.argmax(index < 0))]
        raise UserError(
            f"target column {column.name!r} holds the label {label!r}, which is not one of the model's classes "
            f"(the training split's, the parent run's for a continuation, or data.classes); "
            f"known classes: {', '.join(state['classes'][:20])}; declare every class up front in data.classes"
        )
    return torch.from_numpy(index.astype(np.float32 if task == "binary" else np.int64))
