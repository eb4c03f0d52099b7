"""Built-in data sets, named ``builtin:NAME`` in the config.

The scikit-learn ones ship with scikit-learn; fashion-mnist, fortunes and fortunes-zh come from
Debian packages (``dataset-fashion-mnist``, ``fortunes``, ``fortunes-zh``) so that nothing is downloaded at run
time; each entry
declares where it comes from in ``meta`` (``ships_with`` or ``debian_package``). Every loader
returns a `LoadedData` whose target column is "label" (classes as strings) or "target"
(regression).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn import datasets

from modelworks.data.idx import read_idx_frame
from modelworks.data.sources import LoadedData
from modelworks.errors import UserError
from modelworks.registry import Registry

BUILTINS: Registry[Callable[[], LoadedData]] = Registry("builtin data set")

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]
FORTUNES_DIR = Path("/usr/share/games/fortunes")
FORTUNES_ZH_FILES = ("chinese", "song100", "tang300")  # Debian's fortunes-zh installs these beside fortunes
ANSI_CODES = re.compile(r"\x1b\[[0-9;]*[A-Za-z]?")  # fortunes-zh colours titles and authors (a few codes are cut)


def load_builtin(name: str) -> LoadedData:
    """The built-in data set `name`; unknown names raise a UserError listing the known ones."""
    return BUILTINS.get(name, where="data.source").impl()


def _sklearn_classes(bunch, name: str) -> LoadedData:
    """A scikit-learn table with its integer target replaced by the class names in "label"."""
    frame = bunch.frame.drop(columns="target")
    frame["label"] = np.asarray(bunch.target_names)[bunch.target.to_numpy()].astype(str)
    return LoadedData(frame, "label", f"builtin:{name}", {}, None)


@BUILTINS.register("iris", ships_with="scikit-learn")
def iris() -> LoadedData:
    return _sklearn_classes(datasets.load_iris(as_frame=True), "iris")


@BUILTINS.register("wine", ships_with="scikit-learn")
def wine() -> LoadedData:
    return _sklearn_classes(datasets.load_wine(as_frame=True), "wine")


@BUILTINS.register("breast_cancer", ships_with="scikit-learn")
def breast_cancer() -> LoadedData:
    return _sklearn_classes(datasets.load_breast_cancer(as_frame=True), "breast_cancer")


@BUILTINS.register("diabetes", ships_with="scikit-learn")
def diabetes() -> LoadedData:
    frame = datasets.load_diabetes(as_frame=True).frame
    return LoadedData(frame, "target", "builtin:diabetes", {}, None)


@BUILTINS.register("digits", ships_with="scikit-learn")
def digits() -> LoadedData:
    """8x8 digit images; pixel values 0..16 rescaled to uint8 0..255 like every other image."""
    bunch = datasets.load_digits()
    images = np.round(bunch.images * (255 / 16)).astype(np.uint8)  # (1797, 8, 8)
    frame = pd.DataFrame({"image": pd.Series(list(images), dtype=object), "label": bunch.target.astype(str)})
    return LoadedData(frame, "label", "builtin:digits", {"image": "image"}, None)


@BUILTINS.register("fashion-mnist", debian_package="dataset-fashion-mnist")
def fashion_mnist() -> LoadedData:
    """70,000 28x28 clothing images with the official train (60,000) / test (10,000) split."""
    if not FASHION_MNIST_DIR.is_dir():
        raise UserError(
            "builtin:fashion-mnist needs Debian's dataset-fashion-mnist package: "
            "sudo apt-get install dataset-fashion-mnist"
        )
    frame = read_idx_frame(FASHION_MNIST_DIR)
    frame["label"] = np.asarray(FASHION_MNIST_CLASSES)[frame["label"].to_numpy()]
    return LoadedData(frame, "label", "builtin:fashion-mnist", {"image": "image"}, "split")


@BUILTINS.register("fortunes", debian_package="fortunes")
def fortunes() -> LoadedData:
    """Short English texts labelled with their fortune category (the file they come from)."""
    files = [p for p in _fortune_files() if p.name not in FORTUNES_ZH_FILES]
    if not files:
        raise UserError("builtin:fortunes needs Debian's fortunes package: sudo apt-get install fortunes")
    return LoadedData(_fortune_frame(files), "label", "builtin:fortunes", {"text": "text"}, None)


@BUILTINS.register("fortunes-zh", debian_package="fortunes-zh")
def fortunes_zh() -> LoadedData:
    """Chinese texts labelled with their file: chinese (sayings and prose), tang300 (Tang poems),
    song100 (Song ci); terminal colour codes removed."""
    files = [p for p in _fortune_files() if p.name in FORTUNES_ZH_FILES]
    if not files:
        raise UserError("builtin:fortunes-zh needs Debian's fortunes-zh package: sudo apt-get install fortunes-zh")
    return LoadedData(_fortune_frame(files), "label", "builtin:fortunes-zh", {"text": "text"}, None)


def _fortune_files() -> list[Path]:
    if not FORTUNES_DIR.is_dir():
        return []
    return sorted(
        p for p in FORTUNES_DIR.iterdir() if p.is_file() and not p.is_symlink() and p.suffix not in (".dat", ".u8")
    )


def _fortune_frame(files: list[Path]) -> pd.DataFrame:
    """One row per fortune (texts between lines holding a single %), labelled with its file's name."""
    rows = []
    for file in files:
        text = ANSI_CODES.sub("", file.read_text(encoding="utf-8", errors="replace"))
        for fortune in re.split(r"^%$", text, flags=re.M):
            if fortune.strip():
                rows.append((fortune.strip(), file.name))
    return pd.DataFrame(rows, columns=["text", "label"])
