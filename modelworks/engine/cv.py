"""k-fold cross-validation: preprocessing and model refitted on each fold's training rows."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import torch

from modelworks.config.schema import CheckpointConfig, ExperimentConfig
from modelworks.data.batches import TensorBatches
from modelworks.data.preprocess import Preprocessor
from modelworks.data.schema import TARGET
from modelworks.data.split import kfold_indices
from modelworks.engine.resolve import resolve
from modelworks.engine.settings import check_settings
from modelworks.errors import UserError
from modelworks.evaluate.baselines import over_folds, run_baselines
from modelworks.evaluate.metrics import compute_metrics, summarize
from modelworks.models import build_model
from modelworks.store.cv import CrossValidation, write_cv
from modelworks.training.distributed import World
from modelworks.training.loop import fit
from modelworks.training.losses import outputs_to_predictions
from modelworks.training.runtime import forward_all, resolve_device, seed_everything
from modelworks.training.speed import evaluation_model

NOTE = "each fold trains for train.epochs epochs without early stopping; baselines fitted on each fold's training rows"


def cross_validate(
    config: ExperimentConfig, folds: int, base_dir: Path, out_dir: Path | None = None
) -> CrossValidation:
    """k-fold cross-validation of `config`; with `out_dir`, the summary is written there as ``cv.json``.

    Relative data paths start from `base_dir`; each fold trains in a scratch folder under
    `out_dir` (or `base_dir`) that is removed afterwards.
    """
    if folds < 2:
        raise UserError(f"--cv must be at least 2; got {folds}")
    device = resolve_device(config.train.device)
    config, loaded = resolve(config, Path(base_dir), device)
    frame = loaded.frame.reset_index(drop=True)
    target = config.data.target
    y = frame[target].to_numpy()
    stratify = config.data.task != "regression" and config.data.split.stratify is not False
    no_stopping = {"early_stopping": None, "progress": False, "checkpoint": CheckpointConfig(every_seconds=None)}
    train_cfg = config.train.model_copy(update=no_stopping)
    results, baselines = [], []
    for k, (train_idx, test_idx) in enumerate(kfold_indices(y, folds, stratify, config.data.split.seed)):
        seed_everything(config.train.seed, config.train.deterministic)
        train_rows, test_rows = frame.iloc[train_idx], frame.iloc[test_idx]
        pre = Preprocessor(config.data.features, target, config.data.task, config.data.classes)
        pre = pre.fit(train_rows)
        train_data = pre.batches(train_rows)
        test_data = TensorBatches(pre.transform(test_rows))
        fold_cfg, _ = check_settings(config.model_copy(update={"train": train_cfg, "tune": None}), len(train_data))
        torch.manual_seed(config.train.seed)
        model = build_model(config.model, pre.schema_).to(device)
        scratch = Path(out_dir or base_dir) / f".cv-fold-{k}"
        scratch.mkdir(parents=True, exist_ok=True)
        try:
            fit(model, train_data, None, fold_cfg.train, pre.schema_, device=device, world=World(), run_dir=scratch)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        scorer = evaluation_model(model, pre.schema_, config.evaluate.flip_average)
        raw = forward_all(scorer, test_data, config.evaluate.batch_size, device)
        y_true, threshold = test_data.tensors[TARGET].numpy(), config.evaluate.threshold
        metrics = compute_metrics(pre.schema_.task, y_true, outputs_to_predictions(pre.schema_.task, raw),
                                  pre.schema_.class_names, threshold)  # fmt: skip
        results.append(summarize(metrics))
        train_kept, test_kept = (rows[~pre.drop_mask(rows)] for rows in (train_rows, test_rows))
        fold = run_baselines(
            config.evaluate, config.data.features, pre.schema_, (train_kept, train_data), (test_kept, test_data),
            results[-1],
        )  # fmt: skip
        baselines.append(fold)
    table = pd.DataFrame(results)
    margin, verdict = over_folds(baselines)
    summary = CrossValidation(
        folds=folds, per_fold=results, mean=table.mean().to_dict(), std=table.std(ddof=1).to_dict(), note=NOTE,
        baselines=baselines if any(b is not None for b in baselines) else [], baseline_margin=margin,
        baseline_verdict=verdict, dropped_rows=loaded.dropped or None,
    )  # fmt: skip
    if out_dir is not None:
        write_cv(Path(out_dir), summary)
    return summary
