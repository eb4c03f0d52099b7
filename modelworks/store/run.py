"""The run folder: one self-describing directory per training run, and `StoredRun`, its typed view.

=========================  ==========================================================
file                       holds
=========================  ==========================================================
``config.yaml``            the fully resolved experiment config (every default chosen)
``model.safetensors``      the trained weights
``preprocess.json``        fitted preprocessing state and the model's input schema
``metrics.jsonl``          step and epoch records, appended as training goes
``checkpoint.safetensors`` model, optimizer, schedule, RNG and counters for ``--resume``
``report.json/.html``      the evaluation report
``environment.json``       package versions, device, git commit
``cv.json``                a k-fold cross-validation summary, when one was run
=========================  ==========================================================

Reading a stored run needs no torch: the engine (`modelworks.engine.run.Run`) adds the model.
"""

from __future__ import annotations

from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from modelworks.config.load import read_yaml, validate
from modelworks.config.schema import ExperimentConfig
from modelworks.errors import UserError
from modelworks.store.atomic import atomic_write_text
from modelworks.store.cv import CrossValidation, read_cv
from modelworks.store.environment import Environment, read_environment
from modelworks.store.files import CHECKPOINT, CONFIG, CV_JSON, ENVIRONMENT, METRICS, PREPROCESS, REPORT_JSON, WEIGHTS
from modelworks.store.metrics import MetricsLog, TrainingRecord
from modelworks.store.preprocess import PreprocessRecord, read_preprocess
from modelworks.store.report import Report, read_report

RUNS_DIR = Path(ExperimentConfig.model_fields["runs_dir"].default)  # the schema's default, relative to a base folder

__all__ = [
    "CHECKPOINT", "CONFIG", "CV_JSON", "ENVIRONMENT", "METRICS", "PREPROCESS", "REPORT_JSON", "RUNS_DIR", "WEIGHTS",
    "StoredRun", "create_run_dir", "find_run", "write_config",
]  # fmt: skip


def create_run_dir(runs_dir: Path, name: str) -> Path:
    """A new, unique folder ``runs_dir/NAME-YYYYmmdd-HHMMSS[-k]``."""
    runs_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    for k in range(1000):
        path = runs_dir / (f"{name}-{stamp}" + (f"-{k}" if k else ""))
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise UserError(f"cannot create a new run folder in {runs_dir}")


def find_run(ref: str | Path, runs_dir: Path = RUNS_DIR, base_dir: Path | None = None) -> Path:
    """A run folder from a path, or a name (or unique prefix) under `runs_dir`.

    A relative `ref` or `runs_dir` starts from `base_dir` (the caller's folder; given by the
    facade and the command line, never guessed here).
    """
    base = Path(base_dir) if base_dir is not None else Path()
    path, runs_dir = base / ref, base / runs_dir
    if not (path / CONFIG).exists():
        is_name = len(Path(ref).parts) == 1 and not any(c in str(ref) for c in "*?[")  # a path is not a name prefix
        candidates = []
        if is_name and runs_dir.exists():
            candidates = sorted(p for p in runs_dir.glob(f"{ref}*") if (p / CONFIG).exists())
        if len(candidates) > 1 and not any(c.name == str(ref) for c in candidates):
            names = ", ".join(c.name for c in candidates[:5])
            raise UserError(f"run {str(ref)!r} is ambiguous in {runs_dir}: {names}")
        if not candidates:
            raise UserError(f"no run at {str(ref)!r}: expected a run folder holding {CONFIG}")
        path = candidates[-1]
    return path


def write_config(folder: Path, config: ExperimentConfig | dict[str, Any]) -> None:
    """``config.yaml``: the experiment, as YAML a person can read and edit."""
    raw = config.model_dump(mode="json") if isinstance(config, ExperimentConfig) else config
    atomic_write_text(Path(folder) / CONFIG, yaml.safe_dump(raw, sort_keys=False, allow_unicode=True))


class StoredRun:
    """A run folder read through its typed artifacts: config, preprocessing, report, history,
    environment and cross-validation. Nothing here loads the model (see `modelworks.engine.run`)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @property
    def name(self) -> str:
        return self.path.name

    @cached_property
    def config(self) -> ExperimentConfig:
        """The resolved experiment the run was trained with (``config.yaml``)."""
        return validate(read_yaml(self.path / CONFIG), str(self.path / CONFIG))

    @cached_property
    def preprocess(self) -> PreprocessRecord:
        return read_preprocess(self.path)

    @property
    def report(self) -> Report:
        """``report.json``, read afresh (a refreshed report shows at once)."""
        return read_report(self.path)

    @property
    def has_report(self) -> bool:
        return (self.path / REPORT_JSON).exists()

    @property
    def history(self) -> list[TrainingRecord]:
        """The per-epoch records of ``metrics.jsonl``, in order."""
        return MetricsLog(self.path / METRICS).epochs()

    @property
    def environment(self) -> Environment:
        return read_environment(self.path)

    @property
    def cv(self) -> CrossValidation | None:
        """The last k-fold cross-validation of this run's config, if one was run."""
        return read_cv(self.path) if (self.path / CV_JSON).exists() else None

    @property
    def has_weights(self) -> bool:
        """Whether training finished (or the run was compressed): ``model.safetensors`` exists."""
        return (self.path / WEIGHTS).exists()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r})"
