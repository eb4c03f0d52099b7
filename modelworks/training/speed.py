"""Speed settings applied (``train.speed``, ``evaluate.flip_average``): each a general option for any model.

The training loop calls four hooks: `configure_threads` once, `prepare_model` (channels-last) and
`compile_model` (`torch.compile`) on the model it trains, and `format_batch` on every batch it feeds.
`place_data` moves a run's split tensors onto the device before training. `FlipAveraged` wraps a
model for test-time flip averaging in evaluation and prediction. What each setting is and what it
measured is in `modelworks.training.speed_config` and `examples/fashion_mnist_fast.yaml`.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

from modelworks.data.batches import TensorBatches
from modelworks.data.schema import TARGET, InputSchema, image_key
from modelworks.training.speed_config import SpeedConfig


def configure_threads(cfg: SpeedConfig) -> None:
    """Set PyTorch's CPU thread counts where the config names them."""
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    if cfg.interop_threads is not None and torch.get_num_interop_threads() != cfg.interop_threads:
        try:
            torch.set_num_interop_threads(cfg.interop_threads)
        except RuntimeError as e:  # PyTorch allows it once, before any inter-op work in the process
            warnings.warn(
                f"train.speed.interop_threads={cfg.interop_threads} was not applied: {e} "
                f"(this process keeps {torch.get_num_interop_threads()})",
                stacklevel=2,
            )


def prepare_model(model: nn.Module, cfg: SpeedConfig) -> nn.Module:
    """`model` with its conv weights in channels-last format when asked (in place; before any DDP wrapping)."""
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)  # only 4-D parameters change layout
    return model


def compile_model(net: nn.Module, cfg: SpeedConfig) -> nn.Module:
    """The module the training steps call: `net` compiled when asked (weights stay shared, so the state
    dict that checkpoints and the saved weights read is unchanged), else `net` itself."""
    return torch.compile(net) if cfg.compile else net


def format_batch(batch: dict[str, torch.Tensor], cfg: SpeedConfig) -> dict[str, torch.Tensor]:
    """Image batches (B, C, H, W) in channels-last layout when the config asks for it."""
    if not cfg.channels_last:
        return batch
    return {k: v.contiguous(memory_format=torch.channels_last) if v.dim() == 4 else v for k, v in batch.items()}


def place_data(splits: dict[str, TensorBatches], device: torch.device, cfg: SpeedConfig) -> dict[str, TensorBatches]:
    """The splits' inputs held on `device` with ``data_on_device`` (batches then never cross the bus), else as
    they are. Targets stay on the CPU, where metrics read them; a batch's targets are small to copy."""
    if not cfg.data_on_device or device.type == "cpu":
        return splits
    return {name: data.to(device, keys=[k for k in data.tensors if k != TARGET]) for name, data in splits.items()}


class FlipAveraged(nn.Module):
    """`model`'s outputs averaged over each input and its horizontal mirror (every image feature flipped).

    Raw outputs (logits, or values for regression) are averaged; the mirror shares the batch's other inputs.
    """

    def __init__(self, model: nn.Module, schema: InputSchema) -> None:
        super().__init__()
        self.model = model
        self.keys = [image_key(name) for name in schema.image]

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        mirrored = {k: v.flip(-1) if k in self.keys else v for k, v in batch.items()}  # W is the last axis
        return (self.model(batch) + self.model(mirrored)) / 2  # (batch, out_dim)


def evaluation_model(model: nn.Module, schema: InputSchema, flip_average: bool) -> nn.Module:
    """The module evaluation and prediction call: `model`, or it wrapped in `FlipAveraged` when asked."""
    return FlipAveraged(model, schema) if flip_average and schema.image else model
