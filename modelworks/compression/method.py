"""What a compression method is made of, and the helpers the methods share.

A method (one file each: ``quantize.py``, ``prune.py``, ``distill.py``, ``half.py``) is a `Method`:
`apply` makes the compressed model from the parent run, `restore` rebuilds it from the freshly
built fp32 architecture and the stored tensors, which is how `load_run` reopens a compressed run
(`reopen`). Its options class and its declaration live in `modelworks.compression.methods`.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from modelworks.compression.methods import MethodOptions
from modelworks.compression.storage import read_weights
from modelworks.config.schema import CheckpointConfig, TrainConfig
from modelworks.data.batches import TensorBatches
from modelworks.data.schema import TARGET
from modelworks.engine.settings import check_settings, run_steps
from modelworks.models.inference import merge_adapters
from modelworks.training.callbacks import Callback
from modelworks.training.optim_config import CosineConfig, WarmupLinearConfig

if TYPE_CHECKING:
    from modelworks.engine.run import Run


@dataclass
class Job:
    """What a method works from: the parent run (model on the CPU, in eval mode) and its data."""

    parent: Run
    splits: dict[str, TensorBatches]
    run_dir: Path  # the new run's folder: fine-tuning writes metrics.jsonl here
    callbacks: list[Callback] = field(default_factory=list)


@dataclass
class Compressed:
    """What a method hands back: the model ready for inference and what to store for it."""

    model: nn.Module
    tensors: dict[str, torch.Tensor]  # model.safetensors, plain tensors only
    options: MethodOptions  # the method's options with every automatic choice resolved
    meta: dict[str, Any] = field(default_factory=dict)  # JSON beside the tensors, read back by restore
    model_config: Any = None  # a model config section that replaces the parent's (distill's student)
    train: dict[str, Any] = field(default_factory=dict)  # updates to the stored train section
    notes: dict[str, Any] = field(default_factory=dict)  # method facts for compression.json


@dataclass(frozen=True)
class Method:
    """A compression method: make the compressed model, and rebuild it from storage."""

    apply: Callable[[Job, Any], Compressed]
    # (fresh fp32 architecture in eval mode, options, stored tensors, stored meta) -> compressed model
    restore: Callable[[nn.Module, Any, dict[str, torch.Tensor], dict[str, Any]], nn.Module]

    def reopen(self, model: nn.Module, options: MethodOptions, weights_path: Path) -> nn.Module:
        """The stored compressed model of a run, on its freshly built fp32 architecture `model`."""
        tensors, meta = read_weights(weights_path)
        return self.restore(model.eval(), options, tensors, meta).eval()


# ------------------------------------------------------------------------- shared by methods


def float_copy(model: nn.Module) -> nn.Module:
    """A copy of a parent's float model to compress, adapters merged, in eval mode."""
    return merge_adapters(copy.deepcopy(model)).eval()


def load_float(model: nn.Module, options: MethodOptions, tensors: dict[str, torch.Tensor], meta: dict) -> nn.Module:
    """Restore for methods whose result is the plain architecture (prune, distill)."""
    model = merge_adapters(model)
    model.load_state_dict(tensors)
    return model


def train_config(job: Job, epochs: int, lr: float) -> TrainConfig:
    """The parent's train section for further training: its optimizer, schedule, batch size and
    loss, with these epochs and learning rate, no checkpoints and no progress bar of its own.

    A warm-up keeps its share of the run (the parent's warm-up steps would outlast a short
    fine-tune, whose learning rate would then never peak), and the result is checked like any
    run's settings (`check_settings`: warnings for what cannot take effect).
    """
    parent = job.parent.config
    train = parent.train.model_copy(
        update={
            "epochs": epochs,
            "lr": lr,
            "checkpoint": CheckpointConfig(every_epochs=None),
            "progress": False,
        }
    )
    rows = len(job.splits["train"])
    schedule = train.scheduler
    if isinstance(schedule, (CosineConfig, WarmupLinearConfig)) and schedule.warmup_steps:
        share = min(1.0, schedule.warmup_steps / run_steps(parent, rows)[1])
        schedule = schedule.model_copy(update={"warmup_steps": None, "warmup_ratio": share})
        train = train.model_copy(update={"scheduler": schedule})
    checked, _ = check_settings(parent.model_copy(update={"train": train, "tune": None}), rows)
    return checked.train


def class_counts(job: Job) -> np.ndarray | None:
    """Rows per class in the training split (for balanced class weights), None for regression."""
    schema = job.parent.schema
    if schema.task == "regression":
        return None
    return np.bincount(job.splits["train"].tensors[TARGET].long().numpy(), minlength=schema.num_classes)


@contextmanager
def quiet_torch_ao() -> Iterator[None]:
    """Around a torch.ao.quantization call: it warns on every call that it is deprecated in favour
    of torchao (not installed here) and about observers; the APIs still work as documented. The
    warning filters are restored afterwards."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.ao\..*|modelworks\..*")
        warnings.filterwarnings("ignore", message=r".*(deprecated|reduce_range|must run observer).*")
        yield
