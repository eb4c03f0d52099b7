"""Choosing the task and the feature types from the data when the config says "auto".

Rules, in order, for a column without an explicit type:

1. the type the source knows (image folders, IDX and built-in images, fortune texts);
2. a boolean column -> categorical; any other numeric column -> numeric (integer codes with
   few values stay numeric too: declare them categorical in data.features when they are labels);
3. a column of arrays or of image file names -> image;
4. strings averaging more than 30 characters, or more than 3 words with over 20% distinct
   values, -> text; every CJK character counts as a word, since Chinese and Japanese are written
   without spaces ("这个产品非常好" is 7 words, "北京市" is 3); other strings -> categorical.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pandas.api import types

from modelworks.config.schema import DataConfig
from modelworks.data.feature_types import FEATURES, AutoFeature, Feature
from modelworks.data.schema import Task
from modelworks.data.sources import IMAGE_EXTENSIONS, LoadedData
from modelworks.errors import UserError

CJK = r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]"  # kana, CJK ideographs, Hangul
MAX_CLASSES_AUTO = 20  # more distinct numeric target values than this -> regression


def infer_task(y: pd.Series, requested: str, classes: list | None = None) -> Task:
    """The task for target `y`: `requested` checked against the data, or inferred when "auto"
    (from the `classes` declared, when they are)."""
    values = y.dropna()
    n = values.nunique()
    if classes is not None and requested != "regression":  # the classes are known: a window may hold only some
        return ("binary" if len(classes) == 2 else "multiclass") if requested == "auto" else requested
    numeric = types.is_numeric_dtype(values) and not types.is_bool_dtype(values)
    if requested == "auto":
        non_integer = numeric and not np.all(np.mod(values.to_numpy(dtype=float), 1) == 0)
        requested = (
            "regression" if numeric and (n > MAX_CLASSES_AUTO or non_integer) else "binary" if n == 2 else "multiclass"
        )
    if requested == "regression":
        if not numeric:
            raise UserError(
                f"target column {y.name!r} holds non-numeric values (e.g. {values.iloc[0]!r}); "
                "regression needs numbers: set data.task to binary or multiclass"
            )
        return "regression"
    if n < 2:
        raise UserError(
            f"target column {y.name!r} holds a single class {values.iloc[0] if n else None!r}; "
            "a classifier needs at least two"
        )
    if requested == "binary" and n != 2:
        raise UserError(
            f"data.task binary needs exactly 2 classes; target column {y.name!r} has {n}: set data.task to multiclass"
        )
    return requested  # type: ignore[return-value]


def infer_features(loaded: LoadedData, cfg: DataConfig) -> list[Feature]:
    """Typed configs for cfg.features (resolving "auto" entries) or for every usable column."""
    frame = loaded.frame
    columns = [str(c) for c in frame.columns]
    for name in [*cfg.exclude, *(f.name for f in cfg.features or [])]:
        if name not in columns:
            raise UserError(f"column {name!r} is not in {loaded.origin}; columns: {', '.join(columns)}")
    if cfg.features is None:
        skip = {loaded.target, loaded.split_column, cfg.split.column, *cfg.exclude}
        entries = [AutoFeature(name=c) for c in columns if c not in skip]
    else:
        entries = list(cfg.features)
    names = [f.name for f in entries]
    if len(set(names)) != len(names):
        raise UserError(
            f"data.features lists a column twice: {', '.join(sorted({n for n in names if names.count(n) > 1}))}"
        )
    if loaded.target in names:
        raise UserError(f"the target column {loaded.target!r} cannot also be a feature; remove it from data.features")
    if not entries:
        raise UserError(f"{loaded.origin} has no feature columns besides the target {loaded.target!r}")
    return [
        FEATURES.get(infer_type(frame[f.name], loaded.kinds)).config_cls(name=f.name)
        if isinstance(f, AutoFeature)
        else f
        for f in entries
    ]


def infer_type(column: pd.Series, kinds: dict[str, str]) -> str:
    """The feature type of one column by the rules in the module docstring."""
    if column.name in kinds:
        return kinds[column.name]
    if types.is_bool_dtype(column):
        return "categorical"
    if types.is_numeric_dtype(column):
        return "numeric"
    values = column.dropna()
    if len(values) and isinstance(values.iloc[0], np.ndarray):
        return "image"
    text = values.astype(str)
    if len(text) and text.str.lower().str.endswith(IMAGE_EXTENSIONS).all():
        return "image"
    if len(text):
        words = text.str.replace(CJK, " ", regex=True).str.split().str.len() + text.str.count(CJK)
        if text.str.len().mean() > 30 or (words.mean() > 3 and text.nunique() > 0.2 * len(text)):
            return "text"
    return "categorical"
