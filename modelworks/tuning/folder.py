"""The study folder: its files, the `Search` that every process loads from it, and resuming it.

The study folder, ``runs/NAME-tune-YYYYmmdd-HHMMSS/`` by default:

===================  =================================================================
``experiment.yaml``  the experiment searched: overrides applied, data paths absolute,
                     ``name``, ``tune.metric`` and ``tune.direction`` resolved
``study.log``        the Optuna study: JournalStorage on a JournalFileBackend, which several
                     processes may write at once; an interrupted search resumes from it
``trials/``          one run folder per trial (ordinary runs that evaluate/predict/report accept)
``trials.csv``       number, state, metric value, epochs, duration, params, run folder
``best.yaml``        the experiment with the best params applied, for ``modelworks train``
``tune.json/.html``  the tune report: trials, optimization history, parameter importance
===================  =================================================================

The first three are this module's; `results` writes the last three. A search resumes from
``study.log`` and ``experiment.yaml`` alone: `existing_study` finds them, `check_same_search`
makes sure a resumed study is given the experiment it searched.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna

from modelworks.config.load import read_yaml, validate
from modelworks.config.schema import TuneConfig
from modelworks.errors import UserError
from modelworks.store.files import STUDY_EXPERIMENT
from modelworks.tuning.declarations import PRUNERS, SAMPLERS
from modelworks.tuning.space import Space

STUDY_NAME = "modelworks"
EXPERIMENT = STUDY_EXPERIMENT
JOURNAL = "study.log"
TRIALS = "trials"


def without_tune(raw: dict[str, Any]) -> dict[str, Any]:
    """The experiment as a run trains it: everything but its ``tune`` section."""
    return {k: v for k, v in raw.items() if k != "tune"}


@dataclass
class Search:
    """A study folder's experiment, space and Optuna parts; every worker process loads its own."""

    study_dir: Path
    raw: dict[str, Any]
    tune: TuneConfig
    space: Space
    epochs: int

    @classmethod
    def load(cls, study_dir: Path) -> Search:
        raw = read_yaml(study_dir / EXPERIMENT)
        config = validate(raw, str(study_dir / EXPERIMENT))
        return cls(Path(study_dir), raw, config.tune, Space.build(config), config.train.epochs)

    @property
    def name(self) -> str:
        return self.raw["name"]

    @property
    def metric(self) -> str:
        return self.tune.metric

    @property
    def direction(self) -> str:
        return self.tune.direction

    @property
    def trials_dir(self) -> Path:
        return self.study_dir / TRIALS

    def storage(self) -> optuna.storages.BaseStorage:
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        return JournalStorage(JournalFileBackend(str(self.study_dir / JOURNAL)))

    def sampler(self, seed: int) -> optuna.samplers.BaseSampler:
        return SAMPLERS.get(self.tune.sampler, where="tune.sampler").impl(self, seed)

    def pruner(self) -> optuna.pruners.BasePruner:
        """The configured pruner; none with ``cv_folds`` (a cross-validated trial reports no epochs)."""
        name = "none" if self.tune.cv_folds else self.tune.pruner.type
        return PRUNERS.get(name, where="tune.pruner.type").impl(self)

    def trial_experiment(self, number: int, params: dict[str, Any]) -> dict[str, Any]:
        """The experiment a trial trains: params applied, its own name, runs in trials/, no checkpoints."""
        raw = self.space.apply(without_tune(self.raw), params)
        raw.update(name=f"{self.name}-trial-{number:04d}", runs_dir=str(self.trials_dir.resolve()))
        raw["train"] = {
            **(raw.get("train") or {}),
            "progress": False,
            "checkpoint": {"every_seconds": None, "every_epochs": None, "every_steps": None},
        }
        return raw

    def best_experiment(self, params: dict[str, Any]) -> dict[str, Any]:
        return self.space.apply(without_tune(self.raw), params)

    def trial_run(self, number: int) -> Path | None:
        found = sorted(self.trials_dir.glob(f"{self.name}-trial-{number:04d}-*"))
        return found[-1] if found else None


# ---------------------------------------------------------------------------------- resuming


def existing_study(resume: str | Path | None, study: str | Path | None) -> Path | None:
    """The study folder to resume: `resume` (which must hold a study), or `study` if it holds one."""
    if resume is not None:
        path = Path(resume)
        if not (path / JOURNAL).exists() or not (path / EXPERIMENT).exists():
            raise UserError(f"no study to resume at {path}: expected a folder holding {JOURNAL} and {EXPERIMENT}")
        return path
    if study is not None and (Path(study) / JOURNAL).exists():
        return Path(study)
    return None


def check_same_search(study_dir: Path, raw: dict[str, Any]) -> None:
    """A resumed study must search the same experiment; only trials, parallel and timeout may change."""
    stored = read_yaml(study_dir / EXPERIMENT)
    run_options = ("trials", "parallel", "timeout_s")
    differ = _differences(
        {**stored, "tune": {k: v for k, v in stored.get("tune", {}).items() if k not in run_options}},
        {**raw, "tune": {k: v for k, v in raw.get("tune", {}).items() if k not in run_options}},
    )
    if differ:
        raise UserError(
            f"{study_dir} searched a different experiment ({', '.join(differ[:5])} differ); "
            "resume it without an experiment file, or start a new study"
        )


def _differences(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in dict.fromkeys([*a, *b]) for d in _differences(a.get(k), b.get(k), f"{prefix}{k}.")]
    return [] if a == b else [prefix.rstrip(".")]
