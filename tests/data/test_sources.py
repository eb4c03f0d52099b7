"""read_source on real files of every format, and on the built-in data sets."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modelworks.config.schema import DataConfig
from modelworks.data import builtins
from modelworks.data.sources import LoadedData, read_source
from modelworks.errors import UserError

from .helpers import write_idx, write_png


def read(source: str | Path, base_dir: Path = Path("/"), **cfg) -> LoadedData:
    return read_source(DataConfig(source=str(source), **cfg), base_dir)


# ---------------------------------------------------------------------------------------- csv


def test_csv_with_bom_crlf_and_chinese(tmp_path: Path) -> None:
    text = 'id,review,label\r\n1,我喜欢机器学习,好\r\n2,"great, really",bad\r\n3,普通,好\r\n'
    (tmp_path / "reviews.csv").write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    loaded = read("reviews.csv", tmp_path, target="label")
    assert list(loaded.frame.columns) == ["id", "review", "label"]  # no BOM glued to "id"
    assert loaded.frame["review"].tolist() == ["我喜欢机器学习", "great, really", "普通"]
    assert loaded.frame["label"].tolist() == ["好", "bad", "好"]  # no stray \r
    assert loaded.target == "label" and loaded.origin == str(tmp_path / "reviews.csv")
    assert loaded.split_column is None and loaded.kinds == {}


def test_csv_delimiter_and_limit(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text("a;y\n" + "".join(f"{i};{i % 2}\n" for i in range(10)))
    loaded = read(tmp_path / "d.csv", target="y", csv_delimiter=";", limit=4)
    assert loaded.frame["a"].tolist() == [0, 1, 2, 3]


def test_ragged_csv_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "bad.csv").write_text("a,b,y\n1,2,0\n3,4,1\n5,6,7,8\n")
    with pytest.raises(UserError, match=r"bad\.csv.*line 4"):
        read(tmp_path / "bad.csv", target="y")


def test_csv_that_is_not_utf8_names_line(tmp_path: Path) -> None:
    (tmp_path / "latin.csv").write_bytes("a,y\nok,1\ncaf\xe9,0\n".encode("latin-1"))
    with pytest.raises(UserError, match=r"latin\.csv is not UTF-8 text \(line 3"):
        read(tmp_path / "latin.csv", target="y")


def test_header_only_csv_is_empty(tmp_path: Path) -> None:
    (tmp_path / "empty.csv").write_text("a,y\n")
    with pytest.raises(UserError, match=r"empty\.csv holds no rows"):
        read(tmp_path / "empty.csv", target="y")
    (tmp_path / "blank.csv").write_text("")
    with pytest.raises(UserError, match=r"blank\.csv holds no rows"):
        read(tmp_path / "blank.csv", target="y")


def test_missing_target_lists_columns(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text("height,weight\n1,2\n")
    with pytest.raises(UserError, match=r"'price' is not in .*d\.csv.*height, weight"):
        read(tmp_path / "d.csv", target="price")
    with pytest.raises(UserError, match=r"data\.target .*height, weight"):
        read(tmp_path / "d.csv")
    loaded = read_source(DataConfig(source=str(tmp_path / "d.csv"), target="price"), tmp_path, require_target=False)
    assert len(loaded.frame) == 1


def test_missing_file_and_unknown_extension(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"'nope\.csv' not found.*nope\.csv"):
        read("nope.csv", tmp_path, target="y")
    (tmp_path / "d.xlsx").write_text("x")
    with pytest.raises(UserError, match=r"cannot tell the format .*d\.xlsx.*csv"):
        read(tmp_path / "d.xlsx", target="y")


def test_image_paths_in_a_table_resolve_against_its_folder(tmp_path: Path) -> None:
    write_png(tmp_path / "imgs" / "a.png", 10)
    (tmp_path / "t.csv").write_text("file,note,y\nimgs/a.png,x,1\nimgs/a.png,y,0\n")
    loaded = read("t.csv", tmp_path, target="y")
    assert loaded.kinds == {"file": "image"}
    assert loaded.frame["file"].iloc[0] == str(tmp_path / "imgs" / "a.png")


# ----------------------------------------------------------------------------- parquet, jsonl


def test_parquet(tmp_path: Path) -> None:
    pd.DataFrame({"x": [1.5, 2.5], "city": ["北京", "Paris"], "y": [0, 1]}).to_parquet(tmp_path / "d.parquet")
    loaded = read(tmp_path / "d.parquet", target="y")
    assert loaded.frame["city"].tolist() == ["北京", "Paris"] and loaded.frame["x"].dtype == np.float64


def test_jsonl_and_bad_line(tmp_path: Path) -> None:
    rows = [{"text": "你好", "y": 1}, {"text": "bye", "y": 0}]
    (tmp_path / "d.jsonl").write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n\n")
    assert read(tmp_path / "d.jsonl", target="y").frame.to_dict("records") == rows
    (tmp_path / "bad.jsonl").write_text('{"y": 1}\n{"y": 2}\n{"y": 3,\n')
    with pytest.raises(UserError, match=r"bad\.jsonl line 3 is not valid JSON"):
        read(tmp_path / "bad.jsonl", target="y")
    (tmp_path / "list.jsonl").write_text('{"y": 1}\n[1, 2]\n')
    with pytest.raises(UserError, match=r"line 2 must be a JSON object"):
        read(tmp_path / "list.jsonl", target="y")


# ------------------------------------------------------------------------------------ images


def test_image_folder(image_folder: Path) -> None:
    loaded = read(image_folder)
    assert loaded.target == "label" and loaded.kinds == {"image": "image"}
    assert loaded.frame["label"].value_counts().to_dict() == {"dog": 4, "cat": 3}
    assert all(Path(p).is_absolute() and Path(p).suffix.lower() in (".png", ".jpg") for p in loaded.frame["image"])


def test_empty_image_folder(tmp_path: Path) -> None:
    (tmp_path / "imgs" / "cat").mkdir(parents=True)
    with pytest.raises(UserError, match=r"imgs holds no images"):
        read(tmp_path / "imgs")


# --------------------------------------------------------------------------------------- idx


def test_idx_folder_gzipped_and_raw(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    train_x, test_x = rng.integers(0, 256, (5, 3, 4), dtype=np.uint8), rng.integers(0, 256, (2, 3, 4), dtype=np.uint8)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", train_x)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.array([0, 1, 2, 1, 0], np.uint8))
    write_idx(tmp_path / "t10k-images-idx3-ubyte", test_x)  # raw, not gzipped
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.array([2, 0], np.uint8))
    loaded = read(tmp_path)
    assert loaded.split_column == "split" and loaded.kinds == {"image": "image"}
    frame = loaded.frame
    assert frame["split"].tolist() == ["test"] * 2 + ["train"] * 5  # t10k sorts first
    assert frame["label"].tolist() == ["2", "0", "0", "1", "2", "1", "0"]
    np.testing.assert_array_equal(np.stack(frame["image"][frame["split"] == "train"]), train_x)
    assert frame["image"].iloc[0].dtype == np.uint8


def test_idx_single_file_finds_its_labels(tmp_path: Path) -> None:
    write_idx(tmp_path / "x-images-idx3-ubyte", np.zeros((3, 2, 2), np.uint8))
    write_idx(tmp_path / "x-labels-idx1-ubyte.gz", np.array([1, 2, 3], np.uint8))
    loaded = read(tmp_path / "x-images-idx3-ubyte")
    assert loaded.split_column is None and loaded.frame["label"].tolist() == ["1", "2", "3"]


def test_idx_counts_disagree(tmp_path: Path) -> None:
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", np.zeros((4, 2, 2), np.uint8))
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(3, np.uint8))
    with pytest.raises(
        UserError, match=r"train-images-idx3-ubyte\.gz holds 4 images but .*train-labels-idx1-ubyte\.gz holds 3 labels"
    ):
        read(tmp_path)


def test_idx_bad_magic_and_truncation(tmp_path: Path) -> None:
    (tmp_path / "a-images-idx3-ubyte").write_bytes(b"PK\x03\x04 not idx")
    write_idx(tmp_path / "a-labels-idx1-ubyte", np.zeros(1, np.uint8))
    with pytest.raises(UserError, match=r"a-images-idx3-ubyte is not an IDX file"):
        read(tmp_path / "a-images-idx3-ubyte")
    full = write_idx(tmp_path / "b-images-idx3-ubyte", np.zeros((2, 3, 3), np.uint8)).read_bytes()
    (tmp_path / "b-images-idx3-ubyte").write_bytes(full[:-5])
    write_idx(tmp_path / "b-labels-idx1-ubyte", np.zeros(2, np.uint8))
    with pytest.raises(UserError, match=r"b-images-idx3-ubyte is truncated: .*\(2, 3, 3\).*18 bytes.*13 bytes"):
        read(tmp_path / "b-images-idx3-ubyte")


def test_idx_without_labels_file(tmp_path: Path) -> None:
    write_idx(tmp_path / "c-images-idx3-ubyte", np.zeros((1, 2, 2), np.uint8))
    with pytest.raises(UserError, match=r"no labels file .*c-labels-idx1-ubyte"):
        read(tmp_path / "c-images-idx3-ubyte")


# ---------------------------------------------------------------------------------- builtins


@pytest.mark.parametrize(
    "name, rows, target, first_column, classes",
    [
        ("iris", 150, "label", "sepal length (cm)", {"setosa", "versicolor", "virginica"}),
        ("wine", 178, "label", "alcohol", {"class_0", "class_1", "class_2"}),
        ("breast_cancer", 569, "label", "mean radius", {"malignant", "benign"}),
        ("diabetes", 442, "target", "age", None),
    ],
)
def test_sklearn_builtins(name: str, rows: int, target: str, first_column: str, classes: set | None) -> None:
    loaded = read(f"builtin:{name}")
    assert (len(loaded.frame), loaded.target, loaded.frame.columns[0]) == (rows, target, first_column)
    assert loaded.origin == f"builtin:{name}" and loaded.split_column is None
    if classes is None:
        assert loaded.frame[target].dtype == np.float64
    else:
        assert set(loaded.frame[target]) == classes


def test_digits_are_images() -> None:
    loaded = read("builtin:digits")
    assert list(loaded.frame.columns) == ["image", "label"] and loaded.kinds == {"image": "image"}
    first = loaded.frame["image"].iloc[0]
    assert first.shape == (8, 8) and first.dtype == np.uint8
    assert max(image.max() for image in loaded.frame["image"]) == 255  # 0..16 rescaled to 0..255
    assert sorted(set(loaded.frame["label"])) == [str(i) for i in range(10)]


def test_unknown_builtin_lists_names() -> None:
    with pytest.raises(UserError, match=r"unknown builtin data set 'mnist'.*digits, .*fashion-mnist.*fortunes"):
        read("builtin:mnist")


def test_fashion_mnist() -> None:
    if not builtins.FASHION_MNIST_DIR.is_dir():
        pytest.skip("Debian package dataset-fashion-mnist is not installed")
    loaded = read("builtin:fashion-mnist")
    frame = loaded.frame
    assert loaded.split_column == "split" and frame["split"].value_counts().to_dict() == {"train": 60000, "test": 10000}
    assert set(frame["label"]) == set(builtins.FASHION_MNIST_CLASSES)
    assert frame["image"].iloc[0].shape == (28, 28)
    limited = read("builtin:fashion-mnist", limit=700)
    assert limited.frame["split"].value_counts().to_dict() == {"train": 600, "test": 100}  # proportional


def test_fashion_mnist_absent(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(builtins, "FASHION_MNIST_DIR", tmp_path / "absent")
    with pytest.raises(UserError, match="sudo apt-get install dataset-fashion-mnist"):
        read("builtin:fashion-mnist")


def test_fortunes() -> None:
    if not builtins.FORTUNES_DIR.is_dir():
        pytest.skip("Debian package fortunes is not installed")
    loaded = read("builtin:fortunes")
    frame = loaded.frame
    assert loaded.kinds == {"text": "text"} and list(frame.columns) == ["text", "label"]
    assert frame["text"].str.strip().ne("").all() and not frame["text"].str.contains(r"^%$", regex=True).any()
    labels = set(frame["label"])
    assert "fortunes" in labels and not any(label.endswith((".dat", ".u8")) for label in labels)


def test_fortunes_parsing_and_absence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    root = tmp_path / "fortunes"
    (root / "off").mkdir(parents=True)
    (root / "off" / "rude").write_text("no\n%\n")
    (root / "cats").write_text("Cats rule.\n%\n\n%\nTwo\nlines.\n%\n")
    (root / "cats.dat").write_bytes(b"\x00\x01")
    (root / "cats.u8").symlink_to(root / "cats")
    monkeypatch.setattr(builtins, "FORTUNES_DIR", root)
    frame = read("builtin:fortunes").frame
    assert frame.to_dict("list") == {"text": ["Cats rule.", "Two\nlines."], "label": ["cats", "cats"]}
    monkeypatch.setattr(builtins, "FORTUNES_DIR", tmp_path / "absent")
    with pytest.raises(UserError, match="apt-get install fortunes"):
        read("builtin:fortunes")
