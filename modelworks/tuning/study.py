"""Hyperparameter search: an Optuna study over config paths, each trial an ordinary training run.

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

Each trial is `pipeline.train` on the experiment with the trial's params written in, without
checkpoints (a study resumes trial by trial, not within one), its metric reported to Optuna at
the end of every epoch so that the pruner can stop it.

Counting: the search runs until ``tune.trials`` trials have finished COMPLETE or PRUNED, those of
earlier sessions included. A FAILED trial (a NaN metric, or one cut off by an interruption) does
not count. Each session hands out exactly the trials still missing, one at a time, to its
workers, so P parallel workers never start more than asked for. Resuming assumes that no other
search is running on the same study: trials still marked RUNNING are taken as interrupted.

With ``tune.keep: best`` (the default) the weights of every trial run but the best are deleted
once the search ends; their configs, metrics and reports stay. ``keep: all`` keeps them.
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import os
import queue
import time
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import optuna
import pandas as pd
import yaml
from optuna.trial import TrialState

from modelworks.config.load import apply_overrides, read_yaml, validate
from modelworks.config.schema import ExperimentConfig, TuneConfig
from modelworks.errors import UserError
from modelworks.evaluate.metrics import direction as metric_direction
from modelworks.evaluate.metrics import main_metric
from modelworks.store import run as store
from modelworks.store.atomic import atomic_write_text
from modelworks.training.callbacks import Callback, TrainState
from modelworks.tuning.report import write_tune_report
from modelworks.tuning.space import Space, tune_section

STUDY_NAME = "modelworks"
EXPERIMENT = "experiment.yaml"
JOURNAL = "study.log"
TRIALS = "trials"
COUNTED = (TrialState.COMPLETE, TrialState.PRUNED)


class SearchInterrupted(KeyboardInterrupt):
    """Ctrl-C during a search; `study_dir` is where ``--resume`` picks it up."""

    def __init__(self, study_dir: Path) -> None:
        super().__init__(str(study_dir))
        self.study_dir = study_dir


@dataclass
class TuneResult:
    """What a search found. `trials` has one row per trial (as in ``trials.csv``)."""

    study_dir: Path
    metric: str
    direction: str
    best_value: float | None
    best_params: dict[str, Any]
    best_trial: int | None
    best_run: Path | None
    best_config: Path | None
    report: Path
    trials: pd.DataFrame
    notes: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------------ tune


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
) -> TuneResult:
    """Search the experiment's ``tune.space``; returns the best params, value, run and config.

    `trials`, `parallel` and `timeout` override ``tune.trials``, ``tune.parallel`` and
    ``tune.timeout_s``; `overrides` are ``KEY.PATH=VALUE`` strings as for ``train``. `resume`
    continues the study in that folder (its stored experiment, unless `config` is given: then the
    two must agree); `study` names the folder to use, resuming it if it already holds a study.
    With `progress`, one line per finished trial goes to stderr.
    """
    existing = _existing_study(resume, study)
    # ---- the experiment and its search space, checked before anything is written
    if config is None:
        if existing is None:
            raise UserError("give an experiment (modelworks tune exp.yaml) or --resume STUDY_DIR")
        raw, base_dir, name = read_yaml(existing / EXPERIMENT), existing, None
        raw = apply_overrides(raw, list(overrides))
    else:
        raw, base_dir, name = _read_experiment(config, overrides)
    for key, value in (("trials", trials), ("parallel", parallel), ("timeout_s", timeout)):
        if value is not None and isinstance(raw.get("tune"), dict):
            raw["tune"][key] = value
    raw, runs_dir = resolve(raw, base_dir, name)
    # ---- the study folder
    if existing is not None:
        _check_same_search(existing, raw)
        study_dir = existing
    else:
        study_dir = Path(study) if study is not None else store.create_run_dir(Path(runs_dir), f"{raw['name']}-tune")
        study_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(study_dir / EXPERIMENT, yaml.safe_dump(raw, sort_keys=False, allow_unicode=True))
    search = Search.load(study_dir)
    with _optuna_quiet():
        optuna.create_study(study_name=STUDY_NAME, storage=search.storage(), load_if_exists=True,
                            direction="maximize" if search.direction == "max" else "minimize")
    # ---- the search
    try:
        _run(search, progress)
    except KeyboardInterrupt:
        raise SearchInterrupted(study_dir) from None
    return finish(study_dir)


def resolve(raw: dict[str, Any], base_dir: Path, name: str | None) -> tuple[dict[str, Any], str]:
    """Validate the experiment and its space, and record the choices made for it: the run name,
    absolute data paths, ``tune.metric`` (default: ``val_`` + the task's main metric) and
    ``tune.direction``. Every problem is a UserError here, before any trial exists.
    Returns the recorded experiment and the runs folder the study goes in."""
    config = validate(raw, "experiment")
    tune_cfg = tune_section(config, "the experiment")
    space = Space.build(config)
    raw = _absolute_paths(raw, base_dir)
    metric = tune_cfg.metric or f"val_{main_metric(_task(config, base_dir))[0]}"
    if not metric.startswith("val_"):
        raise UserError(f"tune.metric must be a validation metric, logged every epoch; got {metric!r} "
                        f"(did you mean 'val_{metric}'?)")
    if tune_cfg.cv_folds and metric == "val_loss":
        raise UserError("tune.metric val_loss is not measured by cross-validation; use e.g. val_log_loss or val_rmse")
    if not tune_cfg.cv_folds and config.data.split.method == "random" and config.data.split.validation == 0 \
            and config.data.split.validation_source is None:
        raise UserError("tune scores each trial on validation data, but data.split.validation is 0; set it above 0")
    tune_raw = dict(raw["tune"])
    tune_raw.update(metric=metric, direction=metric_direction(metric) if tune_cfg.direction == "auto" else tune_cfg.direction)
    if isinstance(tune_raw.get("pruner"), str):
        tune_raw["pruner"] = {"type": tune_raw["pruner"]}
    raw = {"name": name or raw.get("name") or "run", **{k: v for k, v in raw.items() if k != "name"}, "tune": tune_raw}
    space.check(_without_tune(raw))
    return raw, config.runs_dir


def _read_experiment(config: ExperimentConfig | str | Path | dict, overrides: Sequence[str]) -> tuple[dict, Path, str | None]:
    """(plain experiment dict with overrides applied, folder relative paths start from, name)."""
    if isinstance(config, ExperimentConfig):
        return apply_overrides(config.model_dump(mode="json"), list(overrides)), Path.cwd(), config.name
    if isinstance(config, dict):
        return apply_overrides(config, list(overrides)), Path.cwd(), config.get("name")
    path = Path(config)
    raw = apply_overrides(read_yaml(path), list(overrides))
    return raw, path.resolve().parent, raw.get("name") or path.stem


def _existing_study(resume: str | Path | None, study: str | Path | None) -> Path | None:
    if resume is not None:
        path = Path(resume)
        if not (path / JOURNAL).exists() or not (path / EXPERIMENT).exists():
            raise UserError(f"no study to resume at {path}: expected a folder holding {JOURNAL} and {EXPERIMENT}")
        return path
    if study is not None and (Path(study) / JOURNAL).exists():
        return Path(study)
    return None


def _check_same_search(study_dir: Path, raw: dict[str, Any]) -> None:
    """A resumed study must search the same experiment; only trials, parallel and timeout may change."""
    stored = read_yaml(study_dir / EXPERIMENT)
    run_options = ("trials", "parallel", "timeout_s")
    differ = _differences(
        {**stored, "tune": {k: v for k, v in stored.get("tune", {}).items() if k not in run_options}},
        {**raw, "tune": {k: v for k, v in raw.get("tune", {}).items() if k not in run_options}},
    )
    if differ:
        raise UserError(f"{study_dir} searched a different experiment ({', '.join(differ[:5])} differ); "
                        "resume it without an experiment file, or start a new study")


def _differences(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in dict.fromkeys([*a, *b]) for d in _differences(a.get(k), b.get(k), f"{prefix}{k}.")]
    return [] if a == b else [prefix.rstrip(".")]


def _absolute_paths(raw: dict[str, Any], base_dir: Path) -> dict[str, Any]:
    """Data paths made absolute (as `pipeline.resolve` does), so the stored experiment and
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


def _without_tune(raw: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in raw.items() if k != "tune"}


# ---------------------------------------------------------------------------------- the search


@dataclass
class Search:
    """A study folder's experiment, space and Optuna parts; every worker process loads its own."""

    study_dir: Path
    raw: dict[str, Any]
    tune: TuneConfig
    space: Space
    epochs: int

    @classmethod
    def load(cls, study_dir: Path) -> "Search":
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
        if self.tune.sampler == "grid":
            return optuna.samplers.GridSampler(self.space.grid(), seed=seed)
        if self.tune.sampler == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        return optuna.samplers.TPESampler(seed=seed)

    def pruner(self) -> optuna.pruners.BasePruner:
        p = self.tune.pruner
        if p.type == "none" or self.tune.cv_folds:
            return optuna.pruners.NopPruner()
        if p.type == "median":  # steps are epochs, from 1: a trial can be pruned after warmup_epochs
            return optuna.pruners.MedianPruner(n_startup_trials=p.startup_trials, n_warmup_steps=p.warmup_epochs + 1)
        if p.type == "hyperband":
            return optuna.pruners.HyperbandPruner(min_resource=p.min_epochs, max_resource=self.epochs, reduction_factor=p.reduction_factor)
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=p.min_epochs, reduction_factor=p.reduction_factor)

    def trial_experiment(self, number: int, params: dict[str, Any]) -> dict[str, Any]:
        """The experiment a trial trains: params applied, its own name, runs in trials/, no checkpoints."""
        raw = self.space.apply(_without_tune(self.raw), params)
        raw.update(name=f"{self.name}-trial-{number:04d}", runs_dir=str(self.trials_dir.resolve()))
        raw["train"] = {**(raw.get("train") or {}), "progress": False, "checkpoint": {"every_epochs": None, "every_steps": None}}
        return raw

    def best_experiment(self, params: dict[str, Any]) -> dict[str, Any]:
        return self.space.apply(_without_tune(self.raw), params)

    def trial_run(self, number: int) -> Path | None:
        found = sorted(self.trials_dir.glob(f"{self.name}-trial-{number:04d}-*"))
        return found[-1] if found else None


