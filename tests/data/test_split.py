"""Train/validation/test splitting and k-fold indices."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modelworks.config.schema import DataConfig, SplitConfig
from modelworks.data.sources import LoadedData, read_source
from modelworks.data.split import kfold_indices, split_frame
from modelworks.errors import UserError


def classes_frame(n: int = 100) -> pd.DataFrame:
    return pd.DataFrame({"x": np.arange(n, dtype=float), "y": ["a"] * (n * 7 // 10) + ["b"] * (n - n * 7 // 10)})


def split(
    frame: pd.DataFrame, task: str = "binary", split_column: str | None = None, base_dir: Path = Path("."), **cfg
):
    data_cfg = DataConfig(source="d.csv", target="y", split=SplitConfig(**cfg))
    loaded = LoadedData(frame, "y", "d.csv", {}, split_column)
    return split_frame(loaded, data_cfg.split, task, base_dir, data_cfg)


def test_random_split_is_stratified_disjoint_and_seeded() -> None:
    frames, resolved = split(classes_frame(), validation=0.1, test=0.2)
    assert (resolved.method, resolved.stratify) == ("random", True)
    assert {k: len(v) for k, v in frames.items()} == {"train": 70, "validation": 10, "test": 20}
    assert {k: (v["y"] == "b").sum() for k, v in frames.items()} == {"train": 21, "validation": 3, "test": 6}
    indices = [set(f.index) for f in frames.values()]
    assert set.union(*indices) == set(range(100)) and sum(map(len, indices)) == 100
    again, _ = split(classes_frame(), validation=0.1, test=0.2)
    other, _ = split(classes_frame(), validation=0.1, test=0.2, seed=7)
    assert again["test"].index.equals(frames["test"].index) and not other["test"].index.equals(frames["test"].index)


def test_regression_is_not_stratified() -> None:
    frame = pd.DataFrame({"x": np.arange(20.0), "y": np.linspace(0, 1, 20)})
    frames, resolved = split(frame, "regression")
    assert resolved.stratify is False and len(frames["test"]) == 4
    with pytest.raises(UserError, match="stratify needs a classification target"):
        split(frame, "regression", stratify=True)


def test_rare_class_is_an_error_not_a_silent_fallback() -> None:
    frame = classes_frame(20)
    frame.loc[0, "y"] = "lonely"
    with pytest.raises(UserError, match=r"stratified test split of d\.csv.*lonely \(1\).*stratify: false"):
        split(frame, "multiclass")
    frames, _ = split(frame, "multiclass", stratify=False)
    assert sum(len(f) for f in frames.values()) == 20


def test_column_split_with_aliases_and_carved_validation() -> None:
    frame = classes_frame(20).assign(part=["train"] * 12 + ["Val"] * 3 + [" test "] * 5)
    frames, resolved = split(frame, column="part")
    assert (resolved.method, resolved.column) == ("column", "part")
    assert {k: len(v) for k, v in frames.items()} == {"train": 12, "validation": 3, "test": 5}
    no_val = pd.DataFrame({"y": list("ab") * 10, "part": ["train"] * 15 + ["test"] * 5})
    frames, _ = split(no_val, column="part", validation=0.2)
    assert {k: len(v) for k, v in frames.items()} == {"train": 12, "validation": 3, "test": 5}
    assert set(frames["validation"]["part"]) == {"train"}


def test_column_split_rejects_other_values_and_uses_source_split() -> None:
    frame = classes_frame(6).assign(part=["train", "dev", "test", "train", "holdout", "test"])
    with pytest.raises(UserError, match=r"split column 'part' of d\.csv holds 'dev', 'holdout'; allowed values: train"):
        split(frame, column="part")
    official = classes_frame(40).assign(split=["train"] * 30 + ["test"] * 10)
    frames, resolved = split(official, split_column="split")
    assert (resolved.method, resolved.column) == ("column", "split") and len(frames["test"]) == 10
    with pytest.raises(UserError, match=r"split column 'fold' is not in d\.csv"):
        split(classes_frame(), column="fold")


def test_files_split(tmp_path: Path) -> None:
    (tmp_path / "train.csv").write_text("x,y\n" + "".join(f"{i},{'ab'[i % 2]}\n" for i in range(20)))
    (tmp_path / "val.csv").write_text("x,y\n100,a\n101,b\n")
    (tmp_path / "test.csv").write_text("x,y\n200,b\n")
    data_cfg = DataConfig(
        source="train.csv", target="y", split=SplitConfig(validation_source="val.csv", test_source="test.csv")
    )
    loaded = read_source(data_cfg, tmp_path)
    frames, resolved = split_frame(loaded, data_cfg.split, "binary", tmp_path, data_cfg)
    assert resolved.method == "files" and len(frames["train"]) == 20
    assert frames["validation"]["x"].tolist() == [100, 101] and frames["test"]["x"].tolist() == [200]
    only_test = data_cfg.split.model_copy(update={"validation_source": None})
    frames, _ = split_frame(loaded, only_test, "binary", tmp_path, data_cfg)
    assert (len(frames["train"]), len(frames["validation"]), len(frames["test"])) == (18, 2, 1)


def test_kfold_indices() -> None:
    y = np.array(["a"] * 8 + ["b"] * 4)
    folds = kfold_indices(y, 4, stratify=True, seed=0)
    assert len(folds) == 4
    assert sorted(np.concatenate([val for _, val in folds]).tolist()) == list(range(12))
    assert all((y[val] == "b").sum() == 1 and len(set(train) & set(val)) == 0 for train, val in folds)
    assert [v.tolist() for _, v in kfold_indices(y, 4, False, 0)] == [
        v.tolist() for _, v in kfold_indices(y, 4, False, 0)
    ]
    with pytest.raises(UserError, match="cannot make 5 folds of 3 rows"):
        kfold_indices(np.array([0, 1, 0]), 5, stratify=False, seed=0)
