"""Task and feature-type inference."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from modelworks.config.schema import CategoricalFeature, DataConfig, ImageFeature, NumericFeature, TextFeature
from modelworks.data.infer import infer_features, infer_task
from modelworks.data.sources import LoadedData
from modelworks.errors import UserError


@pytest.mark.parametrize(
    "values, task",
    [
        ([0.5, 1.25, 3.0, 0.5], "regression"),  # non-integer floats
        (list(range(25)), "regression"),  # many distinct integers
        ([0, 1, 1, 0], "binary"),
        (["yes", "no", "no"], "binary"),
        ([True, False, True], "binary"),
        ([1, 2, 3, 2, 1], "multiclass"),
        ([1.0, 2.0, 3.0, np.nan], "multiclass"),  # integer-valued floats with a gap
        (["a", "b", "c"], "multiclass"),
    ],
)
def test_infer_task_auto(values: list, task: str) -> None:
    assert infer_task(pd.Series(values, name="y"), "auto") == task


def test_infer_task_errors() -> None:
    with pytest.raises(UserError, match=r"'label' holds a single class 'spam'"):
        infer_task(pd.Series(["spam", "spam", None], name="label"), "auto")
    with pytest.raises(UserError, match=r"'label' holds non-numeric values \(e.g. 'cat'\); regression needs numbers"):
        infer_task(pd.Series(["cat", "dog"], name="label"), "regression")
    with pytest.raises(UserError, match=r"binary needs exactly 2 classes; .*'y' has 3"):
        infer_task(pd.Series([1, 2, 3], name="y"), "binary")
    assert infer_task(pd.Series([1, 2, 3], name="y"), "regression") == "regression"


def loaded(frame: pd.DataFrame, target: str = "y", **kwargs) -> LoadedData:
    return LoadedData(frame, target, "test.csv", kwargs.get("kinds", {}), kwargs.get("split_column"))


def mixed_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": [31, 45, 27],
            "smoker": [True, False, True],
            "city": ["Paris", "Lyon", "Paris"],
            "review": ["a long and winding review", "short but more than three words", "another one here ok"],
            "zh": [
                z * 3
                for z in [
                    "我非常喜欢这个产品的设计和质量",
                    "质量很差，用了两天就坏了",
                    "一般般吧，价格还可以，物流也比较慢",
                ]
            ],
            "photo": ["a.png", "b.JPG", "c.jpeg"],
            "pixels": [np.zeros((2, 2), np.uint8)] * 3,
            "fold": ["train", "test", "train"],
            "y": [0, 1, 0],
        }
    )


def test_infer_every_column_type() -> None:
    features = infer_features(loaded(mixed_frame(), split_column="fold"), DataConfig(source="x", exclude=["age"]))
    types = {f.name: type(f) for f in features}
    assert types == {
        "smoker": CategoricalFeature,
        "city": CategoricalFeature,
        "review": TextFeature,
        "zh": TextFeature,  # no spaces, but long
        "photo": ImageFeature,
        "pixels": ImageFeature,
    }
    assert features[2] == TextFeature(name="review")  # schema defaults


def test_numeric_and_source_kinds() -> None:
    frame = pd.DataFrame({"x": [1.5, 2.0], "words": ["hi", "yo"], "y": [0, 1]})
    features = infer_features(loaded(frame, kinds={"words": "text"}), DataConfig(source="x"))
    assert features == [NumericFeature(name="x"), TextFeature(name="words")]


def test_explicit_and_auto_features() -> None:
    cfg = DataConfig(
        source="x",
        features=[{"name": "age", "type": "categorical", "max_categories": 5}, {"name": "city", "type": "auto"}],
    )
    features = infer_features(loaded(mixed_frame()), cfg)
    assert features == [CategoricalFeature(name="age", max_categories=5), CategoricalFeature(name="city")]


def test_unknown_names_are_errors() -> None:
    with pytest.raises(UserError, match=r"'agee' is not in test\.csv; columns: age, smoker"):
        infer_features(loaded(mixed_frame()), DataConfig(source="x", features=[{"name": "agee"}]))
    with pytest.raises(UserError, match=r"'citty' is not in test\.csv"):
        infer_features(loaded(mixed_frame()), DataConfig(source="x", exclude=["citty"]))
    with pytest.raises(UserError, match=r"target column 'y' cannot also be a feature"):
        infer_features(loaded(mixed_frame()), DataConfig(source="x", features=[{"name": "y"}]))
    with pytest.raises(UserError, match=r"lists a column twice: age"):
        infer_features(loaded(mixed_frame()), DataConfig(source="x", features=[{"name": "age"}, {"name": "age"}]))


def test_short_chinese_reviews_are_text_and_chinese_city_names_categorical() -> None:
    reviews = ["这个产品非常好", "质量很差", "物流很快，满意", "不推荐购买", "非常失望", "还可以吧"] * 2
    cities = ["北京市", "上海市", "深圳市"] * 4
    frame = pd.DataFrame({"review": reviews, "city": cities, "y": [0, 1] * 6})
    types = {f.name: type(f) for f in infer_features(loaded(frame), DataConfig(source="x"))}
    assert types == {"review": TextFeature, "city": CategoricalFeature}
