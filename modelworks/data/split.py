"""Splitting the data into train, validation and test frames, and k-fold indices.

Method "auto" resolves to "files" when validation_source or test_source is set, to "column" when
a split column is configured or the source has an official split, else to "random"; stratify
None resolves to True for classification. The resolved `SplitConfig` is returned so that it can
be written back into the stored config. Stratification never silently falls back: a class too
rare to split is an error that suggests ``stratify: false``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split

from modelworks.config.schema import DataConfig, SplitConfig
from modelworks.data.schema import Task
from modelworks.data.sources import LoadedData, read_source
from modelworks.errors import UserError

SPLIT_VALUES = {
    "train": "train",
    "validation": "validation",
    "val": "validation",
    "valid": "validation",
    "test": "test",
}


def split_frame(
    loaded: LoadedData, cfg: SplitConfig, task: Task, base_dir: Path, data_cfg: DataConfig
) -> tuple[dict[str, pd.DataFrame], SplitConfig]:
    """Frames "train", "validation" and "test" (possibly empty), and the resolved split config."""
    method = cfg.method
    if method == "auto":
        has_files = cfg.validation_source or cfg.test_source
        method = "files" if has_files else "column" if cfg.column or loaded.split_column else "random"
    stratify = cfg.stratify if cfg.stratify is not None else task != "regression"
    if stratify and task == "regression":
        raise UserError(
            "data.split.stratify needs a classification target, but the task is regression; set it to false"
        )
    column = cfg.column or (loaded.split_column if method == "column" else None)
    resolved = cfg.model_copy(update={"method": method, "stratify": stratify, "column": column})
    carve = _Carver(loaded.target, stratify, cfg.seed, loaded.origin)
    frame = loaded.frame

    if method == "random":
        train, validation, test = carve.three(frame, cfg.validation, cfg.test)
    elif method == "column":
        train, validation, test = _by_column(frame, column, loaded.origin)
        if validation.empty:
            train, validation = carve(train, cfg.validation, "validation")
    else:
        if not (cfg.validation_source or cfg.test_source):
            raise UserError("data.split.method files needs data.split.validation_source and/or test_source")
        train, validation, test = carve.three(
            frame, 0.0 if cfg.validation_source else cfg.validation, 0.0 if cfg.test_source else cfg.test
        )
        if cfg.validation_source:
            validation = read_source(data_cfg, base_dir, source=cfg.validation_source).frame
        if cfg.test_source:
            test = read_source(data_cfg, base_dir, source=cfg.test_source).frame
    return {"train": train, "validation": validation, "test": test}, resolved


def _by_column(frame: pd.DataFrame, column: str | None, origin: str) -> tuple[pd.DataFrame, ...]:
    if column is None:
        raise UserError("data.split.method column needs data.split.column (the column holding train/validation/test)")
    if column not in frame.columns:
        raise UserError(f"split column {column!r} is not in {origin}; columns: {', '.join(map(str, frame.columns))}")
    values = frame[column].map(lambda v: str(v).strip().lower())
    unknown = sorted(set(values) - set(SPLIT_VALUES))
    if unknown:
        raise UserError(
            f"split column {column!r} of {origin} holds {', '.join(map(repr, unknown[:10]))}; "
            f"allowed values: {', '.join(SPLIT_VALUES)}"
        )
    split = values.map(SPLIT_VALUES)
    return tuple(frame[split == name] for name in ("train", "validation", "test"))


class _Carver:
    """Random (optionally stratified) carving of a fraction of rows off a frame."""

    def __init__(self, target: str, stratify: bool, seed: int, origin: str) -> None:
        self.target, self.stratify, self.seed, self.origin = target, stratify, seed, origin

    def __call__(self, frame: pd.DataFrame, fraction: float, what: str) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(rest, part) with `fraction` of the rows of `frame` in part."""
        if fraction <= 0:
            return frame, frame.iloc[:0]
        labels = frame[self.target].map(str) if self.stratify else None
        try:
            rest, part = train_test_split(frame, test_size=fraction, random_state=self.seed, stratify=labels)
        except ValueError as e:
            if not self.stratify:
                raise UserError(
                    f"cannot carve a {what} split of {fraction:g} from {len(frame)} rows of {self.origin}: {e}"
                ) from e
            rare = labels.value_counts(ascending=True).head(5)
            raise UserError(
                f"cannot make a stratified {what} split of {self.origin}: {e} Rarest classes: "
                f"{', '.join(f'{k} ({v})' for k, v in rare.items())}. Set data.split.stratify: false, "
                "or add rows of these classes"
            ) from e
        return rest, part

    def three(self, frame: pd.DataFrame, validation: float, test: float) -> tuple[pd.DataFrame, ...]:
        """(train, validation, test): test first, then validation/(1 - test) of the rest."""
        rest, test_frame = self(frame, test, "test")
        train, validation_frame = self(rest, validation / (1 - test), "validation")
        return train, validation_frame, test_frame


def kfold_indices(y: np.ndarray, k: int, stratify: bool, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, validation) row positions of each of `k` shuffled folds, stratified on `y` if asked."""
    folds = (
        StratifiedKFold(k, shuffle=True, random_state=seed) if stratify else KFold(k, shuffle=True, random_state=seed)
    )
    y = np.asarray(y).astype(str) if stratify else np.asarray(y)
    try:
        return list(folds.split(np.zeros(len(y)), y))
    except ValueError as e:
        hint = " Set stratify to false or use fewer folds." if stratify else ""
        raise UserError(f"cannot make {k} folds of {len(y)} rows: {e}{hint}") from e
