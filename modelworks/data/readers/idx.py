"""MNIST-style IDX files: a folder of train-*/t10k-* pairs, or one images file (see `modelworks.data.idx`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from modelworks.config.schema import DataConfig
from modelworks.data.idx import read_idx_frame
from modelworks.data.sources import LoadedData


def read_idx_source(location: str, cfg: DataConfig) -> LoadedData:
    frame = read_idx_frame(Path(location))
    frame["label"] = frame["label"].astype(np.int64).astype(str)
    split = "split" if "split" in frame.columns else None
    return LoadedData(frame, "label", location, {"image": "image"}, split)
