"""The engine's orchestration: resolve a config, prepare data, train a run, reopen a run.

Tuning and compression build on these functions; `modelworks.api` is the public facade over all
of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch
import yaml
from torch import nn

from modelworks.compression.methods import restore_model
from modelworks.config.load import apply_overrides, load_config, read_yaml, validate
from modelworks.config.schema import CheckpointConfig, ExperimentConfig, TextFeature
from modelworks.data.batches import TensorBatches
from modelworks.data.infer import infer_features, infer_task
from modelworks.data.preprocess import Preprocessor
from modelworks.data.schema import TARGET, InputSchema
from modelworks.data.sources import LoadedData, read_source
from modelworks.data.split import kfold_indices, split_frame
from modelworks.errors import UserError
from modelworks.evaluate.metrics import compute_metrics, main_metric, summarize
from modelworks.evaluate.report import write_report
from modelworks.models import build_model, count_parameters
from modelworks.models.pretrained import PretrainedConfig, pretrained_folder, resolve_pretrained
from modelworks.store import run as store
from modelworks.store.atomic import atomic_write_text
from modelworks.store.tensorio import load_weights, save_weights
from modelworks.training.callbacks import Callback, ProgressBar
from modelworks.training.distributed import World, barrier, broadcast_str, init_world, shutdown
from modelworks.training.loop import fit
from modelworks.training.losses import outputs_to_predictions, resolve_loss
from modelworks.training.runtime import check_precision, forward_all, resolve_device, seed_everything

# ------------------------------------------------------------------------------------- resolve


@dataclass
class Prepared:
    """A resolved config with its data split and preprocessing fitted on the training split."""

    config: ExperimentConfig
    preprocessor: Preprocessor
    splits: dict[str, TensorBatches] = field(default_factory=dict)


def resolve(config: ExperimentConfig, base_dir: Path, device: torch.device) -> tuple[ExperimentConfig, LoadedData]:
    """Make every data-dependent choice once and write it into the config that gets stored."""
    data = config.data
    loaded = read_source(data, base_dir)
    task = infer_task(loaded.frame[loaded.target], data.task)
    features = infer_features(loaded, data)
    model = config.model
    if isinstance(model, PretrainedConfig):
        model = resolve_pretrained(model)
        folder = str(pretrained_folder(model))
        features = [
            f.model_copy(update={"tokenizer": "pretrained", "tokenizer_path": folder}) if isinstance(f, TextFeature) else f
            for f in features
        ]
    source = data.source if data.source.startswith("builtin:") else str((base_dir / data.source).resolve())
    split = data.split.model_copy(
        update={k: str((base_dir / v).resolve()) for k in ("validation_source", "test_source") if (v := getattr(data.split, k))}
    )
    check_precision(config.train.precision, device)
    resolved = config.model_copy(
        update={
            "model": model,
            "data": data.model_copy(
                update={"source": source, "split": split, "target": loaded.target, "task": task, "features": features}
            ),
            "train": config.train.model_copy(update={"loss": resolve_loss(config.train.loss, task), "device": device.type}),
        }
    )
    return validate(resolved.model_dump(mode="json"), "resolved config"), loaded


def prepare(config: ExperimentConfig, base_dir: Path, device: torch.device, state: dict | None = None) -> Prepared:
    """Resolve the config, split the data and fit preprocessing on the training split.

    With `state` (a stored run's preprocessing), reuse it instead of fitting again.
    """
    config, loaded = resolve(config, base_dir, device)
    frames, split_cfg = split_frame(loaded, config.data.split, config.data.task, base_dir, config.data)
    config = config.model_copy(update={"data": config.data.model_copy(update={"split": split_cfg})})
    features, target, task = config.data.features, config.data.target, config.data.task
    if state is not None:
        preprocessor = Preprocessor.from_state(features, target, task, state)
    else:
        preprocessor = Preprocessor(features, target, task).fit(frames["train"])
    splits = {name: TensorBatches(preprocessor.transform(frame)) for name, frame in frames.items()}
    return Prepared(config, preprocessor, splits)


def _as_config(config: ExperimentConfig | str | Path | dict, overrides: Sequence[str]) -> tuple[ExperimentConfig, Path, str]:
    """(validated config, folder that relative paths start from, default run name)."""
    if isinstance(config, ExperimentConfig):
        raw = apply_overrides(config.model_dump(mode="json"), list(overrides))
        return validate(raw, "config"), Path.cwd(), config.name or "run"
    if isinstance(config, dict):
        return validate(apply_overrides(config, list(overrides)), "config"), Path.cwd(), config.get("name") or "run"
    path = Path(config)
    cfg = load_config(path, overrides)
    return cfg, path.resolve().parent, cfg.name or path.stem


# --------------------------------------------------------------------------------------- train


def train(
    config: ExperimentConfig | str | Path | dict,
    *,
    overrides: Sequence[str] = (),
    resume: str | Path | None = None,
    callbacks: Sequence[Callback] = (),
    progress: bool | None = None,
) -> "Run | None":
    """Train a model from an experiment; returns the finished `Run` (None on non-zero DDP ranks).

    With `resume`, continues that run from its last checkpoint with its stored config.
    """
    if resume is not None:
        run_dir = store.find_run(resume)
        cfg, base_dir, name = _as_config(run_dir / store.CONFIG, overrides)
    else:
        cfg, base_dir, name = _as_config(config, overrides)
    device_type = resolve_device(cfg.train.device).type
    world = init_world(device_type)
    try:
        device = resolve_device(cfg.train.device, world.local_rank)
        seed_everything(cfg.train.seed, cfg.train.deterministic)
        state = store.read_json(store.find_run(resume) / store.PREPROCESS)["state"] if resume is not None else None
        prepared = prepare(cfg, base_dir, device, state)
        cfg = prepared.config
        run_dir = _start_run(cfg, name, prepared.preprocessor, world, device, resume)
        torch.manual_seed(cfg.train.seed)  # identical initial weights on every rank and on resume
        model = build_model(cfg.model, prepared.preprocessor.schema_).to(device)
        show = cfg.train.progress if progress is None else progress
        bar = [ProgressBar(main_metric(cfg.data.task)[0])] if show and world.is_main else []
        result = fit(
            model, prepared.splits["train"], prepared.splits.get("validation"), cfg.train, prepared.preprocessor.schema_,
            device=device, world=world, run_dir=run_dir, class_counts=_class_counts(prepared),
            augment=prepared.preprocessor.augment, callbacks=[*bar, *callbacks], resume=resume is not None,
        )
        barrier(world)
        if not world.is_main:
            return None
        save_weights(run_dir / store.WEIGHTS, model.state_dict())
        run = Run(run_dir, cfg, prepared.preprocessor, model, device)
        run.save_report(prepared.splits, result.history, extra={"best_epoch": result.best_epoch, "stopped_early": result.state.stop_training and result.state.epoch < cfg.train.epochs})
        return run
    finally:
        shutdown(world)


def _start_run(cfg: ExperimentConfig, name: str, pre: Preprocessor, world: World, device: torch.device, resume) -> Path:
    """Create (or reopen, when resuming) the run folder and write what is known before training."""
    if resume is not None:
        return store.find_run(resume)
    path = ""
    if world.is_main:
        path = str(store.create_run_dir(Path(cfg.runs_dir), name))
        atomic_write_text(Path(path) / store.CONFIG, yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False, allow_unicode=True))
        store.write_json(Path(path) / store.PREPROCESS, {"state": pre.state_dict(), "schema": pre.schema_.to_json()})
        store.write_json(Path(path) / store.ENVIRONMENT, {**store.environment_info(str(device)), "world_size": world.size})
    return Path(broadcast_str(path, world))


def _class_counts(prepared: Prepared) -> np.ndarray | None:
    schema = prepared.preprocessor.schema_
    if schema.task == "regression":
        return None
    target = prepared.splits["train"].tensors[TARGET].long()
    return np.bincount(target.numpy(), minlength=schema.num_classes)


# ----------------------------------------------------------------------------------------- run


class Run:
    """A trained run folder: its config, preprocessing and model, ready to evaluate and predict."""

    def __init__(self, path: Path, config: ExperimentConfig, preprocessor: Preprocessor, model: nn.Module, device: torch.device) -> None:
        self.path = Path(path)
        self.config = config
        self.preprocessor = preprocessor
        self.model = model.eval()
        self.device = device

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def schema(self) -> InputSchema:
        return self.preprocessor.schema_

    @property
    def report(self) -> dict[str, Any]:
        return store.read_json(self.path / store.REPORT_JSON)

    @property
    def history(self) -> list[dict[str, Any]]:
        return [r for r in store.MetricsLog(self.path / store.METRICS).read() if r.get("kind") == "epoch"]

    # ---- prediction
    def outputs(self, data: TensorBatches) -> np.ndarray:
        """Probabilities (classification) or values (regression) for every row of `data`."""
        raw = forward_all(self.model, data, 256, self.device, self.config.train.precision)
        return outputs_to_predictions(self.schema.task, raw)

    def predict(self, data: pd.DataFrame | str | Path, proba: bool = False) -> pd.DataFrame:
        """Predictions for a DataFrame or a data file, one row per input row (in order)."""
        frame = self._read(data, require_target=False).frame if not isinstance(data, pd.DataFrame) else data
        keep = ~self.preprocessor.drop_mask(frame, with_target=False)
        if not keep.any():
            raise UserError("no rows left to predict after removing rows with missing values")
        tensors = TensorBatches(self.preprocessor.transform(frame, with_target=False))
        out = self.outputs(tensors)
        result = pd.DataFrame(index=frame.index[keep])
        task = self.schema.task
        if task == "regression":
            result["prediction"] = out
        else:
            index = (out >= self.config.evaluate.threshold).astype(int) if task == "binary" else out.argmax(1)
            result["prediction"] = self.preprocessor.decode_target(index)
            if proba:
                probs = np.stack([1 - out, out], 1) if task == "binary" else out
                for k, cls in enumerate(self.schema.class_names):
                    result[f"proba_{cls}"] = probs[:, k]
        return result.reindex(frame.index) if not keep.all() else result

    # ---- evaluation
    def evaluate(self, data: pd.DataFrame | str | Path | None = None, split: str | None = None) -> dict[str, Any]:
        """Metrics on `data` (a frame or file with the target column), or on a split of the run's data."""
        if data is None:
            split = split or self.config.evaluate.split
            tensors = self.splits()[split]
        else:
            frame = data if isinstance(data, pd.DataFrame) else self._read(data).frame
            if self.config.data.target not in frame.columns:
                raise UserError(f"evaluation data has no target column {self.config.data.target!r}")
            tensors = TensorBatches(self.preprocessor.transform(frame))
        return self._metrics(tensors)

    def _metrics(self, data: TensorBatches) -> dict[str, Any]:
        if not len(data):
            raise UserError("the evaluation data has no rows")
        y = data.tensors[TARGET].numpy()
        return compute_metrics(self.schema.task, y, self.outputs(data), self.schema.class_names, self.config.evaluate.threshold)

    def splits(self) -> dict[str, TensorBatches]:
        """The run's own train/validation/test rows, re-read and re-split exactly as in training."""
        loaded = read_source(self.config.data, Path.cwd())
        frames, _ = split_frame(loaded, self.config.data.split, self.config.data.task, Path.cwd(), self.config.data)
        return {name: TensorBatches(self.preprocessor.transform(frame)) for name, frame in frames.items()}

    def _read(self, source: str | Path, require_target: bool = True) -> LoadedData:
        cfg = self.config.data.model_copy(update={"limit": None})
        return read_source(cfg, Path.cwd(), source=str(source), require_target=require_target)

    def save_report(self, splits: dict[str, TensorBatches], history: list[dict[str, Any]], extra: dict[str, Any]) -> dict[str, Any]:
        split = self.config.evaluate.split
        data = splits[split]
        metrics = self._metrics(data)
        predictions = None
        if self.schema.task == "regression":
            predictions = {"y_true": data.tensors[TARGET].tolist()[:2000], "y_pred": self.outputs(data).tolist()[:2000]}
        info = {
            "run": self.name, "model": self.config.model.type, "parameters": count_parameters(self.model),
            "evaluated_on": split, **{f"{k}_rows": len(v) for k, v in splits.items()}, **extra,
        }
        write_report(self.path, f"{self.name} — {self.config.model.type} on {self.config.data.source}", metrics,
                     self.history, self.schema.task, self.schema.class_names, extra=info, predictions=predictions)
        return metrics

    def refresh_report(self) -> dict[str, Any]:
        """Recompute the report from the stored model (e.g. after editing evaluate.split)."""
        report = self.report if (self.path / store.REPORT_JSON).exists() else {}
        return self.save_report(self.splits(), self.history, extra={k: v for k, v in report.get("extra", {}).items() if k in ("best_epoch", "stopped_early")})

    # ---- cross-validation
    def cross_validate(self, folds: int) -> dict[str, Any]:
        return cross_validate(self.config, folds, base_dir=Path.cwd(), out_dir=self.path)


def load_run(ref: str | Path, runs_dir: str | Path = "runs", device: str | None = None, *, source: str | None = None) -> Run:
    """Open a run folder (a path, or a run name under `runs_dir`) for evaluation and prediction.
    `source` reads the run's data (for its splits) from there instead of the file its config
    names: a run moved to another machine, whose data lies elsewhere."""
    path = store.find_run(ref, Path(runs_dir))
    config = validate(read_yaml(path / store.CONFIG), str(path / store.CONFIG))
    if source is not None:
        config = config.model_copy(update={"data": config.data.model_copy(update={"source": source})})
    if isinstance(config.model, PretrainedConfig):
        config = config.model_copy(update={"model": config.model.model_copy(update={"load_weights": False})})
    saved = store.read_json(path / store.PREPROCESS)
    pre = Preprocessor.from_state(config.data.features, config.data.target, config.data.task, saved["state"])
    dev = resolve_device(device or ("cpu" if config.train.device == "cpu" else "auto"))
    model = build_model(config.model, pre.schema_)
    if not (path / store.WEIGHTS).exists():
        raise UserError(f"{path} has no {store.WEIGHTS}: training did not finish; resume it with --resume {path}")
    if config.compression is not None:
        # A compressed run (quantized, pruned, half, ...) is rebuilt by the method that made it,
        # found in the registry of compression methods (declared without importing them).
        model = restore_model(model, config.compression, path / store.WEIGHTS)
    else:
        model.load_state_dict(load_weights(path / store.WEIGHTS))
    return Run(path, config, pre, model.to(dev), dev)


# ---------------------------------------------------------------------------- cross-validation


def cross_validate(config: ExperimentConfig, folds: int, base_dir: Path, out_dir: Path | None = None) -> dict[str, Any]:
    """k-fold cross-validation: preprocessing and model refitted on each fold's training rows."""
    if folds < 2:
        raise UserError(f"--cv must be at least 2; got {folds}")
    device = resolve_device(config.train.device)
    config, loaded = resolve(config, base_dir, device)
    frame = loaded.frame.reset_index(drop=True)
    target = config.data.target
    y = frame[target].to_numpy()
    stratify = config.data.task != "regression" and config.data.split.stratify is not False
    train_cfg = config.train.model_copy(update={"early_stopping": None, "progress": False, "checkpoint": CheckpointConfig(every_epochs=None)})
    results = []
    for k, (train_idx, test_idx) in enumerate(kfold_indices(y, folds, stratify, config.data.split.seed)):
        seed_everything(config.train.seed, config.train.deterministic)
        pre = Preprocessor(config.data.features, target, config.data.task).fit(frame.iloc[train_idx])
        train_data = TensorBatches(pre.transform(frame.iloc[train_idx]))
        test_data = TensorBatches(pre.transform(frame.iloc[test_idx]))
        torch.manual_seed(config.train.seed)
        model = build_model(config.model, pre.schema_).to(device)
        scratch = Path(out_dir or base_dir) / f".cv-fold-{k}"
        scratch.mkdir(parents=True, exist_ok=True)
        fit(model, train_data, None, train_cfg, pre.schema_, device=device, world=World(), run_dir=scratch)
        for f in scratch.iterdir():
            f.unlink()
        scratch.rmdir()
        out = outputs_to_predictions(pre.schema_.task, forward_all(model, test_data, 256, device))
        metrics = compute_metrics(pre.schema_.task, test_data.tensors[TARGET].numpy(), out, pre.schema_.class_names, config.evaluate.threshold)
        results.append(summarize(metrics))
    table = pd.DataFrame(results)
    summary = {
        "folds": folds,
        "per_fold": results,
        "mean": table.mean().to_dict(),
        "std": table.std(ddof=1).to_dict(),
        "note": "each fold trains for train.epochs epochs without early stopping",
    }
    if out_dir is not None:
        store.write_json(Path(out_dir) / "cv.json", summary)
    return summary
