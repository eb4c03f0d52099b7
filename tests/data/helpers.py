"""Writers of real data files for the data-layer tests."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

IRIS_FEATURES = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]
IDX_CODES = {np.dtype(np.uint8): 0x08, np.dtype(np.int32): 0x0C, np.dtype(np.float32): 0x0D}


def write_idx(path: Path, array: np.ndarray) -> Path:
    """An IDX file holding `array`; gzipped when the name ends in .gz."""
    header = bytes([0, 0, IDX_CODES[array.dtype], array.ndim]) + np.asarray(array.shape, dtype=">i4").tobytes()
    data = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


def write_png(path: Path, value: int | tuple[int, int, int], size: tuple[int, int] = (6, 4), mode: str = "L") -> Path:
    """A solid image of `size` (width, height)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, value).save(path)
    return path


# ------------------------------------------------------------- one sample per registered data format


@dataclass(frozen=True)
class Sample:
    """A tiny source of one data format, written by the test itself, and what reading it gives."""

    write: Callable[[Path], str]  # writes the source under a folder; returns data.source
    columns: list[str]
    target: str
    rows: int
    damage: Callable[[Path], str]  # writes a source the reader must refuse; returns data.source
    config: dict = field(default_factory=dict)  # data config keys the format needs (the target)


def _csv(folder: Path) -> str:
    (folder / "d.csv").write_text("x,city,y\n1.5,北京,a\n2.5,Paris,b\n3.5,Roma,a\n", encoding="utf-8")
    return str(folder / "d.csv")


def _ragged_csv(folder: Path) -> str:
    (folder / "bad.csv").write_text("x,city,y\n1.5,北京,a\n2.5,Paris,b,extra\n")
    return str(folder / "bad.csv")


def _parquet(folder: Path) -> str:
    pd.DataFrame({"x": [1.5, 2.5, 3.5], "city": ["北京", "Paris", "Roma"], "y": ["a", "b", "a"]}).to_parquet(
        folder / "d.parquet"
    )
    return str(folder / "d.parquet")


def _damaged_parquet(folder: Path) -> str:
    (folder / "bad.parquet").write_bytes(b"PAR1 this is not parquet PAR1")
    return str(folder / "bad.parquet")


def _jsonl(folder: Path) -> str:
    rows = [
        {"x": 1.5, "city": "北京", "y": "a"},
        {"x": 2.5, "city": "Paris", "y": "b"},
        {"x": 3.5, "city": "Roma", "y": "a"},
    ]
    (folder / "d.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return str(folder / "d.jsonl")


def _broken_jsonl(folder: Path) -> str:
    (folder / "bad.jsonl").write_text('{"x": 1, "y": "a"}\n{"x": 2,\n')
    return str(folder / "bad.jsonl")


def _images(folder: Path) -> str:
    for name, value in [("cat/1.png", 10), ("cat/2.png", 20), ("dog/1.png", 200)]:
        write_png(folder / "pets" / name, value)
    return str(folder / "pets")


def _no_images(folder: Path) -> str:
    (folder / "empty" / "cat").mkdir(parents=True)
    (folder / "empty" / "cat" / "notes.txt").write_text("not an image")
    return str(folder / "empty")


def _idx(folder: Path) -> str:
    write_idx(folder / "s-images-idx3-ubyte", np.arange(3 * 2 * 2, dtype=np.uint8).reshape(3, 2, 2))
    write_idx(folder / "s-labels-idx1-ubyte.gz", np.array([1, 0, 1], np.uint8))
    return str(folder / "s-images-idx3-ubyte")


def _bad_idx(folder: Path) -> str:
    (folder / "bad-images-idx3-ubyte").write_bytes(b"PK\x03\x04 not idx")
    write_idx(folder / "bad-labels-idx1-ubyte", np.zeros(1, np.uint8))
    return str(folder / "bad-images-idx3-ubyte")


SAMPLES = {
    "csv": Sample(_csv, ["x", "city", "y"], "y", 3, _ragged_csv, {"target": "y"}),
    "parquet": Sample(_parquet, ["x", "city", "y"], "y", 3, _damaged_parquet, {"target": "y"}),
    "jsonl": Sample(_jsonl, ["x", "city", "y"], "y", 3, _broken_jsonl, {"target": "y"}),
    "images": Sample(_images, ["image", "label"], "label", 3, _no_images),
    "idx": Sample(_idx, ["image", "label"], "label", 3, _bad_idx),
    "builtin": Sample(lambda _: "builtin:iris", [*IRIS_FEATURES, "label"], "label", 150, lambda _: "builtin:no-such"),
}
