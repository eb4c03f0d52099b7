"""One trial: draw its params, train the trial's experiment, return its metric to Optuna.

Each trial is `modelworks.engine.train.train` on the experiment with the trial's params written in, without
checkpoints (a study resumes trial by trial, not within one), its metric reported to Optuna at
the end of every epoch so that the pruner can stop it. With ``tune.cv_folds`` a trial is
`modelworks.engine.cv.cross_validate` instead, scored by the mean over the folds, and never pruned.
"""

from __future__ import annotations

from typing import Any

import optuna
import yaml

from modelworks.config.load import validate
from modelworks.engine.cv import cross_validate
from modelworks.engine.train import train
from modelworks.errors import UserError
from modelworks.store import run as store
from modelworks.store.atomic import atomic_write_text
from modelworks.training.callbacks import Callback, TrainState
from modelworks.tuning.folder import Search


class ReportMetric(Callback):
    """Reports the metric to the trial every epoch, and stops the run when the pruner says so."""

    def __init__(self, trial: optuna.Trial, metric: str) -> None:
        self.trial = trial
        self.metric = metric
        self.monitors = (metric,)  # validation computes it every epoch

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
        search = self.search
        params = search.space.suggest(trial)
        raw = search.trial_experiment(trial.number, params)
        if search.tune.cv_folds:
            return self._cross_validate(trial, raw)
        try:
            # The trial's experiment holds absolute paths only (see study.resolve): the study folder is
            # as good a base as any.
            run = train(raw, base_dir=search.study_dir, callbacks=[ReportMetric(trial, search.metric)], progress=False)
        finally:
            folder = search.trial_run(trial.number)
            if folder is not None:
                trial.set_user_attr("run", str(folder.relative_to(search.study_dir)))
        # The run keeps the weights of its best epoch under early stopping with restore_best,
        # else of its last: the trial's value is the metric of that epoch.
        kept = run.report.extra.best_epoch
        epochs = run.history
        record = next((r for r in epochs if r.epoch == kept), epochs[-1])
        value = record.metric(search.metric)
        if value is None:
            raise UserError(_missing_metric(search.metric, record))
        return float(value)

    def _cross_validate(self, trial: optuna.Trial, raw: dict[str, Any]) -> float:
        search = self.search
        config = validate(raw, "trial experiment")
        folder = store.create_run_dir(search.trials_dir, raw["name"])
        trial.set_user_attr("run", str(folder.relative_to(search.study_dir)))
        atomic_write_text(folder / store.CONFIG, yaml.safe_dump(raw, sort_keys=False, allow_unicode=True))
        summary = cross_validate(config, search.tune.cv_folds, base_dir=search.study_dir, out_dir=folder)
        key = search.metric.removeprefix("val_")
        if summary.mean.get(key) is None:
            raise UserError(
                f"tune.metric {search.metric!r}: cross-validation measures "
                f"{', '.join('val_' + k for k in summary.mean)}"
            )
        return float(summary.mean[key])


def _missing_metric(metric: str, logs: dict[str, Any]) -> str:
    logged = sorted(k for k in logs if k.startswith("val_"))
    if not logged:
        return "tune scores each trial on validation data, but the runs have none; set data.split.validation above 0"
    return f"tune.metric {metric!r} is not in the validation log; choose one of: {', '.join(logged)}"
