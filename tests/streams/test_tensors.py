"""Rows rebuilt from OIP input tensors by the run's fitted preprocessing (for logging /infer)."""

from __future__ import annotations

import pandas as pd

from modelworks import api
from modelworks.streams.tensors import cells_typed, records

from ..jobs.continual_data import base_config, old_rows


def test_numeric_and_categorical_tensors_give_back_their_rows_and_unknown_categories_are_missing(tmp_path):
    frame = old_rows(40, 1)
    frame.to_csv(tmp_path / "old.csv", index=False)
    config = base_config("x")
    config["data"]["source"] = str(tmp_path / "old.csv")
    config["train"].update(epochs=1, progress=False)
    run = api.train({**config, "runs_dir": str(tmp_path / "runs")}, base_dir=tmp_path)
    sent = pd.DataFrame({"x": [1.2345, -2.5], "noise": [0.1, 1e-3], "channel": ["a", "never seen"]})
    tensors = {k: v.numpy() for k, v in run.preprocessor.transform(sent, with_target=False).items()}
    assert records(run, tensors) == [
        {"x": 1.2345, "noise": 0.1, "channel": "a"},
        {"x": -2.5, "noise": 0.001, "channel": None},  # index 0: the model did not know the value
    ]


def test_text_cells_are_read_by_the_datasets_column_types():
    schema = [{"name": "code", "dtype": "int64"}, {"name": "flag", "dtype": "bool"}, {"name": "city", "dtype": "str"}]
    row = {"code": "3", "flag": "true", "city": "42", "x": 1.5}
    assert cells_typed(row, schema) == {"code": 3, "flag": True, "city": "42", "x": 1.5}
