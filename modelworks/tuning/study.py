"""Hyperparameter search: an Optuna study over config paths, each trial an ordinary training run.

`tune` checks the experiment and its search space before anything is written, records the
resolved experiment in the study folder (a new one, or the one it resumes: see `folder`), runs
the trials still missing (`workers`, each trial as in `trial`) and writes the results
(`results`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import optuna
import yaml

from modelworks.config.load import apply_overrides, read_yaml, validate
from modelworks.config.schema import ExperimentConfig, TuneConfig
from modelworks.errors import UserError
from modelworks.evaluate.metrics import direction as metric_direction
from modelworks.evaluate.metrics import main_metric
from modelworks.store import run as store
from modelworks.store.atomic import atomic_write_text
from modelworks.tuning.folder import EXPERIMENT, STUDY_NAME, Search, check_same_search, existing_study, without_tune
from modelworks.tuning.results import TuneResult, finish
from modelworks.tuning.space import Space, tune_section
from modelworks.tuning.workers import TrialCallback, optuna_quiet, run_trials


class SearchInterrupted(KeyboardInterrupt):
    """Ctrl-C during a search; `study_dir` is where ``--resume`` picks it up."""

    def __init__(self, study_dir: Path) -> None:
        super().__init__(str(study_dir))
        self.study_dir = study_dir


def tune(
    config: ExperimentConfig | str | Path | dict | None = None,
    *,
    trials: int | None = None,
    parallel: int | None = None,
    timeout: float | None = None,
    overrides: Sequence[str] = (),
    study: str | Path | None = None,
    resume: str | Path | None = None,
    progress: bool = False,
    callbacks: Sequence[TrialCallback] = (),
    base_dir: Path,
) -> TuneResult:
    """Search the experiment's ``tune.space``; returns the best params, value, run and config.

    `trials`, `parallel` and `timeout` override ``tune.trials``, ``tune.parallel`` and
    ``tune.timeout_s``; `overrides` are ``KEY.PATH=VALUE`` strings as for ``train``. `resume`
    continues the study in that folder (its stored experiment, unless `config` is given: then the
    two must agree); `study` names the folder to use, resuming it if it already holds a study.
    With `progress`, one line per finished trial goes to stderr. Each of `callbacks` is called
    with a `TrialRecord` for every finished trial, once (as Optuna's ``optimize(callbacks=)``):
    a resumed study's earlier trials first, then each as it ends (see `modelworks.tuning.workers`).
    Relative paths (`study`, `resume`, and the data paths of a config given as a dict or object)
    start from `base_dir`; a config file's own data paths start from its folder.
    """
    study = None if study is None else Path(base_dir) / study
    resume = None if resume is None else Path(base_dir) / resume
    existing = existing_study(resume, study)
    # ---- the experiment and its search space, checked before anything is written
    if config is None:
        if existing is None:
            raise UserError("give an experiment (modelworks tune exp.yaml) or --resume STUDY_DIR")
        raw, base_dir, name = read_yaml(existing / EXPERIMENT), existing, None  # its paths are absolute
        raw = apply_overrides(raw, list(overrides))
    else:
        raw, base_dir, name = _read_experiment(config, overrides, base_dir)
    for key, value in (("trials", trials), ("parallel", parallel), ("timeout_s", timeout)):
        if value is not None and isinstance(raw.get("tune"), dict):
            raw["tune"][key] = value
    raw, runs_dir = resolve(raw, base_dir, name)
    # ---- the study folder
    if existing is not None:
        check_same_search(existing, raw)
        study_dir = existing
    else:
        study_dir = Path(study) if study is not None else store.create_run_dir(Path(runs_dir), f"{raw['name']}-tune")
        study_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(study_dir / EXPERIMENT, yaml.safe_dump(raw, sort_keys=False, allow_unicode=True))
    search = Search.load(study_dir)
    with optuna_quiet():
        optuna.create_study(
            study_name=STUDY_NAME,
            storage=search.storage(),
            load_if_exists=True,
            direction="maximize" if search.direction == "max" else "minimize",
        )
    # ---- the search
    try:
        run_trials(search, progress, callbacks)
    except KeyboardInterrupt:
        raise SearchInterrupted(study_dir) from None
    return finish(study_dir)


# ------------------------------------------------------------------------- the experiment


def resolve(raw: dict[str, Any], base_dir: Path, name: str | None) -> tuple[dict[str, Any], str]:
    """Validate the experiment and its space, and record the choices made for it: the run name,
    absolute data paths, ``tune.metric`` (default: ``val_`` + the task's main metric) and
    ``tune.direction``. Every problem is a UserError here, before any trial exists.
    Returns the recorded experiment and the runs folder the study goes in."""
    config = validate(raw, "experiment")
    tune_cfg = tune_section(config, "the experiment")
    Space.build(config)  # a bad path is reported before the data is read
    raw = _absolute_paths(raw, base_dir)
    metric = tune_cfg.metric or f"val_{main_metric(_task(config, base_dir))[0]}"
    check_search(config, raw, metric)
    tune_raw = dict(raw["tune"])
    tune_raw.update(
        metric=metric, direction=metric_direction(metric) if tune_cfg.direction == "auto" else tune_cfg.direction
    )
    if isinstance(tune_raw.get("pruner"), str):
        tune_raw["pruner"] = {"type": tune_raw["pruner"]}
    raw = {"name": name or raw.get("name") or "run", **{k: v for k, v in raw.items() if k != "name"}, "tune": tune_raw}
    return raw, config.runs_dir


def check_search(
    config: ExperimentConfig, raw: dict[str, Any], metric: str | None, origin: str = "the experiment"
) -> TuneConfig:
    """The checks of a search that need no data, in one place for `tune` and for the platform's
    job check (`modelworks.api.check_job_config`): a ``tune:`` section, a space whose every path
    and value gives a valid experiment (written into `raw`), a validation metric (when `metric`
    is known; its default comes from the data), and validation data to score trials on."""
    tune_cfg = tune_section(config, origin)
    space = Space.build(config)
    if metric is not None and not metric.startswith("val_"):
        raise UserError(
            f"tune.metric must be a validation metric, logged every epoch; got {metric!r} "
            f"(did you mean 'val_{metric}'?)"
        )
    if tune_cfg.cv_folds and metric == "val_loss":
        raise UserError("tune.metric val_loss is not measured by cross-validation; use e.g. val_log_loss or val_rmse")
    if (
        not tune_cfg.cv_folds
        and config.data.split.method == "random"
        and config.data.split.validation == 0
        and config.data.split.validation_source is None
    ):
        raise UserError("tune scores each trial on validation data, but data.split.validation is 0; set it above 0")
    space.check(without_tune(raw))
    return tune_cfg


def _read_experiment(
    config: ExperimentConfig | str | Path | dict, overrides: Sequence[str], base_dir: Path
) -> tuple[dict, Path, str | None]:
    """(plain experiment dict with overrides applied, folder relative paths start from, name)."""
    if isinstance(config, ExperimentConfig):
        return apply_overrides(config.model_dump(mode="json"), list(overrides)), base_dir, config.name
    if isinstance(config, dict):
        return apply_overrides(config, list(overrides)), base_dir, config.get("name")
    path = base_dir / config
    raw = apply_overrides(read_yaml(path), list(overrides))
    return raw, path.resolve().parent, raw.get("name") or path.stem


def _absolute_paths(raw: dict[str, Any], base_dir: Path) -> dict[str, Any]:
    """Data paths made absolute (as `modelworks.engine.resolve` does), so the stored experiment and
    best.yaml work from the study folder."""
    raw = yaml.safe_load(yaml.safe_dump(raw))
    data = raw.get("data") or {}
    source = data.get("source")
    if isinstance(source, str) and not source.startswith("builtin:") and data.get("format") != "builtin":
        data["source"] = str((base_dir / Path(source).expanduser()).resolve())
    split = data.get("split") or {}
    for key in ("validation_source", "test_source"):
        if isinstance(split.get(key), str):
            split[key] = str((base_dir / Path(split[key]).expanduser()).resolve())
    return raw


def _task(config: ExperimentConfig, base_dir: Path) -> str:
    if config.data.task != "auto":
        return config.data.task
    from modelworks.data.infer import infer_task
    from modelworks.data.sources import read_source

    loaded = read_source(config.data, base_dir)
    return infer_task(loaded.frame[loaded.target], "auto")
