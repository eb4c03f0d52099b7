"""tune: ``study/`` in the job's folder, its trial runs in ``study/trials/``; the best trial's
run is the job's run.

One call of `modelworks.api.tune`, which keeps the budget (``tune.trials``, counting complete and
pruned trials) and the timeout (``tune.timeout_s``, from the start of this attempt). Its per-trial
callback streams each finished trial as a metric point (name: the tuned metric, step: the trial's
number, epoch: the epochs it trained; trials without a final value are not streamed). A later
attempt resumes the study: the trials already counted are not run again, and every finished trial
is streamed again, the earlier attempts' first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelworks.api import TrialRecord, tune
from modelworks.errors import UserError
from modelworks.jobs.attempt import Attempt, platform_experiment
from modelworks.platform.db.models import Job, JobMetric, Project
from modelworks.store.jsonfile import is_number, json_safe, numbers


class TrialsToDb:
    """The tune callback: each finished trial's value as a metric point, and a log line."""

    def __init__(self, attempt: Attempt, study: Path) -> None:
        self.attempt = attempt
        self.study = study
        self.trials: list[TrialRecord] = []

    def __call__(self, trial: TrialRecord) -> None:
        if trial.resumed and not any(t.resumed for t in self.trials):
            print(f"resuming the study in {self.study.name}/: its earlier attempts' trials first", flush=True)
        self.trials.append(trial)
        if trial.state != "COMPLETE" or not is_number(trial.value):
            print(f"trial {trial.number}: {trial.state.lower()}", flush=True)
            return
        self.attempt.add_metrics(
            [
                JobMetric(
                    job_id=self.attempt.job_id,
                    step=trial.number,
                    epoch=trial.epochs,
                    name=trial.metric,
                    value=float(trial.value),
                )
            ]
        )
        print(f"trial {trial.number}: {trial.metric} {trial.value:.4g}", flush=True)


def run_tune(attempt: Attempt, job: Job, project: Project, folder: Path) -> dict[str, Any]:
    study = folder / "study"
    config = platform_experiment(attempt, project, job.config, folder)
    attempt.clear_metrics()  # every finished trial is streamed again, earlier attempts' included
    streamed = TrialsToDb(attempt, study)
    result = tune(config, study=study, callbacks=[streamed], base_dir=folder)
    counted = sum(t.counted for t in streamed.trials)
    if result.best_run is None:
        raise UserError(f"no trial of the search completed ({counted} finished); there is no best run to record")
    return {
        "run": str(result.best_run),
        "study": str(result.study_dir),
        "metric": result.metric,
        "direction": result.direction,
        "best_value": result.best_value,
        "best_params": json_safe(result.best_params),
        "best_trial": result.best_trial,
        "trials": counted,
        "failed_trials": sum(t.state == "FAIL" for t in streamed.trials),
        "metrics": numbers({result.metric: result.best_value}),
    }
