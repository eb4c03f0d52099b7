"""Rows of a parent's holdout kept out of its continuation's training data, found by content."""

from __future__ import annotations

import pandas as pd
import yaml

from modelworks.continual.overlap import row_hashes, without
from modelworks.jobs.attempt import working_data
from modelworks.jobs.kinds.continue_ import Parent, _filtered
from modelworks.store.files import CONFIG


def test_numbers_hash_as_numbers_and_only_the_models_columns_count():
    a = pd.DataFrame({"x": [1, 2], "c": ["u", "v"], "label": [0, 1], "extra": ["p", "q"]})
    b = pd.DataFrame({"x": [1.0, 2.0], "c": ["u", "v"], "label": [0, 1], "extra": ["other", "other"]})
    assert row_hashes(a, ["x", "c", "label"]) == row_hashes(b, ["x", "c", "label"])
    assert row_hashes(a, ["x", "c", "label"])[0] != row_hashes(a, ["x", "c", "label"])[1]


def test_identical_rows_are_removed_only_as_often_as_the_holdout_holds_them():
    keep = without(["h", "k", "h", "h", "j"], ["h", "h", "j", "absent"])
    assert keep.tolist() == [False, True, False, True, False]


def test_a_cumulative_version_loses_the_holdout_rows_and_keeps_its_window(tmp_path):
    old = pd.DataFrame({"x": [0.5, 1.5, 2.5, 3.5], "label": ["a", "b", "a", "b"]})
    new = pd.DataFrame({"x": [9.5, 1.5], "label": ["b", "b"]})  # the window holds a copy of a held-out row
    folder = tmp_path / "job"
    working_data(folder).mkdir(parents=True)
    source = working_data(folder) / "clicks.csv"
    pd.concat([old, new]).to_csv(source, index=False)
    parent = Parent("clf", 1, None, "dataset:clicks@1", tmp_path / "parent")
    parent.folder.mkdir()
    data = {"source": "x.csv", "target": "label", "features": [{"name": "x", "type": "numeric"}]}
    (parent.folder / CONFIG).write_text(yaml.safe_dump({"data": data}), encoding="utf-8")
    held = row_hashes(old.iloc[[1, 3]], ["x", "label"])  # the parent's holdout: rows 1 and 3

    path, window, dropped = _filtered(parent, str(source), held, "candidate-data", folder, pd.RangeIndex(4, 6))
    kept = pd.read_csv(path)
    assert kept.to_dict("list") == {"x": [0.5, 2.5, 9.5, 1.5], "label": ["a", "a", "b", "b"]}
    assert list(window) == [2, 3] and sorted(dropped) == sorted(held)
    elsewhere = row_hashes(pd.DataFrame({"x": [7.0], "label": ["a"]}), ["x", "label"])
    assert _filtered(parent, str(source), elsewhere, "c", folder) == (str(source), None, [])  # nothing to remove
