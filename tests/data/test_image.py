"""Image loading and batch augmentation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from modelworks.config.schema import ImageFeature
from modelworks.data.image import augment_images, image_shape, load_images, load_pixels
from modelworks.errors import UserError

from .helpers import write_png


def test_load_paths_converts_channels_and_size(tmp_path: Path) -> None:
    gray = str(write_png(tmp_path / "g.png", 255, size=(6, 4)))
    rgb = str(write_png(tmp_path / "c.png", (255, 0, 0), size=(3, 2), mode="RGB"))
    assert image_shape(gray) == (1, 4, 6) and image_shape(rgb) == (3, 2, 3)
    x = load_images([gray, rgb], channels=3, size=(4, 6))
    assert x.shape == (2, 3, 4, 6) and x.dtype == torch.float32
    assert torch.allclose(x[0], torch.ones(3, 4, 6))  # gray white -> RGB white
    assert torch.allclose(x[1, 0], torch.ones(4, 6)) and x[1, 1:].max() == 0  # red stays red after resizing
    one = load_images([rgb], channels=1, size=(2, 3))
    assert one.shape == (1, 1, 2, 3) and 0.25 < one.max() < 0.35  # PIL luminance of pure red


def test_arrays_stack_directly_and_match_pil(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    arrays = list(rng.integers(0, 256, (3, 5, 7), dtype=np.uint8))
    x = load_images(arrays, channels=1, size=(5, 7))
    np.testing.assert_allclose(x[:, 0].numpy() * 255, np.stack(arrays), atol=1e-4)
    resized = load_images(arrays, channels=1, size=(10, 14))  # through PIL
    assert resized.shape == (3, 1, 10, 14)
    assert image_shape(arrays[0]) == (1, 5, 7)


def test_corrupt_and_missing_images(tmp_path: Path) -> None:
    good = str(write_png(tmp_path / "ok.png", 10))
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(UserError, match=r"cannot read image .*broken\.png"):
        load_images([good, str(tmp_path / "broken.png")], channels=1, size=(4, 6))
    with pytest.raises(UserError, match=r"cannot read image .*gone\.png"):
        image_shape(str(tmp_path / "gone.png"))
    with pytest.raises(UserError, match=r"uint8 pixels 0..255; got float64"):
        load_images([np.zeros((4, 6))], channels=1, size=(4, 6))


def batch() -> torch.Tensor:
    return torch.rand(8, 3, 10, 12, generator=torch.Generator().manual_seed(0))  # (B, C, H, W)


def test_augment_changes_images_and_is_reproducible() -> None:
    cfg = ImageFeature(name="img", flip=True, translate=0.1, rotate=15)
    x = batch()
    a = augment_images(x, cfg, torch.Generator().manual_seed(1))
    b = augment_images(x, cfg, torch.Generator().manual_seed(1))
    c = augment_images(x, cfg, torch.Generator().manual_seed(2))
    assert a.shape == x.shape and a.dtype == x.dtype
    assert torch.equal(a, b) and not torch.allclose(a, c) and not torch.allclose(a, x)


def test_flip_only_mirrors_some_images_exactly() -> None:
    x = batch()
    out = augment_images(x, ImageFeature(name="img", flip=True), torch.Generator().manual_seed(3))
    flipped = [torch.allclose(o, xi.flip(-1), atol=1e-5) for o, xi in zip(out, x, strict=False)]
    kept = [torch.allclose(o, xi, atol=1e-5) for o, xi in zip(out, x, strict=False)]
    assert all(f != k for f, k in zip(flipped, kept, strict=False)) and any(flipped) and any(kept)


def test_augment_without_settings_is_a_no_op() -> None:
    x = batch()
    assert augment_images(x, ImageFeature(name="img"), torch.Generator()) is x


def test_an_empty_list_loads_as_an_empty_batch() -> None:
    assert load_pixels([], channels=3, size=(4, 6)).shape == (0, 3, 4, 6)
    assert load_images([], channels=1, size=(4, 6)).dtype == torch.float32
