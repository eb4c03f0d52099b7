"""What training does for continual learning, in the order `engine.train` calls it.

`Continual.begin` opens the parent (``train.init_from``) and makes the config read data as the
parent did; `prepare` checks the architecture, counts values the parent never saw and mixes the
parent's replay buffer into the training rows (``train.replay.ratio``); `warm_start` loads the
parent's weights; `penalty` builds the pull toward them (``train.parent_penalty``);
`balanced_finetune` closes a continuation with a few epochs on its class-balanced buffer
(``train.replay.balanced_finetune_epochs``); `finish` keeps
the run's own buffer and holdout (``train.replay``) and returns the report's ``continual`` facts:
the main metric on the new window and on the parent's frozen holdout of old data, parent against
child, and the forgetting between them. Without init_from and replay every step does nothing.
"""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from modelworks.config.schema import CheckpointConfig, ExperimentConfig
from modelworks.continual.penalty import diagonal_fisher, parent_penalty
from modelworks.continual.replay import holdout_rows, mix, replay_rows, update_buffer, update_holdout
from modelworks.continual.warm_start import Parent, count_unseen
from modelworks.data.batches import TensorBatches
from modelworks.data.schema import TARGET
from modelworks.engine.resolve import Prepared
from modelworks.engine.run import Run
from modelworks.errors import UserError
from modelworks.evaluate.metrics import compute_metrics, main_metric
from modelworks.models import build_model
from modelworks.store import files
from modelworks.store.continual import Continuation, HoldoutScores, NewWindowScores, ReplayFacts
from modelworks.store.samples import RowSample, write_sample
from modelworks.training.distributed import World
from modelworks.training.loop import fit
from modelworks.training.losses import TaskLoss, outputs_to_predictions
from modelworks.training.runtime import forward_all
from modelworks.training.speed import place_data


