"""The contract every compression method keeps, run for each entry of the registry.

A method applies to a tiny trained run; the new run reopens with `load_run` (the method rebuilds
its model from the stored tensors) and predicts what the in-memory compressed model predicted;
its options round-trip through config.yaml and compression.json; an unknown or bad option is a
UserError naming the key and the method; compression.json is strict JSON that parses with its
typed model. A new method is picked up here by its declaration alone; if it has required options,
add a small value for them to `CONTRACT_OPTIONS`.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import modelworks
from modelworks.compression import COMPRESSORS, MethodOptions, parse_options
from modelworks.compression.compress import compress_run
from modelworks.compression.method import Method
from modelworks.errors import UserError
from modelworks.store.compression import CompressionStats, read_compression
from modelworks.store.files import COMPRESSION_JSON

# Small settings so that each method runs in seconds; {} for a method whose defaults are small.
CONTRACT_OPTIONS = {
    "quantize-static": {"calibration_batches": 2, "calibration_batch_size": 16},
    "prune": {"amount": 0.3, "finetune_epochs": 1},
    "distill": {"student": {"type": "mlp", "hidden": [8]}, "epochs": 1},
}
METHODS = COMPRESSORS.names()


def _no_constants(name: str):
    raise ValueError(f"{COMPRESSION_JSON} holds {name}: not strict JSON")


@pytest.fixture(scope="module")
def compressed(iris_mlp):
    """Each method applied once to the iris parent, on first use."""
    made: dict[str, modelworks.Run] = {}

    def get(method: str) -> modelworks.Run:
        if method not in made:
            made[method] = compress_run(iris_mlp.path, method, CONTRACT_OPTIONS.get(method, {}))
        return made[method]

    return get


def test_every_method_is_declared_with_its_facts() -> None:
    assert METHODS == ["distill", "half", "prune", "quantize-dynamic", "quantize-static"]
    for entry in COMPRESSORS:
        assert issubclass(entry.config_cls, MethodOptions)
        assert isinstance(entry.impl, Method), f"{entry.name}: {entry.impl_path} is not a Method"
        assert {"needs_float_parent", "makes_float"} <= set(entry.meta)


@pytest.mark.parametrize("method", METHODS)
def test_applies_reopens_and_predicts(compressed, iris_frame, method: str) -> None:
    child = compressed(method)
    assert child.config.compression.method == method
    test = child.splits()["test"]
    again = modelworks.load_run(child.path)
    np.testing.assert_array_equal(again.outputs(test), child.outputs(test))
    predictions = again.predict(iris_frame)
    assert len(predictions) == len(iris_frame)
    assert set(predictions["prediction"]) <= set(child.schema.class_names)


@pytest.mark.parametrize("method", METHODS)
def test_compression_json_is_strict_and_typed(compressed, method: str) -> None:
    child = compressed(method)
    raw = json.loads((child.path / COMPRESSION_JSON).read_text(), parse_constant=_no_constants)
    stats = read_compression(child.path)
    assert stats == CompressionStats.model_validate(raw)
    assert stats.method == method and stats.lineage[-1].method == method and stats.lineage[0].method is None
    assert stats.compressed.run == str(child.path) and stats.parent == str(child.config.compression.parent)
    assert {"size_ratio", "speedup_batch_1", "speedup_batch_32", "accuracy", "f1_macro"} <= set(stats.change)


@pytest.mark.parametrize("method", METHODS)
def test_options_round_trip(compressed, method: str) -> None:
    child = compressed(method)
    stored = child.config.compression.options
    assert read_compression(child.path).options == stored
    options = parse_options(method, stored)
    assert options.type == method and isinstance(options, COMPRESSORS.get(method).config_cls)
    assert parse_options(method, options.model_dump(mode="json", exclude={"type"})) == options
    assert parse_options(method, options) is options  # the typed object is taken as it is


@pytest.mark.parametrize("method", METHODS)
def test_an_unknown_option_names_the_key_and_the_method(iris_mlp, method: str) -> None:
    with pytest.raises(UserError, match=rf"(?s){method} options.*no_such_option: unknown key"):
        parse_options(method, {**CONTRACT_OPTIONS.get(method, {}), "no_such_option": 1})
    with pytest.raises(UserError, match=rf"(?s){method} options.*no_such_option: unknown key"):
        modelworks.compress(iris_mlp, method, {**CONTRACT_OPTIONS.get(method, {}), "no_such_option": 1})
    with pytest.raises(UserError, match=rf"(?s){method} options.*no_such_option: unknown key"):
        modelworks.compress(iris_mlp, method, no_such_option=1)


def test_options_of_another_method_are_refused() -> None:
    half = parse_options("half", {})
    with pytest.raises(UserError, match="options of half, not of prune"):
        parse_options("prune", half)
