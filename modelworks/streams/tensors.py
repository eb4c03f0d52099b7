"""Rows rebuilt from Open Inference Protocol input tensors, so that /infer requests can be logged.

An /infer request carries the model's input tensors, which the client built from raw columns as
`modelworks.exporting.interface.describe_inputs` says. Feedback needs the raw row back, and the
fitted preprocessing undoes it: a numeric column is the shortest decimal that the preprocessing
turns into the very float32 sent (``value * scale + center``, rounded no further than the tensor
kept: 5.1, not 5.0999999); a categorical column is the vocabulary entry of its
index, as text (read by the dataset's column type when the row is appended, `cells_typed`); index
0, a value the model did not know, is logged as missing. Tokens and resized pixels cannot be turned
back into what was sent: for a model with text or image inputs `records` gives None and its /infer
requests are not logged (its /predict requests, which carry the raw record, are).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from modelworks.data.schema import CATEGORICAL, NUMERIC
from modelworks.streams.rows import Schema, kind_of, typed

if TYPE_CHECKING:  # the serving process has it loaded; the platform server reading feedback needs no torch
    from modelworks.serve.model import ServedModel


def records(model: ServedModel, inputs: Mapping[str, np.ndarray]) -> list[dict[str, Any]] | None:
    """The raw rows of a batch of input tensors, in the served model's feature order; None when its
    inputs cannot be undone (text, images)."""
    schema = model.schema
    if schema.text or schema.image:
        return None
    fitters = model.preprocessor.fitters_
    columns: dict[str, list[Any]] = {}
    if schema.numeric:
        values = np.asarray(inputs[NUMERIC], dtype=np.float32)  # (batch, n_numeric)
        for j, name in enumerate(schema.numeric):
            state = fitters[name].state_
            columns[name] = [_number(z, state["center"], state["scale"]) for z in values[:, j]]
    if schema.categorical:
        ids = np.asarray(inputs[CATEGORICAL])  # (batch, n_categorical)
        for j, name in enumerate(schema.categorical):
            vocabulary = fitters[name].state_["vocabulary"]
            columns[name] = [vocabulary[i - 1] if 0 < i <= len(vocabulary) else None for i in ids[:, j].tolist()]
    order = [f.name for f in model.config.data.features if f.name in columns]
    n = len(columns[order[0]]) if order else 0
    return [{name: columns[name][i] for name in order} for i in range(n)]


def _number(z: np.float32, center: float, scale: float) -> float | None:
    """The shortest decimal whose scaled float32 is ``z`` (as `NumericFitter.transform` scales it)."""
    value = float(z) * scale + center
    if not math.isfinite(value):
        return None
    for digits in range(1, 18):
        shortest = float(f"{value:.{digits}g}")
        if np.float32((shortest - center) / scale) == z:
            return shortest
    return value


def cells_typed(record: dict[str, Any], schema: Schema | None) -> dict[str, Any]:
    """A rebuilt row's text cells read as its dataset's number or bool columns (a categorical
    column of codes: ``"3"`` -> 3); other values as they are."""
    kinds = {c["name"]: kind_of(c["dtype"]) for c in schema or []}
    return {
        k: typed(v, kinds[k], 1, k) if isinstance(v, str) and kinds.get(k, "text") != "text" else v
        for k, v in record.items()
    }
