"""A trained run with its model loaded: the operations on a stored run (predict, evaluate,
re-split, report, cross-validate). What the folder holds is `modelworks.store.run.StoredRun`."""

from __future__ import annotations

from pathlib import Path
from typing import Any, get_args

import numpy as np
import pandas as pd
import torch
from torch import nn

from modelworks.compression.methods import restore_model
from modelworks.config.schema import ExperimentConfig, Split
from modelworks.data.batches import TensorBatches
from modelworks.data.preprocess import Preprocessor
from modelworks.data.schema import TARGET, InputSchema
from modelworks.data.sources import LoadedData, read_source
from modelworks.data.split import split_frame
from modelworks.engine.cv import cross_validate
from modelworks.errors import UserError
from modelworks.evaluate.baselines import against_model, run_baselines
from modelworks.evaluate.metrics import compute_metrics, summarize
from modelworks.evaluate.report import write_report
from modelworks.models import build_model, count_parameters
from modelworks.models.pretrained import PretrainedConfig
from modelworks.store import run as store
from modelworks.store.cv import CrossValidation
from modelworks.store.metrics import TrainingRecord
from modelworks.store.report import Baselines
from modelworks.store.tensorio import load_weights
from modelworks.training.losses import outputs_to_predictions
from modelworks.training.runtime import forward_all, resolve_device
from modelworks.training.speed import evaluation_model

MAX_REPORT_POINTS = 2000  # predicted-vs-true pairs kept for a regression report's scatter plot


class Run(store.StoredRun):
    """A trained run folder with its preprocessing and model loaded, ready to evaluate and predict.

    `base_dir` is where relative data paths given to `predict` and `evaluate` start (the facade
    passes the caller's folder); without it they must be absolute.
    """

    def __init__(
        self, path: Path, config: ExperimentConfig, preprocessor: Preprocessor, model: nn.Module, device: torch.device,
        *, base_dir: Path | None = None,
    ) -> None:  # fmt: skip
        super().__init__(path)
        self.config = config  # may differ from config.yaml: a data source given to load_run
        self.preprocessor = preprocessor
        self.model = model.eval()
        self.device = device
        self.base_dir = None if base_dir is None else Path(base_dir)

    @property
    def schema(self) -> InputSchema:
        return self.preprocessor.schema_

    # ---- prediction
    def outputs(self, data: TensorBatches) -> np.ndarray:
        """Probabilities (classification) or values (regression) for every row of `data`."""
        model = evaluation_model(self.model, self.schema, self.config.evaluate.flip_average)
        raw = forward_all(model, data, self.config.evaluate.batch_size, self.device, self.config.train.precision)
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
    def evaluate(self, data: pd.DataFrame | str | Path | None = None, split: Split | None = None) -> dict[str, Any]:
        """Metrics on `data` (a frame or file with the target column), or on a split of the run's data.

        Rows of `data` left out (a missing target under ``data.missing_target: drop``, a missing
        value in a ``missing: drop`` feature) are counted in the metrics' ``dropped_rows``, by reason.
        """
        if data is None:
            return self._metrics(self._split(self.splits(), split or self.config.evaluate.split))
        loaded = None if isinstance(data, pd.DataFrame) else self._read(data)
        frame = data if loaded is None else loaded.frame
        if self.config.data.target not in frame.columns:
            raise UserError(f"evaluation data has no target column {self.config.data.target!r}")
        dropped = dict(loaded.dropped) if loaded is not None else {}
        if missing := int(self.preprocessor.drop_mask(frame).sum()):
            dropped["missing values"] = missing
        metrics = self._metrics(TensorBatches(self.preprocessor.transform(frame)))
        return {**metrics, "dropped_rows": dropped} if dropped else metrics

    def _metrics(self, data: TensorBatches) -> dict[str, Any]:
        if not len(data):
            raise UserError("the evaluation data has no rows")
        y = data.tensors[TARGET].numpy()
        threshold = self.config.evaluate.threshold
        return compute_metrics(self.schema.task, y, self.outputs(data), self.schema.class_names, threshold)

    def splits(self, frames: dict[str, pd.DataFrame] | None = None) -> dict[str, TensorBatches]:
        """The run's own train/validation/test rows, re-read and re-split exactly as in training
        (or `frames`, the run's `frames()` read already)."""
        frames = self.frames() if frames is None else frames
        return {name: TensorBatches(self.preprocessor.transform(frame)) for name, frame in frames.items()}

    def frames(self) -> dict[str, pd.DataFrame]:
        """The run's own splits as raw frames, without the rows preprocessing drops (row for row as `splits`)."""
        base = self.base_dir or self.path  # a resolved config's data paths are absolute already
        loaded = read_source(self.config.data, base)
        frames, _ = split_frame(loaded, self.config.data.split, self.config.data.task, base, self.config.data)
        return {name: frame[~self.preprocessor.drop_mask(frame)] for name, frame in frames.items()}

    def _split(self, splits: dict[str, TensorBatches], name: str) -> TensorBatches:
        if name not in splits:
            choices = ", ".join(s for s in get_args(Split) if s in splits)
            raise UserError(f"the run's data has no {name} split; evaluate one of: {choices}")
        return splits[name]

    def _read(self, source: str | Path, require_target: bool = True) -> LoadedData:
        if self.base_dir is None and not (str(source).startswith("builtin:") or Path(source).is_absolute()):
            raise UserError(f"{source}: give an absolute path (this run was opened without a base folder)")
        cfg = self.config.data.model_copy(update={"limit": None})
        return read_source(cfg, self.base_dir or self.path, source=str(source), require_target=require_target)

    # ---- report
    def save_report(
        self,
        splits: dict[str, TensorBatches],
        history: list[dict[str, Any]] | list[TrainingRecord] | None = None,
        extra: dict[str, Any] | None = None,
        frames: dict[str, pd.DataFrame] | None = None,
        fitted: tuple[Baselines | None, str] | None = None,
    ) -> dict[str, Any]:
        """Evaluate on ``evaluate.split`` and write ``report.json``/``.html``; returns the metrics.

        `history` (default: the run's epoch records) is drawn as the training curves; `extra`
        adds facts only the caller knows (best epoch, early stopping, a compression's parent).
        `frames` (the raw rows of `splits`, row for row) lets the report fit ``evaluate.baselines``;
        `fitted` is (baselines already scored on the same rows, set against this model instead of
        fitting them again, or None to fit them; a note saying which, kept with them).
        """
        split = self.config.evaluate.split
        data = self._split(splits, split)
        metrics = self._metrics(data)
        predictions = None
        if self.schema.task == "regression":
            y_true, y_pred = data.tensors[TARGET].tolist(), self.outputs(data).tolist()
            predictions = {"y_true": y_true[:MAX_REPORT_POINTS], "y_pred": y_pred[:MAX_REPORT_POINTS]}
        info = {
            "run": self.name, "model": self.config.model.type, "parameters": count_parameters(self.model),
            "evaluated_on": split, **{f"{k}_rows": len(v) for k, v in splits.items()}, **(extra or {}),
        }  # fmt: skip
        title = f"{self.name} — {self.config.model.type} on {self.config.data.source}"
        shown = self.history if history is None else history
        reused, note = fitted or (None, None)
        baselines = None
        if reused is not None:
            baselines = against_model(reused, self.schema.task, summarize(metrics), note=note)
        elif frames is not None:
            baselines = self._baselines(frames, splits, split, metrics)
            if baselines is not None and note:
                baselines.note = f"{baselines.note}; {note}" if baselines.note else note
        write_report(
            self.path, title, metrics, shown, self.schema.task, self.schema.class_names, info, predictions, baselines
        )
        return metrics

    def _baselines(
        self, frames: dict[str, pd.DataFrame], splits: dict[str, TensorBatches], split: str, metrics: dict[str, Any]
    ) -> Baselines | None:
        """The configured baselines, fitted on the training rows and scored on the `split` rows."""
        if "train" not in frames:
            return None
        train, test = (frames["train"], splits["train"]), (frames[split], splits[split])
        return run_baselines(
            self.config.evaluate, self.config.data.features, self.schema, train, test, summarize(metrics)
        )

    def refresh_report(self) -> dict[str, Any]:
        """Recompute the report from the stored model (e.g. after editing evaluate.split)."""
        kept = self.report.extra.kept_on_refresh() if self.has_report else {}
        frames = self.frames()
        return self.save_report(self.splits(frames), extra=kept, frames=frames)

    # ---- cross-validation
    def cross_validate(self, folds: int) -> CrossValidation:
        """k-fold cross-validation of this run's config; the summary is also written to ``cv.json``."""
        return cross_validate(self.config, folds, base_dir=self.base_dir or self.path, out_dir=self.path)


