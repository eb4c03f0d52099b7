"""``cv.json``: the summary of a k-fold cross-validation, declared once."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from modelworks.store.files import CV_JSON
from modelworks.store.jsonfile import Stored, read_model, write_model
from modelworks.store.report import Baselines


class CrossValidation(Stored):
    """Each fold's scalar metrics, and their mean and standard deviation over the folds; each
    fold's baselines (fitted on its training rows, scored on its test rows) and the model's mean
    margin over the best of them."""

    folds: int = Field(ge=2)
    per_fold: list[dict[str, float | None]]
    mean: dict[str, float | None]
    std: dict[str, float | None] = Field(description="sample standard deviation (ddof=1)")
    note: str = ""
    baselines: list[Baselines | None] = Field(default_factory=list, description="each fold's (evaluate.baselines)")
    baseline_margin: float | None = Field(None, description="the mean over the folds of the margin over the best")
    baseline_verdict: str | None = Field(None, description="one plain sentence: does the model beat its baselines")
    dropped_rows: dict[str, int] | None = Field(None, description="rows left out before the folds, by reason")


def read_cv(folder: Path) -> CrossValidation:
    return read_model(Path(folder) / CV_JSON, CrossValidation)


def write_cv(folder: Path, summary: CrossValidation) -> Path:
    path = Path(folder) / CV_JSON
    write_model(path, summary)
    return path