class Continual:
    """A run's continual-learning steps; see the module docstring."""

    def __init__(self, config: ExperimentConfig, parent: Parent | None) -> None:
        self.config = config
        self.parent = parent
        self.parent_weights = parent.weights() if parent is not None else None
        self.parent_buffer = parent.sample(files.REPLAY) if parent is not None else None
        self.own_train: dict[str, torch.Tensor] | None = None  # the window's training rows, before replay
        self.replayed = 0
        self.unseen: dict[str, int] = {}
        self.buffer: RowSample | None = None  # this run's buffer (after training), made once

    @classmethod
    def begin(cls, config: ExperimentConfig, base_dir: Path) -> Continual:
        """`config` (with its parent's data settings when it continues one) and its parent, opened."""
        if config.train.init_from is None:
            return cls(config, None)
        parent = Parent.open(config.train.init_from, base_dir)
        return cls(parent.inherit(config), parent)

    @property
    def state(self) -> dict[str, Any] | None:
        """The preprocessing to reuse instead of fitting: the parent's."""
        return self.parent.state if self.parent is not None else None

    def prepare(self, prepared: Prepared) -> None:
        """Check the architecture, count unseen values and mix the parent's buffer into the training rows."""
        self.own_train = prepared.splits["train"].tensors
        if self.parent is None:
            return
        self.parent.check_model(prepared.config)
        self.unseen = count_unseen(prepared.preprocessor, prepared.splits)
        replay = prepared.config.train.replay
        if replay is None:
            return
        if self.parent_buffer is None:
            note = f"train.replay: the parent {self.parent.path} kept no replay buffer; this run starts one"
            warnings.warn(note, UserWarning, stacklevel=2)
            prepared.notes.append(note)
            return
        rows = replay_rows(self.parent_buffer, len(prepared.splits["train"]), replay.ratio, prepared.config.train.seed)
        prepared.splits["train"] = mix(prepared.splits["train"], rows)
        self.replayed = len(rows[TARGET])

    def warm_start(self, model: nn.Module) -> None:
        if self.parent is not None:
            self.parent.load_into(model, self.parent_weights)

    def penalty(self, model: nn.Module, prepared: Prepared, device: torch.device) -> Callable[[], torch.Tensor] | None:
        """The pull toward the parent's weights for the training loop (after `warm_start`: EWC's
        Fisher information is estimated on `model` while it still holds the parent's weights)."""
        cfg = prepared.config.train
        if cfg.parent_penalty is None:
            return None
        fisher = None
        if cfg.parent_penalty.kind == "ewc":
            if self.parent_buffer is None:
                raise UserError(
                    f"train.parent_penalty kind ewc estimates the parent's Fisher information on its replay buffer, "
                    f"and {self.parent.path} kept none: train the parent with train.replay, or use kind l2"
                )
            loss = TaskLoss(cfg.loss, prepared.preprocessor.schema_.num_classes, None).to(device)
            rows = TensorBatches(self.parent_buffer.tensors, prepared.preprocessor.decode)  # kept as stored
            fisher = diagonal_fisher(model, rows, loss, device, cfg.parent_penalty.fisher_rows, cfg.seed)
        return parent_penalty(cfg.parent_penalty, model, self.parent_weights, fisher)

    def own_buffer(self, prepared: Prepared) -> RowSample | None:
        """This run's replay buffer: the parent's merged with the window's own training rows (``train.replay``)."""
        replay = prepared.config.train.replay
        if replay is not None and self.buffer is None:
            classify = prepared.preprocessor.schema_.task != "regression"
            seed = prepared.config.train.seed
            self.buffer = update_buffer(self.parent_buffer, self.own_train, replay.size, classify, seed)
        return self.buffer

    def balanced_finetune(
        self, model: nn.Module, prepared: Prepared, device: torch.device, world: World, **fit_args: Any
    ) -> None:
        """After the main epochs of a continuation: ``replay.balanced_finetune_epochs`` more on this run's
        buffer alone, where every class of the lineage has an equal share, at a lower learning rate.

        Training on the new window (even with replay mixed in) biases the head toward the newest
        classes; the balanced pass evens it out. Its epochs are not in metrics.jsonl (the main
        training's are) and it keeps no checkpoint: `fit_args` (augment, penalty) are the main fit's."""
        cfg = prepared.config.train
        replay = cfg.replay
        if self.parent is None or replay is None or not replay.balanced_finetune_epochs:
            return
        buffer = self.own_buffer(prepared)
        rows = TensorBatches(buffer.tensors, prepared.splits["train"].decode)  # kept as stored (e.g. uint8 pixels)
        rows = place_data({"train": rows}, device, cfg.speed)["train"]
        closing = cfg.model_copy(
            update={
                "epochs": replay.balanced_finetune_epochs, "lr": cfg.lr * replay.balanced_finetune_lr_factor,
                "early_stopping": None, "checkpoint": CheckpointConfig(every_epochs=None),
            }
        )  # fmt: skip
        schema = prepared.preprocessor.schema_
        counts = np.bincount(buffer.tensors[TARGET].long().numpy(), minlength=schema.num_classes)
        with tempfile.TemporaryDirectory() as scratch:
            fit(model, rows, None, closing, schema, device=device, world=world, run_dir=Path(scratch),
                class_counts=counts if schema.task != "regression" else None, **fit_args)  # fmt: skip

    def finish(self, run: Run, prepared: Prepared) -> dict[str, Any]:
        """Keep the run's samples (``train.replay``); the report's facts about the continuation."""
        cfg = prepared.config
        window = prepared.splits[cfg.evaluate.split]
        parent_holdout = self.parent.sample(files.HOLDOUT) if self.parent is not None else None
        replay = cfg.train.replay
        buffer_rows = 0
        if replay is not None:
            buffer = self.own_buffer(prepared)
            write_sample(run.path, files.REPLAY, buffer)
            holdout = update_holdout(parent_holdout, window.tensors, run.name, replay, cfg.train.seed)
            write_sample(run.path, files.HOLDOUT, holdout)
            buffer_rows = len(buffer)
        if self.parent is None:
            return {}
        parent_model = build_model(cfg.model, run.schema)
        self.parent.load_into(parent_model, self.parent_weights)
        parent_model.to(run.device)
        metric, direction = main_metric(run.schema.task)
        models = {"parent": parent_model, "child": run.model}
        new_window = NewWindowScores(**{k: _score(m, window, run, metric) for k, m in models.items()})
        old, forgetting = None, None
        if parent_holdout is not None:
            rows = holdout_rows(parent_holdout)
            rows.decode = prepared.preprocessor.decode  # kept as stored (e.g. uint8 pixels)
            old = HoldoutScores(rows=len(rows), **{k: _score(m, rows, run, metric) for k, m in models.items()})
            if old.parent is not None and old.child is not None:
                forgetting = old.parent - old.child if direction == "max" else old.child - old.parent
        facts = Continuation(
            parent=str(self.parent.path), lineage=self.parent.lineage(), metric=metric, new_window=new_window,
            old_holdout=old, forgetting=forgetting, unseen=self.unseen, penalty=_applied(cfg),
            replay=ReplayFacts(
                parent_rows=len(self.parent_buffer) if self.parent_buffer is not None else 0,
                mixed_rows=self.replayed, ratio=replay.ratio if replay else 0.0, buffer_rows=buffer_rows,
                balanced_finetune_epochs=replay.balanced_finetune_epochs if replay else 0,
            ) if replay is not None else None,
        )  # fmt: skip
        return {"continual": facts}


def _score(model: nn.Module, data: TensorBatches, run: Run, metric: str) -> float | None:
    """The main `metric` of `model` on `data`, as the run's report computes it."""
    if not len(data):
        return None
    cfg = run.config
    raw = forward_all(model, data, cfg.evaluate.batch_size, run.device, cfg.train.precision)
    task = run.schema.task
    y = data.tensors[TARGET].numpy()
    predicted = outputs_to_predictions(task, raw)
    metrics = compute_metrics(task, y, predicted, run.schema.class_names, cfg.evaluate.threshold)
    value = metrics.get(metric)
    return float(value) if value is not None else None


def _applied(cfg: ExperimentConfig) -> dict[str, Any] | None:
    penalty = cfg.train.parent_penalty
    return penalty.model_dump(mode="json") if penalty is not None else None
