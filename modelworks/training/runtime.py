"""Where and how tensors run: device choice, autocast, seeding, and batched forward passes."""

from __future__ import annotations

import contextlib
import os
import random

import numpy as np
import torch
from torch import nn

from modelworks.data.batches import TensorBatches
from modelworks.data.schema import TARGET
from modelworks.errors import UserError


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """`auto` picks CUDA, then MPS, then CPU; asking for one that is absent is an error."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise UserError("train.device is 'cuda' but no CUDA GPU is visible; use 'auto' or 'cpu'")
        return torch.device("cuda", local_rank)
    if name == "mps" and not torch.backends.mps.is_available():
        raise UserError("train.device is 'mps' but MPS is not available; use 'auto' or 'cpu'")
    return torch.device(name)


def check_precision(precision: str, device: torch.device) -> None:
    if precision == "fp16" and device.type != "cuda":
        raise UserError(f"train.precision 'fp16' needs CUDA (device is {device.type}); use 'bf16' or 'fp32'")


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """bf16/fp16 autocast on CUDA (bf16 also on CPU); a no-op for fp32."""
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def seed_everything(seed: int, deterministic: bool) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = False
    # Both ways, so that an earlier run's choice does not linger; but only when it changes: the call
    # imports torch's compiler (about a second) to pass the flag on to it.
    if deterministic != torch.are_deterministic_algorithms_enabled():
        torch.use_deterministic_algorithms(deterministic)


def to_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


@torch.no_grad()
def forward_all(
    model: nn.Module, data: TensorBatches, batch_size: int, device: torch.device, precision: str = "fp32"
) -> torch.Tensor:
    """Raw outputs (N, out_dim) of `model` over every row of `data`, in order, on the CPU."""
    was_training = model.training
    model.eval()
    outputs = []
    for batch in data.iterate(batch_size):
        batch.pop(TARGET, None)
        with autocast(device, precision):
            outputs.append(model(to_device(batch, device)).float().cpu())
    model.train(was_training)
    return torch.cat(outputs) if outputs else torch.empty(0)
