"""A tune job's study as its page shows it: the trials table, the optimization history and the
parameter importance.

The history needs nothing but the job's metric stream: a tune job streams each finished trial's
value as a point (step: the trial's number; `modelworks.jobs.kinds.tune`), so the chart is live
while the search runs, through the same poll as a training curve. The trials' states and params
are in the study's Optuna journal, in the job's folder (``study/`` there): readable where the
artifact store is this machine's disk, which is where the jobs work. Elsewhere the table has the
streamed values only, and says so.

The parameter importance is Optuna's (``get_param_importances``: fANOVA), computed only when the
page asks for it, and kept per job and count of finished trials. Optuna's PED-ANOVA evaluator is
the fallback where fANOVA fails.
"""

from __future__ import annotations

import math
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from modelworks.errors import UserError
from modelworks.jobs.attempt import job_folder
from modelworks.platform.db.models import Job, JobMetric
from modelworks.platform.errors import NotFound
from modelworks.platform.settings import Settings
from modelworks.store.files import STUDY_EXPERIMENT

STUDY = "study"  # the study folder inside a tune job's folder (`modelworks.jobs.kinds.tune.run_tune`)
_importance_cache: dict[tuple[int, int], dict[str, Any]] = {}
_lock = threading.Lock()


@dataclass
class Trial:
    number: int
    state: str
    value: float | None
    epochs: int | None = None
    duration_s: float | None = None
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class Study:
    job: Job
    metric: str | None
    direction: str | None
    trials: list[Trial]
    params: list[str]  # the searched parameters, the table's columns
    from_journal: bool  # False: only the streamed values were readable

    @property
    def best(self) -> Trial | None:
        done = [t for t in self.trials if t.value is not None]
        if not done:
            return None
        return (min if self.direction == "min" else max)(done, key=lambda t: t.value)


def tune_job(job: Job) -> Job:
    if job.kind != "tune":
        raise NotFound(f"job {job.id} is a {job.kind} job, not a tuning study")
    return job


def study_dir(settings: Settings, job: Job) -> Path | None:
    """The job's study folder on this machine, if it is here."""
    folder = job_folder(settings, job.project_id, job.id) / STUDY
    return folder if (folder / STUDY_EXPERIMENT).is_file() else None


def _load(settings: Settings, job: Job) -> Any:
    """(Search, optuna.Study) of the job, or None where its journal is not on this machine."""
    folder = study_dir(settings, job)
    if folder is None:
        return None
    import optuna

    from modelworks.tuning.folder import STUDY_NAME, Search

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    search = Search.load(folder)
    return search, optuna.load_study(study_name=STUDY_NAME, storage=search.storage())


def _streamed(session: Session, job: Job) -> tuple[str | None, list[Trial]]:
    rows = session.execute(
        select(JobMetric.name, JobMetric.step, JobMetric.epoch, JobMetric.value)
        .where(JobMetric.job_id == job.id, JobMetric.step.is_not(None))
        .order_by(JobMetric.id)
    ).all()
    metric = rows[0][0] if rows else None
    trials = [Trial(number=int(step), state="COMPLETE", value=value, epochs=epoch) for _, step, epoch, value in rows]
    return metric, trials


def study(session: Session, settings: Settings, job: Job) -> Study:
    """The study of tune job ``job``: from its journal where readable, else from its metric stream."""
    tune_job(job)
    result = job.result or {}
    metric, streamed = _streamed(session, job)
    tune = (job.config.get("tune") or {}) if isinstance(job.config, dict) else {}
    metric = result.get("metric") or tune.get("metric") or metric
    direction = result.get("direction") or tune.get("direction")
    try:
        loaded = _load(settings, job)
    except (UserError, ValueError, KeyError, OSError):
        loaded = None
    if loaded is None:
        return Study(job, metric, direction, streamed, [], from_journal=False)
    search, optuna_study = loaded
    trials = []
    for t in optuna_study.get_trials(deepcopy=False):
        value = t.value if t.state.name == "COMPLETE" and t.value is not None and math.isfinite(t.value) else None
        duration = round(t.duration.total_seconds(), 3) if t.duration else None
        params = search.space.decode_params(t.params)
        trials.append(Trial(t.number, t.state.name, value, t.last_step, duration, params))
    return Study(job, search.metric, search.direction, trials, list(search.space.params), from_journal=True)


def importance(settings: Settings, job: Job) -> dict[str, Any]:
    """``{"importance": {param: share} | None, "note": str | None}``, computed once per job and
    number of finished trials."""
    tune_job(job)
    try:
        loaded = _load(settings, job)
    except (UserError, ValueError, KeyError, OSError) as e:
        return {"importance": None, "note": f"the study cannot be read: {e}"}
    if loaded is None:
        return {"importance": None, "note": "the study's journal is not on this server's disk"}
    _, optuna_study = loaded
    complete = [t for t in optuna_study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    key = (job.id, len(complete))
    with _lock:
        if key in _importance_cache:
            return _importance_cache[key]
    answer = _compute(optuna_study, len(complete))
    with _lock:
        _importance_cache[key] = answer
    return answer


def _compute(optuna_study: Any, complete: int) -> dict[str, Any]:
    import optuna

    if complete < 2:
        return {"importance": None, "note": f"parameter importance needs 2 finished trials; there are {complete}"}
    note = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            found = optuna.importance.get_param_importances(optuna_study)
        except (RuntimeError, ValueError, ImportError) as e:
            try:
                evaluator = optuna.importance.PedAnovaImportanceEvaluator()
                found = optuna.importance.get_param_importances(optuna_study, evaluator=evaluator)
                note = f"fANOVA failed ({e}); PED-ANOVA instead"
            except (RuntimeError, ValueError) as e2:
                return {"importance": None, "note": f"parameter importance could not be computed: {e2}"}
    values = {str(k): float(v) for k, v in found.items() if math.isfinite(float(v))}
    return {"importance": values, "note": note}
