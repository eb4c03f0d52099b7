"""Loss functions chosen from the task, and the matching map from raw outputs to predictions."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from modelworks.config.schema import LossConfig
from modelworks.data.schema import Task
from modelworks.errors import UserError

LOSSES_FOR_TASK = {"multiclass": {"cross_entropy"}, "binary": {"bce", "cross_entropy"}, "regression": {"mse", "huber"}}
DEFAULT_LOSS = {"multiclass": "cross_entropy", "binary": "bce", "regression": "mse"}


def resolve_loss(cfg: LossConfig, task: Task) -> LossConfig:
    """Pick the loss for `auto` and reject a loss that does not fit the task."""
    kind = DEFAULT_LOSS[task] if cfg.type == "auto" else cfg.type
    if kind not in LOSSES_FOR_TASK[task]:
        raise UserError(
            f"train.loss.type {kind!r} does not fit a {task} target; use one of {sorted(LOSSES_FOR_TASK[task])}"
        )
    if kind == "cross_entropy" and task == "binary":
        raise UserError("train.loss.type 'cross_entropy' needs a multiclass target; a binary target uses 'bce'")
    return cfg.model_copy(update={"type": kind})


class TaskLoss(nn.Module):
    """outputs (batch, out_dim), target (batch,) -> scalar loss."""

    def __init__(self, cfg: LossConfig, num_classes: int, class_counts: np.ndarray | None) -> None:
        super().__init__()
        self.cfg = cfg
        weights = _class_weights(cfg, num_classes, class_counts)
        self.register_buffer("weight", weights if weights is not None else torch.empty(0), persistent=False)

    def forward(self, outputs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        weight = self.weight if self.weight.numel() else None
        kind = self.cfg.type
        if kind == "cross_entropy":
            return F.cross_entropy(outputs.float(), target, weight=weight, label_smoothing=self.cfg.label_smoothing)
        if kind == "bce":
            target = target.float()
            if self.cfg.label_smoothing:
                target = target * (1 - self.cfg.label_smoothing) + 0.5 * self.cfg.label_smoothing
            pos_weight = weight[1] / weight[0] if weight is not None else None
            return F.binary_cross_entropy_with_logits(outputs.float().squeeze(1), target, pos_weight=pos_weight)
        if kind == "mse":
            return F.mse_loss(outputs.float().squeeze(1), target.float())
        return F.huber_loss(outputs.float().squeeze(1), target.float(), delta=self.cfg.huber_delta)


def _class_weights(cfg: LossConfig, num_classes: int, counts: np.ndarray | None) -> torch.Tensor | None:
    if cfg.type in ("mse", "huber") or cfg.class_weights == "none":
        return None
    if cfg.class_weights == "balanced":
        counts = np.maximum(np.asarray(counts, dtype=np.float64), 1.0)
        return torch.tensor(counts.sum() / (num_classes * counts), dtype=torch.float32)
    if len(cfg.class_weights) != num_classes:
        raise UserError(
            f"train.loss.class_weights has {len(cfg.class_weights)} values; the target has {num_classes} classes"
        )
    return torch.tensor(cfg.class_weights, dtype=torch.float32)


def outputs_to_predictions(task: Task, outputs: torch.Tensor) -> np.ndarray:
    """Raw outputs -> probabilities (N, K) for multiclass, P(class 1) (N,) for binary, values (N,) for regression."""
    outputs = outputs.float()
    if task == "multiclass":
        return torch.softmax(outputs, dim=1).cpu().numpy()
    if task == "binary":
        return torch.sigmoid(outputs.squeeze(1)).cpu().numpy()
    return outputs.squeeze(1).cpu().numpy()
