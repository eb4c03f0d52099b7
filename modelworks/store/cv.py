"""``cv.json``: the summary of a k-fold cross-validation, declared once."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from modelworks.store.files import CV_JSON
from modelworks.store.jsonfile import Stored, read_model, write_model


class CrossValidation(Stored):
    """Each fold's scalar metrics, and their mean and standard deviation over the folds."""

    folds: int = Field(ge=2)
    per_fold: list[dict[str, float | None]]
    mean: dict[str, float | None]
    std: dict[str, float | None] = Field(description="sample standard deviation (ddof=1)")
    note: str = ""


def read_cv(folder: Path) -> CrossValidation:
    return read_model(Path(folder) / CV_JSON, CrossValidation)


def write_cv(folder: Path, summary: CrossValidation) -> Path:
    path = Path(folder) / CV_JSON
    write_model(path, summary)
    return path
