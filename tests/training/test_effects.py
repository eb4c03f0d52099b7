"""Each training option shows its effect: `fit` called directly on a tiny model and data.

Clipping bounds the update, label smoothing lowers the loss's pull towards certainty, class
weights move predictions towards the minority class, the plateau schedule lowers the learning
rate when validation stops improving, and `fit` returns what it trained.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from modelworks.config.schema import TrainConfig
from modelworks.data.batches import TensorBatches
from modelworks.data.schema import NUMERIC, TARGET, InputSchema
from modelworks.models import build_model
from modelworks.models.mlp_config import MLPConfig
from modelworks.store import files
from modelworks.training.distributed import World
from modelworks.training.loop import fit
from modelworks.training.loss_config import LossConfig
from modelworks.training.losses import TaskLoss, outputs_to_predictions

CPU = torch.device("cpu")


def _blobs(n: int, task: str, minority: float = 0.5, seed: int = 0) -> dict[str, torch.Tensor]:
    """Two overlapping Gaussian classes over 2 numeric columns (class 1 with share `minority`)."""
    gen = torch.Generator().manual_seed(seed)
    y = (torch.rand(n, generator=gen) < minority).long()
    x = torch.randn(n, 2, generator=gen) + y[:, None] * 1.0
    return {NUMERIC: x, TARGET: y.float() if task == "binary" else y}


def _train(data, schema: InputSchema, tmp_path: Path, val=None, seed: int = 0, hidden=(), **train):
    torch.manual_seed(seed)
    model = build_model(MLPConfig(hidden=list(hidden)), schema)
    cfg = TrainConfig(progress=False, checkpoint={"every_epochs": None}, **train)
    folder = tmp_path / f"run-{len(list(tmp_path.iterdir()))}"
    folder.mkdir()
    classes = schema.task != "regression"
    counts = np.bincount(data[TARGET].long().numpy(), minlength=schema.num_classes) if classes else None
    result = fit(
        model,
        TensorBatches(data),
        TensorBatches(val) if val is not None else None,
        cfg,
        schema,
        device=CPU,
        world=World(),
        run_dir=folder,
        class_counts=counts,
    )
    return model, result, folder


def _probabilities(model, data, task: str) -> np.ndarray:
    model.eval()
    with torch.no_grad():
        return outputs_to_predictions(task, model({NUMERIC: data[NUMERIC]}))


BINARY = InputSchema(task="binary", num_classes=2, class_names=["a", "b"], numeric=["x0", "x1"])
MULTICLASS = InputSchema(task="multiclass", num_classes=2, class_names=["a", "b"], numeric=["x0", "x1"])
REGRESSION = InputSchema(task="regression", num_classes=1, numeric=["x0", "x1"])


def test_fit_called_directly_trains_and_reports(tmp_path: Path) -> None:
    data, val = _blobs(256, "multiclass"), _blobs(64, "multiclass", seed=1)
    model, result, folder = _train(data, MULTICLASS, tmp_path, val=val, epochs=6, batch_size=32, lr=0.05, hidden=[8])
    history = result.history
    assert [h["epoch"] for h in history] == [1, 2, 3, 4, 5, 6]
    assert result.state.epoch == 6 and result.state.step == 6 * 8 and result.state.steps_per_epoch == 8
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert {"val_loss", "val_accuracy", "val_log_loss", "lr", "elapsed_s"} <= history[-1].keys()
    assert history[-1]["val_accuracy"] > 0.6  # the classes overlap; chance is about 0.5
    assert 1 <= result.best_epoch <= 6
    logged = [json.loads(line) for line in (folder / files.METRICS).read_text().splitlines()]
    assert [r["epoch"] for r in logged if r["kind"] == "epoch"] == [1, 2, 3, 4, 5, 6]
    # the model `fit` leaves behind is the one that was validated
    accuracy = (_probabilities(model, val, "multiclass").argmax(1) == val[TARGET].numpy()).mean()
    assert accuracy == pytest.approx(history[-1]["val_accuracy"])


def test_gradient_clipping_bounds_the_update(tmp_path: Path) -> None:
    data = _blobs(32, "regression")
    data[TARGET] = data[TARGET].float() * 1000.0  # huge errors, huge gradients
    sgd = {"epochs": 1, "batch_size": 32, "lr": 1.0, "optimizer": {"type": "sgd"}}

    def update_norm(**clip) -> float:
        torch.manual_seed(0)
        before = build_model(MLPConfig(hidden=[]), REGRESSION).state_dict()
        after = _train(data, REGRESSION, tmp_path, **sgd, **clip)[0].state_dict()
        return torch.cat([(after[k] - before[k]).flatten() for k in before]).norm().item()

    clipped, free = update_norm(grad_clip=0.01), update_norm()
    assert clipped == pytest.approx(0.01, rel=1e-3)  # one SGD step of lr 1.0 on a gradient of norm 0.01
    assert free > 100 * clipped


def test_label_smoothing_raises_the_loss_of_confident_outputs_and_lowers_confidence(tmp_path: Path) -> None:
    confident = torch.tensor([[8.0, -8.0], [-8.0, 8.0]])
    target = torch.tensor([0, 1])
    plain = TaskLoss(LossConfig(type="cross_entropy"), 2, None)(confident, target)
    smooth = TaskLoss(LossConfig(type="cross_entropy", label_smoothing=0.2), 2, None)(confident, target)
    assert smooth > plain + 1.0
    bce_plain = TaskLoss(LossConfig(type="bce"), 2, None)(confident[:, 1:], target.float())
    bce_smooth = TaskLoss(LossConfig(type="bce", label_smoothing=0.2), 2, None)(confident[:, 1:], target.float())
    assert bce_smooth > bce_plain + 0.5

    separable = _blobs(128, "multiclass")
    separable[NUMERIC] = separable[NUMERIC] + separable[TARGET][:, None] * 6.0
    train = {"epochs": 40, "batch_size": 128, "lr": 0.2}
    sharp = _train(separable, MULTICLASS, tmp_path, loss={"type": "cross_entropy"}, **train)[0]
    soft = _train(separable, MULTICLASS, tmp_path, loss={"type": "cross_entropy", "label_smoothing": 0.3}, **train)[0]
    confidence = lambda model: _probabilities(model, separable, "multiclass").max(axis=1).mean()  # noqa: E731
    assert confidence(sharp) > 0.97
    assert confidence(soft) < confidence(sharp) - 0.03  # smoothing 0.3 aims at 0.85 for the true class


@pytest.mark.parametrize("task, schema", [("binary", BINARY), ("multiclass", MULTICLASS)])
def test_class_weights_shift_predictions_towards_the_minority_class(tmp_path: Path, task: str, schema) -> None:
    data = _blobs(400, task, minority=0.1)
    loss = {"type": "bce" if task == "binary" else "cross_entropy"}
    train = {"epochs": 40, "batch_size": 400, "lr": 0.3, "loss": loss}
    plain = _train(data, schema, tmp_path, **train)[0]
    weighted = _train(data, schema, tmp_path, **{**train, "loss": {**train["loss"], "class_weights": "balanced"}})[0]

    def minority(model) -> tuple[float, float]:
        p = _probabilities(model, data, task)
        p1 = p if task == "binary" else p[:, 1]
        return float(p1.mean()), float((p1 >= 0.5).mean())

    (plain_p, plain_share), (weighted_p, weighted_share) = minority(plain), minority(weighted)
    assert weighted_p > plain_p + 0.2
    assert weighted_share > plain_share + 0.2


def test_plateau_schedule_lowers_the_learning_rate_when_validation_stalls(tmp_path: Path) -> None:
    data = _blobs(128, "multiclass")
    flipped = {NUMERIC: data[NUMERIC], TARGET: 1 - data[TARGET]}  # learning the training data worsens these
    plateau = {"type": "plateau", "patience": 0, "factor": 0.5}
    train = {"epochs": 5, "batch_size": 128, "lr": 0.05}
    _, result, _ = _train(data, MULTICLASS, tmp_path, val=flipped, scheduler=plateau, **train)
    val_losses = [h["val_loss"] for h in result.history]
    assert val_losses == sorted(val_losses)  # validation never improves after the first epoch
    # an epoch logs the LR it trained with; the schedule steps after validating it
    assert [h["lr"] for h in result.history] == pytest.approx([0.05, 0.05, 0.025, 0.0125, 0.00625])

    _, steady, _ = _train(data, MULTICLASS, tmp_path, val=flipped, **train)
    assert [h["lr"] for h in steady.history] == [0.05] * 5  # the drop is the schedule's doing
