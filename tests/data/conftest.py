"""Shared fixtures of the data-layer tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from .helpers import write_png


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    """Two classes of tiny grayscale images, one of them a JPEG with an upper-case extension."""
    root = tmp_path / "pets"
    for i in range(3):
        write_png(root / "cat" / f"c{i}.png", 40 * i)
        write_png(root / "dog" / f"d{i}.png", 200 + 10 * i)
    Image.new("RGB", (6, 4), (255, 0, 0)).save(root / "dog" / "red.JPG", format="JPEG")
    (root / "dog" / "notes.txt").write_text("not an image")
    return root
