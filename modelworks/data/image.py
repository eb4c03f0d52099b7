"""Images: loading files or arrays into one float tensor, and batch augmentation on any device.

An image value is a file path (read with PIL) or a uint8 array (H, W) or (H, W, C), as the IDX
and built-in sources store them. Arrays already at the wanted size and channels are stacked
directly; everything else goes through PIL for channel conversion and bilinear resizing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from modelworks.data.feature_types import ImageFeature
from modelworks.errors import UserError

GRAY_MODES = {"1", "L", "LA", "I", "I;16", "F"}


def image_shape(value: object) -> tuple[int, int, int]:
    """(C, H, W) of one image as stored: 1 channel for grayscale, else 3."""
    if isinstance(value, np.ndarray):
        return (1 if value.ndim == 2 or value.shape[2] == 1 else 3, value.shape[0], value.shape[1])
    with _open(value) as im:
        return (1 if im.mode in GRAY_MODES else 3, im.height, im.width)


def load_images(values: Sequence[object], channels: int, size: tuple[int, int]) -> torch.Tensor:
    """Pixels (N, C, H, W) float32 in [0, 1], converted to `channels` and resized to `size` (H, W)."""
    return pixels_to_float(load_pixels(values, channels, size))


def load_pixels(values: Sequence[object], channels: int, size: tuple[int, int]) -> torch.Tensor:
    """Pixels (N, C, H, W) uint8 0..255, converted to `channels` and resized to `size` (H, W)."""
    height, width = size
    wanted = (height, width) if channels == 1 else (height, width, channels)
    if not len(values):  # an empty split
        pixels = np.zeros((0, height, width, channels), np.uint8)
    elif all(isinstance(v, np.ndarray) and v.dtype == np.uint8 and v.shape == wanted for v in values):
        pixels = np.stack(values).reshape(len(values), height, width, channels)  # (N, H, W, C)
    else:
        pixels = np.stack([_pixels(v, channels, size) for v in values])
    return torch.from_numpy(pixels).permute(0, 3, 1, 2).contiguous()  # (N, C, H, W)


def pixels_to_float(pixels: torch.Tensor) -> torch.Tensor:
    """uint8 pixels (N, C, H, W) as float32 in [0, 1]."""
    return pixels.float().div_(255)


def normalize_pixels(pixels: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """uint8 pixels (N, C, H, W) as float32, standardized per channel by `mean` and `std` of [0, 1] values.

    The one arithmetic behind both image storages: a uint8 batch normalized as it is drawn equals,
    bit for bit, the same rows normalized up front.
    """
    mean, std = mean.to(pixels.device), std.to(pixels.device)
    return pixels_to_float(pixels).sub_(mean[:, None, None]).div_(std[:, None, None])


def _pixels(value: object, channels: int, size: tuple[int, int]) -> np.ndarray:
    """One image as uint8 (H, W, C)."""
    if isinstance(value, np.ndarray):
        if value.dtype != np.uint8:
            raise UserError(f"image arrays must hold uint8 pixels 0..255; got {value.dtype}")
        im = Image.fromarray(value.squeeze(-1) if value.ndim == 3 and value.shape[2] == 1 else value)
    else:
        im = _open(value)
    with im:
        im = im.convert("L" if channels == 1 else "RGB")
        if im.size != (size[1], size[0]):
            im = im.resize((size[1], size[0]), Image.Resampling.BILINEAR)
        return np.asarray(im).reshape(size[0], size[1], channels)


def _open(value: object) -> Image.Image:
    if not isinstance(value, str):
        raise UserError(f"an image must be a file path or a uint8 array; got {type(value).__name__} {value!r:.80}")
    try:
        im = Image.open(value)
        im.load()
    except OSError as e:  # missing, unreadable, corrupt or truncated file
        raise UserError(f"cannot read image {value}: {e}") from e
    return im


def augment_images(x: torch.Tensor, cfg: ImageFeature, generator: torch.Generator) -> torch.Tensor:
    """Random flip, shift and rotation of each image of `x` (B, C, H, W) in one resampling pass.

    Random numbers come from `generator` on the CPU, so a resumed run draws the same ones on any
    device. Pixels moved in from outside repeat the border.
    """
    if not (cfg.flip or cfg.translate or cfg.rotate):
        return x
    b, _, h, w = x.shape
    flip = torch.rand(b, generator=generator) < 0.5 if cfg.flip else torch.zeros(b, dtype=torch.bool)
    angle = (torch.rand(b, generator=generator) * 2 - 1) * math.radians(cfg.rotate)
    shift = (torch.rand(b, 2, generator=generator) * 2 - 1) * (2 * cfg.translate)  # normalized coords span 2
    sx = 1.0 - 2.0 * flip.float()
    cos, sin = angle.cos(), angle.sin()
    # Output -> input sampling coordinates; the h/w factors keep rotations rigid on non-square images.
    theta = torch.stack(
        [
            torch.stack([cos * sx, -sin * h / w, shift[:, 0]], dim=1),
            torch.stack([sin * sx * w / h, cos, shift[:, 1]], dim=1),
        ],
        dim=1,
    ).to(device=x.device, dtype=x.dtype)  # (B, 2, 3)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)  # (B, H, W, 2)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
