"""Hyperparameter search over any config path, on Optuna (`modelworks tune`).

    result = modelworks.tune("exp.yaml", trials=30, parallel=2)
    result.best_params, result.best_value, result.best_run, result.study_dir

The experiment's ``tune:`` section (see `modelworks.config.schema.TuneConfig`) holds the metric,
the search space, sampler, pruner and budget. The modules, in the order imports flow:

- `space` checks the search space and samples it;
- `folder` is the study folder: its files, the `Search` each process loads from it (storage,
  sampler, pruner, trial experiments), and the checks for resuming it;
- `trial` runs one trial: its params drawn, the run trained (or cross-validated), the metric
  reported every epoch so that the pruner can stop it;
- `workers` runs a session's missing trials, in this process or in spawned worker processes;
- `report` draws the tune report, and `results` writes ``trials.csv``, ``best.yaml`` and that
  report (`finish`, `TuneResult`);
- `study` holds `tune` itself: it resolves the experiment, sets up or resumes the study folder,
  runs the trials and finishes.
"""

from modelworks.tuning.results import TuneResult, finish
from modelworks.tuning.study import SearchInterrupted, tune

__all__ = ["SearchInterrupted", "TuneResult", "finish", "tune"]
