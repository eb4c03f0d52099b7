"""Turning frames into model batches: fit on the training split, transform any split.

`Preprocessor` follows scikit-learn: ``__init__`` stores the feature configs, `fit` learns the
per-feature state (fill values, scaling, vocabularies, tokenizers, pixel statistics) and the
target classes into ``state_`` and the model-facing `InputSchema` into ``schema_``; `transform`
builds the batch layout of `modelworks.data.schema`. The state is plain JSON (`state_dict`), saved
with the model and reloaded with `from_state` so that training and serving transform alike.

Each feature type has one ``_fit_<type>`` (column -> state) and one ``_<type>_values``
(state, column -> array) function below.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch
from tokenizers import Tokenizer

from modelworks.config.schema import CategoricalFeature, Feature, ImageFeature, NumericFeature, TextFeature
from modelworks.data.image import augment_images, image_shape, load_images
from modelworks.data.schema import CATEGORICAL, NUMERIC, TARGET, InputSchema, Task, TextSpec, image_key, text_key
from modelworks.data.text import build_tokenizer, encode, pad_token_id
from modelworks.errors import UserError


class Preprocessor:
    """Fitted feature and target transformations; see the module docstring."""

    def __init__(self, features: list[Feature], target: str, task: Task) -> None:
        self.features = list(features)
        self.target = target
        self.task = task

    # ------------------------------------------------------------------------------ fit

    def fit(self, frame: pd.DataFrame) -> Preprocessor:
        """Learn the state from `frame`, the training split only."""
        frame = frame[~self.drop_mask(frame)]
        if frame.empty:
            raise UserError("no training rows are left after dropping rows with missing values")
        fitters = {"numeric": _fit_numeric, "categorical": _fit_categorical, "text": _fit_text, "image": _fit_image}
        self.state_ = {
            "features": {f.name: fitters[f.type](f, _column(frame, f.name)) for f in self.features},
            "target": _fit_target(_column(frame, self.target), self.task),
        }
        self.schema_ = self._schema()
        self._tokenizers: dict[str, Tokenizer] = {}
        return self

    def _schema(self) -> InputSchema:
        classes = self.state_["target"]["classes"]
        state = self.state_["features"]
        by_type = {t: [f for f in self.features if f.type == t] for t in ("numeric", "categorical", "text", "image")}
        return InputSchema(
            task=self.task,
            num_classes=len(classes) if classes is not None else 1,
            class_names=classes,
            numeric=[f.name for f in by_type["numeric"]],
            categorical={f.name: len(state[f.name]["vocabulary"]) + 1 for f in by_type["categorical"]},
            text={
                f.name: TextSpec(state[f.name]["vocab_size"], f.max_length, state[f.name]["pad_id"])
                for f in by_type["text"]
            },
            image={f.name: (state[f.name]["channels"], *state[f.name]["size"]) for f in by_type["image"]},
        )

    # ------------------------------------------------------------------------- transform

    def drop_mask(self, frame: pd.DataFrame, with_target: bool = True) -> np.ndarray:
        """Rows that transform removes: a missing value where missing="drop", or a missing target."""
        mask = np.zeros(len(frame), dtype=bool)
        for f in self.features:
            if not isinstance(f, ImageFeature) and f.missing == "drop":
                mask |= _column(frame, f.name).isna().to_numpy()
        if with_target and self.target in frame.columns:
            mask |= frame[self.target].isna().to_numpy()
        return mask

    def transform(self, frame: pd.DataFrame, with_target: bool = True) -> dict[str, torch.Tensor]:
        """The batch layout of `modelworks.data.schema` for every row not in `drop_mask`."""
        if not hasattr(self, "state_"):
            raise RuntimeError("this Preprocessor is not fitted yet; call fit on the training split first")
        frame = frame[~self.drop_mask(frame, with_target)]
        state = self.state_["features"]
        numeric = [
            _numeric_values(f, state[f.name], _column(frame, f.name))
            for f in self.features
            if isinstance(f, NumericFeature)
        ]
        categorical = [
            _categorical_values(state[f.name], _column(frame, f.name))
            for f in self.features
            if isinstance(f, CategoricalFeature)
        ]
        batch: dict[str, torch.Tensor] = {}
        if numeric:
            batch[NUMERIC] = torch.from_numpy(np.stack(numeric, axis=1).astype(np.float32))  # (N, n_numeric)
        if categorical:
            batch[CATEGORICAL] = torch.from_numpy(np.stack(categorical, axis=1).astype(np.int64))  # (N, n_categorical)
        for f in self.features:
            if isinstance(f, TextFeature):
                texts = _texts(state[f.name]["fill"], _column(frame, f.name))
                batch[text_key(f.name)] = torch.from_numpy(encode(self._tokenizer(f.name), texts))  # (N, max_length)
            elif isinstance(f, ImageFeature):
                batch[image_key(f.name)] = _image_values(state[f.name], _column(frame, f.name))  # (N, C, H, W)
        if with_target:
            batch[TARGET] = _target_values(self.state_["target"], _column(frame, self.target), self.task)
        return batch

    def _tokenizer(self, name: str) -> Tokenizer:
        if name not in self._tokenizers:
            self._tokenizers[name] = Tokenizer.from_str(self.state_["features"][name]["tokenizer"])
        return self._tokenizers[name]

    def augment(self, batch: dict[str, torch.Tensor], generator: torch.Generator) -> dict[str, torch.Tensor]:
        """`batch` with random flips/shifts/rotations applied to the images whose feature asks for them."""
        out = dict(batch)
        for f in self.features:
            if isinstance(f, ImageFeature):
                out[image_key(f.name)] = augment_images(out[image_key(f.name)], f, generator)
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
        self.schema_ = InputSchema.from_json(state["schema"])
        self._tokenizers = {}
        return self


# ---------------------------------------------------------------------------------- helpers


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    if name not in frame.columns:
        raise UserError(f"column {name!r} is missing; the data has: {', '.join(map(str, frame.columns))}")
    return frame[name]


def _keys(column: pd.Series) -> pd.Series:
    """Values as category strings; 3.0 and 3 are the same key so int columns with gaps still match."""
    return column.astype(object).map(
        lambda v: str(int(v)) if isinstance(v, float) and v.is_integer() else str(v), na_action="ignore"
    )


def _jsonable(value: Any) -> Any:
    value = value.item() if isinstance(value, np.generic) else value
    return value if isinstance(value, (str, int, float, bool)) else str(value)


def _numbers(name: str, column: pd.Series) -> pd.Series:
    """`column` as float64; a value that is not a number is a UserError naming its row."""
    values = pd.to_numeric(column, errors="coerce")
    bad = values.isna() & column.notna()
    if bad.any():
        row = bad.idxmax()
        raise UserError(
            f"column {name!r} must hold numbers but row {row} holds {column[row]!r}; "
            "fix the value or declare the column categorical or text in data.features"
        )
    return values.astype(np.float64)


# -------------------------------------------------------------------------------- numeric


def _fit_numeric(f: NumericFeature, column: pd.Series) -> dict[str, Any]:
    present = _numbers(f.name, column).dropna()
    if present.empty and (f.missing in ("mean", "median", "mode") or f.scaling != "none"):
        raise UserError(f"numeric column {f.name!r} has no values in the training split")
    fill = {
        "mean": lambda: present.mean(),
        "median": lambda: present.median(),
        "mode": lambda: present.mode().iloc[0],
        "constant": lambda: f.fill_value,
        "drop": lambda: None,
    }[f.missing]()
    center, scale = {
        "standard": lambda: (present.mean(), present.std(ddof=0)),
        "minmax": lambda: (present.min(), present.max() - present.min()),
        "none": lambda: (0.0, 1.0),
    }[f.scaling]()
    scale = float(scale) if np.isfinite(scale) and scale > 0 else 1.0  # a constant column stays 0
    return {"fill": None if fill is None else float(fill), "center": float(center), "scale": scale}


def _numeric_values(f: NumericFeature, state: dict[str, Any], column: pd.Series) -> np.ndarray:
    values = _numbers(f.name, column)
    if state["fill"] is not None:
        values = values.fillna(state["fill"])
    return ((values - state["center"]) / state["scale"]).to_numpy(dtype=np.float64)  # (N,)


# ---------------------------------------------------------------------------- categorical


def _fit_categorical(f: CategoricalFeature, column: pd.Series) -> dict[str, Any]:
    keys = _keys(column)
    fill = {
        "mode": lambda: keys.mode().iloc[0] if keys.notna().any() else f.fill_value,
        "constant": lambda: f.fill_value,
        "drop": lambda: None,
    }[f.missing]()
    counts = keys.fillna(fill).value_counts() if fill is not None else keys.value_counts()
    counts = counts.sort_index(kind="stable").sort_values(ascending=False, kind="stable")  # ties in name order
    return {"fill": fill, "vocabulary": [str(v) for v in counts.index[: f.max_categories]]}


def _categorical_values(state: dict[str, Any], column: pd.Series) -> np.ndarray:
    keys = _keys(column)
    if state["fill"] is not None:
        keys = keys.fillna(state["fill"])
    return pd.Index(state["vocabulary"]).get_indexer(keys) + 1  # (N,) 0 = unknown


# ----------------------------------------------------------------------------------- text


def _texts(fill: str | None, column: pd.Series) -> list[str]:
    """The strings of `column`, missing ones filled (or, with missing="drop", already dropped)."""
    return (column.fillna(fill) if fill is not None else column.dropna()).astype(str).tolist()


def _fit_text(f: TextFeature, column: pd.Series) -> dict[str, Any]:
    fill = f.fill_value if f.missing == "constant" else None
    tokenizer = build_tokenizer(f, _texts(fill, column))
    return {
        "fill": fill,
        "tokenizer": tokenizer.to_str(),
        "vocab_size": tokenizer.get_vocab_size(),
        "pad_id": pad_token_id(tokenizer),
    }


# ---------------------------------------------------------------------------------- image


def _images(column: pd.Series, channels: int, size: tuple[int, int]) -> torch.Tensor:
    if column.isna().any():
        raise UserError(f"image column {column.name!r} has no image in row {column.isna().idxmax()}")
    return load_images(column.tolist(), channels, size)


def _fit_image(f: ImageFeature, column: pd.Series) -> dict[str, Any]:
    """Channels and size (the config's, else the first image's) and the per-channel pixel statistics."""
    c, h, w = image_shape(column.dropna().iloc[0])
    channels, size = f.channels or c, tuple(f.size or (h, w))
    x = _images(column, channels, size)  # (N, C, H, W)
    mean, std = (
        (x.mean(dim=(0, 2, 3)), x.std(dim=(0, 2, 3)).clamp_min(1e-6))
        if f.normalize
        else (torch.zeros(channels), torch.ones(channels))
    )
    return {"channels": channels, "size": list(size), "mean": mean.tolist(), "std": std.tolist()}


def _image_values(state: dict[str, Any], column: pd.Series) -> torch.Tensor:
    x = _images(column, state["channels"], tuple(state["size"]))  # (N, C, H, W)
    mean, std = torch.tensor(state["mean"]), torch.tensor(state["std"])
    return x.sub_(mean[:, None, None]).div_(std[:, None, None])


# --------------------------------------------------------------------------------- target


def _fit_target(column: pd.Series, task: Task) -> dict[str, Any]:
    """Classification: the training classes, sorted (numerically when they are all numbers)."""
    if task == "regression":
        _numbers(str(column.name), column)
        return {"classes": None, "values": None}
    present = column.dropna()
    keys = _keys(present)
    first = dict(zip(keys, present))  # key -> an original value, for decode_target
    classes = sorted(first, key=lambda k: (0, float(k), k) if _is_number(k) else (1, 0.0, k))
    if len(classes) < 2 or (task == "binary" and len(classes) != 2):
        raise UserError(
            f"target column {column.name!r} has {len(classes)} class(es) in the training split "
            f"({', '.join(classes[:10])}); task {task} needs {'exactly 2' if task == 'binary' else 'at least 2'}"
        )
    return {"classes": classes, "values": [_jsonable(first[k]) for k in classes]}


def _is_number(key: str) -> bool:
    try:
        return bool(np.isfinite(float(key)))
    except ValueError:
        return False


def _target_values(state: dict[str, Any], column: pd.Series, task: Task) -> torch.Tensor:
    """Binary: float32 0./1.; multiclass: int64 class index; regression: float32 value."""
    if task == "regression":
        return torch.from_numpy(_numbers(str(column.name), column).to_numpy(dtype=np.float32))
    keys = _keys(column)
    index = pd.Index(state["classes"]).get_indexer(keys)
    if (index < 0).any():
        label = column.iloc[int(np.argmax(index < 0))]
        raise UserError(
            f"target column {column.name!r} holds the label {label!r}, which the training split does not have; "
            f"known classes: {', '.join(state['classes'][:20])}"
        )
    return torch.from_numpy(index.astype(np.float32 if task == "binary" else np.int64))
