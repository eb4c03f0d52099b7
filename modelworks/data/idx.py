"""MNIST-style IDX files: a header parsed with numpy, then the images paired with their labels.

An IDX file starts with two zero bytes, a dtype code and the number of dimensions, followed by one
big-endian int32 per dimension and the values themselves. Files may be gzipped (detected from the
gzip magic bytes, not the name).
"""

from __future__ import annotations

import gzip
import re
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from modelworks.errors import UserError

DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
IMAGES_RE = re.compile(r"^(?P<prefix>.+?)-images[-.]idx3-ubyte(\.gz)?$")
SPLITS = {"train": "train", "t10k": "test", "test": "test"}


def read_idx(path: Path) -> np.ndarray:
    """The array stored in one IDX file (gzipped or raw)."""
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise UserError(f"{path} is a damaged gzip file: {e}") from e
    if len(raw) < 4 or raw[:2] != b"\x00\x00" or raw[2] not in DTYPES:
        raise UserError(f"{path} is not an IDX file: bad magic bytes {raw[:4].hex()!r}")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise UserError(f"{path} is truncated: its header promises {ndim} dimensions")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">i4", count=ndim, offset=4))
    dtype = np.dtype(DTYPES[raw[2]])
    expected = int(np.prod(dims)) * dtype.itemsize
    if len(raw) - header < expected:
        raise UserError(
            f"{path} is truncated: its header promises shape {dims} ({expected} bytes of data) "
            f"but it holds {len(raw) - header} bytes"
        )
    values = np.frombuffer(raw, dtype=dtype, count=int(np.prod(dims)), offset=header)
    return values.reshape(dims).astype(dtype.newbyteorder("="))


def labels_path(images: Path) -> Path:
    """The labels file beside an images file: same name with images->labels, idx3->idx1."""
    stem = images.name.removesuffix(".gz").replace("images", "labels").replace("idx3", "idx1")
    for candidate in (images.with_name(stem), images.with_name(stem + ".gz")):
        if candidate.is_file():
            return candidate
    raise UserError(f"no labels file for {images}: expected {images.with_name(stem)} (or .gz) beside it")


def read_pair(images: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, H, W) and labels (N,) of one images file and its labels file."""
    labels_file = labels_path(images)
    x, y = read_idx(images), read_idx(labels_file)
    if x.ndim not in (3, 4) or y.ndim != 1:
        raise UserError(
            f"{images} must hold images (N, H, W) and {labels_file} labels (N,); got {x.shape} and {y.shape}"
        )
    if len(x) != len(y):
        raise UserError(f"{images} holds {len(x)} images but {labels_file} holds {len(y)} labels; they must match")
    return x, y


def read_idx_frame(path: Path) -> pd.DataFrame:
    """Columns "image" (uint8 arrays), "label" (int) and, for several pairs, "split".

    `path` is an images file, or a folder of ``PREFIX-images-idx3-ubyte[.gz]`` files each with
    its labels file; prefixes train and t10k/test become the split values "train" and "test".
    """
    files = [path] if path.is_file() else sorted(p for p in path.iterdir() if IMAGES_RE.match(p.name))
    if not files:
        raise UserError(f"{path} holds no *-images-idx3-ubyte[.gz] files")
    parts = []
    for file in files:
        x, y = read_pair(file)
        part = pd.DataFrame({"image": pd.Series(list(x), dtype=object), "label": y})
        if len(files) > 1:
            prefix = IMAGES_RE.match(file.name)["prefix"]
            part["split"] = SPLITS.get(prefix, prefix)
        parts.append(part)
    return pd.concat(parts, ignore_index=True)