def load_run(
    ref: str | Path, runs_dir: str | Path = store.RUNS_DIR, device: str | None = None, *,
    source: str | None = None, base_dir: Path, data_root: str | Path | None = None,
) -> Run:  # fmt: skip
    """Open a run folder (a path, or a run name under `runs_dir`) for evaluation and prediction.

    Relative paths (`ref`, `runs_dir`, `source`, and data files given to the run later) start
    from `base_dir`. `source` reads the run's data (for its splits) from there instead of the
    file its config names: a run moved to another machine, whose data lies elsewhere; its paths
    then stay inside `data_root` (``data.root``) when given, else anywhere.
    """
    base_dir = Path(base_dir)
    stored = store.StoredRun(store.find_run(ref, Path(runs_dir), base_dir=base_dir))
    path, config = stored.path, stored.config
    if source is not None:
        if not source.startswith("builtin:"):
            source = str((base_dir / Path(source).expanduser()).resolve())
        root = str(data_root) if data_root is not None else None
        config = config.model_copy(update={"data": config.data.model_copy(update={"source": source, "root": root})})
    if isinstance(config.model, PretrainedConfig):
        config = config.model_copy(update={"model": config.model.model_copy(update={"load_weights": False})})
    pre = Preprocessor.from_state(config.data.features, config.data.target, config.data.task, stored.preprocess.state)
    dev = resolve_device(device or ("cpu" if config.train.device == "cpu" else "auto"))
    model = build_model(config.model, pre.schema_)
    if not stored.has_weights:
        raise UserError(f"{path} has no {store.WEIGHTS}: training did not finish; resume it with --resume {path}")
    if config.compression is not None:
        # A compressed run (quantized, pruned, half, ...) is rebuilt by the method that made it.
        model = restore_model(model, config.compression, path / store.WEIGHTS)
    else:
        model.load_state_dict(load_weights(path / store.WEIGHTS))
    return Run(path, config, pre, model.to(dev), dev, base_dir=base_dir)


def base_for(ref: str | Path, base_dir: Path | None) -> Path:
    """`base_dir`, or for an absolute `ref` any folder at all: a relative run reference needs the
    caller to say where it starts (the facade and the command line pass theirs)."""
    if base_dir is not None:
        return Path(base_dir)
    if Path(ref).is_absolute():
        return Path(ref)
    raise TypeError(f"run {str(ref)!r} is relative: pass base_dir, the folder it starts from")
