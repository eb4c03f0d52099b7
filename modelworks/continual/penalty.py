"""Keeping a continuation near its parent: weight/2 * sum_i F_i * (w_i - w_parent_i)^2.

``l2`` takes F = 1 for every weight; ``ewc`` (elastic weight consolidation, Kirkpatrick et al.
2017) takes F = the diagonal of the parent's empirical Fisher information, the mean squared
per-row gradient of the parent's loss, estimated on rows of the parent's replay buffer (which
holds every class its lineage has seen), so that the weights the old data depends on move least.
The Fisher information is scaled to a mean of 1 over all weights, so that a weight means the same
total pull for both kinds (a confident parent's raw Fisher information is tiny).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from modelworks.continual.config import ParentPenaltyConfig
from modelworks.data.batches import TensorBatches
from modelworks.data.schema import TARGET
from modelworks.training.losses import TaskLoss


def diagonal_fisher(
    model: nn.Module, rows: TensorBatches, loss: TaskLoss, device: torch.device, limit: int, seed: int
) -> dict[str, torch.Tensor]:
    """The mean squared gradient of `loss` per row over `limit` random `rows`, for every trainable
    parameter of `model` (in eval mode), scaled to a mean of 1."""
    was_training = model.training
    model.eval()
    params = {name: p for name, p in model.named_parameters() if p.requires_grad}
    fisher = {name: torch.zeros_like(p) for name, p in params.items()}
    n = min(limit, len(rows))
    chosen = torch.randperm(len(rows), generator=torch.Generator().manual_seed(seed))[:n]
    for batch in rows.subset(chosen).iterate(1):  # one row at a time: per-row gradients
        batch = {k: v.to(device) for k, v in batch.items()}
        target = batch.pop(TARGET)
        model.zero_grad(set_to_none=True)
        loss(model(batch), target).backward()
        for name, p in params.items():
            if p.grad is not None:
                fisher[name] += p.grad.detach() ** 2 / n
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    mean = sum(float(f.sum()) for f in fisher.values()) / max(sum(f.numel() for f in fisher.values()), 1)
    return {name: f / mean for name, f in fisher.items()} if mean > 0 else fisher


def parent_penalty(
    cfg: ParentPenaltyConfig, model: nn.Module, parent_weights: dict[str, torch.Tensor],
    fisher: dict[str, torch.Tensor] | None = None,
) -> Callable[[], torch.Tensor]:  # fmt: skip
    """The penalty term for `model`'s current weights, as a function the training loop adds to every step's loss."""
    params = [(p, parent_weights[name].to(p.device), fisher[name] if fisher is not None else None)
              for name, p in model.named_parameters() if p.requires_grad]  # fmt: skip

    def penalty() -> torch.Tensor:
        total = sum(((p - anchor) ** 2 * (f if f is not None else 1.0)).sum() for p, anchor, f in params)
        return 0.5 * cfg.weight * total

    return penalty
