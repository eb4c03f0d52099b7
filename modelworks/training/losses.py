"""Loss functions, declared in `training.loss_config` with the tasks they serve, and the matching
map from raw outputs to predictions.

Every loss maps ``(cfg, outputs (batch, out_dim), target (batch,), weight (K,) or None)`` to a
scalar; `TaskLoss` picks the registered one named by the resolved ``train.loss.type``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from modelworks.data.schema import Task
from modelworks.errors import UserError
from modelworks.training.loss_config import LOSSES, LossConfig, default_loss, losses_for


def resolve_loss(cfg: LossConfig, task: Task) -> LossConfig:
    """Pick the loss for `auto` and reject a loss that does not fit the task."""
    kind = default_loss(task) if cfg.type == "auto" else cfg.type
    fits = losses_for(task)
    if kind not in fits:
        served = ", ".join(LOSSES.get(kind).meta["tasks"])
        raise UserError(
            f"train.loss.type {kind!r} does not fit a {task} target (it serves {served}); use one of {fits}"
        )
    return cfg.model_copy(update={"type": kind})


# ------------------------------------------------------------------------------------- losses


def cross_entropy(cfg: LossConfig, outputs: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None):
    return F.cross_entropy(outputs.float(), target, weight=weight, label_smoothing=cfg.label_smoothing)


def bce(cfg: LossConfig, outputs: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None):
    target = target.float()
    if cfg.label_smoothing:
        target = target * (1 - cfg.label_smoothing) + 0.5 * cfg.label_smoothing
    pos_weight = weight[1] / weight[0] if weight is not None else None
    return F.binary_cross_entropy_with_logits(outputs.float().squeeze(1), target, pos_weight=pos_weight)


def mse(cfg: LossConfig, outputs: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None):
    return F.mse_loss(outputs.float().squeeze(1), target.float())


def huber(cfg: LossConfig, outputs: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None):
    return F.huber_loss(outputs.float().squeeze(1), target.float(), delta=cfg.huber_delta)


class TaskLoss(nn.Module):
    """outputs (batch, out_dim), target (batch,) -> scalar loss, by the resolved ``cfg.type``."""

    def __init__(self, cfg: LossConfig, num_classes: int, class_counts: np.ndarray | None) -> None:
        super().__init__()
        self.cfg = cfg
        self.loss = LOSSES.get(cfg.type, where="train.loss.type").impl
        weights = _class_weights(cfg, num_classes, class_counts)
        self.register_buffer("weight", weights if weights is not None else torch.empty(0), persistent=False)

    def forward(self, outputs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.loss(self.cfg, outputs, target, self.weight if self.weight.numel() else None)


def _class_weights(cfg: LossConfig, num_classes: int, counts: np.ndarray | None) -> torch.Tensor | None:
    if "regression" in LOSSES.get(cfg.type).meta["tasks"] or cfg.class_weights == "none":
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
