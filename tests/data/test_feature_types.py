"""The contract every registered feature type keeps, run against each entry of the registry.

Built from its default config, a feature's fitter fits on a tiny training column, transforms
another column into its model input, and its state survives a JSON round trip (as in
preprocess.json) with identical output; the Preprocessor places the input under the batch key its
declared input kind names, and records it in the schema.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from pydantic import TypeAdapter

from modelworks.config.schema import Feature
from modelworks.data.feature_types import FEATURES
from modelworks.data.fitters import Fitter
from modelworks.data.preprocess import Preprocessor
from modelworks.data.schema import CATEGORICAL, NUMERIC, TARGET, input_key

# A tiny training and test column per feature type. A newly registered type fails
# `test_every_feature_type_is_covered` until it has samples here.
SAMPLES = {
    "numeric": ([1.0, 2.0, np.nan, 4.0, 5.0, 6.0], [3.0, np.nan, 10.0]),
    "categorical": (["red", "blue", "red", None, "green", "red"], ["blue", "purple", None]),
    "text": (
        ["the cat sat", "a dog ran far", "cats and dogs", "", "the end", "dog"],
        ["the cat ran", None, "unknown words here"],
    ),
    "image": (
        [np.full((4, 6), 40 * i, dtype=np.uint8) for i in range(6)],
        [np.full((4, 6), 7, dtype=np.uint8), np.zeros((4, 6), np.uint8), np.full((4, 6), 255, np.uint8)],
    ),
}
NAMES = FEATURES.names()


def test_every_feature_type_is_covered() -> None:
    missing = [name for name in NAMES if name not in SAMPLES]
    assert not missing, f"add sample columns for {missing} to SAMPLES in {__file__}"


def test_feature_unions_come_from_the_registry() -> None:
    adapter = TypeAdapter(Feature)
    for entry in FEATURES:
        parsed = adapter.validate_python({"name": "x", "type": entry.name})
        assert type(parsed) is entry.config_cls
    assert {e.meta["input"] for e in FEATURES} <= {NUMERIC, CATEGORICAL, "text", "image"}


@pytest.mark.parametrize("name", NAMES)
def test_fitter_fits_transforms_and_round_trips_its_state(name: str) -> None:
    entry = FEATURES.get(name)
    cfg = entry.config_cls(name="x")  # builds with defaults
    fitter_cls = entry.impl
    assert issubclass(fitter_cls, Fitter)
    train, test = (pd.Series(values, name="x", dtype=object) for values in SAMPLES[name])
    if name == "numeric":
        train, test = train.astype(float), test.astype(float)
    fitted = fitter_cls(cfg).fit(train)
    out = fitted.transform(test)
    assert len(out) == len(test)

    state = json.loads(json.dumps(fitted.state_, allow_nan=False))  # strict JSON, as preprocess.json
    reloaded = fitter_cls.from_state(cfg, state)
    again = reloaded.transform(test)
    np.testing.assert_array_equal(np.asarray(out), np.asarray(again))
    assert reloaded.spec() == fitted.spec()


@pytest.mark.parametrize("name", NAMES)
def test_preprocessor_places_each_type_under_its_input_kind(name: str) -> None:
    train_values, test_values = SAMPLES[name]
    frame = pd.DataFrame({"x": pd.Series(train_values, dtype=object if name != "numeric" else float)})
    frame["y"] = ["a", "b"] * 3
    features = [FEATURES.get(name).config_cls(name="x")]
    pre = Preprocessor(features, "y", "binary").fit(frame)
    kind = FEATURES.get(name).meta["input"]
    batch = pre.transform(frame)
    key = kind if kind in (NUMERIC, CATEGORICAL) else input_key(kind, "x")
    assert set(batch) == {key, TARGET}
    assert isinstance(batch[key], torch.Tensor) and batch[key].shape[0] == len(frame)

    state = json.loads(json.dumps(pre.state_dict(), allow_nan=False))
    reloaded = Preprocessor.from_state(features, "y", "binary", state)
    assert reloaded.schema_ == pre.schema_
    torch.testing.assert_close(reloaded.transform(frame)[key], batch[key])
