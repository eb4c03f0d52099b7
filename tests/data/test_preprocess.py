"""Preprocessor: fit on train only, transform to the batch layout, JSON state round trip."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from modelworks.config.schema import CategoricalFeature, DataConfig, ImageFeature, NumericFeature, TextFeature
from modelworks.data.preprocess import Preprocessor
from modelworks.data.schema import InputSchema, TextSpec
from modelworks.data.sources import read_source
from modelworks.errors import UserError

from .helpers import write_png


def fit(features: list, train: pd.DataFrame, task: str = "multiclass", target: str = "y") -> Preprocessor:
    return Preprocessor(features, target, task).fit(train)


# ---------------------------------------------------------------------------------- numeric


def test_scaling_statistics_come_from_train_only() -> None:
    train = pd.DataFrame({"x": [1.0, 2.0, 3.0], "m": [0.0, 5.0, 10.0], "c": [7.0, 7.0, 7.0], "y": [0, 1, 0]})
    test = pd.DataFrame({"x": [100.0, 2.0], "m": [10.0, 20.0], "c": [7.0, 8.0], "y": [1, 1]})
    features = [NumericFeature(name="x"), NumericFeature(name="m", scaling="minmax"), NumericFeature(name="c")]
    p = fit(features, train, "binary")
    out = p.transform(test)["numeric"]
    std = np.std([1.0, 2.0, 3.0])
    np.testing.assert_allclose(out[:, 0].numpy(), [(100 - 2) / std, 0.0], rtol=1e-6)
    np.testing.assert_allclose(out[:, 1].numpy(), [1.0, 2.0])
    np.testing.assert_allclose(out[:, 2].numpy(), [0.0, 1.0])  # zero std guarded: scale 1
    assert out.dtype == torch.float32 and p.schema_.numeric == ["x", "m", "c"]


@pytest.mark.parametrize("missing, expected", [("mean", 3.0), ("median", 2.0), ("mode", 2.0), ("constant", -1.0)])
def test_numeric_missing_fill(missing: str, expected: float) -> None:
    train = pd.DataFrame({"x": [2.0, 2.0, 5.0, np.nan], "y": ["a", "b", "a", "b"]})
    p = fit([NumericFeature(name="x", missing=missing, fill_value=-1.0, scaling="none")], train)
    assert p.transform(train)["numeric"][3, 0].item() == expected


def test_numeric_missing_drop_and_missing_target() -> None:
    frame = pd.DataFrame({"x": [1.0, np.nan, 3.0, 4.0], "y": ["a", "b", None, "b"]})
    p = fit([NumericFeature(name="x", missing="drop", scaling="none")], frame)
    np.testing.assert_array_equal(p.drop_mask(frame), [False, True, True, False])
    np.testing.assert_array_equal(p.drop_mask(frame, with_target=False), [False, True, False, False])
    batch = p.transform(frame)
    assert batch["numeric"][:, 0].tolist() == [1.0, 4.0] and batch["target"].tolist() == [0, 1]
    assert p.transform(frame.drop(columns="y"), with_target=False)["numeric"][:, 0].tolist() == [1.0, 3.0, 4.0]


def test_text_in_numeric_column_names_row_and_value(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text("price,y\n1.5,a\n2,b\ncheap,a\n")
    frame = read_source(DataConfig(source="d.csv", target="y"), tmp_path).frame
    with pytest.raises(UserError, match=r"column 'price' must hold numbers but row 2 holds 'cheap'"):
        fit([NumericFeature(name="price")], frame)


# ------------------------------------------------------------------------------ categorical


def test_categorical_vocabulary_unknown_and_missing() -> None:
    train = pd.DataFrame({"city": ["Paris", "Lyon", "Paris", None, "Nice", "Lyon", "Paris"], "y": [0, 1] * 3 + [0]})
    features = [CategoricalFeature(name="city", max_categories=2)]
    p = fit(features, train, "binary")
    assert p.state_["features"]["city"]["vocabulary"] == ["Paris", "Lyon"]  # most frequent first
    assert p.schema_.categorical == {"city": 3}
    test = pd.DataFrame({"city": ["Lyon", "Tokyo", "Nice", None, "Paris"], "y": [0, 0, 0, 0, 1]})
    assert p.transform(test)["categorical"][:, 0].tolist() == [2, 0, 0, 0, 1]  # unseen/rare/missing -> 0


def test_categorical_keys_ignore_int_float_difference() -> None:
    train = pd.DataFrame({"code": [1.0, 2.0, np.nan, 2.0], "y": [0, 1, 0, 1]})  # ints with a gap read as floats
    p = fit([CategoricalFeature(name="code", missing="mode")], train, "binary")
    test = pd.DataFrame({"code": [2, 1], "y": [0, 1]})
    assert p.transform(test)["categorical"][:, 0].tolist() == [1, 2]
    assert p.transform(train)["categorical"][2, 0].item() == 1  # missing -> mode "2"


# ----------------------------------------------------------------------------------- target


def test_targets_binary_multiclass_regression() -> None:
    frame = pd.DataFrame(
        {"x": [1.0, 2.0, 3.0, 4.0], "b": ["yes", "no", "yes", "no"], "m": [10, 2, 2, 3], "r": [0.5, 1.5, 2.5, 3.5]}
    )
    features = [NumericFeature(name="x")]
    binary = fit(features, frame, "binary", "b").transform(frame)["target"]
    assert binary.dtype == torch.float32 and binary.tolist() == [1.0, 0.0, 1.0, 0.0]
    multi = fit(features, frame, "multiclass", "m")
    assert multi.schema_.class_names == ["2", "3", "10"]  # numeric order, not string order
    assert (
        multi.transform(frame)["target"].tolist() == [2, 0, 0, 1]
        and multi.transform(frame)["target"].dtype == torch.int64
    )
    assert multi.decode_target(np.array([2, 0])).tolist() == [10, 2]  # original values, original type
    reg = fit(features, frame, "regression", "r")
    assert reg.schema_.num_classes == 1 and reg.schema_.class_names is None
    assert reg.transform(frame)["target"].tolist() == [0.5, 1.5, 2.5, 3.5]
    assert reg.decode_target(np.array([1.5])).tolist() == [1.5]


def test_unseen_label_and_single_class() -> None:
    train = pd.DataFrame({"x": [1.0, 2.0], "y": ["cat", "dog"]})
    p = fit([NumericFeature(name="x")], train, "binary")
    with pytest.raises(UserError, match=r"target column 'y' holds the label 'bird'.*known classes: cat, dog"):
        p.transform(pd.DataFrame({"x": [1.0], "y": ["bird"]}))
    with pytest.raises(UserError, match=r"target column 'y' has 1 class\(es\) in the training split \(cat\)"):
        fit([NumericFeature(name="x")], train.iloc[:1])


def test_not_fitted_and_missing_column() -> None:
    p = Preprocessor([NumericFeature(name="x")], "y", "binary")
    with pytest.raises(RuntimeError, match="not fitted"):
        p.transform(pd.DataFrame({"x": [1.0]}))
    p.fit(pd.DataFrame({"x": [1.0, 2.0], "y": [0, 1]}))
    with pytest.raises(UserError, match=r"column 'x' is missing; the data has: z"):
        p.transform(pd.DataFrame({"z": [1.0]}), with_target=False)


# ------------------------------------------------------------------------ text, image, state


@pytest.fixture
def mixed(tmp_path: Path) -> pd.DataFrame:
    """A BOM + CRLF CSV with every feature kind, read through read_source."""
    for i in range(6):
        write_png(tmp_path / "img" / f"{i}.png", (40 * i, 10, 200), size=(8, 6), mode="RGB")
    cities, reviews = ["北京", "上海", "Paris"], ["我喜欢机器学习", "I love deep learning", "机器 learning 很好"]
    rows = [f"{i},{i % 3},{cities[i % 3]},{reviews[i % 3]},img/{i}.png,{'ab'[i % 2]}" for i in range(6)]
    (tmp_path / "d.csv").write_bytes(("\ufeffx,n,city,review,photo,y\r\n" + "\r\n".join(rows) + "\r\n").encode("utf-8"))
    return read_source(DataConfig(source="d.csv", target="y"), tmp_path).frame


def mixed_features() -> list:
    return [
        NumericFeature(name="x"),
        NumericFeature(name="n", scaling="minmax"),
        CategoricalFeature(name="city"),
        TextFeature(name="review", max_length=6),
        ImageFeature(name="photo", size=(4, 4), flip=True, rotate=10),
    ]


def test_every_kind_and_json_round_trip(mixed: pd.DataFrame) -> None:
    train, test = mixed.iloc[:4], mixed.iloc[4:]
    p = fit(mixed_features(), train, "binary")
    batch = p.transform(test)
    assert {k: tuple(v.shape) for k, v in batch.items()} == {
        "numeric": (2, 2),
        "categorical": (2, 1),
        "text.review": (2, 6),
        "image.photo": (2, 3, 4, 4),
        "target": (2,),
    }
    assert batch["text.review"].dtype == torch.int64 and batch["image.photo"].dtype == torch.float32
    assert p.schema_ == InputSchema(
        task="binary",
        num_classes=2,
        class_names=["a", "b"],
        numeric=["x", "n"],
        categorical={"city": 4},
        text={"review": TextSpec(p.schema_.text["review"].vocab_size, 6, 0)},
        image={"photo": (3, 4, 4)},
    )
    train_images = p.transform(train)["image.photo"]
    np.testing.assert_allclose(train_images.mean(dim=(0, 2, 3)).numpy(), 0.0, atol=1e-5)  # normalized with train stats

    state = json.loads(json.dumps(p.state_dict()))
    assert "\ufeff" not in json.dumps(state, ensure_ascii=False)
    q = Preprocessor.from_state(mixed_features(), "y", "binary", state)
    assert q.schema_ == p.schema_
    again = q.transform(test)
    assert batch.keys() == again.keys() and all(torch.equal(batch[k], again[k]) for k in batch)


def test_chinese_text_becomes_several_tokens(mixed: pd.DataFrame) -> None:
    p = fit([TextFeature(name="review", max_length=10, cjk_ngrams=1)], mixed, "binary")
    ids = p.transform(mixed)["text.review"][0]  # "我喜欢机器学习"
    assert (ids != 0).sum().item() == 7
    # by default (issue 11) each character is followed by the two-character n-gram starting at it
    p = fit([TextFeature(name="review", max_length=20)], mixed, "binary")
    ids = p.transform(mixed)["text.review"][0]
    assert (ids != 0).sum().item() == 7 + 6


def test_text_missing_values() -> None:
    frame = pd.DataFrame({"t": ["good film", None, "bad film"], "y": [1, 0, 0]})
    constant = fit([TextFeature(name="t", max_length=3)], frame, "binary").transform(frame)["text.t"]
    assert constant.shape == (3, 3) and constant[1].tolist() == [0, 0, 0]  # "" -> all padding
    drop = fit([TextFeature(name="t", missing="drop", max_length=3)], frame, "binary").transform(frame)
    assert drop["text.t"].shape == (2, 3) and drop["target"].tolist() == [1.0, 0.0]


def test_augment_touches_only_configured_images(mixed: pd.DataFrame) -> None:
    features = [*mixed_features()[:4], ImageFeature(name="photo", size=(4, 4), flip=True, rotate=10)]
    p = fit(features, mixed, "binary")
    batch = p.transform(mixed)
    a = p.augment(batch, torch.Generator().manual_seed(0))
    b = p.augment(batch, torch.Generator().manual_seed(0))
    assert torch.equal(a["image.photo"], b["image.photo"]) and not torch.equal(a["image.photo"], batch["image.photo"])
    assert a["numeric"] is batch["numeric"] and a["image.photo"].shape == batch["image.photo"].shape
    plain = fit([ImageFeature(name="photo")], mixed, "binary")
    plain_batch = plain.transform(mixed)
    assert plain.augment(plain_batch, torch.Generator())["image.photo"] is plain_batch["image.photo"]


def test_missing_image_value(mixed: pd.DataFrame) -> None:
    p = fit([ImageFeature(name="photo")], mixed, "binary")
    broken = mixed.copy()
    broken.loc[3, "photo"] = None
    with pytest.raises(UserError, match=r"image column 'photo' has no image in row 3"):
        p.transform(broken)
