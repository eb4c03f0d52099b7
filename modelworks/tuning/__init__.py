"""Hyperparameter search over any config path, on Optuna (`modelworks tune`).

    result = modelworks.tune("exp.yaml", trials=30, parallel=2)
    result.best_params, result.best_value, result.best_run, result.study_dir

The experiment's ``tune:`` section (see `modelworks.config.schema.TuneConfig`) holds the metric,
the search space, sampler, pruner and budget. The modules, in the order imports flow:

- `declarations` names the samplers and pruners (light: the config schema reads it), and
  `factories` builds each as Optuna's object;
- `space` checks the search space and samples it;
- `folder` is the study folder: its files, the `Search` each process loads from it (storage,
  sampler, pruner, trial experiments), and the checks for resuming it;
- `trial` runs one trial: its params drawn, the run trained (or cross-validated), the metric
  reported every epoch so that the pruner can stop it;
- `workers` runs a session's missing trials, in this process or in spawned worker processes;
- `report` draws the tune report, and `results` writes ``trials.csv``, ``best.yaml`` and that
  report (`finish`, `TuneResult`);
- `study` holds `tune` itself: it resolves the experiment, sets up or resumes the study folder,
  runs the trials and finishes; `check_search` is the one home of the checks that need no data
  (the platform's job check calls it through `modelworks.api.check_job_config`).
"""

from typing import Any

__all__ = ["SearchInterrupted", "TrialRecord", "TuneResult", "check_search", "finish", "tune"]

_WHERE = {
    "SearchInterrupted": "study",
    "tune": "study",
    "check_search": "study",
    "TrialRecord": "workers",
    "TuneResult": "results",
    "finish": "results",
}


def __getattr__(name: str) -> Any:
    # Imported on first use, so that `modelworks.tuning.declarations` (read by the config schema)
    # does not import optuna.
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(f"modelworks.tuning.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'modelworks.tuning' has no attribute {name!r}")
