"""A folder of images with one sub-folder per class: columns "image" (path) and "label"."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from modelworks.config.schema import DataConfig
from modelworks.data.formats import IMAGE_EXTENSIONS
from modelworks.data.sources import LoadedData, inside
from modelworks.errors import UserError


def read_image_folder(location: str, cfg: DataConfig) -> LoadedData:
    root = Path(location)
    if not root.is_dir():
        raise UserError(f"{root} must be a folder with one sub-folder of images per class")
    files = [
        (file, class_dir.name)
        for class_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        for file in sorted(class_dir.rglob("*"))
        if file.is_file() and file.suffix.lower() in IMAGE_EXTENSIONS
    ]
    for file, _ in files:
        if cfg.root is not None and not inside(file, cfg.root):  # a link out of the data: never read
            raise UserError(f"image {file.relative_to(root)}: the path must stay inside the dataset's folder")
    rows = [(str(file.resolve()), label) for file, label in files]
    if not rows:
        raise UserError(
            f"{root} holds no images; expected one sub-folder per class with "
            f"{'/'.join(e[1:] for e in IMAGE_EXTENSIONS)} files"
        )
    frame = pd.DataFrame(rows, columns=["image", "label"])
    return LoadedData(frame, "label", str(root), {"image": "image"}, None)
