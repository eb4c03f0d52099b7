"""Contract suite over every registered data format and every built-in data set.

Each format reads a tiny source the test writes itself (`helpers.SAMPLES`), is found from the
name when data.format is "auto", honours data.limit, and refuses a damaged source with a
UserError naming it. Each built-in loads (those from absent Debian packages skip, saying which).
A new format or built-in is picked up here as soon as it is registered.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from modelworks.config.schema import DataConfig
from modelworks.data.builtins import BUILTINS
from modelworks.data.formats import FORMATS, check_format, infer_format, upload_formats
from modelworks.data.sources import LoadedData, read_source
from modelworks.errors import UserError

from .helpers import SAMPLES

NAMES = FORMATS.names()
SPLITS = {"train", "validation", "test"}


def read(source: str, **cfg) -> LoadedData:
    return read_source(DataConfig(source=source, **cfg), Path("/"))


def test_every_format_has_a_sample() -> None:
    assert sorted(SAMPLES) == NAMES, "add a Sample for each new data format to tests/data/helpers.py"


@pytest.mark.parametrize("name", NAMES)
def test_reader_is_importable(name: str) -> None:
    assert callable(FORMATS.get(name).impl)


@pytest.mark.parametrize("name", NAMES)
def test_reads_its_sample(name: str, tmp_path: Path) -> None:
    sample = SAMPLES[name]
    source = sample.write(tmp_path)
    for fmt in (name, "auto"):
        loaded = read(source, format=fmt, **sample.config)
        assert list(loaded.frame.columns) == sample.columns
        assert (loaded.target, len(loaded.frame)) == (sample.target, sample.rows)
        assert loaded.origin == source
        assert set(loaded.kinds) <= set(loaded.frame.columns)
        if loaded.split_column is not None:
            assert set(loaded.frame[loaded.split_column]) <= SPLITS
    if loaded.frame[loaded.target].dtype == object:
        assert all(isinstance(v, str) for v in loaded.frame[loaded.target])  # classes are text


@pytest.mark.parametrize("name", NAMES)
def test_limit(name: str, tmp_path: Path) -> None:
    sample = SAMPLES[name]
    assert len(read(sample.write(tmp_path), format=name, limit=2, **sample.config).frame) == 2


@pytest.mark.parametrize("name", NAMES)
def test_damaged_source_is_a_user_error_naming_it(name: str, tmp_path: Path) -> None:
    sample = SAMPLES[name]
    source = sample.damage(tmp_path)
    shown = Path(source.removeprefix(FORMATS.get(name).meta.get("prefix", ""))).name
    with pytest.raises(UserError, match=shown.replace(".", r"\.")):
        read(source, format=name, **sample.config)


@pytest.mark.parametrize("name", [n for n in NAMES if "prefix" not in FORMATS.get(n).meta])
def test_format_is_inferred_from_the_name(name: str, tmp_path: Path) -> None:
    assert infer_format(Path(SAMPLES[name].write(tmp_path))) == name


def test_extensions_and_upload_names_are_unique() -> None:
    extensions = [ext for e in FORMATS for ext in e.meta.get("extensions", ())]
    assert len(extensions) == len(set(extensions)) and all(ext == ext.lower() for ext in extensions)
    upload_extensions = [ext for e in upload_formats().values() for ext in e.meta["upload"].extensions]
    assert len(upload_extensions) == len(set(upload_extensions))
    assert sum(bool(e.meta.get("folder")) for e in FORMATS) == 1  # a folder without a marker has one reader


def test_the_config_accepts_exactly_the_registered_formats() -> None:
    for name in ["auto", *NAMES]:
        assert DataConfig(source="x", format=name).format == name
    with pytest.raises(ValidationError, match=r"choose auto or one of: csv, parquet, .*builtin.*input_value='xlsx'"):
        DataConfig(source="x", format="xlsx")
    with pytest.raises(ValueError):
        check_format("CSV")


def test_the_declarations_import_neither_torch_nor_pandas() -> None:
    code = "import sys, modelworks.data.formats; print(sorted({'torch', 'pandas'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# ---------------------------------------------------------------------------------- builtins


@pytest.mark.parametrize("name", BUILTINS.names())
def test_builtin_loads(name: str) -> None:
    entry = BUILTINS.get(name)
    package = entry.meta.get("debian_package")
    assert package or entry.meta.get("ships_with"), f"builtin {name!r} must declare where it comes from"
    try:
        loaded = read(f"builtin:{name}", limit=50)
    except UserError as e:
        if package and f"apt-get install {package}" in str(e):
            pytest.skip(f"Debian package {package} is not installed")
        raise
    frame = loaded.frame
    assert loaded.origin == f"builtin:{name}" and loaded.target in ("label", "target")
    assert 0 < len(frame) <= 50 and loaded.target in frame.columns
    assert set(loaded.kinds) <= set(frame.columns)
    if loaded.target == "label":
        assert all(isinstance(v, str) for v in frame["label"])
    else:
        assert frame["target"].dtype == np.float64
    if loaded.split_column is not None:
        assert set(frame[loaded.split_column]) <= SPLITS
    for column, kind in loaded.kinds.items():
        if kind == "image":
            assert all(isinstance(v, np.ndarray) and v.dtype == np.uint8 for v in frame[column])
