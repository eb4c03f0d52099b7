"""Resolve an experiment: every data-dependent choice made once and written into the config that
gets stored, the data split, and preprocessing fitted on the training split."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch

from modelworks.config.load import apply_overrides, load_config, validate
from modelworks.config.schema import ExperimentConfig, TextFeature
from modelworks.data.batches import TensorBatches
from modelworks.data.infer import infer_features, infer_task
from modelworks.data.preprocess import Preprocessor
from modelworks.data.sources import LoadedData, read_source
from modelworks.data.split import split_frame
from modelworks.data.text import UnknownTokenWarning
from modelworks.engine.settings import check_settings
from modelworks.models.pretrained import PretrainedConfig, pretrained_folder, resolve_pretrained
from modelworks.training.losses import resolve_loss
from modelworks.training.runtime import check_precision


@dataclass
class Prepared:
    """A resolved config with its data split and preprocessing fitted on the training split."""

    config: ExperimentConfig
    preprocessor: Preprocessor
    splits: dict[str, TensorBatches] = field(default_factory=dict)
    frames: dict[str, pd.DataFrame] = field(default_factory=dict)  # the same rows, raw (for baselines)
    notes: list[str] = field(default_factory=list)  # warnings about the run's settings and its text
    dropped: dict[str, int] = field(default_factory=dict)  # rows left out before splitting, by reason


def resolve(config: ExperimentConfig, base_dir: Path, device: torch.device) -> tuple[ExperimentConfig, LoadedData]:
    """Make every data-dependent choice once and write it into the config that gets stored.

    Relative data paths start from `base_dir`; the resolved config holds them absolute.
    """
    data = config.data
    loaded = read_source(data, base_dir)
    task = infer_task(loaded.frame[loaded.target], data.task, data.classes)
    features = infer_features(loaded, data)
    model = config.model
    if isinstance(model, PretrainedConfig):
        model = resolve_pretrained(model)
        folder = str(pretrained_folder(model))
        pretrained = {"tokenizer": "pretrained", "tokenizer_path": folder}
        features = [f.model_copy(update=pretrained) if isinstance(f, TextFeature) else f for f in features]
    source = data.source if data.source.startswith("builtin:") else str((base_dir / data.source).resolve())
    split_files = ("validation_source", "test_source")
    split = data.split.model_copy(
        update={k: str((base_dir / v).resolve()) for k in split_files if (v := getattr(data.split, k))}
    )
    check_precision(config.train.precision, device)
    resolved = config.model_copy(
        update={
            "model": model,
            "data": data.model_copy(
                update={
                    "source": source,
                    "split": split,
                    "target": loaded.target,
                    "task": task,
                    "features": features,
                    "encoding": loaded.encoding if data.encoding == "auto" and loaded.encoding else data.encoding,
                }  # fmt: skip
            ),
            "train": config.train.model_copy(
                update={"loss": resolve_loss(config.train.loss, task), "device": device.type}
            ),
        }
    )
    return validate(resolved.model_dump(mode="json"), "resolved config"), loaded


def prepare(
    config: ExperimentConfig, base_dir: Path, device: torch.device, state: dict | None = None, world_size: int = 1
) -> Prepared:
    """Resolve the config, split the data, fit preprocessing on the training split, and check the
    settings that count steps or epochs against the run's size (`check_settings`).

    With `state` (a stored run's preprocessing), reuse it instead of fitting again.
    """
    config, loaded = resolve(config, base_dir, device)
    frames, split_cfg = split_frame(loaded, config.data.split, config.data.task, base_dir, config.data)
    config = config.model_copy(update={"data": config.data.model_copy(update={"split": split_cfg})})
    features, target, task = config.data.features, config.data.target, config.data.task
    data_notes: list[str] = []
    if state is not None:
        preprocessor = Preprocessor.from_state(features, target, task, state)
    else:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", UnknownTokenWarning)
            preprocessor = Preprocessor(features, target, task, config.data.classes).fit(frames["train"])
        data_notes = [str(w.message) for w in caught if issubclass(w.category, UnknownTokenWarning)]
        for w in caught:  # shown as they would have been, and the unknown-token ones kept for the report
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    splits = {name: preprocessor.batches(frame) for name, frame in frames.items()}
    kept = {name: frame[~preprocessor.drop_mask(frame)] for name, frame in frames.items()}
    config, notes = check_settings(config, len(splits["train"]), world_size)
    return Prepared(config, preprocessor, splits, kept, data_notes + notes, loaded.dropped)


def as_config(
    config: ExperimentConfig | str | Path | dict, overrides: Sequence[str], base_dir: Path
) -> tuple[ExperimentConfig, Path, str]:
    """(validated config, folder its relative data paths start from, default run name).

    A config file's paths start from its own folder; a config object's or dict's from `base_dir`.
    """
    if isinstance(config, ExperimentConfig):
        raw = apply_overrides(config.model_dump(mode="json"), list(overrides))
        return validate(raw, "config"), base_dir, config.name or "run"
    if isinstance(config, dict):
        return validate(apply_overrides(config, list(overrides)), "config"), base_dir, config.get("name") or "run"
    path = Path(config)
    path = path if path.is_absolute() else base_dir / path
    cfg = load_config(path, overrides)
    return cfg, path.resolve().parent, cfg.name or path.stem