class Tickets:
    """The trials this session may still start, shared by its worker processes."""

    def __init__(self, context: Any, count: int) -> None:
        self.count = context.Value("i", count)

    def take(self) -> bool:
        with self.count.get_lock():
            if self.count.value <= 0:
                return False
            self.count.value -= 1
            return True


def _run(search: Search, progress: bool) -> None:
    """Start the trials still missing: in this process, or in `parallel` spawned worker processes."""
    study = optuna.load_study(study_name=STUDY_NAME, storage=search.storage())
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.WAITING)):
        study.tell(t.number, state=TrialState.FAIL)  # left behind by an interrupted session
    missing = search.tune.trials - len(study.get_trials(deepcopy=False, states=COUNTED))
    if missing <= 0:
        return
    deadline = time.time() + search.tune.timeout_s if search.tune.timeout_s else None
    seed = search.tune.seed + len(study.trials)  # a resumed session does not replay the first one's draws
    workers = min(search.tune.parallel, missing)
    context = multiprocessing.get_context("spawn")
    tickets = Tickets(context, missing)
    if workers == 1:
        work(str(search.study_dir), tickets, deadline, seed, None, progress)
        return
    threads = max(1, (os.cpu_count() or 1) // workers)
    errors = context.Queue()
    procs = [
        context.Process(target=_worker, args=(str(search.study_dir), tickets, deadline, seed + 10007 * k, threads, progress, errors),
                        name=f"modelworks-tune-{k}")
        for k in range(workers)
    ]
    for p in procs:
        p.start()
    try:
        _wait(procs, errors)
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
            p.join()


def _wait(procs: list, errors: Any) -> None:
    """Wait for every worker; the first that fails stops the others and its error is raised here."""
    while any(p.is_alive() for p in procs):
        failed = [p for p in procs if p.exitcode not in (None, 0)]
        if failed:
            break
        time.sleep(0.2)
    failed = [p for p in procs if p.exitcode not in (None, 0)]
    if not failed:
        return
    try:
        kind, message = errors.get(timeout=5)
    except queue.Empty:
        kind, message = "error", f"{failed[0].name} exited with status {failed[0].exitcode}"
    if kind == "user":
        raise UserError(message)
    raise RuntimeError(f"a tune worker failed:\n{message}")


def _worker(study_dir: str, tickets: Tickets, deadline: float | None, seed: int, threads: int, progress: bool, errors: Any) -> None:
    """A spawned worker process: its share of the trials, errors sent back to the parent."""
    try:
        work(study_dir, tickets, deadline, seed, threads, progress)
    except UserError as e:
        errors.put(("user", str(e)))
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    except BaseException:
        errors.put(("error", traceback.format_exc()))
        raise SystemExit(1) from None


def work(study_dir: str, tickets: Tickets, deadline: float | None, seed: int, threads: int | None, progress: bool) -> None:
    """Run trials on the study in `study_dir` while tickets last and the deadline allows."""
    if threads:
        import torch

        torch.set_num_threads(threads)
    search = Search.load(Path(study_dir))
    study = optuna.load_study(study_name=STUDY_NAME, storage=search.storage(), sampler=search.sampler(seed), pruner=search.pruner())

    def next_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if progress:
            _announce(search, trial)
        if not tickets.take():
            study.stop()

    timeout = None if deadline is None else deadline - time.time()
    if (timeout is not None and timeout <= 0) or not tickets.take():
        return
    with _optuna_quiet():
        study.optimize(Objective(search), timeout=timeout, callbacks=[next_trial])


@contextlib.contextmanager
def _optuna_quiet():
    """Optuna's per-trial INFO lines off (the CLI prints its own); warnings stay."""
    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(level)


def _announce(search: Search, t: optuna.trial.FrozenTrial) -> None:
    import sys

    value = t.value if t.state == TrialState.COMPLETE else (t.intermediate_values.get(t.last_step) if t.last_step else None)
    shown = f"{search.metric} {value:.4f}" if value is not None and math.isfinite(value) else "no value"
    epochs = f", {t.last_step} epoch{'s' if t.last_step != 1 else ''}" if t.last_step else ""
    seconds = t.duration.total_seconds() if t.duration else 0.0
    print(f"trial {t.number}: {t.state.name.lower()}, {shown} ({seconds:.1f} s{epochs})", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------- one trial


class ReportMetric(Callback):
    """Reports the metric to the trial every epoch, and stops the run when the pruner says so."""

    def __init__(self, trial: optuna.Trial, metric: str) -> None:
        self.trial = trial
        self.metric = metric

    def on_epoch_end(self, state: TrainState, logs: dict[str, Any]) -> None:
        value = logs.get(self.metric)
        if value is None:
            raise UserError(_missing_metric(self.metric, logs))
        self.trial.report(float(value), state.epoch)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned after epoch {state.epoch}: {self.metric} {value:.4g}")


class Objective:
    """One trial: draw params, train the trial's experiment, return the metric of the kept epoch."""

    def __init__(self, search: Search) -> None:
        self.search = search

    def __call__(self, trial: optuna.Trial) -> float:
        from modelworks import pipeline

        search = self.search
        params = search.space.suggest(trial)
        raw = search.trial_experiment(trial.number, params)
        if search.tune.cv_folds:
            return self._cross_validate(trial, raw)
        try:
            run = pipeline.train(raw, callbacks=[ReportMetric(trial, search.metric)], progress=False)
        finally:
            folder = search.trial_run(trial.number)
            if folder is not None:
                trial.set_user_attr("run", str(folder.relative_to(search.study_dir)))
        # The run keeps the weights of its best epoch under early stopping with restore_best,
        # else of its last: the trial's value is the metric of that epoch.
        kept = run.report["extra"].get("best_epoch")
        epochs = run.history
        record = next((r for r in epochs if r.get("epoch") == kept), epochs[-1])
        if self.search.metric not in record:
            raise UserError(_missing_metric(search.metric, record))
        return float(record[search.metric])

    def _cross_validate(self, trial: optuna.Trial, raw: dict[str, Any]) -> float:
        from modelworks import pipeline

        search = self.search
        config = validate(raw, "trial experiment")
        folder = store.create_run_dir(search.trials_dir, raw["name"])
        trial.set_user_attr("run", str(folder.relative_to(search.study_dir)))
        atomic_write_text(folder / store.CONFIG, yaml.safe_dump(raw, sort_keys=False, allow_unicode=True))
        summary = pipeline.cross_validate(config, search.tune.cv_folds, base_dir=Path.cwd(), out_dir=folder)
        key = search.metric.removeprefix("val_")
        if key not in summary["mean"]:
            raise UserError(f"tune.metric {search.metric!r}: cross-validation measures "
                            f"{', '.join('val_' + k for k in summary['mean'])}")
        return float(summary["mean"][key])


def _missing_metric(metric: str, logs: dict[str, Any]) -> str:
    logged = sorted(k for k in logs if k.startswith("val_"))
    if not logged:
        return "tune scores each trial on validation data, but the runs have none; set data.split.validation above 0"
    return f"tune.metric {metric!r} is not in the validation log; choose one of: {', '.join(logged)}"


# ---------------------------------------------------------------------------------- outputs


def finish(study_dir: str | Path) -> TuneResult:
    """Write trials.csv, best.yaml and the tune report; keep the best run's weights (see `keep`)."""
    search = Search.load(Path(study_dir))
    study = optuna.load_study(study_name=STUDY_NAME, storage=search.storage())
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    notes: list[str] = []
    if search.tune.cv_folds:
        notes.append(f"each trial is scored by {search.tune.cv_folds}-fold cross-validation (the mean of the folds' held-out "
                     f"{search.metric.removeprefix('val_')}), over all rows of the data; pruning is disabled with cv_folds")
    best = (max if search.direction == "max" else min)(complete, key=lambda t: t.value) if complete else None
    best_params = search.space.decode_params(best.params) if best else {}
    best_run, best_config = None, None
    if best is not None:
        best_config = Path(study_dir) / "best.yaml"
        header = f"# best of {len(trials)} trials in {study_dir}: trial {best.number}, {search.metric} = {best.value:.6g}\n"
        atomic_write_text(best_config, header + yaml.safe_dump(search.best_experiment(best_params), sort_keys=False, allow_unicode=True))
        best_run = _best_run(search, study, best, best_params, notes)
    if search.tune.keep == "best":
        _delete_other_weights(search, trials, best_run)
        if len(trials) > 1:
            notes.append("tune.keep is best: only the best run keeps its weights; the other trial runs keep "
                         "their config, metrics and report")
    frame = trials_frame(search, trials)
    atomic_write_text(Path(study_dir) / "trials.csv", frame.to_csv(index=False))
    importance = _importance(study, complete, notes)
    summary = {
        "title": f"{search.name}: hyperparameter search",
        "study_dir": str(study_dir), "metric": search.metric, "direction": search.direction,
        "settings": {**search.tune.model_dump(mode="json", exclude={"space"}), "epochs": search.epochs},
        "space": {k: v.model_dump(mode="json") for k, v in search.space.params.items()},
        "counts": {s.name: sum(t.state == s for t in trials) for s in TrialState if any(t.state == s for t in trials)},
        "best": None if best is None else {"trial": best.number, "value": best.value, "params": best_params,
                                           "run": _relative(best_run, study_dir), "config": _relative(best_config, study_dir)},
        "importance": importance, "notes": notes,
    }
    if best is None:
        notes.append("no trial completed: there is no best config yet")
    curves = {t.number: (t.state.name, dict(t.intermediate_values)) for t in trials}
    _, html_path = write_tune_report(Path(study_dir), summary, frame, curves)
    return TuneResult(
        study_dir=Path(study_dir), metric=search.metric, direction=search.direction,
        best_value=best.value if best else None, best_params=best_params, best_trial=best.number if best else None,
        best_run=best_run, best_config=best_config, report=html_path, trials=frame, notes=notes,
    )


def _relative(path: Path | None, study_dir: str | Path) -> str | None:
    """A path inside the study folder as seen from it (the report stays valid if the folder moves)."""
    if path is None:
        return None
    try:
        return str(Path(path).resolve().relative_to(Path(study_dir).resolve()))
    except ValueError:
        return str(path)


def trials_frame(search: Search, trials: list[optuna.trial.FrozenTrial]) -> pd.DataFrame:
    rows = []
    for t in trials:
        row = {
            "number": t.number, "state": t.state.name, search.metric: t.value if t.state == TrialState.COMPLETE else None,
            "epochs": t.last_step, "duration_s": round(t.duration.total_seconds(), 3) if t.duration else None,
        }
        row.update({path: t.params.get(path) for path in search.space.params})
        row["run"] = t.user_attrs.get("run")
        rows.append(row)
    columns = ["number", "state", search.metric, "epochs", "duration_s", *search.space.params, "run"]
    return pd.DataFrame(rows, columns=columns)


def _best_run(search: Search, study: optuna.Study, best: optuna.trial.FrozenTrial, params: dict[str, Any], notes: list[str]) -> Path | None:
    """The best trial's run; with cv_folds, a run trained once on the usual split with its params."""
    if not search.tune.cv_folds:
        return search.study_dir / best.user_attrs["run"] if "run" in best.user_attrs else None
    done = study.user_attrs.get("best_run")
    if done and done["trial"] == best.number and (search.study_dir / done["run"]).exists():
        return search.study_dir / done["run"]
    from modelworks import pipeline

    raw = {**search.best_experiment(params), "name": f"{search.name}-best", "runs_dir": str(search.trials_dir.resolve())}
    run = pipeline.train(raw, progress=False)
    study.set_user_attr("best_run", {"trial": best.number, "run": str(run.path.relative_to(search.study_dir.resolve()))})
    notes.append(f"the best run was trained once on the experiment's own split with trial {best.number}'s params")
    return run.path


def _delete_other_weights(search: Search, trials: list[optuna.trial.FrozenTrial], best_run: Path | None) -> None:
    keep = best_run.resolve() if best_run else None
    for t in trials:
        if "run" not in t.user_attrs:
            continue
        folder = (search.study_dir / t.user_attrs["run"]).resolve()
        if folder == keep:
            continue
        for f in (folder / store.WEIGHTS, folder / store.CHECKPOINT):
            f.unlink(missing_ok=True)


def _importance(study: optuna.Study, complete: list, notes: list[str]) -> dict[str, float] | None:
    if len(complete) < 2:
        notes.append(f"parameter importance needs at least 2 completed trials; this study has {len(complete)}")
        return None
    with warnings.catch_warnings(record=True) as caught:  # e.g. too few distinct values: said in the report
        warnings.simplefilter("always")
        try:
            importance = {k: float(v) for k, v in optuna.importance.get_param_importances(study).items()}
        except (RuntimeError, ValueError) as e:
            notes.append(f"parameter importance could not be computed: {e}")
            return None
    notes.extend(f"parameter importance: {w.message}" for w in caught)
    return importance
