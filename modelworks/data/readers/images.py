"""A folder of images with one sub-folder per class: columns "image" (path) and "label"."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from modelworks.config.schema import DataConfig
from modelworks.data.formats import IMAGE_EXTENSIONS
from modelworks.data.sources import LoadedData
from modelworks.errors import UserError


def read_image_folder(location: str, cfg: DataConfig) -> LoadedData:
    root = Path(location)
    if not root.is_dir():
        raise UserError(f"{root} must be a folder with one sub-folder of images per class")
    rows = [
        (str(file.resolve()), class_dir.name)
        for class_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        for file in sorted(class_dir.rglob("*"))
        if file.is_file() and file.suffix.lower() in IMAGE_EXTENSIONS
    ]
    if not rows:
        raise UserError(
            f"{root} holds no images; expected one sub-folder per class with "
            f"{'/'.join(e[1:] for e in IMAGE_EXTENSIONS)} files"
        )
    frame = pd.DataFrame(rows, columns=["image", "label"])
    return LoadedData(frame, "label", str(root), {"image": "image"}, None)
