"""Hyperparameter search over any config path, on Optuna (`modelworks tune`).

    result = modelworks.tune("exp.yaml", trials=30, parallel=2)
    result.best_params, result.best_value, result.best_run, result.study_dir

The experiment's ``tune:`` section (see `modelworks.config.schema.TuneConfig`) holds the metric,
the search space, sampler, pruner and budget; `space` checks and samples it, `study` runs the
trials and writes the study folder, `report` draws the tune report.
"""

from modelworks.tuning.study import SearchInterrupted, TuneResult, finish, tune

__all__ = ["SearchInterrupted", "TuneResult", "finish", "tune"]
